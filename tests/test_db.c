/*
 * test_db.c -- tests of the C API in dynafile.h against real databases:
 * open (create, reopen, schema checks, bad paths), put/get/delete, one-call
 * and transaction forms, queries in pages (start_after, reverse, key
 * conditions, starts_with, limits), key validation errors, the environment
 * registry, map growth, long (hashed) partition keys and their collision
 * check.  Each test works in a fresh directory under $TMPDIR.
 *
 * Items are built with the core's MessagePack writer (internal.h); the
 * collision test also writes a crafted entry straight into LMDB (store.h),
 * the only way to make two partition-key values share a hash on purpose.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "dynafile.h"
#include "fixture.h"
#include "handle.h"
#include "txn.h"

/* ------------------------------------------------------------ helpers */

static df_key skey(const char *pk, const char *sk) {
  return fx_key(fx_str(pk), sk ? fx_str(sk) : fx_none());
}

/* {PK = pk, SK = sk, n = n} into b (reset first); sk NULL: no SK. */
static void item3(df_buf *b, const char *pk, const char *sk, int64_t n) {
  fx_item(b, "PK", fx_str(pk), "SK", sk ? fx_str(sk) : fx_none(), "n",
          fx_int(n), FX_END);
}

static const df_schema pk_sk = {"PK", "SK", NULL, NULL, 0};
static const df_schema pk_only = {"PK", NULL, NULL, NULL, 0};

static df_db *open_new(const char *path, const df_schema *s) {
  df_open_options o = fx_options(s, 0, DF_SYNC_FULL);
  return fx_open(path, &o);
}

/* Put {PK, SK, n} with a one-call put; returns the code. */
static int put3(df_db *db, const char *pk, const char *sk, int64_t n) {
  df_buf b;
  int rc;
  df__buf_init(&b);
  item3(&b, pk, sk, n);
  rc = df_db_put(db, b.p, b.len, 0);
  df__buf_free(&b);
  return rc;
}

/* Run a query to the end in pages of `per_page`, collecting each item's n
 * into out (at most cap); returns the count and the number of pages. */
static size_t run_query(df_db *db, df_query *q, size_t per_page, int64_t *out,
                        size_t cap, size_t *pages) {
  df_page *page = NULL;
  size_t count = 0, i;
  unsigned char resume[1024];
  size_t np = 0;
  df_query qq = *q;
  if (df_page_new(&page) != DF_OK) return 0;
  for (;;) {
    const void *nk;
    size_t nklen;
    int rc = df_query_page(db, &qq, per_page, 0, page);
    if (!CHECK(rc == DF_OK)) {
      fprintf(stderr, "  query: %s\n", df_db_errmsg(db));
      break;
    }
    np++;
    for (i = 0; i < df_page_count(page); i++) {
      const void *it;
      size_t len;
      df_page_item(page, i, &it, &len);
      if (count < cap) out[count] = fx_attr_int(it, len, "n");
      count++;
    }
    df_page_next_key(page, &nk, &nklen);
    if (nk == NULL) break;
    if (!CHECK(nklen <= sizeof resume)) break;
    memcpy(resume, nk, nklen);
    qq.start_after = resume;
    qq.start_after_len = nklen;
    if (np > 10000) break;
  }
  df_page_free(page);
  if (pages) *pages = np;
  return count;
}

/* -------------------------------------------------------------- tests */

static void test_open_create_and_reopen(void) {
  char path[4200], json[4300];
  df_db *db, *db2 = NULL;
  df_open_options o;
  const df_schema *s;
  struct stat st;
  df_schema other = {"P", "S", NULL, NULL, 0};
  int rc;

  fx_fresh(path, sizeof path);
  /* a new database needs a schema */
  memset(&o, 0, sizeof o);
  rc = df_db_open(path, &o, &db2);
  CHECK_EQ_INT(rc, DF_EVALIDATION);
  CHECK(strstr(df_db_errmsg(db2), "schema") != NULL);
  df_db_close(db2);

  db = open_new(path, &pk_sk);
  if (!db) return;
  snprintf(json, sizeof json, "%s/meta.json", path);
  CHECK(stat(json, &st) == 0 && st.st_size > 0);
  CHECK_EQ_INT(put3(db, "a", "1", 1), DF_OK);
  df_db_close(db);

  /* reopen without a schema: the stored one is used */
  memset(&o, 0, sizeof o);
  db = NULL;
  rc = df_db_open(path, &o, &db);
  CHECK_EQ_INT(rc, DF_OK);
  s = df_db_schema(db);
  CHECK(s && strcmp(s->pk, "PK") == 0 && s->sk && strcmp(s->sk, "SK") == 0);
  {
    df_key k = skey("a", "1");
    const void *it;
    size_t len;
    CHECK_EQ_INT(df_db_get(db, &k, 0, &it, &len), DF_OK);
  }
  df_db_close(db);

  /* a different schema is refused, naming the difference */
  o.schema = &other;
  db = NULL;
  rc = df_db_open(path, &o, &db);
  CHECK_EQ_INT(rc, DF_ESCHEMA);
  CHECK(strlen(df_db_errmsg(db)) > 0);
  df_db_close(db);
  fx_rm(path);
}

static void test_open_bad_paths(void) {
  char path[4200], file[4300];
  df_db *db = NULL;
  df_open_options o;
  FILE *f;
  int rc;

  fx_fresh(path, sizeof path);
  CHECK(mkdir(path, 0755) == 0);
  snprintf(file, sizeof file, "%s/plainfile", path);
  f = fopen(file, "w");
  CHECK(f != NULL);
  if (f) fclose(f);

  memset(&o, 0, sizeof o);
  o.schema = &pk_sk;
  rc = df_db_open(file, &o, &db);
  CHECK_EQ_INT(rc, DF_EIO);
  CHECK(strstr(df_db_errmsg(db), "not a directory") != NULL);
  df_db_close(db);

  /* a directory holding other files is not taken over */
  db = NULL;
  rc = df_db_open(path, &o, &db);
  CHECK_EQ_INT(rc, DF_ECORRUPT);
  df_db_close(db);

  /* an empty path and a bad sync mode are invalid arguments */
  db = NULL;
  CHECK_EQ_INT(df_db_open("", &o, &db), DF_EINVAL);
  df_db_close(db);
  db = NULL;
  o.sync = (df_sync)42;
  CHECK_EQ_INT(df_db_open(path, &o, &db), DF_EINVAL);
  df_db_close(db);
  fx_rm(path);
}

