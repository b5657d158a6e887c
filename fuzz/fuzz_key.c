/*
 * fuzz_key.c -- libFuzzer harness for the order-preserving key encoding
 * (key.c).
 *
 * The input is read as a sequence of key values (a type byte, then an
 * int64, a uint64, a double or a length-prefixed string); after them, the
 * rest of the input is also decoded as raw key bytes.  Checked:
 *  - encode then decode gives the same value (numbers compare equal as
 *    decimals, a float by its shortest decimal; strings
 *    are byte-equal), and decoding consumes exactly the encoding;
 *  - decode is canonical: any bytes that decode re-encode to themselves;
 *  - order: memcmp order of two encodings (shorter first on a common
 *    prefix) equals the values' order (numbers, strings, binaries), and equal
 *    values (1 and 1.0) have equal encodings;
 *  - partition encoding fits DF_PK_INLINE_MAX, is deterministic, and equal
 *    to the plain encoding when that is short enough.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CHECK(c)                                                           \
  do {                                                                     \
    if (!(c)) {                                                            \
      fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
              #c);                                                         \
      abort();                                                             \
    }                                                                      \
  } while (0)

#define CAP 600

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct enc {
  df_value v;
  unsigned char b[CAP];
  size_t n;
} enc;

static size_t take(const uint8_t **p, const uint8_t *end, void *out, size_t n) {
  size_t k = (size_t)(end - *p) < n ? (size_t)(end - *p) : n;
  memset(out, 0, n);
  memcpy(out, *p, k);
  *p += k;
  return k;
}

/* Read one value from the input; 0 when the input is used up. */
static int next_value(const uint8_t **p, const uint8_t *end, df_value *v) {
  uint8_t t;
  memset(v, 0, sizeof *v);
  if (*p >= end) return 0;
  t = *(*p)++;
  switch (t % 4) {
    case 0:
      v->type = DF_TINT;
      take(p, end, &v->i, 8);
      if (t & 0x80) v->i = (int8_t)v->i; /* small values too */
      return 1;
    case 1:
      v->type = DF_TUINT;
      take(p, end, &v->u, 8);
      if (v->u <= INT64_MAX) v->u += (uint64_t)INT64_MAX + 1;
      return 1;
    case 2:
      v->type = DF_TFLOAT;
      take(p, end, &v->f, 8);
      if ((t & 0x80) && fabs(v->f) < 1e18) v->f = trunc(v->f); /* integral */
      return 1;
    default: {
      uint8_t n = 0;
      take(p, end, &n, 1);
      if ((size_t)(end - *p) < n) n = (uint8_t)(end - *p);
      v->type = (t & 0x80) ? DF_TBIN : DF_TSTR;
      v->s = (const char *)*p;
      v->n = n;
      *p += n;
      return 1;
    }
  }
}

static int is_num(const df_value *v) {
  return v->type == DF_TINT || v->type == DF_TUINT || v->type == DF_TFLOAT;
}

/* The kind's place in key order: numbers, then strings, then binaries
 * (their tags, DF_TAG_NUM_* < DF_TAG_STR < DF_TAG_BIN). */
static int kind_rank(const df_value *v) {
  return is_num(v) ? 0 : v->type == DF_TSTR ? 1 : 2;
}

/* value order: -1/0/1; numbers as decimals (a float by its shortest
 * decimal, format 2's keys: the float 2^63 is the integer
 * 9223372036854776000, one key), then strings, then binaries bytewise */
static int value_order(const df_value *a, const df_value *b) {
  int c, ka = kind_rank(a), kb = kind_rank(b);
  if (ka != kb) return ka < kb ? -1 : 1;
  c = df__value_cmp(a, b);
  CHECK(c != 2);
  return c;
}

static int bytes_order(const enc *a, const enc *b) {
  size_t m = a->n < b->n ? a->n : b->n;
  int c = memcmp(a->b, b->b, m);
  if (c) return c < 0 ? -1 : 1;
  return a->n < b->n ? -1 : a->n > b->n;
}

