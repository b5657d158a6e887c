/*
 * test_upgrade.c -- format-1 databases open in this release: upgraded in
 * place, in one transaction, without loss (upgrade.c); and format-3 ones
 * whose keys hold floats beyond 2^53 (keyed by their shortest decimal
 * then, by their integer now).
 *
 * The format-1 databases are written here by hand, straight through LMDB,
 * with format 1's key encoding of numbers (re-implemented below as the
 * reference it was: the largest double not above the value, in
 * memcomparable form, then the integer remainder in two bytes), so the
 * test needs no old release.  tests/fixtures/v1 (real format-1 databases)
 * is checked by spec/upgrade_spec.lua.
 */
#include <lmdb.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"

/* ------------------------------------------------- format 1, by hand */

#define V1_TAG_NUM 0x10
#define V1_TAG_STR 0x20

/* Format 1's number key: 11 bytes. */
static void v1_num(const df_value *v, unsigned char *out) {
  double D;
  unsigned r = 0;
  uint64_t bits;
  int i;
  if (v->type == DF_TFLOAT) {
    D = v->f == 0 ? 0.0 : v->f;
  } else if (v->type == DF_TUINT) {
    uint64_t x = v->u, dx;
    D = (double)x;
    if (D >= 18446744073709551616.0) D = nextafter(D, 0.0);
    dx = (uint64_t)D;
    if (dx > x) {
      D = nextafter(D, -INFINITY);
      dx = (uint64_t)D;
    }
    r = (unsigned)(x - dx);
  } else {
    int64_t x = v->i, dx;
    D = (double)x;
    if (D >= 9223372036854775808.0) D = nextafter(D, 0.0);
    dx = (int64_t)D;
    if (dx > x) {
      D = nextafter(D, -INFINITY);
      dx = (int64_t)D;
    }
    r = (unsigned)((uint64_t)x - (uint64_t)dx);
  }
  memcpy(&bits, &D, 8);
  bits = (bits & 0x8000000000000000ull) ? ~bits : bits ^ 0x8000000000000000ull;
  out[0] = V1_TAG_NUM;
  for (i = 0; i < 8; i++) out[1 + i] = (unsigned char)(bits >> (56 - 8 * i));
  out[9] = (unsigned char)(r >> 8);
  out[10] = (unsigned char)r;
}

/* Format 1's encoding of a key value (short strings only here). */
static size_t v1_enc(const df_value *v, unsigned char *out) {
  size_t i, k = 0;
  if (v->type != DF_TSTR) {
    v1_num(v, out);
    return 11;
  }
  out[k++] = V1_TAG_STR;
  for (i = 0; i < v->n; i++) {
    out[k++] = (unsigned char)v->s[i];
    if (v->s[i] == '\0') out[k++] = 0xff;
  }
  out[k++] = 0;
  out[k++] = 1;
  return k;
}

static size_t v1_item_key(const df_value *pk, const df_value *sk,
                          unsigned char *out) {
  size_t n = v1_enc(pk, out + 8);
  df__key_put_u64(out, df__hash64(out + 8, n, 0));
  n += 8;
  return n + v1_enc(sk, out + n);
}

/* Format 3's key of a value: a float beyond 2^53 that is an integer of
 * the int64 range was keyed by its shortest decimal. */
static df_value v3_keyed(df_value v, df_dec *d, unsigned char *enc) {
  char buf[40];
  int p;
  if (v.type != DF_TFLOAT || fabs(v.f) < 9007199254740992.0 ||
      fabs(v.f) >= 9223372036854775808.0)
    return v;
  for (p = 15; p <= 17; p++) {
    snprintf(buf, sizeof buf, "%.*e", p - 1, v.f);
    if (p == 17 || strtod(buf, NULL) == v.f) break;
  }
  df__dec_parse(buf, strlen(buf), d);
  memset(&v, 0, sizeof v);
  v.type = DF_TDECIMAL;
  v.s = (const char *)enc;
  v.n = df__dec_enc(d, enc);
  return v;
}

/* Format 3's items key of (pk, sk). */
static size_t v3_item_key(const df_value *pk, const df_value *sk,
                          unsigned char *out) {
  static const df_schema s = {"PK", "SK", NULL, NULL, 0};
  unsigned char e1[DF_NUM_ENC_MAX], e2[DF_NUM_ENC_MAX];
  df_dec d1, d2;
  df_key key;
  size_t n = 0;
  char err[DF_MSG_MAX];
  key.pk = v3_keyed(*pk, &d1, e1);
  key.sk = v3_keyed(*sk, &d2, e2);
  if (df__item_key(&s, &key, out, &n, err, sizeof err) != DF_OK) return 0;
  return n;
}

