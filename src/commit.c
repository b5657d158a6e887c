/*
 * commit.c -- the commit path: a redo log in front of LMDB.
 *
 * Every write transaction's changes -- the LMDB-level puts, deletes and
 * clears on every sub-database, collected by kv.c into a record -- are
 * appended to <dir>/redo.log (format: redo.c) under the writer lock, as
 * one checksummed record with a sequence number, before LMDB commits.
 * sync "full" flushes that record (one fdatasync) before the commit
 * returns; "normal" leaves it to the flusher thread, which flushes the log
 * at most flush_ms after a commit; "off" never flushes it.  LMDB itself
 * runs with MDB_NOSYNC: a commit writes its pages into the page cache
 * and flushes nothing.  (MDB_WRITEMAP was measured and left out: with the
 * pin below, the pages a commit writes are new or were written back by a
 * checkpoint, so every write through the map took a page fault -- 7 per
 * put, 70 us of CPU against 35 us with LMDB's own writes.)  Now and then
 * a checkpoint flushes the
 * data file and records, in the log's header, LMDB's meta pages and the
 * sequence number the data file then covers; the log starts again after
 * it.  After a crash of the machine, recovery puts the checkpoint's meta
 * pages back into the data file and replays the records that follow it.
 *
 * <dir>/redo.lock holds the state processes share (the control page,
 * mapped by each): the writer lock -- a robust process-shared mutex, so a
 * process killed while holding it never blocks the others -- where the
 * next record goes, a record whose commit is in flight, the checkpoint in
 * force, and how far the log is flushed.  It is never flushed: it only
 * has to be right while some process has the database open; the first
 * process to open the database after the last one closed (the open lock:
 * an open-file-description lock on byte 0 of redo.lock, shared by every
 * process that has the database open, taken exclusively to find out that
 * none does) rebuilds it.
 *
 * ------------------------------------------------------ why it is safe
 *
 * Terms: a checkpoint C is the LMDB snapshot (transaction id C.txnid) of
 * the newest transaction committed when it was made; it is durable when
 * its header slot (written after fdatasync of the data file) has been
 * flushed.  The base is the newest durable checkpoint.  A pin is a read
 * transaction on a checkpoint's snapshot, held by a live process.
 *
 * (1) LMDB never writes a page that belongs to the snapshot of an open
 *     read transaction.  A page is written when a write transaction
 *     allocates it: either a new page past the last page of the newest
 *     snapshot, or one taken from the free list -- LMDB's mdb_page_alloc
 *     takes only the pages freed by transactions older than the oldest
 *     reader (free-list keys below mdb_find_oldest(), which reads every
 *     live reader slot), and a page freed by transaction k is not part of
 *     any snapshot from k on.  (The meta pages are the exception: each
 *     commit writes one of them.)
 *
 * (2) Invariant: every commit made after the base became durable is made
 *     by a process that pins a checkpoint no newer than the base, for the
 *     whole of its write transaction.  df__commit_begin makes sure of it
 *     under the writer lock: when this process pins no checkpoint, or only
 *     one older than the one before the newest, it makes a checkpoint
 *     itself and pins that (the newest, so no newer than the base).  The
 *     pin is released only under the writer lock, by this process (a new
 *     checkpoint, the flusher finding it idle and superseded, close), so
 *     never while one of its transactions runs; a live process's reader
 *     slot is never reclaimed by LMDB's stale-reader check, which only
 *     clears slots whose process is gone.  By (1), no commit after the
 *     base writes a page of the base's snapshot, other than the meta
 *     pages: the base's pages stay on disk exactly as its checkpoint
 *     flushed them, whatever else reaches the disk.
 *
 * (3) A checkpoint: under the writer lock (no commit can run), fdatasync
 *     of data.mdb makes every page of the newest snapshot durable (LMDB
 *     wrote them into the page cache at each commit); the
 *     first 512 bytes of both meta pages are read back (LMDB's meta
 *     record lies inside them), and written with the snapshot's txnid and
 *     the next record's sequence number into the header slot the previous
 *     checkpoint does not occupy, which is then flushed.  Only then is the
 *     new snapshot pinned and the old pin released.  A crash before the
 *     header is flushed leaves the previous checkpoint as the base (a torn
 *     slot fails its checksum), and the previous one is intact by (2).
 *
 * (4) Records: record s is appended at the offset where record s-1 ended
 *     (the first after a checkpoint at the start of the record area),
 *     before the LMDB commit that applies it; records are read back in
 *     order from the base's first record, expecting s, s+1, ..., and the
 *     first that is missing, torn, voided or of another number ends the
 *     log (redo.c).  Whatever subset of unflushed blocks reached the disk,
 *     the records recovered are therefore a prefix of the records
 *     appended since the base.  Records are appended in commit order (the
 *     writer lock), so that prefix is a prefix of the commits.
 *
 * (5) Recovery (the first process to open the database, alone): when the
 *     data file's meta pages differ from the base's, the base's are
 *     written back and flushed before LMDB opens the file -- by (2) the
 *     rest of the base's snapshot is on disk, so LMDB opens exactly the
 *     base.  That snapshot is pinned, the records after it are replayed
 *     into it (each applies puts, deletes and clears, so replaying onto
 *     the state it was made from gives the state it produced), and a new
 *     checkpoint is made.  Recovery interrupted by a crash starts again
 *     from the same base: its replays allocated no page of the base (the
 *     pin, (1)), and the new checkpoint only counts once its header is
 *     flushed (3).  So recovery is idempotent.
 *
 * (6) What survives: "full" flushes record s before LMDB commits and
 *     before the commit returns, so an acknowledged commit's record is on
 *     disk and, by (4), recovered.  "normal": the flusher flushes
 *     everything appended within flush_ms of the first unflushed append
 *     (and a commit flushes itself once flush_bytes are unflushed); a
 *     flush covers every record appended before it began.  "off": no
 *     record is flushed, so an OS crash may take any suffix of the commits
 *     since the base -- but by (4) and (5) never leaves a corrupt file.
 *
 * (7) A process killed at any instruction: the writer lock is robust (the
 *     next owner is told, by EOWNERDEAD), and the control page says what
 *     the dead writer was doing: a record in flight whose LMDB commit did
 *     not happen (LMDB's last txnid is below the one the record was made
 *     in) is applied by the next writer, in a transaction of its own --
 *     it may already be flushed, so applying it, never dropping it, keeps
 *     the database and any later recovery in agreement -- unless it is not
 *     a valid record (the writer died while appending it), in which case
 *     the next record overwrites it.  A commit that fails for another
 *     reason voids its record (and flushes that) before the writer lock
 *     is released.  A transaction too large for the log commits without a
 *     record and makes a checkpoint at once, before the writer lock is
 *     released; if the writer dies in between, the next writer makes it.
 *
 * (8) What this costs: pages freed after the oldest pin are not reused
 *     until it moves, so each page a transaction writes is a new page
 *     written once to disk (no overwriting of the same page by later
 *     commits until the next checkpoint); checkpoints come every
 *     checkpoint_bytes of log or of pages written, or after 30 seconds,
 *     and the flusher writes the data file back ahead of them so that the
 *     checkpoint itself waits for little.
 */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commit.h"
#include "kv.h"

#define CTL_MAGIC 0x4c434644u /* "DFCL" */
#define CTL_VERSION 1u
#define CTL_SIZE 4096
#define DEFAULT_FLUSH_MS 100
#define DEFAULT_FLUSH_BYTES ((uint64_t)4 << 20)
#define DEFAULT_CKPT_BYTES ((uint64_t)64 << 20)
#define CKPT_SECONDS 30
#define CKPT_WRITTEN_MIN ((uint64_t)16 << 20)
#define COUNT_FREED_BYTES ((uint64_t)256 << 10)
#define IDLE_PIN_NS ((int64_t)1000000000)
#define REPLAY_BATCH_BYTES ((size_t)8 << 20)

