/*
 * test_oom.c -- out-of-memory tests of every public C entry point
 * (SQLite's method), built against the fault-injection core
 * (-DDF_FAULT_INJECTION, see tests/reliability.mk).
 *
 * For each scenario and for n = 1, 2, 3, ...: set the database up, make
 * the nth allocation of the core fail (df_test_fail_alloc), run the
 * scenario, and check that
 *  - the call returned DF_ENOMEM or another clean error code -- or DF_OK
 *    when the failure was one the call can absorb, with a correct result;
 *  - a failed write changed nothing, a successful one everything (the
 *    items are read back and compared);
 *  - the same handle still works (a put and a get, no stuck writer lock);
 *  - after closing every handle no allocation of the core is live (the
 *    core's own count; LeakSanitizer also watches under `make asan`).
 * The loop ends at the first n that no allocation of the scenario reaches.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

#define N_ITEMS 40

static char dir[256];
static long fault_points, failed_clean, absorbed;

/* Item bytes built before any fault is armed (plain malloc, so that the
 * test's own buffers neither fail nor count as the core's). */
typedef struct bytes {
  unsigned char *p;
  size_t len;
} bytes;
static bytes updated[N_ITEMS]; /* (0, sk) with v = sk + 1000 */
static bytes scratch_item;     /* (9, 1) with v = 4242 */
static bytes ttl_item;         /* (0, 0) with v = 0, ttl = 10 */
static bytes expr_item;        /* {a = 1, name = "abc"} */
static bytes ddb_names;        /* {"#n": "name"} */
static bytes ddb_values;       /* {":v": 1, ":s": "abc", ":l": [1]} */

static bytes keep(df_buf *b) {
  bytes x;
  x.len = b->len;
  x.p = malloc(b->len);
  if (x.p == NULL || b->failed) exit(2);
  memcpy(x.p, b->p, b->len);
  df__buf_free(b);
  return x;
}

/* ------------------------------------------------------------- helpers */

