/*
 * test_redo.c -- unit tests for the redo log file (redo.c) and its
 * checksum (crc32c.c): published CRC-32C values and the hardware path
 * against the table path; checkpoint headers, their two slots, torn and
 * damaged slots; records, their ops, and every way a record must stop
 * being read: a wrong sequence number or log id, any flipped byte, a
 * write torn at any 512-byte boundary, a voided record, a leftover record
 * from before a checkpoint; and the zero-filled growth of the file.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

static char dir[256];
static char err[512];

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void) {
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return rng_state = x;
}

static void fresh_dir(void) {
  char cmd[600];
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/test_redo.XXXXXX", tmp ? tmp : "/tmp");
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    exit(2);
  }
  (void)cmd;
}

static void remove_dir(void) {
  char p[600];
  snprintf(p, sizeof p, "%s/redo.log", dir);
  unlink(p);
  rmdir(dir);
}

static df_redo *open_log(void) {
  df_redo *r = NULL;
  int code = df__redo_open(dir, 0, &r, err, sizeof err);
  CHECK_EQ_INT(code, DF_OK);
  return r;
}

/* Raw access to the file, for damaging it. */
static void raw_write(const void *p, size_t n, uint64_t off) {
  char path[600];
  int fd;
  snprintf(path, sizeof path, "%s/redo.log", dir);
  fd = open(path, O_RDWR);
  CHECK(fd >= 0);
  CHECK(pwrite(fd, p, n, (off_t)off) == (ssize_t)n);
  close(fd);
}

static void raw_read(void *p, size_t n, uint64_t off) {
  char path[600];
  int fd;
  snprintf(path, sizeof path, "%s/redo.log", dir);
  fd = open(path, O_RDONLY);
  CHECK(fd >= 0);
  CHECK(pread(fd, p, n, (off_t)off) == (ssize_t)n);
  close(fd);
}

/* ------------------------------------------------------------- crc32c */

static void test_crc_known_values(void) {
  unsigned char b[32];
  int i;
  CHECK_EQ_UINT(df__crc32c(0, "123456789", 9), 0xE3069283u);
  CHECK_EQ_UINT(df__crc32c_portable(0, "123456789", 9), 0xE3069283u);
  CHECK_EQ_UINT(df__crc32c(0, "", 0), 0u);
  memset(b, 0, sizeof b);
  CHECK_EQ_UINT(df__crc32c(0, b, 32), 0x8A9136AAu);
  memset(b, 0xff, sizeof b);
  CHECK_EQ_UINT(df__crc32c(0, b, 32), 0x62A8AB43u);
  for (i = 0; i < 32; i++) b[i] = (unsigned char)i;
  CHECK_EQ_UINT(df__crc32c(0, b, 32), 0x46DD794Eu);
  CHECK_EQ_UINT(df__crc32c_portable(0, b, 32), 0x46DD794Eu);
}

static void test_crc_paths_agree(void) {
  static unsigned char b[4096 + 16];
  size_t i;
  int round, bad = 0, split_bad = 0;
  for (i = 0; i < sizeof b; i++) b[i] = (unsigned char)rnd();
  for (round = 0; round < 2000; round++) {
    size_t start = rnd() % 16, len = rnd() % 4096, cut = len ? rnd() % len : 0;
    uint32_t a = df__crc32c(0, b + start, len);
    uint32_t p = df__crc32c_portable(0, b + start, len);
    uint32_t s =
        df__crc32c(df__crc32c(0, b + start, cut), b + start + cut, len - cut);
    if (a != p) bad++;
    if (a != s) split_bad++;
  }
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(split_bad, 0);
}

/* ------------------------------------------------------------ headers */

static df_redo_header make_header(uint64_t counter) {
  df_redo_header h;
  int i;
  memset(&h, 0, sizeof h);
  h.log_id = 0x1122334455667788ull;
  h.counter = counter;
  h.base_txnid = 1000 + counter;
  h.next_seq = 50 + counter;
  h.first_off = DF_REDO_AREA + 8 * counter;
  h.psize = 4096;
  h.flags = (uint32_t)counter;
  for (i = 0; i < DF_REDO_META_LEN; i++) {
    h.meta[0][i] = (unsigned char)(i + counter);
    h.meta[1][i] = (unsigned char)(3 * i + counter);
  }
  return h;
}