static void test_put_get_delete(void) {
  char path[4200], buf[64];
  df_db *db;
  df_key k;
  const void *it;
  size_t len;
  int found = -1;

  db = open_new(fx_fresh(path, sizeof path), &pk_sk);
  if (!db) return;
  CHECK_EQ_INT(put3(db, "user#1", "profile", 7), DF_OK);
  k = skey("user#1", "profile");
  CHECK_EQ_INT(df_db_get(db, &k, 0, &it, &len), DF_OK);
  CHECK_EQ_INT(fx_attr_int(it, len, "n"), 7);
  CHECK_EQ_STR(fx_attr_str(it, len, "PK", buf, sizeof buf), "user#1");

  /* replace */
  CHECK_EQ_INT(put3(db, "user#1", "profile", 8), DF_OK);
  CHECK_EQ_INT(df_db_get(db, &k, 0, &it, &len), DF_OK);
  CHECK_EQ_INT(fx_attr_int(it, len, "n"), 8);

  /* a missing item */
  k = skey("user#1", "nothing");
  CHECK_EQ_INT(df_db_get(db, &k, 0, &it, &len), DF_ENOTFOUND);

  /* delete, and delete again (not an error) */
  k = skey("user#1", "profile");
  CHECK_EQ_INT(df_db_delete(db, &k, 0, &found), DF_OK);
  CHECK_EQ_INT(found, 1);
  CHECK_EQ_INT(df_db_delete(db, &k, 0, &found), DF_OK);
  CHECK_EQ_INT(found, 0);
  CHECK_EQ_INT(df_db_get(db, &k, 0, &it, &len), DF_ENOTFOUND);
  df_db_close(db);
  fx_rm(path);
}

static void test_transactions(void) {
  char path[4200];
  df_db *db;
  df_txn *t = NULL, *t2 = NULL;
  df_buf b;
  df_key k;
  const void *it, *old;
  size_t len, old_len;
  int rc, i;

  db = open_new(fx_fresh(path, sizeof path), &pk_sk);
  if (!db) return;
  df__buf_init(&b);

  /* a transaction sees its own writes; an aborted one leaves nothing */
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_WRITE, 0, &t), DF_OK);
  for (i = 0; i < 10; i++) {
    char sk[16];
    snprintf(sk, sizeof sk, "s%02d", i);
    item3(&b, "p", sk, i);
    CHECK_EQ_INT(df_txn_put(t, b.p, b.len, NULL, NULL), DF_OK);
  }
  k = skey("p", "s03");
  CHECK_EQ_INT(df_txn_get(t, &k, &it, &len), DF_OK);
  CHECK_EQ_INT(fx_attr_int(it, len, "n"), 3);
  /* a second write transaction in this thread is refused, not a hang */
  rc = df_txn_begin(db, DF_TXN_WRITE, 0, &t2);
  CHECK_EQ_INT(rc, DF_EBUSY);
  df_txn_free(t); /* abort */
  CHECK_EQ_INT(df_db_get(db, &k, 0, &it, &len), DF_ENOTFOUND);

  /* committed, with the replaced item handed back */
  t = NULL;
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_WRITE, 0, &t), DF_OK);
  item3(&b, "p", "x", 1);
  CHECK_EQ_INT(df_txn_put(t, b.p, b.len, &old, &old_len), DF_OK);
  CHECK(old == NULL);
  item3(&b, "p", "x", 2);
  CHECK_EQ_INT(df_txn_put(t, b.p, b.len, &old, &old_len), DF_OK);
  CHECK(old != NULL && fx_attr_int(old, old_len, "n") == 1);
  CHECK_EQ_INT(df_txn_commit(t), DF_OK);
  df_txn_free(t);
  k = skey("p", "x");
  CHECK_EQ_INT(df_db_get(db, &k, 0, &it, &len), DF_OK);
  CHECK_EQ_INT(fx_attr_int(it, len, "n"), 2);

  /* a read transaction cannot write */
  t = NULL;
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_READ, 0, &t), DF_OK);
  CHECK_EQ_INT(df_txn_put(t, b.p, b.len, NULL, NULL), DF_EREADONLY);
  df_txn_free(t);
  df__buf_free(&b);
  df_db_close(db);
  fx_rm(path);
}

/* df_txn_write_batch: puts and deletes applied in items-key order with
 * a later op on one key after an earlier one; a bad item refuses the
 * batch before anything is written, naming its place. */
static void test_write_batch(void) {
  char path[4200];
  df_db *db;
  df_txn *t = NULL;
  df_buf bufs[6], bad;
  df_batch_op ops[6];
  df_key kdel, kgone;
  const void *it;
  size_t len, at = 99;
  int i;

  db = open_new(fx_fresh(path, sizeof path), &pk_sk);
  if (!db) return;
  for (i = 0; i < 6; i++) df__buf_init(&bufs[i]);
  df__buf_init(&bad);
  CHECK_EQ_INT(put3(db, "p", "old", 1), DF_OK);
  CHECK_EQ_INT(put3(db, "p", "gone", 1), DF_OK);

  /* z, a, a again (later wins), delete "gone", b, then a delete of the
   * first a's key is NOT in the batch: order by key, ties by position */
  item3(&bufs[0], "p", "z", 10);
  item3(&bufs[1], "p", "a", 11);
  item3(&bufs[2], "p", "a", 12);
  item3(&bufs[4], "p", "b", 14);
  item3(&bufs[5], "p", "old", 15);
  kgone = skey("p", "gone");
  memset(ops, 0, sizeof ops);
  for (i = 0; i < 6; i++) {
    ops[i].item = bufs[i].p;
    ops[i].len = bufs[i].len;
  }
  ops[3].item = NULL;
  ops[3].key = &kgone;
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_WRITE, 0, &t), DF_OK);
  CHECK_EQ_INT(df_txn_write_batch(t, ops, 6, &at), DF_OK);
  CHECK_EQ_INT(df_txn_write_batch(t, ops, 0, NULL), DF_OK);
  CHECK_EQ_INT(df_txn_write_batch(t, NULL, 2, NULL), DF_EINVAL);
  CHECK_EQ_INT(df_txn_commit(t), DF_OK);
  df_txn_free(t);
  kdel = skey("p", "a");
  CHECK_EQ_INT(df_db_get(db, &kdel, 0, &it, &len), DF_OK);
  CHECK_EQ_INT(fx_attr_int(it, len, "n"), 12);
  kdel = skey("p", "old");
  CHECK_EQ_INT(df_db_get(db, &kdel, 0, &it, &len), DF_OK);
  CHECK_EQ_INT(fx_attr_int(it, len, "n"), 15);
  kdel = skey("p", "z");
  CHECK_EQ_INT(df_db_get(db, &kdel, 0, &it, &len), DF_OK);
  CHECK_EQ_INT(df_db_get(db, &kgone, 0, &it, &len), DF_ENOTFOUND);

  /* a put then a delete then a put of one key, in that order */
  item3(&bufs[0], "q", "k", 1);
  item3(&bufs[2], "q", "k", 3);
  kdel = skey("q", "k");
  memset(ops, 0, sizeof ops);
  ops[0].item = bufs[0].p;
  ops[0].len = bufs[0].len;
  ops[1].key = &kdel;
  ops[2].item = bufs[2].p;
  ops[2].len = bufs[2].len;
  ops[3].key = &kdel;
  t = NULL;
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_WRITE, 0, &t), DF_OK);
  CHECK_EQ_INT(df_txn_write_batch(t, ops, 3, NULL), DF_OK);
  CHECK_EQ_INT(df_txn_commit(t), DF_OK);
  df_txn_free(t);
  CHECK_EQ_INT(df_db_get(db, &kdel, 0, &it, &len), DF_OK);
  CHECK_EQ_INT(fx_attr_int(it, len, "n"), 3);
  t = NULL;
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_WRITE, 0, &t), DF_OK);
  CHECK_EQ_INT(df_txn_write_batch(t, ops, 4, NULL), DF_OK);
  CHECK_EQ_INT(df_txn_commit(t), DF_OK);
  df_txn_free(t);
  CHECK_EQ_INT(df_db_get(db, &kdel, 0, &it, &len), DF_ENOTFOUND);

  /* an item without its partition key at place 2: nothing of the batch
   * is written, the transaction goes on */
  df__mp_put_map(&bad, 1);
  df__mp_put_str(&bad, "x", 1);
  df__mp_put_int(&bad, 1);
  item3(&bufs[0], "r", "1", 1);
  item3(&bufs[1], "r", "2", 2);
  memset(ops, 0, sizeof ops);
  ops[0].item = bufs[0].p;
  ops[0].len = bufs[0].len;
  ops[1].item = bufs[1].p;
  ops[1].len = bufs[1].len;
  ops[2].item = bad.p;
  ops[2].len = bad.len;
  ops[3].key = NULL; /* neither: refused too, but later */
  t = NULL;
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_WRITE, 0, &t), DF_OK);
  CHECK_EQ_INT(df_txn_write_batch(t, ops, 4, &at), DF_EVALIDATION);
  CHECK_EQ_UINT(at, 2);
  CHECK(strstr(df_txn_errmsg(t), "PK") != NULL);
  CHECK_EQ_INT(df_txn_write_batch(t, ops, 2, &at), DF_OK);
  ops[2] = ops[3];
  CHECK_EQ_INT(df_txn_write_batch(t, ops, 3, &at), DF_EINVAL);
  CHECK_EQ_UINT(at, 2);
  CHECK_EQ_INT(df_txn_commit(t), DF_OK);
  df_txn_free(t);
  kdel = skey("r", "2");
  CHECK_EQ_INT(df_db_get(db, &kdel, 0, &it, &len), DF_OK);

  for (i = 0; i < 6; i++) df__buf_free(&bufs[i]);
  df__buf_free(&bad);
  df_db_close(db);
  fx_rm(path);
}

