/*
 * env.c -- the environments of this process: the registry, fork
 * detection, opening LMDB and the sub-databases, the map and its growth,
 * transactions at the LMDB level (begin, commit, abort, the read-
 * transaction cache), and the `meta` sub-database: the schema record, the
 * change-log settings, and meta.json, the human-readable copy of the
 * schema.  The only file that opens LMDB (kv.c reads and writes inside
 * the transactions begun here).
 *
 * Invariants (see also env.h):
 *  - The registry (a list guarded by `registry_lock`) is the only global
 *    mutable state of the core.  It holds one df_env per (device, inode,
 *    fork generation): two opens of one directory share one MDB_env, which
 *    LMDB requires (one environment per file per process).
 *  - A fork bumps `fork_gen` in the child; environments of an older
 *    generation are never used again and never closed in the child, since
 *    LMDB state does not survive fork.
 *  - The schema record in `meta` is the truth; meta.json is a copy
 *    rewritten whenever this process changes the schema.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "commit.h"
#include "env.h"

/* The map starts small and doubles (by at most GROW_STEP_MAX at a time):
 * the file's blocks are allocated as the map grows (see grow), so a small
 * database takes little room on disk. */
#define DEFAULT_MAP_SIZE ((size_t)1 << 20)
#define GROW_STEP_MAX ((size_t)1 << 30)
#define META_SCHEMA "schema"
#define META_STREAM "stream"

static const char *const sub_names[DF_SUB_COUNT] = {"meta", "items", "index",
                                                    "expiry", "stream"};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static df_env *registry;
static volatile unsigned long fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* The shared holds of map locks this thread has, per environment (a few
 * slots; more environments held at once are counted together, and taken
 * as holding every one).  Growing a map needs its lock exclusive:
 *  - a thread that holds that environment's lock shared (a read
 *    transaction open while it writes, e.g. from a TTL function) must not
 *    wait for itself: DF_EBUSY at once;
 *  - a thread that holds another environment's lock shared (a write
 *    transaction of one database that writes another -- dynafile serve
 *    writes a transaction's intent to its catalog inside the tables'
 *    transactions) waits a bounded time, so that two threads nesting two
 *    databases in opposite orders cannot wait for each other for ever:
 *    DF_EBUSY after HOLD_WAIT_SECONDS. */
#define HOLD_SLOTS 8
#define HOLD_WAIT_SECONDS 5
typedef struct holds {
  unsigned total; /* every hold */
  unsigned other; /* holds that found no slot */
  struct {
    const df_env *env;
    unsigned n;
  } slot[HOLD_SLOTS];
} holds;
static __thread holds thread_holds; /* one thread-local block: one lookup */

static void holds_add(const df_env *e, int d) {
  holds *h = &thread_holds;
  int i, free_slot = -1;
  if (d > 0 && h->total == 0) { /* the common case: no other hold */
    h->total = 1;
    h->slot[0].env = e;
    h->slot[0].n = 1;
    return;
  }
  h->total += (unsigned)d;
  for (i = 0; i < HOLD_SLOTS; i++) {
    if (h->slot[i].env == e) {
      h->slot[i].n += (unsigned)d;
      if (h->slot[i].n == 0) h->slot[i].env = NULL;
      return;
    }
    if (!h->slot[i].env && free_slot < 0) free_slot = i;
  }
  if (d > 0 && free_slot >= 0) {
    h->slot[free_slot].env = e;
    h->slot[free_slot].n = 1;
    return;
  }
  h->other += (unsigned)d;
}

/* Does this thread hold e's map lock shared (or may it)? */
static int holds_own(const df_env *e) {
  const holds *h = &thread_holds;
  int i;
  if (h->other > 0) return 1;
  for (i = 0; i < HOLD_SLOTS; i++)
    if (h->slot[i].env == e) return 1;
  return 0;
}

/* Take e's map lock exclusive, as above: 0, or DF_EBUSY. */
static int map_lock_exclusive(df_env *e) {
  struct timespec until;
  if (holds_own(e)) return DF_EBUSY;
  if (thread_holds.total == 0) {
    pthread_rwlock_wrlock(&e->map_lock);
    return 0;
  }
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += HOLD_WAIT_SECONDS;
  return pthread_rwlock_timedwrlock(&e->map_lock, &until) == 0 ? 0 : DF_EBUSY;
}

static void on_fork_child(void) {
  df__commit_after_fork_child();
  fork_gen++;
  /* The holds counted are of the parent's environments, which the child
   * never uses: a read transaction open in the parent when it forked (an
   * nginx master's, say) must not stop the child's maps from growing. */
  memset(&thread_holds, 0, sizeof thread_holds);
  /* The child inherits the registry mutex in whatever state the parent's
   * threads had it; start it afresh.  Parent entries stay in the list but
   * never match the new generation. */
  pthread_mutex_init(&registry_lock, NULL);
}

static void install_atfork(void) {
  pthread_atfork(df__commit_before_fork, df__commit_after_fork_parent,
                 on_fork_child);
}

unsigned long df__fork_generation(void) {
  return fork_gen;
}

void df__env_kv(const df_env *e, MDB_txn *txn, df_kv *kv) {
  kv->txn = txn;
  kv->dbi = e->dbi;
  kv->rec = NULL; /* a write transaction sets its redo record (txn.c) */
}

/* ------------------------------------------------------------ map size */

static void map_lock_shared(df_env *e) {
  pthread_rwlock_rdlock(&e->map_lock);
  holds_add(e, 1);
}

static void map_unlock_shared(df_env *e) {
  holds_add(e, -1);
  pthread_rwlock_unlock(&e->map_lock);
}

static int sys_code(int e) {
  switch (e) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return DF_EDISKFULL;
    case EACCES:
    case EPERM:
      return DF_EACCESS;
    default:
      return DF_EIO;
  }
}

/* The data file's blocks are allocated ahead of the pages in use, by a
 * margin of an eighth of them (at least ALLOC_MARGIN_MIN, at most up to
 * the map's end), before each write transaction once less than half the
 * margin is left: a full disk is then an error of that allocation for
 * any transaction that takes fewer new pages than the margin left.  The
 * allocation ahead is best effort (a transaction that fits the pages
 * already allocated, a delete on a full disk, still runs); a transaction
 * that takes more new pages than are allocated, on a full disk, fails at
 * its commit -- LMDB's write of its pages is cut short, no meta page is
 * written, and commit.c voids its record -- with a message that says so
 * (commit_failed): nothing acknowledged is lost either way.  The file is
 * not allocated up to the map: between checkpoints pages freed are not
 * reused (commit.c), and the map doubles, so a whole map allocated was
 * five times the data after a bulk load.  (LMDB without MDB_WRITEMAP
 * writes its pages with pwrite, and maps the file only to read the pages
 * in use, which the file always holds.)  0 or an errno value. */
#define ALLOC_MARGIN_MIN ((uint64_t)4 << 20)
#define ALLOC_STEP ((uint64_t)1 << 20)

