/*
 * test_key.c -- unit tests for key.c: order preservation of the key
 * encoding over many generated values, round trips, canonical decoding,
 * partition-key hashing and the spread of df__hash64's high bits.
 *
 * The reference order for numbers is long double comparison, which is
 * exact for every int64, uint64 and double where long double has a
 * 64-bit mantissa (x86-64); elsewhere df__value_cmp (tested in
 * test_codec) is the reference.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void) {
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return rng_state = x;
}

static df_value vi(int64_t i) {
  df_value v;
  memset(&v, 0, sizeof v);
  v.type = DF_TINT;
  v.i = i;
  return v;
}

static df_value vu(uint64_t u) {
  df_value v;
  memset(&v, 0, sizeof v);
  v.type = DF_TUINT;
  v.u = u;
  return v;
}

static df_value vf(double f) {
  df_value v;
  memset(&v, 0, sizeof v);
  v.type = DF_TFLOAT;
  v.f = f;
  return v;
}

static df_value vstr(const char *s, size_t n) {
  df_value v;
  memset(&v, 0, sizeof v);
  v.type = DF_TSTR;
  v.s = s;
  v.n = n;
  return v;
}

static int is_num(const df_value *v) {
  return v->type == DF_TINT || v->type == DF_TUINT || v->type == DF_TFLOAT;
}

/* Reference order: numbers numerically, before strings; strings bytewise
 * then by length. */
static int ref_cmp(const df_value *a, const df_value *b) {
  if (is_num(a) != is_num(b)) return is_num(a) ? -1 : 1;
  if (is_num(a)) {
    if (LDBL_MANT_DIG >= 64) {
      long double x = a->type == DF_TINT    ? (long double)a->i
                      : a->type == DF_TUINT ? (long double)a->u
                                            : (long double)a->f;
      long double y = b->type == DF_TINT    ? (long double)b->i
                      : b->type == DF_TUINT ? (long double)b->u
                                            : (long double)b->f;
      return x < y ? -1 : x > y;
    }
    return df__value_cmp(a, b);
  } else {
    size_t m = a->n < b->n ? a->n : b->n;
    int c = m ? memcmp(a->s, b->s, m) : 0;
    if (c) return c < 0 ? -1 : 1;
    return a->n < b->n ? -1 : a->n > b->n;
  }
}

static int enc_cmp(const unsigned char *a, size_t an, const unsigned char *b,
                   size_t bn) {
  size_t m = an < bn ? an : bn;
  int c = memcmp(a, b, m);
  if (c) return c < 0 ? -1 : 1;
  return an < bn ? -1 : an > bn;
}

/* ---------------------------------------------------------- the corpus */

#define MAXV 4096
#define SMAX 24

static df_value vals[MAXV];
static char strs[MAXV][SMAX];
static size_t nvals;

static void add(df_value v) {
  if (nvals < MAXV) vals[nvals++] = v;
}

static void add_str(const char *s, size_t n) {
  if (nvals >= MAXV || n > SMAX) return;
  memcpy(strs[nvals], s, n);
  add(vstr(strs[nvals], n));
}