/* 5 partitions x 30 items, n = partition * 100 + i, sk "i%03d". */
static void fill_partitions(df_db *db) {
  df_txn *t = NULL;
  df_buf b;
  int p, i;
  df__buf_init(&b);
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_WRITE, 0, &t), DF_OK);
  for (p = 0; p < 5; p++)
    for (i = 29; i >= 0; i--) {
      char pk[16], sk[16];
      snprintf(pk, sizeof pk, "part%d", p);
      snprintf(sk, sizeof sk, "i%03d", i);
      item3(&b, pk, sk, p * 100 + i);
      CHECK_EQ_INT(df_txn_put(t, b.p, b.len, NULL, NULL), DF_OK);
    }
  CHECK_EQ_INT(df_txn_commit(t), DF_OK);
  df_txn_free(t);
  df__buf_free(&b);
}

static void test_queries(void) {
  char path[4200];
  df_db *db;
  df_query q;
  int64_t got[200];
  size_t n, pages, i;
  int ordered;

  db = open_new(fx_fresh(path, sizeof path), &pk_sk);
  if (!db) return;
  fill_partitions(db);

  /* a whole partition, in sort-key order, in pages of 7 */
  memset(&q, 0, sizeof q);
  q.has_pk = 1;
  q.pk = fx_str("part2");
  n = run_query(db, &q, 7, got, 200, &pages);
  CHECK_EQ_UINT(n, 30);
  CHECK_EQ_UINT(pages, 5);
  ordered = 1;
  for (i = 0; i < n && i < 30; i++) ordered &= got[i] == 200 + (int64_t)i;
  CHECK(ordered);

  /* reverse */
  q.reverse = 1;
  n = run_query(db, &q, 4, got, 200, NULL);
  CHECK_EQ_UINT(n, 30);
  ordered = 1;
  for (i = 0; i < n && i < 30; i++) ordered &= got[i] == 229 - (int64_t)i;
  CHECK(ordered);

  /* starts_with: start at the sort key, inclusive, in the direction of
   * travel */
  q.reverse = 0;
  q.has_start = 1;
  q.start = fx_str("i010");
  n = run_query(db, &q, 100, got, 200, NULL);
  CHECK_EQ_UINT(n, 20);
  CHECK_EQ_INT(got[0], 210);
  q.reverse = 1;
  n = run_query(db, &q, 100, got, 200, NULL);
  CHECK_EQ_UINT(n, 11);
  CHECK_EQ_INT(got[0], 210);
  CHECK_EQ_INT(got[10], 200);
  q.has_start = 0;
  q.reverse = 0;

  /* key conditions */
  q.cond = DF_COND_BETWEEN;
  q.lo = fx_str("i005");
  q.hi = fx_str("i009");
  n = run_query(db, &q, 100, got, 200, NULL);
  CHECK_EQ_UINT(n, 5);
  CHECK_EQ_INT(got[0], 205);
  CHECK_EQ_INT(got[4], 209);
  q.cond = DF_COND_LT;
  q.lo = fx_str("i003");
  n = run_query(db, &q, 100, got, 200, NULL);
  CHECK_EQ_UINT(n, 3);
  q.cond = DF_COND_GT;
  q.lo = fx_str("i027");
  n = run_query(db, &q, 100, got, 200, NULL);
  CHECK_EQ_UINT(n, 2);
  CHECK_EQ_INT(got[0], 228);
  q.cond = DF_COND_BEGINS_WITH;
  q.lo = fx_str("i01");
  n = run_query(db, &q, 3, got, 200, NULL);
  CHECK_EQ_UINT(n, 10);
  CHECK_EQ_INT(got[0], 210);
  q.cond = DF_COND_EQ;
  q.lo = fx_str("i017");
  n = run_query(db, &q, 100, got, 200, NULL);
  CHECK_EQ_UINT(n, 1);
  CHECK_EQ_INT(got[0], 217);
  q.cond = DF_COND_NONE;

  /* limit stops after that many matches */
  q.limit = 4;
  {
    df_page *page = NULL;
    const void *nk;
    size_t nklen;
    CHECK_EQ_INT(df_page_new(&page), DF_OK);
    CHECK_EQ_INT(df_query_page(db, &q, 100, 0, page), DF_OK);
    CHECK_EQ_UINT(df_page_count(page), 4);
    df_page_next_key(page, &nk, &nklen);
    CHECK(nk != NULL);
    df_page_free(page);
  }
  q.limit = 0;

  /* a missing partition is empty */
  q.pk = fx_str("part9");
  n = run_query(db, &q, 100, got, 200, NULL);
  CHECK_EQ_UINT(n, 0);

  /* a scan visits everything once, and segments split it exactly */
  memset(&q, 0, sizeof q);
  n = run_query(db, &q, 11, got, 200, NULL);
  CHECK_EQ_UINT(n, 150);
  {
    size_t total = 0;
    unsigned k;
    for (k = 0; k < 3; k++) {
      q.segment = k;
      q.segments = 3;
      total += run_query(db, &q, 11, got, 200, NULL);
    }
    CHECK_EQ_UINT(total, 150);
  }
  df_db_close(db);
  fx_rm(path);
}

