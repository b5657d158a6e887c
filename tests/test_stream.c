/*
 * test_stream.c -- the change log: off by default, switched on by an open
 * option stored for every process, consecutive sequence numbers shared
 * with in-process events, records that carry the old and new item,
 * retention by count and by age, origins that let a reader skip its own
 * commits, rolled-back writes that leave no record, and a forked process
 * whose commits the parent reads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"

static char dir[4200];

/* {PK = "p", SK = sk, n = n} */
static void item(df_buf *b, int64_t sk, int64_t n) {
  fx_item(b, "PK", fx_str("p"), "SK", fx_int(sk), "n", fx_int(n), FX_END);
}

static df_key key(int64_t sk) {
  return fx_key(fx_str("p"), fx_int(sk));
}

static int64_t attr_n(const void *p, size_t len) {
  return fx_attr_int(p, len, "n");
}

/* Open `dir`; stream < 0: leave the log setting alone. */
static df_db *open_db(int stream, uint64_t keep, double secs, uint64_t origin) {
  static const df_schema schema = {"PK", "SK", NULL, NULL, 0};
  df_open_options o = fx_options(&schema, 1, DF_SYNC_OFF);
  df_db *db;
  o.stream = stream > 0;
  o.stream_keep = keep;
  o.stream_keep_seconds = secs;
  o.origin = origin;
  if ((db = fx_open(dir, &o)) == NULL) exit(check_done("test_stream"));
  return db;
}

static uint64_t last_seq(df_db *db) {
  df_stat st;
  if (df_db_stat(db, &st) != DF_OK) return (uint64_t)-1;
  return st.stream_last;
}

static uint64_t first_seq(df_db *db) {
  df_stat st;
  if (df_db_stat(db, &st) != DF_OK) return (uint64_t)-1;
  return st.stream_first;
}

/* A write transaction at `now` that puts sk..sk+count-1 (n = sk) and
 * commits; the seqs of its events go to seqs (when non-NULL). */
static void put_range(df_db *db, double now, int64_t sk, int count,
                      uint64_t *seqs) {
  df_txn *t;
  df_buf b;
  int i;
  df__buf_init(&b);
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_WRITE | DF_TXN_EVENTS, now, &t), DF_OK);
  for (i = 0; i < count; i++) {
    item(&b, sk + i, sk + i);
    CHECK_EQ_INT(df_txn_put(t, b.p, b.len, NULL, NULL), DF_OK);
  }
  CHECK_EQ_INT(df_txn_commit(t), DF_OK);
  if (seqs) {
    CHECK_EQ_UINT(df_txn_event_count(t), (size_t)count);
    for (i = 0; i < count; i++) {
      df_event ev;
      df_txn_event(t, (size_t)i, &ev);
      seqs[i] = ev.seq;
    }
  }
  df_txn_free(t);
  df__buf_free(&b);
}

static void test_off_by_default(void) {
  df_db *db = open_db(-1, 0, 0, 0);
  uint64_t seq[2];
  df_stream *s;
  put_range(db, 0, 1, 2, seq);
  CHECK_EQ_UINT(seq[0], 0); /* not logged: events carry no seq */
  CHECK_EQ_UINT(last_seq(db), 0);
  CHECK_EQ_INT(df_stream_new(&s), DF_OK);
  CHECK_EQ_INT(df_stream_read(db, 0, 0, 0, s), DF_OK);
  CHECK_EQ_UINT(df_stream_count(s), 0);
  CHECK_EQ_UINT(df_stream_next(s), 0);
  df_stream_free(s);
  df_db_close(db);
}