static void build_corpus(void) {
  static const char *const fixed[] = {
      "",        "a",      "ab",   "abc",      "abd", "b", "user#1",
      "user#10", "user#2", "\xff", "\xff\xff", "A",   "z"};
  const double two63 = 9223372036854775808.0, two53 = 9007199254740992.0;
  int64_t k;
  size_t i;
  int j;

  /* integers near the limits and around 2^53, 2^62, 2^63 */
  for (k = 0; k < 40; k++) {
    add(vi(INT64_MAX - k));
    add(vi(INT64_MIN + k));
    add(vi((int64_t)1 << 53));
    add(vi(((int64_t)1 << 53) + k - 20));
    add(vi(-((int64_t)1 << 53) + k - 20));
    add(vi(((int64_t)1 << 62) + k - 20));
    add(vi(k - 20));
    add(vu((uint64_t)INT64_MAX + 1 + (uint64_t)k));
    add(vu(UINT64_MAX - (uint64_t)k));
  }
  add(vi(INT64_MAX - 1023));
  add(vi(INT64_MAX - 1024));
  add(vi(INT64_MAX - 1025));
  add(vu(UINT64_MAX - 2047));
  add(vu(UINT64_MAX - 2048));
  /* doubles: the same places, fractions, zeros, infinities, extremes */
  add(vf(0.0));
  add(vf(-0.0));
  add(vf(INFINITY));
  add(vf(-INFINITY));
  add(vf(DBL_MAX));
  add(vf(-DBL_MAX));
  add(vf(DBL_MIN));
  add(vf(-DBL_MIN));
  add(vf(DBL_MIN / 1024)); /* subnormal */
  add(vf(-DBL_MIN / 1024));
  add(vf(5e-324));
  add(vf(-5e-324));
  add(vf(two63));
  add(vf(-two63));
  add(vf(nextafter(two63, 0)));
  add(vf(nextafter(two63, INFINITY)));
  add(vf(nextafter(-two63, -INFINITY)));
  add(vf(18446744073709551616.0));
  add(vf(nextafter(18446744073709551616.0, 0)));
  add(vf(two53));
  add(vf(two53 + 2));
  add(vf(-two53));
  add(vf(1e300));
  add(vf(-1e300));
  add(vf(1e-300));
  for (j = -20; j <= 20; j++) {
    add(vf(j / 4.0));
    add(vf(j + 0.1));
    add(vf(j * 1e15 + 0.5));
  }
  /* random integers and doubles of every magnitude */
  for (i = 0; i < 600; i++) {
    uint64_t r = rnd();
    add(vi((int64_t)r >> (rnd() % 64)));
    add(vu(r | 0x8000000000000000ull));
    add(vf(ldexp((double)(int64_t)rnd(), (int)(rnd() % 200) - 100)));
  }
  for (i = 0; i < 200; i++) { /* random bit patterns, NaNs dropped */
    uint64_t bits = rnd();
    double d;
    memcpy(&d, &bits, 8);
    if (!isnan(d)) add(vf(d));
  }
  /* strings: prefixes of each other, NUL bytes, high bytes */
  for (i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
    add_str(fixed[i], strlen(fixed[i]));
  add_str("\0", 1);
  add_str("\0\0", 2);
  add_str("\0\1", 2);
  add_str("\0\xff", 2);
  add_str("a\0", 2);
  add_str("a\0\0", 3);
  add_str("a\0b", 3);
  add_str("a\1", 2);
  add_str("a\xff", 2);
  for (i = 0; i < 500; i++) {
    char s[SMAX];
    size_t n = rnd() % 8, m;
    for (m = 0; m < n; m++) {
      uint64_t r = rnd() % 8;
      s[m] = r == 0   ? '\0'
             : r == 1 ? '\x01'
             : r == 2 ? '\xff'
                      : (char)('a' + r);
    }
    add_str(s, n);
  }
}

/* -------------------------------------------------------------- tests */

static void test_u64(void) {
  unsigned char b[8];
  df__key_put_u64(b, 0x0102030405060708ull);
  CHECK(b[0] == 1 && b[7] == 8);
  CHECK_EQ_UINT(df__key_get_u64(b), 0x0102030405060708ull);
  df__key_put_u64(b, UINT64_MAX);
  CHECK_EQ_UINT(df__key_get_u64(b), UINT64_MAX);
}

/* Numeric/bytewise equality of a decoded value with the original. */
static int same_value(const df_value *a, const df_value *b) {
  if (is_num(a) && is_num(b)) return ref_cmp(a, b) == 0;
  if (a->type == DF_TSTR && (b->type == DF_TSTR || b->type == DF_TBIN))
    return a->n == b->n && (a->n == 0 || !memcmp(a->s, b->s, a->n));
  return 0;
}

static void test_order_and_roundtrip(void) {
  static unsigned char enc[MAXV][2 * SMAX + 3];
  static size_t elen[MAXV];
  size_t i, j;
  long bad_order = 0, bad_rt = 0, bad_type = 0;
  char scratch[2 * SMAX];

  build_corpus();
  for (i = 0; i < nvals; i++) {
    const unsigned char *p;
    df_value d;
    CHECK_EQ_INT(df__key_enc(&vals[i], enc[i], sizeof enc[i], &elen[i]), 0);
    if (is_num(&vals[i])) CHECK_EQ_UINT(elen[i], DF_NUM_ENC_LEN);
    p = enc[i];
    if (df__key_dec(&p, enc[i] + elen[i], &d, scratch, sizeof scratch) ||
        p != enc[i] + elen[i] || !same_value(&d, &vals[i]))
      bad_rt++;
    /* the documented decoded types */
    if (d.type == DF_TFLOAT && d.f == floor(d.f) &&
        d.f >= -9223372036854775808.0 && d.f < 9223372036854775808.0)
      bad_type++;
    if (vals[i].type == DF_TINT && d.type != DF_TINT) bad_type++;
  }
  CHECK_EQ_INT(bad_rt, 0);
  CHECK_EQ_INT(bad_type, 0);
  /* every pair */
  for (i = 0; i < nvals; i++)
    for (j = 0; j < nvals; j++)
      if (enc_cmp(enc[i], elen[i], enc[j], elen[j]) !=
          ref_cmp(&vals[i], &vals[j])) {
        if (bad_order++ < 5) fprintf(stderr, "order wrong: %zu vs %zu\n", i, j);
      }
  CHECK_EQ_INT(bad_order, 0);
  CHECK(nvals > 2000);
}

/* Random pairs of fresh values, closer to each other than the corpus. */
static void test_random_pairs(void) {
  long bad = 0;
  int k;
  for (k = 0; k < 300000; k++) {
    df_value a, b;
    unsigned char ea[16], eb[16];
    size_t la, lb;
    int64_t base = (int64_t)rnd() >> (rnd() % 64);
    int64_t off = (int64_t)(rnd() % 4097) - 2048;
    a = vi(base);
    switch (k % 3) {
      case 0:
        b = vf((double)base + (double)off);
        break;
      case 1:
        b = vf(nextafter((double)base, (rnd() & 1) ? INFINITY : -INFINITY));
        break;
      default:
        b = vi((off > 0 && base > INT64_MAX - off) ||
                       (off < 0 && base < INT64_MIN - off)
                   ? base
                   : base + off);
        break;
    }
    if (df__key_enc(&a, ea, sizeof ea, &la) ||
        df__key_enc(&b, eb, sizeof eb, &lb) ||
        enc_cmp(ea, la, eb, lb) != ref_cmp(&a, &b))
      bad++;
  }
  CHECK_EQ_INT(bad, 0);
}

static void test_special(void) {
  unsigned char a[32], b[32];
  size_t la, lb, i;
  df_value v, d;
  const unsigned char *p;
  char scratch[8];

  /* 1 and 1.0, 0 and -0.0 encode identically */
  v = vi(1);
  df__key_enc(&v, a, sizeof a, &la);
  v = vf(1.0);
  df__key_enc(&v, b, sizeof b, &lb);
  CHECK_EQ_MEM(a, la, b, lb);
  v = vu(1); /* a small uint is tolerated */
  df__key_enc(&v, b, sizeof b, &lb);
  CHECK_EQ_MEM(a, la, b, lb);
  v = vi(0);
  df__key_enc(&v, a, sizeof a, &la);
  v = vf(-0.0);
  df__key_enc(&v, b, sizeof b, &lb);
  CHECK_EQ_MEM(a, la, b, lb);
  v = vu((uint64_t)1 << 63);
  df__key_enc(&v, a, sizeof a, &la);
  v = vf(9223372036854775808.0);
  df__key_enc(&v, b, sizeof b, &lb);
  CHECK_EQ_MEM(a, la, b, lb);
  CHECK_EQ_INT(a[0], DF_TAG_NUM);
  /* decoded types */
  p = b;
  CHECK_EQ_INT(df__key_dec(&p, b + lb, &d, NULL, 0), 0);
  CHECK(d.type == DF_TFLOAT && d.f == 9223372036854775808.0);
  v = vu(UINT64_MAX);
  df__key_enc(&v, a, sizeof a, &la);
  p = a;
  CHECK_EQ_INT(df__key_dec(&p, a + la, &d, NULL, 0), 0);
  CHECK(d.type == DF_TUINT && d.u == UINT64_MAX);
  v = vf(2.5);
  df__key_enc(&v, a, sizeof a, &la);
  p = a;
  CHECK_EQ_INT(df__key_dec(&p, a + la, &d, NULL, 0), 0);
  CHECK(d.type == DF_TFLOAT && d.f == 2.5);
  v = vf(-3.0);
  df__key_enc(&v, a, sizeof a, &la);
  p = a;
  CHECK_EQ_INT(df__key_dec(&p, a + la, &d, NULL, 0), 0);
  CHECK(d.type == DF_TINT && d.i == -3);
  v = vi(INT64_MIN);
  df__key_enc(&v, a, sizeof a, &la);
  p = a;
  CHECK_EQ_INT(df__key_dec(&p, a + la, &d, NULL, 0), 0);
  CHECK(d.type == DF_TINT && d.i == INT64_MIN);
  v = vi(INT64_MAX);
  df__key_enc(&v, a, sizeof a, &la);
  CHECK(a[9] == 0x03 && a[10] == 0xff); /* r = 1023 */
  p = a;
  CHECK_EQ_INT(df__key_dec(&p, a + la, &d, NULL, 0), 0);
  CHECK(d.type == DF_TINT && d.i == INT64_MAX);

  /* refused values */
  v = vf(NAN);
  CHECK_EQ_INT(df__key_enc(&v, a, sizeof a, &la), DF_EVALIDATION);
  CHECK_EQ_INT(df__key_enc_partition(&v, a, &la, NULL), DF_EVALIDATION);
  memset(&v, 0, sizeof v);
  for (i = DF_TNONE; i <= DF_TMAP; i++) {
    v.type = (df_type)i;
    if (v.type == DF_TINT || v.type == DF_TUINT || v.type == DF_TFLOAT ||
        v.type == DF_TSTR || v.type == DF_TBIN)
      continue;
    CHECK_EQ_INT(df__key_enc(&v, a, sizeof a, &la), DF_EVALIDATION);
  }
  /* capacity: never truncated, never written past */
  v = vi(7);
  memset(a, 0xAA, sizeof a);
  CHECK_EQ_INT(df__key_enc(&v, a, 10, &la), DF_EVALIDATION);
  CHECK_EQ_INT(a[10], 0xAA);
  CHECK_EQ_INT(df__key_enc(&v, a, 11, &la), 0);
  v = vstr("ab\0c", 4); /* 1 + 5 + 2 = 8 bytes */
  memset(a, 0xAA, sizeof a);
  CHECK_EQ_INT(df__key_enc(&v, a, 7, &la), DF_EVALIDATION);
  CHECK_EQ_INT(a[7], 0xAA);
  CHECK_EQ_INT(df__key_enc(&v, a, 8, &la), 0);
  CHECK_EQ_UINT(la, 8);
  CHECK_EQ_MEM(a, la,
               "\x20"
               "ab\0\xff"
               "c\0\1",
               8);
  CHECK_EQ_INT(a[8], 0xAA);
  v.type = DF_TBIN; /* bin encodes as a string of bytes */
  CHECK_EQ_INT(df__key_enc(&v, b, sizeof b, &lb), 0);
  CHECK_EQ_MEM(a, la, b, lb);
  /* decoding into a scratch buffer */
  p = a;
  CHECK_EQ_INT(df__key_dec(&p, a + la, &d, scratch, 4), 0);
  CHECK(d.type == DF_TSTR && d.n == 4 && !memcmp(d.s, "ab\0c", 4));
  p = a;
  CHECK_EQ_INT(df__key_dec(&p, a + la, &d, scratch, 3), DF_ECORRUPT);
  CHECK(p == a);
  v = vstr("", 0);
  CHECK_EQ_INT(df__key_enc(&v, a, 3, &la), 0);
  p = a;
  CHECK_EQ_INT(df__key_dec(&p, a + la, &d, NULL, 0), 0);
  CHECK(d.type == DF_TSTR && d.n == 0);
  /* SK limit: 177 plain bytes fit DF_SK_MAX, 178 do not */
  {
    char s[200];
    unsigned char out[DF_SK_MAX];
    memset(s, 'x', sizeof s);
    v = vstr(s, 177);
    CHECK_EQ_INT(df__key_enc(&v, out, DF_SK_MAX, &la), 0);
    CHECK_EQ_UINT(la, 180);
    v = vstr(s, 178);
    CHECK_EQ_INT(df__key_enc(&v, out, DF_SK_MAX, &la), DF_EVALIDATION);
  }
  /* two values back to back decode in sequence */
  {
    unsigned char two[64];
    size_t l1, l2;
    char sc[16];
    v = vstr("k", 1);
    df__key_enc(&v, two, sizeof two, &l1);
    v = vi(-42);
    df__key_enc(&v, two + l1, sizeof two - l1, &l2);
    p = two;
    CHECK_EQ_INT(df__key_dec(&p, two + l1 + l2, &d, sc, sizeof sc), 0);
    CHECK(d.type == DF_TSTR && d.n == 1 && d.s[0] == 'k');
    CHECK_EQ_INT(df__key_dec(&p, two + l1 + l2, &d, sc, sizeof sc), 0);
    CHECK(d.type == DF_TINT && d.i == -42);
    CHECK(p == two + l1 + l2);
    CHECK_EQ_INT(df__key_dec(&p, two + l1 + l2, &d, sc, sizeof sc),
                 DF_ECORRUPT);
  }
}

/* Decode hostile bytes through an exact-size heap copy. */
static int dec_exact(const unsigned char *b, size_t n, df_value *d) {
  unsigned char *q = malloc(n ? n : 1);
  const unsigned char *p;
  char scratch[64];
  int rc;
  if (n) memcpy(q, b, n);
  p = q;
  rc = df__key_dec(&p, q + n, d, scratch, sizeof scratch);
  if (!(p >= q && p <= q + n)) rc = 99;
  if (rc && p != q) rc = 98;
  free(q);
  return rc;
}

static void test_hostile_decode(void) {
  unsigned char a[64], bad[11];
  size_t la, i;
  df_value v, d;
  long wrong = 0;
  int k;
  uint64_t bits;

  /* every truncation of every kind */
  {
    df_value samples[4];
    int s;
    samples[0] = vi(INT64_MAX);
    samples[1] = vf(-2.5);
    samples[2] = vstr("a\0bc", 4);
    samples[3] = vstr("", 0);
    for (s = 0; s < 4; s++) {
      df__key_enc(&samples[s], a, sizeof a, &la);
      for (i = 0; i < la; i++) CHECK_EQ_INT(dec_exact(a, i, &d), DF_ECORRUPT);
      CHECK_EQ_INT(dec_exact(a, la, &d), 0);
    }
  }
  /* bad string escapes, unknown tags */
  CHECK_EQ_INT(dec_exact((const unsigned char *)"\x20"
                                                "a\0\2",
                         4, &d),
               DF_ECORRUPT);
  CHECK_EQ_INT(dec_exact((const unsigned char *)"\x20"
                                                "a\0",
                         3, &d),
               DF_ECORRUPT);
  CHECK_EQ_INT(dec_exact((const unsigned char *)"\x00", 1, &d), DF_ECORRUPT);
  CHECK_EQ_INT(dec_exact((const unsigned char *)"\x11", 1, &d), DF_ECORRUPT);
  CHECK_EQ_INT(dec_exact((const unsigned char *)"\xff", 1, &d), DF_ECORRUPT);
  /* non-canonical numbers */
  bad[0] = DF_TAG_NUM;
  bits = 0x8000000000000000ull; /* -0.0 in memcomparable form */
  df__key_put_u64(bad + 1, ~bits);
  bad[9] = bad[10] = 0;
  CHECK_EQ_INT(dec_exact(bad, 11, &d), DF_ECORRUPT);
  bits = 0x7ff8000000000000ull; /* NaN */
  df__key_put_u64(bad + 1, bits ^ 0x8000000000000000ull);
  CHECK_EQ_INT(dec_exact(bad, 11, &d), DF_ECORRUPT);
  v = vf(2.5); /* r on a fractional D */
  df__key_enc(&v, bad, sizeof bad, &la);
  bad[10] = 1;
  CHECK_EQ_INT(dec_exact(bad, 11, &d), DF_ECORRUPT);
  v = vf(1.0); /* r on a small integer D: 1 + 1 is its own double */
  df__key_enc(&v, bad, sizeof bad, &la);
  bad[10] = 1;
  CHECK_EQ_INT(dec_exact(bad, 11, &d), DF_ECORRUPT);
  v = vf(nextafter(9223372036854775808.0, 0)); /* spacing 1024 there */
  df__key_enc(&v, bad, sizeof bad, &la);
  bad[9] = 0x03;
  bad[10] = 0xff;
  CHECK_EQ_INT(dec_exact(bad, 11, &d), 0);
  bad[9] = 0x04;
  bad[10] = 0x00;
  CHECK_EQ_INT(dec_exact(bad, 11, &d), DF_ECORRUPT);
  v = vf(INFINITY);
  df__key_enc(&v, bad, sizeof bad, &la);
  CHECK_EQ_INT(dec_exact(bad, 11, &d), 0);
  CHECK(d.type == DF_TFLOAT && isinf(d.f) && d.f > 0);
  bad[10] = 1;
  CHECK_EQ_INT(dec_exact(bad, 11, &d), DF_ECORRUPT);

  /* random bytes: only 0 or DF_ECORRUPT, never out of bounds, and a
   * successful decode re-encodes to the same bytes */
  for (k = 0; k < 300000; k++) {
    unsigned char buf[24];
    size_t n = rnd() % sizeof buf;
    int rc;
    for (i = 0; i < n; i++) {
      uint64_t r = rnd() % 10;
      buf[i] = r < 3 ? (unsigned char)(r == 0   ? 0
                                       : r == 1 ? 1
                                                : 0xff)
                     : (unsigned char)rnd();
    }
    if (n && (k & 1)) buf[0] = (k & 2) ? DF_TAG_NUM : DF_TAG_STR;
    rc = dec_exact(buf, n, &d);
    if (rc != 0 && rc != DF_ECORRUPT) wrong++;
    if (rc == 0 && buf[0] != DF_TAG_HASHED) {
      unsigned char re[64];
      size_t lr;
      /* d.s pointed into dec_exact's scratch; re-decode for the check */
      const unsigned char *p = buf;
      char sc[64];
      df__key_dec(&p, buf + n, &d, sc, sizeof sc);
      if (df__key_enc(&d, re, sizeof re, &lr) || lr != (size_t)(p - buf) ||
          memcmp(re, buf, lr))
        wrong++;
    }
  }
  CHECK_EQ_INT(wrong, 0);
}

static void test_partition(void) {
  static char s[DF_PK_MAX + 10];
  static unsigned char full[2 * DF_PK_MAX + 16];
  unsigned char out[DF_PK_INLINE_MAX], e[DF_PK_INLINE_MAX];
  size_t lo, le, lf, n;
  uint64_t h;
  df_value v, d;
  const unsigned char *p;

  for (n = 0; n < sizeof s; n++) s[n] = (char)('a' + n % 26);
  /* inline up to an encoded length of DF_PK_INLINE_MAX */
  v = vstr(s, DF_PK_INLINE_MAX - 3);
  CHECK_EQ_INT(df__key_enc_partition(&v, out, &lo, &h), 0);
  CHECK_EQ_UINT(lo, DF_PK_INLINE_MAX);
  CHECK_EQ_INT(df__key_enc(&v, e, sizeof e, &le), 0);
  CHECK_EQ_MEM(out, lo, e, le);
  CHECK_EQ_UINT(h, df__hash64(e, le, 0));
  v = vi(12345);
  CHECK_EQ_INT(df__key_enc_partition(&v, out, &lo, &h), 0);
  CHECK_EQ_UINT(lo, DF_NUM_ENC_LEN);
  CHECK_EQ_UINT(h, df__hash64(out, lo, 0));
  CHECK_EQ_INT(df__key_enc_partition(&v, out, &lo, NULL), 0);
  /* one byte more: hashed */
  for (n = DF_PK_INLINE_MAX - 2; n <= DF_PK_MAX; n += (n < 200 ? 1 : 37)) {
    v = vstr(s, n);
    CHECK_EQ_INT(df__key_enc_partition(&v, out, &lo, &h), 0);
    CHECK_EQ_UINT(lo, 17);
    CHECK_EQ_INT(out[0], DF_TAG_HASHED);
    CHECK_EQ_INT(df__key_enc(&v, full, sizeof full, &lf), 0);
    CHECK_EQ_UINT(h, df__hash64(full, lf, 0));
  }
  /* a NUL byte pushes a 61-byte string over the inline limit */
  s[5] = '\0';
  v = vstr(s, DF_PK_INLINE_MAX - 3);
  CHECK_EQ_INT(df__key_enc_partition(&v, out, &lo, &h), 0);
  CHECK_EQ_UINT(lo, 17);
  CHECK_EQ_INT(df__key_enc(&v, full, sizeof full, &lf), 0);
  CHECK_EQ_UINT(h, df__hash64(full, lf, 0));
  /* NULs everywhere (encoding twice as long as the string) */
  memset(s, 0, DF_PK_MAX);
  v = vstr(s, DF_PK_MAX);
  CHECK_EQ_INT(df__key_enc_partition(&v, out, &lo, &h), 0);
  CHECK_EQ_INT(df__key_enc(&v, full, sizeof full, &lf), 0);
  CHECK_EQ_UINT(lf, 2 * DF_PK_MAX + 3);
  CHECK_EQ_UINT(h, df__hash64(full, lf, 0));
  v = vstr(s, DF_PK_MAX + 1);
  CHECK_EQ_INT(df__key_enc_partition(&v, out, &lo, &h), DF_EVALIDATION);
  /* hashed values decode as 16 bytes of bin; different values differ */
  for (n = 0; n < sizeof s; n++) s[n] = (char)('a' + n % 26);
  v = vstr(s, 100);
  df__key_enc_partition(&v, out, &lo, &h);
  p = out;
  CHECK_EQ_INT(df__key_dec(&p, out + lo, &d, NULL, 0), 0);
  CHECK(d.type == DF_TBIN && d.n == 16 && d.s == (const char *)out + 1);
  CHECK(p == out + 17);
  CHECK(df__key_get_u64(out + 1) != df__key_get_u64(out + 9));
  {
    unsigned char out2[DF_PK_INLINE_MAX];
    size_t lo2;
    uint64_t h2;
    s[99] = 'A';
    df__key_enc_partition(&v, out2, &lo2, &h2);
    CHECK(h != h2);
    CHECK(memcmp(out + 1, out2 + 1, 8) != 0);
    CHECK(memcmp(out + 9, out2 + 9, 8) != 0);
  }
}

static void test_hash_spread(void) {
  long bucket[16] = {0};
  int i, worst = 0;
  char name[32];
  uint64_t a, b;
  for (i = 0; i < 10000; i++) {
    int n = snprintf(name, sizeof name, "user#%d", i);
    bucket[df__hash64(name, (size_t)n, 0) >> 60]++;
  }
  for (i = 0; i < 16; i++) {
    int dev = (int)labs(bucket[i] - 625);
    if (dev > worst) worst = dev;
  }
  CHECK(worst <= 125); /* within 20% of the mean */
  /* the same over encoded keys (what the partition prefix hashes) */
  memset(bucket, 0, sizeof bucket);
  for (i = 0; i < 10000; i++) {
    unsigned char out[DF_PK_INLINE_MAX];
    size_t lo;
    uint64_t h;
    df_value v = vi(i);
    df__key_enc_partition(&v, out, &lo, &h);
    bucket[h >> 60]++;
  }
  worst = 0;
  for (i = 0; i < 16; i++) {
    int dev = (int)labs(bucket[i] - 625);
    if (dev > worst) worst = dev;
  }
  CHECK(worst <= 125);
  /* seeds matter; neighbours differ in about half the bits */
  CHECK(df__hash64("x", 1, 0) != df__hash64("x", 1, 1));
  CHECK(df__hash64("", 0, 0) != df__hash64("", 0, 1));
  a = df__hash64("user#1", 6, 0);
  b = df__hash64("user#2", 6, 0);
  {
    uint64_t x = a ^ b;
    int bits = 0;
    while (x) {
      bits += (int)(x & 1);
      x >>= 1;
    }
    CHECK(bits > 16 && bits < 48);
  }
  CHECK_EQ_UINT(df__hash64("abc", 3, 7), df__hash64("abc", 3, 7));
}

int main(void) {
  RUN_TEST(test_u64);
  RUN_TEST(test_order_and_roundtrip);
  RUN_TEST(test_random_pairs);
  RUN_TEST(test_special);
  RUN_TEST(test_hostile_decode);
  RUN_TEST(test_partition);
  RUN_TEST(test_hash_spread);
  return check_done("test_key");
}
