/*
 * internal.h -- declarations shared between the C core's files, not API.
 *
 * Cross-file functions are named df__<name>.  Each group below lives in the
 * file named in its heading.  Nothing here includes LMDB or Lua, so the
 * codec, key and expression files build and fuzz on their own.
 */
#ifndef DF_INTERNAL_H
#define DF_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "dynafile.h"

/* Longest message kept by a handle or a transaction. */
#define DF_MSG_MAX 512

#if defined(__GNUC__)
#define DF__PRINTF(f, a) __attribute__((format(printf, f, a)))
#define DF__UNUSED __attribute__((unused))
#define DF__NOINLINE __attribute__((noinline))
#else
#define DF__PRINTF(f, a)
#define DF__UNUSED
#define DF__NOINLINE
#endif

/* ------------------------------------------------------------ alloc.c */
/* Every allocation of the core goes through these, so a fault-injection
 * build can fail the Nth one.  df__free accepts NULL. */
void *df__malloc(size_t n);
void *df__realloc(void *p, size_t n);
void df__free(void *p);
char *df__strdup(const char *s);
#ifdef DF_FAULT_INJECTION
/* Test builds only: 1 when the fault armed by df_test_fail_alloc has
 * fired; the number of core allocations made and not yet freed. */
int df__test_alloc_fired(void);
long df__test_alloc_live(void);
#endif

/* Growable byte buffer.  After a failed append `failed` is set and later
 * appends do nothing, so writers can check once at the end. */
typedef struct df_buf {
  unsigned char *p;
  size_t len, cap;
  int failed;
} df_buf;

void df__buf_init(df_buf *b);
void df__buf_free(df_buf *b);
void df__buf_reset(df_buf *b);                /* len = 0, failed = 0 */
int df__buf_reserve(df_buf *b, size_t extra); /* 0 or DF_ENOMEM */
int df__buf_append(df_buf *b, const void *p, size_t n);
int df__buf_putc(df_buf *b, unsigned char c);
/* Make room for one more element of size el in the growable array *arrp
 * (*cap elements, `used` in use; at most 2^32 - 1 elements).  0 or
 * DF_ENOMEM. */
int df__grow(void *arrp, size_t *cap, size_t used, size_t el);

/* ---------------------------------------------------------- decimal.c */
/* Exact decimal numbers (DynamoDB's N) and the order-preserving encoding
 * of every number; see the comment at the top of decimal.c. */

#define DF_DEC_DIGITS 40      /* digits a df_dec holds */
#define DF_DEC_MAX_DIGITS 38  /* DynamoDB's precision */
#define DF_DEC_MAX_EXP 125    /* exponent of the leading digit: 9.9..E+125 */
#define DF_DEC_MIN_EXP (-130) /* 1E-130 */
/* Longest number encoding: tag, exponent, DF_DEC_DIGITS nibbles + end. */
#define DF_NUM_ENC_MAX (3 + DF_DEC_DIGITS / 2 + 1)
/* Room for the plain string of any double or DynamoDB number. */
#define DF_DEC_STR_MAX 400

/* The tags of the number encoding, below DF_TAG_STR. */
#define DF_TAG_NUM_NEGINF 0x10
#define DF_TAG_NUM_NEG 0x11
#define DF_TAG_NUM_ZERO 0x12
#define DF_TAG_NUM_POS 0x13
#define DF_TAG_NUM_POSINF 0x14

/* A normalised decimal: sign * d[0..n) * 10^exp, no leading or trailing
 * zero digit; zero is sign 0, n 0; an infinity is inf 1, n 0. */
typedef struct df_dec {
  int sign; /* -1, 0, 1 */
  int inf;
  int exp;
  int n;
  unsigned char d[DF_DEC_DIGITS];
} df_dec;

/* Why a number is refused (df__dec_msg gives DynamoDB's message). */
enum {
  DF_DEC_OK = 0,
  DF_DEC_SYNTAX,    /* not a number */
  DF_DEC_PRECISION, /* more than 38 significant digits */
  DF_DEC_OVERFLOW,  /* magnitude above 9.9..E+125 (or infinite) */
  DF_DEC_UNDERFLOW, /* magnitude below 1E-130 */
  DF_DEC_NAN
};