static void test_records_in_commit_order(void) {
  df_db *db = open_db(1, 100, 0, 0);
  uint64_t seq[3], first, last;
  df_stream *s;
  df_stream_record r;
  df_buf b;
  df_key k = key(1001);
  int found;
  df_txn *t;

  put_range(db, 0, 1000, 3, seq);
  CHECK_EQ_UINT(seq[0], 1);
  CHECK_EQ_UINT(seq[1], 2);
  CHECK_EQ_UINT(seq[2], 3);
  /* replace 1000, delete 1001, in one transaction */
  df__buf_init(&b);
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_WRITE, 0, &t), DF_OK);
  item(&b, 1000, 100);
  CHECK_EQ_INT(df_txn_put(t, b.p, b.len, NULL, NULL), DF_OK);
  CHECK_EQ_INT(df_txn_delete(t, &k, &found, NULL, NULL), DF_OK);
  CHECK_EQ_INT(found, 1);
  k = key(99); /* deleting a missing item: no record */
  CHECK_EQ_INT(df_txn_delete(t, &k, &found, NULL, NULL), DF_OK);
  CHECK_EQ_INT(df_txn_commit(t), DF_OK);
  df_txn_free(t);
  df__buf_free(&b);

  CHECK_EQ_INT(df_stream_new(&s), DF_OK);
  CHECK_EQ_INT(df_stream_read(db, 0, 0, 0, s), DF_OK);
  CHECK_EQ_UINT(df_stream_count(s), 5);
  df_stream_bounds(s, &first, &last);
  CHECK_EQ_UINT(first, 1);
  CHECK_EQ_UINT(last, 5);
  CHECK_EQ_UINT(df_stream_next(s), 5);
  CHECK_EQ_INT(df_stream_record_get(s, 0, &r), DF_OK);
  CHECK_EQ_UINT(r.event.seq, 1);
  CHECK_EQ_INT(r.event.action, DF_EV_PUT);
  CHECK(r.event.old == NULL);
  CHECK_EQ_INT(attr_n(r.event.new_item, r.event.new_len), 1000);
  CHECK_EQ_UINT(r.origin, df_db_origin(db));
  CHECK(r.time > 1.5e9); /* the wall clock when no `now` was given */
  CHECK_EQ_INT(df_stream_record_get(s, 3, &r), DF_OK);
  CHECK_EQ_UINT(r.event.seq, 4);
  CHECK_EQ_INT(r.event.action, DF_EV_PUT);
  CHECK_EQ_INT(attr_n(r.event.old, r.event.old_len), 1000);
  CHECK_EQ_INT(attr_n(r.event.new_item, r.event.new_len), 100);
  CHECK_EQ_INT(df_stream_record_get(s, 4, &r), DF_OK);
  CHECK_EQ_UINT(r.event.seq, 5);
  CHECK_EQ_INT(r.event.action, DF_EV_DELETE);
  CHECK_EQ_INT(r.event.expired, 0);
  CHECK_EQ_INT(attr_n(r.event.old, r.event.old_len), 1001);
  CHECK(r.event.new_item == NULL);
  CHECK_EQ_INT(df_stream_record_get(s, 5, &r), DF_EINVAL);

  /* continuing from next: only what came after */
  CHECK_EQ_INT(df_stream_read(db, 3, 1, 0, s), DF_OK);
  CHECK_EQ_UINT(df_stream_count(s), 1);
  CHECK_EQ_UINT(df_stream_next(s), 4);
  CHECK_EQ_INT(df_stream_read(db, 5, 0, 0, s), DF_OK);
  CHECK_EQ_UINT(df_stream_count(s), 0);
  CHECK_EQ_UINT(df_stream_next(s), 5);
  df_stream_free(s);
  df_db_close(db);
}

static void test_rollback_leaves_no_record(void) {
  df_db *db = open_db(-1, 0, 0, 0);
  uint64_t before = last_seq(db), seq[1];
  df_txn *t;
  df_buf b;
  df__buf_init(&b);
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_WRITE, 0, &t), DF_OK);
  item(&b, 50, 50);
  CHECK_EQ_INT(df_txn_put(t, b.p, b.len, NULL, NULL), DF_OK);
  df_txn_free(t); /* aborted */
  df__buf_free(&b);
  CHECK_EQ_UINT(last_seq(db), before);
  put_range(db, 0, 51, 1, seq);
  CHECK_EQ_UINT(seq[0], before + 1); /* no seq was used up */
  df_db_close(db);
}