/* Test builds of the power-loss simulator only (tests/powerloss.sh): a
 * deliberately broken variant, to show that the simulator catches it.
 * 1: checkpoints pin nothing (their pages may be reused), 2: recovery does
 * not put the meta pages back, 3: checkpoints do not flush the data file
 * before recording it. */
#ifndef DF_BROKEN
#define DF_BROKEN 0
#endif

/* The control page, shared through the mapping of redo.lock.  Fields
 * marked (W) change only under the writer lock; (A) are read and written
 * with atomics. */
typedef struct df_ctl {
  uint32_t magic, version;
  uint64_t log_id;
  pthread_mutex_t writer; /* robust, process-shared */
  /* the checkpoint in force (W), as in the log's header */
  uint64_t ckpt_counter, ckpt_txnid, ckpt_next_seq, ckpt_last_pgno;
  int64_t ckpt_time; /* CLOCK_MONOTONIC, ns */
  /* where the next record goes (W) */
  uint64_t next_seq, next_off;
  /* a record appended whose LMDB commit may not have happened (W):
   * pending_seq 0 when none */
  uint64_t pending_seq, pending_off, pending_len, pending_txnid;
  /* a transaction committed without a record, its checkpoint not yet
   * made (W): its LMDB txnid, 0 when none */
  uint64_t unlogged_txnid;
  /* the flush state (A) */
  uint64_t appended_seq;    /* last record appended */
  uint64_t appended_end;    /* where it ends */
  uint64_t flushed_seq;     /* every record up to it is on disk */
  uint64_t flushed_end;     /* ... and the log up to here */
  uint64_t normal_seq;      /* last record a "normal" commit appended */
  int64_t unflushed_since;  /* when the first unflushed normal record was
                               appended (CLOCK_MONOTONIC ns), 0: none */
  uint64_t last_pgno;       /* the data file's last page after the last
                               commit (A), for the flusher */
  int64_t last_commit_time; /* (A) */
  uint32_t poisoned;        /* a flush of the data file failed (W) */
} df_ctl;

struct df_commit {
  char path[4096];
  char data_path[4200];
  int readonly;
  int lock_fd; /* redo.lock: the open lock and the control page */
  df_ctl *ctl;
  df_redo *log;
  int exclusive; /* this process opened the database alone */
  int restored;  /* recovery wrote the base's meta pages back */
  unsigned char found[2][DF_REDO_META_LEN]; /* the ones it found */
  int have_header;    /* the log held a checkpoint at open */
  df_redo_header hdr; /* ... that one */
  struct MDB_env *mdb;
  const unsigned *dbi;
  int data_fd;
  unsigned psize;
  df_commit_grow_fn grow;
  void *grow_ud;
  /* under the writer lock */
  MDB_txn *pin;
  uint64_t pin_counter;
  df_redo_rec rec;
  int appended; /* the current record is in the log (pending) */
  int holding;  /* df__commit_hold took the writer lock */
  uint64_t commits_since_ckpt;
  int64_t last_commit;              /* this process's last commit (A) */
  uint64_t freed_since, scanned_to; /* see count_freed */
  uint64_t counted_off;             /* the log's end at the last count */
  /* the pages in use (the file's, less the free list's) at the last
   * checkpoint this process made, and that checkpoint's number */
  uint64_t data_pages, data_counter;
  /* options */
  int64_t flush_ns;
  uint64_t flush_bytes, ckpt_bytes;
  /* the flusher thread */
  pthread_t flusher;
  int flusher_started, closing;
  pthread_mutex_t fl_lock;
  pthread_cond_t fl_cond;
  /* a failed flush: no more writes (the state on disk is unknown) */
  int poisoned;
  char poison[DF_MSG_MAX];
  /* recovery report */
  int recovered, log_created;
  uint64_t replayed, replayed_bytes;
  double recovery_seconds;
};

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t amax(uint64_t *p, uint64_t v) {
  uint64_t cur = __atomic_load_n(p, __ATOMIC_ACQUIRE);
  while (cur < v && !__atomic_compare_exchange_n(
                        p, &cur, v, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
  }
  return cur < v ? v : cur;
}

static int sys_err(int e) {
  switch (e) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return DF_EDISKFULL;
    case EACCES:
    case EPERM:
      return DF_EACCESS;
    case EROFS:
      return DF_EREADONLY;
    case ENOMEM:
      return DF_ENOMEM;
    default:
      return DF_EIO;
  }
}

static int fsync_fd(int fd) {
  while (fdatasync(fd) != 0)
    if (errno != EINTR) return errno;
  return 0;
}

/* ------------------------------------------------------- the open lock */

/* Open-file-description locks on byte 0 of redo.lock: shared by every
 * process with the database open, exclusive while one opens it alone.
 * They belong to the open file, so nothing else this process closes
 * drops them, and they are released when the process dies. */
static int ofd_lock(int fd, short type, int wait) {
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 1;
  while (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) != 0) {
    if (errno == EINTR) continue;
    return errno;
  }
  return 0;
}

/* Does another process hold LMDB's lock file (an LMDB user outside
 * dynafile's open lock, such as mdb_stat)?  Every process with the
 * environment open holds a shared lock on its byte 0. */
static int lmdb_in_use(const char *path) {
  char p[4200];
  struct flock fl;
  int fd, busy = 0;
  snprintf(p, sizeof p, "%s/lock.mdb", path);
  fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 1;
  if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) busy = 1;
  close(fd);
  return busy;
}

static int ctl_init(df_commit *c, uint64_t log_id, char *err, size_t errlen) {
  pthread_mutexattr_t a;
  df_ctl *x = c->ctl;
  int rc;
  memset(x, 0, sizeof *x);
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  rc = pthread_mutex_init(&x->writer, &a);
  pthread_mutexattr_destroy(&a);
  if (rc != 0)
    return df__fmt(err, errlen, DF_EIO, "cannot set up the writer lock: %s",
                   strerror(rc));
  x->log_id = log_id;
  x->version = CTL_VERSION;
  __atomic_store_n(&x->magic, CTL_MAGIC, __ATOMIC_RELEASE);
  return DF_OK;
}

/* ------------------------------------------------------------ records */

static uint64_t random_id(void) {
  uint64_t v = 0;
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (read(fd, &v, sizeof v) != (ssize_t)sizeof v) v = 0;
    close(fd);
  }
  if (v == 0) {
    struct timespec ts;
    uint64_t parts[3];
    clock_gettime(CLOCK_REALTIME, &ts);
    parts[0] = (uint64_t)getpid();
    parts[1] = (uint64_t)ts.tv_sec;
    parts[2] = (uint64_t)ts.tv_nsec;
    v = df__hash64(parts, sizeof parts, 0x7265646f6c6f67ull);
  }
  return v ? v : 1;
}

/* Apply the ops of a record body [p, end) to txn (no record is made).
 * At most max_ops ops (UINT32_MAX: all). */
static int apply_ops(df_commit *c, MDB_txn *txn, const unsigned char *p,
                     const unsigned char *end, uint32_t max_ops) {
  df_kv kv;
  df_redo_op op;
  uint32_t n = 0;
  int r = 0, code;
  kv.txn = txn;
  kv.dbi = c->dbi;
  kv.rec = NULL;
  while (n < max_ops && (r = df__redo_op_next(&p, end, &op)) == 1) {
    if (op.dbi >= DF_SUB_COUNT) return DF_ECORRUPT;
    switch (op.kind) {
      case DF_REDO_PUT:
        code =
            df__kv_put(&kv, (df_sub)op.dbi, op.key, op.klen, op.val, op.vlen);
        break;
      case DF_REDO_DEL:
        code = df__kv_del(&kv, (df_sub)op.dbi, op.key, op.klen);
        if (code == DF_ENOTFOUND) code = DF_OK;
        break;
      default:
        code = df__kv_clear(&kv, (df_sub)op.dbi);
    }
    if (code != DF_OK) return code;
    n++;
  }
  return r < 0 ? r : DF_OK;
}