static int allocate_map(df_env *e, uint64_t size) {
  int fd, rc;
  if (e->readonly || mdb_env_get_fd(e->mdb, &fd) != 0) return 0;
  if (size <= e->allocated) return 0;
  while ((rc = posix_fallocate(fd, 0, (off_t)size)) == EINTR) {
  }
  if (rc == 0) e->allocated = size;
  return rc;
}

/* Allocate ahead of the pages in use (see above); under the writer lock
 * and the map lock (shared or exclusive). */
static int allocate_ahead(df_env *e, const MDB_envinfo *info) {
  uint64_t used = ((uint64_t)info->me_last_pgno + 1) * e->page_size;
  uint64_t margin = used / 8 > ALLOC_MARGIN_MIN ? used / 8 : ALLOC_MARGIN_MIN;
  uint64_t want;
  if (used + margin / 2 <= e->allocated) return 0;
  want = (used + margin + ALLOC_STEP - 1) / ALLOC_STEP * ALLOC_STEP;
  if (want > info->me_mapsize) want = info->me_mapsize;
  return allocate_map(e, want);
}

/* Grow the map by its size (at most GROW_STEP_MAX); with `if_needed`,
 * only when the data still fills more than 3/4 of it once the lock is
 * held (several threads may have seen the need at once).  Errors:
 * DF_EBUSY (this thread holds a transaction of this database: it would
 * wait for itself; or of another, and the lock stayed taken: see
 * map_lock_exclusive),
 * DF_EDISKFULL (no room on the disk for the larger map, or the file-size
 * limit), DF_EIO. */
static int grow(df_env *e, int if_needed) {
  MDB_envinfo info;
  size_t step, want;
  int rc, e2;
  if (map_lock_exclusive(e) != 0) return DF_EBUSY;
  rc = mdb_env_info(e->mdb, &info);
  if (rc == 0 && (!if_needed || (size_t)(info.me_last_pgno + 1) * e->page_size >
                                    info.me_mapsize / 4 * 3)) {
    step = info.me_mapsize < GROW_STEP_MAX ? info.me_mapsize : GROW_STEP_MAX;
    want = info.me_mapsize + step;
    /* the file's next pages first: a disk too full for them is an error
     * of the growth */
    info.me_mapsize = want;
    if ((e2 = allocate_ahead(e, &info)) != 0) {
      pthread_rwlock_unlock(&e->map_lock);
      return sys_code(e2);
    }
    rc = mdb_env_set_mapsize(e->mdb, want);
  }
  pthread_rwlock_unlock(&e->map_lock);
  return df__kv_code(rc);
}

/* For recovery's replay at open (commit.c). */
static int grow_cb(void *ud) {
  return grow(ud, 0);
}

/* Adopt the map size another process has grown the file to. */
static int refresh_map(df_env *e) {
  int rc;
  if (map_lock_exclusive(e) != 0) return DF_EBUSY;
  rc = mdb_env_set_mapsize(e->mdb, 0);
  pthread_rwlock_unlock(&e->map_lock);
  return df__kv_code(rc);
}

/* Grow ahead of need when the last committed page is past 3/4 of the map:
 * most transactions then never meet MDB_MAP_FULL. */
static int grow_if_needed(df_env *e) {
  MDB_envinfo info;
  int full;
  if (e->readonly) return DF_OK;
  /* mdb_env_info reads the meta pages inside the map, which another
   * thread's growth may be moving: hold map_lock. */
  map_lock_shared(e);
  full = 0;
  if (mdb_env_info(e->mdb, &info) == 0) {
    full = (size_t)(info.me_last_pgno + 1) * e->page_size >
           info.me_mapsize / 4 * 3;
    allocate_ahead(e, &info); /* best effort: see allocate_map */
  }
  map_unlock_shared(e);
  return full ? grow(e, 1) : DF_OK;
}

void df__env_info(df_env *e, uint64_t *map_size, uint64_t *used,
                  unsigned *max_readers, unsigned *readers_used) {
  MDB_envinfo info;
  map_lock_shared(e);
  if (mdb_env_info(e->mdb, &info) == 0) {
    *map_size = info.me_mapsize;
    *used = (uint64_t)(info.me_last_pgno + 1) * e->page_size;
    *max_readers = info.me_maxreaders;
    *readers_used = info.me_numreaders;
  }
  map_unlock_shared(e);
}

/* --------------------------------------------------- read transactions */

/* Read transactions reuse one reset MDB_txn per handle when it is free,
 * which saves LMDB's allocation and reader-slot search on every get.
 * Whoever wins the exchange of c->busy owns c->txn until it stores 0
 * again; c->txn is only changed by that owner. */
int df__env_read_begin(df_env *e, df_rcache *c, MDB_txn **txn, char *err,
                       size_t errlen) {
  int rc = 0, tries;
  for (tries = 0; tries < 3; tries++) {
    map_lock_shared(e);
    if (__atomic_exchange_n(&c->busy, 1, __ATOMIC_ACQUIRE) == 0) {
      MDB_txn *cached = __atomic_load_n(&c->txn, __ATOMIC_RELAXED);
      if (cached) {
        rc = mdb_txn_renew(cached);
        if (rc == 0) {
          *txn = cached;
          return DF_OK;
        }
        mdb_txn_abort(cached);
        __atomic_store_n(&c->txn, NULL, __ATOMIC_RELAXED);
      }
      __atomic_store_n(&c->busy, 0, __ATOMIC_RELEASE);
    }
    rc = mdb_txn_begin(e->mdb, NULL, MDB_RDONLY, txn);
    if (rc == 0) return DF_OK;
    map_unlock_shared(e);
    if (rc == MDB_MAP_RESIZED) {
      refresh_map(e);
    } else if (rc == MDB_READERS_FULL) {
      int dead = 0;
      mdb_reader_check(e->mdb, &dead);
      if (dead == 0) break;
    } else {
      break;
    }
  }
  if (rc == MDB_READERS_FULL)
    return df__fmt(err, errlen, DF_EREADERS,
                   "no free reader slot: every one of the database's reader "
                   "slots is in use (raise max_readers)");
  return df__fmt(err, errlen, df__kv_code(rc),
                 "cannot begin read transaction: %s", mdb_strerror(rc));
}

void df__env_read_end(df_env *e, df_rcache *c, MDB_txn *txn) {
  /* Only the owner of c->busy can hold the cached transaction, and it
   * does not change while it holds it: this comparison is stable. */
  if (txn == __atomic_load_n(&c->txn, __ATOMIC_RELAXED)) {
    mdb_txn_reset(txn);
    __atomic_store_n(&c->busy, 0, __ATOMIC_RELEASE);
  } else if (__atomic_exchange_n(&c->busy, 1, __ATOMIC_ACQUIRE) == 0) {
    if (__atomic_load_n(&c->txn, __ATOMIC_RELAXED) == NULL) {
      mdb_txn_reset(txn);
      __atomic_store_n(&c->txn, txn, __ATOMIC_RELAXED);
    } else {
      mdb_txn_abort(txn);
    }
    __atomic_store_n(&c->busy, 0, __ATOMIC_RELEASE);
  } else {
    mdb_txn_abort(txn);
  }
  map_unlock_shared(e);
}