static void test_setting_is_stored(void) {
  /* reopened without the option: the stored setting still logs */
  df_db *db = open_db(-1, 0, 0, 0);
  uint64_t before = last_seq(db);
  put_range(db, 0, 60, 1, NULL);
  CHECK_EQ_UINT(last_seq(db), before + 1);
  df_db_close(db);
}

static void test_retention_by_count(void) {
  df_db *db = open_db(1, 5, 0, 0);
  uint64_t last;
  put_range(db, 0, 100, 3, NULL); /* trims to the newest 5 at once */
  last = last_seq(db);
  CHECK_EQ_UINT(first_seq(db), last - 4);
  put_range(db, 0, 200, 20, NULL);
  CHECK_EQ_UINT(last_seq(db), last + 20);
  CHECK_EQ_UINT(first_seq(db), last + 16);
  {
    df_stream *s;
    uint64_t first;
    CHECK_EQ_INT(df_stream_new(&s), DF_OK);
    /* a reader that fell behind: starts at the oldest kept record */
    CHECK_EQ_INT(df_stream_read(db, 1, 0, 0, s), DF_OK);
    df_stream_bounds(s, &first, NULL);
    CHECK_EQ_UINT(df_stream_count(s), 5);
    if (df_stream_count(s) == 5) {
      df_stream_record r;
      df_stream_record_get(s, 0, &r);
      CHECK_EQ_UINT(r.event.seq, first);
    }
    df_stream_free(s);
  }
  df_db_close(db);
}

static void test_retention_by_age(void) {
  /* transaction times after the wall-clock times of earlier records */
  double t0 = (double)time(NULL) + 1000;
  df_db *db = open_db(1, 0, 10, 0);
  uint64_t last;
  put_range(db, t0, 300, 3, NULL); /* the earlier records are past */
  last = last_seq(db);
  CHECK_EQ_UINT(first_seq(db), last - 2);
  put_range(db, t0 + 5, 303, 1, NULL);
  CHECK_EQ_UINT(first_seq(db), last - 2); /* nothing old enough yet */
  put_range(db, t0 + 11, 304, 1, NULL);   /* records of t0 are now past */
  CHECK_EQ_UINT(first_seq(db), last + 1);
  CHECK_EQ_UINT(last_seq(db), last + 2);
  put_range(db, t0 + 500, 305, 1, NULL); /* all old but the newest */
  CHECK_EQ_UINT(first_seq(db), last + 3);
  CHECK_EQ_UINT(last_seq(db), last + 3);
  df_db_close(db);
}

static void test_origins(void) {
  df_db *a = open_db(1, 1000, 0, 0), *b = open_db(-1, 0, 0, 0);
  df_db *c = open_db(-1, 0, 0, 4242);
  uint64_t start = last_seq(a);
  df_stream *s;
  size_t i;
  CHECK(df_db_origin(a) != 0);
  CHECK_EQ_UINT(df_db_origin(a), df_db_origin(b)); /* this process */
  CHECK_EQ_UINT(df_db_origin(c), 4242);
  put_range(a, 0, 400, 2, NULL);
  put_range(c, 0, 402, 3, NULL);
  put_range(b, 0, 405, 1, NULL);
  CHECK_EQ_INT(df_stream_new(&s), DF_OK);
  CHECK_EQ_INT(df_stream_read(c, start, 0, df_db_origin(c), s), DF_OK);
  CHECK_EQ_UINT(df_stream_count(s), 3); /* c's own three left out */
  CHECK_EQ_UINT(df_stream_next(s), start + 6);
  for (i = 0; i < df_stream_count(s); i++) {
    df_stream_record r;
    df_stream_record_get(s, i, &r);
    CHECK_EQ_UINT(r.origin, df_db_origin(a));
  }
  CHECK_EQ_INT(df_stream_read(a, start, 0, df_db_origin(a), s), DF_OK);
  CHECK_EQ_UINT(df_stream_count(s), 3);
  df_stream_free(s);
  df_db_close(a);
  df_db_close(b);
  df_db_close(c);
}

