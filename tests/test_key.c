/*
 * test_key.c -- unit tests for key.c: order preservation of the key
 * encoding over many generated values, round trips, canonical decoding,
 * partition-key hashing and the spread of df__hash64's high bits.
 *
 * The reference order for numbers is that of their decimal values (a
 * double's is the integer it is inside the int64 range, else its shortest
 * decimal): long double comparison where that is
 * exact (x86-64's 64-bit mantissa), the double order between doubles, and
 * decimal.c's comparison (tested against independent references in
 * test_decimal) for decimals of up to 38 digits.  Strings sort before
 * binaries.
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
  return v->type == DF_TINT || v->type == DF_TUINT || v->type == DF_TFLOAT ||
         v->type == DF_TDECIMAL;
}

/* The shortest decimal of f, as a long double (exact for the integers a
 * double in [2^53, 2^64) stands for). */
static long double shortest_ld(double f) {
  char buf[40];
  int p;
  for (p = 1; p <= 17; p++) {
    snprintf(buf, sizeof buf, "%.*e", p - 1, f);
    if (strtod(buf, NULL) == f) break;
  }
  return strtold(buf, NULL);
}

static int ld_cmp(long double x, long double y) {
  return x < y ? -1 : x > y;
}

static int num_ref(const df_value *a, const df_value *b) {
  const double two53 = 9007199254740992.0, two63 = 9223372036854775808.0,
               two64 = 18446744073709551616.0;
  long double x, y;
  if (a->type == DF_TDECIMAL || b->type == DF_TDECIMAL || LDBL_MANT_DIG < 64) {
    df_dec da, db;
    df__dec_from_value(a, &da);
    df__dec_from_value(b, &db);
    return df__dec_cmp(&da, &db);
  }
  if (a->type == DF_TFLOAT && b->type == DF_TFLOAT)
    return a->f < b->f ? -1 : a->f > b->f;
  if (b->type == DF_TFLOAT) return -num_ref(b, a);
  if (a->type == DF_TFLOAT) { /* a float against an integer */
    y = b->type == DF_TINT ? (long double)b->i : (long double)b->u;
    if (fabs(a->f) >= two64) return a->f > 0 ? 1 : -1;
    x = fabs(a->f) < two53 || (a->f >= -two63 && a->f < two63)
            ? (long double)a->f
            : shortest_ld(a->f);
    return ld_cmp(x, y);
  }
  x = a->type == DF_TINT ? (long double)a->i : (long double)a->u;
  y = b->type == DF_TINT ? (long double)b->i : (long double)b->u;
  return ld_cmp(x, y);
}

/* Reference order: numbers numerically, then strings, then binaries;
 * strings and binaries bytewise then by length. */