static void test_key_errors(void) {
  char path[4200];
  df_db *db;
  df_buf b;
  df_key k;
  df_query q;
  df_page *page = NULL;
  const void *it;
  size_t len;
  static char sk1024[1025], sk1025[1026];
  static char pk2048[2049], pk2049[2050];

  db = open_new(fx_fresh(path, sizeof path), &pk_sk);
  if (!db) return;
  df__buf_init(&b);

  /* an item without its sort key, a key of a wrong type, a non-map */
  item3(&b, "a", NULL, 1);
  CHECK_EQ_INT(df_db_put(db, b.p, b.len, 0), DF_EVALIDATION);
  CHECK(strstr(df_db_errmsg(db), "SK") != NULL);
  df__buf_reset(&b);
  df__mp_put_map(&b, 2);
  df__mp_put_str(&b, "PK", 2);
  df__mp_put_bool(&b, 1);
  df__mp_put_str(&b, "SK", 2);
  df__mp_put_str(&b, "x", 1);
  CHECK_EQ_INT(df_db_put(db, b.p, b.len, 0), DF_EVALIDATION);
  CHECK(strstr(df_db_errmsg(db), "PK") != NULL);
  df__buf_reset(&b);
  df__mp_put_map(&b, 2);
  df__mp_put_str(&b, "PK", 2);
  df__mp_put_float(&b, 0.0 / 0.0);
  df__mp_put_str(&b, "SK", 2);
  df__mp_put_str(&b, "x", 1);
  CHECK_EQ_INT(df_db_put(db, b.p, b.len, 0), DF_EVALIDATION);
  CHECK(strstr(df_db_errmsg(db), "NaN") != NULL);
  df__buf_reset(&b);
  df__mp_put_array(&b, 0);
  CHECK_EQ_INT(df_db_put(db, b.p, b.len, 0), DF_EVALIDATION);
  CHECK_EQ_INT(df_db_put(db, "\xc1", 1, 0), DF_EVALIDATION);

  /* sort keys: 1024 bytes fit, 1025 do not (DF_SK_MAX, DynamoDB's) */
  memset(sk1024, 'x', 1024);
  memset(sk1025, 'y', 1025);
  CHECK_EQ_INT(put3(db, "a", sk1024, 1), DF_OK);
  CHECK_EQ_INT(put3(db, "a", sk1025, 1), DF_EVALIDATION);
  CHECK(strstr(df_db_errmsg(db), "too long") != NULL);
  k = skey("a", sk1024);
  CHECK_EQ_INT(df_db_get(db, &k, 0, &it, &len), DF_OK);
  sk1024[1023] = 'z'; /* same prefix, another value: not found */
  CHECK_EQ_INT(df_db_get(db, &k, 0, &it, &len), DF_ENOTFOUND);
  k = skey("a", sk1025);
  CHECK_EQ_INT(df_db_get(db, &k, 0, &it, &len), DF_EVALIDATION);

  /* partition keys: 2048 bytes fit (stored hashed), 2049 do not */
  memset(pk2048, 'p', 2048);
  memset(pk2049, 'q', 2049);
  CHECK_EQ_INT(put3(db, pk2048, "s", 5), DF_OK);
  k = skey(pk2048, "s");
  CHECK_EQ_INT(df_db_get(db, &k, 0, &it, &len), DF_OK);
  CHECK_EQ_INT(fx_attr_int(it, len, "n"), 5);
  CHECK_EQ_INT(put3(db, pk2049, "s", 5), DF_EVALIDATION);
  CHECK(strstr(df_db_errmsg(db), "too long") != NULL);

  /* a query with a bad partition key or a NaN bound */
  CHECK_EQ_INT(df_page_new(&page), DF_OK);
  memset(&q, 0, sizeof q);
  q.has_pk = 1;
  q.pk = fx_str(pk2049);
  CHECK_EQ_INT(df_query_page(db, &q, 10, 0, page), DF_EVALIDATION);
  q.pk = fx_str("a");
  q.cond = DF_COND_LT;
  memset(&q.lo, 0, sizeof q.lo);
  q.lo.type = DF_TFLOAT;
  q.lo.f = 0.0 / 0.0;
  CHECK_EQ_INT(df_query_page(db, &q, 10, 0, page), DF_EVALIDATION);
  df_page_free(page);
  df__buf_free(&b);
  df_db_close(db);
  fx_rm(path);
}

static void test_pk_only_and_numbers(void) {
  char path[4200];
  df_db *db;
  df_buf b;
  df_key k;
  const void *it;
  size_t len;
  df_query q;
  int64_t got[16];
  size_t n;

  db = open_new(fx_fresh(path, sizeof path), &pk_only);
  if (!db) return;
  df__buf_init(&b);
  item3(&b, "solo", NULL, 3);
  CHECK_EQ_INT(df_db_put(db, b.p, b.len, 0), DF_OK);
  memset(&k, 0, sizeof k);
  k.pk = fx_str("solo");
  CHECK_EQ_INT(df_db_get(db, &k, 0, &it, &len), DF_OK);
  CHECK_EQ_INT(fx_attr_int(it, len, "n"), 3);
  /* a number partition key: 2 (int) and 2.0 (float) are the same key */
  df__buf_reset(&b);
  df__mp_put_map(&b, 2);
  df__mp_put_str(&b, "PK", 2);
  df__mp_put_int(&b, 2);
  df__mp_put_str(&b, "n", 1);
  df__mp_put_int(&b, 9);
  CHECK_EQ_INT(df_db_put(db, b.p, b.len, 0), DF_OK);
  memset(&k, 0, sizeof k);
  k.pk.type = DF_TFLOAT;
  k.pk.f = 2.0;
  CHECK_EQ_INT(df_db_get(db, &k, 0, &it, &len), DF_OK);
  CHECK_EQ_INT(fx_attr_int(it, len, "n"), 9);
  memset(&q, 0, sizeof q);
  q.has_pk = 1;
  q.pk = fx_int(2);
  n = run_query(db, &q, 10, got, 16, NULL);
  CHECK_EQ_UINT(n, 1);
  df__buf_free(&b);
  df_db_close(db);
  fx_rm(path);
}

