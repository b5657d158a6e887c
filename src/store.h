/*
 * store.h -- the LMDB-facing internals shared by db.c, txn.c, query.c,
 * index.c, ttl.c and stream.c.  Not API.
 *
 * Invariants kept by these files together:
 *  - one df_env per (device, inode, fork generation) in this process, found
 *    through the registry in db.c and reference-counted by its handles;
 *  - every transaction holds env->map_lock shared for its whole life; only
 *    growing the map takes it exclusive, so the mapping never moves under
 *    a live transaction of this process;
 *  - items, index entries, expiry entries and change-log records are
 *    written in the same LMDB write transaction, so they never disagree.
 */
#ifndef DF_STORE_H
#define DF_STORE_H

#include <lmdb.h>
#include <pthread.h>
#include <sys/types.h>

#include "internal.h"

/* Sub-database names (a fixed set; adding an index never needs another). */
#define DF_DBI_META "meta"
#define DF_DBI_ITEMS "items"
#define DF_DBI_INDEX "index"
#define DF_DBI_EXPIRY "expiry"
#define DF_DBI_STREAM "stream"

#define DF_MAX_INDEXES 64
#define DF_MSG_MAX 512

/* A parsed schema, owned: all strings live in one allocation (`blob`). */
typedef struct df_schema_owned {
  df_schema s;
  df_index_def idx[DF_MAX_INDEXES];
  char *blob;
} df_schema_owned;

/* A schema's string blob replaced at run time, kept until close. */
typedef struct df_retired {
  struct df_retired *next;
  char *blob;
} df_retired;

typedef struct df_env {
  struct df_env *next; /* registry list */
  dev_t dev;
  ino_t ino;
  unsigned long fork_gen;
  int refs;
  MDB_env *env;
  MDB_dbi dbi_meta, dbi_items, dbi_index, dbi_expiry, dbi_stream;
  int readonly;
  char *path;
  char id[64];
  pthread_mutex_t lock;       /* guards writer fields and the schema */
  pthread_rwlock_t map_lock;  /* shared by transactions, exclusive to grow */
  pthread_t writer;           /* thread holding the write txn */
  int has_writer;
  df_schema_owned schema;
  df_buf schema_rec;    /* the stored record of `schema`, for refresh */
  df_retired *retired;  /* replaced schema strings (see schema.c) */
  df_retired *retire_spare; /* a node reserved before a schema change */
  uint64_t origin;      /* this process's default change-log origin */
} df_env;

/* The per-thread part of a handle (thread.c): the message of the last
 * failure and df_db_get's copy of the item, so that threads sharing one
 * handle never see each other's.  Reach it only through df__slot. */
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
  uint64_t origin; /* written into this handle's change-log records */
  MDB_txn *rtxn;  /* a reset read transaction kept for reuse, or NULL;
                     read and written with atomics */
  int rtxn_busy;  /* rtxn is in use (taken with an atomic exchange) */
  unsigned txns;  /* live df_txn made from this handle (atomic) */
  int close_pending; /* df_db_close came while txns > 0 */
  pthread_t owner;          /* the opening thread: uses `own` unlocked */
  df_slot own;
  pthread_mutex_t slots_lock; /* guards `slots` */
  df_slot *slots;             /* other threads' slots */
};

/* A change recorded for listeners: offsets into txn->events_buf. */
typedef struct df_change {
  int action, expired;
  size_t old_off, old_len, new_off, new_len; /* old_off SIZE_MAX: none */
  uint64_t seq;
} df_change;

struct df_txn {
  df_db *db;
  df_env *env;
  MDB_txn *txn;
  unsigned flags;
  pthread_t thread; /* the thread that began it */
  double now;
  int live;       /* begun, not yet committed or aborted */
  int failed;     /* an operation failed in a way that dooms the txn */
  int map_full;   /* MDB_MAP_FULL seen: grow and retry */
  char errmsg[DF_MSG_MAX];
  df_buf old;     /* copy of the replaced item for callers */
  df_buf scratch; /* key building */
  df_buf events_buf;
  df_change *changes;
  size_t n_changes, cap_changes;
  uint64_t next_seq; /* change-log sequence of the next record, 0 unknown */
  /* Change-log settings read from meta by the first change (stream.c):
   * stream_state 0 not yet read, 1 on, 2 off. */
  int stream_state;
  uint64_t stream_keep;
  double stream_keep_seconds;
  uint64_t stream_first; /* oldest record still kept, 0 unknown */
};

/* ---- thread.c: per-thread state of handles */
/* The calling thread's slot of `db`, created on first use; NULL when out
 * of memory (or when db was carried through fork). */
df_slot *df__slot(df_db *db);
void df__slots_init(df_db *db);
void df__slots_free(df_db *db);