static int same_header(const df_redo_header *a, const df_redo_header *b) {
  return a->log_id == b->log_id && a->counter == b->counter &&
         a->base_txnid == b->base_txnid && a->next_seq == b->next_seq &&
         a->first_off == b->first_off && a->psize == b->psize &&
         a->flags == b->flags && !memcmp(a->meta, b->meta, sizeof a->meta);
}

static void test_header_slots(void) {
  df_redo *r;
  df_redo_header h0 = make_header(0), h1 = make_header(1), h2 = make_header(2);
  df_redo_header got;
  unsigned char slot[DF_REDO_HEADER_SIZE], byte;
  fresh_dir();
  r = open_log();
  CHECK_EQ_INT(df__redo_header_read(r, &got, err, sizeof err), DF_ENOTFOUND);
  CHECK_EQ_INT(df__redo_header_write(r, &h0, err, sizeof err), DF_OK);
  CHECK(df__redo_size(r) >= DF_REDO_AREA);
  CHECK_EQ_INT(df__redo_header_read(r, &got, err, sizeof err), DF_OK);
  CHECK(same_header(&got, &h0));
  CHECK_EQ_INT(df__redo_header_write(r, &h1, err, sizeof err), DF_OK);
  CHECK_EQ_INT(df__redo_header_read(r, &got, err, sizeof err), DF_OK);
  CHECK(same_header(&got, &h1));
  /* slot 0 now gets counter 2; slot 1 keeps counter 1 */
  CHECK_EQ_INT(df__redo_header_write(r, &h2, err, sizeof err), DF_OK);
  CHECK_EQ_INT(df__redo_header_read(r, &got, err, sizeof err), DF_OK);
  CHECK(same_header(&got, &h2));

  /* one flipped byte anywhere in the newer slot: the older one is read */
  raw_read(slot, sizeof slot, 0);
  for (size_t i = 0; i < DF_REDO_HEADER_SIZE; i += 97) {
    byte = slot[i] ^ 0x20;
    raw_write(&byte, 1, i);
    if (!CHECK(df__redo_header_read(r, &got, err, sizeof err) == DF_OK &&
               same_header(&got, &h1)))
      fprintf(stderr, "  flipped byte %zu of slot 0\n", i);
    raw_write(&slot[i], 1, i);
  }
  /* a write of the newer slot torn at each 512-byte boundary */
  {
    unsigned char older[DF_REDO_HEADER_SIZE];
    df_redo_header h0b = make_header(0);
    unsigned char mix[DF_REDO_HEADER_SIZE];
    /* what slot 0 held before h2: h0 */
    CHECK_EQ_INT(df__redo_header_write(r, &h0b, err, sizeof err), DF_OK);
    raw_read(older, sizeof older, 0);
    for (size_t k = 1; k < DF_REDO_HEADER_SIZE / 512; k++) {
      memcpy(mix, slot, k * 512);
      memcpy(mix + k * 512, older + k * 512, sizeof mix - k * 512);
      raw_write(mix, sizeof mix, 0);
      if (!CHECK(df__redo_header_read(r, &got, err, sizeof err) == DF_OK &&
                 same_header(&got, &h1)))
        fprintf(stderr, "  torn after %zu sectors\n", k);
      memcpy(mix, older, k * 512);
      memcpy(mix + k * 512, slot + k * 512, sizeof mix - k * 512);
      raw_write(mix, sizeof mix, 0);
      CHECK(df__redo_header_read(r, &got, err, sizeof err) == DF_OK &&
            same_header(&got, &h1));
    }
  }
  /* both slots damaged: no checkpoint */
  byte = 0;
  raw_write(&byte, 1, 100);
  raw_write(&byte, 1, DF_REDO_HEADER_SIZE + 100);
  CHECK_EQ_INT(df__redo_header_read(r, &got, err, sizeof err), DF_ENOTFOUND);
  CHECK(strstr(err, "no valid checkpoint") != NULL);
  df__redo_close(r);
  remove_dir();
}