/* Parse DynamoDB's number syntax ([+-] digits [. digits] [e [+-] digits];
 * "1.", ".5" accepted; no spaces, no NaN/Infinity).  DF_DEC_OK,
 * DF_DEC_SYNTAX, or DF_DEC_PRECISION (more than DF_DEC_DIGITS significant
 * digits).  The range is not checked: see df__dec_range. */
int df__dec_parse(const char *s, size_t len, df_dec *out);
/* DF_DEC_OK when d is within DynamoDB's precision and range (zero is),
 * else DF_DEC_PRECISION, DF_DEC_OVERFLOW or DF_DEC_UNDERFLOW. */
int df__dec_range(const df_dec *d);
/* DynamoDB's message for a DF_DEC_* reason (a static string). */
const char *df__dec_msg(int reason);
void df__dec_from_int(int64_t i, df_dec *out);
void df__dec_from_uint(uint64_t u, df_dec *out);
/* The value of the double f: the integer it is when it is an integer in
 * [-2^63, 2^63), else the shortest decimal that reads back as f.
 * DF_DEC_OK, or DF_DEC_NAN. */
int df__dec_from_double(double f, df_dec *out);
/* The decimal of a number value (DF_TINT, DF_TUINT, DF_TFLOAT,
 * DF_TDECIMAL).  DF_OK; DF_EVALIDATION for NaN or a value that is not a
 * number; DF_ECORRUPT for a malformed decimal payload. */
int df__dec_from_value(const df_value *v, df_dec *out);
/* 1 and *out when d is exactly an int64 / a uint64, else 0. */
int df__dec_int64(const df_dec *d, int64_t *out);
int df__dec_uint64(const df_dec *d, uint64_t *out);
/* The nearest double in *out; returns 1 when that double's value (as
 * df__dec_from_double gives it) is exactly d, 0 when it is not (or overflows).
 */
int df__dec_double(const df_dec *d, double *out);
/* The plain string (DynamoDB's canonical form: no exponent, "0" for zero;
 * "inf"/"-inf").  Writes at most cap bytes, NUL included; returns the
 * length the whole string needs (DF_DEC_STR_MAX is enough for any double
 * and any DynamoDB number). */
size_t df__dec_str(const df_dec *d, char *buf, size_t cap);
/* -1, 0, 1. */
int df__dec_cmp(const df_dec *a, const df_dec *b);
/* The order-preserving encoding into out (DF_NUM_ENC_MAX bytes); returns
 * its length, or 0 for an exponent beyond any double or DynamoDB number. */
size_t df__dec_enc(const df_dec *d, unsigned char *out);
/* Decode one encoding at p (avail bytes): DF_OK with *used, or
 * DF_ECORRUPT unless it is the canonical encoding of a number. */
int df__dec_dec(const unsigned char *p, size_t avail, df_dec *out,
                size_t *used);
/* a + b (a - b when negate_b), exactly: DF_DEC_OK, or DF_DEC_PRECISION
 * when the exact result has more than DF_DEC_DIGITS digits, or
 * DF_DEC_OVERFLOW for an infinity.  The range of the result is for the
 * caller to check (df__dec_range). */
int df__dec_add(const df_dec *a, const df_dec *b, int negate_b, df_dec *out);

/* ------------------------------------------------------------ codec.c */
/* MessagePack.  The writer appends to a df_buf.  The reader is
 * allocation-free and bounds-checked: it never reads outside [p, end). */

int df__mp_put_nil(df_buf *b);
int df__mp_put_bool(df_buf *b, int v);
int df__mp_put_int(df_buf *b, int64_t v); /* smallest encoding */
int df__mp_put_uint(df_buf *b, uint64_t v);
int df__mp_put_float(df_buf *b, double v); /* always float64 */
int df__mp_put_str(df_buf *b, const char *s, size_t n);
int df__mp_put_bin(df_buf *b, const void *s, size_t n);
int df__mp_put_array(df_buf *b, uint32_t n); /* header only */
int df__mp_put_map(df_buf *b, uint32_t n);   /* header only */
/* Append a df_value of scalar type (NIL..BIN). */
int df__mp_put_value(df_buf *b, const df_value *v);
/* Append an ext value of `type` with n payload bytes (smallest form). */
int df__mp_put_ext(df_buf *b, int type, const void *p, size_t n);
/* Append the number d in its canonical stored form: int, uint or float64
 * when one holds it exactly, else ext DF_EXT_DECIMAL (an infinity as a
 * float).  0, DF_ENOMEM, or DF_EINVAL for an unencodable exponent. */
