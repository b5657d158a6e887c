/*
 * redo.c -- the redo log file, <dir>/redo.log: its checkpoint headers and
 * its records.  This file knows the format and does the I/O; when to write
 * what, and why that is safe, is the commit path's business (commit.c,
 * whose header holds the safety argument).
 *
 * Layout (integers little-endian):
 *
 *   [0, 4096)      header slot 0    \  a checkpoint with an even counter
 *   [4096, 8192)   header slot 1    /  goes to slot 0, an odd one to slot 1
 *   [8192, size)   the record area: records one after another from 8192,
 *                  followed by zeros or by older records
 *
 *   header slot (4096 bytes):
 *     u32 magic "DFH1"  u32 version (1)
 *     u64 log_id        random, chosen when the log is created
 *     u64 counter       checkpoint number, +1 per checkpoint
 *     u64 base_txnid    the LMDB transaction the checkpoint covers
 *     u64 next_seq      sequence number of the first record after it
 *     u64 first_off     offset of that record
 *     u32 psize         LMDB's page size
 *     u32 meta_len      DF_REDO_META_LEN
 *     u8  meta[2][512]  the first 512 bytes of LMDB's meta pages 0 and 1
 *     u32 flags
 *     ...zeros...
 *     u32 crc32c of bytes [0, 4092) seeded with nothing
 *
 *   record (a multiple of 8 bytes, at least 32):
 *     u32 magic "DFR1"  u32 len (whole record)
 *     u64 seq
 *     u32 n_ops         u32 flags (0)
 *     ops: u8 kind (1 put, 2 delete, 3 clear), u8 dbi, varint key length,
 *          key, and for a put varint value length, value
 *     zero padding to len - 8
 *     u32 crc32c of bytes [0, len - 8), continued from the log_id
 *     u32 len again
 *
 * Invariants and what they give:
 *  - A header slot is valid when its magic, version and checksum hold;
 *    the valid slot with the larger counter is the checkpoint.  A
 *    checkpoint is written to the slot its predecessor does not occupy,
 *    and flushed before anything relies on it, so a write torn by a crash
 *    leaves the previous checkpoint readable.
 *  - A record is valid at an offset when its magic, length, sequence
 *    number (the one expected there), checksum (seeded with this log's
 *    id) and trailing length all hold.  Records are read from a
 *    checkpoint's first_off expecting next_seq, next_seq + 1, ...; the
 *    first invalid one ends the log.  Sequence numbers only grow, so a
 *    leftover record from before the last checkpoint, or a half-written
 *    one, or one from another database's log, ends it too: what is read
 *    is always a prefix of what was written after the checkpoint.
 *  - A record is voided by zeroing its magic (one aligned 4-byte write,
 *    inside one sector); a voided record ends the log like any invalid
 *    one.
 *  - The file only grows, by whole chunks of zeros written and flushed
 *    before a record lands in them, so that appending a record never
 *    changes the file's size or allocation: a flush of the log then waits
 *    for the record's blocks only, not for file-system metadata.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define HDR_MAGIC 0x31484644u /* "DFH1" */
#define REC_MAGIC 0x31524644u /* "DFR1" */
#define HDR_VERSION 1u
#define REC_HEAD 24 /* magic, len, seq, n_ops, flags */
#define REC_TAIL 8  /* crc, len */
#define GROW_CHUNK ((uint64_t)256 << 10)
#define ZERO_CHUNK 65536

struct df_redo {
  int fd;
  int readonly;
  uint64_t size; /* bytes in the file; only grows */
  char path[4096];
};

/* ----------------------------------------------------- little endian */

static void put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}

static void put64(unsigned char *p, uint64_t v) {
  put32(p, (uint32_t)v);
  put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p) {
  return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static int put_varint(df_buf *b, uint64_t v) {
  unsigned char tmp[10];
  size_t n = 0;
  do {
    unsigned char c = v & 0x7f;
    v >>= 7;
    tmp[n++] = (unsigned char)(c | (v ? 0x80 : 0));
  } while (v);
  return df__buf_append(b, tmp, n);
}

static int get_varint(const unsigned char **p, const unsigned char *end,
                      uint64_t *out) {
  uint64_t v = 0;
  unsigned shift = 0;
  while (*p < end && shift < 64) {
    unsigned char c = *(*p)++;
    v |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) {
      *out = v;
      return 0;
    }
    shift += 7;
  }
  return -1;
}

/* ---------------------------------------------------------- file I/O */

