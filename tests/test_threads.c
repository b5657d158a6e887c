/*
 * test_threads.c -- the C core under threads: 4 writer and 4 reader
 * threads, 100,000 operations on one database, some threads sharing one
 * handle and some with their own, while the map grows from 1 MiB.
 *
 * Writers do read-modify-write transactions: each increments its own
 * counter and a shared total and writes a pair of items that always carry
 * the same version, plus one log item (so the map has to grow).  Readers
 * check, each in one snapshot, that the counters add up to the total, that
 * no pair is torn, that counters never go backwards, that the change log
 * reads in consecutive order, and that error messages and df_db_get's
 * item on a shared handle belong to the calling thread.  At the end every
 * counter equals the increments made and the log holds what was written.
 *
 * Threads never call CHECK (the harness counters are not atomic): each
 * keeps its own tally and the main thread checks the tallies.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"

#define WRITERS 4
#define READERS 4
#define WRITER_TXNS 2500 /* 4 x 2500 = 10,000 write transactions */
#define READER_OPS 22500 /* 4 x 22500 = 90,000 reads */
#define PUTS_PER_TXN 5
#define STREAM_KEEP 1000

typedef struct tally {
  long ops, fails, retries;
  char first[256];
} tally;

typedef struct worker {
  int id;
  df_db *shared; /* NULL: open an own handle */
  const char *dir;
  tally t;
} worker;

/* Count a failure; the first one is kept for the report. */
static void fail_at(tally *t, long line, const char *what, long value) {
  if (t->fails++ == 0)
    snprintf(t->first, sizeof t->first, "line %ld: %s (value %ld)", line, what,
             value);
}