/* Write a database of `format` (1 or 3) at path holding items (pk[i],
 * sk[i]) under that format's keys, with a GSI by_g (g, n) whose entries
 * are left out (an upgrade that re-keys rebuilds them; format 1's would
 * be in the old encoding anyway). */
static int write_old(const char *path, int format, const df_value *pk,
                     const df_value *sk, size_t n) {
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi meta, items, dbi;
  MDB_val k, v;
  df_buf b;
  size_t i;
  unsigned char key[DF_KEY_MAX];
  const char *names[] = {"index", "expiry", "stream"};
  int rc;
  mkdir(path, 0755);
  df__buf_init(&b);
  if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 8) ||
      mdb_env_set_mapsize(env, 64 << 20) || mdb_env_open(env, path, 0, 0644))
    return -1;
  rc = mdb_txn_begin(env, NULL, 0, &txn);
  rc = rc || mdb_dbi_open(txn, "meta", MDB_CREATE, &meta);
  rc = rc || mdb_dbi_open(txn, "items", MDB_CREATE, &items);
  for (i = 0; i < 3 && !rc; i++)
    rc = mdb_dbi_open(txn, names[i], MDB_CREATE, &dbi);
  /* the schema record, as format 1 wrote it */
  df__mp_put_map(&b, 5);
  df__mp_put_str(&b, "format", 6);
  df__mp_put_int(&b, format);
  df__mp_put_str(&b, "pk", 2);
  df__mp_put_str(&b, "PK", 2);
  df__mp_put_str(&b, "sk", 2);
  df__mp_put_str(&b, "SK", 2);
  df__mp_put_str(&b, "ttl", 3);
  df__mp_put_nil(&b);
  df__mp_put_str(&b, "indexes", 7);
  df__mp_put_array(&b, 1);
  df__mp_put_map(&b, 7);
  df__mp_put_str(&b, "name", 4);
  df__mp_put_str(&b, "by_g", 4);
  df__mp_put_str(&b, "id", 2);
  df__mp_put_int(&b, 1);
  df__mp_put_str(&b, "kind", 4);
  df__mp_put_int(&b, DF_GSI);
  df__mp_put_str(&b, "pk", 2);
  df__mp_put_str(&b, "g", 1);
  df__mp_put_str(&b, "sk", 2);
  df__mp_put_str(&b, "n", 1);
  df__mp_put_str(&b, "projection", 10);
  df__mp_put_int(&b, DF_PROJ_ALL);
  df__mp_put_str(&b, "include", 7);
  df__mp_put_array(&b, 0);
  k.mv_data = (void *)"schema";
  k.mv_size = 6;
  v.mv_data = b.p;
  v.mv_size = b.len;
  rc = rc || mdb_put(txn, meta, &k, &v, 0);
  for (i = 0; i < n && !rc; i++) {
    fx_item(&b, "PK", pk[i], "SK", sk[i], "n", fx_int((int64_t)i), "g",
            fx_str("G"), FX_END);
    k.mv_data = key;
    k.mv_size = format == 1 ? v1_item_key(&pk[i], &sk[i], key)
                            : v3_item_key(&pk[i], &sk[i], key);
    v.mv_data = b.p;
    v.mv_size = b.len;
    rc = mdb_put(txn, items, &k, &v, 0);
  }
  rc = rc || mdb_txn_commit(txn);
  mdb_env_close(env);
  df__buf_free(&b);
  return rc ? -1 : 0;
}

/* The raw entries of a sub-database, for "nothing changed" checks. */
static unsigned long raw_digest(const char *path, const char *sub) {
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi dbi;
  MDB_cursor *c;
  MDB_val k, v;
  unsigned long h = 5381;
  size_t i;
  if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 8) ||
      mdb_env_open(env, path, MDB_RDONLY, 0644))
    return 0;
  if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0) {
    if (mdb_dbi_open(txn, sub, 0, &dbi) == 0 &&
        mdb_cursor_open(txn, dbi, &c) == 0) {
      while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
        for (i = 0; i < k.mv_size; i++)
          h = h * 33 + ((unsigned char *)k.mv_data)[i];
        for (i = 0; i < v.mv_size; i++)
          h = h * 33 + ((unsigned char *)v.mv_data)[i];
      }
      mdb_cursor_close(c);
    }
    mdb_txn_abort(txn);
  }
  mdb_env_close(env);
  return h;
}

