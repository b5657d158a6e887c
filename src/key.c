/*
 * key.c -- order-preserving encoding of key values, and the key hash.
 *
 * Invariant: for any two key values a and b, memcmp order of their
 * encodings (shorter-is-smaller on a common prefix) equals their value
 * order, with every number before every string; equal values (1 and 1.0)
 * have identical encodings.  Nothing here writes past the given capacity
 * or reads past the given end, and decoding is total on hostile bytes.
 *
 * Numbers (int, uint, float): DF_TAG_NUM, then D = the largest double
 * <= v as 8 bytes in memcomparable form (sign bit flipped for D >= 0, all
 * bits inverted for D < 0), then r = v - D as 2 bytes big-endian.  r is 0
 * for floats and for integers a double holds exactly; for larger integers
 * it is below the spacing of doubles there (< 2048 up to 2^64).  -0.0 is
 * stored as 0; NaN is refused; the infinities sort at the ends.
 *
 * Strings (str or bin): DF_TAG_STR, the bytes with 0x00 written as
 * 0x00 0xFF, then the terminator 0x00 0x01, so a string sorts before its
 * extensions and may hold NUL bytes.
 *
 * Long partition values: DF_TAG_HASHED + two independent 64-bit hashes
 * (big-endian) of the full encoding, 17 bytes.
 *
 * Decoding: a number comes back as DF_TINT when r != 0 or D is integral
 * and inside int64 range; as DF_TUINT when r != 0 and the value is above
 * INT64_MAX; else as DF_TFLOAT.  Only canonical encodings are accepted
 * (decode then re-encode must give the same bytes).
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

/* D (largest double <= v) and r = v - D for a key number. */
static int num_split(const df_value *v, double *D, unsigned *r) {
  if (v->type == DF_TFLOAT) {
    if (isnan(v->f)) return DF_EVALIDATION;
    *D = v->f == 0 ? 0.0 : v->f; /* -0.0 -> 0 */
    *r = 0;
    return 0;
  }
  if (v->type == DF_TINT || (v->type == DF_TUINT && v->u <= INT64_MAX)) {
    int64_t i = v->type == DF_TINT ? v->i : (int64_t)v->u;
    double d = (double)i;
    int64_t di;
    if (d >= TWO63) d = nextafter(d, 0.0);
    di = (int64_t)d;
    if (di > i) {
      d = nextafter(d, -INFINITY);
      di = (int64_t)d;
    }
    *D = d;
    *r = (unsigned)((uint64_t)i - (uint64_t)di);
    return 0;
  }
  if (v->type == DF_TUINT) {
    uint64_t u = v->u, du;
    double d = (double)u;
    if (d >= TWO64) d = nextafter(d, 0.0);
    du = (uint64_t)d;
    if (du > u) {
      d = nextafter(d, 0.0);
      du = (uint64_t)d;
    }
    *D = d;
    *r = (unsigned)(u - du);
    return 0;
  }
  return DF_EVALIDATION;
}

static void num_write(unsigned char *out, double D, unsigned r) {
  uint64_t bits;
  memcpy(&bits, &D, 8);
  bits = (bits & SIGN64) ? ~bits : bits ^ SIGN64;
  out[0] = DF_TAG_NUM;
  df__key_put_u64(out + 1, bits);
  out[9] = (unsigned char)(r >> 8);
  out[10] = (unsigned char)r;
}

static int num_enc(const df_value *v, unsigned char *out, size_t cap) {
  double D;
  unsigned r;
  int rc = num_split(v, &D, &r);
  if (rc) return rc;
  if (cap < DF_NUM_ENC_LEN) return DF_EVALIDATION;
  num_write(out, D, r);
  return 0;
}

/* Decode the 11 bytes at p (tag included) into v; DF_ECORRUPT unless it
 * is the canonical encoding of some number. */
static int num_dec(const unsigned char *p, df_value *v) {
  uint64_t bits = df__key_get_u64(p + 1);
  unsigned r = ((unsigned)p[9] << 8) | p[10];
  unsigned char again[DF_NUM_ENC_LEN];
  double D;

  bits = (bits & SIGN64) ? bits ^ SIGN64 : ~bits;
  memcpy(&D, &bits, 8);
  memset(v, 0, sizeof *v);
  if (isnan(D)) return DF_ECORRUPT;
  if (r != 0) {
    /* D must be an integer from which D + r is an exact integer. */
    if (D >= TWO64 || D < -TWO63 || D != floor(D)) return DF_ECORRUPT;
    if (D >= TWO63) {
      uint64_t du = (uint64_t)D;
      if (du > UINT64_MAX - r) return DF_ECORRUPT;
      v->type = DF_TUINT;
      v->u = du + r;
    } else {
      int64_t di = (int64_t)D;
      if (di > 0 && (uint64_t)di + r > (uint64_t)INT64_MAX) {
        v->type = DF_TUINT;
        v->u = (uint64_t)di + r;
      } else {
        v->type = DF_TINT;
        v->i = (int64_t)((uint64_t)di + r);
      }
    }
  } else if (D >= -TWO63 && D < TWO63 && D == floor(D)) {
    v->type = DF_TINT;
    v->i = (int64_t)D;
  } else {
    v->type = DF_TFLOAT;
    v->f = D;
  }
  if (num_enc(v, again, sizeof again) ||
      memcmp(again, p, DF_NUM_ENC_LEN) != 0) {
    memset(v, 0, sizeof *v);
    return DF_ECORRUPT;
  }
  return 0;
}