/* --------------------------------------------------------- checkpoints */

static int read_metas(df_commit *c, unsigned char meta[2][DF_REDO_META_LEN]) {
  int i;
  for (i = 0; i < 2; i++) {
    ssize_t n =
        pread(c->data_fd, meta[i], DF_REDO_META_LEN, (off_t)i * c->psize);
    if (n != DF_REDO_META_LEN) return n < 0 ? errno : EIO;
  }
  return 0;
}

/* The pages in use in a snapshot: the file's pages up to last_pgno, less
 * the pages on LMDB's free list (its entries hold each a count and that
 * many page numbers).  The free list is read whole: at a checkpoint, whose
 * flush of the data file costs far more. */
static uint64_t data_pages(MDB_txn *t, uint64_t last_pgno) {
  MDB_cursor *cur;
  MDB_val k, v;
  uint64_t free_pages = 0;
  int rc;
  if (mdb_cursor_open(t, 0 /* LMDB's free list */, &cur) != 0)
    return last_pgno + 1;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    size_t n;
    if (v.mv_size < sizeof n) break;
    memcpy(&n, v.mv_data, sizeof n);
    free_pages += n;
  }
  mdb_cursor_close(cur);
  return free_pages < last_pgno + 1 ? last_pgno + 1 - free_pages : 1;
}

/* Make a checkpoint of the newest committed snapshot, under the writer
 * lock, and pin it (see (3) above).  The map must be stable (env.c holds
 * its map lock shared: the writer path, or attach at open). */
static int checkpoint(df_commit *c, char *err, size_t errlen) {
  df_redo_header h;
  MDB_envinfo info;
  MDB_txn *pin = NULL;
  df_ctl *x = c->ctl;
  int rc, e, code;
  memset(&h, 0, sizeof h);
  if ((e = DF_BROKEN == 3 ? 0 : fsync_fd(c->data_fd)) != 0) {
    c->poisoned = 1;
    x->poisoned = 1;
    snprintf(c->poison, sizeof c->poison, "flushing %.300s failed: %s",
             c->data_path, strerror(e));
    return df__fmt(err, errlen, sys_err(e), "%s", c->poison);
  }
  if ((rc = mdb_env_info(c->mdb, &info)) != 0)
    return df__fmt(err, errlen, df__kv_code(rc), "checkpoint: %s",
                   mdb_strerror(rc));
  if ((e = read_metas(c, h.meta)) != 0)
    return df__fmt(err, errlen, sys_err(e), "checkpoint: cannot read %s: %s",
                   c->data_path, strerror(e));
  h.log_id = x->log_id;
  h.counter = x->ckpt_counter + 1;
  h.base_txnid = info.me_last_txnid;
  h.next_seq = x->next_seq;
  h.first_off = DF_REDO_AREA;
  h.psize = c->psize;
  code = df__redo_header_write(c->log, &h, err, errlen);
  if (code != DF_OK) {
    /* the slot may be half written: the other one still holds the base */
    return code;
  }
  rc = mdb_txn_begin(c->mdb, NULL, MDB_RDONLY, &pin);
  if (rc == 0 && mdb_txn_id(pin) != h.base_txnid) {
    mdb_txn_abort(pin);
    pin = NULL;
    rc = MDB_BAD_TXN; /* a write outside the writer lock */
  }
  if (rc != 0)
    return df__fmt(err, errlen, df__kv_code(rc),
                   "checkpoint: cannot pin the snapshot: %s", mdb_strerror(rc));
  c->data_pages = data_pages(pin, info.me_last_pgno);
  c->data_counter = h.counter;
  if (c->pin) mdb_txn_abort(c->pin);
  c->pin = pin;
  __atomic_store_n(&c->pin_counter, h.counter, __ATOMIC_RELEASE);
#if DF_BROKEN == 1
  mdb_txn_abort(pin); /* broken: the snapshot stays unpinned */
  c->pin = NULL;
#endif
  __atomic_store_n(&x->ckpt_counter, h.counter, __ATOMIC_RELEASE);
  x->ckpt_txnid = h.base_txnid;
  x->ckpt_next_seq = h.next_seq;
  __atomic_store_n(&x->ckpt_last_pgno, (uint64_t)info.me_last_pgno,
                   __ATOMIC_RELEASE);
  x->ckpt_time = now_ns();
  x->next_off = DF_REDO_AREA;
  /* every record before next_seq is in the data file, flushed */
  amax(&x->flushed_seq, x->next_seq - 1);
  c->commits_since_ckpt = 0;
  c->freed_since = 0;
  c->scanned_to = h.base_txnid;
  c->counted_off = DF_REDO_AREA;
  return DF_OK;
}

/* The pages freed by the transactions committed since the last look,
 * read from LMDB's free list (one entry per transaction, keyed by its id,
 * holding the list of pages it freed): since the last checkpoint they are
 * about the pages written (copy-on-write frees one page for each page it
 * writes, apart from what the data grew by).  Every 16 commits, in a
 * short read transaction; under the writer lock. */
static void count_freed(df_commit *c, uint64_t last_txnid) {
  MDB_txn *t;
  MDB_cursor *cur;
  MDB_val k, v;
  size_t from;
  int rc;
  if (last_txnid <= c->scanned_to) return;
  if (mdb_txn_begin(c->mdb, NULL, MDB_RDONLY, &t) != 0) return;
  if (mdb_cursor_open(t, 0 /* LMDB's free list */, &cur) == 0) {
    from = (size_t)c->scanned_to + 1;
    k.mv_data = &from;
    k.mv_size = sizeof from;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      size_t id, n;
      if (k.mv_size != sizeof id || v.mv_size < sizeof n) break;
      memcpy(&id, k.mv_data, sizeof id);
      memcpy(&n, v.mv_data, sizeof n);
      if (id > c->scanned_to) {
        c->freed_since += n;
        c->scanned_to = id;
      }
    }
    mdb_cursor_close(cur);
  }
  mdb_txn_abort(t);
}

/* Is a checkpoint due after a commit?  Pages freed after the oldest pin
 * are not reused until it moves, so between checkpoints every page a
 * commit writes is a new page (from the file's end) or one freed before
 * the last checkpoint; the file grows by what the writes since the last
 * checkpoint take beyond the free list.  So the pages written since the
 * last checkpoint (see below) are held to a quarter of the data (the
 * pages in use at that checkpoint), at least CKPT_WRITTEN_MIN and at most
 * checkpoint_bytes: the file then stays within about 1.25 times its data
 * plus CKPT_WRITTEN_MIN, where a fixed checkpoint_bytes let a bulk load
 * of a small database grow it by that much again after each checkpoint.
 * Also when the log since the last checkpoint reaches checkpoint_bytes,
 * or after CKPT_SECONDS.  (Measured, 20,000 "off" puts into a small
 * database, one run: a bound of 8 MiB 37-40 us of CPU per put (a
 * checkpoint every ~135 puts, each an fdatasync whose writeback the
 * process pays) and 16.7 MB on disk, 16 MiB 34 us and 25.9 MB, 32 MiB
 * 32-34 us and 44.6 MB; in another, 16 MiB 40-45 us against 37-41 us for
 * the fixed 64 MiB before, whose file was the whole map.  The quarter of
 * the data only spaces checkpoints further apart for a large database.)
 * The free list is read every 16 commits, and after every
 * COUNT_FREED_BYTES of log, so that large transactions are
 * counted as they come. */
