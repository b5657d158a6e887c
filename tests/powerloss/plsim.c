/*
 * plsim.c -- the power-loss simulator's recorder, an LD_PRELOAD library.
 *
 * Loaded into the processes that write a database, it records everything
 * the disk has not been asked to keep: for each watched file (by default
 * data.mdb and redo.log in the directory $PLSIM_DIR) it appends to a
 * journal in $PLSIM_JOURNAL
 *   W off len bytes   before each write (pwrite, pwritev, write, writev),
 *                     with the bytes to write, and right after it
 *   D pos count       the count the write of the W at journal offset pos
 *                     returned (0: it failed)
 *   Y pos count       the same for a descriptor opened O_DSYNC or O_SYNC:
 *                     those bytes are on disk
 *   U size            before each call that may change the file's size
 *                     (ftruncate, fallocate, posix_fallocate): the size
 *                     the file will have if the call succeeds
 *   T size            right after that call, the size the file has
 *   F covered         after each successful fsync/fdatasync (or sync,
 *                     syncfs): every W and T before journal offset
 *                     `covered` (the journal's length when the flush
 *                     began) is now on disk
 *   S covered n       the same for a file that some process has mapped
 *                     writable: writes through the map are invisible
 *                     here, so the file's whole content after the flush
 *                     is copied to <file>.snap.<n>, and that copy is what
 *                     the disk holds (also after msync with MS_SYNC)
 *   M                 the file was mapped MAP_SHARED with PROT_WRITE
 * The journal's first entry is an S of the file as it was when first
 * seen (the test makes sure that state was flushed).  tests/powerloss/
 * plimage.c builds crash images from the journal after the processes are
 * killed: the flushed state plus random subsets of the later writes.
 *
 * Every journal append and the write it describes happen under the
 * file's lock (a mutex in the process and flock on
 * $PLSIM_JOURNAL/<file>.lock across processes), so a flush covers exactly
 * the writes that completed before it began; files do not wait for each
 * other.  A process killed inside a flush leaves no F/S entry: the
 * flush counts as not done, which a real disk allows.  A process killed
 * around a write or a size change leaves a W without its D, or a U
 * without its T: plimage finds out from the live file what was done (a
 * write cut short by the kill may have written a prefix of its bytes).
 *
 * Environment: PLSIM_DIR (directory whose files are watched), PLSIM_JOURNAL
 * (directory for the journals, created by the test), PLSIM_FILES (basenames
 * to watch, space separated; default "data.mdb redo.log").  Without
 * PLSIM_DIR the library does nothing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FILES 8
#define MAX_FDS 65536
#define MAX_MAPS 64

typedef struct watched {
  char base[64];
  int jfd;    /* journal, opened O_APPEND */
  int lockfd; /* its lock */
  pthread_mutex_t mu;
} watched;

typedef struct mapping {
  char *addr;
  size_t len;
  int file;
} mapping;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* maps, fds */
static int active;
static dev_t dir_dev;
static ino_t dir_ino;
static char journal_dir[PATH_MAX];
static watched files[MAX_FILES];
static int n_files;
static signed char fd_file[MAX_FDS]; /* fd -> file index + 1, 0: none */
static char fd_dsync[MAX_FDS];       /* fd was opened O_DSYNC or O_SYNC */
static mapping maps[MAX_MAPS];

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_close)(int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev64)(int, const struct iovec *, int, off_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off_t);
static int (*real_fallocate)(int, int, off_t, off_t);
static int (*real_fallocate64)(int, int, off_t, off_t);
static int (*real_posix_fallocate)(int, off_t, off_t);
static int (*real_posix_fallocate64)(int, off_t, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_msync)(void *, size_t, int);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static void *(*real_mmap64)(void *, size_t, int, int, int, off_t);
static int (*real_munmap)(void *, size_t);
static void (*real_sync)(void);
static int (*real_syncfs)(int);