void df__env_rcache_drop(df_rcache *c) {
  if (c->txn) mdb_txn_abort(c->txn);
  c->txn = NULL;
  c->busy = 0;
}

/* -------------------------------------------------- write transactions */

int df__env_writer_held(df_env *e) {
  int held;
  pthread_mutex_lock(&e->lock);
  held = e->has_writer && pthread_equal(e->writer, pthread_self());
  pthread_mutex_unlock(&e->lock);
  return held;
}

/* Forget that `thread` holds the write transaction.  Called after LMDB
 * released its writer lock, when another thread may already have taken
 * it and marked itself: only the mark of `thread` is cleared. */
static void writer_clear(df_env *e, pthread_t thread) {
  pthread_mutex_lock(&e->lock);
  if (e->has_writer && pthread_equal(e->writer, thread)) e->has_writer = 0;
  pthread_mutex_unlock(&e->lock);
}

/* Begin the LMDB write transaction, with the map lock shared; on
 * MDB_MAP_RESIZED adopt the size another process grew the map to. */
static int begin_txn(df_env *e, MDB_txn **txn, char *err, size_t errlen) {
  int rc, tries;
  for (tries = 0;; tries++) {
    map_lock_shared(e);
    rc = mdb_txn_begin(e->mdb, NULL, 0, txn);
    if (rc == 0) return DF_OK;
    map_unlock_shared(e);
    if (rc == MDB_MAP_RESIZED && tries < 3) {
      refresh_map(e);
      continue;
    }
    return df__fmt(err, errlen, df__kv_code(rc),
                   "cannot begin write transaction: %s", mdb_strerror(rc));
  }
}

/* The map could not grow: the transaction is lost, say why. */
static int growth_failed(df_env *e, int code, char *err, size_t errlen) {
  if (code == DF_EBUSY)
    return df__fmt(err, errlen, DF_EBUSY,
                   "the database map is full and cannot grow while this "
                   "thread holds a read transaction of the database; end "
                   "it first (nothing was written)");
  return df__fmt(err, errlen, code,
                 "the map of %s is full and cannot grow: %s; nothing was "
                 "written",
                 e->path,
                 code == DF_EDISKFULL
                     ? "no room on the disk (or the file-size limit)"
                     : df_strerror(code));
}

int df__env_write_begin(df_env *e, MDB_txn **txn, df_redo_rec **rec, char *err,
                        size_t errlen) {
  int code, tries;
  /* the writer lock first: a thread waiting for it holds no map lock, so
   * the writer can always grow the map */
  if ((code = df__commit_lock(e->commit, err, errlen)) != DF_OK) return code;
  for (tries = 0;; tries++) {
    grow_if_needed(e);
    if ((code = begin_txn(e, txn, err, errlen)) != DF_OK) break;
    code = df__commit_begin(e->commit, txn, rec, err, errlen);
    if (code == DF_OK) break;
    if (*txn) mdb_txn_abort(*txn);
    *txn = NULL;
    map_unlock_shared(e);
    if (code != DF_ERETRY || tries >= 8) break;
    if ((code = grow(e, 0)) != DF_OK) {
      growth_failed(e, code, err, errlen);
      break;
    }
  }
  if (code != DF_OK) {
    df__commit_unlock(e->commit);
    return code;
  }
  pthread_mutex_lock(&e->lock);
  e->writer = pthread_self();
  e->has_writer = 1;
  pthread_mutex_unlock(&e->lock);
  return DF_OK;
}

/* Grow after a transaction met a full map; when this thread still holds
 * a read transaction, the map cannot grow (it would wait for itself). */
static int grow_after_full(df_env *e, char *err, size_t errlen) {
  int code = grow(e, 0);
  if (code == DF_OK)
    return df__fmt(err, errlen, DF_ERETRY,
                   "the database map was full and has grown; run the "
                   "transaction again");
  return growth_failed(e, code, err, errlen);
}

int df__env_write_abort(df_env *e, MDB_txn *txn, pthread_t writer,
                        int grow_after, char *err, size_t errlen) {
  int code = DF_OK;
  if (txn) mdb_txn_abort(txn);
  df__commit_abandon(e->commit);
  writer_clear(e, writer);
  if (txn) map_unlock_shared(e);
  /* the map grows under the writer lock: see lmdb_open */
  if (grow_after) code = grow_after_full(e, err, errlen);
  df__commit_unlock(e->commit);
  return code;
}

int df__env_write_regrow(df_env *e, MDB_txn **txn, uint32_t n_ops, size_t len,
                         char *err, size_t errlen) {
  int code, tries;
  for (tries = 0;; tries++) {
    /* the record's last value, filled in through the map, is taken before
     * the map moves */
    df__commit_settle(e->commit);
    mdb_txn_abort(*txn);
    *txn = NULL;
    map_unlock_shared(e);
    if ((code = grow(e, 0)) != DF_OK) {
      growth_failed(e, code, err, errlen);
      break;
    }
    if ((code = begin_txn(e, txn, err, errlen)) != DF_OK) break;
    code = df__commit_replay(e->commit, *txn, n_ops, len);
    if (code != DF_ERETRY || tries >= 8) {
      if (code != DF_OK)
        df__fmt(err, errlen, code,
                "replaying a transaction after the map grew: %s",
                df_strerror(code));
      return code;
    }
  }
  /* the transaction is gone and the map lock released: the caller dooms
   * the transaction; its abort must not release them again */
  return code;
}

/* The error of a failed commit.  LMDB reports a write cut short by a
 * full disk as EIO (a short pwrite), and a file-size limit as EFBIG: name
 * the likely cause from the space left on the device and the process's
 * RLIMIT_FSIZE, so the message says what went wrong. */
static int commit_failed(df_env *e, int rc, const char *why, char *err,
                         size_t errlen) {
  struct statvfs vfs;
  struct rlimit rl;
  struct stat st;
  char data[PATH_MAX];
  if (rc != EIO && rc != ENOSPC && rc != EDQUOT && rc != EFBIG)
    return df__fmt(err, errlen, df__kv_code(rc), "commit failed: %s", why);
  if (statvfs(e->path, &vfs) == 0 &&
      (uint64_t)vfs.f_bavail * vfs.f_frsize < ((uint64_t)1 << 20))
    return df__fmt(err, errlen, DF_EDISKFULL,
                   "commit failed: no space left on the device of %s "
                   "(%llu bytes free); nothing was written",
                   e->path, (unsigned long long)vfs.f_bavail * vfs.f_frsize);
  snprintf(data, sizeof data, "%s/data.mdb", e->path);
  if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      stat(data, &st) == 0 &&
      (uint64_t)st.st_size + ((uint64_t)1 << 20) > (uint64_t)rl.rlim_cur)
    return df__fmt(err, errlen, DF_EDISKFULL,
                   "commit failed: %s reached the process's file-size limit "
                   "(%llu bytes, ulimit -f); nothing was written",
                   data, (unsigned long long)rl.rlim_cur);
  return df__fmt(err, errlen,
                 rc == ENOSPC || rc == EDQUOT ? DF_EDISKFULL : DF_EIO,
                 "commit failed: %s; nothing was written", why);
}

