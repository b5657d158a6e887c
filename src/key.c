/*
 * key.c -- order-preserving encoding of key values, and the key hash.
 *
 * Invariant: for any two key values a and b, memcmp order of their full
 * encodings (shorter-is-smaller on a common prefix) equals their value
 * order -- every number before every string, every string before every
 * binary -- and equal values (1 and 1.0) have identical encodings; no
 * encoding is a prefix of another, so keys made of several parts compare
 * part by part.  Nothing here writes past the given capacity or reads
 * past the given end, and decoding is total on hostile bytes.
 *
 * Numbers (int, uint, float, decimal): decimal.c's encoding of the value
 * as a decimal: tags 0x10..0x14, at most DF_NUM_ENC_MAX bytes.  A float
 * that is an integer in the int64 range is that integer (the float 2^60
 * and the integer 1 << 60 are one key, as Lua has them equal, on 5.1 and
 * LuaJIT too), any other float its shortest decimal.  -0.0 is 0; NaN is
 * refused; the infinities sort at the ends.
 *
 * Strings (DF_TAG_STR) and binaries (DF_TAG_BIN): the tag, the bytes with
 * 0x00 written as 0x00 0xFF, then the terminator 0x00 0x01, so a value
 * sorts before its extensions and may hold NUL bytes.
 *
 * Long partition values (encoding over DF_PK_INLINE_MAX bytes):
 * DF_TAG_HASHED + two independent 64-bit hashes of the full encoding, 17
 * bytes; readers check the value against the item.
 *
 * Long sort values (encoding over DF_SK_PREFIX bytes): the first
 * DF_SK_PREFIX bytes of the encoding, then two independent 64-bit hashes
 * of all of it.  The prefix holds no terminator (the body never holds
 * 0x00 0x01), which is how a decoder tells the long form; its order to
 * every other value but those sharing its prefix is the value order, and
 * values sharing a prefix are ordered by hash: readers put them in value
 * order again from the items (see query.c).
 *
 * Decoding: numbers come back as int, uint or float when one holds the
 * value exactly, else as a decimal; only canonical encodings are accepted
 * (decode then re-encode gives the same bytes).
 */
#include <math.h>
#include <string.h>

#include "internal.h"

#define TWO63 9223372036854775808.0
#define TWO64 18446744073709551616.0
#define SIGN64 0x8000000000000000ull

void df__key_put_u64(unsigned char *out, uint64_t v) {
  int i;
  for (i = 7; i >= 0; i--) {
    out[i] = (unsigned char)v;
    v >>= 8;
  }
}

uint64_t df__key_get_u64(const unsigned char *p) {
  uint64_t v = 0;
  int i;
  for (i = 0; i < 8; i++) v = (v << 8) | p[i];
  return v;
}

/* --------------------------------------------------------------- hash */