/* An even counter in slot 1 (or two logs' slots side by side) is not a
 * checkpoint this file could hold. */
static void test_header_slot_parity_and_ids(void) {
  df_redo *r;
  df_redo_header h0 = make_header(0), h1 = make_header(1), got;
  unsigned char slot[DF_REDO_HEADER_SIZE];
  fresh_dir();
  r = open_log();
  CHECK_EQ_INT(df__redo_header_write(r, &h0, err, sizeof err), DF_OK);
  raw_read(slot, sizeof slot, 0);
  raw_write(slot, sizeof slot, DF_REDO_HEADER_SIZE); /* counter 0 in slot 1 */
  CHECK_EQ_INT(df__redo_header_read(r, &got, err, sizeof err), DF_OK);
  CHECK(same_header(&got, &h0));
  h1.log_id ^= 1;
  CHECK_EQ_INT(df__redo_header_write(r, &h1, err, sizeof err), DF_OK);
  CHECK_EQ_INT(df__redo_header_read(r, &got, err, sizeof err), DF_ECORRUPT);
  df__redo_close(r);
  remove_dir();
}

/* ------------------------------------------------------------ records */

#define LOG_ID 0xfeedfacecafebeefull

/* A record of n_ops ops with contents derived from `salt`. */
static void build(df_redo_rec *rec, int salt, int n_ops, size_t vmax) {
  int i;
  CHECK_EQ_INT(df__redo_rec_reset(rec), DF_OK);
  for (i = 0; i < n_ops; i++) {
    unsigned char k[64], v[4096];
    size_t kl = (size_t)((salt + i) % 40), vl = vmax ? rnd() % vmax : 0, j;
    for (j = 0; j < kl; j++) k[j] = (unsigned char)(salt * 7 + i + j);
    for (j = 0; j < vl; j++) v[j] = (unsigned char)rnd();
    switch (i % 3) {
      case 0:
        CHECK_EQ_INT(df__redo_rec_put(rec, (unsigned)(i % 5), k, kl, v, vl),
                     DF_OK);
        break;
      case 1:
        CHECK_EQ_INT(df__redo_rec_del(rec, (unsigned)(i % 5), k, kl), DF_OK);
        break;
      default:
        CHECK_EQ_INT(df__redo_rec_clear(rec, (unsigned)(i % 5)), DF_OK);
    }
  }
}

/* Read records from `off` expecting seq, seq+1, ...: how many are valid. */
static int scan(df_redo *r, uint64_t off, uint64_t seq) {
  df_buf b;
  int n = 0;
  df__buf_init(&b);
  while (df__redo_read(r, off, LOG_ID, seq, &b, err, sizeof err) == DF_OK) {
    off += b.len;
    seq++;
    n++;
  }
  df__buf_free(&b);
  return n;
}