int df__env_write_commit(df_env *e, MDB_txn *txn, df_sync sync,
                         pthread_t writer, char *err, size_t errlen) {
  int code, tries;
  for (tries = 0;; tries++) {
    code = df__commit_finish(e->commit, txn, sync, err, errlen);
    if (code != DF_ERETRY) break;
    /* LMDB's commit met a full map (its free list needs pages): the
     * record is written; grow, and make the same commit again */
    map_unlock_shared(e);
    code = tries < 8 ? grow(e, 0) : DF_ERETRY;
    if (code == DF_OK)
      code = begin_txn(e, &txn, err, errlen);
    else
      growth_failed(e, code, err, errlen);
    if (code == DF_OK) {
      code = df__commit_replay(e->commit, txn, UINT32_MAX, (size_t)-1);
      if (code == DF_OK) continue;
      mdb_txn_abort(txn);
      map_unlock_shared(e);
    }
    /* no map lock is held here */
    df__commit_abandon(e->commit);
    writer_clear(e, writer);
    df__commit_unlock(e->commit);
    return code;
  }
  writer_clear(e, writer);
  map_unlock_shared(e);
  df__commit_unlock(e->commit);
  if (code == DF_EIO || code == DF_EDISKFULL) {
    char why[DF_MSG_MAX];
    snprintf(why, sizeof why, "%s", err);
    return commit_failed(e, code == DF_EDISKFULL ? ENOSPC : EIO, why, err,
                         errlen);
  }
  return code;
}

void df__env_commit_report(df_env *e, df_check_report *r) {
  df__commit_report(e->commit, r);
}

/* ------------------------------------------------------------ meta.json */

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

static void json_opt_str(FILE *f, const char *s) {
  if (s)
    json_str(f, s);
  else
    fputs("null", f);
}

/* The human-readable copy of the schema (never read back). */
static void meta_json_write(df_env *e) {
  char tmp[PATH_MAX], dst[PATH_MAX];
  const df_schema *s = &e->schema.s;
  static const char *proj[] = {"all", "keys", "include"};
  FILE *f;
  size_t i, j;
  if (snprintf(tmp, sizeof tmp, "%s/meta.json.tmp", e->path) >= (int)sizeof tmp)
    return;
  snprintf(dst, sizeof dst, "%s/meta.json", e->path);
  f = fopen(tmp, "w");
  if (f == NULL) return; /* a copy for humans; the truth is in meta */
  fprintf(f, "{\n  \"format\": %d,\n  \"pk\": ", DF_FORMAT_VERSION);
  json_str(f, s->pk);
  fputs(",\n  \"sk\": ", f);
  json_opt_str(f, s->sk);
  fputs(",\n  \"ttl\": ", f);
  json_opt_str(f, s->ttl_attr);
  fputs(",\n  \"indexes\": [", f);
  for (i = 0; i < s->n_indexes; i++) {
    const df_index_def *d = &s->indexes[i];
    fputs(i ? ",\n    {" : "\n    {", f);
    fputs("\"name\": ", f);
    json_str(f, d->name);
    fprintf(f, ", \"id\": %u, \"kind\": \"%s\", \"pk\": ", d->id,
            d->kind == DF_GSI ? "gsi" : "lsi");
    json_opt_str(f, d->pk);
    fputs(", \"sk\": ", f);
    json_opt_str(f, d->sk);
    fprintf(f, ", \"projection\": \"%s\"", proj[d->projection]);
    if (d->projection == DF_PROJ_INCLUDE) {
      fputs(", \"include\": [", f);
      for (j = 0; j < d->n_include; j++) {
        if (j) fputs(", ", f);
        json_str(f, d->include[j]);
      }
      fputc(']', f);
    }
    fputc('}', f);
  }
  fputs(s->n_indexes ? "\n  ]\n}\n" : "]\n}\n", f);
  if (fclose(f) == 0)
    rename(tmp, dst);
  else
    unlink(tmp);
}

/* -------------------------------------------------------------- schema */

int df__env_schema_store(const df_kv *kv, const df_schema *s) {
  df_buf b;
  int code;
  df__buf_init(&b);
  code = df__schema_encode(s, &b);
  if (code == DF_OK)
    code = df__kv_put(kv, DF_SUB_META, META_SCHEMA, sizeof META_SCHEMA - 1, b.p,
                      b.len);
  df__buf_free(&b);
  return code;
}

int df__env_schema_load(const df_kv *kv, df_schema_owned *out, char *err,
                        size_t errlen) {
  df_bytes v;
  int code;
  code = df__kv_get(kv, DF_SUB_META, META_SCHEMA, sizeof META_SCHEMA - 1, &v);
  if (code != DF_OK)
    return df__fmt(err, errlen, code, "cannot read the schema: %s",
                   df_strerror(code));
  return df__schema_decode(v.p, v.n, out, err, errlen);
}

/* The old blob may still be read by another thread of this process (a
 * query holding an index definition), so it is kept until the environment
 * closes; schema changes are rare, so this stays small. */
static void retire(df_env *e, char *blob) {
  df_retired *r;
  if (blob == NULL) return;
  r = df__malloc(sizeof *r);
  if (r == NULL) { /* the node reserved before the change */
    r = e->retire_spare;
    e->retire_spare = NULL;
  }
  if (r == NULL) return; /* leak rather than free under a reader */
  r->blob = blob;
  r->next = e->retired;
  e->retired = r;
}

int df__env_schema_reserve(df_env *e) {
  if (e->retire_spare == NULL) e->retire_spare = df__malloc(sizeof(df_retired));
  return e->retire_spare ? DF_OK : DF_ENOMEM;
}

static void adopt(df_env *e, df_schema_owned *next) {
  char *old_blob;
  pthread_mutex_lock(&e->lock);
  old_blob = e->schema.blob;
  df__schema_move(&e->schema, next);
  df__buf_reset(&e->schema_rec); /* re-encoded at the next refresh */
  pthread_mutex_unlock(&e->lock);
  retire(e, old_blob);
}

void df__env_schema_adopt(df_env *e, df_schema_owned *next) {
  adopt(e, next);
  meta_json_write(e);
}

static void retired_free(df_env *e) {
  df_retired *r, *next;
  for (r = e->retired; r; r = next) {
    next = r->next;
    df__free(r->blob);
    df__free(r);
  }
  e->retired = NULL;
  df__free(e->retire_spare);
  e->retire_spare = NULL;
  df__buf_free(&e->schema_rec);
}