static int checkpoint_due(df_commit *c, uint64_t last_pgno,
                          uint64_t last_txnid) {
  df_ctl *x = c->ctl;
  uint64_t written, allowed, data;
  if (x->next_off - DF_REDO_AREA >= c->ckpt_bytes) return 1;
  if (c->counted_off > x->next_off) c->counted_off = DF_REDO_AREA;
  if (c->commits_since_ckpt % 16 == 0 ||
      x->next_off - c->counted_off >= COUNT_FREED_BYTES) {
    count_freed(c, last_txnid);
    c->counted_off = x->next_off;
  }
  /* a page written comes from the free list or from the file's end, and
   * (copy-on-write) mostly frees the page it replaces: the larger of the
   * pages freed and the file's growth is within a factor 2 of the pages
   * written (their sum would count most pages twice) */
  written = last_pgno > x->ckpt_last_pgno ? last_pgno - x->ckpt_last_pgno : 0;
  if (c->freed_since > written) written = c->freed_since;
  /* the data at the last checkpoint: counted when this process made it,
   * else the file's pages then (more than the data: a longer interval) */
  data = c->data_counter == x->ckpt_counter ? c->data_pages
                                            : x->ckpt_last_pgno + 1;
  allowed = data * c->psize / 4;
  if (allowed < CKPT_WRITTEN_MIN) allowed = CKPT_WRITTEN_MIN;
  if (allowed > c->ckpt_bytes) allowed = c->ckpt_bytes;
  if (written * c->psize >= allowed) return 1;
  return now_ns() - x->ckpt_time >= (int64_t)CKPT_SECONDS * 1000000000;
}

/* ---------------------------------------------------------- the flusher */

/* Flush the log: every record committed so far, by any process, is on
 * disk afterwards. */
static int flush_log(df_commit *c) {
  df_ctl *x = c->ctl;
  int64_t start = now_ns();
  uint64_t seq = __atomic_load_n(&x->appended_seq, __ATOMIC_ACQUIRE);
  uint64_t end = __atomic_load_n(&x->appended_end, __ATOMIC_ACQUIRE);
  if (fsync_fd(df__redo_fd(c->log)) != 0) return -1;
  amax(&x->flushed_seq, seq);
  amax(&x->flushed_end, end);
  /* "normal" records committed while it ran wait for the next one */
  if (__atomic_load_n(&x->normal_seq, __ATOMIC_ACQUIRE) <= seq)
    __atomic_store_n(&x->unflushed_since, 0, __ATOMIC_RELEASE);
  else
    __atomic_store_n(&x->unflushed_since, start, __ATOMIC_RELEASE);
  return 0;
}

/* After the writer lock's owner died: a checkpoint it made may be in the
 * log's header but not yet in the control page.  Adopt it (it appended
 * nothing after it: it died holding the lock). */
static void adopt_header(df_commit *c) {
  df_redo_header h;
  char err[256];
  df_ctl *x = c->ctl;
  if (df__redo_header_read(c->log, &h, err, sizeof err) != DF_OK) return;
  if (h.counter > x->ckpt_counter && h.log_id == x->log_id) {
    __atomic_store_n(&x->ckpt_counter, h.counter, __ATOMIC_RELEASE);
    x->ckpt_txnid = h.base_txnid;
    x->ckpt_next_seq = h.next_seq;
    x->ckpt_time = now_ns();
    x->next_seq = h.next_seq;
    x->next_off = h.first_off;
  }
}

/* Take the writer lock, handling a dead owner. */
static int writer_lock(df_commit *c, int try) {
  df_ctl *x = c->ctl;
  int rc =
      try ? pthread_mutex_trylock(&x->writer) : pthread_mutex_lock(&x->writer);
  if (rc == EOWNERDEAD) {
    adopt_header(c);
    rc = pthread_mutex_consistent(&x->writer);
  }
  return rc;
}

/* Flusher threads and fork().  A fork must not copy a lock a flusher
 * holds into the child -- an allocator's, say: glibc's malloc makes its
 * own locks safe across fork, but other allocators need not (GCC 12's
 * AddressSanitizer allocator does not, and a child that allocated then
 * hung).  So a fork waits until every flusher of this process is parked
 * in its condition wait, and holds them there until it is done:
 * `flushers_active` counts the flushers that may be running code -- from
 * before pthread_create until the thread first parks, from each wake-up
 * until it parks again, and from its exit until the closing thread has
 * joined it (its teardown runs the thread library's code). */
static pthread_mutex_t flushers_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t flushers_parked = PTHREAD_COND_INITIALIZER;
static unsigned long flushers_active;

static void flushers_add(long d) {
  pthread_mutex_lock(&flushers_lock);
  flushers_active += (unsigned long)d;
  if (flushers_active == 0) pthread_cond_broadcast(&flushers_parked);
  pthread_mutex_unlock(&flushers_lock);
}

void df__commit_before_fork(void) {
  pthread_mutex_lock(&flushers_lock);
  while (flushers_active != 0)
    pthread_cond_wait(&flushers_parked, &flushers_lock);
  /* held through the fork: a flusher that wakes meanwhile waits in
   * flushers_add before it runs anything */
}

void df__commit_after_fork_parent(void) {
  pthread_mutex_unlock(&flushers_lock);
}

void df__commit_after_fork_child(void) {
  /* the child has no flusher threads (the parent's environments are never
   * used in it); its lock and condition start afresh */
  flushers_active = 0;
  pthread_mutex_init(&flushers_lock, NULL);
  pthread_cond_init(&flushers_parked, NULL);
}