static void test_record_round_trip(void) {
  df_redo *r;
  df_redo_rec rec;
  df_buf b;
  const unsigned char *p, *end;
  df_redo_op op;
  int n = 0, rc;
  fresh_dir();
  r = open_log();
  df__redo_rec_init(&rec);
  df__buf_init(&b);
  CHECK_EQ_INT(df__redo_rec_reset(&rec), DF_OK);
  CHECK_EQ_INT(df__redo_rec_put(&rec, 1, "key", 3, "value", 5), DF_OK);
  CHECK_EQ_INT(df__redo_rec_put(&rec, 2, "", 0, "", 0), DF_OK);
  CHECK_EQ_INT(df__redo_rec_del(&rec, 3, "gone", 4), DF_OK);
  CHECK_EQ_INT(df__redo_rec_clear(&rec, 4), DF_OK);
  {
    static unsigned char big[100000];
    memset(big, 'b', sizeof big);
    CHECK_EQ_INT(df__redo_rec_put(&rec, 0, "big", 3, big, sizeof big), DF_OK);
  }
  CHECK_EQ_UINT(rec.n_ops, 5);
  {
    size_t will = df__redo_rec_sealed_len(&rec);
    CHECK_EQ_INT(df__redo_rec_seal(&rec, LOG_ID, 7), DF_OK);
    CHECK_EQ_UINT(rec.buf.len, will);
  }
  CHECK_EQ_UINT(rec.buf.len % 8, 0);
  CHECK_EQ_INT(df__redo_append(r, &rec, DF_REDO_AREA, err, sizeof err), DF_OK);
  CHECK(df__redo_size(r) >= DF_REDO_AREA + rec.buf.len);
  CHECK_EQ_INT(df__redo_read(r, DF_REDO_AREA, LOG_ID, 7, &b, err, sizeof err),
               DF_OK);
  CHECK_EQ_MEM(b.p, b.len, rec.buf.p, rec.buf.len);
  CHECK_EQ_UINT(df__redo_rec_ops(b.p, b.len), 5);
  df__redo_rec_body(b.p, b.len, &p, &end);
  while ((rc = df__redo_op_next(&p, end, &op)) == 1) {
    switch (n++) {
      case 0:
        CHECK(op.kind == DF_REDO_PUT && op.dbi == 1);
        CHECK_EQ_MEM(op.key, op.klen, "key", 3);
        CHECK_EQ_MEM(op.val, op.vlen, "value", 5);
        break;
      case 1:
        CHECK(op.kind == DF_REDO_PUT && op.dbi == 2 && op.klen == 0 &&
              op.vlen == 0);
        break;
      case 2:
        CHECK(op.kind == DF_REDO_DEL && op.dbi == 3);
        CHECK_EQ_MEM(op.key, op.klen, "gone", 4);
        break;
      case 3:
        CHECK(op.kind == DF_REDO_CLEAR && op.dbi == 4 && op.klen == 0);
        break;
      case 4:
        CHECK(op.kind == DF_REDO_PUT && op.dbi == 0 && op.vlen == 100000 &&
              op.val[0] == 'b' && op.val[99999] == 'b');
        break;
    }
  }
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_INT(n, 5);
  /* wrong sequence number, wrong log, wrong offset */
  CHECK_EQ_INT(df__redo_read(r, DF_REDO_AREA, LOG_ID, 8, &b, err, sizeof err),
               DF_ENOTFOUND);
  CHECK_EQ_INT(
      df__redo_read(r, DF_REDO_AREA, LOG_ID ^ 1, 7, &b, err, sizeof err),
      DF_ENOTFOUND);
  CHECK_EQ_INT(
      df__redo_read(r, DF_REDO_AREA + 8, LOG_ID, 7, &b, err, sizeof err),
      DF_ENOTFOUND);
  CHECK_EQ_INT(df__redo_read(r, 0, LOG_ID, 7, &b, err, sizeof err),
               DF_ENOTFOUND);
  /* an empty record (a commit with no writes is never logged, but the
   * format allows it) */
  CHECK_EQ_INT(df__redo_rec_reset(&rec), DF_OK);
  CHECK_EQ_INT(df__redo_rec_seal(&rec, LOG_ID, 1), DF_OK);
  CHECK_EQ_UINT(rec.buf.len, 32);
  df__redo_rec_free(&rec);
  df__buf_free(&b);
  df__redo_close(r);
  remove_dir();
}

/* Malformed bodies are reported, never read past their end. */
static void test_ops_malformed(void) {
  static const unsigned char bad_kind[] = {9, 0, 0};
  static const unsigned char short_key[] = {DF_REDO_PUT, 1, 5, 'a', 'b'};
  static const unsigned char long_varint[] = {
      DF_REDO_DEL, 1,    0x80, 0x80, 0x80, 0x80, 0x80,
      0x80,        0x80, 0x80, 0x80, 0x80, 0x80};
  static const unsigned char no_value[] = {DF_REDO_PUT, 1, 1, 'a'};
  static const unsigned char padding[] = {DF_REDO_DEL, 1, 1, 'a', 0, 0, 0};
  const unsigned char *p;
  df_redo_op op;
  p = bad_kind;
  CHECK_EQ_INT(df__redo_op_next(&p, bad_kind + sizeof bad_kind, &op),
               DF_ECORRUPT);
  p = short_key;
  CHECK_EQ_INT(df__redo_op_next(&p, short_key + sizeof short_key, &op),
               DF_ECORRUPT);
  p = long_varint;
  CHECK_EQ_INT(df__redo_op_next(&p, long_varint + sizeof long_varint, &op),
               DF_ECORRUPT);
  p = no_value;
  CHECK_EQ_INT(df__redo_op_next(&p, no_value + sizeof no_value, &op),
               DF_ECORRUPT);
  p = padding;
  CHECK_EQ_INT(df__redo_op_next(&p, padding + sizeof padding, &op), 1);
  CHECK_EQ_INT(df__redo_op_next(&p, padding + sizeof padding, &op), 0);
}