static int ref_cmp(const df_value *a, const df_value *b) {
  if (is_num(a) != is_num(b)) return is_num(a) ? -1 : 1;
  if (is_num(a)) return num_ref(a, b);
  if (a->type != b->type) return a->type == DF_TSTR ? -1 : 1;
  {
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
static unsigned char decs[MAXV][DF_NUM_ENC_MAX];
static size_t nvals;

static void add(df_value v) {
  if (nvals < MAXV) vals[nvals++] = v;
}

static void add_str(const char *s, size_t n) {
  if (nvals >= MAXV || n > SMAX) return;
  memcpy(strs[nvals], s, n);
  add(vstr(strs[nvals], n));
}

static void add_bin(const char *s, size_t n) {
  if (nvals >= MAXV || n > SMAX) return;
  memcpy(strs[nvals], s, n);
  add(vstr(strs[nvals], n));
  vals[nvals - 1].type = DF_TBIN;
}

/* A decimal value (DF_TDECIMAL when no int, uint or double holds it). */
static void add_dec(const char *text) {
  df_dec d;
  df_value v;
  size_t n;
  if (nvals >= MAXV || df__dec_parse(text, strlen(text), &d) != DF_DEC_OK)
    return;
  n = df__dec_enc(&d, decs[nvals]);
  memset(&v, 0, sizeof v);
  v.type = DF_TDECIMAL;
  v.s = (const char *)decs[nvals];
  v.n = n;
  add(v);
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
  /* decimals of up to 38 digits, between and beyond the doubles */
  add_dec("0.10000000000000001");
  add_dec("0.1000000000000000055511151231257827");
  add_dec("12345678901234567890123456789012345678");
  add_dec("-12345678901234567890123456789012345678");
  add_dec("9223372036854775807.5");
  add_dec("9223372036854775808.5");
  add_dec("18446744073709551616");
  add_dec("1e-130");
  add_dec("-1e-130");
  add_dec("9.9999999999999999999999999999999999999e125");
  add_dec("1152921504606846977");
  for (i = 0; i < 400; i++) {
    char t[64];
    size_t m = 0, nd = 1 + rnd() % 38, q;
    if (rnd() % 2) t[m++] = '-';
    for (q = 0; q < nd; q++) t[m++] = (char)('0' + rnd() % 10);
    snprintf(t + m, sizeof t - m, "e%d", (int)(rnd() % 60) - 30 - (int)nd / 2);
    add_dec(t);
  }
  /* binaries, after every string */
  add_bin("", 0);
  add_bin("\0", 1);
  add_bin("a", 1);
  add_bin("a\0", 2);
  add_bin("\xff", 1);
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
    if (i % 4 == 3)
      add_bin(s, n);
    else
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
  if ((a->type == DF_TSTR || a->type == DF_TBIN) && a->type == b->type)
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
    if (is_num(&vals[i])) CHECK(elen[i] <= DF_NUM_ENC_MAX);
    p = enc[i];
    if (df__key_dec(&p, enc[i] + elen[i], &d, scratch, sizeof scratch) ||
        p != enc[i] + elen[i] || !same_value(&d, &vals[i]))
      bad_rt++;
    /* the documented decoded types: an int whenever the value (of a float:
     * see decimal.c) is one */
    if (d.type == DF_TFLOAT) {
      df_dec x;
      int64_t iv;
      df__dec_from_double(d.f, &x);
      if (df__dec_int64(&x, &iv)) bad_type++;
    }
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
    unsigned char ea[DF_NUM_ENC_MAX], eb[DF_NUM_ENC_MAX];
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
  unsigned char a[64], b[64];
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
  CHECK_EQ_INT(a[0], DF_TAG_NUM_POS);
  v = vi(0);
  df__key_enc(&v, a, sizeof a, &la);
  v = vf(-0.0);
  df__key_enc(&v, b, sizeof b, &lb);
  CHECK_EQ_MEM(a, la, b, lb);
  CHECK(la == 1 && a[0] == DF_TAG_NUM_ZERO);
  /* the double 2^63 is 9223372036854776000: above the uint 2^63 */
  v = vu((uint64_t)1 << 63);
  df__key_enc(&v, a, sizeof a, &la);
  v = vf(9223372036854775808.0);
  df__key_enc(&v, b, sizeof b, &lb);
  CHECK(enc_cmp(a, la, b, lb) < 0);
  v = vu(9223372036854776000ull);
  df__key_enc(&v, a, sizeof a, &la);
  CHECK_EQ_MEM(a, la, b, lb);
  /* decoded types: an int, a uint or a float when one holds the value */
  p = b;
  CHECK_EQ_INT(df__key_dec(&p, b + lb, &d, NULL, 0), 0);
  CHECK(d.type == DF_TUINT && d.u == 9223372036854776000ull);
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
  v = vf(-INFINITY);
  df__key_enc(&v, a, sizeof a, &la);
  CHECK(la == 1 && a[0] == DF_TAG_NUM_NEGINF);
  p = a;
  CHECK_EQ_INT(df__key_dec(&p, a + la, &d, NULL, 0), 0);
  CHECK(d.type == DF_TFLOAT && isinf(d.f) && d.f < 0);
  {
    df_dec x;
    df__dec_parse("0.10000000000000001", 19, &x);
    memset(&v, 0, sizeof v);
    v.type = DF_TDECIMAL;
    v.s = (const char *)b;
    v.n = df__dec_enc(&x, b);
    CHECK_EQ_INT(df__key_enc(&v, a, sizeof a, &la), 0);
    CHECK_EQ_MEM(a, la, b, v.n);
    p = a;
    CHECK_EQ_INT(df__key_dec(&p, a + la, &d, NULL, 0), 0);
    CHECK(d.type == DF_TDECIMAL && d.n == la && d.s == (const char *)a);
    v = vf(0.1);
    df__key_enc(&v, b, sizeof b, &lb);
    CHECK(enc_cmp(b, lb, a, la) < 0); /* 0.1 < 0.10000000000000001 */
  }

  /* refused values */
  v = vf(NAN);
  CHECK_EQ_INT(df__key_enc(&v, a, sizeof a, &la), DF_EVALIDATION);
  CHECK_EQ_INT(df__key_enc_partition(&v, a, &la, NULL), DF_EVALIDATION);
  CHECK_EQ_INT(df__key_enc_sort(&v, a, &la, NULL), DF_EVALIDATION);
  memset(&v, 0, sizeof v);
  for (i = DF_TNONE; i <= DF_TBS; i++) {
    v.type = (df_type)i;
    if (is_num(&v) || v.type == DF_TSTR || v.type == DF_TBIN) continue;
    CHECK_EQ_INT(df__key_enc(&v, a, sizeof a, &la), DF_EVALIDATION);
    CHECK_EQ_INT(df__key_enc_sort(&v, a, &la, NULL), DF_EVALIDATION);
  }
  /* capacity: never truncated, never written past */
  v = vi(7); /* tag, exponent, one digit byte */
  memset(a, 0xAA, sizeof a);
  CHECK_EQ_INT(df__key_enc(&v, a, 3, &la), DF_EVALIDATION);
  CHECK_EQ_INT(a[3], 0xAA);
  CHECK_EQ_INT(df__key_enc(&v, a, 4, &la), 0);
  CHECK_EQ_UINT(la, 4);
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
  v.type = DF_TBIN; /* a binary has a tag of its own */
  CHECK_EQ_INT(df__key_enc(&v, b, sizeof b, &lb), 0);
  CHECK_EQ_MEM(a + 1, la - 1, b + 1, lb - 1);
  CHECK_EQ_INT(b[0], DF_TAG_BIN);
  CHECK(enc_cmp(a, la, b, lb) < 0);
  p = b;
  CHECK_EQ_INT(df__key_dec(&p, b + lb, &d, scratch, 4), 0);
  CHECK(d.type == DF_TBIN && d.n == 4 && !memcmp(d.s, "ab\0c", 4) && !d.u);
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
    CHECK_EQ_UINT(df__key_part_len(two, two + l1 + l2, NULL), l1);
    CHECK_EQ_UINT(df__key_part_len(two + l1, two + l1 + l2, NULL), l2);
  }
}

/* Sort values up to DF_SK_MAX bytes: in full up to DF_SK_PREFIX encoded
 * bytes, beyond that a prefix and a hash. */
static void test_long_sort_values(void) {
  static char s[DF_SK_MAX + 8];
  static unsigned char full[2 * DF_SK_MAX + 8];
  unsigned char a[DF_SK_LONG_LEN + 8], b[DF_SK_LONG_LEN + 8];
  size_t la, lb, lf, n;
  int is_long;
  df_value v, w, d;
  const unsigned char *p;
  static char scratch[DF_SK_MAX];

  for (n = 0; n < sizeof s; n++) s[n] = (char)('a' + n % 26);
  /* inline up to DF_SK_PREFIX encoded bytes */
  v = vstr(s, DF_SK_PREFIX - 3);
  CHECK_EQ_INT(df__key_enc_sort(&v, a, &la, &is_long), 0);
  CHECK(la == DF_SK_PREFIX && !is_long);
  CHECK_EQ_INT(df__key_enc(&v, full, sizeof full, &lf), 0);
  CHECK_EQ_MEM(a, la, full, lf);
  CHECK_EQ_UINT(df__key_part_len(a, a + la, &is_long), la);
  CHECK(!is_long);
  /* one byte more: the first DF_SK_PREFIX bytes and 16 hash bytes */
  for (n = DF_SK_PREFIX - 2; n <= DF_SK_MAX; n += n < 200 ? 1 : 41) {
    v = vstr(s, n);
    memset(a, 0xAA, sizeof a);
    CHECK_EQ_INT(df__key_enc_sort(&v, a, &la, &is_long), 0);
    CHECK(la == DF_SK_LONG_LEN && is_long);
    CHECK_EQ_INT(a[DF_SK_LONG_LEN], 0xAA);
    CHECK_EQ_INT(df__key_enc(&v, full, sizeof full, &lf), 0);
    CHECK(memcmp(a, full, DF_SK_PREFIX) == 0);
    CHECK_EQ_UINT(df__key_part_len(a, a + la, &is_long), DF_SK_LONG_LEN);
    CHECK(is_long);
    p = a;
    CHECK_EQ_INT(df__key_dec(&p, a + la, &d, scratch, sizeof scratch), 0);
    CHECK(p == a + la && d.type == DF_TSTR && d.u == DF_KEY_PARTIAL);
    /* the prefix of the value (a terminator cut after its first byte
     * reads as an escaped NUL: only the prefix's bytes matter) */
    CHECK(d.n == DF_SK_PREFIX - 1 && !memcmp(d.s, s, n < d.n ? n : d.n));
    /* a value sharing the prefix has another hash */
    if (n < DF_SK_PREFIX) continue;
    s[n - 1] = 'Z';
    w = vstr(s, n);
    CHECK_EQ_INT(df__key_enc_sort(&w, b, &lb, NULL), 0);
    CHECK(memcmp(a, b, DF_SK_PREFIX) == 0);
    CHECK(memcmp(a + DF_SK_PREFIX, b + DF_SK_PREFIX, 16) != 0);
    s[n - 1] = (char)('a' + (n - 1) % 26);
  }
  v = vstr(s, DF_SK_MAX + 1);
  CHECK_EQ_INT(df__key_enc_sort(&v, a, &la, NULL), DF_EVALIDATION);
  /* binaries too, and NUL bytes: a NUL escape cut by the prefix */
  memset(s, 0, DF_SK_MAX);
  v = vstr(s, DF_SK_MAX);
  v.type = DF_TBIN;
  CHECK_EQ_INT(df__key_enc_sort(&v, a, &la, &is_long), 0);
  CHECK(is_long && a[0] == DF_TAG_BIN);
  CHECK_EQ_UINT(df__key_part_len(a, a + la, NULL), DF_SK_LONG_LEN);
  p = a;
  CHECK_EQ_INT(df__key_dec(&p, a + la, &d, scratch, sizeof scratch), 0);
  CHECK(d.type == DF_TBIN && d.u == DF_KEY_PARTIAL && p == a + la);
  CHECK_EQ_UINT(d.n, (DF_SK_PREFIX - 1 + 1) / 2); /* 0 FF pairs, one cut */
  for (n = 0; n < 8; n++) { /* the cut falls on either byte of an escape */
    memset(s, 'x', DF_SK_MAX);
    s[DF_SK_PREFIX - 2 - n] = '\0';
    v = vstr(s, 300);
    CHECK_EQ_INT(df__key_enc_sort(&v, a, &la, NULL), 0);
    CHECK_EQ_UINT(df__key_part_len(a, a + la, NULL), DF_SK_LONG_LEN);
    p = a;
    CHECK_EQ_INT(df__key_dec(&p, a + la, &d, scratch, sizeof scratch), 0);
    CHECK(p == a + la);
  }
  /* order: a long value against short ones is its value order */
  {
    static char t[400];
    int k;
    long bad = 0;
    for (k = 0; k < 20000; k++) {
      size_t n1 = 150 + rnd() % 60, n2 = rnd() % 250, q;
      df_value x, y;
      unsigned char ex[DF_SK_LONG_LEN], ey[DF_SK_LONG_LEN];
      size_t lx, ly;
      int lgx, lgy, want, got;
      for (q = 0; q < n1; q++) s[q] = (char)('a' + rnd() % 2);
      memcpy(t, s, n1 < n2 ? n1 : n2);
      for (q = rnd() % (n2 + 1); q < n2; q++) t[q] = (char)('a' + rnd() % 3);
      x = vstr(s, n1);
      y = vstr(t, n2);
      df__key_enc_sort(&x, ex, &lx, &lgx);
      df__key_enc_sort(&y, ey, &ly, &lgy);
      want = ref_cmp(&x, &y);
      got = enc_cmp(ex, lx, ey, ly);
      if (lgx && lgy && memcmp(ex, ey, DF_SK_PREFIX) == 0) {
        if ((want == 0) != (got == 0)) bad++; /* the hash tells apart */
      } else if (want != got) {
        bad++;
      }
    }
    CHECK_EQ_INT(bad, 0);
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
  unsigned char a[64];
  size_t la, i;
  df_value d;
  long wrong = 0;
  int k;

  /* every truncation of every kind */
  {
    df_value samples[5];
    int sm;
    samples[0] = vi(INT64_MAX);
    samples[1] = vf(-2.5);
    samples[2] = vstr("a\0bc", 4);
    samples[3] = vstr("", 0);
    samples[4] = vstr("xy", 2);
    samples[4].type = DF_TBIN;
    for (sm = 0; sm < 5; sm++) {
      df__key_enc(&samples[sm], a, sizeof a, &la);
      for (i = 0; i < la; i++) {
        CHECK_EQ_INT(dec_exact(a, i, &d), DF_ECORRUPT);
        CHECK_EQ_UINT(df__key_part_len(a, a + i, NULL), 0);
      }
      CHECK_EQ_INT(dec_exact(a, la, &d), 0);
      CHECK_EQ_UINT(df__key_part_len(a, a + la, NULL), la);
    }
  }
  /* bad string escapes, unknown tags */
  CHECK_EQ_INT(dec_exact((const unsigned char *)"\x20"
                                                "a\0\2",
                         4, &d),
               DF_ECORRUPT);
  CHECK_EQ_INT(dec_exact((const unsigned char *)"\x28"
                                                "a\0",
                         3, &d),
               DF_ECORRUPT);
  CHECK_EQ_INT(dec_exact((const unsigned char *)"\x00", 1, &d), DF_ECORRUPT);
  CHECK_EQ_INT(dec_exact((const unsigned char *)"\x15", 1, &d), DF_ECORRUPT);
  CHECK_EQ_INT(dec_exact((const unsigned char *)"\xff", 1, &d), DF_ECORRUPT);
  /* non-canonical numbers: a trailing zero digit, no digit, a leading
   * zero digit, a digit nibble past 10 */
  CHECK_EQ_INT(dec_exact((const unsigned char *)"\x13\x80\x01\x21", 4, &d),
               DF_ECORRUPT);
  CHECK_EQ_INT(dec_exact((const unsigned char *)"\x13\x80\x01\x00", 4, &d),
               DF_ECORRUPT);
  CHECK_EQ_INT(dec_exact((const unsigned char *)"\x13\x80\x01\x12\x00", 5, &d),
               DF_ECORRUPT);
  CHECK_EQ_INT(dec_exact((const unsigned char *)"\x13\x80\x01\xc0", 4, &d),
               DF_ECORRUPT);
  CHECK_EQ_INT(dec_exact((const unsigned char *)"\x13\x80\x01\x20", 4, &d), 0);
  CHECK(d.type == DF_TINT && d.i == 1);

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
    if (n && (k & 1))
      buf[0] = (k & 2)   ? (unsigned char)(DF_TAG_NUM_NEGINF + rnd() % 5)
               : (k & 4) ? DF_TAG_STR
                         : DF_TAG_BIN;
    if (n > 1 && (k & 8) && buf[0] == DF_TAG_NUM_POS) buf[1] = 0x80;
    rc = dec_exact(buf, n, &d);
    if (rc != 0 && rc != DF_ECORRUPT) wrong++;
    if ((rc == 0) != (df__key_part_len(buf, buf + n, NULL) > 0)) wrong++;
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
      if (df__key_part_len(buf, buf + n, NULL) != (size_t)(p - buf)) wrong++;
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
  CHECK_EQ_INT(df__key_enc(&v, e, sizeof e, &le), 0);
  CHECK_EQ_MEM(out, lo, e, le);
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
  /* a binary of the same bytes is another value, with another hash */
  {
    unsigned char o2[DF_PK_INLINE_MAX];
    size_t l2;
    uint64_t h2;
    v = vstr(s, 10);
    df__key_enc_partition(&v, out, &lo, &h);
    v.type = DF_TBIN;
    df__key_enc_partition(&v, o2, &l2, &h2);
    CHECK(h != h2 && o2[0] == DF_TAG_BIN);
    v = vstr(s, 100);
    df__key_enc_partition(&v, out, &lo, &h);
    v.type = DF_TBIN;
    df__key_enc_partition(&v, o2, &l2, &h2);
    CHECK(h != h2 && memcmp(out, o2, 17) != 0);
  }
  /* hashed values decode as 16 bytes of bin; different values differ */
  for (n = 0; n < sizeof s; n++) s[n] = (char)('a' + n % 26);
  v = vstr(s, 100);
  df__key_enc_partition(&v, out, &lo, &h);
  p = out;
  CHECK_EQ_INT(df__key_dec(&p, out + lo, &d, NULL, 0), 0);
  CHECK(d.type == DF_TBIN && d.n == 16 && d.s == (const char *)out + 1 &&
        d.u == DF_KEY_PARTIAL);
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
  RUN_TEST(test_long_sort_values);
  RUN_TEST(test_hostile_decode);
  RUN_TEST(test_partition);
  RUN_TEST(test_hash_spread);
  return check_done("test_key");
}