/* -------------------------------------------------------------- tests */

#define N_ITEMS 40

static void make_keys(df_value *pk, df_value *sk, size_t *n) {
  static const char *const strs[] = {"", "a", "a\0b", "b", "zz"};
  size_t k = 0, i;
  /* one partition of numbers the two formats order differently */
  const double fl[] = {-1e300,
                       -2.5,
                       -0.5,
                       0.25,
                       1.5,
                       1e15 + 0.5,
                       9007199254740992.0,
                       1152921504606846976.0,
                       1e20};
  const int64_t in[] = {
      INT64_MIN, -7, 0, 1, 9007199254740993LL, 1152921504606846977LL,
      INT64_MAX};
  for (i = 0; i < sizeof fl / sizeof fl[0]; i++) {
    pk[k] = fx_str("num");
    sk[k++] = fx_float(fl[i]);
  }
  for (i = 0; i < sizeof in / sizeof in[0]; i++) {
    pk[k] = fx_str("num");
    sk[k++] = fx_int(in[i]);
  }
  for (i = 0; i < 5; i++) {
    pk[k] = fx_str("str");
    sk[k] = fx_str(strs[i]);
    if (i == 2) sk[k].n = 3;
    k++;
  }
  /* numeric partition keys (their hash changes with their encoding) */
  for (i = 0; i < 6; i++) {
    pk[k] = i % 2 ? fx_float(0.5 + (double)i) : fx_int((int64_t)i * 1000);
    sk[k++] = fx_str("x");
  }
  *n = k;
}

static df_db *open_db(const char *path, int readonly, int *code) {
  df_open_options o;
  df_db *db = NULL;
  memset(&o, 0, sizeof o);
  o.readonly = readonly;
  *code = df_db_open(path, &o, &db);
  return db;
}

static void test_upgrades_in_place(void) {
  char path[4200];
  df_value pk[N_ITEMS], sk[N_ITEMS];
  size_t n, i;
  int code;
  df_db *db;
  df_check_report rep;
  fx_fresh(path, sizeof path);
  make_keys(pk, sk, &n);
  if (!CHECK(write_old(path, 1, pk, sk, n) == 0)) return;
  /* a read-only handle cannot upgrade: it says what to do */
  db = open_db(path, 1, &code);
  CHECK_EQ_INT(code, DF_EVERSION);
  CHECK(strstr(df_db_errmsg(db), "open it once without readonly") != NULL);
  df_db_close(db);
  db = open_db(path, 0, &code);
  if (!CHECK(code == DF_OK)) {
    fprintf(stderr, "  %s\n", df_db_errmsg(db));
    df_db_close(db);
    return;
  }
  /* every item under its key */
  for (i = 0; i < n; i++) {
    df_key key = fx_key(pk[i], sk[i]);
    const void *it;
    size_t len;
    df_value got;
    if (!CHECK(df_db_get(db, &key, 0, &it, &len) == DF_OK)) continue;
    CHECK_EQ_INT(df__mp_map_find(it, len, "n", 1, &got, NULL, NULL), 1);
    CHECK_EQ_INT(got.i, (int64_t)i);
  }
  CHECK_EQ_INT(df_db_check(db, &rep), DF_OK);
  CHECK_EQ_UINT(rep.items, n);
  CHECK_EQ_UINT(rep.index_entries, n); /* by_g rebuilt */
  CHECK(rep.bad_items == 0 && rep.missing_index == 0 && rep.stale_index == 0);
  /* the numbers' partition in decimal order */
  {
    df_query q;
    df_page *page;
    df_value prev;
    size_t count = 0;
    memset(&q, 0, sizeof q);
    q.has_pk = 1;
    q.pk = fx_str("num");
    CHECK_EQ_INT(df_page_new(&page), DF_OK);
    CHECK_EQ_INT(df_query_page(db, &q, 1000, 0, page), DF_OK);
    for (i = 0; i < df_page_count(page); i++) {
      const void *it;
      size_t len;
      df_value s;
      df_page_item(page, i, &it, &len);
      df__mp_map_find(it, len, "SK", 2, &s, NULL, NULL);
      if (i) CHECK_EQ_INT(df__value_cmp(&prev, &s), -1);
      prev = s;
      count++;
    }
    CHECK_EQ_UINT(count, 16);
    df_page_free(page);
  }
  df_db_close(db);
  /* upgraded once: read-only handles open now */
  db = open_db(path, 1, &code);
  CHECK_EQ_INT(code, DF_OK);
  df_db_close(db);
  fx_rm(path);
}