/* Every single flipped bit of a record makes it unreadable. */
static void test_record_any_damage(void) {
  df_redo *r;
  df_redo_rec rec;
  df_buf b;
  size_t i;
  int missed = 0;
  fresh_dir();
  r = open_log();
  df__redo_rec_init(&rec);
  df__buf_init(&b);
  build(&rec, 3, 7, 300);
  CHECK_EQ_INT(df__redo_rec_seal(&rec, LOG_ID, 42), DF_OK);
  CHECK_EQ_INT(df__redo_append(r, &rec, DF_REDO_AREA, err, sizeof err), DF_OK);
  for (i = 0; i < rec.buf.len; i++) {
    unsigned char byte = rec.buf.p[i] ^ (unsigned char)(1u << (i % 8));
    raw_write(&byte, 1, DF_REDO_AREA + i);
    if (df__redo_read(r, DF_REDO_AREA, LOG_ID, 42, &b, err, sizeof err) !=
        DF_ENOTFOUND)
      missed++;
    raw_write(&rec.buf.p[i], 1, DF_REDO_AREA + i);
  }
  CHECK_EQ_INT(missed, 0);
  CHECK_EQ_INT(df__redo_read(r, DF_REDO_AREA, LOG_ID, 42, &b, err, sizeof err),
               DF_OK);
  df__redo_rec_free(&rec);
  df__buf_free(&b);
  df__redo_close(r);
  remove_dir();
}

/* A log of records where the last append was torn at any 512-byte
 * boundary, over older bytes or over zeros: the scan reads exactly the
 * records before it, or all of them when the torn part kept every byte. */
static void test_torn_appends(void) {
  df_redo *r;
  df_redo_rec rec, last;
  uint64_t off = DF_REDO_AREA;
  int i, bad = 0, cases = 0;
  fresh_dir();
  r = open_log();
  df__redo_rec_init(&rec);
  df__redo_rec_init(&last);
  for (i = 0; i < 5; i++) {
    build(&rec, i, 4, 900);
    CHECK_EQ_INT(df__redo_rec_seal(&rec, LOG_ID, 100 + (uint64_t)i), DF_OK);
    CHECK_EQ_INT(df__redo_append(r, &rec, off, err, sizeof err), DF_OK);
    off += rec.buf.len;
  }
  CHECK_EQ_INT(scan(r, DF_REDO_AREA, 100), 5);
  build(&last, 99, 9, 1500); /* several sectors long */
  CHECK_EQ_INT(df__redo_rec_seal(&last, LOG_ID, 105), DF_OK);
  {
    /* the sectors the record covers, by file offset */
    uint64_t first = off / 512 * 512,
             stop = (off + last.buf.len + 511) / 512 * 512;
    size_t span = (size_t)(stop - first);
    unsigned char *old = malloc(span), *new_ = malloc(span),
                  *mix = malloc(span);
    int old_kind;
    for (old_kind = 0; old_kind < 2; old_kind++) {
      size_t k, j, nsec = span / 512;
      /* old contents: zeros, or the tail of a longer stale record */
      CHECK_EQ_INT(df__redo_reserve(r, stop, err, sizeof err), DF_OK);
      raw_read(old, span, first);
      if (old_kind == 1)
        for (j = (size_t)(off - first); j < span; j++)
          old[j] = (unsigned char)rnd();
      memcpy(new_, old, span);
      memcpy(new_ + (off - first), last.buf.p, last.buf.len);
      /* every subset of written sectors, for up to 12 sectors; else the
       * prefixes, the suffixes and 2000 random subsets */
      for (k = 0; k < (nsec <= 12 ? (1u << nsec) : 2000 + 2 * nsec); k++) {
        unsigned long mask;
        if (nsec <= 12)
          mask = (unsigned long)k;
        else if (k < nsec)
          mask = (1ul << k) - 1;
        else if (k < 2 * nsec)
          mask = ~((1ul << (k - nsec)) - 1);
        else
          mask = (unsigned long)rnd();
        for (j = 0; j < nsec; j++)
          memcpy(mix + j * 512,
                 (mask >> (j % 64) & 1) ? new_ + j * 512 : old + j * 512, 512);
        raw_write(mix, span, first);
        {
          int got = scan(r, DF_REDO_AREA, 100);
          int want = memcmp(mix, new_, span) == 0 ? 6 : 5;
          cases++;
          if (got != want) {
            bad++;
            if (bad < 5)
              fprintf(stderr, "  torn mask %lx: read %d records, want %d\n",
                      mask, got, want);
          }
        }
      }
      raw_write(old, span, first);
    }
    free(old);
    free(new_);
    free(mix);
  }
  CHECK(cases > 100);
  CHECK_EQ_INT(bad, 0);
  df__redo_rec_free(&rec);
  df__redo_rec_free(&last);
  df__redo_close(r);
  remove_dir();
}