/* (a data pointer copied into a function pointer: ISO C has no cast) */
#define LOAD(name)                            \
  do {                                        \
    void *sym_ = dlsym(RTLD_NEXT, #name);     \
    memcpy(&real_##name, &sym_, sizeof sym_); \
  } while (0)

static void die(const char *what) {
  char msg[512];
  int n = snprintf(msg, sizeof msg, "plsim: %s: %s\n", what, strerror(errno));
  if (n > 0) (void)!write(2, msg, (size_t)n);
  _exit(99);
}

static void init(void) {
  const char *d = getenv("PLSIM_DIR"), *j = getenv("PLSIM_JOURNAL");
  const char *names = getenv("PLSIM_FILES");
  char buf[512], path[PATH_MAX + 16], *tok, *save;
  struct stat st;
  LOAD(open);
  LOAD(open64);
  LOAD(openat);
  LOAD(openat64);
  LOAD(close);
  LOAD(write);
  LOAD(pwrite);
  LOAD(pwrite64);
  LOAD(writev);
  LOAD(pwritev);
  LOAD(pwritev64);
  LOAD(ftruncate);
  LOAD(ftruncate64);
  LOAD(fallocate);
  LOAD(fallocate64);
  LOAD(posix_fallocate);
  LOAD(posix_fallocate64);
  LOAD(fsync);
  LOAD(fdatasync);
  LOAD(msync);
  LOAD(mmap);
  LOAD(mmap64);
  LOAD(munmap);
  LOAD(sync);
  LOAD(syncfs);
  if (d == NULL || j == NULL || *d == '\0' || *j == '\0') return;
  if (stat(d, &st) != 0) return;
  dir_dev = st.st_dev;
  dir_ino = st.st_ino;
  snprintf(journal_dir, sizeof journal_dir, "%s", j);
  snprintf(buf, sizeof buf, "%s", names ? names : "data.mdb redo.log");
  for (tok = strtok_r(buf, " ", &save); tok && n_files < MAX_FILES;
       tok = strtok_r(NULL, " ", &save)) {
    watched *w = &files[n_files];
    snprintf(w->base, sizeof w->base, "%s", tok);
    w->jfd = -1;
    pthread_mutex_init(&w->mu, NULL);
    snprintf(path, sizeof path, "%s/%s.lock", journal_dir, tok);
    w->lockfd = real_open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (w->lockfd < 0) die("cannot open a journal lock");
    n_files++;
  }
  active = 1;
}

/* dlsym may allocate, and so call mmap or write: calls made while the
 * real functions are being looked up go straight to the kernel. */
static __thread int resolving;

static void ensure_init(void) {
  if (resolving) return;
  resolving = 1;
  pthread_once(&init_once, init);
  resolving = 0;
}

__attribute__((constructor)) static void plsim_load(void) {
  ensure_init();
}

static void flock_file(int f) {
  pthread_mutex_lock(&files[f].mu);
  while (flock(files[f].lockfd, LOCK_EX) != 0)
    if (errno != EINTR) die("flock");
}

static void funlock(int f) {
  flock(files[f].lockfd, LOCK_UN);
  pthread_mutex_unlock(&files[f].mu);
}

static void put_all(int fd, const void *p, size_t n) {
  const char *b = p;
  while (n > 0) {
    ssize_t w = real_write(fd, b, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("journal write");
    }
    b += w;
    n -= (size_t)w;
  }
}

static uint64_t journal_len(int f) {
  struct stat st;
  if (fstat(files[f].jfd, &st) != 0) die("fstat journal");
  return (uint64_t)st.st_size;
}

/* Copy the file open as fd into <base>.snap.<n>; returns n. */
static uint64_t snapshot(int f, int fd) {
  char tmp[PATH_MAX + 64], dst[PATH_MAX + 64], cnt[PATH_MAX + 64];
  static char buf[1 << 16];
  uint64_t n = 0, off = 0;
  int out, cfd;
  ssize_t r;
  snprintf(cnt, sizeof cnt, "%s/%s.snapcount", journal_dir, files[f].base);
  cfd = real_open(cnt, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (cfd < 0) die("snapcount");
  if (pread(cfd, &n, sizeof n, 0) != (ssize_t)sizeof n) n = 0;
  n++;
  snprintf(tmp, sizeof tmp, "%s/%s.snap.tmp", journal_dir, files[f].base);
  snprintf(dst, sizeof dst, "%s/%s.snap.%llu", journal_dir, files[f].base,
           (unsigned long long)n);
  out = real_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) die("snapshot open");
  while ((r = pread(fd, buf, sizeof buf, (off_t)off)) > 0) {
    put_all(out, buf, (size_t)r);
    off += (uint64_t)r;
  }
  if (r < 0) die("snapshot read");
  real_close(out);
  if (rename(tmp, dst) != 0) die("snapshot rename");
  if (real_pwrite(cfd, &n, sizeof n, 0) != (ssize_t)sizeof n) die("snapcount");
  real_close(cfd);
  return n;
}

static void entry(int f, char kind, uint64_t a, uint64_t b, const void *data,
                  size_t n) {
  unsigned char head[17];
  head[0] = (unsigned char)kind;
  memcpy(head + 1, &a, 8);
  memcpy(head + 9, &b, 8);
  put_all(files[f].jfd, head, sizeof head);
  if (n) put_all(files[f].jfd, data, n);
}

static int is_mapped(int f) {
  char p[PATH_MAX + 64];
  snprintf(p, sizeof p, "%s/%s.mapped", journal_dir, files[f].base);
  return access(p, F_OK) == 0;
}

static void remove_old_snapshots(int f, uint64_t keep) {
  char p[PATH_MAX + 64];
  if (keep < 2) return;
  snprintf(p, sizeof p, "%s/%s.snap.%llu", journal_dir, files[f].base,
           (unsigned long long)(keep - 1));
  unlink(p);
}

/* Start watching fd, open on file f: open its journal, and on the very
 * first sight of the file record its content as flushed. */
static void watch(int fd, int f, int dsync) {
  char p[PATH_MAX + 64];
  if (fd < 0 || fd >= MAX_FDS) return;
  flock_file(f);
  if (files[f].jfd < 0) {
    snprintf(p, sizeof p, "%s/%s.journal", journal_dir, files[f].base);
    files[f].jfd =
        real_open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (files[f].jfd < 0) die("cannot open a journal");
  }
  if (journal_len(f) == 0) entry(f, 'S', 0, snapshot(f, fd), NULL, 0);
  fd_file[fd] = (signed char)(f + 1);
  fd_dsync[fd] = (char)dsync;
  funlock(f);
}

static int file_of_path(int dirfd, const char *path, int fd) {
  const char *slash, *base;
  char parent[PATH_MAX];
  struct stat st;
  int i;
  if (!active || fd < 0 || path == NULL) return -1;
  slash = strrchr(path, '/');
  base = slash ? slash + 1 : path;
  for (i = 0; i < n_files; i++)
    if (strcmp(base, files[i].base) == 0) break;
  if (i == n_files) return -1;
  if (slash) {
    size_t n = (size_t)(slash - path);
    if (n == 0) n = 1;
    if (n >= sizeof parent) return -1;
    memcpy(parent, path, n);
    parent[n] = '\0';
    if (fstatat(path[0] == '/' ? AT_FDCWD : dirfd, parent, &st, 0) != 0)
      return -1;
  } else if (fstatat(dirfd, ".", &st, 0) != 0) {
    return -1;
  }
  if (st.st_dev != dir_dev || st.st_ino != dir_ino) return -1;
  return i;
}

static int tracked(int fd) {
  if (!active || fd < 0 || fd >= MAX_FDS) return -1;
  return fd_file[fd] - 1;
}

static void after_open(int dirfd, const char *path, int fd, int flags) {
  int f = file_of_path(dirfd, path, fd);
  if (f >= 0) watch(fd, f, (flags & O_DSYNC) != 0);
}

#define MODE_ARG(flags, mode)              \
  do {                                     \
    if ((flags) & (O_CREAT | O_TMPFILE)) { \
      va_list ap;                          \
      va_start(ap, flags);                 \
      mode = va_arg(ap, int);              \
      va_end(ap);                          \
    }                                      \
  } while (0)

int open(const char *path, int flags, ...) {
  int mode = 0, fd;
  ensure_init();
  MODE_ARG(flags, mode);
  if (real_open == NULL) return (int)syscall(SYS_open, path, flags, mode);
  fd = real_open(path, flags, mode);
  after_open(AT_FDCWD, path, fd, flags);
  return fd;
}

int open64(const char *path, int flags, ...) {
  int mode = 0, fd;
  ensure_init();
  MODE_ARG(flags, mode);
  fd = real_open64(path, flags, mode);
  after_open(AT_FDCWD, path, fd, flags);
  return fd;
}

int openat(int dirfd, const char *path, int flags, ...) {
  int mode = 0, fd;
  ensure_init();
  MODE_ARG(flags, mode);
  fd = real_openat(dirfd, path, flags, mode);
  after_open(dirfd, path, fd, flags);
  return fd;
}

int openat64(int dirfd, const char *path, int flags, ...) {
  int mode = 0, fd;
  ensure_init();
  MODE_ARG(flags, mode);
  fd = real_openat64(dirfd, path, flags, mode);
  after_open(dirfd, path, fd, flags);
  return fd;
}

int close(int fd) {
  ensure_init();
  if (real_close == NULL) return (int)syscall(SYS_close, fd);
  if (tracked(fd) >= 0) {
    pthread_mutex_lock(&lock);
    fd_file[fd] = 0;
    pthread_mutex_unlock(&lock);
  }
  return real_close(fd);
}

/* A write on a tracked fd: its W entry, the real call, then a D entry
 * with the count written, all under the lock.  A process killed in
 * between leaves a W without its D: plimage finds out from the live file
 * whether that write was made. */
static ssize_t logged_write(int fd, const struct iovec *iov, int cnt, off_t off,
                            int positional, ssize_t (*call)(void)) {
  int f = tracked(fd), i;
  ssize_t n;
  off_t at;
  size_t total = 0;
  uint64_t pos;
  if (f < 0) return call();
  for (i = 0; i < cnt; i++) total += iov[i].iov_len;
  flock_file(f);
  at = positional ? off : lseek(fd, 0, SEEK_CUR);
  if (!positional && (fcntl(fd, F_GETFL) & O_APPEND)) {
    struct stat st;
    at = fstat(fd, &st) == 0 ? st.st_size : at;
  }
  pos = journal_len(f);
  entry(f, 'W', (uint64_t)at, (uint64_t)total, NULL, 0);
  for (i = 0; i < cnt; i++)
    put_all(files[f].jfd, iov[i].iov_base, iov[i].iov_len);
  n = call();
  /* a write through an O_DSYNC descriptor is on disk when it returns */
  entry(f, fd_dsync[fd] ? 'Y' : 'D', pos, n > 0 ? (uint64_t)n : 0, NULL, 0);
  funlock(f);
  return n;
}

/* The real calls, through file-local state (the wrappers are not
 * reentrant per thread, but each thread only runs one at a time). */
static __thread int a_fd, a_cnt;
static __thread const void *a_buf;
static __thread const struct iovec *a_iov;
static __thread size_t a_n;
static __thread off_t a_off;
static ssize_t c_write(void) {
  return real_write(a_fd, a_buf, a_n);
}
static ssize_t c_pwrite(void) {
  return real_pwrite(a_fd, a_buf, a_n, a_off);
}
static ssize_t c_pwrite64(void) {
  return real_pwrite64(a_fd, a_buf, a_n, a_off);
}
static ssize_t c_writev(void) {
  return real_writev(a_fd, a_iov, a_cnt);
}
static ssize_t c_pwritev(void) {
  return real_pwritev(a_fd, a_iov, a_cnt, a_off);
}
static ssize_t c_pwritev64(void) {
  return real_pwritev64(a_fd, a_iov, a_cnt, a_off);
}

ssize_t write(int fd, const void *buf, size_t n) {
  struct iovec v;
  ensure_init();
  if (real_write == NULL) return syscall(SYS_write, fd, buf, n);
  a_fd = fd, a_buf = buf, a_n = n;
  v.iov_base = (void *)buf;
  v.iov_len = n;
  return logged_write(fd, &v, 1, 0, 0, c_write);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
  struct iovec v;
  ensure_init();
  a_fd = fd, a_buf = buf, a_n = n, a_off = off;
  v.iov_base = (void *)buf;
  v.iov_len = n;
  return logged_write(fd, &v, 1, off, 1, c_pwrite);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
  struct iovec v;
  ensure_init();
  a_fd = fd, a_buf = buf, a_n = n, a_off = off;
  v.iov_base = (void *)buf;
  v.iov_len = n;
  return logged_write(fd, &v, 1, off, 1, c_pwrite64);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
  ensure_init();
  a_fd = fd, a_iov = iov, a_cnt = cnt;
  return logged_write(fd, iov, cnt, 0, 0, c_writev);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off) {
  ensure_init();
  a_fd = fd, a_iov = iov, a_cnt = cnt, a_off = off;
  return logged_write(fd, iov, cnt, off, 1, c_pwritev);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off) {
  ensure_init();
  a_fd = fd, a_iov = iov, a_cnt = cnt, a_off = off;
  return logged_write(fd, iov, cnt, off, 1, c_pwritev64);
}

/* A size change: the U entry before the call says the size the file
 * will have if it succeeds (`end` the end of the range it covers, or -1
 * for exactly `exact`), the T entry after it the size it has. */
static void size_intent(int f, int fd, int64_t end, int64_t exact) {
  struct stat st;
  uint64_t size;
  if (fstat(fd, &st) != 0) return;
  size = (uint64_t)st.st_size;
  if (exact >= 0)
    size = (uint64_t)exact;
  else if (end >= 0 && (uint64_t)end > size)
    size = (uint64_t)end;
  entry(f, 'U', size, 0, NULL, 0);
}

static void size_changed(int f, int fd) {
  struct stat st;
  if (fstat(fd, &st) == 0) entry(f, 'T', (uint64_t)st.st_size, 0, NULL, 0);
}

#define SIZE_CALL(call, end, exact)   \
  int f, rc;                          \
  ensure_init();                      \
  f = tracked(fd);                    \
  if (f < 0) return call;             \
  flock_file(f);                      \
  size_intent(f, fd, (end), (exact)); \
  rc = call;                          \
  size_changed(f, fd);                \
  funlock(f);                         \
  return rc

/* fallocate keeps the size with FALLOC_FL_KEEP_SIZE (1) */
#define FALLOC_END(mode, off, len) \
  ((mode)&1 ? -1 : (int64_t)(off) + (int64_t)(len))

int ftruncate(int fd, off_t len) {
  SIZE_CALL(real_ftruncate(fd, len), -1, (int64_t)len);
}
int ftruncate64(int fd, off_t len) {
  SIZE_CALL(real_ftruncate64(fd, len), -1, (int64_t)len);
}
int fallocate(int fd, int mode, off_t off, off_t len) {
  SIZE_CALL(real_fallocate(fd, mode, off, len), FALLOC_END(mode, off, len), -1);
}
int fallocate64(int fd, int mode, off_t off, off_t len) {
  SIZE_CALL(real_fallocate64(fd, mode, off, len), FALLOC_END(mode, off, len),
            -1);
}
int posix_fallocate(int fd, off_t off, off_t len) {
  SIZE_CALL(real_posix_fallocate(fd, off, len), (int64_t)off + (int64_t)len,
            -1);
}
int posix_fallocate64(int fd, off_t off, off_t len) {
  SIZE_CALL(real_posix_fallocate64(fd, off, len), (int64_t)off + (int64_t)len,
            -1);
}

/* After a successful flush of file f (open as fd) that began when its
 * journal was `covered` bytes long. */
static void flushed(int f, int fd, uint64_t covered) {
  flock_file(f);
  if (is_mapped(f)) {
    uint64_t n = snapshot(f, fd);
    entry(f, 'S', covered, n, NULL, 0);
    remove_old_snapshots(f, n);
  } else {
    entry(f, 'F', covered, 0, NULL, 0);
  }
  funlock(f);
}

static uint64_t flush_begins(int f) {
  uint64_t c;
  flock_file(f);
  c = journal_len(f);
  funlock(f);
  return c;
}

int fsync(int fd) {
  int f, rc;
  uint64_t c;
  ensure_init();
  f = tracked(fd);
  if (f < 0) return real_fsync(fd);
  c = flush_begins(f);
  rc = real_fsync(fd);
  if (rc == 0) flushed(f, fd, c);
  return rc;
}

int fdatasync(int fd) {
  int f, rc;
  uint64_t c;
  ensure_init();
  f = tracked(fd);
  if (f < 0) return real_fdatasync(fd);
  c = flush_begins(f);
  rc = real_fdatasync(fd);
  if (rc == 0) flushed(f, fd, c);
  return rc;
}

/* Flush every tracked file open in this process (sync, syncfs). */
static void flush_all(void (*call)(void), int (*call_fd)(int), int arg) {
  uint64_t c[MAX_FILES];
  int fd_of[MAX_FILES], f, fd;
  for (f = 0; f < MAX_FILES; f++) fd_of[f] = -1;
  pthread_mutex_lock(&lock);
  for (fd = 0; fd < MAX_FDS; fd++)
    if (fd_file[fd] && fd_of[fd_file[fd] - 1] < 0) fd_of[fd_file[fd] - 1] = fd;
  pthread_mutex_unlock(&lock);
  for (f = 0; f < n_files; f++)
    if (fd_of[f] >= 0) c[f] = flush_begins(f);
  if (call) call();
  if (call_fd && call_fd(arg) != 0) return;
  for (f = 0; f < n_files; f++)
    if (fd_of[f] >= 0) flushed(f, fd_of[f], c[f]);
}

void sync(void) {
  ensure_init();
  if (!active) {
    real_sync();
    return;
  }
  flush_all(real_sync, NULL, 0);
}

int syncfs(int fd) {
  ensure_init();
  if (!active) return real_syncfs(fd);
  flush_all(NULL, real_syncfs, fd);
  return 0;
}

static void mapped(void *addr, size_t len, int prot, int flags, int fd) {
  int f = tracked(fd), i;
  if (f < 0 || addr == MAP_FAILED || !(flags & MAP_SHARED)) return;
  flock_file(f);
  pthread_mutex_lock(&lock);
  for (i = 0; i < MAX_MAPS; i++)
    if (maps[i].addr == NULL) {
      maps[i].addr = addr;
      maps[i].len = len;
      maps[i].file = f;
      break;
    }
  if (prot & PROT_WRITE) {
    char p[PATH_MAX + 64];
    int m;
    snprintf(p, sizeof p, "%s/%s.mapped", journal_dir, files[f].base);
    m = real_open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (m >= 0) real_close(m);
    entry(f, 'M', 0, 0, NULL, 0);
  }
  pthread_mutex_unlock(&lock);
  funlock(f);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  void *p;
  ensure_init();
  if (real_mmap == NULL)
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
  p = real_mmap(addr, len, prot, flags, fd, off);
  mapped(p, len, prot, flags, fd);
  return p;
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  void *p;
  ensure_init();
  if (real_mmap64 == NULL)
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
  p = real_mmap64(addr, len, prot, flags, fd, off);
  mapped(p, len, prot, flags, fd);
  return p;
}

int munmap(void *addr, size_t len) {
  int i;
  ensure_init();
  if (real_munmap == NULL) return (int)syscall(SYS_munmap, addr, len);
  if (active) {
    pthread_mutex_lock(&lock);
    for (i = 0; i < MAX_MAPS; i++)
      if (maps[i].addr == addr) maps[i].addr = NULL;
    pthread_mutex_unlock(&lock);
  }
  return real_munmap(addr, len);
}

/* msync with MS_SYNC on a mapping of a tracked file flushes it.  The
 * snapshot reads the file through a descriptor of this process. */
int msync(void *addr, size_t len, int flags) {
  int i, f = -1, fd, rc;
  uint64_t c = 0;
  ensure_init();
  if (active && (flags & MS_SYNC)) {
    pthread_mutex_lock(&lock);
    for (i = 0; i < MAX_MAPS; i++)
      if (maps[i].addr && (char *)addr >= maps[i].addr &&
          (char *)addr < maps[i].addr + maps[i].len)
        f = maps[i].file;
    pthread_mutex_unlock(&lock);
  }
  if (f < 0) return real_msync(addr, len, flags);
  for (fd = 0; fd < MAX_FDS; fd++)
    if (fd_file[fd] == f + 1) break;
  if (fd == MAX_FDS) return real_msync(addr, len, flags);
  c = flush_begins(f);
  rc = real_msync(addr, len, flags);
  if (rc == 0) flushed(f, fd, c);
  return rc;
}