/* ------------------------------------------------------------ strings */

static size_t count_nul(const char *s, size_t n) {
  size_t i, k = 0;
  for (i = 0; i < n; i++) k += s[i] == '\0';
  return k;
}

/* Write the escaped string (tag, body, terminator); the caller has
 * checked that it fits. */
static size_t str_write(const char *s, size_t n, unsigned char *out) {
  size_t i, k = 0;
  out[k++] = DF_TAG_STR;
  for (i = 0; i < n; i++) {
    out[k++] = (unsigned char)s[i];
    if (s[i] == '\0') out[k++] = 0xff;
  }
  out[k++] = 0x00;
  out[k++] = 0x01;
  return k;
}

static int is_str(const df_value *v) {
  return v->type == DF_TSTR || v->type == DF_TBIN;
}

int df__key_enc(const df_value *v, unsigned char *out, size_t cap,
                size_t *outlen) {
  if (!v || !out) return DF_EVALIDATION;
  if (is_str(v)) {
    size_t need;
    if (v->n && !v->s) return DF_EVALIDATION;
    need = v->n + count_nul(v->s, v->n);
    if (need < v->n || need > cap || cap - need < 3) return DF_EVALIDATION;
    *outlen = str_write(v->s, v->n, out);
    return 0;
  }
  {
    int rc = num_enc(v, out, cap);
    if (rc) return rc;
    *outlen = DF_NUM_ENC_LEN;
    return 0;
  }
}

/* Feed the encoding of string s to the hash lanes without building it. */
static void str_hash(const char *s, size_t n, hstate *lanes, int nlanes) {
  static const unsigned char tag = DF_TAG_STR, esc = 0xff;
  static const unsigned char term[2] = {0x00, 0x01};
  size_t i, st = 0;
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
  if (is_str(v)) {
    hstate lanes[3];
    if (v->n > DF_PK_MAX || (v->n && !v->s)) return DF_EVALIDATION;
    if (v->n + count_nul(v->s, v->n) + 3 > DF_PK_INLINE_MAX) {
      hinit(&lanes[0], 0, FNV_PRIME);
      hinit(&lanes[1], 0x6466706b68617368ull, FNV_PRIME); /* "dfpkhash" */
      hinit(&lanes[2], 0x7365636f6e64ull, ALT_PRIME);
      str_hash(v->s, v->n, lanes, 3);
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

int df__key_dec(const unsigned char **pp, const unsigned char *end, df_value *v,
                char *scratch, size_t cap) {
  const unsigned char *p = *pp;
  memset(v, 0, sizeof *v);
  if (!p || p >= end) return DF_ECORRUPT;
  switch (*p) {
    case DF_TAG_NUM:
      if (end - p < DF_NUM_ENC_LEN || num_dec(p, v)) return DF_ECORRUPT;
      *pp = p + DF_NUM_ENC_LEN;
      return 0;
    case DF_TAG_HASHED:
      if (end - p < 17) return DF_ECORRUPT;
      v->type = DF_TBIN;
      v->s = (const char *)p + 1;
      v->n = 16;
      *pp = p + 17;
      return 0;
    case DF_TAG_STR: {
      size_t k = 0;
      p++;
      for (;;) {
        unsigned char c;
        if (p >= end) goto corrupt;
        c = *p++;
        if (c == 0x00) {
          if (p >= end) goto corrupt;
          c = *p++;
          if (c == 0x01) break;
          if (c != 0xff) goto corrupt;
          c = 0x00;
        }
        if (k >= cap || !scratch) goto corrupt;
        scratch[k++] = (char)c;
      }
      v->type = DF_TSTR;
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
      if (role == DF_KEY_SORT &&
          (v->n > DF_SK_MAX || v->n + count_nul(v->s, v->n) + 3 > DF_SK_MAX))
        return df__fmt(err, errlen, DF_EVALIDATION,
                       "%s%s is too long (at most %d bytes encoded: %d bytes "
                       "of a string without NUL bytes)",
                       prefix, name, DF_SK_MAX, DF_SK_MAX - 3);
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
