/*
 * test_prefetch.c -- df_open_options.prefetch: opening a database whose
 * data file is not in the page cache asks the kernel to read it in the
 * background (up to the bound given), and asks nothing with
 * DF_PREFETCH_NONE.
 *
 * The data file is dropped from the page cache with posix_fadvise
 * (POSIX_FADV_DONTNEED works for clean pages nobody maps), and page
 * residency is read with mincore on a map of the file (which reads
 * nothing).  The database lives in the build directory, not /tmp, which
 * may be a tmpfs (whose pages cannot be dropped).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "dynafile.h"
#include "internal.h"

#define ITEMS 3000
#define BLOB 1000

static char dir[256], data[300];
/* The bytes of the data file in use: the file itself is allocated up to
 * the map size (env.c), and the read-ahead covers the pages in use. */
static off_t used;

static void put_items(void) {
  df_schema s = {"PK", "SK", NULL, NULL, 0};
  df_open_options o;
  df_db *db = NULL;
  df_txn *t = NULL;
  df_buf b;
  char sk[32], blob[BLOB];
  int i;
  memset(&o, 0, sizeof o);
  o.schema = &s;
  o.sync = DF_SYNC_OFF;
  memset(blob, 'x', sizeof blob);
  df__buf_init(&b);
  CHECK_EQ_INT(df_db_open(dir, &o, &db), DF_OK);
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_WRITE, 0, &t), DF_OK);
  for (i = 0; i < ITEMS; i++) {
    snprintf(sk, sizeof sk, "%06d", i);
    df__buf_reset(&b);
    df__mp_put_map(&b, 3);
    df__mp_put_str(&b, "PK", 2);
    df__mp_put_str(&b, "p", 1);
    df__mp_put_str(&b, "SK", 2);
    df__mp_put_str(&b, sk, strlen(sk));
    df__mp_put_str(&b, "blob", 4);
    df__mp_put_str(&b, blob, sizeof blob);
    CHECK_EQ_INT(df_txn_put(t, b.p, b.len, NULL, NULL), DF_OK);
  }
  CHECK_EQ_INT(df_txn_commit(t), DF_OK);
  df_txn_free(t);
  {
    df_stat st;
    CHECK_EQ_INT(df_db_stat(db, &st), DF_OK);
    used = (off_t)st.used_bytes;
  }
  df_db_close(db);
  df__buf_free(&b);
}

static off_t file_size(void) {
  off_t n;
  int fd = open(data, O_RDONLY);
  if (fd < 0) return 0;
  n = lseek(fd, 0, SEEK_END);
  close(fd);
  return n;
}

/* Drop the data file's pages from the page cache. */
static void drop(void) {
  int fd = open(data, O_RDONLY);
  if (fd < 0) return;
  (void)fdatasync(fd);
  (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
}

/* How many of the 32 pages spread over [from, to) are in the page cache:
 * -1 when that cannot be told here. */
static int cached_pages(off_t from, off_t to) {
  long pg = sysconf(_SC_PAGESIZE);
  off_t size = file_size();
  int fd = open(data, O_RDONLY), i, n = 0;
  unsigned char *map, in;
  if (fd < 0 || size <= 0) return -1;
  map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return -1;
  for (i = 0; i < 32; i++) {
    off_t off = (from + (to - from) / 32 * i) / pg * pg;
    if (mincore(map + off, (size_t)pg, &in) != 0) {
      n = -1;
      break;
    }
    n += in & 1;
  }
  munmap(map, (size_t)size);
  return n;
}

static df_db *open_with(size_t prefetch) {
  df_open_options o;
  df_db *db = NULL;
  memset(&o, 0, sizeof o);
  o.prefetch = prefetch;
  CHECK_EQ_INT(df_db_open(dir, &o, &db), DF_OK);
  return db;
}

/* Wait up to 10 s for every sampled page of [from, to) to be cached. */
static int wait_cached(off_t from, off_t to) {
  int i;
  struct timespec ts = {0, 20 * 1000 * 1000};
  for (i = 0; i < 500; i++) {
    if (cached_pages(from, to) == 32) return 1;
    nanosleep(&ts, NULL);
  }
  return 0;
}

static int can_drop;

static void test_default_reads_the_file_in(void) {
  off_t size = used;
  df_db *db;
  if (!can_drop) return;
  drop();
  CHECK_EQ_INT(cached_pages(0, size), 0);
  db = open_with(0);
  CHECK(wait_cached(0, size));
  df_db_close(db);
}

static void test_none_reads_nothing(void) {
  off_t size = used;
  df_db *db;
  struct timespec ts = {0, 300 * 1000 * 1000};
  if (!can_drop) return;
  drop();
  db = open_with(DF_PREFETCH_NONE);
  nanosleep(&ts, NULL);
  /* opening reads the meta pages and the schema record, nothing more */
  CHECK(cached_pages(size / 4, size) <= 2);
  df_db_close(db);
}

static void test_bound_is_honoured(void) {
  off_t size = used;
  df_db *db;
  struct timespec ts = {0, 300 * 1000 * 1000};
  if (!can_drop) return;
  drop();
  db = open_with((size_t)256 << 10);
  CHECK(wait_cached(0, (off_t)256 << 10));
  nanosleep(&ts, NULL);
  CHECK(cached_pages(size / 2, size) <= 2);
  df_db_close(db);
}

/* An open of a database already in the page cache: the data is right and
 * nothing breaks whatever the option. */
static void test_cached_file_opens(void) {
  df_db *db = open_with(0);
  df_key k;
  const void *v;
  size_t n;
  memset(&k, 0, sizeof k);
  k.pk.type = DF_TSTR;
  k.pk.s = "p";
  k.pk.n = 1;
  k.sk.type = DF_TSTR;
  k.sk.s = "002999";
  k.sk.n = 6;
  CHECK_EQ_INT(df_db_get(db, &k, 0, &v, &n), DF_OK);
  CHECK(n > BLOB);
  df_db_close(db);
}

int main(void) {
  char cmd[300];
  const char *base = getenv("DF_TEST_DIR");
  snprintf(dir, sizeof dir, "%s/df-prefetch-%d", base ? base : "build",
           (int)getpid());
  snprintf(data, sizeof data, "%s/data.mdb", dir);
  put_items();
  drop();
  can_drop = cached_pages(0, file_size()) == 0;
  if (!can_drop)
    printf(
        "test_prefetch: the page cache cannot be observed or emptied for "
        "%s here (tmpfs, or no RWF_NOWAIT): only the open is checked\n",
        dir);
  RUN_TEST(test_default_reads_the_file_in);
  RUN_TEST(test_none_reads_nothing);
  RUN_TEST(test_bound_is_honoured);
  RUN_TEST(test_cached_file_opens);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
  return check_done("test_prefetch");
}