static void test_registry_sharing(void) {
  char path[4200], alias[4300];
  df_db *a, *b = NULL;
  df_open_options o;
  df_key k;
  const void *it;
  size_t len;

  a = open_new(fx_fresh(path, sizeof path), &pk_sk);
  if (!a) return;
  /* the same directory through another spelling of its path */
  snprintf(alias, sizeof alias, "%s/.", path);
  memset(&o, 0, sizeof o);
  CHECK_EQ_INT(df_db_open(alias, &o, &b), DF_OK);
  CHECK_EQ_STR(df_db_id(a), df_db_id(b));
  CHECK(a->env == b->env);
  CHECK_EQ_INT(a->env->refs, 2);
  CHECK_EQ_INT(put3(a, "x", "y", 1), DF_OK);
  k = skey("x", "y");
  CHECK_EQ_INT(df_db_get(b, &k, 0, &it, &len), DF_OK);
  /* closing one handle leaves the other working */
  df_db_close(a);
  CHECK_EQ_INT(put3(b, "x", "z", 2), DF_OK);
  CHECK_EQ_INT(df_db_get(b, &k, 0, &it, &len), DF_OK);
  df_db_close(b);
  fx_rm(path);
}

static void test_map_growth(void) {
  char path[4200];
  df_db *db = NULL;
  df_open_options o;
  df_stat st;
  df_buf b;
  df_txn *t = NULL;
  int i, j, rc = DF_OK;
  char payload[1000];

  memset(&o, 0, sizeof o);
  o.schema = &pk_sk;
  o.map_size = 1 << 20; /* 1 MiB */
  o.sync = DF_SYNC_OFF;
  CHECK_EQ_INT(df_db_open(fx_fresh(path, sizeof path), &o, &db), DF_OK);
  memset(payload, 'z', sizeof payload);
  df__buf_init(&b);
  /* about 20 MiB: one-call puts and transactions of 500 items */
  for (i = 0; i < 2000 && rc == DF_OK; i++) {
    char sk[16];
    snprintf(sk, sizeof sk, "%06d", i);
    df__buf_reset(&b);
    df__mp_put_map(&b, 3);
    df__mp_put_str(&b, "PK", 2);
    df__mp_put_str(&b, "one", 3);
    df__mp_put_str(&b, "SK", 2);
    df__mp_put_str(&b, sk, strlen(sk));
    df__mp_put_str(&b, "p", 1);
    df__mp_put_str(&b, payload, sizeof payload);
    rc = df_db_put(db, b.p, b.len, 0);
  }
  CHECK_EQ_INT(rc, DF_OK);
  for (j = 0; j < 36; j++) {
    int tries = 0;
    do {
      rc = df_txn_begin(db, DF_TXN_WRITE, 0, &t);
      for (i = 0; i < 500 && rc == DF_OK; i++) {
        char sk[16];
        snprintf(sk, sizeof sk, "%03d-%04d", j, i);
        df__buf_reset(&b);
        df__mp_put_map(&b, 3);
        df__mp_put_str(&b, "PK", 2);
        df__mp_put_str(&b, "many", 4);
        df__mp_put_str(&b, "SK", 2);
        df__mp_put_str(&b, sk, strlen(sk));
        df__mp_put_str(&b, "p", 1);
        df__mp_put_str(&b, payload, sizeof payload);
        rc = df_txn_put(t, b.p, b.len, NULL, NULL);
      }
      if (rc == DF_OK) rc = df_txn_commit(t);
      df_txn_free(t);
      t = NULL;
    } while (rc == DF_ERETRY && ++tries < 10);
    if (!CHECK(rc == DF_OK)) break;
  }
  CHECK_EQ_INT(df_db_stat(db, &st), DF_OK);
  CHECK_EQ_UINT(st.items, 2000 + 36 * 500);
  CHECK(st.map_size > 16u << 20);
  df__buf_free(&b);
  df_db_close(db);
  fx_rm(path);
}

/* Two long partition-key values whose hashes collide cannot be made by
 * chance (128 + 64 hash bits), so the test plants one: an item carrying
 * value B stored under the key that value A hashes to. */
static void test_hashed_partition_collision(void) {
  char path[4200], pk_a[300], pk_b[300];
  df_db *db;
  df_buf b;
  df_key k;
  df_query q;
  const void *it;
  size_t len, n, klen;
  unsigned char key[DF_KEY_MAX];
  char err[256];
  int64_t got[8];
  df_txn *txn;

  memset(pk_a, 'a', 299);
  pk_a[299] = '\0';
  memset(pk_b, 'b', 299);
  pk_b[299] = '\0';
  db = open_new(fx_fresh(path, sizeof path), &pk_sk);
  if (!db) return;
  df__buf_init(&b);

  /* plant {PK = B, SK = "s1"} under A's partition */
  k = skey(pk_a, "s1");
  CHECK_EQ_INT(
      df__item_key(&db->env->schema.s, &k, key, &klen, err, sizeof err), DF_OK);
  CHECK(key[8] == DF_TAG_HASHED);
  item3(&b, pk_b, "s1", 66);
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_WRITE, 0, &txn), DF_OK);
  CHECK_EQ_INT(
      df__kv_put(&df__txn_write(txn)->kv, DF_SUB_ITEMS, key, klen, b.p, b.len),
      DF_OK);
  CHECK_EQ_INT(df_txn_commit(txn), DF_OK);
  df_txn_free(txn);

  /* a put of value A into that partition is refused, clearly */
  CHECK_EQ_INT(put3(db, pk_a, "s2", 1), DF_EVALIDATION);
  CHECK(strstr(df_db_errmsg(db), "hash") != NULL);
  /* reads under A do not return B's item */
  CHECK_EQ_INT(df_db_get(db, &k, 0, &it, &len), DF_ENOTFOUND);
  memset(&q, 0, sizeof q);
  q.has_pk = 1;
  q.pk = fx_str(pk_a);
  n = run_query(db, &q, 10, got, 8, NULL);
  CHECK_EQ_UINT(n, 0);
  /* a delete under A does not delete B's item */
  {
    int found = -1;
    df_stat st;
    CHECK_EQ_INT(df_db_delete(db, &k, 0, &found), DF_OK);
    CHECK_EQ_INT(found, 0);
    CHECK_EQ_INT(df_db_stat(db, &st), DF_OK);
    CHECK_EQ_UINT(st.items, 1);
  }
  /* an ordinary long partition key works: put, get, query */
  CHECK_EQ_INT(put3(db, pk_b, "s1", 2), DF_OK);
  CHECK_EQ_INT(put3(db, pk_b, "s2", 3), DF_OK);
  q.pk = fx_str(pk_b);
  n = run_query(db, &q, 1, got, 8, NULL);
  CHECK_EQ_UINT(n, 2);
  CHECK_EQ_INT(got[0], 2);
  CHECK_EQ_INT(got[1], 3);
  df__buf_free(&b);
  df_db_close(db);
  fx_rm(path);
}