/* EXPECT(tally, condition, value shown when it fails) */
#define EXPECT(t, cond, v)                                       \
  do {                                                           \
    if (!(cond)) fail_at((t), (long)__LINE__, #cond, (long)(v)); \
  } while (0)

static df_key key_of(const char *pk, df_value sk) {
  return fx_key(fx_str(pk), sk);
}

/* {PK = pk, SK = sk, n = n [, pad = 200 bytes]} */
static void item(df_buf *b, const char *pk, df_value sk, int64_t n, int pad) {
  static const char padding[200] = {0};
  fx_item(b, "PK", fx_str(pk), "SK", sk, "n", fx_int(n), "pad",
          pad ? fx_bin(padding, sizeof padding) : fx_none(), FX_END);
}

/* n of the item under key inside txn; 0 when missing, -1 on error. */
static int64_t txn_n(df_txn *t, df_key k) {
  const void *p;
  size_t n;
  int code = df_txn_get(t, &k, &p, &n);
  if (code == DF_ENOTFOUND) return 0;
  if (code != DF_OK) return -1;
  return fx_attr_int(p, n, "n");
}

/* A validation failure whose message names this thread's own number:
 * the message read back must be the thread's own. */
static void check_own_message(df_db *db, tally *t, int id) {
  char pk[DF_PK_MAX + 64];
  const void *p;
  size_t n, len = DF_PK_MAX + 1 + (size_t)id;
  char want[32];
  df_key k;
  memset(pk, 'x', len);
  pk[len] = '\0';
  k = key_of(pk, fx_int(0));
  EXPECT(t, df_db_get(db, &k, 0, &p, &n) == DF_EVALIDATION, id);
  snprintf(want, sizeof want, "(%zu bytes", len);
  EXPECT(t, strstr(df_db_errmsg(db), want) != NULL, id);
}

static void *writer_main(void *arg) {
  worker *w = arg;
  tally *t = &w->t;
  df_db *db = w->shared;
  df_buf b;
  char me[8];
  int i;
  df__buf_init(&b);
  snprintf(me, sizeof me, "w%d", w->id);
  if (db == NULL) {
    df_open_options o;
    memset(&o, 0, sizeof o);
    o.sync = DF_SYNC_OFF;
    if (df_db_open(w->dir, &o, &db) != DF_OK) {
      fail_at(t, __LINE__, "writer cannot open", w->id);
      df_db_close(db);
      return NULL;
    }
  }
  for (i = 0; i < WRITER_TXNS; i++) {
    int code;
    for (;;) {
      df_txn *x, *y = NULL;
      int64_t mine, total;
      code = df_txn_begin(db, DF_TXN_WRITE, 0, &x);
      if (code != DF_OK) break;
      mine = txn_n(x, key_of("ctr", fx_str(me)));
      total = txn_n(x, key_of("ctr", fx_str("total")));
      EXPECT(t, mine == i, mine);
      EXPECT(t, total >= mine, total);
      item(&b, "ctr", fx_str(me), mine + 1, 0);
      code = df_txn_put(x, b.p, b.len, NULL, NULL);
      if (code == DF_OK) {
        item(&b, "ctr", fx_str("total"), total + 1, 0);
        code = df_txn_put(x, b.p, b.len, NULL, NULL);
      }
      if (code == DF_OK) {
        item(&b, "pair", fx_int(w->id * 2), mine + 1, 0);
        code = df_txn_put(x, b.p, b.len, NULL, NULL);
      }
      if (code == DF_OK) {
        item(&b, "pair", fx_int(w->id * 2 + 1), mine + 1, 0);
        code = df_txn_put(x, b.p, b.len, NULL, NULL);
      }
      if (code == DF_OK) {
        item(&b, "log", fx_int(w->id * 1000000 + i), i, 1);
        code = df_txn_put(x, b.p, b.len, NULL, NULL);
      }
      if (i % 50 == 0) /* a second write in this thread: refused */
        EXPECT(t, df_txn_begin(db, DF_TXN_WRITE, 0, &y) == DF_EBUSY, i);
      df_txn_free(y);
      if (code == DF_OK || code == DF_ERETRY) {
        int c2 = df_txn_commit(x);
        if (code == DF_OK) code = c2;
      }
      df_txn_free(x);
      if (code != DF_ERETRY) break;
      t->retries++;
    }
    EXPECT(t, code == DF_OK, code);
    if (code != DF_OK) break;
    t->ops++;
    if (w->shared && i % 100 == 0) check_own_message(db, t, w->id);
  }
  df__buf_free(&b);
  if (w->shared == NULL) df_db_close(db);
  return NULL;
}

static void *reader_main(void *arg) {
  worker *w = arg;
  tally *t = &w->t;
  df_db *db = w->shared;
  df_page *page = NULL;
  df_stream *st = NULL;
  int64_t seen[WRITERS] = {0}, seen_total = 0;
  uint64_t after = 0;
  int i;
  if (db == NULL) {
    df_open_options o;
    memset(&o, 0, sizeof o);
    if (df_db_open(w->dir, &o, &db) != DF_OK) {
      fail_at(t, __LINE__, "reader cannot open", w->id);
      df_db_close(db);
      return NULL;
    }
  }
  if (df_page_new(&page) != DF_OK || df_stream_new(&st) != DF_OK) {
    fail_at(t, __LINE__, "out of memory", w->id);
    goto out;
  }
  for (i = 0; i < READER_OPS; i++) {
    int op = (i + w->id) % 5;
    if (op == 0) { /* one counter through df_db_get: never goes back */
      int k = i % WRITERS;
      char name[8];
      const void *p;
      size_t n;
      df_key key;
      snprintf(name, sizeof name, "w%d", k);
      key = key_of("ctr", fx_str(name));
      int code = df_db_get(db, &key, 0, &p, &n);
      if (code == DF_OK) {
        int64_t v = fx_attr_int(p, n, "n");
        df_value sk;
        EXPECT(t, v >= seen[k], v);
        if (v > seen[k]) seen[k] = v;
        /* the borrowed copy is this thread's, whatever others read */
        sched_yield();
        EXPECT(t,
               df__mp_map_find(p, n, "SK", 2, &sk, NULL, NULL) == 1 &&
                   sk.type == DF_TSTR && sk.n == strlen(name) &&
                   memcmp(sk.s, name, sk.n) == 0,
               k);
      } else {
        EXPECT(t, code == DF_ENOTFOUND, code);
      }
    } else if (op == 1) { /* one snapshot: counters add up to the total */
      df_txn *x;
      int code = df_txn_begin(db, DF_TXN_READ, 0, &x);
      EXPECT(t, code == DF_OK, code);
      if (code == DF_OK) {
        int64_t sum = 0, total = txn_n(x, key_of("ctr", fx_str("total")));
        int k;
        for (k = 0; k < WRITERS; k++) {
          char name[8];
          snprintf(name, sizeof name, "w%d", k);
          sum += txn_n(x, key_of("ctr", fx_str(name)));
        }
        EXPECT(t, sum == total, total);
        EXPECT(t, total >= seen_total, total);
        seen_total = total;
        df_txn_free(x);
      }
    } else if (op == 2) { /* a page of the pairs: none torn */
      df_query q;
      size_t j, n;
      int64_t v[WRITERS * 2];
      memset(&q, 0, sizeof q);
      memset(v, 0xff, sizeof v);
      q.has_pk = 1;
      q.pk = fx_str("pair");
      int code = df_query_page(db, &q, 100, 0, page);
      EXPECT(t, code == DF_OK, code);
      n = df_page_count(page);
      for (j = 0; j < n; j++) {
        const void *p;
        size_t len;
        df_value sk;
        df_page_item(page, j, &p, &len);
        if (df__mp_map_find(p, len, "SK", 2, &sk, NULL, NULL) == 1 &&
            sk.type == DF_TINT && sk.i >= 0 && sk.i < WRITERS * 2)
          v[sk.i] = fx_attr_int(p, len, "n");
      }
      for (j = 0; j < WRITERS; j++) EXPECT(t, v[2 * j] == v[2 * j + 1], j);
    } else if (op == 3) { /* the change log reads in consecutive order */
      int code = df_stream_read(db, after, 64, 0, st);
      size_t j, n = df_stream_count(st);
      uint64_t first, last, prev = after;
      EXPECT(t, code == DF_OK, code);
      df_stream_bounds(st, &first, &last);
      for (j = 0; j < n; j++) {
        df_stream_record r;
        EXPECT(t, df_stream_record_get(st, j, &r) == DF_OK, j);
        EXPECT(
            t,
            r.event.seq == prev + 1 || (prev < first && r.event.seq == first),
            (long)r.event.seq);
        EXPECT(t, r.event.action == DF_EV_PUT && r.event.new_item != NULL,
               r.event.action);
        prev = r.event.seq;
      }
      EXPECT(t, last == 0 || last - first + 1 <= STREAM_KEEP,
             (long)(last - first));
      after = df_stream_next(st);
      /* jump to the end now and then so the next read starts near it */
      if (i % 7 == 3 && last > 32) after = last - 32;
    } else if (w->shared) {
      check_own_message(db, t, 10 + w->id);
    }
    t->ops++;
  }
out:
  df_page_free(page);
  df_stream_free(st);
  if (w->shared == NULL) df_db_close(db);
  return NULL;
}

/* Opens and closes handles on the directory while the others run: the
 * environment registry under churn. */
typedef struct churner {
  const char *dir;
  volatile int *stop;
  tally t;
} churner;

static void *churn_main(void *arg) {
  churner *c = arg;
  while (!__atomic_load_n(c->stop, __ATOMIC_ACQUIRE)) {
    df_db *db;
    df_open_options o;
    const void *p;
    size_t n;
    df_key k = key_of("ctr", fx_str("total"));
    memset(&o, 0, sizeof o);
    if (df_db_open(c->dir, &o, &db) != DF_OK) {
      fail_at(&c->t, __LINE__, "churn open failed", 0);
    } else {
      int code = df_db_get(db, &k, 0, &p, &n);
      EXPECT(&c->t, code == DF_OK || code == DF_ENOTFOUND, code);
      c->t.ops++;
    }
    df_db_close(db);
  }
  return NULL;
}

static void report(const char *who, int id, const tally *t) {
  if (t->fails)
    fprintf(stderr, "%s %d: %ld failures, first: %s\n", who, id, t->fails,
            t->first);
}

static char dir[4200];

static void test_four_writers_and_four_readers(void) {
  df_open_options o;
  df_db *db;
  worker ws[WRITERS], rs[READERS];
  churner ch;
  pthread_t wt[WRITERS], rt[READERS], ct;
  volatile int stop = 0;
  long ops = 0, retries = 0;
  int i;
  df_stat st;

  {
    static const df_schema schema = {"PK", "SK", NULL, NULL, 0};
    o = fx_options(&schema, 1, DF_SYNC_OFF);
  }
  o.map_size = 1 << 20; /* grows several times during the run */
  o.stream = 1;
  o.stream_keep = STREAM_KEEP;
  if ((db = fx_open(dir, &o)) == NULL) return;

  /* writers 2, 3 and readers 0, 1 share the main thread's handle */
  for (i = 0; i < WRITERS; i++) {
    memset(&ws[i], 0, sizeof ws[i]);
    ws[i].id = i;
    ws[i].dir = dir;
    ws[i].shared = i >= 2 ? db : NULL;
  }
  for (i = 0; i < READERS; i++) {
    memset(&rs[i], 0, sizeof rs[i]);
    rs[i].id = i;
    rs[i].dir = dir;
    rs[i].shared = i < 2 ? db : NULL;
  }
  memset(&ch, 0, sizeof ch);
  ch.dir = dir;
  ch.stop = &stop;
  for (i = 0; i < WRITERS; i++)
    CHECK(pthread_create(&wt[i], NULL, writer_main, &ws[i]) == 0);
  for (i = 0; i < READERS; i++)
    CHECK(pthread_create(&rt[i], NULL, reader_main, &rs[i]) == 0);
  CHECK(pthread_create(&ct, NULL, churn_main, &ch) == 0);
  for (i = 0; i < WRITERS; i++) pthread_join(wt[i], NULL);
  for (i = 0; i < READERS; i++) pthread_join(rt[i], NULL);
  __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
  pthread_join(ct, NULL);

  for (i = 0; i < WRITERS; i++) {
    report("writer", i, &ws[i].t);
    CHECK_EQ_INT(ws[i].t.fails, 0);
    CHECK_EQ_INT(ws[i].t.ops, WRITER_TXNS);
    ops += ws[i].t.ops;
    retries += ws[i].t.retries;
  }
  for (i = 0; i < READERS; i++) {
    report("reader", i, &rs[i].t);
    CHECK_EQ_INT(rs[i].t.fails, 0);
    CHECK_EQ_INT(rs[i].t.ops, READER_OPS);
    ops += rs[i].t.ops;
  }
  report("churn", 0, &ch.t);
  CHECK_EQ_INT(ch.t.fails, 0);
  CHECK(ch.t.ops > 0);
  CHECK_EQ_INT(ops, 100000);

  /* nothing lost: every counter equals the increments made */
  {
    df_txn *x;
    CHECK_EQ_INT(df_txn_begin(db, DF_TXN_READ, 0, &x), DF_OK);
    for (i = 0; i < WRITERS; i++) {
      char name[8];
      snprintf(name, sizeof name, "w%d", i);
      CHECK_EQ_INT(txn_n(x, key_of("ctr", fx_str(name))), WRITER_TXNS);
    }
    CHECK_EQ_INT(txn_n(x, key_of("ctr", fx_str("total"))),
                 WRITERS * WRITER_TXNS);
    df_txn_free(x);
  }
  CHECK_EQ_INT(df_db_stat(db, &st), DF_OK);
  CHECK_EQ_UINT(st.items, 1 + WRITERS + WRITERS * 2 + WRITERS * WRITER_TXNS);
  CHECK(st.map_size > (1u << 20)); /* it grew, under readers */
  /* one log record per put, the newest STREAM_KEEP kept */
  CHECK_EQ_UINT(st.stream_last, (uint64_t)WRITERS * WRITER_TXNS * PUTS_PER_TXN);
  CHECK_EQ_UINT(st.stream_last - st.stream_first + 1, STREAM_KEEP);
  printf("map grew to %llu bytes; %ld writes retried after growth\n",
         (unsigned long long)st.map_size, retries);
  df_db_close(db);
}

/* A write made while the same thread holds a read transaction cannot
 * grow the map (growth waits for every transaction of the process): when
 * the map is full it fails with DF_EBUSY and says why, at once, without
 * hanging or retrying; once the read ends, the same write succeeds. */
static void test_write_under_own_read_fails_rather_than_hangs(void) {
  static const df_schema schema = {"PK", "SK", NULL, NULL, 0};
  char sub[4200];
  df_open_options o;
  df_db *db;
  df_txn *r;
  df_buf b;
  int i, code = DF_OK;
  fx_path(sub, sizeof sub, "small");
  o = fx_options(&schema, 1, DF_SYNC_OFF);
  o.map_size = 256 << 10;
  if ((db = fx_open(sub, &o)) == NULL) return;
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_READ, 0, &r), DF_OK);
  df__buf_init(&b);
  for (i = 0; i < 100000 && code == DF_OK; i++) {
    item(&b, "big", fx_int(i), i, 1);
    code = df_db_put(db, b.p, b.len, 0);
  }
  /* the map filled up and could not grow */
  CHECK_EQ_INT(code, DF_EBUSY);
  CHECK(strstr(df_db_errmsg(db),
               "the database map is full and cannot grow while this thread "
               "holds a read transaction") != NULL);
  df_txn_free(r);
  CHECK_EQ_INT(df_db_put(db, b.p, b.len, 0), DF_OK);
  df__buf_free(&b);
  df_db_close(db);
}