int df__env_schema_refresh(df_env *e, const df_kv *kv) {
  df_bytes v;
  df_schema_owned next;
  char err[DF_MSG_MAX];
  int code;
  code = df__kv_get(kv, DF_SUB_META, META_SCHEMA, sizeof META_SCHEMA - 1, &v);
  if (code != DF_OK) return code == DF_ENOTFOUND ? DF_OK : code;
  if (e->schema_rec.len == 0 &&
      df__schema_encode(&e->schema.s, &e->schema_rec) != DF_OK) {
    df__buf_reset(&e->schema_rec);
    return DF_ENOMEM;
  }
  if (e->schema_rec.len == v.n && memcmp(e->schema_rec.p, v.p, v.n) == 0)
    return DF_OK;
  /* Another process changed the schema (added or dropped an index). */
  if (df__env_schema_reserve(e) != DF_OK) return DF_ENOMEM;
  code = df__schema_decode(v.p, v.n, &next, err, sizeof err);
  if (code != DF_OK) return code;
  adopt(e, &next);
  if (df__buf_append(&e->schema_rec, v.p, v.n) != 0)
    df__buf_reset(&e->schema_rec);
  return DF_OK;
}

/* ---------------------------------------------------- change-log settings */

int df__env_stream_settings(const df_kv *kv, uint64_t *keep, double *secs) {
  df_bytes v;
  df_value x;
  int r;
  *keep = 0;
  *secs = 0;
  r = df__kv_get(kv, DF_SUB_META, META_STREAM, sizeof META_STREAM - 1, &v);
  if (r == DF_ENOTFOUND) return DF_OK;
  if (r != DF_OK) return r;
  r = df__mp_map_find(v.p, v.n, "keep", 4, &x, NULL, NULL);
  if (r < 0) return DF_ECORRUPT;
  if (r == 1) {
    if (x.type == DF_TINT && x.i >= 0)
      *keep = (uint64_t)x.i;
    else if (x.type == DF_TUINT)
      *keep = x.u;
    else
      return DF_ECORRUPT;
  }
  r = df__mp_map_find(v.p, v.n, "keep_seconds", 12, &x, NULL, NULL);
  if (r < 0) return DF_ECORRUPT;
  if (r == 1) {
    if (x.type == DF_TFLOAT && x.f >= 0)
      *secs = x.f;
    else if (x.type == DF_TINT && x.i >= 0)
      *secs = (double)x.i;
    else
      return DF_ECORRUPT;
  }
  return DF_OK;
}

int df__env_stream_settings_store(const df_kv *kv, uint64_t keep, double secs) {
  df_buf b;
  int code;
  df__buf_init(&b);
  df__mp_put_map(&b, 2);
  df__mp_put_str(&b, "keep", 4);
  df__mp_put_uint(&b, keep);
  df__mp_put_str(&b, "keep_seconds", 12);
  df__mp_put_float(&b, secs);
  code = b.failed ? DF_ENOMEM
                  : df__kv_put(kv, DF_SUB_META, META_STREAM,
                               sizeof META_STREAM - 1, b.p, b.len);
  df__buf_free(&b);
  return code;
}

/* ------------------------------------------------------------- opening */

static int mkdirs(const char *path) {
  char buf[PATH_MAX];
  size_t n = strlen(path), i;
  if (n == 0 || n >= sizeof buf) return ENAMETOOLONG;
  memcpy(buf, path, n + 1);
  for (i = 1; i <= n; i++) {
    if (buf[i] == '/' || buf[i] == '\0') {
      char c = buf[i];
      buf[i] = '\0';
      if (mkdir(buf, 0755) != 0 && errno != EEXIST) return errno;
      buf[i] = c;
    }
  }
  return 0;
}

/* A directory is ours to initialise when it has no data.mdb and holds
 * nothing but what dynafile itself writes. */
static int dir_is_foreign(const char *path) {
  DIR *d = opendir(path);
  struct dirent *de;
  int foreign = 0;
  if (d == NULL) return 0;
  while ((de = readdir(d)) != NULL) {
    const char *n = de->d_name;
    if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
        strcmp(n, "lock.mdb") == 0 || strcmp(n, "data.mdb") == 0 ||
        strcmp(n, "redo.log") == 0 || strcmp(n, "redo.lock") == 0 ||
        strncmp(n, "meta.json", 9) == 0)
      continue;
    foreign = 1;
    break;
  }
  closedir(d);
  return foreign;
}

static void env_destroy(df_env *e) {
  if (e == NULL) return;
  df__commit_close(e->commit); /* a last checkpoint, the pin, the locks */
  e->commit = NULL;
  if (e->mdb) mdb_env_close(e->mdb);
  pthread_mutex_destroy(&e->lock);
  pthread_rwlock_destroy(&e->map_lock);
  df__schema_free(&e->schema);
  retired_free(e);
  df__free(e->path);
  df__free(e);
}

/* Open the sub-databases and load the stored schema, or store the first
 * one in a new database.
 *
 * This is the one write transaction that does not go through
 * df__env_write_begin/commit and the redo log: it runs before the log is
 * attached (df__commit_attach needs the sub-database handles it opens).
 * It writes only when there is no checkpoint to protect yet -- a new
 * database (no meta sub-database: nothing has been committed through a
 * log, so no checkpoint exists), or one whose log this open has just
 * created (a database of the format before the log) -- and creates
 * nothing in a database with a log: a missing sub-database there is a
 * damaged file, refused.  Otherwise it commits nothing (LMDB writes no
 * meta page for a transaction without changes). */