static void test_bad_setting(void) {
  static const df_schema schema = {"PK", "SK", NULL, NULL, 0};
  df_open_options o;
  df_db *db;
  memset(&o, 0, sizeof o);
  o.create_schema = &schema;
  o.stream = 1;
  o.stream_keep_seconds = -1;
  CHECK_EQ_INT(df_db_open(dir, &o, &db), DF_EINVAL);
  CHECK(strstr(df_db_errmsg(db), "keep_seconds") != NULL);
  df_db_close(db);
}

static void test_turned_off(void) {
  df_db *db = open_db(1, 0, 0, 0);
  uint64_t before = last_seq(db);
  put_range(db, 0, 500, 2, NULL);
  CHECK_EQ_UINT(last_seq(db), before);
  df_db_close(db);
  db = open_db(1, 1000, 0, 0); /* on again: numbering goes on */
  {
    uint64_t seq[1];
    put_range(db, 0, 502, 1, seq);
    CHECK_EQ_UINT(seq[0], before + 1);
  }
  df_db_close(db);
}

/* A child process opens the database after fork and commits; the parent
 * reads the child's records, which carry another origin.  The parent's
 * handle carried into the child is refused there. */
static void test_other_process(void) {
  df_db *db = open_db(-1, 0, 0, 0);
  uint64_t start = last_seq(db);
  pid_t pid;
  int status = -1;
  df_stream *s;
  fflush(NULL);
  pid = fork();
  if (pid == 0) {
    const void *p;
    size_t n;
    df_key k = key(1);
    df_db *child;
    int ok = df_db_get(db, &k, 0, &p, &n) == DF_EFORKED;
    static const df_schema schema = {"PK", "SK", NULL, NULL, 0};
    df_open_options o = fx_options(&schema, 1, DF_SYNC_OFF);
    if (df_db_open(dir, &o, &child) == DF_OK) {
      df_buf b;
      int i;
      df__buf_init(&b);
      for (i = 0; i < 4; i++) {
        item(&b, 600 + i, 600 + i);
        if (df_db_put(child, b.p, b.len, 0) != DF_OK) ok = 0;
      }
      df__buf_free(&b);
    } else {
      ok = 0;
    }
    df_db_close(child);
    _exit(ok ? 0 : 1);
  }
  CHECK(pid > 0);
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK_EQ_INT(df_stream_new(&s), DF_OK);
  CHECK_EQ_INT(df_stream_read(db, start, 0, df_db_origin(db), s), DF_OK);
  CHECK_EQ_UINT(df_stream_count(s), 4);
  if (df_stream_count(s) == 4) {
    df_stream_record r;
    df_stream_record_get(s, 3, &r);
    CHECK_EQ_UINT(r.event.seq, start + 4);
    CHECK(r.origin != df_db_origin(db));
    CHECK_EQ_INT(attr_n(r.event.new_item, r.event.new_len), 603);
  }
  df_stream_free(s);
  df_db_close(db);
}

int main(void) {
  if (!fx_root_make("test-stream")) return 1;
  fx_path(dir, sizeof dir, "db");
  RUN_TEST(test_off_by_default);
  RUN_TEST(test_records_in_commit_order);
  RUN_TEST(test_rollback_leaves_no_record);
  RUN_TEST(test_setting_is_stored);
  RUN_TEST(test_retention_by_count);
  RUN_TEST(test_retention_by_age);
  RUN_TEST(test_origins);
  RUN_TEST(test_bad_setting);
  RUN_TEST(test_turned_off);
  RUN_TEST(test_other_process);
  fx_root_remove();
  return check_done("test_stream");
}