static void test_readonly(void) {
  char path[4200];
  df_db *db, *ro = NULL;
  df_open_options o;

  db = open_new(fx_fresh(path, sizeof path), &pk_sk);
  if (!db) return;
  CHECK_EQ_INT(put3(db, "a", "b", 1), DF_OK);
  df_db_close(db);
  memset(&o, 0, sizeof o);
  o.readonly = 1;
  CHECK_EQ_INT(df_db_open(path, &o, &ro), DF_OK);
  CHECK_EQ_INT(put3(ro, "a", "c", 1), DF_EREADONLY);
  df_db_close(ro);
  fx_rm(path);
}

/* Each rule of the core has one implementation and one message, which
 * the Lua layer shows as it is: keys, index names, the held writer, a
 * read-only handle, query operands.  The texts are pinned here. */
static void test_rule_messages(void) {
  char path[4200], pk2049[2050], sk1025[1026];
  df_db *db, *ro;
  df_key k;
  df_txn *t, *t2;
  df_query q;
  df_page *page = NULL;
  df_open_options o;
  unsigned id = 0;

  db = open_new(fx_fresh(path, sizeof path), &pk_sk);
  if (!db) return;
#define KEY_MSG(key, msg)                                  \
  do {                                                     \
    k = (key);                                             \
    CHECK_EQ_INT(df_db_key_check(db, &k), DF_EVALIDATION); \
    CHECK_EQ_STR(df_db_errmsg(db), msg);                   \
  } while (0)
  memset(pk2049, 'p', 2049);
  pk2049[2049] = '\0';
  memset(sk1025, 's', 1025);
  sk1025[1025] = '\0';
  k = skey("a", "b");
  CHECK_EQ_INT(df_db_key_check(db, &k), DF_OK);
  KEY_MSG(fx_key(fx_none(), fx_str("b")), "missing key attribute PK");
  KEY_MSG(fx_key(fx_str("a"), fx_none()), "missing key attribute SK");
  {
    df_value nan = fx_int(0), yes = fx_int(1), fn = fx_none();
    nan.type = DF_TFLOAT;
    nan.f = 0.0 / 0.0;
    yes.type = DF_TBOOL;
    fn.type = DF_TOTHER;
    fn.s = "a function";
    fn.n = 10;
    KEY_MSG(fx_key(fx_str("a"), nan), "key attribute SK must not be NaN");
    KEY_MSG(fx_key(yes, fx_str("b")),
            "key attribute PK must be a string or a number, not a boolean");
    KEY_MSG(fx_key(fn, fx_str("b")),
            "key attribute PK must be a string or a number, not a function");
  }
  KEY_MSG(fx_key(fx_str(pk2049), fx_str("b")),
          "key attribute PK is too long (2049 bytes, at most 2048)");
  KEY_MSG(fx_key(fx_str("a"), fx_str(sk1025)),
          "key attribute SK is too long (1025 bytes, at most 1024)");
  /* the same rule inside the calls that take keys */
  k = fx_key(fx_str("a"), fx_none());
  CHECK_EQ_INT(df_db_delete(db, &k, 0, NULL), DF_EVALIDATION);
  CHECK_EQ_STR(df_db_errmsg(db), "missing key attribute SK");
#undef KEY_MSG

  /* index names */
  CHECK_EQ_INT(df_db_index_find(db, "nope", &id), DF_ENOTFOUND);
  CHECK_EQ_STR(df_db_errmsg(db), "no index named nope");
  CHECK_EQ_INT(df_db_drop_index(db, "nope"), DF_ENOTFOUND);
  CHECK_EQ_STR(df_db_errmsg(db), "no index named nope");

  /* the held writer: one check, one message */
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_WRITE, 0, &t), DF_OK);
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_WRITE, 0, &t2), DF_EBUSY);
  CHECK(strncmp(df_db_errmsg(db),
                "the write transaction of this database is held by this "
                "thread",
                60) == 0);
  CHECK_EQ_INT(put3(db, "a", "b", 1), DF_EBUSY);
  df_txn_free(t);
  CHECK_EQ_INT(put3(db, "a", "b", 1), DF_OK);

  /* query operands, named as the caller named them */
  CHECK_EQ_INT(df_page_new(&page), DF_OK);
  memset(&q, 0, sizeof q);
  q.has_pk = 1;
  q.pk = fx_int(1);
  q.pk.type = DF_TBOOL;
  CHECK_EQ_INT(df_query_page(db, &q, 10, 0, page), DF_EVALIDATION);
  CHECK_EQ_STR(df_db_errmsg(db),
               "partition key must be a string or a number, not a boolean");
  q.pk = fx_str("a");
  q.cond = DF_COND_BETWEEN;
  q.lo = fx_str("a");
  q.hi = fx_none();
  CHECK_EQ_INT(df_query_page(db, &q, 10, 0, page), DF_EVALIDATION);
  CHECK_EQ_STR(df_db_errmsg(db), "missing between[2]");
  q.cond = DF_COND_BEGINS_WITH;
  q.lo = fx_int(3);
  CHECK_EQ_INT(df_query_page(db, &q, 10, 0, page), DF_EVALIDATION);
  CHECK_EQ_STR(df_db_errmsg(db), "begins_with must be a string");
  df_page_free(page);
  df_db_close(db);

  /* a read-only handle */
  o = fx_options(NULL, 0, DF_SYNC_FULL);
  o.readonly = 1;
  ro = fx_open(path, &o);
  if (ro) {
    CHECK_EQ_INT(df_txn_begin(ro, DF_TXN_WRITE, 0, &t), DF_EREADONLY);
    CHECK_EQ_STR(df_db_errmsg(ro), "the database is opened read-only");
    df_db_close(ro);
  }
  fx_rm(path);
}

/* The one retry loop: a write larger than the whole map is run again as
 * the map grows, until it fits. */
static void test_retry_until_it_fits(void) {
  char path[4200];
  df_db *db;
  df_open_options o = fx_options(&pk_sk, 0, DF_SYNC_OFF);
  df_buf b;
  static char big[1 << 20];
  df_stat st;
  o.map_size = 64 << 10; /* 64 KiB: the item needs 1 MiB */
  db = fx_open(fx_fresh(path, sizeof path), &o);
  if (!db) return;
  df__buf_init(&b);
  fx_item(&b, "PK", fx_str("big"), "SK", fx_str("one"), "blob",
          fx_bin(big, sizeof big), FX_END);
  CHECK_EQ_INT(df_db_put(db, b.p, b.len, 0), DF_OK);
  CHECK_EQ_INT(df_db_stat(db, &st), DF_OK);
  CHECK(st.map_size >= (1u << 20));
  df__buf_free(&b);
  df_db_close(db);
  fx_rm(path);
}

/* Schema changes are explicit: an open adds a GSI (also while another
 * handle of the process is open) or a first TTL attribute, but never
 * changes the TTL attribute; df_db_set_ttl does, with every derived entry
 * rebuilt. */