static void *flusher_main(void *arg) {
  df_commit *c = arg;
  df_ctl *x = c->ctl;
  int64_t half = c->flush_ns / 2 > 1000000 ? c->flush_ns / 2 : 1000000;
  int closing;
  pthread_mutex_lock(&c->fl_lock);
  while (!c->closing) {
    struct timespec ts;
    int64_t t;
    clock_gettime(CLOCK_REALTIME, &ts);
    t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + half;
    ts.tv_sec = (time_t)(t / 1000000000);
    ts.tv_nsec = (long)(t % 1000000000);
    flushers_add(-1); /* parked */
    pthread_cond_timedwait(&c->fl_cond, &c->fl_lock, &ts);
    closing = c->closing;
    pthread_mutex_unlock(&c->fl_lock);
    flushers_add(1); /* running: after any fork in progress */
    if (closing) {
      pthread_mutex_lock(&c->fl_lock);
      break;
    }
    /* "normal" records waiting for their flush, from any process: at
     * most half a window passes before one is seen here */
    if (__atomic_load_n(&x->unflushed_since, __ATOMIC_ACQUIRE) != 0 &&
        __atomic_load_n(&x->normal_seq, __ATOMIC_ACQUIRE) >
            __atomic_load_n(&x->flushed_seq, __ATOMIC_ACQUIRE))
      flush_log(c);
    /* start writing the data file back ahead of the next checkpoint,
     * without any lock and without waiting (the log's flushes must not
     * wait behind it), so that the checkpoint finds little left */
    {
      uint64_t lp = __atomic_load_n(&x->last_pgno, __ATOMIC_ACQUIRE);
      uint64_t base = __atomic_load_n(&x->ckpt_last_pgno, __ATOMIC_ACQUIRE);
      if (lp > base && (lp - base) * c->psize >= c->ckpt_bytes / 4)
        sync_file_range(c->data_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    }
    /* an idle pin on a superseded checkpoint holds back the reuse of
     * every page freed since it: let it go (under the writer lock, so
     * that no transaction of this process relies on it) */
    {
      uint64_t mine = __atomic_load_n(&c->pin_counter, __ATOMIC_ACQUIRE);
      if (mine != 0 &&
          mine < __atomic_load_n(&x->ckpt_counter, __ATOMIC_ACQUIRE) &&
          now_ns() - __atomic_load_n(&c->last_commit, __ATOMIC_ACQUIRE) >
              IDLE_PIN_NS &&
          writer_lock(c, 1) == 0) {
        if (c->pin && c->pin_counter < x->ckpt_counter) {
          mdb_txn_abort(c->pin);
          c->pin = NULL;
          __atomic_store_n(&c->pin_counter, 0, __ATOMIC_RELEASE);
        }
        pthread_mutex_unlock(&x->writer);
      }
    }
    pthread_mutex_lock(&c->fl_lock);
  }
  pthread_mutex_unlock(&c->fl_lock);
  return NULL;
}

static void flusher_start(df_commit *c) {
  if (c->flusher_started || c->readonly) return;
  flushers_add(1); /* running from its creation (see flushers_active) */
  if (pthread_create(&c->flusher, NULL, flusher_main, c) == 0)
    c->flusher_started = 1;
  else
    flushers_add(-1);
}

/* ------------------------------------------------------------- opening */

/* The data file and its log are tied by the log's id, written into both
 * meta pages of data.mdb at TAG_AT, past LMDB's meta record: LMDB never
 * reads or writes there after creating the file (its meta writes touch
 * only the record's fields), and the id is 8 bytes inside one sector.  A
 * data file that does not carry the log's id (another database's copied
 * over this one's, an mdb_copy) is refused before anything is written. */
#define TAG_AT 1024

/* LMDB 0.9's meta record, after a meta page's 16-byte header: magic,
 * version, ..., the last page used and the transaction id (lmdb's
 * MDB_meta, MDB_DATA_VERSION 1, 64-bit). */
#define META_MAGIC 0xBEEFC0DEu
#define META_AT 16
#define META_LAST_PG (META_AT + 120)
#define META_TXNID (META_AT + 128)

static uint64_t le64(const unsigned char *p) {
  uint64_t v = 0;
  int i;
  for (i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

/* The bytes the newest valid meta of `meta` says the file must hold at
 * least, or 0 when neither is valid. */
static uint64_t meta_needs(unsigned char meta[2][DF_REDO_META_LEN],
                           unsigned psize) {
  uint64_t best = 0, need = 0;
  int i;
  for (i = 0; i < 2; i++) {
    if (le32(meta[i] + META_AT) != META_MAGIC) continue;
    if (le64(meta[i] + META_TXNID) >= best) {
      best = le64(meta[i] + META_TXNID);
      need = (le64(meta[i] + META_LAST_PG) + 1) * psize;
    }
  }
  return need;
}

int df__commit_has_log(const char *path, int readonly, df_redo **keep) {
  df_redo *r = NULL;
  df_redo_header h;
  char err[256];
  *keep = NULL;
  if (df__redo_open_existing(path, readonly, &r, err, sizeof err) != DF_OK)
    return 0;
  if (df__redo_header_read(r, &h, err, sizeof err) != DF_OK) {
    df__redo_close(r);
    return 0;
  }
  /* df__commit_open reads the header again under the open lock; the size
   * seen here only grows, and the log's reads look again past it */
  *keep = r;
  return 1;
}

static void commit_free(df_commit *c) {
  if (c == NULL) return;
  if (c->ctl) munmap(c->ctl, CTL_SIZE);
  if (c->lock_fd >= 0) close(c->lock_fd);
  df__redo_close(c->log);
  df__redo_rec_free(&c->rec);
  pthread_mutex_destroy(&c->fl_lock);
  pthread_cond_destroy(&c->fl_cond);
  df__free(c);
}

/* Put the base's meta pages back into data.mdb when they differ -- once
 * the file is known to be this log's (the tag), and to hold every page the
 * base's meta names: with MDB_WRITEMAP, LMDB would extend a cut file with
 * zeros rather than notice. */
static int restore_metas(df_commit *c, char *err, size_t errlen) {
  unsigned char *now = &c->found[0][0], *head;
  uint64_t need;
  size_t head_len;
  ssize_t got;
  int fd, i, e = 0, read_errno;
  struct stat st;
  fd = open(c->data_path, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return DF_OK; /* LMDB reports it */
    return df__fmt(err, errlen, sys_err(errno), "cannot open %s: %s",
                   c->data_path, strerror(errno));
  }
  /* the tag and both meta pages in one read: an open that needs no
   * recovery pays for every system call */
  head_len = (size_t)c->hdr.psize + DF_REDO_META_LEN;
  head = df__malloc(head_len);
  if (head == NULL) {
    close(fd);
    return df__fmt(err, errlen, DF_ENOMEM, "out of memory");
  }
  got = pread(fd, head, head_len, 0);
  read_errno = got < 0 ? errno : EIO;
  if (c->hdr.psize < TAG_AT + 8 || got < (ssize_t)(TAG_AT + 8) ||
      le64(head + TAG_AT) != c->hdr.log_id) {
    df__free(head);
    close(fd);
    return df__fmt(err, errlen, DF_ECORRUPT,
                   "%s does not belong to the redo log beside it (%s/"
                   "redo.log was written for another data file); nothing "
                   "was changed",
                   c->data_path, c->path);
  }
  need = meta_needs(c->hdr.meta, c->hdr.psize);
  if (fstat(fd, &st) != 0 || need == 0 || (uint64_t)st.st_size < need) {
    df__free(head);
    close(fd);
    return df__fmt(err, errlen, DF_ECORRUPT,
                   "%s is truncated: %lld bytes, but its last checkpoint "
                   "names pages up to byte %llu; not a database",
                   c->data_path, (long long)st.st_size,
                   (unsigned long long)need);
  }
  if (got < (ssize_t)head_len)
    e = read_errno;
  else
    for (i = 0; i < 2; i++)
      memcpy(now + i * DF_REDO_META_LEN, head + (size_t)i * c->hdr.psize,
             DF_REDO_META_LEN);
  df__free(head);
  if (e == 0 && memcmp(now, c->hdr.meta, sizeof c->found) != 0 &&
      DF_BROKEN != 2) {
    for (i = 0; i < 2 && e == 0; i++)
      if (pwrite(fd, c->hdr.meta[i], DF_REDO_META_LEN,
                 (off_t)i * c->hdr.psize) != DF_REDO_META_LEN)
        e = errno ? errno : EIO;
    if (e == 0) e = fsync_fd(fd);
    if (e == 0) c->restored = 1;
  }
  close(fd);
  if (e != 0)
    return df__fmt(err, errlen, sys_err(e),
                   "recovery: cannot restore the meta pages of %s: %s",
                   c->data_path, strerror(e));
  return DF_OK;
}

int df__commit_open(const char *path, int readonly, const df_commit_options *o,
                    df_commit **out, char *err, size_t errlen) {
  df_commit *c;
  char p[4200];
  struct stat st;
  int code, e;
  *out = NULL;
  c = df__malloc(sizeof *c);
  if (c == NULL) {
    df__redo_close(o ? o->log : NULL);
    return df__fmt(err, errlen, DF_ENOMEM, "out of memory");
  }
  memset(c, 0, sizeof *c);
  c->lock_fd = -1;
  c->data_fd = -1;
  pthread_mutex_init(&c->fl_lock, NULL);
  pthread_cond_init(&c->fl_cond, NULL);
  df__redo_rec_init(&c->rec);
  c->log = o ? o->log : NULL; /* taken over */
  c->readonly = readonly;
  snprintf(c->path, sizeof c->path, "%s", path);
  snprintf(c->data_path, sizeof c->data_path, "%s/data.mdb", path);
  c->flush_ns =
      (int64_t)(o && o->flush_ms ? o->flush_ms : DEFAULT_FLUSH_MS) * 1000000;
  c->flush_bytes = o && o->flush_bytes ? o->flush_bytes : DEFAULT_FLUSH_BYTES;
  c->ckpt_bytes =
      o && o->checkpoint_bytes ? o->checkpoint_bytes : DEFAULT_CKPT_BYTES;

  snprintf(p, sizeof p, "%s/redo.lock", path);
  c->lock_fd = open(
      p, readonly ? O_RDONLY | O_CLOEXEC : O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (c->lock_fd < 0) {
    e = errno;
    if (readonly && e == ENOENT) {
      /* a database no writable dynafile opened since the log came: a
       * release before it, nothing to recover */
      df__redo_close(c->log);
      c->log = NULL;
      *out = c;
      return DF_OK;
    }
    code =
        df__fmt(err, errlen, sys_err(e), "cannot open %s: %s", p, strerror(e));
    commit_free(c);
    return code;
  }
  /* alone?  Then this process recovers; otherwise wait for whoever is
   * recovering, and share */
  if (ofd_lock(c->lock_fd, F_WRLCK, 0) == 0 && !lmdb_in_use(path)) {
    c->exclusive = 1;
  } else {
    if ((e = ofd_lock(c->lock_fd, F_RDLCK, 1)) != 0) {
      code = df__fmt(err, errlen, sys_err(e), "cannot lock %s: %s", p,
                     strerror(e));
      commit_free(c);
      return code;
    }
  }
  if (!readonly) {
    if (fstat(c->lock_fd, &st) != 0 ||
        (st.st_size < CTL_SIZE && ftruncate(c->lock_fd, CTL_SIZE) != 0)) {
      e = errno;
      code = df__fmt(err, errlen, sys_err(e), "cannot size %s: %s", p,
                     strerror(e));
      commit_free(c);
      return code;
    }
    c->ctl =
        mmap(NULL, CTL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, c->lock_fd, 0);
    if (c->ctl == MAP_FAILED) {
      e = errno;
      c->ctl = NULL;
      code =
          df__fmt(err, errlen, sys_err(e), "cannot map %s: %s", p, strerror(e));
      commit_free(c);
      return code;
    }
  }
  code = c->log ? DF_OK : df__redo_open(path, readonly, &c->log, err, errlen);
  if (code == DF_ENOTFOUND && readonly) code = DF_OK; /* see above */
  if (code != DF_OK) {
    commit_free(c);
    return code;
  }
  if (c->log) {
    code = df__redo_header_read(c->log, &c->hdr, err, errlen);
    if (code == DF_OK)
      c->have_header = 1;
    else if (code != DF_ENOTFOUND) {
      commit_free(c);
      return code;
    }
  }
  if (c->exclusive && c->have_header) {
    if (readonly) {
      /* recovery needs writing; refuse rather than read a torn file */
      unsigned char now[2][DF_REDO_META_LEN];
      int fd = open(c->data_path, O_RDONLY | O_CLOEXEC), i, same = 1;
      for (i = 0; fd >= 0 && i < 2; i++)
        if (pread(fd, now[i], DF_REDO_META_LEN, (off_t)i * c->hdr.psize) !=
                DF_REDO_META_LEN ||
            memcmp(now[i], c->hdr.meta[i], DF_REDO_META_LEN) != 0)
          same = 0;
      if (fd >= 0) close(fd);
      {
        df_buf b;
        df__buf_init(&b);
        if (df__redo_read(c->log, c->hdr.first_off, c->hdr.log_id,
                          c->hdr.next_seq, &b, err, errlen) == DF_OK)
          same = 0;
        df__buf_free(&b);
      }
      if (!same) {
        commit_free(c);
        return df__fmt(err, errlen, DF_ECORRUPT,
                       "%s needs recovery after a crash, which a read-only "
                       "open cannot do: open it once writable",
                       path);
      }
    } else if ((code = restore_metas(c, err, errlen)) != DF_OK) {
      commit_free(c);
      return code;
    }
  }
  if (readonly && c->exclusive) {
    /* nothing to recover: share at once, or writers opening later would
     * wait for this process to close */
    ofd_lock(c->lock_fd, F_RDLCK, 0);
    c->exclusive = 0;
  }
  *out = c;
  return DF_OK;
}

/* Replay the records after the checkpoint (recovery, part 2), in
 * transactions of about REPLAY_BATCH_BYTES, each committed without a sync
 * (the checkpoint after them flushes).  A batch that meets a full map is
 * run again after the map grew. */
static int replay_log(df_commit *c, char *err, size_t errlen) {
  df_buf b;
  MDB_txn *txn = NULL;
  uint64_t off = c->hdr.first_off, seq = c->hdr.next_seq;
  int code = DF_OK, rc, tries = 0, more = 1;
  df__buf_init(&b);
  while (more && code == DF_OK) {
    uint64_t boff = off, bseq = seq, n = 0, bytes = 0;
    rc = mdb_txn_begin(c->mdb, NULL, 0, &txn);
    if (rc != 0) {
      code =
          df__fmt(err, errlen, df__kv_code(rc),
                  "recovery: cannot begin a transaction: %s", mdb_strerror(rc));
      break;
    }
    while (bytes < REPLAY_BATCH_BYTES) {
      const unsigned char *p, *end;
      code = df__redo_read(c->log, off, c->hdr.log_id, seq, &b, err, errlen);
      if (code == DF_ENOTFOUND) {
        code = DF_OK;
        more = 0;
        break;
      }
      if (code != DF_OK) break;
      df__redo_rec_body(b.p, b.len, &p, &end);
      code = apply_ops(c, txn, p, end, UINT32_MAX);
      if (code != DF_OK) break;
      n++;
      bytes += b.len;
      off += b.len;
      seq++;
    }
    if (code == DF_OK) {
      rc = n ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), 0);
      txn = NULL;
      if (rc == MDB_MAP_FULL)
        code = DF_ERETRY;
      else if (rc != 0)
        code = df__fmt(err, errlen, df__kv_code(rc),
                       "recovery: commit failed: %s", mdb_strerror(rc));
    } else {
      mdb_txn_abort(txn);
      txn = NULL;
    }
    if (code == DF_ERETRY && tries++ < 40) {
      /* the map is too small: grow it and run this batch again */
      if ((code = c->grow(c->grow_ud)) != DF_OK) {
        df__fmt(err, errlen, code, "recovery: cannot grow the map: %s",
                df_strerror(code));
        break;
      }
      off = boff;
      seq = bseq;
      more = 1;
      continue;
    }
    if (code != DF_OK) {
      if (code == DF_ERETRY)
        df__fmt(err, errlen, code, "recovery: the map kept filling up");
      else if (code == DF_ECORRUPT)
        df__fmt(err, errlen, code, "recovery: record %llu is malformed",
                (unsigned long long)seq);
      break;
    }
    c->replayed += n;
    c->replayed_bytes += bytes;
  }
  df__buf_free(&b);
  if (code == DF_OK) {
    c->ctl->next_seq = seq;
    c->ctl->next_off = off;
  }
  return code;
}

static int write_tag(df_commit *c, uint64_t id, char *err, size_t errlen) {
  unsigned char b[8];
  int i, e = 0;
  for (i = 0; i < 8; i++) b[i] = (unsigned char)(id >> (8 * i));
  for (i = 0; i < 2 && e == 0; i++)
    if (pwrite(c->data_fd, b, 8, (off_t)i * c->psize + TAG_AT) != 8)
      e = errno ? errno : EIO;
  if (e != 0)
    return df__fmt(err, errlen, sys_err(e), "cannot write to %s: %s",
                   c->data_path, strerror(e));
  return DF_OK; /* flushed by the checkpoint that follows */
}

int df__commit_attach(df_commit *c, MDB_env *mdb, const unsigned *dbi,
                      df_commit_grow_fn grow, void *grow_ud, char *err,
                      size_t errlen) {
  df_ctl *x = c->ctl;
  MDB_stat st;
  int code = DF_OK, rc, fd;
  int64_t t0 = now_ns();
  c->mdb = mdb;
  c->dbi = dbi;
  c->grow = grow;
  c->grow_ud = grow_ud;
  if (mdb_env_get_fd(mdb, &fd) == 0) c->data_fd = fd;
  c->psize = (unsigned)(mdb_env_stat(mdb, &st) == 0 ? st.ms_psize : 4096);
  if (c->readonly || x == NULL) return DF_OK;
  if (c->exclusive) {
    /* rebuild the control page from the log */
    uint64_t log_id = c->have_header ? c->hdr.log_id : random_id();
    if ((code = ctl_init(c, log_id, err, errlen)) != DF_OK) return code;
    if (c->have_header) {
      MDB_txn *pin = NULL;
      x->ckpt_counter = c->hdr.counter;
      x->ckpt_txnid = c->hdr.base_txnid;
      x->ckpt_next_seq = c->hdr.next_seq;
      x->next_seq = c->hdr.next_seq;
      x->next_off = c->hdr.first_off;
      /* pin the base while replaying into it (its pages must stay) */
      rc = mdb_txn_begin(mdb, NULL, MDB_RDONLY, &pin);
      if (rc != 0)
        return df__fmt(err, errlen, df__kv_code(rc),
                       "recovery: cannot pin the checkpoint: %s",
                       mdb_strerror(rc));
      c->pin = pin;
      c->pin_counter = c->hdr.counter;
      code = replay_log(c, err, errlen);
      if (code != DF_OK) return code;
      if (c->replayed > 0 || c->restored) c->recovered = 1;
      x->next_seq = c->hdr.next_seq + c->replayed;
      /* a checkpoint after the replay: the log starts again */
      if (c->replayed > 0 || c->restored) {
        if ((code = checkpoint(c, err, errlen)) != DF_OK) return code;
      } else {
        x->ckpt_time = now_ns();
        x->next_off = c->hdr.first_off;
        {
          MDB_envinfo info;
          if (mdb_env_info(mdb, &info) == 0)
            x->ckpt_last_pgno = info.me_last_pgno;
        }
      }
      c->recovery_seconds = c->recovered ? (double)(now_ns() - t0) / 1e9 : 0;
    } else {
      /* no log yet: a new database, or one from before the log */
      x->next_seq = 1;
      x->next_off = DF_REDO_AREA;
      x->ckpt_counter = 0; /* the first checkpoint is number 1 */
      if ((code = write_tag(c, log_id, err, errlen)) != DF_OK) return code;
      if ((code = checkpoint(c, err, errlen)) != DF_OK) return code;
      c->log_created = 1;
    }
    x->last_pgno = x->ckpt_last_pgno;
    /* done: share the database */
    if ((rc = ofd_lock(c->lock_fd, F_RDLCK, 0)) != 0)
      return df__fmt(err, errlen, sys_err(rc), "cannot share %s/redo.lock: %s",
                     c->path, strerror(rc));
    c->exclusive = 0;
  } else if (__atomic_load_n(&x->magic, __ATOMIC_ACQUIRE) != CTL_MAGIC ||
             x->version != CTL_VERSION) {
    return df__fmt(err, errlen, DF_EVERSION,
                   "%s/redo.lock was set up by another version of dynafile "
                   "still using the database",
                   c->path);
  }
  return code;
}

void df__commit_close(df_commit *c) {
  if (c == NULL) return;
  if (c->flusher_started) {
    pthread_mutex_lock(&c->fl_lock);
    c->closing = 1;
    pthread_cond_signal(&c->fl_cond);
    pthread_mutex_unlock(&c->fl_lock);
    pthread_join(c->flusher, NULL);
    flushers_add(-1); /* its exit counted as running until joined */
  }
  if (c->ctl && c->mdb && !c->readonly) {
    df_ctl *x = c->ctl;
    if (writer_lock(c, 0) == 0) {
      /* the last process out checkpoints, so that the next open has
       * nothing to recover (and flushes what "normal" left unflushed) */
      if (!c->poisoned && !x->poisoned && x->pending_seq == 0 &&
          x->unlogged_txnid == 0 && x->next_seq != x->ckpt_next_seq &&
          ofd_lock(c->lock_fd, F_WRLCK, 0) == 0) {
        char err[256];
        checkpoint(c, err, sizeof err);
      }
      if (c->pin) mdb_txn_abort(c->pin);
      c->pin = NULL;
      pthread_mutex_unlock(&x->writer);
    }
  } else if (c->pin) {
    mdb_txn_abort(c->pin);
    c->pin = NULL;
  }
  commit_free(c);
}

/* --------------------------------------------------------------- writes */

int df__commit_lock(df_commit *c, char *err, size_t errlen) {
  int rc;
  if (c->ctl == NULL)
    return df__fmt(err, errlen, DF_EREADONLY, "database is opened read-only");
  rc = writer_lock(c, 0); /* a dead owner: see df__commit_begin */
  if (rc != 0)
    return df__fmt(err, errlen, DF_EIO,
                   "the writer lock of %s cannot be taken (%s): close the "
                   "database in every process and open it again",
                   c->path, strerror(rc));
  if (c->poisoned || c->ctl->poisoned) {
    pthread_mutex_unlock(&c->ctl->writer);
    return df__fmt(err, errlen, DF_EIO,
                   "%s; the database refuses writes until every process "
                   "has closed it and it is opened again",
                   c->poisoned ? c->poison
                               : "a flush of the database failed in another "
                                 "process");
  }
  return DF_OK;
}

void df__commit_unlock(df_commit *c) {
  if (c->ctl) pthread_mutex_unlock(&c->ctl->writer);
}

void df__commit_hold(df_commit *c, int on) {
  /* alone, or read-only (no control page): nobody to keep out */
  if (c->exclusive || c->ctl == NULL) return;
  if (__atomic_load_n(&c->ctl->magic, __ATOMIC_ACQUIRE) != CTL_MAGIC) return;
  if (on)
    c->holding = writer_lock(c, 0) == 0;
  else if (c->holding)
    pthread_mutex_unlock(&c->ctl->writer);
  if (!on) c->holding = 0;
}

/* The record at (seq, off) is appended but its LMDB commit (in txnid)
 * did not happen: apply it in txn and commit that. */
static int finish_dead_commit(df_commit *c, MDB_txn **txn, char *err,
                              size_t errlen) {
  df_ctl *x = c->ctl;
  df_buf b;
  int code, rc;
  df__buf_init(&b);
  code = df__redo_read(c->log, x->pending_off, x->log_id, x->pending_seq, &b,
                       err, errlen);
  if (code == DF_ENOTFOUND) {
    /* it died appending: nothing of it counts; the next record goes there */
    df__buf_free(&b);
    x->pending_seq = 0;
    return DF_OK;
  }
  if (code == DF_OK) {
    const unsigned char *p, *end;
    df__redo_rec_body(b.p, b.len, &p, &end);
    code = apply_ops(c, *txn, p, end, UINT32_MAX);
  }
  if (code == DF_OK) {
    uint64_t len = b.len;
    rc = mdb_txn_commit(*txn);
    *txn = NULL;
    if (rc == 0) {
      x->next_seq = x->pending_seq + 1;
      x->next_off = x->pending_off + len;
      amax(&x->appended_seq, x->pending_seq);
      x->pending_seq = 0;
      rc = mdb_txn_begin(c->mdb, NULL, 0, txn);
    }
    if (rc != 0) code = rc == MDB_MAP_FULL ? DF_ERETRY : df__kv_code(rc);
  }
  df__buf_free(&b);
  if (code != DF_OK && code != DF_ERETRY)
    df__fmt(err, errlen, code,
            "cannot complete the commit a killed process left: %s",
            df_strerror(code));
  return code;
}

int df__commit_begin(df_commit *c, MDB_txn **txn, df_redo_rec **rec, char *err,
                     size_t errlen) {
  df_ctl *x = c->ctl;
  uint64_t last = mdb_txn_id(*txn) - 1; /* the newest committed */
  int code;
  c->appended = 0;
  if (x->pending_seq != 0) {
    if (last >= x->pending_txnid) {
      /* its LMDB commit happened: only the bookkeeping is missing */
      x->next_seq = x->pending_seq + 1;
      x->next_off = x->pending_off + x->pending_len;
      amax(&x->appended_seq, x->pending_seq);
      x->pending_seq = 0;
    } else if ((code = finish_dead_commit(c, txn, err, errlen)) != DF_OK) {
      return code;
    }
  }
  if (x->unlogged_txnid != 0) {
    if (mdb_txn_id(*txn) - 1 >= x->unlogged_txnid) {
      /* committed without a record; its checkpoint is owed */
      if ((code = checkpoint(c, err, errlen)) != DF_OK) return code;
    }
    x->unlogged_txnid = 0;
  }
  if (c->pin_counter == 0 || c->pin_counter + 1 < x->ckpt_counter)
    if ((code = checkpoint(c, err, errlen)) != DF_OK) return code;
  if (df__redo_rec_reset(&c->rec) != DF_OK)
    return df__fmt(err, errlen, DF_ENOMEM, "out of memory");
  *rec = &c->rec;
  return DF_OK;
}

void df__commit_abandon(df_commit *c) {
  df_ctl *x = c->ctl;
  if (x && c->appended && x->pending_seq != 0) {
    char err[256];
    if (df__redo_void(c->log, x->pending_off, err, sizeof err) != DF_OK) {
      c->poisoned = 1;
      snprintf(c->poison, sizeof c->poison, "%s", err);
    }
    x->pending_seq = 0;
  }
  c->appended = 0;
  df__redo_rec_reset(&c->rec);
}

void df__commit_settle(df_commit *c) {
  df__redo_rec_settle(&c->rec);
}

int df__commit_replay(df_commit *c, MDB_txn *txn, uint32_t n_ops, size_t len) {
  const unsigned char *p = c->rec.buf.p + 24, *end = c->rec.buf.p + len;
  int code;
  if (c->rec.buf.len < 24) return DF_OK;
  if (len > c->rec.buf.len) len = c->rec.buf.len;
  end = c->rec.buf.p + len;
  code = apply_ops(c, txn, p, end, n_ops);
  if (code == DF_OK && len < c->rec.buf.len) {
    c->rec.buf.len = len;
    c->rec.n_ops = n_ops;
    if (c->rec.later && c->rec.later_at >= len) c->rec.later = NULL;
  }
  return code;
}

/* A transaction too large for the log: commit it, then checkpoint. */
static int commit_unlogged(df_commit *c, MDB_txn *txn, char *err,
                           size_t errlen) {
  df_ctl *x = c->ctl;
  int rc;
  x->unlogged_txnid = mdb_txn_id(txn);
  rc = mdb_txn_commit(txn);
  if (rc != 0) {
    x->unlogged_txnid = 0;
    if (rc == MDB_MAP_FULL) return DF_ERETRY;
    return df__fmt(err, errlen, df__kv_code(rc), "commit failed: %s",
                   mdb_strerror(rc));
  }
  x->next_seq++; /* the number it would have had */
  rc = checkpoint(c, err, errlen);
  x->unlogged_txnid = 0;
  return rc;
}

int df__commit_finish(df_commit *c, MDB_txn *txn, df_sync sync, char *err,
                      size_t errlen) {
  df_ctl *x = c->ctl;
  uint64_t seq, off, len;
  MDB_envinfo info;
  int code, rc;
  if (c->rec.n_ops == 0) {
    /* nothing written: nothing to log (LMDB commits nothing either) */
    rc = mdb_txn_commit(txn);
    return rc ? df__fmt(err, errlen, df__kv_code(rc), "commit failed: %s",
                        mdb_strerror(rc))
              : DF_OK;
  }
  seq = x->next_seq;
  if (!c->appended) {
    len = df__redo_rec_sealed_len(&c->rec);
    if (len > c->ckpt_bytes / 2) {
      code = commit_unlogged(c, txn, err, errlen);
      if (code == DF_ERETRY) return code; /* the record is kept: replay */
      goto done;
    }
    if (x->next_off + len > DF_REDO_AREA + c->ckpt_bytes) {
      /* the log is full: a checkpoint of the snapshot before this
       * transaction lets it start again */
      if ((code = checkpoint(c, err, errlen)) != DF_OK) {
        mdb_txn_abort(txn);
        return code;
      }
    }
    off = x->next_off;
    if (df__redo_rec_seal(&c->rec, x->log_id, seq) != DF_OK) {
      mdb_txn_abort(txn);
      return df__fmt(err, errlen, DF_ENOMEM, "out of memory");
    }
    x->pending_seq = seq;
    x->pending_off = off;
    x->pending_len = len;
    x->pending_txnid = mdb_txn_id(txn);
    c->appended = 1;
    code = df__redo_append(c->log, &c->rec, off, err, errlen);
    if (code == DF_OK && sync == DF_SYNC_FULL) {
      code = df__redo_flush(c->log, err, errlen);
      if (code == DF_OK) amax(&x->flushed_seq, seq);
    }
    if (code != DF_OK) {
      mdb_txn_abort(txn);
      df__commit_abandon(c);
      return code;
    }
  } else {
    off = x->pending_off;
    len = x->pending_len;
    x->pending_txnid = mdb_txn_id(txn);
  }
  rc = mdb_txn_commit(txn);
  if (rc == MDB_MAP_FULL)
    return df__fmt(err, errlen, DF_ERETRY,
                   "the map was full at commit; it grows and the commit is "
                   "made again");
  if (rc != 0) {
    df__commit_abandon(c);
    return df__fmt(err, errlen, df__kv_code(rc), "commit failed: %s",
                   mdb_strerror(rc));
  }
  x->pending_seq = 0;
  c->appended = 0;
  x->next_seq = seq + 1;
  x->next_off = off + len;
  __atomic_store_n(&x->appended_end, off + len, __ATOMIC_RELEASE);
  amax(&x->appended_seq, seq);
  if (sync == DF_SYNC_NORMAL) {
    int64_t zero = 0;
    amax(&x->normal_seq, seq);
    __atomic_compare_exchange_n(&x->unflushed_since, &zero, now_ns(), 0,
                                __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    if (off + len - __atomic_load_n(&x->flushed_end, __ATOMIC_ACQUIRE) >=
            c->flush_bytes &&
        off + len > __atomic_load_n(&x->flushed_end, __ATOMIC_ACQUIRE))
      flush_log(c);
    flusher_start(c);
  }
  code = DF_OK;
done:
  c->commits_since_ckpt++;
  __atomic_store_n(&x->last_commit_time, now_ns(), __ATOMIC_RELEASE);
  __atomic_store_n(&c->last_commit, now_ns(), __ATOMIC_RELEASE);
  if (code == DF_OK && mdb_env_info(c->mdb, &info) == 0) {
    __atomic_store_n(&x->last_pgno, (uint64_t)info.me_last_pgno,
                     __ATOMIC_RELEASE);
    if (checkpoint_due(c, info.me_last_pgno, info.me_last_txnid)) {
      char why[DF_MSG_MAX];
      /* the commit stands; a failed checkpoint poisons the environment,
       * and the next write reports it */
      checkpoint(c, why, sizeof why);
    }
    if (!c->flusher_started) flusher_start(c);
  }
  return code;
}

int df__commit_log_created(const df_commit *c) {
  return c->log_created;
}

void df__commit_report(df_commit *c, df_check_report *r) {
  if (c == NULL) return;
  r->recovered = c->recovered;
  r->meta_restored = c->restored;
  r->records_replayed = c->replayed;
  r->replayed_bytes = c->replayed_bytes;
  r->recovery_seconds = c->recovery_seconds;
  r->log_created = c->log_created;
  if (c->ctl) {
    r->checkpoint = c->ctl->ckpt_counter;
    r->log_bytes =
        c->ctl->next_off > DF_REDO_AREA ? c->ctl->next_off - DF_REDO_AREA : 0;
  }
}