static int env_load(df_env *e, const df_open_options *o, char *err,
                    size_t errlen) {
  MDB_txn *txn = NULL;
  df_kv kv;
  df_bytes v;
  unsigned dflags =
      !e->readonly && df__commit_log_created(e->commit) ? MDB_CREATE : 0;
  int rc, code = DF_OK, fresh = 0, i, tries = 0;
  char why[DF_MSG_MAX];

again:
  rc = mdb_txn_begin(e->mdb, NULL, e->readonly ? MDB_RDONLY : 0, &txn);
  if (rc == MDB_MAP_RESIZED && tries++ < 16) {
    /* another process grew the map since LMDB opened the file */
    txn = NULL;
    if ((code = refresh_map(e)) != DF_OK)
      return df__fmt(err, errlen, code, "cannot open database: %s",
                     df_strerror(code));
    goto again;
  }
  if (rc != 0)
    return df__fmt(err, errlen, df__kv_code(rc), "cannot open database: %s",
                   mdb_strerror(rc));
  rc = mdb_dbi_open(txn, sub_names[DF_SUB_META], 0, &e->dbi[DF_SUB_META]);
  if (rc == MDB_NOTFOUND) {
    /* No meta: a fresh environment, unless LMDB's main database already
     * holds something (an environment written by another program). */
    MDB_stat st;
    MDB_dbi main;
    if (mdb_dbi_open(txn, NULL, 0, &main) == 0 &&
        mdb_stat(txn, main, &st) == 0 && st.ms_entries > 0) {
      code = df__fmt(err, errlen, DF_ECORRUPT,
                     "%s is an LMDB environment of another program, not a "
                     "dynafile database",
                     e->path);
      goto out;
    }
    if (e->probing) goto out; /* an empty environment: ours to create */
    if (e->readonly) {
      code = df__fmt(err, errlen, DF_ECORRUPT,
                     "%s holds no dynafile database (opened read-only, so "
                     "none was created)",
                     e->path);
      goto out;
    }
    rc = mdb_dbi_open(txn, sub_names[DF_SUB_META], MDB_CREATE,
                      &e->dbi[DF_SUB_META]);
    fresh = 1;
    dflags = MDB_CREATE;
  }
  for (i = DF_SUB_META + 1; rc == 0 && i < DF_SUB_COUNT; i++)
    rc = mdb_dbi_open(txn, sub_names[i], dflags, &e->dbi[i]);
  if (rc != 0) {
    code = df__fmt(
        err, errlen, rc == MDB_NOTFOUND ? DF_ECORRUPT : df__kv_code(rc),
        "cannot open the sub-databases of %s: %s", e->path, mdb_strerror(rc));
    goto out;
  }
  df__env_kv(e, txn, &kv);
  code = df__kv_get(&kv, DF_SUB_META, META_SCHEMA, sizeof META_SCHEMA - 1, &v);
  if (code == DF_OK) {
    code = df__schema_decode(v.p, v.n, &e->schema, why, sizeof why);
    if (code != DF_OK)
      df__fmt(err, errlen, code, "%s: stored schema: %s", e->path, why);
  } else if (code == DF_ENOTFOUND && !fresh) {
    /* dynafile writes meta and its schema record in one transaction: a
     * meta without one belongs to another program (nothing is written) */
    code = df__fmt(err, errlen, DF_ECORRUPT,
                   "%s is an LMDB environment of another program (its meta "
                   "sub-database holds no dynafile schema)",
                   e->path);
  } else if (code == DF_ENOTFOUND) {
    /* A schema without keys (only a TTL or indexes) takes the keys of
     * create_schema, which the caller fills with its defaults. */
    const df_schema *want = o->schema && (o->schema->pk || !o->create_schema)
                                ? o->schema
                                : o->create_schema;
    if (want == NULL) {
      code = df__fmt(err, errlen, DF_EVALIDATION,
                     "%s: new database needs a schema (at least pk)", e->path);
      goto out;
    }
    code = df__schema_copy(want, &e->schema, why, sizeof why);
    if (code != DF_OK) {
      df__fmt(err, errlen, code, "%s", why);
      goto out;
    }
    code = df__env_schema_store(&kv, &e->schema.s);
    if (code != DF_OK) df__fmt(err, errlen, code, "cannot store schema");
  } else {
    df__fmt(err, errlen, code, "cannot read schema: %s", df_strerror(code));
  }
  if (code == DF_ERETRY && tries++ < 16) {
    /* a large first schema filled the new map: grow it, start again */
    mdb_txn_abort(txn);
    txn = NULL;
    df__schema_free(&e->schema);
    memset(&e->schema, 0, sizeof e->schema);
    if ((code = grow(e, 0)) != DF_OK) {
      df__fmt(err, errlen, code, "cannot store schema: %s", df_strerror(code));
      goto out;
    }
    goto again;
  }
  if (code != DF_OK) goto out;
  rc = mdb_txn_commit(txn); /* keeps the dbi handles */
  txn = NULL;
  if (rc == MDB_MAP_FULL && tries++ < 16) {
    df__schema_free(&e->schema);
    memset(&e->schema, 0, sizeof e->schema);
    if ((code = grow(e, 0)) != DF_OK) {
      df__fmt(err, errlen, code, "cannot store schema: %s", df_strerror(code));
      goto out;
    }
    goto again;
  }
  if (rc != 0) {
    code = df__fmt(err, errlen, df__kv_code(rc), "%s: %s",
                   fresh ? "cannot store schema" : "cannot open database",
                   mdb_strerror(rc));
    goto out;
  }
  if (fresh) meta_json_write(e);
out:
  if (txn) mdb_txn_abort(txn);
  return code;
}

static size_t page_size(MDB_env *env) {
  MDB_stat st;
  if (mdb_env_stat(env, &st) != 0 || st.ms_psize < 64 ||
      (st.ms_psize & (st.ms_psize - 1)) != 0)
    return 4096;
  return st.ms_psize;
}

/* Hand up to `want` bytes of the data file's pages in use (from its
 * start) to the kernel to read in the background (see
 * df_open_options.prefetch).  The map is opened with MDB_NORDAHEAD, so a
 * page fault reads one page and nothing around it; without this, the
 * first pass over a database that is not in the page cache waits for the
 * disk once per page (a full scan of 100,000 items: 9,025 reads, 2 s,
 * against 0.3 s with it; bench/reads.lua).  The kernel caps each request
 * at its read-ahead window, so the range goes in chunks no larger than
 * the smallest usual window.  When a few pages spread over the range can all
 * be read without waiting (preadv2 with RWF_NOWAIT fails for a page that
 * is not in the page cache), the file is taken as cached and nothing is
 * asked.  It works on LMDB's own descriptor of the file (no open of its
 * own: every system call counts in an open).  Failures are ignored: this
 * only saves time. */
#define PREFETCH_CHUNK ((size_t)128 << 10)
#define PREFETCH_SAMPLES_MIN 4
#define PREFETCH_SAMPLES_MAX 16
#define PREFETCH_SAMPLE_SPAN ((size_t)4 << 20)

/* One sample per 4 MiB of the range, at least 4 and at most 16: a small
 * file that is wrongly taken as cached costs few page faults, and each
 * sample is a system call of every open.  The samples sit in the middle of
 * their spans and the last one on the range's last byte: the open's own
 * reads of the meta pages start the kernel's read-ahead from byte 0, which
 * can cache the start of the file by the time of the probe, and samples
 * from byte 0 on (0, 64 KiB, 128 KiB, 192 KiB of a 256 KiB range) then all
 * found cached a range whose end was not. */
static int cached(int fd, size_t len) {
#ifdef RWF_NOWAIT
  unsigned char byte;
  struct iovec iov;
  size_t n = len / PREFETCH_SAMPLE_SPAN, step;
  size_t i, at;
  if (n < PREFETCH_SAMPLES_MIN) n = PREFETCH_SAMPLES_MIN;
  if (n > PREFETCH_SAMPLES_MAX) n = PREFETCH_SAMPLES_MAX;
  step = len / n;
  iov.iov_base = &byte;
  iov.iov_len = 1;
  for (i = 0; i < n; i++) {
    at = i + 1 == n ? len - 1 : step * i + step / 2;
    if (preadv2(fd, &iov, 1, (off_t)at, RWF_NOWAIT) != 1) return 0;
  }
  return 1;
#else
  (void)fd;
  (void)len;
  return 0;
#endif
}