static void rm_dir(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

static const df_index_def indexes[] = {
    {"by_g", DF_GSI, "g", "SK", DF_PROJ_ALL, NULL, 0, 0},
    {"by_n", DF_LSI, NULL, "n", DF_PROJ_KEYS, NULL, 0, 0},
};

/* 0: no index, 1: the GSI, 2: the GSI and the LSI */
static df_schema schema(int n_indexes) {
  df_schema s;
  memset(&s, 0, sizeof s);
  s.pk = "PK";
  s.sk = "SK";
  s.ttl_attr = "ttl";
  s.indexes = n_indexes ? indexes : NULL;
  s.n_indexes = (size_t)n_indexes;
  return s;
}

static int open_db(const df_schema *s, df_db **db) {
  df_open_options o;
  memset(&o, 0, sizeof o);
  o.schema = s;
  o.sync = DF_SYNC_OFF; /* durability is not what is tested here */
  o.map_size = (size_t)1 << 20;
  o.stream = 1; /* the change log on, with a small retention: trimmed */
  o.stream_keep = 25;
  return df_db_open(dir, &o, db);
}

/* Item {PK = "p<pk>", SK = sk, g = "g<sk%3>", n = sk, v = v, pad = ...}. */
static void make_item(df_buf *b, int pk, int sk, long v) {
  char p[16], g[16];
  static const char pad[200] = {0};
  snprintf(p, sizeof p, "p%d", pk);
  snprintf(g, sizeof g, "g%d", sk % 3);
  df__buf_reset(b);
  df__mp_put_map(b, 6);
  df__mp_put_str(b, "PK", 2);
  df__mp_put_str(b, p, strlen(p));
  df__mp_put_str(b, "SK", 2);
  df__mp_put_int(b, sk);
  df__mp_put_str(b, "g", 1);
  df__mp_put_str(b, g, strlen(g));
  df__mp_put_str(b, "n", 1);
  df__mp_put_int(b, sk);
  df__mp_put_str(b, "v", 1);
  df__mp_put_int(b, v);
  df__mp_put_str(b, "pad", 3);
  df__mp_put_bin(b, pad, (size_t)(sk * 7) % sizeof pad);
}

static df_key key_of(int pk, int sk, char *buf, size_t cap) {
  df_key k;
  memset(&k, 0, sizeof k);
  snprintf(buf, cap, "p%d", pk);
  k.pk.type = DF_TSTR;
  k.pk.s = buf;
  k.pk.n = strlen(buf);
  k.sk.type = DF_TINT;
  k.sk.i = sk;
  return k;
}

/* The "v" of item (pk, sk), or -1 when absent, -2 on a read error. */
static long read_v(df_db *db, int pk, int sk) {
  char buf[16];
  df_key k = key_of(pk, sk, buf, sizeof buf);
  const void *item;
  size_t len;
  df_value v;
  int rc = df_db_get(db, &k, 0, &item, &len);
  if (rc == DF_ENOTFOUND) return -1;
  if (rc != DF_OK) return -2;
  if (df__mp_map_find(item, len, "v", 1, &v, NULL, NULL) != 1 ||
      v.type != DF_TINT)
    return -2;
  return (long)v.i;
}

/* The database holds exactly items (0, sk) for sk < N_ITEMS with v = sk
 * (+ `delta` for the ones in [lo, hi)), except missing ones in [dlo, dhi). */
static int db_state_is(df_db *db, int lo, int hi, long delta, int dlo,
                       int dhi) {
  int sk;
  for (sk = 0; sk < N_ITEMS; sk++) {
    long want = sk + (sk >= lo && sk < hi ? delta : 0);
    if (sk >= dlo && sk < dhi) want = -1;
    if (read_v(db, 0, sk) != want) return 0;
  }
  return 1;
}

static int fill(df_db *db) {
  df_buf b;
  int sk, rc = DF_OK;
  df__buf_init(&b);
  for (sk = 0; sk < N_ITEMS && rc == DF_OK; sk++) {
    make_item(&b, 0, sk, sk);
    rc = df_db_put(db, b.p, b.len, 0);
  }
  df__buf_free(&b);
  return rc;
}

/* A fresh database with the standard items, closed again. */
static void fresh_db(int with_indexes) {
  df_schema s = schema(with_indexes);
  df_db *db = NULL;
  rm_dir();
  if (open_db(&s, &db) != DF_OK || fill(db) != DF_OK) {
    fprintf(stderr, "setup failed: %s\n", df_db_errmsg(db));
    exit(2);
  }
  df_db_close(db);
}

/* The handle still works: a write and a read of a scratch item. */
static int still_usable(df_db *db) {
  if (df_db_put(db, scratch_item.p, scratch_item.len, 0) != DF_OK) return 0;
  if (read_v(db, 9, 1) != 4242) return 0;
  {
    char buf[16];
    df_key k = key_of(9, 1, buf, sizeof buf);
    int found = 0;
    if (df_db_delete(db, &k, 0, &found) != DF_OK || !found) return 0;
  }
  return 1;
}

/* ----------------------------------------------------------- the loop */

typedef struct scenario {
  const char *name;
  int with_indexes; /* schema() level the database is created with */
  /* Runs with the fault armed; returns the code of the call under test.
   * *db is the open handle (opened by the loop unless run opens it). */
  int (*run)(df_db **db);
  /* Checks the database after run returned `code`. */
  int (*state_ok)(df_db *db, int code);
  int opens; /* run opens the handle itself */
} scenario;

static int is_clean_error(int code) {
  return code == DF_ENOMEM || code == DF_EIO || code == DF_ERETRY;
}

static void run_scenario(const scenario *sc) {
  long n, points = 0;
  for (n = 1; n < 100000; n++) {
    df_db *db = NULL;
    df_schema s = schema(sc->with_indexes);
    int code, fired;
    fresh_db(sc->with_indexes);
    if (df__test_alloc_live() != 0) {
      fprintf(stderr, "%s: %ld allocations live before the run\n", sc->name,
              df__test_alloc_live());
      CHECK(0);
      return;
    }
    if (!sc->opens && open_db(&s, &db) != DF_OK) {
      CHECK(0);
      return;
    }
    df_test_fail_alloc(n);
    code = sc->run(&db);
    fired = df__test_alloc_fired();
    df_test_fail_alloc(0);
    if (!fired) {
      /* every allocation of the scenario has been failed once */
      if (!CHECK(code == DF_OK))
        fprintf(stderr, "  %s without a fault: %s (%s)\n", sc->name,
                df_errname(code), db ? df_db_errmsg(db) : "");
      CHECK(db != NULL && sc->state_ok(db, code));
      df_db_close(db);
      CHECK_EQ_INT(df__test_alloc_live(), 0);
      break;
    }
    points++;
    if (code == DF_OK) {
      absorbed++;
    } else {
      failed_clean++;
      if (!CHECK(is_clean_error(code)))
        fprintf(stderr, "  %s, allocation %ld: %s (%s)\n", sc->name, n,
                df_errname(code), db ? df_db_errmsg(db) : "");
    }
    if (sc->opens && code != DF_OK) {
      /* a failed open: the handle (if any) only holds the message */
      df_db_close(db);
      db = NULL;
      if (!CHECK(open_db(&s, &db) == DF_OK)) {
        fprintf(stderr, "  %s, allocation %ld: reopen failed: %s\n", sc->name,
                n, df_db_errmsg(db));
        df_db_close(db);
        continue;
      }
    }
    if (!CHECK(sc->state_ok(db, code)))
      fprintf(stderr, "  %s, allocation %ld (%s): wrong database state\n",
              sc->name, n, df_errname(code));
    if (!CHECK(still_usable(db)))
      fprintf(stderr, "  %s, allocation %ld (%s): handle unusable: %s\n",
              sc->name, n, df_errname(code), df_db_errmsg(db));
    df_db_close(db);
    if (!CHECK(df__test_alloc_live() == 0)) {
      fprintf(stderr, "  %s, allocation %ld: %ld allocations leaked\n",
              sc->name, n, df__test_alloc_live());
      return;
    }
  }
  printf("%-22s %4ld allocation points failed one by one\n", sc->name, points);
  fault_points += points;
}

/* ---------------------------------------------------------- scenarios */

static int intact(df_db *db, int code) {
  (void)code;
  return db_state_is(db, 0, 0, 0, 0, 0);
}

/* open: creating a new database (with indexes and TTL) */
static int run_open_new(df_db **db) {
  df_schema s = schema(2);
  rm_dir();
  return open_db(&s, db);
}
static int state_open_new(df_db *db, int code) {
  const df_schema *s = df_db_schema(db);
  unsigned id;
  (void)code;
  /* created now or by the reopen after the failure: empty, full schema */
  return s && s->n_indexes == 2 && df_db_index_find(db, "by_g", &id) == 0 &&
         read_v(db, 0, 0) == -1;
}

/* open: an existing database, adding a GSI (backfilled) */
static int run_open_existing(df_db **db) {
  df_schema s = schema(1);
  return open_db(&s, db);
}

/* one-call put of an existing key with a new value */
static int run_put(df_db **db) {
  return df_db_put(*db, updated[5].p, updated[5].len, 0);
}
static int state_put(df_db *db, int code) {
  return code == DF_OK ? db_state_is(db, 5, 6, 1000, 0, 0) : intact(db, 0);
}

static int run_get(df_db **db) {
  char buf[16];
  df_key k = key_of(0, 7, buf, sizeof buf);
  const void *item;
  size_t len;
  df_value v;
  int rc = df_db_get(*db, &k, 0, &item, &len);
  if (rc != DF_OK) return rc;
  if (df__mp_map_find(item, len, "v", 1, &v, NULL, NULL) != 1 || v.i != 7)
    return DF_EINVAL; /* a wrong answer is not a clean failure */
  return DF_OK;
}

static int run_delete(df_db **db) {
  char buf[16];
  df_key k = key_of(0, 3, buf, sizeof buf);
  int found = 0, rc = df_db_delete(*db, &k, 0, &found);
  if (rc == DF_OK && !found) return DF_EINVAL;
  return rc;
}
static int state_delete(df_db *db, int code) {
  return code == DF_OK ? db_state_is(db, 0, 0, 0, 3, 4) : intact(db, 0);
}

/* A write transaction with events: 10 puts, a get, 2 deletes, a commit.
 * All of it or none of it. */
static int run_txn(df_db **db) {
  df_txn *t = NULL;
  int rc, sk;
  char buf[16];
  rc = df_txn_begin(*db, DF_TXN_WRITE | DF_TXN_EVENTS, 0, &t);
  for (sk = 10; sk < 20 && rc == DF_OK; sk++) {
    const void *old = NULL;
    size_t old_len = 0;
    rc = df_txn_put(t, updated[sk].p, updated[sk].len, &old, &old_len);
    if (rc == DF_OK && old == NULL) rc = DF_EINVAL;
  }
  if (rc == DF_OK) {
    df_key k = key_of(0, 12, buf, sizeof buf);
    const void *item;
    size_t len;
    df_value v;
    rc = df_txn_get(t, &k, &item, &len);
    if (rc == DF_OK &&
        (df__mp_map_find(item, len, "v", 1, &v, NULL, NULL) != 1 ||
         v.i != 1012))
      rc = DF_EINVAL;
  }
  for (sk = 30; sk < 32 && rc == DF_OK; sk++) {
    df_key k = key_of(0, sk, buf, sizeof buf);
    int found = 0;
    rc = df_txn_delete(t, &k, &found, NULL, NULL);
    if (rc == DF_OK && !found) rc = DF_EINVAL;
  }
  if (rc == DF_OK) rc = df_txn_commit(t);
  if (rc == DF_OK && df_txn_event_count(t) != 12) rc = DF_EINVAL;
  df_txn_free(t);
  return rc;
}
static int state_txn(df_db *db, int code) {
  return code == DF_OK ? db_state_is(db, 10, 20, 1000, 30, 32) : intact(db, 0);
}

/* A read transaction: begin, three gets. */
static int run_read_txn(df_db **db) {
  df_txn *t = NULL;
  int rc = df_txn_begin(*db, DF_TXN_READ, 0, &t), sk;
  char buf[16];
  for (sk = 0; sk < 3 && rc == DF_OK; sk++) {
    df_key k = key_of(0, sk, buf, sizeof buf);
    const void *item;
    size_t len;
    rc = df_txn_get(t, &k, &item, &len);
  }
  if (rc == DF_OK) rc = df_txn_commit(t);
  df_txn_free(t);
  return rc;
}

/* Set-up of the purge scenario: item (0, 0) expires at 10. */
static int run_purge(df_db **db) {
  return df_db_put(*db, ttl_item.p, ttl_item.len, 0);
}

/* The purge itself, run with the fault armed (purge_scenario). */
static int purge_now(df_db *db) {
  df_txn *t = NULL;
  size_t count = 0;
  int rc = df_txn_begin(db, DF_TXN_WRITE | DF_TXN_EVENTS, 100, &t);
  if (rc == DF_OK) rc = df_txn_purge_expired(t, 0, &count);
  if (rc == DF_OK) rc = df_txn_commit(t);
  if (rc == DF_OK && count != 1) rc = DF_EINVAL;
  df_txn_free(t);
  return rc;
}

/* Every page of a filtered scan, then a query of one partition. */
static int run_pages(df_db **db) {
  df_page *page = NULL;
  df_expr *e = NULL;
  df_query q;
  char err[128];
  const char *src = "n >= 5 and g != \"g1\"";
  size_t total = 0;
  int rc;
  const void *nk = NULL;
  size_t nklen = 0;
  unsigned char next[600];
  rc = df_page_new(&page);
  if (rc == DF_OK) rc = df_expr_compile(src, strlen(src), &e, err, sizeof err);
  memset(&q, 0, sizeof q);
  q.filter = e;
  while (rc == DF_OK) {
    rc = df_query_page(*db, &q, 7, 0, page);
    if (rc != DF_OK) break;
    total += df_page_count(page);
    df_page_next_key(page, &nk, &nklen);
    if (nk == NULL) break;
    if (nklen > sizeof next) rc = DF_EINVAL;
    if (rc == DF_OK) memcpy(next, nk, nklen);
    q.start_after = next;
    q.start_after_len = nklen;
  }
  /* n in 5..39 (35 items) without the 11 of them with n % 3 == 1 */
  if (rc == DF_OK && total != 24) rc = DF_EINVAL;
  if (rc == DF_OK) {
    memset(&q, 0, sizeof q);
    q.has_pk = 1;
    q.pk.type = DF_TSTR;
    q.pk.s = "p0";
    q.pk.n = 2;
    q.cond = DF_COND_BETWEEN;
    q.lo.type = q.hi.type = DF_TINT;
    q.lo.i = 3;
    q.hi.i = 9;
    q.reverse = 1;
    rc = df_query_page(*db, &q, 100, 0, page);
    if (rc == DF_OK && df_page_count(page) != 7) rc = DF_EINVAL;
  }
  df_expr_free(e);
  df_page_free(page);
  return rc;
}

static int run_stat(df_db **db) {
  df_stat st;
  int rc = df_db_stat(*db, &st);
  if (rc == DF_OK && st.items != N_ITEMS) rc = DF_EINVAL;
  return rc;
}

/* Compiling (and evaluating) expressions that use every construct. */
static int run_expr(df_db **db) {
  static const char *srcs[] = {
      "a == 1 and (b.c[2] != \"x\" or not exists(d)) and e in [1, 2.5, "
      "\"s\", true, null]",
      "begins_with(name, 'ab') or contains(tags, \"t\") or size(s) > 3",
      "`odd name`.x =~ /^[a-z]+$/i and y <= -1e300 and z >= "
      "18446744073709551615",
  };
  size_t i;
  int rc = DF_OK;
  (void)db;
  for (i = 0; i < sizeof srcs / sizeof srcs[0] && rc == DF_OK; i++) {
    df_expr *e = NULL;
    char err[128];
    rc = df_expr_compile(srcs[i], strlen(srcs[i]), &e, err, sizeof err);
    if (rc == DF_OK && df_expr_eval(e, expr_item.p, expr_item.len) < 0)
      rc = DF_EINVAL;
    df_expr_free(e);
  }
  return rc;
}

/* DynamoDB expressions: names and values, a condition, a key condition,
 * a projection applied, an update compiled and applied. */
static int run_ddb(df_db **db) {
  static const unsigned char key[] = {0x81, 0xa1, 'k', 0x01};
  static const char *keys[] = {"k"};
  const char *cond =
      "#n = :s AND (a BETWEEN :v AND :v OR contains(l, :v)) "
      "AND NOT attribute_exists(zz) AND a IN (:v, :s)";
  const char *upd =
      "SET a = a + :v, l = list_append(if_not_exists(l, :l), "
      ":l), #n = :s REMOVE zz";
  df_ddb_args *a = NULL;
  df_expr *e = NULL;
  df_projection *pr = NULL;
  df_update *u = NULL;
  df_key_condition kc;
  const void *out;
  size_t olen;
  char err[300];
  int rc;
  (void)db;
  rc = df_ddb_args_new(ddb_names.p, ddb_names.len, ddb_values.p, ddb_values.len,
                       &a, err, sizeof err);
  if (rc == DF_OK)
    rc = df_ddb_condition(a, DF_DDB_FILTER, cond, strlen(cond), &e, err,
                          sizeof err);
  if (rc == DF_OK && df_expr_eval(e, expr_item.p, expr_item.len) != 1)
    rc = DF_EINVAL;
  if (rc == DF_OK)
    rc = df_ddb_key_condition(a, "k = :v AND begins_with(#n, :s)", 30, "k",
                              "name", &kc, err, sizeof err);
  if (rc == DF_OK)
    rc = df_ddb_projection(a, "#n, l[0]", 8, &pr, err, sizeof err);
  if (rc == DF_OK)
    rc = df_projection_apply(pr, expr_item.p, expr_item.len, &out, &olen);
  if (rc == DF_OK) rc = df_ddb_update(a, upd, strlen(upd), &u, err, sizeof err);
  if (rc == DF_OK)
    rc = df_update_apply(u, expr_item.p, expr_item.len, key, sizeof key, keys,
                         1, &out, &olen, err, sizeof err);
  if (rc == DF_OK) rc = df_ddb_args_check_unused(a, err, sizeof err);
  df_update_free(u);
  df_projection_free(pr);
  df_expr_free(e);
  df_ddb_args_free(a);
  return rc;
}

static int run_check(df_db **db) {
  df_check_report r;
  int rc = df_db_check(*db, &r);
  if (rc == DF_OK && (r.items != N_ITEMS || r.bad_items || r.missing_index ||
                      r.stale_index || r.missing_expiry || r.stale_expiry))
    rc = DF_EINVAL;
  return rc;
}

/* Every record of the change log, in batches of 7. */
static int run_stream(df_db **db) {
  df_stream *st = NULL;
  uint64_t after = 0, first, last, seen = 0;
  int rc = df_stream_new(&st);
  while (rc == DF_OK) {
    size_t i, n;
    rc = df_stream_read(*db, after, 7, 0, st);
    if (rc != DF_OK) break;
    n = df_stream_count(st);
    for (i = 0; i < n && rc == DF_OK; i++) {
      df_stream_record rec;
      rc = df_stream_record_get(st, i, &rec);
      if (rc == DF_OK &&
          rec.event.seq != (seen ? after + i + 1 : rec.event.seq))
        rc = DF_EINVAL;
    }
    seen += n;
    if (df_stream_next(st) == after) break;
    after = df_stream_next(st);
  }
  if (rc == DF_OK) {
    df_stream_bounds(st, &first, &last);
    if (seen != 25 || last != N_ITEMS) rc = DF_EINVAL; /* 40 puts, 25 kept */
  }
  df_stream_free(st);
  return rc;
}

/* Dropping the GSI: all of it or nothing. */
static int run_drop(df_db **db) {
  return df_db_drop_index(*db, "by_g");
}
static int state_drop(df_db *db, int code) {
  unsigned id;
  df_stat st;
  int found = df_db_index_find(db, "by_g", &id) == DF_OK;
  if (df_db_stat(db, &st) != DF_OK || !intact(db, 0)) return 0;
  if (code == DF_OK) return !found && st.index_entries == 0;
  return found && st.index_entries == N_ITEMS;
}

static int state_any(df_db *db, int code) {
  (void)code;
  return intact(db, 0);
}

static const scenario scenarios[] = {
    {"df_db_open (create)", 2, run_open_new, state_open_new, 1},
    {"df_db_open (indexes)", 0, run_open_existing, intact, 1},
    {"df_db_put", 0, run_put, state_put, 0},
    {"df_db_get", 0, run_get, state_any, 0},
    {"df_db_delete", 0, run_delete, state_delete, 0},
    {"df_txn_* (write)", 2, run_txn, state_txn, 0},
    {"df_txn_* (read)", 0, run_read_txn, state_any, 0},
    {"df_query_page", 0, run_pages, state_any, 0},
    {"df_db_stat", 0, run_stat, state_any, 0},
    {"df_expr_compile", 0, run_expr, state_any, 0},
    {"df_ddb_* and df_update_*", 0, run_ddb, state_any, 0},
    {"df_db_check", 2, run_check, state_any, 0},
    {"df_stream_read", 0, run_stream, state_any, 0},
    {"df_db_drop_index", 1, run_drop, state_drop, 0},
};

/* The purge needs an expired item written before the fault is armed. */
static int run_purge_armed(df_db **db) {
  return purge_now(*db);
}
static int state_purge(df_db *db, int code) {
  return code == DF_OK ? db_state_is(db, 0, 0, 0, 0, 1) : intact(db, 0);
}

static void purge_scenario(void) {
  long n, points = 0;
  for (n = 1; n < 100000; n++) {
    df_db *db = NULL;
    df_schema s = schema(0);
    int code, fired;
    fresh_db(0);
    if (open_db(&s, &db) != DF_OK || run_purge(&db) != DF_OK) {
      CHECK(0);
      df_db_close(db);
      return;
    }
    df_test_fail_alloc(n);
    code = run_purge_armed(&db);
    fired = df__test_alloc_fired();
    df_test_fail_alloc(0);
    if (!fired) {
      CHECK_EQ_INT(code, DF_OK);
      CHECK(state_purge(db, code));
      df_db_close(db);
      CHECK_EQ_INT(df__test_alloc_live(), 0);
      break;
    }
    points++;
    if (code == DF_OK)
      absorbed++;
    else
      failed_clean++;
    CHECK(code == DF_OK || is_clean_error(code));
    /* (0, 0) was put again with v = 0 and a TTL: present or purged */
    CHECK(state_purge(db, code));
    CHECK(still_usable(db));
    df_db_close(db);
    CHECK_EQ_INT(df__test_alloc_live(), 0);
  }
  printf("%-22s %4ld allocation points failed one by one\n",
         "df_txn_purge_expired", points);
  fault_points += points;
}

static void prepare(void) {
  df_buf b;
  int sk;
  for (sk = 0; sk < N_ITEMS; sk++) {
    df__buf_init(&b);
    make_item(&b, 0, sk, sk + 1000);
    updated[sk] = keep(&b);
  }
  df__buf_init(&b);
  make_item(&b, 9, 1, 4242);
  scratch_item = keep(&b);
  df__buf_init(&b);
  df__mp_put_map(&b, 4);
  df__mp_put_str(&b, "PK", 2);
  df__mp_put_str(&b, "p0", 2);
  df__mp_put_str(&b, "SK", 2);
  df__mp_put_int(&b, 0);
  df__mp_put_str(&b, "v", 1);
  df__mp_put_int(&b, 0);
  df__mp_put_str(&b, "ttl", 3);
  df__mp_put_int(&b, 10);
  ttl_item = keep(&b);
  df__buf_init(&b);
  df__mp_put_map(&b, 2);
  df__mp_put_str(&b, "a", 1);
  df__mp_put_int(&b, 1);
  df__mp_put_str(&b, "name", 4);
  df__mp_put_str(&b, "abc", 3);
  expr_item = keep(&b);
  df__buf_init(&b);
  df__mp_put_map(&b, 1);
  df__mp_put_str(&b, "#n", 2);
  df__mp_put_str(&b, "name", 4);
  ddb_names = keep(&b);
  df__buf_init(&b);
  df__mp_put_map(&b, 3);
  df__mp_put_str(&b, ":v", 2);
  df__mp_put_int(&b, 1);
  df__mp_put_str(&b, ":s", 2);
  df__mp_put_str(&b, "abc", 3);
  df__mp_put_str(&b, ":l", 2);
  df__mp_put_array(&b, 1);
  df__mp_put_int(&b, 1);
  ddb_values = keep(&b);
}

static void release(void) {
  int sk;
  for (sk = 0; sk < N_ITEMS; sk++) free(updated[sk].p);
  free(scratch_item.p);
  free(ttl_item.p);
  free(expr_item.p);
  free(ddb_names.p);
  free(ddb_values.p);
}

int main(void) {
  size_t i;
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/dynafile-oom-%ld", tmp && *tmp ? tmp : "/tmp",
           (long)getpid());
  CHECK_EQ_INT(df_test_fail_alloc(0), 0); /* the fault-injection build */
  prepare();
  /* each scenario is one test (RUN_TEST's bookkeeping, with an argument) */
  for (i = 0; i <= sizeof scenarios / sizeof scenarios[0]; i++) {
    long before = check_failed_n;
    const char *name = i < sizeof scenarios / sizeof scenarios[0]
                           ? scenarios[i].name
                           : "df_txn_purge_expired";
    if (i < sizeof scenarios / sizeof scenarios[0])
      run_scenario(&scenarios[i]);
    else
      purge_scenario();
    if (check_failed_n == before) {
      check_tests_passed++;
    } else {
      check_tests_failed++;
      fprintf(stderr, "test %s failed\n", name);
    }
  }
  rm_dir();
  release();
  printf("%ld allocation points failed: %ld clean errors, %ld absorbed\n",
         fault_points, failed_clean, absorbed);
  CHECK(fault_points > 50);
  return check_done("test_oom");
}