int df__mp_put_dec(df_buf *b, const df_dec *d);

/* The elements of a set, written one after another into b from offset
 * `start` on (count MessagePack values): replace them by the set's stored
 * form, ext type of `kind` (DF_TSS, DF_TNS, DF_TBS) holding the elements
 * sorted.  DF_OK; DF_EVALIDATION (*why, optional, says what) when there is
 * no element, one is not of the kind (or NaN), or two are equal; DF_ENOMEM
 * (also when b had failed). */
int df__mp_finish_set(df_buf *b, size_t start, df_type kind, size_t count,
                      const char **why);

/* MessagePack ext types of the data model (see the top of codec.c). */
#define DF_EXT_DECIMAL 1
#define DF_EXT_SS 2
#define DF_EXT_NS 3
#define DF_EXT_BS 4

/* Read the value at *p.  Scalars, strings, decimals and sets are consumed
 * whole; for an array or map only the header is consumed (v->n is the
 * count and v->s points at the first element).  For a set (DF_TSS, DF_TNS,
 * DF_TBS) v->n is the element count, v->s points at the first element and
 * v->u is the elements' length in bytes.  Returns 0, or DF_ECORRUPT when
 * the bytes are truncated or invalid (unknown ext types are invalid). */
int df__mp_read(const unsigned char **p, const unsigned char *end, df_value *v);
/* Skip one complete value (containers with their contents), at most
 * DF_MAX_DEPTH nested levels.  0 or DF_ECORRUPT. */
int df__mp_skip(const unsigned char **p, const unsigned char *end);
/* Check that [p, p+len) is exactly one well-formed value nested at most
 * max_depth levels, every set's elements of its kind, sorted and distinct.
 * 0 or DF_ECORRUPT. */
int df__mp_validate(const void *p, size_t len, int max_depth);
/* df__mp_validate at DF_MAX_DEPTH for an item being written: DF_ECORRUPT
 * as that, or DF_EVALIDATION when a number is NaN (no number DynamoDB
 * or dynafile stores). */
int df__mp_validate_item(const void *p, size_t len);

/* Find a top-level attribute of a map.  Returns 1 and fills *v (and, when
 * non-NULL, *vstart and *vend: the bytes of the whole value) when found, 0
 * when absent or when the bytes are not a map, DF_ECORRUPT when malformed. */
int df__mp_map_find(const void *map, size_t len, const char *name,
                    size_t name_len, df_value *v, const unsigned char **vstart,
                    const unsigned char **vend);

/* A document path: attribute names and list indexes, e.g. data.items[2].x */
typedef struct df_path_seg {
  const char *name; /* NULL for an index segment */
  size_t len;
  uint32_t index;
} df_path_seg;

typedef struct df_path {
  size_t n;
  df_path_seg seg[DF_MAX_DEPTH];
} df_path;

/* The largest list position a path may name, in C and in Lua alike. */
#define DF_PATH_INDEX_MAX 2147483647
enum { DF_PATH_WHOLE = 0, DF_PATH_EMBEDDED = 1 };

/* Parse a document path: the one grammar of filters, conditions, update
 * paths and the Lua layer's paths (codec.c):
 *   path := name { "." name | "[" digits "]" }
 *   name := "`" { any byte but a backtick or "\", or an escape } "`"
 *         | a run of plain characters
 * Escapes in quoted names: \n \t \r \0 \\ \" \' \` \xHH.  Plain
 * characters: when the path is EMBEDDED in an expression, letters, digits
 * and '_' (not starting with a digit); when it is the WHOLE string (an
 * update path, a Lua path), anything but '.', '[', ']' and a backtick.  So
 * a path means the same wherever both forms accept it.  List positions are
 * 0..DF_PATH_INDEX_MAX; at most DF_MAX_DEPTH segments.
 * Plain names point into s; quoted names are decoded into `names`
 * (capacity n: never longer than their source), or, with names NULL,
 * point into s and may hold no escape.  *used (optional): the bytes
 * consumed (EMBEDDED: up to the first character that cannot continue the
 * path).  DF_OK, or DF_EVALIDATION with the message in err (without the
 * position) and *err_at (optional) the offset in s it refers to. */
