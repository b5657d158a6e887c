/*
 * env.h -- one open database directory of this process (env.c): the LMDB
 * environment, its sub-databases, the schema in force, the map and its
 * growth, read and write transactions at the LMDB level, and every key of
 * the `meta` sub-database.  Not API.  Includes no LMDB header: LMDB
 * objects are opaque here.
 *
 * Invariants kept by env.c:
 *  - one df_env per (device, inode, fork generation) in this process,
 *    found through the registry and reference-counted by its handles;
 *  - every transaction holds map_lock shared for its whole life; only
 *    growing the map takes it exclusive, so the mapping never moves under
 *    a live transaction of this process;
 *  - at most one write transaction per thread per environment
 *    (df__env_writer_held is the one check);
 *  - the schema in force changes only through df__env_schema_adopt, which
 *    keeps the replaced strings until the environment closes (another
 *    thread may still be reading them).
 */
#ifndef DF_ENV_H
#define DF_ENV_H

#include <pthread.h>
#include <sys/types.h>

#include "internal.h"
#include "kv.h"
#include "schema.h"

struct MDB_env;
struct MDB_txn;

/* A schema's string blob replaced at run time, kept until close. */
typedef struct df_retired {
  struct df_retired *next;
  char *blob;
} df_retired;

struct df_commit;

typedef struct df_env {
  struct df_env *next; /* registry list */
  dev_t dev;
  ino_t ino;
  unsigned long fork_gen;
  int refs;
  struct MDB_env *mdb;
  unsigned dbi[DF_SUB_COUNT];
  int readonly;
  int probing; /* env_open's look at a data file without a redo log */
  char *path;
  char id[64];
  size_t page_size;
  pthread_mutex_t lock;      /* guards writer fields and the schema */
  pthread_rwlock_t map_lock; /* shared by transactions, exclusive to grow */
  pthread_t writer;          /* thread holding the write txn */
  int has_writer;
  df_schema_owned schema;
  df_buf schema_rec;        /* the stored record of `schema`, for refresh */
  df_retired *retired;      /* replaced schema strings */
  df_retired *retire_spare; /* a node reserved before a schema change */
  uint64_t origin;          /* this process's default change-log origin */
  struct df_commit *commit; /* the redo log and checkpoints (commit.c) */
  uint64_t allocated;       /* the data file's bytes this process knows
                               allocated (see allocate_ahead; the writer
                               lock) */
} df_env;

/* A handle's reusable read transaction (see df__env_read_begin). */
typedef struct df_rcache {
  struct MDB_txn *txn; /* a reset read transaction, or NULL (atomics) */
  int busy;            /* txn is in use (taken with an atomic exchange) */
} df_rcache;

/* The generation of this process: bumped in a forked child. */
unsigned long df__fork_generation(void);

/* Find the environment of directory `path` in the registry (taking a
 * reference), or create the directory when needed and open it: LMDB, the
 * sub-databases, and the stored schema, which a new database gets from
 * o->schema (or o->create_schema).  The caller's schema is not checked
 * against the stored one here (ddl.c does).  Errors, with the message in
 * err: those of df_db_open. */
int df__env_acquire(const char *path, const df_open_options *o, df_env **out,
                    char *err, size_t errlen);
/* Drop a reference; the last one closes the environment.  Never call it
 * in a forked child. */
void df__env_release(df_env *e);

/* The kv view of one of the environment's transactions. */
void df__env_kv(const df_env *e, struct MDB_txn *txn, df_kv *kv);

/* Read transactions.  A handle keeps one reset transaction for reuse in
 * *c.  Errors: DF_EREADERS (every slot in use, after reclaiming those of
 * dead processes), DF_EIO, ...; the message in err. */
int df__env_read_begin(df_env *e, df_rcache *c, struct MDB_txn **txn, char *err,
                       size_t errlen);
void df__env_read_end(df_env *e, df_rcache *c, struct MDB_txn *txn);
/* Abort the cached transaction (when the handle is released). */
void df__env_rcache_drop(df_rcache *c);

/* 1 when the calling thread holds this environment's write transaction. */
int df__env_writer_held(df_env *e);
/* Begin the LMDB write transaction (waiting for other writers), growing
 * the map ahead of need, and mark this thread as the writer.  *rec is the
 * transaction's redo record, to put in its df_kv.  The caller has checked
 * df__env_writer_held (waiting for itself would deadlock).
 * Errors: DF_EIO, DF_ENOMEM, DF_EDISKFULL, ...  */
int df__env_write_begin(df_env *e, struct MDB_txn **txn, df_redo_rec **rec,
                        char *err, size_t errlen);
/* The write transaction *txn met a full map: abort it, grow the map, and
 * begin again with the first n_ops ops (len bytes) of its record replayed,
 * keeping the writer lock, so that no other writer comes in between and
 * the transaction goes on as if nothing happened.  On failure (the map
 * cannot grow: DF_EDISKFULL, DF_EBUSY, ...; the message says which) *txn
 * is NULL and the map lock released: end the transaction with
 * df__env_write_abort(e, NULL, ...). */
int df__env_write_regrow(df_env *e, struct MDB_txn **txn, uint32_t n_ops,
                         size_t len, char *err, size_t errlen);
/* Commit with the durability of `sync`.  Whatever the result, the writer
 * mark and the map lock are released.  DF_ERETRY: the map was full and
 * has grown; DF_EBUSY: it was full and cannot grow, because this thread
 * holds a read transaction; DF_EDISKFULL / DF_EIO: the message says why. */
int df__env_write_commit(df_env *e, struct MDB_txn *txn, df_sync sync,
                         pthread_t writer, char *err, size_t errlen);
/* Abort (txn NULL: already gone, after a failed regrow: the map lock is
 * not held then).  With `grow` (the transaction met a full map), grow the
 * map afterwards and return DF_ERETRY, or DF_EBUSY when it cannot grow
 * (as for a commit), with the message in err; else DF_OK. */
int df__env_write_abort(df_env *e, struct MDB_txn *txn, pthread_t writer,
                        int grow, char *err, size_t errlen);

/* What recovery did at open, and the redo log now (df_db_check). */
void df__env_commit_report(df_env *e, df_check_report *r);

/* Map and reader figures for df_db_stat (under the map lock). */
void df__env_info(df_env *e, uint64_t *map_size, uint64_t *used,
                  unsigned *max_readers, unsigned *readers_used);

/* ---- the `meta` sub-database: every key of it lives here */

/* Store schema s as the record in meta (inside a write transaction). */
int df__env_schema_store(const df_kv *kv, const df_schema *s);
/* Read and decode the stored schema record (out->format tells its
 * on-disk format).  DF_OK, or an error with the message in err. */
int df__env_schema_load(const df_kv *kv, df_schema_owned *out, char *err,
                        size_t errlen);
/* Inside a write transaction: adopt the stored schema when another
 * process changed it since this one read it. */
int df__env_schema_refresh(df_env *e, const df_kv *kv);
/* Make `next` the schema in force (after its record was committed) and
 * rewrite meta.json.  Call df__env_schema_reserve first (before
 * committing): adopting then cannot fail for want of memory. */
int df__env_schema_reserve(df_env *e);
void df__env_schema_adopt(df_env *e, df_schema_owned *next);

/* The change-log settings: retention by count (0: none) and by age in
 * seconds (0: none); both 0: the log is off (also when never stored). */
int df__env_stream_settings(const df_kv *kv, uint64_t *keep, double *secs);
int df__env_stream_settings_store(const df_kv *kv, uint64_t keep, double secs);

#endif /* DF_ENV_H */
