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

#if defined(__GNUC__)
#define DF__PRINTF(f, a) __attribute__((format(printf, f, a)))
#define DF__UNUSED __attribute__((unused))
#else
#define DF__PRINTF(f, a)
#define DF__UNUSED
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
void df__buf_reset(df_buf *b);                  /* len = 0, failed = 0 */
int df__buf_reserve(df_buf *b, size_t extra);   /* 0 or DF_ENOMEM */
int df__buf_append(df_buf *b, const void *p, size_t n);
int df__buf_putc(df_buf *b, unsigned char c);

/* ------------------------------------------------------------ codec.c */
/* MessagePack.  The writer appends to a df_buf.  The reader is
 * allocation-free and bounds-checked: it never reads outside [p, end). */

int df__mp_put_nil(df_buf *b);
int df__mp_put_bool(df_buf *b, int v);
int df__mp_put_int(df_buf *b, int64_t v);  /* smallest encoding */
int df__mp_put_uint(df_buf *b, uint64_t v);
int df__mp_put_float(df_buf *b, double v); /* always float64 */
int df__mp_put_str(df_buf *b, const char *s, size_t n);
int df__mp_put_bin(df_buf *b, const void *s, size_t n);
int df__mp_put_array(df_buf *b, uint32_t n); /* header only */
int df__mp_put_map(df_buf *b, uint32_t n);   /* header only */
/* Append a df_value of scalar type (NIL..BIN). */
int df__mp_put_value(df_buf *b, const df_value *v);

/* Read the value at *p.  Scalars and strings are consumed whole; for an
 * array or map only the header is consumed (v->n is the count and v->s
 * points at the first element).  Returns 0, or DF_ECORRUPT when the bytes
 * are truncated or invalid (ext types are invalid). */
int df__mp_read(const unsigned char **p, const unsigned char *end,
                df_value *v);
/* Skip one complete value (containers with their contents), at most
 * DF_MAX_DEPTH nested levels.  0 or DF_ECORRUPT. */
int df__mp_skip(const unsigned char **p, const unsigned char *end);
/* Check that [p, p+len) is exactly one well-formed value nested at most
 * max_depth levels.  0 or DF_ECORRUPT. */
int df__mp_validate(const void *p, size_t len, int max_depth);

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

/* Parse "a.b[3].c" (names are runs of anything but '.', '[' and ']').
 * Segments borrow `s`.  0 or DF_EVALIDATION. */
int df__path_parse(const char *s, size_t n, df_path *out);
/* Find a path in item bytes; same results as df__mp_map_find. */
int df__mp_path_find(const void *item, size_t len, const df_path *path,
                     df_value *v, const unsigned char **vstart,
                     const unsigned char **vend);

/* Compare two scalar values the way filters do.  Numbers (int, uint,
 * float) compare numerically together, strings and binaries bytewise,
 * booleans false < true.  Returns -1/0/1, or 2 when the types are not
 * comparable (different kinds, NaN, containers). */
int df__value_cmp(const df_value *a, const df_value *b);

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
/* The shortest decimal that reads back as f.  DF_DEC_OK, or DF_DEC_NAN. */
int df__dec_from_double(double f, df_dec *out);
/* The decimal of a number value (DF_TINT, DF_TUINT, DF_TFLOAT,
 * DF_TDECIMAL).  DF_OK; DF_EVALIDATION for NaN or a value that is not a
 * number; DF_ECORRUPT for a malformed decimal payload. */
int df__dec_from_value(const df_value *v, df_dec *out);
/* 1 and *out when d is exactly an int64 / a uint64, else 0. */
int df__dec_int64(const df_dec *d, int64_t *out);
int df__dec_uint64(const df_dec *d, uint64_t *out);
/* The nearest double in *out; returns 1 when that double's value (its
 * shortest decimal) is exactly d, 0 when it is not (or overflows). */
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

/* -------------------------------------------------------------- key.c */
/* Order-preserving key encoding (see the comment at the top of key.c). */

#define DF_KEY_MAX 511 /* LMDB's compiled-in key limit */
#define DF_TAG_NUM 0x10
#define DF_TAG_STR 0x20
#define DF_TAG_HASHED 0x30 /* long partition key: 16-byte hash */
#define DF_NUM_ENC_LEN 11

/* 64-bit hash with well-mixed high bits, also for short similar inputs. */
uint64_t df__hash64(const void *p, size_t n, uint64_t seed);

/* Encode a sort-type key value (string or number) order-preservingly into
 * out (capacity cap).  *outlen receives the length.  Errors:
 * DF_EVALIDATION (wrong type, NaN, longer than cap). */
int df__key_enc(const df_value *v, unsigned char *out, size_t cap,
                size_t *outlen);
/* Encode a partition-type value: as df__key_enc when the encoding fits in
 * DF_PK_INLINE_MAX bytes, else DF_TAG_HASHED + 16 hash bytes.  Strings
 * longer than DF_PK_MAX bytes are DF_EVALIDATION.  *hash receives
 * hash64 of the full (unshortened) encoding, for the partition prefix.
 * out needs DF_PK_INLINE_MAX bytes. */
int df__key_enc_partition(const df_value *v, unsigned char *out,
                          size_t *outlen, uint64_t *hash);
/* Decode one encoded value at *p (advancing).  Strings are unescaped into
 * scratch (capacity cap), which v->s then points into.  A hashed
 * partition value decodes as DF_TBIN of the 16 hash bytes.
 * 0 or DF_ECORRUPT. */
int df__key_dec(const unsigned char **p, const unsigned char *end,
                df_value *v, char *scratch, size_t cap);
/* Write 8 bytes big-endian. */
void df__key_put_u64(unsigned char *out, uint64_t v);
uint64_t df__key_get_u64(const unsigned char *p);

/* ------------------------------------------------------------ error.c */
/* Format a message into a fixed buffer (truncating), return code. */
int df__fmt(char *buf, size_t cap, int code, const char *fmt, ...)
    DF__PRINTF(4, 5);

#endif /* DF_INTERNAL_H */