int df__path_scan(const char *s, size_t n, int mode, char *names, df_path *out,
                  size_t *used, char *err, size_t errlen, size_t *err_at);
/* The WHOLE string s as a path, quoted names without escapes.  DF_OK or
 * DF_EVALIDATION. */
int df__path_parse(const char *s, size_t n, df_path *out);
/* Find a path in item bytes; same results as df__mp_map_find. */
int df__mp_path_find(const void *item, size_t len, const df_path *path,
                     df_value *v, const unsigned char **vstart,
                     const unsigned char **vend);

/* Compare two scalar values the way filters do.  Numbers (int, uint,
 * float, decimal) compare numerically as decimals (a float by its value
 * as df__dec_from_double gives it), strings with strings and binaries with
 * binaries bytewise, booleans false < true, sets of one kind equal (0) when
 * they hold the same elements.  Returns -1/0/1, or 2 when the values are not
 * comparable (different kinds, NaN, containers, unequal sets). */
int df__value_cmp(const df_value *a, const df_value *b);
/* Does the set `set` (DF_TSS/TNS/TBS as df__mp_read gives it) hold x
 * (numbers by value)?  1, 0, or DF_ECORRUPT. */
int df__mp_set_contains(const df_value *set, const df_value *x);

/* -------------------------------------------------------------- key.c */
/* Order-preserving key encoding (see the comment at the top of key.c). */

#define DF_KEY_MAX 511 /* LMDB's compiled-in key limit */
/* Tags (the numbers' are DF_TAG_NUM_* of decimal.c, all below these). */
#define DF_TAG_STR 0x20
#define DF_TAG_BIN 0x28
#define DF_TAG_HASHED 0x30 /* long partition value: 16-byte hash */
/* A sort-type value whose encoding is longer than DF_SK_PREFIX bytes is
 * kept in keys as its first DF_SK_PREFIX bytes and a 16-byte hash of all
 * of it (the "long form", DF_SK_LONG_LEN bytes): keys order such values
 * by their prefix only, and readers restore the order from the items. */
#define DF_SK_PREFIX 160
#define DF_SK_LONG_LEN (DF_SK_PREFIX + 16)
/* df_value.u of a decoded key part that is not the whole value (a hashed
 * partition value, the prefix of a long sort value). */
#define DF_KEY_PARTIAL 1

/* 64-bit hash with well-mixed high bits, also for short similar inputs. */
uint64_t df__hash64(const void *p, size_t n, uint64_t seed);

/* Encode a key value (string, binary or number: DF_TINT, DF_TUINT,
 * DF_TFLOAT, DF_TDECIMAL) order-preservingly and in full into out
 * (capacity cap).  *outlen receives the length.  Errors: DF_EVALIDATION
 * (wrong type, NaN, longer than cap). */
int df__key_enc(const df_value *v, unsigned char *out, size_t cap,
                size_t *outlen);
/* Encode a partition-type value: as df__key_enc when the encoding fits in
 * DF_PK_INLINE_MAX bytes, else DF_TAG_HASHED + 16 hash bytes.  Strings
 * and binaries longer than DF_PK_MAX bytes are DF_EVALIDATION.  *hash
 * receives hash64 of the full (unshortened) encoding, for the partition
 * prefix.  out needs DF_PK_INLINE_MAX bytes. */
int df__key_enc_partition(const df_value *v, unsigned char *out, size_t *outlen,
                          uint64_t *hash);
/* Encode a sort-type value: in full when the encoding has at most
 * DF_SK_PREFIX bytes, else in the long form (*is_long, optional, set).
 * out needs DF_SK_LONG_LEN bytes.  Strings and binaries longer than
 * DF_SK_MAX bytes, NaN and non-key values are DF_EVALIDATION. */
int df__key_enc_sort(const df_value *v, unsigned char *out, size_t *outlen,
                     int *is_long);
/* A query bound on sort values: the encoding of v (without its terminator
 * when `strip`, for a prefix bound; strings and binaries only) when it has
 * at most DF_SK_PREFIX bytes, else its first DF_SK_PREFIX bytes with
 * *is_long set: every long sort value sharing them lies in that prefix's
 * range.  No length limit.  out needs DF_SK_PREFIX bytes.
 * DF_EVALIDATION for NaN and non-key values. */