/* The machine's memory in pages (asked once: it is a system call). */
static long phys_pages(void) {
  static long cached_pages;
  long n = __atomic_load_n(&cached_pages, __ATOMIC_RELAXED);
  if (n == 0) {
    n = sysconf(_SC_PHYS_PAGES);
    __atomic_store_n(&cached_pages, n, __ATOMIC_RELAXED);
  }
  return n;
}

static void prefetch(df_env *e, size_t want) {
  MDB_envinfo info;
  size_t used, len, off, pg = (size_t)sysconf(_SC_PAGESIZE);
  long phys = phys_pages();
  int fd;
  if (want == DF_PREFETCH_NONE || mdb_env_info(e->mdb, &info) != 0 ||
      mdb_env_get_fd(e->mdb, &fd) != 0)
    return;
  if (want == 0) want = DF_PREFETCH_DEFAULT;
  if (phys > 0 && want > (size_t)phys / 4 * pg) want = (size_t)phys / 4 * pg;
  used = ((size_t)info.me_last_pgno + 1) * e->page_size;
  len = used < want ? used : want;
  if (len == 0) return;
  if (!cached(fd, len))
    for (off = 0; off < len; off += PREFETCH_CHUNK)
      (void)posix_fadvise(
          fd, (off_t)off,
          (off_t)(len - off < PREFETCH_CHUNK ? len - off : PREFETCH_CHUNK),
          POSIX_FADV_WILLNEED);
}

/* A data file shorter than the last page its meta page names was cut
 * (a torn copy, a copy onto a full disk): LMDB would map the missing pages
 * and the first read of one would kill the process with SIGBUS. */
static int check_file_length(df_env *e, const char *data_path, char *err,
                             size_t errlen) {
  MDB_envinfo info;
  struct stat fst;
  uint64_t need;
  if (mdb_env_info(e->mdb, &info) != 0 || stat(data_path, &fst) != 0)
    return DF_OK; /* nothing to compare; LMDB reports its own errors */
  need = ((uint64_t)info.me_last_pgno + 1) * e->page_size;
  if ((uint64_t)fst.st_size >= need) return DF_OK;
  return df__fmt(err, errlen, DF_ECORRUPT,
                 "%s is truncated: %lld bytes, but its last page ends at "
                 "byte %llu; not a database",
                 data_path, (long long)fst.st_size, (unsigned long long)need);
}

/* A change-log origin unique to this process and environment: the
 * process id, the time and addresses, mixed (never 0). */
static uint64_t new_origin(const df_env *e) {
  struct timespec ts;
  uint64_t parts[4];
  uint64_t h;
  clock_gettime(CLOCK_REALTIME, &ts);
  parts[0] = (uint64_t)getpid();
  parts[1] = (uint64_t)ts.tv_sec;
  parts[2] = (uint64_t)ts.tv_nsec;
  parts[3] = (uint64_t)(uintptr_t)e;
  h = df__hash64(parts, sizeof parts, 0x6f726967696eull);
  return h ? h : 1;
}

/* LMDB initialises a new data file while it holds an exclusive lock on
 * byte 0 of lock.mdb, and an opener reads the file only once it has a
 * shared lock on that byte.  Wait the same way before judging a short
 * data file, so that one another process is creating at this moment is
 * not taken for a torn one.  (No handle of this process has the
 * directory open here -- the registry would have found it -- so closing
 * the descriptor releases no lock of ours.) */