static void roundtrip(const enc *x) {
  char scratch[CAP];
  unsigned char again[CAP];
  size_t n2;
  df_value d;
  const unsigned char *q = x->b;
  CHECK(df__key_dec(&q, x->b + x->n, &d, scratch, sizeof scratch) == 0);
  CHECK(q == x->b + x->n);
  if (is_num(&x->v)) {
    CHECK((is_num(&d) || d.type == DF_TDECIMAL) &&
          df__value_cmp(&d, &x->v) == 0);
  } else {
    CHECK(d.type == x->v.type && d.n == x->v.n &&
          (d.n == 0 || memcmp(d.s, x->v.s, d.n) == 0));
  }
  CHECK(df__key_enc(&d, again, sizeof again, &n2) == 0);
  CHECK(n2 == x->n && memcmp(again, x->b, n2) == 0);
}

static void partition(const df_value *v, const enc *plain) {
  unsigned char a[DF_PK_INLINE_MAX], b[DF_PK_INLINE_MAX];
  size_t na = 0, nb = 0;
  uint64_t ha = 0, hb = 0;
  int ra = df__key_enc_partition(v, a, &na, &ha);
  int rb = df__key_enc_partition(v, b, &nb, &hb);
  CHECK(ra == rb);
  if (ra != 0) return;
  CHECK(na <= DF_PK_INLINE_MAX && na == nb && ha == hb &&
        memcmp(a, b, na) == 0);
  if (plain && plain->n <= DF_PK_INLINE_MAX)
    CHECK(na == plain->n && memcmp(a, plain->b, na) == 0);
  if (plain && plain->n > DF_PK_INLINE_MAX)
    CHECK(na == 17 && a[0] == DF_TAG_HASHED);
}

/* A string or binary whose encoding is longer than DF_SK_PREFIX: in sort
 * keys its first DF_SK_PREFIX bytes and a 16-byte hash (format 2), which
 * decode as a partial value of its type, deterministically; the order of
 * such values is restored by the query's group walk, not by the bytes, so
 * they take no part in the order checks.  Returns whether v is one. */
static int long_form(const df_value *v) {
  unsigned char a[DF_SK_LONG_LEN], b[DF_SK_LONG_LEN];
  size_t na = 0, nb = 0;
  int la = 0, lb = 0;
  char scratch[CAP];
  const unsigned char *q = a;
  df_value d;
  CHECK(df__key_enc_sort(v, a, &na, &la) == 0);
  if (!la) return 0;
  CHECK(df__key_enc_sort(v, b, &nb, &lb) == 0);
  CHECK(na == DF_SK_LONG_LEN && nb == na && lb && memcmp(a, b, na) == 0);
  CHECK(df__key_dec(&q, a + na, &d, scratch, sizeof scratch) == 0);
  CHECK(q == a + na && d.type == v->type && d.u == DF_KEY_PARTIAL);
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *p = data, *end = data + size;
  enc vals[8];
  size_t n = 0, i, j;
  df_value v;

  if (size == 0) return 0;
  /* byte 0: how many values to read before the raw tail */
  {
    size_t want = data[0] % 9;
    p++;
    while (n < want && next_value(&p, end, &v)) {
      enc *x = &vals[n];
      int rc;
      x->v = v;
      if ((v.type == DF_TSTR || v.type == DF_TBIN) && long_form(&v)) continue;
      rc = df__key_enc(&v, x->b, sizeof x->b, &x->n);
      if (v.type == DF_TFLOAT && isnan(v.f)) {
        CHECK(rc == DF_EVALIDATION);
        partition(&v, NULL);
        continue;
      }
      CHECK(rc == 0);
      roundtrip(x);
      partition(&v, x);
      n++;
    }
  }
  for (i = 0; i < n; i++)
    for (j = 0; j < n; j++)
      CHECK(value_order(&vals[i].v, &vals[j].v) ==
            bytes_order(&vals[i], &vals[j]));

  /* the raw tail: decoding is total and canonical */
  while (p < end) {
    char scratch[64];
    unsigned char again[CAP];
    const unsigned char *q = p;
    size_t n2;
    if (df__key_dec(&q, end, &v, scratch, sizeof scratch) != 0) {
      p++;
      continue;
    }
    CHECK(q > p && q <= end);
    /* a long form's prefix and hash, or a partition key's hash: not a
     * whole value to encode again */
    if ((v.type == DF_TSTR || v.type == DF_TBIN) && v.u == DF_KEY_PARTIAL) {
      p = q;
      continue;
    }
    CHECK(df__key_enc(&v, again, sizeof again, &n2) == 0);
    CHECK(n2 == (size_t)(q - p) && memcmp(again, p, n2) == 0);
    p = q;
  }
  return 0;
}
