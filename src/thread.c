/*
 * thread.c -- what a handle keeps per thread.
 *
 * A df_db handle may be shared by several threads at once.  What a call
 * leaves behind for its caller -- the message of a failure
 * (df_db_errmsg) and df_db_get's copy of the item -- therefore lives in a
 * per-thread slot of the handle, never in the handle itself.
 *
 * Invariants:
 *  - The opening thread's slot is db->own, reached without a lock (owner
 *    never changes).  Every other thread's slot is in db->slots, created
 *    on its first use and found under db->slots_lock; a slot is only ever
 *    used by its own thread, so its contents need no lock.  Slots live
 *    until the handle closes (a later thread with a recycled thread id
 *    inherits a dead thread's slot, which is harmless).
 */
#include <string.h>

#include "store.h"

void df__slots_init(df_db *db) {
  db->owner = pthread_self();
  df__buf_init(&db->own.got);
  db->own.errmsg[0] = '\0';
  db->slots = NULL;
  pthread_mutex_init(&db->slots_lock, NULL);
}

void df__slots_free(df_db *db) {
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

df_slot *df__slot(df_db *db) {
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
