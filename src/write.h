/*
 * write.h -- the narrow write context that txn.c hands to the maintainers
 * (index.c, ttl.c, stream.c) for one write transaction.  Not API.
 *
 * The maintainers keep the derived sub-databases (indexes, expiry
 * entries, the change log) in step with each item change, through this
 * context only: they never begin, commit or doom a transaction and never
 * see a df_txn.  A failure is returned as a DF_E* code with its message in
 * `errmsg`; txn.c decides what it does to the transaction (DF_ERETRY from
 * a full map, anything else part-way through a change: doomed).
 */
#ifndef DF_WRITE_H
#define DF_WRITE_H

#include "kv.h"

typedef struct df_write {
  df_kv kv;                /* the write transaction's sub-databases */
  const df_schema *schema; /* the schema this transaction writes with */
  double now;              /* the transaction's time (0: not given) */
  uint64_t origin;         /* change-log origin of the writing handle */
  df_buf scratch;          /* entry values, reused */
  /* the new item's index entry keys df__index_check worked out, for the
   * df__index_apply that writes the same item (index.c) */
  df_buf checked;
  const void *checked_item; /* the item they belong to, or NULL */
  size_t checked_len;
  char errmsg[DF_MSG_MAX]; /* the message of the last failure */
  /* the change log (stream.c): settings read at the first change */
  int stream_state; /* 0 not yet read, 1 on, 2 off */
  uint64_t stream_keep;
  double stream_keep_seconds;
  uint64_t next_seq; /* sequence of the next record, 0 unknown */
  /* After a write of a long operation (an index build) met a full map
   * (DF_ERETRY): grow the map and carry on where it stopped -- the
   * transaction, with everything it wrote, moves to the bigger map (txn.c;
   * kv.txn changes, so cursors must be opened again).  DF_OK, or the
   * reason the map could not grow (the transaction is then doomed). */
  int (*regrow)(struct df_write *w);
} df_write;

/* ---- index.c: keep every index in step with one item change.
 * old/new are item bytes or NULL. */
int df__index_apply(df_write *w, const unsigned char *item_key, const void *old,
                    size_t old_len, const void *new_item, size_t new_len);
/* The key check of df__index_apply without writing: DF_OK when every
 * index can hold the new item (DF_EVALIDATION with the message otherwise),
 * so a write can be refused before anything is changed.  key: the item's
 * table key values (df__item_key_of).  The entry keys it works out are
 * kept for the df__index_apply of the same item bytes, which follows. */
int df__index_check(df_write *w, const df_key *key, const void *new_item,
                    size_t new_len);
/* Build index `def` (in w->schema) from every item, after deleting any
 * entry a dropped index left under its id.  progress: optional. */
int df__index_build(df_write *w, const df_index_def *def,
                    df_progress_fn progress, void *progress_ud);
/* Rebuild the entries of indexes [0, n) whose values carry the TTL value
 * (after a TTL attribute was added). */
int df__index_rebuild_projected(df_write *w, size_t n);
/* Delete every entry of index `id`. */
int df__index_clear(df_write *w, unsigned id);

/* ---- ttl.c: keep the expiry sub-database in step with one item change */
int df__expiry_apply(df_write *w, const unsigned char *item_key, size_t klen,
                     const void *old, size_t old_len, const void *new_item,
                     size_t new_len);
/* Rebuild every expiry entry (for a new TTL attribute). */
int df__expiry_rebuild(df_write *w);
/* The oldest expiry entry when it is due at `now`: 1 with its key copied
 * into entry (DF_KEY_MAX + DF_NUM_ENC_LEN bytes) and *item_at the offset
 * of the items key in it; 0 when nothing is due; or an error. */
int df__expiry_first_due(df_write *w, double now, unsigned char *entry,
                         size_t *entry_len, size_t *item_at);
/* Delete one expiry entry (a stale one the purge met). */
int df__expiry_drop(df_write *w, const unsigned char *entry, size_t len);

/* ---- stream.c: the change log */
/* Is the change log on for this transaction?  Reads the settings at the
 * first call.  1, 0, or a negative DF_E* code. */
int df__stream_enabled(df_write *w);
/* Append the record of one change and trim the log to its retention;
 * *seq receives the record's sequence number. */
int df__stream_append(df_write *w, int action, int expired, const void *old,
                      size_t old_len, const void *new_item, size_t new_len,
                      uint64_t *seq);

#endif /* DF_WRITE_H */