/* ---- db.c */
unsigned long df__fork_generation(void);
int df__db_check(df_db *db); /* closed / forked checks; sets errmsg */
void df__db_release(df_db *db); /* the real close, once no txn is live */
int df__db_err(df_db *db, int code, const char *fmt, ...) DF__PRINTF(3, 4);
int df__map_err(int rc);        /* LMDB rc -> DF_E* */
int df__env_grow(df_env *env);  /* double the map; DF_EBUSY while this
                                   thread holds a transaction */
void df__map_lock_shared(df_env *env);   /* every transaction holds this */
void df__map_unlock_shared(df_env *env);
int df__env_refresh_map(df_env *env); /* after MDB_MAP_RESIZED */
int df__read_begin(df_db *db, MDB_txn **txn); /* takes map_lock shared */
void df__read_end(df_db *db, MDB_txn *txn);   /* releases it */
void df__meta_json_write(df_env *e); /* the human-readable schema copy */

/* ---- txn.c */
/* Build the items-table key of a primary key into out (DF_KEY_MAX bytes). */
int df__item_key(const df_schema *s, const df_key *key, unsigned char *out,
                 size_t *outlen, char *err, size_t errlen);
/* Extract the primary key from item bytes. */
int df__item_key_of(const df_schema *s, const void *item, size_t len,
                    df_key *key, char *err, size_t errlen);
/* Does the item's partition-key attribute equal the string `pk`?  (For
 * long partition keys, stored hashed: see txn.c.) */
int df__item_pk_is(const df_schema *s, const void *item, size_t len,
                   const df_value *pk);
/* Is the item expired at `now` by the schema's TTL attribute? */
int df__item_expired(const df_schema *s, const void *item, size_t len,
                     double now);
int df__txn_err(df_txn *t, int code, const char *fmt, ...) DF__PRINTF(3, 4);
/* Low-level delete of an item whose key and bytes are known (used by the
 * TTL purge); records the event. */
int df__txn_remove(df_txn *t, const unsigned char *k, size_t klen,
                   const void *old, size_t old_len, int expired);

/* ---- index.c: keep every index in step with one item change.
 * old/new are item bytes or NULL.  Called inside the write txn. */
int df__index_apply(df_txn *t, const unsigned char *item_key, size_t klen,
                    const void *old, size_t old_len, const void *new_item,
                    size_t new_len);

/* The index key of an item (or of a map holding just the key attributes)
 * for index `def`: DF_ENOTFOUND when the item is not in the index (sparse),
 * DF_EVALIDATION when a value cannot be a key. */
int df__index_entry_key(const df_env *e, const df_index_def *def,
                        const void *item, size_t len, unsigned char *out,
                        size_t *n);
/* The (projected) item of an index entry read by a query: a pointer into
 * the map, valid until txn ends (later calls do not disturb it).  *hidden: the item expired at `now`
 * (the entry still counts as examined).  DF_ECORRUPT: a malformed entry. */
int df__index_entry_item(MDB_txn *txn, df_env *e, const df_index_def *def,
                         const MDB_val *k, const MDB_val *v, double now,
                         const void **item, size_t *len, int *hidden);
/* Build a new index from every item (inside the open-time write txn).
 * DF_ERETRY when the map filled up: abort, grow, and run the open again. */
int df__index_backfill(df_db *db, MDB_txn *txn, df_env *e,
                       const df_index_def *def, const df_open_options *o);
/* Rebuild indexes 0..n-1 whose entries carry the TTL value (after a TTL
 * attribute was added). */
int df__index_rebuild_projected(df_db *db, MDB_txn *txn, df_env *e, size_t n);

/* ---- ttl.c: keep the expiry sub-database in step with one item change */
int df__expiry_apply(df_txn *t, const unsigned char *item_key, size_t klen,
                     const void *old, size_t old_len, const void *new_item,
                     size_t new_len);

/* Rebuild the expiry sub-database for a new TTL attribute. */
int df__expiry_rebuild(df_db *db, MDB_txn *txn, df_env *e);

/* ---- stream.c: the change log */
/* Is the change log on for this write transaction?  Reads the settings
 * from meta on the first call.  1, 0, or a negative DF_E* code. */
int df__stream_enabled(df_txn *t);
/* Append a change-log record for change c (setting c->seq) and trim the
 * log to its retention, in the transaction. */
int df__stream_append(df_txn *t, df_change *c, const void *old,
                      size_t old_len, const void *new_item, size_t new_len);
/* At open: store the caller's change-log settings when they differ from
 * the stored ones (o->stream set). */
int df__stream_configure(df_db *db, const df_open_options *o);

#endif /* DF_STORE_H */
