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