static void test_refuses_keys_that_become_one(void) {
  char path[4200];
  df_value pk[2], sk[2];
  unsigned long before;
  int code;
  df_db *db;
  fx_fresh(path, sizeof path);
  /* the float 2^63, beyond the int64 range, is its shortest decimal
   * 9223372036854776000, an integer of its own in format 1 */
  pk[0] = pk[1] = fx_str("p");
  sk[0] = fx_float(9223372036854775808.0);
  memset(&sk[1], 0, sizeof sk[1]);
  sk[1].type = DF_TUINT;
  sk[1].u = 9223372036854776000ULL;
  if (!CHECK(write_old(path, 1, pk, sk, 2) == 0)) return;
  before = raw_digest(path, "items");
  db = open_db(path, 0, &code);
  CHECK_EQ_INT(code, DF_EVALIDATION);
  CHECK(strstr(df_db_errmsg(db), "9223372036854776000 (float)") != NULL);
  CHECK(strstr(df_db_errmsg(db), "cannot upgrade the database from format 1") !=
        NULL);
  df_db_close(db);
  /* nothing changed: still format 1, the same items under the same keys */
  CHECK_EQ_UINT(raw_digest(path, "items"), before);
  db = open_db(path, 1, &code);
  CHECK_EQ_INT(code, DF_EVERSION);
  df_db_close(db);
  fx_rm(path);
}

/* A format-3 database keyed the float 2^60 by 1152921504606847000: the
 * upgrade moves it to 1152921504606846976, the integer 1 << 60's key, and
 * rebuilds the index; a database holding no such float is not rewritten. */
static void test_upgrades_format3_floats(void) {
  char path[4200];
  df_value pk[3], sk[3];
  df_check_report rep;
  unsigned long before;
  size_t i;
  int code;
  df_db *db;
  fx_fresh(path, sizeof path);
  pk[0] = fx_str("p");
  sk[0] = fx_float(1152921504606846976.0);  /* 2^60 */
  pk[1] = fx_float(-4611686018427387904.0); /* -2^62 */
  sk[1] = fx_str("x");
  pk[2] = fx_str("q");
  sk[2] = fx_float(36028797018963968.0); /* 2^55 */
  if (!CHECK(write_old(path, 3, pk, sk, 3) == 0)) return;
  db = open_db(path, 1, &code);
  CHECK_EQ_INT(code, DF_EVERSION);
  df_db_close(db);
  db = open_db(path, 0, &code);
  if (!CHECK(code == DF_OK)) {
    fprintf(stderr, "  %s\n", df_db_errmsg(db));
    df_db_close(db);
    return;
  }
  for (i = 0; i < 3; i++) {
    df_value ip = pk[i], is = sk[i];
    df_key key = fx_key(pk[i], sk[i]);
    const void *it;
    size_t len;
    if (ip.type == DF_TFLOAT) ip = fx_int((int64_t)ip.f);
    if (is.type == DF_TFLOAT) is = fx_int((int64_t)is.f);
    CHECK_EQ_INT(df_db_get(db, &key, 0, &it, &len), DF_OK);
    key = fx_key(ip, is);
    CHECK_EQ_INT(df_db_get(db, &key, 0, &it, &len), DF_OK);
  }
  CHECK_EQ_INT(df_db_check(db, &rep), DF_OK);
  CHECK_EQ_UINT(rep.items, 3);
  CHECK_EQ_UINT(rep.index_entries, 3); /* by_g rebuilt */
  CHECK(rep.bad_items == 0 && rep.missing_index == 0 && rep.stale_index == 0);
  df_db_close(db);
  db = open_db(path, 1, &code); /* format 4 now */
  CHECK_EQ_INT(code, DF_OK);
  df_db_close(db);
  fx_rm(path);

  /* no float to re-key: the items stay as they are */
  fx_fresh(path, sizeof path);
  pk[0] = pk[1] = fx_str("p");
  sk[0] = fx_float(0.5);
  sk[1] = fx_int(1152921504606846976LL);
  if (!CHECK(write_old(path, 3, pk, sk, 2) == 0)) return;
  before = raw_digest(path, "items");
  db = open_db(path, 0, &code);
  CHECK_EQ_INT(code, DF_OK);
  df_db_close(db);
  CHECK_EQ_UINT(raw_digest(path, "items"), before);
  db = open_db(path, 1, &code);
  CHECK_EQ_INT(code, DF_OK);
  df_db_close(db);
  fx_rm(path);
}