static void test_schema_changes(void) {
  static const df_index_def by_g = {"by_g",       DF_GSI, "g", NULL,
                                    DF_PROJ_KEYS, NULL,   0,   0};
  df_schema with_gsi = pk_sk, with_ttl = pk_sk, other_ttl = pk_sk;
  char path[4200];
  df_db *db, *db2;
  df_open_options o;
  df_check_report r;
  df_buf b;
  df_key k;
  const void *it;
  size_t len;
  unsigned id;
  int i;

  db = open_new(fx_fresh(path, sizeof path), &pk_sk);
  if (!db) return;
  df__buf_init(&b);
  for (i = 0; i < 10; i++) {
    char sk[8];
    snprintf(sk, sizeof sk, "s%d", i);
    fx_item(&b, "PK", fx_str("p"), "SK", fx_str(sk), "g", fx_str("G"), "exp",
            fx_int(100 + i), "alt", fx_int(200 + i), FX_END);
    CHECK_EQ_INT(df_db_put(db, b.p, b.len, 0), DF_OK);
  }
  /* a GSI added by a second handle while the first is open */
  with_gsi.indexes = &by_g;
  with_gsi.n_indexes = 1;
  o = fx_options(&with_gsi, 0, DF_SYNC_FULL);
  db2 = fx_open(path, &o);
  CHECK_EQ_INT(df_db_index_find(db, "by_g", &id), DF_OK);
  CHECK_EQ_INT(df_db_check(db, &r), DF_OK);
  CHECK_EQ_UINT(r.index_entries, 10);
  CHECK_EQ_UINT(r.missing_index + r.stale_index, 0);
  df_db_close(db2);

  /* a first TTL attribute at open; another one is refused */
  with_ttl.ttl_attr = "exp";
  o = fx_options(&with_ttl, 0, DF_SYNC_FULL);
  db2 = fx_open(path, &o);
  df_db_close(db2);
  k = skey("p", "s3");
  CHECK_EQ_INT(df_db_get(db, &k, 104, &it, &len), DF_ENOTFOUND);
  CHECK_EQ_INT(df_db_get(db, &k, 103, &it, &len), DF_OK);
  other_ttl.ttl_attr = "alt";
  o = fx_options(&other_ttl, 0, DF_SYNC_FULL);
  CHECK_EQ_INT(df_db_open(path, &o, &db2), DF_ESCHEMA);
  CHECK_EQ_STR(df_db_errmsg(db2),
               "schema mismatch: the database's TTL attribute is exp, not "
               "alt (an open never changes it: set_ttl does)");
  df_db_close(db2);
  CHECK_EQ_STR(df_db_schema(db)->ttl_attr, "exp");

  /* set_ttl changes it, then clears it, rebuilding what depends on it */
  CHECK_EQ_INT(df_db_set_ttl(db, "alt"), DF_OK);
  CHECK_EQ_STR(df_db_schema(db)->ttl_attr, "alt");
  CHECK_EQ_INT(df_db_get(db, &k, 150, &it, &len), DF_OK);
  CHECK_EQ_INT(df_db_get(db, &k, 204, &it, &len), DF_ENOTFOUND);
  CHECK_EQ_INT(df_db_check(db, &r), DF_OK);
  CHECK_EQ_UINT(r.expiry_entries, 10);
  CHECK_EQ_UINT(
      r.missing_expiry + r.stale_expiry + r.missing_index + r.stale_index, 0);
  CHECK_EQ_INT(df_db_set_ttl(db, "alt"), DF_OK); /* no change */
  CHECK_EQ_INT(df_db_set_ttl(db, ""), DF_EVALIDATION);
  CHECK_EQ_INT(df_db_set_ttl(db, NULL), DF_OK);
  CHECK(df_db_schema(db)->ttl_attr == NULL);
  CHECK_EQ_INT(df_db_get(db, &k, 1e12, &it, &len), DF_OK);
  CHECK_EQ_INT(df_db_check(db, &r), DF_OK);
  CHECK_EQ_UINT(r.expiry_entries, 0);
  CHECK_EQ_UINT(r.missing_index + r.stale_index, 0);
  /* reopened: the schema as last set */
  df_db_close(db);
  o = fx_options(NULL, 0, DF_SYNC_FULL);
  db = fx_open(path, &o);
  if (db) {
    CHECK(df_db_schema(db)->ttl_attr == NULL);
    CHECK_EQ_UINT(df_db_schema(db)->n_indexes, 1);
    df_db_close(db);
  }
  df__buf_free(&b);
  fx_rm(path);
}

/* An item an index cannot hold is refused before anything is written: the
 * transaction goes on, and commits what else it did. */
static void test_index_refusal_keeps_the_transaction(void) {
  static const df_index_def by_g = {"by_g",      DF_GSI, "g", NULL,
                                    DF_PROJ_ALL, NULL,   0,   0};
  df_schema s = pk_sk;
  char path[4200];
  static char long_g[3000];
  df_db *db;
  df_txn *t;
  df_buf b;
  df_stat st;
  s.indexes = &by_g;
  s.n_indexes = 1;
  db = open_new(fx_fresh(path, sizeof path), &s);
  if (!db) return;
  memset(long_g, 'g', sizeof long_g - 1);
  df__buf_init(&b);
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_WRITE, 0, &t), DF_OK);
  fx_item(&b, "PK", fx_str("p"), "SK", fx_str("bad"), "g", fx_str(long_g),
          FX_END);
  CHECK_EQ_INT(df_txn_put(t, b.p, b.len, NULL, NULL), DF_EVALIDATION);
  CHECK(strstr(df_txn_errmsg(t), "attribute g is too long for index by_g") !=
        NULL);
  fx_item(&b, "PK", fx_str("p"), "SK", fx_str("good"), "g", fx_str("x"),
          FX_END);
  CHECK_EQ_INT(df_txn_put(t, b.p, b.len, NULL, NULL), DF_OK);
  CHECK_EQ_INT(df_txn_commit(t), DF_OK);
  df_txn_free(t);
  CHECK_EQ_INT(df_db_stat(db, &st), DF_OK);
  CHECK_EQ_UINT(st.items, 1);
  CHECK_EQ_UINT(st.index_entries, 1);
  df__buf_free(&b);
  df_db_close(db);
  fx_rm(path);
}

/* A write that fails part-way dooms its transaction, and every later call
 * says which failure did: here the change-log settings are unreadable (a
 * planted malformed record), which is found after the item was written. */