static int io_err(int e) {
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

/* pwrite all of it; 0 or an errno value (a short write that makes no
 * progress is ENOSPC, as the kernel reports a full disk that way). */
static int write_all(int fd, const void *p, size_t n, uint64_t off) {
  const unsigned char *b = p;
  while (n > 0) {
    ssize_t w = pwrite(fd, b, n, (off_t)off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return ENOSPC;
    b += w;
    n -= (size_t)w;
    off += (uint64_t)w;
  }
  return 0;
}

/* pread up to n bytes; returns the count read (short at end of file) or
 * -1 with errno set. */
static ssize_t read_upto(int fd, void *p, size_t n, uint64_t off) {
  unsigned char *b = p;
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, b + got, n - got, (off_t)(off + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

static int sync_fd(int fd) {
  while (fdatasync(fd) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

static int redo_open(const char *dir, int readonly, int create, df_redo **out,
                     char *err, size_t errlen) {
  df_redo *r;
  struct stat st;
  int flags =
      O_CLOEXEC | (readonly ? O_RDONLY : (O_RDWR | (create ? O_CREAT : 0)));
  *out = NULL;
  r = df__malloc(sizeof *r);
  if (r == NULL) {
    snprintf(err, errlen, "out of memory");
    return DF_ENOMEM;
  }
  memset(r, 0, sizeof *r);
  r->readonly = readonly;
  if (snprintf(r->path, sizeof r->path, "%s/redo.log", dir) >=
      (int)sizeof r->path) {
    df__free(r);
    snprintf(err, errlen, "path too long: %s", dir);
    return DF_EINVAL;
  }
  r->fd = open(r->path, flags, 0644);
  if (r->fd < 0) {
    int e = errno;
    snprintf(err, errlen, "cannot open %s: %s", r->path, strerror(e));
    df__free(r);
    return e == ENOENT ? DF_ENOTFOUND : io_err(e);
  }
  if (fstat(r->fd, &st) != 0) {
    int e = errno;
    snprintf(err, errlen, "cannot stat %s: %s", r->path, strerror(e));
    close(r->fd);
    df__free(r);
    return io_err(e);
  }
  r->size = (uint64_t)st.st_size;
  *out = r;
  return DF_OK;
}

int df__redo_open(const char *dir, int readonly, df_redo **out, char *err,
                  size_t errlen) {
  return redo_open(dir, readonly, !readonly, out, err, errlen);
}

int df__redo_open_existing(const char *dir, int readonly, df_redo **out,
                           char *err, size_t errlen) {
  return redo_open(dir, readonly, 0, out, err, errlen);
}

void df__redo_close(df_redo *r) {
  if (r == NULL) return;
  if (r->fd >= 0) close(r->fd);
  df__free(r);
}

int df__redo_fd(const df_redo *r) {
  return r->fd;
}
uint64_t df__redo_size(const df_redo *r) {
  return r->size;
}

int df__redo_flush(df_redo *r, char *err, size_t errlen) {
  int e = sync_fd(r->fd);
  if (e == 0) return DF_OK;
  snprintf(err, errlen, "cannot flush %s: %s", r->path, strerror(e));
  return io_err(e);
}

/* Make the file at least `end` bytes long, zero-filled and flushed, in
 * whole chunks (doubling, at least GROW_CHUNK at a time). */
/* Other processes grow the file too: learn its length. */
static void refresh_size(df_redo *r) {
  struct stat st;
  if (fstat(r->fd, &st) == 0 && (uint64_t)st.st_size > r->size)
    r->size = (uint64_t)st.st_size;
}

int df__redo_reserve(df_redo *r, uint64_t end, char *err, size_t errlen) {
  static const unsigned char zeros[ZERO_CHUNK];
  uint64_t want, off;
  int e;
  if (end <= r->size) return DF_OK;
  /* zeros go only past the end of the file as it is now (the caller holds
   * the writer lock): never over a record another process appended */
  refresh_size(r);
  if (end <= r->size) return DF_OK;
  want = r->size < DF_REDO_AREA ? DF_REDO_AREA : r->size;
  want = want + (want < GROW_CHUNK ? GROW_CHUNK : want);
  if (want < end) want = (end + GROW_CHUNK - 1) / GROW_CHUNK * GROW_CHUNK;
  for (off = r->size; off < want; off += ZERO_CHUNK) {
    size_t n = (size_t)(want - off < ZERO_CHUNK ? want - off : ZERO_CHUNK);
    if ((e = write_all(r->fd, zeros, n, off)) != 0) goto fail;
  }
  if ((e = sync_fd(r->fd)) != 0) goto fail;
  r->size = want;
  return DF_OK;
fail:
  /* leave the file as long as it was: nothing relies on the new part */
  if (ftruncate(r->fd, (off_t)r->size) != 0) { /* stays longer: harmless */
  }
  snprintf(err, errlen, "cannot extend %s to %llu bytes: %s", r->path,
           (unsigned long long)want, strerror(e));
  return io_err(e);
}

/* ------------------------------------------------------------ headers */

static void header_encode(const df_redo_header *h, unsigned char *b) {
  memset(b, 0, DF_REDO_HEADER_SIZE);
  put32(b, HDR_MAGIC);
  put32(b + 4, HDR_VERSION);
  put64(b + 8, h->log_id);
  put64(b + 16, h->counter);
  put64(b + 24, h->base_txnid);
  put64(b + 32, h->next_seq);
  put64(b + 40, h->first_off);
  put32(b + 48, h->psize);
  put32(b + 52, DF_REDO_META_LEN);
  memcpy(b + 56, h->meta[0], DF_REDO_META_LEN);
  memcpy(b + 56 + DF_REDO_META_LEN, h->meta[1], DF_REDO_META_LEN);
  put32(b + 56 + 2 * DF_REDO_META_LEN, h->flags);
  put32(b + DF_REDO_HEADER_SIZE - 4, df__crc32c(0, b, DF_REDO_HEADER_SIZE - 4));
}

/* 1 when b holds a valid header slot (decoded into *h), else 0. */
static int header_decode(const unsigned char *b, df_redo_header *h) {
  if (get32(b) != HDR_MAGIC || get32(b + 4) != HDR_VERSION) return 0;
  if (get32(b + DF_REDO_HEADER_SIZE - 4) !=
      df__crc32c(0, b, DF_REDO_HEADER_SIZE - 4))
    return 0;
  if (get32(b + 52) != DF_REDO_META_LEN) return 0;
  memset(h, 0, sizeof *h);
  h->log_id = get64(b + 8);
  h->counter = get64(b + 16);
  h->base_txnid = get64(b + 24);
  h->next_seq = get64(b + 32);
  h->first_off = get64(b + 40);
  h->psize = get32(b + 48);
  memcpy(h->meta[0], b + 56, DF_REDO_META_LEN);
  memcpy(h->meta[1], b + 56 + DF_REDO_META_LEN, DF_REDO_META_LEN);
  h->flags = get32(b + 56 + 2 * DF_REDO_META_LEN);
  return h->first_off >= DF_REDO_AREA;
}

int df__redo_header_read(df_redo *r, df_redo_header *h, char *err,
                         size_t errlen) {
  unsigned char b[2][DF_REDO_HEADER_SIZE];
  df_redo_header cand[2];
  int ok[2], i;
  ssize_t n = read_upto(r->fd, b, sizeof b, 0);
  if (n < 0) {
    int e = errno;
    snprintf(err, errlen, "cannot read %s: %s", r->path, strerror(e));
    return io_err(e);
  }
  for (i = 0; i < 2; i++) {
    ok[i] = (size_t)n >= (size_t)(i + 1) * DF_REDO_HEADER_SIZE &&
            header_decode(b[i], &cand[i]) &&
            (cand[i].counter & 1) == (uint64_t)i;
  }
  if (ok[0] && ok[1] && cand[0].log_id != cand[1].log_id) {
    snprintf(err, errlen, "%s holds the checkpoints of two different logs",
             r->path);
    return DF_ECORRUPT;
  }
  if (!ok[0] && !ok[1]) {
    snprintf(err, errlen, "%s holds no valid checkpoint header", r->path);
    return DF_ENOTFOUND;
  }
  i = ok[0] && ok[1] ? (cand[1].counter > cand[0].counter) : ok[1];
  *h = cand[i];
  return DF_OK;
}

int df__redo_header_write(df_redo *r, const df_redo_header *h, char *err,
                          size_t errlen) {
  unsigned char b[DF_REDO_HEADER_SIZE];
  uint64_t off = (h->counter & 1) * DF_REDO_HEADER_SIZE;
  int code, e;
  if (r->size < DF_REDO_AREA &&
      (code = df__redo_reserve(r, DF_REDO_AREA, err, errlen)) != DF_OK)
    return code;
  header_encode(h, b);
  if ((e = write_all(r->fd, b, sizeof b, off)) != 0 ||
      (e = sync_fd(r->fd)) != 0) {
    snprintf(err, errlen, "cannot write the checkpoint header of %s: %s",
             r->path, strerror(e));
    return io_err(e);
  }
  return DF_OK;
}

/* ------------------------------------------------------------ records */

void df__redo_rec_init(df_redo_rec *rec) {
  df__buf_init(&rec->buf);
  rec->n_ops = 0;
  rec->later = NULL;
}

/* Copy the value of a put made with df__redo_rec_put_later. */
void df__redo_rec_settle(df_redo_rec *rec) {
  if (rec->later == NULL) return;
  if (!rec->buf.failed && rec->later_at + rec->later_len <= rec->buf.len)
    memcpy(rec->buf.p + rec->later_at, rec->later, rec->later_len);
  rec->later = NULL;
}

void df__redo_rec_free(df_redo_rec *rec) {
  df__buf_free(&rec->buf);
}

/* Empty the record, keeping its memory; room for the fixed head. */
int df__redo_rec_reset(df_redo_rec *rec) {
  static const unsigned char head[REC_HEAD];
  df__buf_reset(&rec->buf);
  rec->n_ops = 0;
  rec->later = NULL;
  return df__buf_append(&rec->buf, head, sizeof head);
}

static int rec_op(df_redo_rec *rec, int kind, unsigned dbi, const void *k,
                  size_t klen, const void *v, size_t vlen) {
  unsigned char two[2];
  if (rec->buf.len < REC_HEAD && df__redo_rec_reset(rec) != 0) return DF_ENOMEM;
  df__redo_rec_settle(rec);
  two[0] = (unsigned char)kind;
  two[1] = (unsigned char)dbi;
  df__buf_append(&rec->buf, two, 2);
  put_varint(&rec->buf, klen);
  if (klen) df__buf_append(&rec->buf, k, klen);
  if (kind == DF_REDO_PUT) {
    put_varint(&rec->buf, vlen);
    if (vlen) df__buf_append(&rec->buf, v, vlen);
  }
  if (rec->buf.failed) return DF_ENOMEM;
  rec->n_ops++;
  return DF_OK;
}

int df__redo_rec_put(df_redo_rec *rec, unsigned dbi, const void *k, size_t klen,
                     const void *v, size_t vlen) {
  return rec_op(rec, DF_REDO_PUT, dbi, k, klen, v, vlen);
}

int df__redo_rec_del(df_redo_rec *rec, unsigned dbi, const void *k,
                     size_t klen) {
  return rec_op(rec, DF_REDO_DEL, dbi, k, klen, NULL, 0);
}

int df__redo_rec_clear(df_redo_rec *rec, unsigned dbi) {
  return rec_op(rec, DF_REDO_CLEAR, dbi, NULL, 0, NULL, 0);
}

int df__redo_rec_put_later(df_redo_rec *rec, unsigned dbi, const void *k,
                           size_t klen, const void *room, size_t vlen) {
  size_t at;
  int code;
  /* the op with a value of vlen bytes, whatever they are now */
  code = rec_op(rec, DF_REDO_PUT, dbi, k, klen, NULL, 0);
  if (code != DF_OK) return code;
  rec->buf.len--; /* the empty value's length: replaced below */
  put_varint(&rec->buf, vlen);
  at = rec->buf.len;
  if (df__buf_reserve(&rec->buf, vlen) != 0) return DF_ENOMEM;
  rec->buf.len += vlen;
  rec->later = room;
  rec->later_at = at;
  rec->later_len = vlen;
  return rec->buf.failed ? DF_ENOMEM : DF_OK;
}

size_t df__redo_rec_sealed_len(const df_redo_rec *rec) {
  size_t n = rec->buf.len < REC_HEAD ? REC_HEAD : rec->buf.len;
  return (n + 7) / 8 * 8 + REC_TAIL;
}

int df__redo_rec_seal(df_redo_rec *rec, uint64_t log_id, uint64_t seq) {
  static const unsigned char zeros[8];
  unsigned char *b, seed[8];
  size_t len;
  uint32_t crc;
  if (rec->buf.len < REC_HEAD && df__redo_rec_reset(rec) != 0) return DF_ENOMEM;
  df__redo_rec_settle(rec);
  len = df__redo_rec_sealed_len(rec);
  if (len > UINT32_MAX) return DF_EINVAL;
  df__buf_append(&rec->buf, zeros, len - REC_TAIL - rec->buf.len);
  if (df__buf_reserve(&rec->buf, REC_TAIL) != 0 || rec->buf.failed)
    return DF_ENOMEM;
  b = rec->buf.p;
  put32(b, REC_MAGIC);
  put32(b + 4, (uint32_t)len);
  put64(b + 8, seq);
  put32(b + 16, rec->n_ops);
  put32(b + 20, 0);
  put64(seed, log_id);
  crc = df__crc32c(df__crc32c(0, seed, 8), b, len - REC_TAIL);
  put32(b + len - REC_TAIL, crc);
  put32(b + len - 4, (uint32_t)len);
  rec->buf.len = len;
  return DF_OK;
}

int df__redo_append(df_redo *r, const df_redo_rec *rec, uint64_t off, char *err,
                    size_t errlen) {
  int code, e;
  if (off < DF_REDO_AREA || off % 8 != 0) {
    snprintf(err, errlen, "bad record offset %llu", (unsigned long long)off);
    return DF_EINVAL;
  }
  if ((code = df__redo_reserve(r, off + rec->buf.len, err, errlen)) != DF_OK)
    return code;
  if ((e = write_all(r->fd, rec->buf.p, rec->buf.len, off)) != 0) {
    snprintf(err, errlen, "cannot append to %s: %s", r->path, strerror(e));
    return io_err(e);
  }
  return DF_OK;
}

int df__redo_void(df_redo *r, uint64_t off, char *err, size_t errlen) {
  static const unsigned char zeros[4];
  int e;
  if ((e = write_all(r->fd, zeros, 4, off)) != 0 || (e = sync_fd(r->fd)) != 0) {
    snprintf(err, errlen, "cannot void a record of %s: %s", r->path,
             strerror(e));
    return io_err(e);
  }
  return DF_OK;
}

int df__redo_read(df_redo *r, uint64_t off, uint64_t log_id, uint64_t seq,
                  df_buf *out, char *err, size_t errlen) {
  unsigned char head[REC_HEAD], seed[8];
  uint32_t len, crc;
  ssize_t n;
  df__buf_reset(out);
  if (off + REC_HEAD > r->size) refresh_size(r);
  if (off < DF_REDO_AREA || off % 8 != 0 || off + REC_HEAD > r->size)
    return DF_ENOTFOUND;
  n = read_upto(r->fd, head, sizeof head, off);
  if (n < 0) {
    int e = errno;
    snprintf(err, errlen, "cannot read %s: %s", r->path, strerror(e));
    return io_err(e);
  }
  if (n < REC_HEAD || get32(head) != REC_MAGIC || get64(head + 8) != seq)
    return DF_ENOTFOUND;
  len = get32(head + 4);
  if (off + len > r->size) refresh_size(r);
  if (len < REC_HEAD + REC_TAIL || len % 8 != 0 || off + len > r->size)
    return DF_ENOTFOUND;
  if (df__buf_reserve(out, len) != 0) {
    snprintf(err, errlen, "out of memory reading a %u-byte record", len);
    return DF_ENOMEM;
  }
  n = read_upto(r->fd, out->p, len, off);
  if (n < 0) {
    int e = errno;
    snprintf(err, errlen, "cannot read %s: %s", r->path, strerror(e));
    return io_err(e);
  }
  if ((size_t)n < len || memcmp(out->p, head, REC_HEAD) != 0)
    return DF_ENOTFOUND;
  put64(seed, log_id);
  crc = df__crc32c(df__crc32c(0, seed, 8), out->p, len - REC_TAIL);
  if (get32(out->p + len - REC_TAIL) != crc || get32(out->p + len - 4) != len)
    return DF_ENOTFOUND;
  out->len = len;
  return DF_OK;
}

uint32_t df__redo_rec_ops(const void *rec, size_t len) {
  (void)len;
  return get32((const unsigned char *)rec + 16);
}

int df__redo_op_next(const unsigned char **p, const unsigned char *end,
                     df_redo_op *op) {
  uint64_t n;
  const unsigned char *q = *p;
  if (q >= end || q[0] == 0) return 0; /* the end, or the zero padding */
  if (end - q < 2 || q[0] > DF_REDO_CLEAR) return DF_ECORRUPT;
  op->kind = q[0];
  op->dbi = q[1];
  q += 2;
  if (get_varint(&q, end, &n) != 0 || n > (uint64_t)(end - q))
    return DF_ECORRUPT;
  op->key = q;
  op->klen = (size_t)n;
  q += n;
  op->val = NULL;
  op->vlen = 0;
  if (op->kind == DF_REDO_PUT) {
    if (get_varint(&q, end, &n) != 0 || n > (uint64_t)(end - q))
      return DF_ECORRUPT;
    op->val = q;
    op->vlen = (size_t)n;
    q += n;
  }
  *p = q;
  return 1;
}

void df__redo_rec_body(const void *rec, size_t len, const unsigned char **p,
                       const unsigned char **end) {
  const unsigned char *b = rec;
  *p = b + REC_HEAD;
  *end = b + len - REC_TAIL;
}