/* The float 2^60 and the integer 1 << 60, apart in format 3 (written by
 * different Luas), are one key now: the upgrade fails naming them. */
static void test_refuses_format3_keys_that_become_one(void) {
  char path[4200];
  df_value pk[2], sk[2];
  unsigned long before;
  int code;
  df_db *db;
  fx_fresh(path, sizeof path);
  pk[0] = pk[1] = fx_str("p");
  sk[0] = fx_float(1152921504606846976.0);
  sk[1] = fx_int(1152921504606846976LL);
  if (!CHECK(write_old(path, 3, pk, sk, 2) == 0)) return;
  before = raw_digest(path, "items");
  db = open_db(path, 0, &code);
  CHECK_EQ_INT(code, DF_EVALIDATION);
  CHECK(strstr(df_db_errmsg(db), "1152921504606846976 (float)") != NULL);
  CHECK(strstr(df_db_errmsg(db), "cannot upgrade the database from format 3") !=
        NULL);
  df_db_close(db);
  CHECK_EQ_UINT(raw_digest(path, "items"), before);
  db = open_db(path, 1, &code);
  CHECK_EQ_INT(code, DF_EVERSION);
  df_db_close(db);
  fx_rm(path);
}

/* A process killed while upgrading leaves format 1 or format 2, whole. */
static void test_killed_upgrade(void) {
  enum { BIG = 20000 };
  static df_value pk[BIG], sk[BIG];
  static char names[BIG][12];
  char path[4200];
  size_t i;
  int round, upgraded = 0, interrupted = 0;
  long took = 0; /* microseconds of one whole upgrade */
  for (i = 0; i < BIG; i++) {
    snprintf(names[i], sizeof names[i], "p%zu", i % 97);
    pk[i] = fx_str(names[i]);
    sk[i] = i % 3 ? fx_int((int64_t)i) : fx_float((double)i + 0.5);
  }
  srand((unsigned)time(NULL));
  for (round = 0; round < 8; round++) {
    pid_t child;
    int status, code;
    df_db *db;
    df_check_report rep;
    struct timespec t0, t1;
    fx_fresh(path, sizeof path);
    if (!CHECK(write_old(path, 1, pk, sk, BIG) == 0)) return;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    child = fork();
    if (child == 0) {
      db = open_db(path, 0, &code);
      _exit(code == DF_OK ? 0 : 1);
    }
    if (round == 0) { /* a whole upgrade, measured */
      waitpid(child, &status, 0);
      clock_gettime(CLOCK_MONOTONIC, &t1);
      took = (long)((t1.tv_sec - t0.tv_sec) * 1000000L +
                    (t1.tv_nsec - t0.tv_nsec) / 1000);
      CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    } else { /* killed at random within twice that */
      usleep((useconds_t)(rand() % (2 * took + 1)));
      kill(child, SIGKILL);
      waitpid(child, &status, 0);
      if (WIFSIGNALED(status))
        interrupted++;
      else
        upgraded++;
    }
    db = open_db(path, 0, &code);
    if (!CHECK(code == DF_OK)) {
      fprintf(stderr, "  %s\n", df_db_errmsg(db));
      df_db_close(db);
      continue;
    }
    CHECK_EQ_INT(df_db_check(db, &rep), DF_OK);
    CHECK_EQ_UINT(rep.items, BIG);
    CHECK_EQ_UINT(rep.index_entries, BIG);
    CHECK(rep.bad_items == 0 && rep.missing_index == 0 && rep.stale_index == 0);
    for (i = 0; i < BIG; i += 997) {
      df_key key = fx_key(pk[i], sk[i]);
      const void *it;
      size_t len;
      CHECK_EQ_INT(df_db_get(db, &key, 0, &it, &len), DF_OK);
    }
    df_db_close(db);
    fx_rm(path);
  }
  fprintf(stderr,
          "killed upgrades (%d items, one takes %ld ms): %d interrupted, %d "
          "finished first\n",
          BIG, took / 1000, interrupted, upgraded);
}

int main(void) {
  if (!fx_root_make("test-upgrade")) return 2;
  RUN_TEST(test_upgrades_in_place);
  RUN_TEST(test_refuses_keys_that_become_one);
  RUN_TEST(test_upgrades_format3_floats);
  RUN_TEST(test_refuses_format3_keys_that_become_one);
  RUN_TEST(test_killed_upgrade);
  fx_root_remove();
  return check_done("test_upgrade");
}