static void wait_for_creator(const char *path) {
  char lock_path[PATH_MAX];
  struct flock fl;
  int fd;
  if (snprintf(lock_path, sizeof lock_path, "%s/lock.mdb", path) >=
      (int)sizeof lock_path)
    return;
  fd = open(lock_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return; /* no lock file: nobody is creating anything */
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_RDLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 1;
  while (fcntl(fd, F_SETLKW, &fl) != 0 && errno == EINTR) continue;
  close(fd);
}

/* Create e->mdb and open it with `flags`.  With MDB_WRITEMAP, LMDB sets
 * the file's length to the map size as it opens: never less than the
 * file's length now, or a file another process grew would be cut under
 * its map (and the next write there would kill it with SIGBUS); the
 * caller holds the writer lock, so nobody grows the file meanwhile. */
static int lmdb_open(df_env *e, const df_open_options *o, unsigned flags,
                     char *err, size_t errlen) {
  int rc, code;
  size_t map = o->map_size ? o->map_size : DEFAULT_MAP_SIZE;
  struct stat st;
  char data[PATH_MAX];
  snprintf(data, sizeof data, "%s/data.mdb", e->path);
  if ((flags & MDB_WRITEMAP) && stat(data, &st) == 0 &&
      (uint64_t)st.st_size > map)
    map = (size_t)st.st_size;
  rc = mdb_env_create(&e->mdb);
  if (rc == 0) rc = mdb_env_set_maxdbs(e->mdb, 8);
  if (rc == 0)
    rc = mdb_env_set_maxreaders(
        e->mdb, o->max_readers ? o->max_readers : DF_DEFAULT_MAX_READERS);
  if (rc == 0) rc = mdb_env_set_mapsize(e->mdb, map);
  if (rc != 0)
    return df__fmt(err, errlen, df__kv_code(rc),
                   "cannot create environment: %s", mdb_strerror(rc));
  rc = mdb_env_open(e->mdb, e->path, flags, 0644);
  if (rc != 0) {
    code = df__kv_code(rc);
    if (rc == EINVAL || rc == ENOENT) code = DF_ECORRUPT;
    return df__fmt(err, errlen, code, "cannot open %s: %s", e->path,
                   mdb_strerror(rc));
  }
  e->page_size = page_size(e->mdb);
  return DF_OK;
}

static void lmdb_close(df_env *e) {
  if (e->mdb) mdb_env_close(e->mdb);
  e->mdb = NULL;
}

/* A data file without a redo log beside it: a database written by a
 * release before the log, or another program's LMDB environment.  Find
 * out which without writing to it (a read-only LMDB open, as the release
 * before the log opened it, and the checks of env_load), before anything
 * is created beside it. */
static int probe(df_env *e, const df_open_options *o, const char *data_path,
                 char *err, size_t errlen) {
  int code, ro = e->readonly;
  e->readonly = 1;
  e->probing = !ro; /* an empty environment (an open that failed before
                       its schema was stored) may still be initialised */
  code = lmdb_open(e, o, MDB_NOTLS | MDB_NORDAHEAD | MDB_RDONLY, err, errlen);
  if (code == DF_OK) code = check_file_length(e, data_path, err, errlen);
  if (code == DF_OK) code = env_load(e, o, err, errlen);
  df__schema_free(&e->schema);
  memset(&e->schema, 0, sizeof e->schema);
  lmdb_close(e);
  e->readonly = ro;
  e->probing = 0;
  return code;
}

static int env_open(const char *path, const struct stat *st,
                    const df_open_options *o, df_env **out, char *err,
                    size_t errlen) {
  df_env *e;
  int code;
  char data_path[PATH_MAX];
  struct stat dst;
  unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
  df_commit_options copts;
  df_redo *log = NULL;
  int fresh = 0;

  if (snprintf(data_path, sizeof data_path, "%s/data.mdb", path) >=
      (int)sizeof data_path)
    return df__fmt(err, errlen, DF_EINVAL, "path too long: %s", path);
  if (stat(data_path, &dst) != 0) {
    if (o->readonly)
      return df__fmt(err, errlen, DF_ECORRUPT,
                     "%s holds no dynafile database (opened read-only)", path);
    if (dir_is_foreign(path))
      return df__fmt(err, errlen, DF_ECORRUPT,
                     "%s is not empty and holds no dynafile database; "
                     "refusing to create one among other files",
                     path);
    fresh = 1;
  } else if ((size_t)dst.st_size < 2 * 4096) {
    /* LMDB would silently initialise an empty file: a torn or truncated
     * data file (still short once no process is creating it) is not a new
     * database. */
    wait_for_creator(path);
    if (stat(data_path, &dst) == 0 && (size_t)dst.st_size < 2 * 4096)
      return df__fmt(err, errlen, DF_ECORRUPT,
                     "%s is truncated (%lld bytes); not a database", data_path,
                     (long long)dst.st_size);
  }

  e = df__malloc(sizeof *e);
  if (e == NULL) return df__fmt(err, errlen, DF_ENOMEM, "out of memory");
  memset(e, 0, sizeof *e);
  pthread_mutex_init(&e->lock, NULL);
  pthread_rwlock_init(&e->map_lock, NULL);
  e->dev = st->st_dev;
  e->ino = st->st_ino;
  e->fork_gen = fork_gen;
  e->refs = 1;
  e->readonly = o->readonly;
  e->path = df__strdup(path);
  e->page_size = 4096;
  snprintf(e->id, sizeof e->id, "%llx:%llx", (unsigned long long)e->dev,
           (unsigned long long)e->ino);
  e->origin = new_origin(e);
  if (e->path == NULL) {
    env_destroy(e);
    return df__fmt(err, errlen, DF_ENOMEM, "out of memory");
  }
  if (!fresh && !df__commit_has_log(path, o->readonly, &log)) {
    /* nothing may be written before the directory is known to hold a
     * dynafile database */
    code = probe(e, o, data_path, err, errlen);
    if (code != DF_OK) {
      env_destroy(e);
      return code;
    }
  }
  /* the redo log's open lock, and recovery's first part (before LMDB
   * reads the meta pages) */
  memset(&copts, 0, sizeof copts);
  copts.flush_ms = o->flush_ms;
  copts.checkpoint_bytes = o->checkpoint_bytes;
  copts.log = log; /* df__commit_open owns it now */
  code = df__commit_open(path, o->readonly, &copts, &e->commit, err, errlen);
  if (code != DF_OK) {
    env_destroy(e);
    return code;
  }
  /* LMDB never flushes: the redo log makes commits durable (commit.c) */
  flags |= o->readonly ? MDB_RDONLY : MDB_NOSYNC;
  df__commit_hold(e->commit, 1); /* see lmdb_open */
  code = lmdb_open(e, o, flags, err, errlen);
  df__commit_hold(e->commit, 0);
  if (code != DF_OK ||
      (o->readonly &&
       (code = check_file_length(e, data_path, err, errlen)) != DF_OK)) {
    env_destroy(e);
    return code;
  }
  {
    int dead = 0;
    mdb_reader_check(e->mdb, &dead); /* reclaim slots of killed processes */
  }
  /* (the file is allocated ahead of the pages in use by the first write
   * transaction, grow_if_needed: an open that only reads makes no
   * fallocate call) */
  prefetch(e, o->prefetch);
  code = env_load(e, o, err, errlen);
  if (code == DF_OK)
    code =
        df__commit_attach(e->commit, e->mdb, e->dbi, grow_cb, e, err, errlen);
  /* a database written before the redo log (format 2 or older) has one
   * now; ddl.c's open brings its format to DF_FORMAT_VERSION through the
   * log (upgrade.c), so that no release before it writes around the log */
  if (code != DF_OK) {
    env_destroy(e);
    return code;
  }
  *out = e;
  return DF_OK;
}

int df__env_acquire(const char *path, const df_open_options *o, df_env **out,
                    char *err, size_t errlen) {
  struct stat st;
  df_env *e;
  int code, rc;

  *out = NULL;
  pthread_once(&atfork_once, install_atfork);
  /* the directory's parents are made only when it is missing: an open of
   * an existing database makes no mkdir call */
  if (stat(path, &st) != 0) {
    if (errno != ENOENT || o->readonly)
      return df__fmt(err, errlen, errno == EACCES ? DF_EACCESS : DF_EIO,
                     "cannot open %s: %s", path, strerror(errno));
    if ((rc = mkdirs(path)) != 0)
      return df__fmt(err, errlen,
                     rc == EACCES || rc == EPERM ? DF_EACCESS : DF_EIO,
                     "cannot create directory %s: %s", path, strerror(rc));
    if (stat(path, &st) != 0)
      return df__fmt(err, errlen, errno == EACCES ? DF_EACCESS : DF_EIO,
                     "cannot open %s: %s", path, strerror(errno));
  }
  if (!S_ISDIR(st.st_mode))
    return df__fmt(err, errlen, DF_EIO, "%s is not a directory", path);
  if (access(path, o->readonly ? (R_OK | X_OK) : (R_OK | W_OK | X_OK)) != 0)
    return df__fmt(err, errlen, DF_EACCESS, "cannot open %s: %s", path,
                   strerror(errno));

  pthread_mutex_lock(&registry_lock);
  for (e = registry; e; e = e->next)
    if (e->dev == st.st_dev && e->ino == st.st_ino && e->fork_gen == fork_gen)
      break;
  if (e) {
    if (e->readonly && !o->readonly) {
      pthread_mutex_unlock(&registry_lock);
      return df__fmt(err, errlen, DF_EREADONLY,
                     "%s is already open read-only in this process", path);
    }
    e->refs++;
  } else {
    code = env_open(path, &st, o, &e, err, errlen);
    if (code != DF_OK) {
      pthread_mutex_unlock(&registry_lock);
      return code;
    }
    e->next = registry;
    registry = e;
  }
  pthread_mutex_unlock(&registry_lock);
  *out = e;
  return DF_OK;
}

void df__env_release(df_env *e) {
  df_env **pp;
  if (e == NULL) return;
  pthread_mutex_lock(&registry_lock);
  if (--e->refs == 0) {
    for (pp = &registry; *pp; pp = &(*pp)->next)
      if (*pp == e) {
        *pp = e->next;
        break;
      }
    env_destroy(e);
  }
  pthread_mutex_unlock(&registry_lock);
}
