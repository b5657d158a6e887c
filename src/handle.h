/*
 * handle.h -- the df_db handle (handle.c): its fields, the checks every
 * call makes (closed, forked), the message of a failure, and what the
 * handle keeps per thread.  Not API.
 *
 * A df_db may be shared by several threads at once.  What a call leaves
 * behind for its caller -- the message of a failure (df_db_errmsg) and
 * df_db_get's copy of the item -- therefore lives in a per-thread slot of
 * the handle, never in the handle itself.
 */
#ifndef DF_HANDLE_H
#define DF_HANDLE_H

#include <pthread.h>

#include "env.h"

typedef struct df_slot {
  struct df_slot *next;
  pthread_t thread;
  df_buf got;
  char errmsg[DF_MSG_MAX];
} df_slot;

struct df_db {
  df_env *env;
  unsigned long fork_gen;
  int closed;
  df_sync sync;
  uint64_t origin;        /* written into this handle's change-log records */
  uint64_t max_item_size; /* 0: none (df_open_options.max_item_size) */
  df_rcache rcache;       /* the reusable read transaction */
  unsigned txns;          /* live df_txn made from this handle (atomic) */
  int close_pending;      /* df_db_close came while txns > 0 */
  pthread_t owner;        /* the opening thread: uses `own` unlocked */
  df_slot own;
  pthread_mutex_t slots_lock; /* guards `slots` */
  df_slot *slots;             /* other threads' slots */
};

/* A new handle, not yet bound to an environment (NULL: out of memory). */
df_db *df__db_new(void);
/* Release the handle for good: its environment reference (unless carried
 * through fork) and its memory.  Called once no transaction is live. */
void df__db_release(df_db *db);
/* The calling thread's slot, created on first use; NULL when out of
 * memory (or when the handle was carried through fork). */
df_slot *df__db_slot(df_db *db);
/* Closed / forked checks; DF_OK or the code, with the message set. */
int df__db_check(df_db *db);
/* Set the calling thread's message; returns code. */
int df__db_err(df_db *db, int code, const char *fmt, ...) DF__PRINTF(3, 4);
/* A read transaction of the handle (its reusable one when free), as a kv
 * view; the message is set on failure.  End it with df__db_read_end. */
int df__db_read(df_db *db, df_kv *kv);
void df__db_read_end(df_db *db, df_kv *kv);

#endif /* DF_HANDLE_H */