int df__key_enc_bound(const df_value *v, int strip, unsigned char *out,
                      size_t *outlen, int *is_long);
/* Decode one encoded part at *p (advancing).  Strings and binaries are
 * unescaped into scratch (capacity cap), which v->s then points into;
 * numbers come back as DF_TINT, DF_TUINT or DF_TFLOAT when one holds the
 * value exactly, else DF_TDECIMAL pointing into the key.  A hashed
 * partition value decodes as DF_TBIN of the 16 hash bytes, the long form
 * of a sort value as the unescaped prefix; both with v->u ==
 * DF_KEY_PARTIAL.  0 or DF_ECORRUPT. */
int df__key_dec(const unsigned char **p, const unsigned char *end, df_value *v,
                char *scratch, size_t cap);
/* The length of the encoded part at p (0: malformed); *is_long
 * (optional) tells a long sort value. */
size_t df__key_part_len(const unsigned char *p, const unsigned char *end,
                        int *is_long);
/* Write 8 bytes big-endian. */
void df__key_put_u64(unsigned char *out, uint64_t v);
uint64_t df__key_get_u64(const unsigned char *p);

/* The one rule for key values, and its messages, which name the value
 * <prefix><name> ("key attribute " "PK", "" "partition key"): a string,
 * binary or number, not NaN, present; for DF_KEY_PARTITION a string of at
 * most DF_PK_MAX bytes, for DF_KEY_SORT one whose encoding fits DF_SK_MAX;
 * DF_KEY_ANY checks the type only.  DF_OK, or DF_EVALIDATION with the
 * message in err.  (A key too long for an index's key is index.c's
 * message: it names the index.) */
enum { DF_KEY_ANY, DF_KEY_PARTITION, DF_KEY_SORT };
int df__key_check(const df_value *v, const char *prefix, const char *name,
                  int role, char *err, size_t errlen);

/* ----------------------------------------------------------- crc32c.c */
/* CRC-32C of n bytes, continuing `crc` (0 to start). */
uint32_t df__crc32c(uint32_t crc, const void *p, size_t n);
/* The same without the processor's crc32 instruction (for tests). */
uint32_t df__crc32c_portable(uint32_t crc, const void *p, size_t n);

/* ------------------------------------------------------------- redo.c */
/* The redo log file <dir>/redo.log (format and invariants: redo.c). */

#define DF_REDO_HEADER_SIZE 4096
#define DF_REDO_AREA 8192 /* offset of the first record */
#define DF_REDO_META_LEN 512

enum { DF_REDO_PUT = 1, DF_REDO_DEL = 2, DF_REDO_CLEAR = 3 };

typedef struct df_redo df_redo;

/* A checkpoint: what recovery starts from. */
typedef struct df_redo_header {
  uint64_t log_id;     /* random per log; seeds the record checksums */
  uint64_t counter;    /* +1 per checkpoint; slot = counter & 1 */
  uint64_t base_txnid; /* LMDB transaction id of the checkpoint snapshot */
  uint64_t next_seq;   /* sequence number of the first record after it */
  uint64_t first_off;  /* where that record is (>= DF_REDO_AREA) */
  uint32_t psize;      /* LMDB page size (where meta page 1 starts) */
  uint32_t flags;
  unsigned char meta[2][DF_REDO_META_LEN]; /* LMDB meta pages, head */
} df_redo_header;

/* A record being built: ops appended in order, then sealed.  A put whose
 * value the caller fills in afterwards (df__redo_rec_put_later) is copied
 * into the record at the next op or at sealing. */
typedef struct df_redo_rec {
  df_buf buf;
  uint32_t n_ops;
  const void *later; /* the value to copy, or NULL */
  size_t later_at, later_len;
} df_redo_rec;

/* One operation of a record; key and val borrow the record's bytes. */
typedef struct df_redo_op {
  int kind;     /* DF_REDO_PUT, DF_REDO_DEL, DF_REDO_CLEAR */
  unsigned dbi; /* which sub-database (the caller's numbering, 0..255) */
  const unsigned char *key, *val;
  size_t klen, vlen;
} df_redo_op;

