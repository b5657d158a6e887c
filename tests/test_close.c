/*
 * test_close.c -- closing a handle while transactions made from it live:
 * the transactions stay usable, the handle refuses new calls, and the
 * environment is released with the last transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "dynafile.h"
#include "internal.h"

static char dir[64];

static void item(df_buf *b, const char *pk, const char *sk) {
  df__buf_reset(b);
  df__mp_put_map(b, 2);
  df__mp_put_str(b, "PK", 2);
  df__mp_put_str(b, pk, strlen(pk));
  df__mp_put_str(b, "SK", 2);
  df__mp_put_str(b, sk, strlen(sk));
}

static df_db *open_db(void) {
  df_schema s = {"PK", "SK", NULL, NULL, 0};
  df_open_options o;
  df_db *db = NULL;
  memset(&o, 0, sizeof o);
  o.schema = &s;
  CHECK_EQ_INT(df_db_open(dir, &o, &db), DF_OK);
  return db;
}

/* A write transaction outlives the close of its handle and commits. */
static void test_commit_after_close(void) {
  df_db *db = open_db();
  df_txn *t = NULL;
  df_buf b;
  df_key k;
  const void *v;
  size_t n;
  df__buf_init(&b);
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_WRITE, 0, &t), DF_OK);
  item(&b, "a", "1");
  CHECK_EQ_INT(df_txn_put(t, b.p, b.len, NULL, NULL), DF_OK);
  df_db_close(db); /* deferred: t is live */
  item(&b, "a", "2");
  CHECK_EQ_INT(df_txn_put(t, b.p, b.len, NULL, NULL), DF_OK);
  CHECK_EQ_INT(df_txn_commit(t), DF_OK);
  df_txn_free(t); /* releases the handle */
  db = open_db();
  memset(&k, 0, sizeof k);
  k.pk.type = DF_TSTR;
  k.pk.s = "a";
  k.pk.n = 1;
  k.sk.type = DF_TSTR;
  k.sk.s = "2";
  k.sk.n = 1;
  CHECK_EQ_INT(df_db_get(db, &k, 0, &v, &n), DF_OK);
  df_db_close(db);
  df__buf_free(&b);
}

/* A read transaction outlives the close of its handle too. */
static void test_read_after_close(void) {
  df_db *db = open_db();
  df_txn *t = NULL;
  df_key k;
  const void *v;
  size_t n;
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_READ, 0, &t), DF_OK);
  df_db_close(db);
  memset(&k, 0, sizeof k);
  k.pk.type = DF_TSTR;
  k.pk.s = "a";
  k.pk.n = 1;
  k.sk.type = DF_TSTR;
  k.sk.s = "1";
  k.sk.n = 1;
  CHECK_EQ_INT(df_txn_get(t, &k, &v, &n), DF_OK);
  df_txn_free(t);
}

int main(void) {
  char cmd[128];
  snprintf(dir, sizeof dir, "/tmp/df-close-%d", (int)getpid());
  RUN_TEST(test_commit_after_close);
  RUN_TEST(test_read_after_close);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
  return check_done("test_close");
}