/* murmur3's 64-bit finalizer: every input bit affects every output bit. */
static uint64_t fmix64(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

/* A streaming FNV-1a state, finalized by fmix64 over (state ^ length). */
typedef struct hstate {
  uint64_t h, n, mul;
} hstate;

static void hinit(hstate *s, uint64_t seed, uint64_t mul) {
  s->h = 0xcbf29ce484222325ull ^ fmix64(seed);
  s->n = 0;
  s->mul = mul;
}

static void hfeed(hstate *s, const unsigned char *p, size_t n) {
  uint64_t h = s->h, mul = s->mul;
  size_t i;
  for (i = 0; i < n; i++) {
    h ^= p[i];
    h *= mul;
  }
  s->h = h;
  s->n += n;
}

static uint64_t hfinal(const hstate *s) {
  return fmix64(s->h ^ fmix64(s->n + 0x9e3779b97f4a7c15ull));
}

#define FNV_PRIME 0x100000001b3ull
/* A second odd multiplier for the independent lane of hashed keys. */
#define ALT_PRIME 0x9e3779b97f4a7c15ull

uint64_t df__hash64(const void *p, size_t n, uint64_t seed) {
  hstate s;
  hinit(&s, seed, FNV_PRIME);
  hfeed(&s, p, n);
  return hfinal(&s);
}

/* ------------------------------------------------------------ numbers */

/* The number encoding of decimal.c for any number value.  DF_EVALIDATION
 * for NaN and values that are no number. */
static int num_enc(const df_value *v, unsigned char *out, size_t cap,
                   size_t *outlen) {
  unsigned char tmp[DF_NUM_ENC_MAX];
  df_dec d;
  size_t n;
  if (df__dec_from_value(v, &d) != DF_OK) return DF_EVALIDATION;
  n = df__dec_enc(&d, tmp);
  if (n == 0 || n > cap) return DF_EVALIDATION;
  memcpy(out, tmp, n);
  *outlen = n;
  return 0;
}

/* Decode the number at p into v: an int, uint or float when one holds the
 * value exactly (an infinity as a float), else DF_TDECIMAL pointing at the
 * encoding itself.  DF_ECORRUPT unless canonical. */
static int num_dec(const unsigned char *p, size_t avail, df_value *v,
                   size_t *used) {
  df_dec d;
  int64_t i;
  uint64_t u;
  double f;
  memset(v, 0, sizeof *v);
  if (df__dec_dec(p, avail, &d, used) != DF_OK) return DF_ECORRUPT;
  if (d.inf) {
    v->type = DF_TFLOAT;
    v->f = d.sign < 0 ? -HUGE_VAL : HUGE_VAL;
  } else if (df__dec_int64(&d, &i)) {
    v->type = DF_TINT;
    v->i = i;
  } else if (df__dec_uint64(&d, &u)) {
    v->type = DF_TUINT;
    v->u = u;
  } else if (df__dec_double(&d, &f)) {
    v->type = DF_TFLOAT;
    v->f = f;
  } else {
    v->type = DF_TDECIMAL;
    v->s = (const char *)p;
    v->n = *used;
  }
  return 0;
}

/* ------------------------------------------------- strings and binaries */

static size_t count_nul(const char *s, size_t n) {
  size_t i, k = 0;
  for (i = 0; i < n; i++) k += s[i] == '\0';
  return k;
}

static int is_bytes(const df_value *v) {
  return v->type == DF_TSTR || v->type == DF_TBIN;
}

static unsigned char bytes_tag(const df_value *v) {
  return v->type == DF_TBIN ? DF_TAG_BIN : DF_TAG_STR;
}

/* Write at most cap bytes of the escaped encoding of v (tag, body,
 * terminator); returns how many were written. */
static size_t bytes_write(const df_value *v, unsigned char *out, size_t cap) {
  size_t i, k = 0;
  if (v->n + 3 <= cap && (v->n == 0 || memchr(v->s, '\0', v->n) == NULL)) {
    /* the usual value: no NUL to escape, room for all of it */
    out[0] = bytes_tag(v);
    if (v->n) memcpy(out + 1, v->s, v->n);
    out[v->n + 1] = 0x00;
    out[v->n + 2] = 0x01;
    return v->n + 3;
  }
  if (k < cap) out[k++] = bytes_tag(v);
  for (i = 0; i < v->n && k < cap; i++) {
    out[k++] = (unsigned char)v->s[i];
    if (v->s[i] == '\0' && k < cap) out[k++] = 0xff;
  }
  if (k < cap) out[k++] = 0x00;
  if (k < cap) out[k++] = 0x01;
  return k;
}

static size_t bytes_enc_len(const df_value *v) {
  return v->n + count_nul(v->s, v->n) + 3;
}

int df__key_enc(const df_value *v, unsigned char *out, size_t cap,
                size_t *outlen) {
  if (!v || !out) return DF_EVALIDATION;
  if (is_bytes(v)) {
    size_t need;
    if (v->n && !v->s) return DF_EVALIDATION;
    need = bytes_enc_len(v);
    if (need < v->n || need > cap) return DF_EVALIDATION;
    *outlen = bytes_write(v, out, cap);
    return 0;
  }
  return num_enc(v, out, cap, outlen);
}

/* Feed the encoding of a string or binary v to the hash lanes without
 * building it. */
static void bytes_hash(const df_value *v, hstate *lanes, int nlanes) {
  static const unsigned char esc = 0xff;
  static const unsigned char term[2] = {0x00, 0x01};
  unsigned char tag = bytes_tag(v);
  const char *s = v->s;
  size_t i, st = 0, n = v->n;
  int l;
  for (l = 0; l < nlanes; l++) hfeed(&lanes[l], &tag, 1);
  for (i = 0; i < n; i++) {
    if (s[i] != '\0') continue;
    for (l = 0; l < nlanes; l++) {
      hfeed(&lanes[l], (const unsigned char *)s + st, i + 1 - st);
      hfeed(&lanes[l], &esc, 1);
    }
    st = i + 1;
  }
  for (l = 0; l < nlanes; l++) {
    hfeed(&lanes[l], (const unsigned char *)s + st, n - st);
    hfeed(&lanes[l], term, 2);
  }
}

int df__key_enc_partition(const df_value *v, unsigned char *out, size_t *outlen,
                          uint64_t *hash) {
  int rc;
  if (!v || !out) return DF_EVALIDATION;
  if (is_bytes(v)) {
    hstate lanes[3];
    if (v->n > DF_PK_MAX || (v->n && !v->s)) return DF_EVALIDATION;
    if (bytes_enc_len(v) > DF_PK_INLINE_MAX) {
      hinit(&lanes[0], 0, FNV_PRIME);
      hinit(&lanes[1], 0x6466706b68617368ull, FNV_PRIME); /* "dfpkhash" */
      hinit(&lanes[2], 0x7365636f6e64ull, ALT_PRIME);
      bytes_hash(v, lanes, 3);
      if (hash) *hash = hfinal(&lanes[0]);
      out[0] = DF_TAG_HASHED;
      df__key_put_u64(out + 1, hfinal(&lanes[1]));
      df__key_put_u64(out + 9, hfinal(&lanes[2]));
      *outlen = 17;
      return 0;
    }
  }
  rc = df__key_enc(v, out, DF_PK_INLINE_MAX, outlen);
  if (rc) return rc;
  if (hash) *hash = df__hash64(out, *outlen, 0);
  return 0;
}

int df__key_enc_sort(const df_value *v, unsigned char *out, size_t *outlen,
                     int *is_long) {
  hstate lanes[2];
  if (is_long) *is_long = 0;
  if (!v || !out) return DF_EVALIDATION;
  if (!is_bytes(v)) return num_enc(v, out, DF_SK_PREFIX, outlen);
  if (v->n > DF_SK_MAX || (v->n && !v->s)) return DF_EVALIDATION;
  if (bytes_enc_len(v) <= DF_SK_PREFIX) {
    *outlen = bytes_write(v, out, DF_SK_PREFIX);
    return 0;
  }
  /* the first DF_SK_PREFIX bytes of the encoding, then 16 hash bytes of
   * all of it */
  bytes_write(v, out, DF_SK_PREFIX);
  hinit(&lanes[0], 0x64666c6f6e67736bull, FNV_PRIME); /* "dflongsk" */
  hinit(&lanes[1], 0x736f72746b6579ull, ALT_PRIME);
  bytes_hash(v, lanes, 2);
  df__key_put_u64(out + DF_SK_PREFIX, hfinal(&lanes[0]));
  df__key_put_u64(out + DF_SK_PREFIX + 8, hfinal(&lanes[1]));
  *outlen = DF_SK_LONG_LEN;
  if (is_long) *is_long = 1;
  return 0;
}

int df__key_enc_bound(const df_value *v, int strip, unsigned char *out,
                      size_t *outlen, int *is_long) {
  size_t full;
  *is_long = 0;
  if (!v || !out) return DF_EVALIDATION;
  if (!is_bytes(v)) {
    if (strip) return DF_EVALIDATION;
    return num_enc(v, out, DF_SK_PREFIX, outlen);
  }
  if (v->n && !v->s) return DF_EVALIDATION;
  full = bytes_enc_len(v) - (strip ? 2 : 0);
  if (full <= DF_SK_PREFIX) {
    bytes_write(v, out, DF_SK_PREFIX);
    *outlen = full;
    return 0;
  }
  bytes_write(v, out, DF_SK_PREFIX);
  *outlen = DF_SK_PREFIX;
  *is_long = 1;
  return 0;
}

int df__key_dec(const unsigned char **pp, const unsigned char *end, df_value *v,
                char *scratch, size_t cap) {
  const unsigned char *p = *pp, *start = *pp;
  size_t used;
  memset(v, 0, sizeof *v);
  if (!p || p >= end) return DF_ECORRUPT;
  switch (*p) {
    case DF_TAG_NUM_NEGINF:
    case DF_TAG_NUM_NEG:
    case DF_TAG_NUM_ZERO:
    case DF_TAG_NUM_POS:
    case DF_TAG_NUM_POSINF:
      if (num_dec(p, (size_t)(end - p), v, &used)) return DF_ECORRUPT;
      *pp = p + used;
      return 0;
    case DF_TAG_HASHED:
      if (end - p < 17) return DF_ECORRUPT;
      v->type = DF_TBIN;
      v->s = (const char *)p + 1;
      v->n = 16;
      v->u = DF_KEY_PARTIAL;
      *pp = p + 17;
      return 0;
    case DF_TAG_STR:
    case DF_TAG_BIN: {
      size_t k = 0;
      v->type = *p == DF_TAG_BIN ? DF_TBIN : DF_TSTR;
      p++;
      for (;;) {
        unsigned char c;
        if ((size_t)(p - start) == DF_SK_PREFIX) { /* a long value */
          if (end - p < 16) goto corrupt;
          v->u = DF_KEY_PARTIAL;
          p += 16;
          break;
        }
        if (p >= end) goto corrupt;
        c = *p++;
        if (c == 0x00) {
          if ((size_t)(p - start) == DF_SK_PREFIX) {
            c = 0x00; /* an escaped NUL cut by the prefix */
          } else {
            if (p >= end) goto corrupt;
            c = *p++;
            if (c == 0x01) break;
            if (c != 0xff) goto corrupt;
            c = 0x00;
          }
        }
        if (k >= cap || !scratch) goto corrupt;
        scratch[k++] = (char)c;
      }
      v->s = scratch ? scratch : "";
      v->n = k;
      *pp = p;
      return 0;
    }
    default:
      return DF_ECORRUPT;
  }
corrupt:
  memset(v, 0, sizeof *v);
  return DF_ECORRUPT;
}

size_t df__key_part_len(const unsigned char *p, const unsigned char *end,
                        int *is_long) {
  const unsigned char *q = p;
  size_t used;
  df_dec d;
  if (is_long) *is_long = 0;
  if (!p || p >= end) return 0;
  switch (*p) {
    case DF_TAG_NUM_NEGINF:
    case DF_TAG_NUM_NEG:
    case DF_TAG_NUM_ZERO:
    case DF_TAG_NUM_POS:
    case DF_TAG_NUM_POSINF:
      return df__dec_dec(p, (size_t)(end - p), &d, &used) == DF_OK ? used : 0;
    case DF_TAG_HASHED:
      return end - p >= 17 ? 17 : 0;
    case DF_TAG_STR:
    case DF_TAG_BIN:
      for (q = p + 1; q < end; q++) {
        if ((size_t)(q - p) == DF_SK_PREFIX) break;
        if (*q == 0x00) {
          if ((size_t)(q + 1 - p) == DF_SK_PREFIX) {
            q++;
            break;
          }
          if (q + 1 >= end) return 0;
          if (q[1] == 0x01) return (size_t)(q + 2 - p);
          if (q[1] != 0xff) return 0;
          q++;
        }
      }
      if ((size_t)(q - p) != DF_SK_PREFIX || end - q < 16) return 0;
      if (is_long) *is_long = 1;
      return DF_SK_LONG_LEN;
    default:
      return 0;
  }
}

/* ------------------------------------------------------------ the rule */

/* How a message names a value of type t. */
static const char *type_name(df_type t) {
  switch (t) {
    case DF_TNONE:
      return "nothing";
    case DF_TNIL:
      return "null";
    case DF_TBOOL:
      return "a boolean";
    case DF_TINT:
    case DF_TUINT:
    case DF_TFLOAT:
    case DF_TDECIMAL:
      return "a number";
    case DF_TSTR:
      return "a string";
    case DF_TBIN:
      return "binary";
    case DF_TARRAY:
      return "a list";
    case DF_TMAP:
      return "a map";
    case DF_TSS:
      return "a string set";
    case DF_TNS:
      return "a number set";
    case DF_TBS:
      return "a binary set";
    case DF_TOTHER:
      return "a value no item can hold";
  }
  return "?";
}

int df__key_check(const df_value *v, const char *prefix, const char *name,
                  int role, char *err, size_t errlen) {
  switch (v->type) {
    case DF_TSTR:
    case DF_TBIN:
      if (role == DF_KEY_PARTITION && v->n > DF_PK_MAX)
        return df__fmt(err, errlen, DF_EVALIDATION,
                       "%s%s is too long (%zu bytes, at most %d)", prefix, name,
                       v->n, DF_PK_MAX);
      if (role == DF_KEY_SORT && v->n > DF_SK_MAX)
        return df__fmt(err, errlen, DF_EVALIDATION,
                       "%s%s is too long (%zu bytes, at most %d)", prefix, name,
                       v->n, DF_SK_MAX);
      return DF_OK;
    case DF_TINT:
    case DF_TUINT:
    case DF_TDECIMAL:
      return DF_OK;
    case DF_TFLOAT:
      if (v->f != v->f)
        return df__fmt(err, errlen, DF_EVALIDATION, "%s%s must not be NaN",
                       prefix, name);
      return DF_OK;
    case DF_TNONE:
      return df__fmt(err, errlen, DF_EVALIDATION, "missing %s%s", prefix, name);
    case DF_TOTHER:
      return df__fmt(err, errlen, DF_EVALIDATION,
                     "%s%s must be a string or a number, not %.*s", prefix,
                     name, v->s ? (int)(v->n > 64 ? 64 : v->n) : 0,
                     v->s ? v->s : "");
    default:
      return df__fmt(err, errlen, DF_EVALIDATION,
                     "%s%s must be a string or a number, not %s", prefix, name,
                     type_name(v->type));
  }
}