/* A voided record ends the log; the same sequence number written there
 * again is read. */
static void test_void(void) {
  df_redo *r;
  df_redo_rec rec;
  uint64_t off2;
  fresh_dir();
  r = open_log();
  df__redo_rec_init(&rec);
  build(&rec, 1, 3, 50);
  CHECK_EQ_INT(df__redo_rec_seal(&rec, LOG_ID, 1), DF_OK);
  CHECK_EQ_INT(df__redo_append(r, &rec, DF_REDO_AREA, err, sizeof err), DF_OK);
  off2 = DF_REDO_AREA + rec.buf.len;
  build(&rec, 2, 3, 50);
  CHECK_EQ_INT(df__redo_rec_seal(&rec, LOG_ID, 2), DF_OK);
  CHECK_EQ_INT(df__redo_append(r, &rec, off2, err, sizeof err), DF_OK);
  CHECK_EQ_INT(scan(r, DF_REDO_AREA, 1), 2);
  CHECK_EQ_INT(df__redo_void(r, off2, err, sizeof err), DF_OK);
  CHECK_EQ_INT(scan(r, DF_REDO_AREA, 1), 1);
  build(&rec, 3, 5, 80);
  CHECK_EQ_INT(df__redo_rec_seal(&rec, LOG_ID, 2), DF_OK);
  CHECK_EQ_INT(df__redo_append(r, &rec, off2, err, sizeof err), DF_OK);
  CHECK_EQ_INT(scan(r, DF_REDO_AREA, 1), 2);
  df__redo_rec_free(&rec);
  df__redo_close(r);
  remove_dir();
}

/* After a checkpoint records start again at the start of the area: the
 * records left behind from before it, longer or shorter, are never read
 * as part of the new log. */
static void test_leftovers_after_restart(void) {
  df_redo *r;
  df_redo_rec rec;
  uint64_t off = DF_REDO_AREA;
  int i;
  fresh_dir();
  r = open_log();
  df__redo_rec_init(&rec);
  for (i = 0; i < 20; i++) { /* seq 1..20 */
    build(&rec, i, 2 + i % 4, 200);
    CHECK_EQ_INT(df__redo_rec_seal(&rec, LOG_ID, 1 + (uint64_t)i), DF_OK);
    CHECK_EQ_INT(df__redo_append(r, &rec, off, err, sizeof err), DF_OK);
    off += rec.buf.len;
  }
  CHECK_EQ_INT(scan(r, DF_REDO_AREA, 1), 20);
  /* checkpoint after 20: seq 21.. from the start again */
  off = DF_REDO_AREA;
  for (i = 0; i < 3; i++) {
    build(&rec, 50 + i, 1, 10);
    CHECK_EQ_INT(df__redo_rec_seal(&rec, LOG_ID, 21 + (uint64_t)i), DF_OK);
    CHECK_EQ_INT(df__redo_append(r, &rec, off, err, sizeof err), DF_OK);
    off += rec.buf.len;
    CHECK_EQ_INT(scan(r, DF_REDO_AREA, 21), i + 1);
  }
  CHECK_EQ_INT(scan(r, DF_REDO_AREA, 1), 0);
  df__redo_rec_free(&rec);
  df__redo_close(r);
  remove_dir();
}