static void test_doomed_transaction_says_why(void) {
  char path[4200];
  df_db *db;
  df_txn *t;
  df_buf b;
  df_stat st;
  db = open_new(fx_fresh(path, sizeof path), &pk_sk);
  if (!db) return;
  df__buf_init(&b);
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_WRITE, 0, &t), DF_OK);
  CHECK_EQ_INT(
      df__kv_put(&df__txn_write(t)->kv, DF_SUB_META, "stream", 6, "\xc1", 1),
      DF_OK);
  CHECK_EQ_INT(df_txn_commit(t), DF_OK);
  df_txn_free(t);

  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_WRITE, 0, &t), DF_OK);
  item3(&b, "a", "1", 1);
  CHECK_EQ_INT(df_txn_put(t, b.p, b.len, NULL, NULL), DF_ECORRUPT);
  CHECK_EQ_STR(df_txn_errmsg(t), "cannot read the change-log settings");
  item3(&b, "a", "2", 2);
  CHECK_EQ_INT(df_txn_put(t, b.p, b.len, NULL, NULL), DF_EIO);
  CHECK_EQ_STR(df_txn_errmsg(t),
               "the transaction can only be rolled back: an earlier write in "
               "it failed part-way (cannot read the change-log settings)");
  CHECK_EQ_INT(df_txn_commit(t), DF_EIO);
  CHECK_EQ_STR(df_txn_errmsg(t),
               "rolled back: an earlier write in the transaction failed "
               "part-way (cannot read the change-log settings)");
  df_txn_free(t);
  CHECK_EQ_INT(df_db_stat(db, &st), DF_OK);
  CHECK_EQ_UINT(st.items, 0);
  df__buf_free(&b);
  df_db_close(db);
  fx_rm(path);
}

/* DynamoDB's item size: the rules, and a handle's limit. */
static void test_item_size(void) {
  char path[4200];
  df_db *db = NULL;
  df_open_options o;
  df_buf b;
  uint64_t size;
  df_dec d;
  static char big[300];
  df__buf_init(&b);
  /* {"PK": "ab", "n": 12345, "l": [true, null], "m": {}} */
  df__mp_put_map(&b, 4);
  df__mp_put_str(&b, "PK", 2);
  df__mp_put_str(&b, "ab", 2); /* 2 + 2 */
  df__mp_put_str(&b, "n", 1);
  df__mp_put_int(&b, 12345); /* 1 + (01 23 45: 3 pairs + 1) = 1 + 4 */
  df__mp_put_str(&b, "l", 1);
  df__mp_put_array(&b, 2); /* 1 + 3 + (1 + 1) + (1 + 1) */
  df__mp_put_bool(&b, 1);
  df__mp_put_nil(&b);
  df__mp_put_str(&b, "m", 1);
  df__mp_put_map(&b, 0); /* 1 + 3 */
  CHECK_EQ_INT(df__item_size(b.p, b.len, &size), DF_OK);
  CHECK_EQ_UINT(size, 4 + (1 + 4) + (1 + 7) + (1 + 3));
  /* numbers: one byte per base-100 digit (pairs aligned on the decimal
   * point, first to last significant one), plus one, plus one when
   * negative */
  df__buf_reset(&b);
  df__mp_put_map(&b, 1);
  df__mp_put_str(&b, "x", 1);
  df__dec_parse("12345678901234567890123456789012345678", 38, &d);
  df__mp_put_dec(&b, &d); /* 19 pairs + 1 */
  CHECK_EQ_INT(df__item_size(b.p, b.len, &size), DF_OK);
  CHECK_EQ_UINT(size, 1 + 20);
  {
    static const struct {
      const char *text;
      uint64_t bytes;
    } nums[] = {{"0", 1},     {"1", 2},         {"100", 2},     {"123", 3},
                {"1010", 3},  {"0.0000001", 2}, {"1E125", 2},   {"1E-100", 2},
                {"1.5", 3},   {"15", 2},        {"3.14159", 5}, {"123456", 4},
                {"100.5", 4}, {"0.15", 2},      {"-42", 3},     {"-0", 1}};
    size_t i;
    for (i = 0; i < sizeof nums / sizeof nums[0]; i++) {
      df__buf_reset(&b);
      df__mp_put_map(&b, 1);
      df__mp_put_str(&b, "x", 1);
      CHECK_EQ_INT(df__dec_parse(nums[i].text, strlen(nums[i].text), &d), 0);
      df__mp_put_dec(&b, &d);
      CHECK_EQ_INT(df__item_size(b.p, b.len, &size), DF_OK);
      CHECK_EQ_UINT(size, 1 + nums[i].bytes);
    }
  }
  CHECK_EQ_INT(df__item_size("\x91\x01", 2, &size), DF_ECORRUPT);

  memset(&o, 0, sizeof o);
  o.schema = &pk_sk;
  o.max_item_size = 100;
  if (!CHECK(df_db_open(fx_fresh(path, sizeof path), &o, &db) == DF_OK)) {
    df_db_close(db);
    df__buf_free(&b);
    return;
  }
  memset(big, 'x', sizeof big);
  /* {"PK": "p", "SK": "s", "v": <n bytes>} is 2+1 + 2+1 + 1+n bytes */
  df__buf_reset(&b);
  df__mp_put_map(&b, 3);
  df__mp_put_str(&b, "PK", 2);
  df__mp_put_str(&b, "p", 1);
  df__mp_put_str(&b, "SK", 2);
  df__mp_put_str(&b, "s", 1);
  df__mp_put_str(&b, "v", 1);
  df__mp_put_str(&b, big, 93);
  CHECK_EQ_INT(df_db_put(db, b.p, b.len, 0), DF_OK);
  df__buf_reset(&b);
  df__mp_put_map(&b, 3);
  df__mp_put_str(&b, "PK", 2);
  df__mp_put_str(&b, "p", 1);
  df__mp_put_str(&b, "SK", 2);
  df__mp_put_str(&b, "t", 1);
  df__mp_put_str(&b, "v", 1);
  df__mp_put_str(&b, big, 94);
  CHECK_EQ_INT(df_db_put(db, b.p, b.len, 0), DF_EVALIDATION);
  CHECK(strstr(df_db_errmsg(db),
               "Item size has exceeded the maximum allowed size") != NULL);
  df_db_close(db);
  /* another handle without the limit writes it */
  o.max_item_size = 0;
  o.schema = NULL;
  CHECK_EQ_INT(df_db_open(path, &o, &db), DF_OK);
  CHECK_EQ_INT(df_db_put(db, b.p, b.len, 0), DF_OK);
  df_db_close(db);
  df__buf_free(&b);
  fx_rm(path);
}

int main(void) {
  if (!fx_root_make("test-db")) return 2;
  RUN_TEST(test_open_create_and_reopen);
  RUN_TEST(test_open_bad_paths);
  RUN_TEST(test_put_get_delete);
  RUN_TEST(test_transactions);
  RUN_TEST(test_write_batch);
  RUN_TEST(test_queries);
  RUN_TEST(test_key_errors);
  RUN_TEST(test_rule_messages);
  RUN_TEST(test_retry_until_it_fits);
  RUN_TEST(test_schema_changes);
  RUN_TEST(test_index_refusal_keeps_the_transaction);
  RUN_TEST(test_doomed_transaction_says_why);
  RUN_TEST(test_pk_only_and_numbers);
  RUN_TEST(test_registry_sharing);
  RUN_TEST(test_map_growth);
  RUN_TEST(test_hashed_partition_collision);
  RUN_TEST(test_readonly);
  RUN_TEST(test_item_size);
  fx_root_remove();
  return check_done("test_db");
}