/* A write to one database while the thread holds a transaction of another
 * grows its map: only a transaction of the same database would make the
 * growth wait for itself (dynafile serve writes a transaction's intent to
 * its catalog inside the tables' write transactions). */
static void test_write_under_read_of_another_database_grows(void) {
  static const df_schema schema = {"PK", "SK", NULL, NULL, 0};
  char a_path[4200], b_path[4200];
  df_open_options o;
  df_db *a, *b;
  df_txn *r;
  df_buf buf;
  df_stat st;
  int i, code = DF_OK;
  fx_path(a_path, sizeof a_path, "held");
  fx_path(b_path, sizeof b_path, "grows");
  o = fx_options(&schema, 1, DF_SYNC_OFF);
  o.map_size = 256 << 10;
  if ((a = fx_open(a_path, &o)) == NULL) return;
  if ((b = fx_open(b_path, &o)) == NULL) {
    df_db_close(a);
    return;
  }
  CHECK_EQ_INT(df_txn_begin(a, DF_TXN_READ, 0, &r), DF_OK);
  df__buf_init(&buf);
  for (i = 0; i < 20000 && code == DF_OK; i++) {
    item(&buf, "big", fx_int(i), i, 1);
    code = df_db_put(b, buf.p, buf.len, 0);
  }
  CHECK_EQ_INT(code, DF_OK);
  CHECK_EQ_INT(df_db_stat(b, &st), DF_OK);
  CHECK(st.map_size > (256u << 10)); /* it grew */
  df_txn_free(r);
  df__buf_free(&buf);
  df_db_close(b);
  df_db_close(a);
}

int main(void) {
  if (!fx_root_make("test-threads")) return 1;
  fx_path(dir, sizeof dir, "db");
  alarm(600); /* a deadlock ends the test instead of hanging the suite */
  RUN_TEST(test_four_writers_and_four_readers);
  RUN_TEST(test_write_under_own_read_fails_rather_than_hangs);
  RUN_TEST(test_write_under_read_of_another_database_grows);
  fx_root_remove();
  return check_done("test_threads");
}