/* Every function taking (err, errlen) writes a message there on failure.
 * Errors: DF_ENOTFOUND (no such file / no valid header or record),
 * DF_EIO, DF_EDISKFULL, DF_EACCESS, DF_EREADONLY, DF_ENOMEM, DF_EINVAL. */
int df__redo_open(const char *dir, int readonly, df_redo **out, char *err,
                  size_t errlen);
/* The same without creating the file (DF_ENOTFOUND when it is missing). */
int df__redo_open_existing(const char *dir, int readonly, df_redo **out,
                           char *err, size_t errlen);
void df__redo_close(df_redo *r); /* accepts NULL */
int df__redo_fd(const df_redo *r);
uint64_t df__redo_size(const df_redo *r);
int df__redo_flush(df_redo *r, char *err, size_t errlen); /* fdatasync */
/* Grow the file, zero-filled and flushed, to at least `end` bytes. */
int df__redo_reserve(df_redo *r, uint64_t end, char *err, size_t errlen);
/* The valid header slot with the larger counter. */
int df__redo_header_read(df_redo *r, df_redo_header *h, char *err,
                         size_t errlen);
/* Write h into slot counter & 1 and flush. */
int df__redo_header_write(df_redo *r, const df_redo_header *h, char *err,
                          size_t errlen);

void df__redo_rec_init(df_redo_rec *rec);
void df__redo_rec_free(df_redo_rec *rec);
int df__redo_rec_reset(df_redo_rec *rec); /* empty; 0 or DF_ENOMEM */
int df__redo_rec_put(df_redo_rec *rec, unsigned dbi, const void *k, size_t klen,
                     const void *v, size_t vlen);
int df__redo_rec_del(df_redo_rec *rec, unsigned dbi, const void *k,
                     size_t klen);
int df__redo_rec_clear(df_redo_rec *rec, unsigned dbi);
/* A put of vlen bytes that will be at `room` once the caller has filled
 * them (before its next write, or the commit). */
int df__redo_rec_put_later(df_redo_rec *rec, unsigned dbi, const void *k,
                           size_t klen, const void *room, size_t vlen);
/* Copy the value of such a put now (it is done by the next op and by
 * sealing; before the room goes away, call it). */
void df__redo_rec_settle(df_redo_rec *rec);
/* The length the record will have once sealed. */
size_t df__redo_rec_sealed_len(const df_redo_rec *rec);
/* Fill in the head and checksum: rec->buf then holds the whole record.
 * Ops may not be added after sealing (reset first). */
int df__redo_rec_seal(df_redo_rec *rec, uint64_t log_id, uint64_t seq);
/* Write a sealed record at `off` (a multiple of 8, >= DF_REDO_AREA),
 * growing the file first when needed.  Not flushed. */
int df__redo_append(df_redo *r, const df_redo_rec *rec, uint64_t off, char *err,
                    size_t errlen);
/* Void the record at `off` and flush. */
int df__redo_void(df_redo *r, uint64_t off, char *err, size_t errlen);
/* Read the record at `off` into out when it is valid with sequence
 * number `seq`; DF_ENOTFOUND when it is not (the log ends there). */
int df__redo_read(df_redo *r, uint64_t off, uint64_t log_id, uint64_t seq,
                  df_buf *out, char *err, size_t errlen);
/* The ops of a valid record: body bounds, then one op per call of
 * df__redo_op_next (1: *op filled, 0: no more, DF_ECORRUPT). */
uint32_t df__redo_rec_ops(const void *rec, size_t len);
void df__redo_rec_body(const void *rec, size_t len, const unsigned char **p,
                       const unsigned char **end);
int df__redo_op_next(const unsigned char **p, const unsigned char *end,
                     df_redo_op *op);

/* ------------------------------------------------------------ regex.c */
/* POSIX extended regular expressions matched in linear time (see the top
 * of regex.c). */
#define DF_RX_MAX_PROG 4096      /* instructions after expansion */
#define DF_RX_BUDGET 10000000ull /* steps one match may take */
typedef struct df_rx df_rx;
/* 0; DF_EVALIDATION with *why (a static string) for a pattern refused;
 * DF_ENOMEM. */
int df__rx_compile(const char *pat, size_t n, int icase, df_rx **out,
                   const char **why);
/* 1 when the pattern occurs in s[0..n), 0 when not; DF_ELIMIT when the
 * match would take more than `budget` steps; DF_ENOMEM. */
