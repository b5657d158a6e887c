/*
 * commit.h -- the commit path (commit.c): the redo log protocol in front of
 * LMDB, checkpoints, the snapshot pins, recovery at open, and the
 * background flusher.  Used by env.c only.  Not API.
 *
 * The order of calls, for one environment of this process:
 *   df__commit_open     before mdb_env_open: the open lock, and for the
 *                       only process that has the database open, LMDB's
 *                       meta pages put back as of the last checkpoint when
 *                       they differ (recovery, part 1)
 *   df__commit_attach   once the environment and its sub-databases are
 *                       open: replay of the log (recovery, part 2), or a
 *                       first checkpoint for a database without a log
 *   per write transaction, in this order:
 *     df__commit_lock     the writer lock (before any map lock)
 *     (env.c: mdb_txn_begin)
 *     df__commit_begin    finish what a killed writer left, make sure this
 *                         process pins a checkpoint, start the record
 *     ... kv writes append to the record (kv.h) ...
 *     df__commit_finish   append the record, flush per the sync mode,
 *                         commit LMDB, checkpoint when one is due
 *     (or env.c: mdb_txn_abort)
 *     df__commit_unlock
 *   df__commit_close    when the environment closes
 */
#ifndef DF_COMMIT_H
#define DF_COMMIT_H

#include "internal.h"

struct MDB_env;
struct MDB_txn;

typedef struct df_commit df_commit;

/* Tuning, from df_open_options (0: the default). */
typedef struct df_commit_options {
  unsigned flush_ms;         /* "normal": the log is flushed at most this
                                long after a commit (default 100) */
  uint64_t flush_bytes;      /* ... or once this many bytes of log are
                                unflushed (default 4 MiB) */
  uint64_t checkpoint_bytes; /* checkpoint once the log or the pages
                                written since the last checkpoint reach
                                this (default 64 MiB) */
  struct df_redo *log;       /* the log as df__commit_has_log left it open,
                                taken over (closed on failure too), or
                                NULL: df__commit_open opens it */
} df_commit_options;

/* Grow the map (env.c), for the replay at open.  DF_OK or the error. */
typedef int (*df_commit_grow_fn)(void *ud);

/* 1 when <path>/redo.log holds a checkpoint: the data file beside it
 * belongs to dynafile (written since the log came).  Creates nothing and
 * writes nothing.  Then *keep is the log, open as df__commit_open would
 * open it (read-only or not), for df_commit_options.log: one open of the
 * file per database open; else *keep is NULL. */
int df__commit_has_log(const char *path, int readonly, struct df_redo **keep);

/* Before mdb_env_open of directory `path`.  Opens (creating when
 * writable) <path>/redo.lock and <path>/redo.log, takes the open lock,
 * and when no other process has the database open and the log holds a
 * checkpoint, writes that checkpoint's meta pages back into data.mdb when
 * they differ from the file's.  A read-only open of a database that needs
 * recovery fails with DF_ECORRUPT (nothing can be written).  Errors:
 * DF_EIO, DF_EACCESS, DF_EREADONLY, DF_ENOMEM, DF_ECORRUPT, DF_EDISKFULL;
 * the message in err.  *out is NULL on failure. */
int df__commit_open(const char *path, int readonly,
                    const df_commit_options *opts, df_commit **out, char *err,
                    size_t errlen);

/* After the environment and its sub-databases (dbi[DF_SUB_COUNT]) are
 * open.  The recovering process replays the log into the environment and
 * makes a checkpoint; a database without a log (new, or written by a
 * release before the log) gets one, with a first checkpoint.  Then the
 * open lock is shared with other processes.  Errors as df__commit_open,
 * plus those of the replay's writes. */
int df__commit_attach(df_commit *c, struct MDB_env *mdb, const unsigned *dbi,
                      df_commit_grow_fn grow, void *grow_ud, char *err,
                      size_t errlen);

/* Release everything; NULL accepted.  The last process to close the
 * database makes a checkpoint first when anything was committed since the
 * last one.  Call before mdb_env_close. */
void df__commit_close(df_commit *c);

/* The writer lock, shared by every process: taken before the LMDB write
 * transaction begins, released after it ends.  Errors: DF_EIO (the lock
 * cannot be recovered), DF_ECORRUPT (the environment refused writes after
 * a failed flush: reopen it). */
int df__commit_lock(df_commit *c, char *err, size_t errlen);
void df__commit_unlock(df_commit *c);
/* The writer lock around mdb_env_open (on: take, 0: release), so that no
 * other process grows the file while LMDB sets its length; nothing when
 * this process is alone. */
void df__commit_hold(df_commit *c, int on);

/* In a write transaction just begun (*txn), under the writer lock:
 * completes a commit a killed writer left unfinished (committing it in a
 * transaction of its own, which may replace *txn), makes a checkpoint
 * when this process pins none recent enough, and empties the record that
 * the transaction's writes fill: *rec.  Errors: DF_EIO, DF_EDISKFULL,
 * DF_ENOMEM, DF_ERETRY (the map was full replaying a killed writer's
 * record: grow and begin again). */
int df__commit_begin(df_commit *c, struct MDB_txn **txn, df_redo_rec **rec,
                     char *err, size_t errlen);

/* Commit txn with the durability of `sync`: append the record, flush it
 * ("full"), commit LMDB without a sync, make a checkpoint when one is
 * due.  On DF_ERETRY (LMDB's commit met a full map) the record stays
 * appended and txn is gone: grow the map, begin again, replay the record
 * (df__commit_replay) and call this again.  On any other failure nothing
 * was committed and txn is gone.  Errors: DF_ERETRY, DF_EIO, DF_EDISKFULL,
 * DF_ENOMEM. */
int df__commit_finish(df_commit *c, struct MDB_txn *txn, df_sync sync,
                      char *err, size_t errlen);

/* Abort bookkeeping after env.c aborted the transaction: forget the
 * record (and a record appended for a commit that will not happen, which
 * is voided). */
void df__commit_abandon(df_commit *c);

/* Copy into the record a value its last write left to be filled in
 * through the map (kv.c's append), before the transaction is aborted. */
void df__commit_settle(df_commit *c);

/* Apply the first `n_ops` ops of the current record (all: UINT32_MAX) to
 * txn, a fresh write transaction that replaces one lost to a full map, and
 * cut the record there.  Errors: those of the writes (DF_ERETRY: the map
 * is still too small). */
int df__commit_replay(df_commit *c, struct MDB_txn *txn, uint32_t n_ops,
                      size_t len);

/* 1 when this open gave the database its redo log. */
int df__commit_log_created(const df_commit *c);

/* What recovery did when this process opened the database (zeros when it
 * did not recover it), and the log's state now. */
void df__commit_report(df_commit *c, df_check_report *r);

/* fork(): env.c's atfork handlers call the first before a fork (it waits
 * until every flusher thread of this process is parked), the second after
 * it in the parent, the third in the child (see flusher_main). */
void df__commit_before_fork(void);
void df__commit_after_fork_parent(void);
void df__commit_after_fork_child(void);

#endif /* DF_COMMIT_H */
