/*
 * handle.c -- the df_db handle: its creation and release, the checks
 * every call makes, the per-thread slots that hold what a call leaves for
 * its caller, and its read transactions.
 *
 * Invariants:
 *  - The opening thread's slot is db->own, reached without a lock (owner
 *    never changes).  Every other thread's slot is in db->slots, created
 *    on its first use and found under db->slots_lock; a slot is only ever
 *    used by its own thread, so its contents need no lock.  Slots live
 *    until the handle closes (a later thread with a recycled thread id
 *    inherits a dead thread's slot, which is harmless).
 *  - A handle carried through fork never touches its environment again:
 *    every call fails DF_EFORKED and the release frees only its memory.
 */
#include <stdio.h>
#include <string.h>

#include "handle.h"

static const char forked_msg[] =
    "database handle used in a forked child process; open the database "
    "after fork";

df_db *df__db_new(void) {
  df_db *db = df__malloc(sizeof *db);
  if (db == NULL) return NULL;
  memset(db, 0, sizeof *db);
  db->fork_gen = df__fork_generation();
  db->owner = pthread_self();
  df__buf_init(&db->own.got);
  db->own.errmsg[0] = '\0';
  db->slots = NULL;
  pthread_mutex_init(&db->slots_lock, NULL);
  return db;
}

static void slots_free(df_db *db) {
  df_slot *s, *next;
  for (s = db->slots; s; s = next) {
    next = s->next;
    df__buf_free(&s->got);
    df__free(s);
  }
  db->slots = NULL;
  df__buf_free(&db->own.got);
  pthread_mutex_destroy(&db->slots_lock);
}

void df__db_release(df_db *db) {
  int here = db->fork_gen == df__fork_generation();
  if (db->env && here) {
    df__env_rcache_drop(&db->rcache);
    df__env_release(db->env);
  }
  db->env = NULL;
  db->closed = 1;
  if (here) slots_free(db);
  df__free(db);
}

df_slot *df__db_slot(df_db *db) {
  pthread_t self = pthread_self();
  df_slot *s;
  if (pthread_equal(self, db->owner)) return &db->own;
  /* A handle carried into a forked child: its mutex may have been held
   * by a thread that does not exist in the child. */
  if (db->fork_gen != df__fork_generation()) return NULL;
  pthread_mutex_lock(&db->slots_lock);
  for (s = db->slots; s; s = s->next)
    if (pthread_equal(s->thread, self)) break;
  if (s == NULL) {
    s = df__malloc(sizeof *s);
    if (s) {
      s->thread = self;
      df__buf_init(&s->got);
      s->errmsg[0] = '\0';
      s->next = db->slots;
      db->slots = s;
    }
  }
  pthread_mutex_unlock(&db->slots_lock);
  return s;
}

int df__db_err(df_db *db, int code, const char *fmt, ...) {
  va_list ap;
  df_slot *s = df__db_slot(db);
  if (s == NULL) return code; /* no memory for the message: code only */
  va_start(ap, fmt);
  vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
  va_end(ap);
  return code;
}

int df__db_check(df_db *db) {
  if (db == NULL) return DF_EINVAL;
  if (db->closed || db->env == NULL)
    return df__db_err(db, DF_ECLOSED, "database handle is closed");
  if (db->fork_gen != df__fork_generation())
    return df__db_err(db, DF_EFORKED, "%s", forked_msg);
  return DF_OK;
}

const char *df_db_errmsg(const df_db *db) {
  df_slot *s;
  if (db == NULL) return df_strerror(DF_ENOMEM);
  if (db->fork_gen != df__fork_generation()) return forked_msg;
  s = df__db_slot((df_db *)db); /* the slot list is mutable, not the handle */
  return s ? s->errmsg : df_strerror(DF_ENOMEM);
}

int df__db_read(df_db *db, df_kv *kv) {
  char err[DF_MSG_MAX];
  struct MDB_txn *txn;
  int code = df__env_read_begin(db->env, &db->rcache, &txn, err, sizeof err);
  if (code != DF_OK) return df__db_err(db, code, "%s", err);
  df__env_kv(db->env, txn, kv);
  return DF_OK;
}

void df__db_read_end(df_db *db, df_kv *kv) {
  df__env_read_end(db->env, &db->rcache, kv->txn);
  kv->txn = NULL;
}