int df__rx_match(const df_rx *rx, const char *s, size_t n, uint64_t budget);
void df__rx_free(df_rx *rx);

/* ------------------------------------------------------------- item.c */
/* What the schema says about item bytes (see item.c). */

/* The items-table key of a primary key into out (DF_KEY_MAX bytes), after
 * the key rule: DF_OK or DF_EVALIDATION with the message in err. */
int df__item_key(const df_schema *s, const df_key *key, unsigned char *out,
                 size_t *outlen, char *err, size_t errlen);
/* The primary key of item bytes (strings borrowed from the item); key
 * types are checked, lengths are not. */
int df__item_key_of(const df_schema *s, const void *item, size_t len,
                    df_key *key, char *err, size_t errlen);
/* Is this items key (or index partition) a hashed long partition value? */
int df__item_key_hashed(const unsigned char *k, size_t klen);
/* Does the item's partition-key attribute hold exactly the string (or
 * binary) `pk`?  (The check behind hashed partition values.) */
int df__item_pk_is(const df_schema *s, const void *item, size_t len,
                   const df_value *pk);
/* Is the item found under items key k (built from `key`) really the item
 * of `key`?  Checks the values that k holds only as a hash (a long
 * partition value) or a prefix and hash (a long sort value): 1 or 0. */
int df__item_key_is(const df_schema *s, const unsigned char *k, size_t klen,
                    const void *item, size_t len, const df_key *key);
/* The item's TTL value: 1 when the schema has a TTL attribute and the item
 * holds a number there (NaN included), with *v (optional) the value and
 * *when (optional) it as a double; else 0. */
int df__item_ttl(const df_schema *s, const void *item, size_t len, df_value *v,
                 double *when);
/* TTL values further than this below `now` do not expire (DynamoDB's
 * rule: five years). */
#define DF_TTL_MAX_AGE (5.0 * 365 * 24 * 3600)
/* Is a TTL value `when` expired at `now`: below now, by at most
 * DF_TTL_MAX_AGE? */
int df__ttl_expired(double when, double now);
/* Is the item expired at `now` (df__ttl_expired of its TTL value)? */
int df__item_expired(const df_schema *s, const void *item, size_t len,
                     double now);
/* The new item's bytes with the old item's bytes kept for every value the
 * new one holds unchanged (a whole attribute, or inside maps key by key and
 * inside lists of one length element by element; numbers compare as
 * numbers, so the float 1.0 stored stays 1.0 when the new item says 1):
 * what a function update writes, so that a value the running Lua cannot
 * represent exactly (an int64 beyond 2^53 under Lua 5.1, a float against
 * an integer) is not rewritten when the function did not change it.  Into
 * out (reset first).  DF_OK, DF_ECORRUPT (either is malformed) or
 * DF_ENOMEM. */
int df__item_keep_bytes(const void *old, size_t old_len, const void *new_item,
                        size_t new_len, df_buf *out);
/* DynamoDB's size of an item: its attribute names and values, by
 * DynamoDB's rules (the item size a limit is set in, e.g. 400 KB).  DF_OK
 * or DF_ECORRUPT. */
int df__item_size(const void *item, size_t len, uint64_t *size);
/* Append to b a map of the named attributes the item holds, each once, in
 * the order named (NULL names skipped).  DF_OK or DF_ENOMEM. */
int df__item_project(df_buf *b, const char *const *names, size_t n,
                     const void *item, size_t len);

/* --------------------------------------------------------- itemjson.c */
/* Append the DynamoDB JSON of the stored item [item, item + len)
 * ({"name":{"S":"x"},...}) to b, and set *size to its DynamoDB size in
 * bytes.  DF_OK; DF_EVALIDATION when some value has no plain JSON form
 * here (a string or a name that is not UTF-8, a number outside DynamoDB's
 * range, nesting deeper than DynamoDB's), for the caller to take the
 * general path; DF_ECORRUPT; DF_ENOMEM.  On failure b is as it was. */
int df__item_json(const void *item, size_t len, df_buf *b, size_t *size);

/* ------------------------------------------------------------ error.c */
/* Format a message into a fixed buffer (truncating), return code. */
int df__fmt(char *buf, size_t cap, int code, const char *fmt, ...)
    DF__PRINTF(4, 5);

#endif /* DF_INTERNAL_H */