/* The file grows in zero-filled chunks; appending inside them leaves its
 * size alone. */
static void test_growth(void) {
  df_redo *r;
  df_redo_rec rec;
  uint64_t size, off = DF_REDO_AREA;
  struct stat st;
  char path[600];
  int i, grew = 0;
  unsigned char z[64];
  fresh_dir();
  r = open_log();
  df__redo_rec_init(&rec);
  CHECK_EQ_UINT(df__redo_size(r), 0);
  CHECK_EQ_INT(df__redo_reserve(r, DF_REDO_AREA + 1, err, sizeof err), DF_OK);
  size = df__redo_size(r);
  CHECK(size > DF_REDO_AREA);
  snprintf(path, sizeof path, "%s/redo.log", dir);
  CHECK(stat(path, &st) == 0 && (uint64_t)st.st_size == size);
  raw_read(z, sizeof z, size - sizeof z);
  for (i = 0; i < (int)sizeof z; i++) CHECK_EQ_INT(z[i], 0);
  for (i = 0; i < 400; i++) {
    uint64_t before = df__redo_size(r);
    build(&rec, i, 6, 2000);
    CHECK_EQ_INT(df__redo_rec_seal(&rec, LOG_ID, (uint64_t)i + 1), DF_OK);
    CHECK_EQ_INT(df__redo_append(r, &rec, off, err, sizeof err), DF_OK);
    off += rec.buf.len;
    if (df__redo_size(r) != before) {
      grew++;
      CHECK(df__redo_size(r) >= 2 * before - DF_REDO_AREA ||
            df__redo_size(r) >= off);
    }
    CHECK(df__redo_size(r) >= off);
  }
  CHECK(grew >= 1 && grew < 10); /* doubling: a few growths, not one each */
  CHECK_EQ_INT(scan(r, DF_REDO_AREA, 1), 400);
  CHECK(stat(path, &st) == 0 && (uint64_t)st.st_size == df__redo_size(r));
  df__redo_rec_free(&rec);
  df__redo_close(r);
  /* reopened, the size is known again */
  r = open_log();
  CHECK(stat(path, &st) == 0 && (uint64_t)st.st_size == df__redo_size(r));
  CHECK_EQ_INT(scan(r, DF_REDO_AREA, 1), 400);
  df__redo_close(r);
  remove_dir();
}

static void test_open_errors(void) {
  df_redo *r = NULL;
  CHECK_EQ_INT(df__redo_open("/nonexistent/dir", 1, &r, err, sizeof err),
               DF_ENOTFOUND);
  CHECK(r == NULL);
  CHECK(strstr(err, "redo.log") != NULL);
  fresh_dir();
  CHECK_EQ_INT(df__redo_open(dir, 1, &r, err, sizeof err), DF_ENOTFOUND);
  remove_dir();
  df__redo_close(NULL);
}

int main(void) {
  RUN_TEST(test_crc_known_values);
  RUN_TEST(test_crc_paths_agree);
  RUN_TEST(test_header_slots);
  RUN_TEST(test_header_slot_parity_and_ids);
  RUN_TEST(test_record_round_trip);
  RUN_TEST(test_ops_malformed);
  RUN_TEST(test_record_any_damage);
  RUN_TEST(test_torn_appends);
  RUN_TEST(test_void);
  RUN_TEST(test_leftovers_after_restart);
  RUN_TEST(test_growth);
  RUN_TEST(test_open_errors);
  return check_done("test_redo");
}
