/*
 * test_decimal.c -- unit tests for decimal.c: DynamoDB's number syntax and
 * limits, canonical printing, shortest decimals of doubles, conversions,
 * comparison, the order-preserving encoding (generated values across
 * integers, doubles and decimals) and exact addition.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void) {
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return rng_state = x;
}

static df_dec parse(const char *s) {
  df_dec d;
  int rc = df__dec_parse(s, strlen(s), &d);
  if (!CHECK(rc == DF_DEC_OK)) fprintf(stderr, "  parsing %s: %d\n", s, rc);
  return d;
}

static const char *str(const df_dec *d) {
  static char buf[DF_DEC_STR_MAX];
  size_t n = df__dec_str(d, buf, sizeof buf);
  CHECK(n < sizeof buf);
  return buf;
}

static void check_canonical(const char *in, const char *want) {
  df_dec d = parse(in);
  if (!CHECK(strcmp(str(&d), want) == 0))
    fprintf(stderr, "  %s -> %s, want %s\n", in, str(&d), want);
}

static void test_syntax_and_canonical_form(void) {
  check_canonical("12.5e3", "12500");
  check_canonical("0001.2300", "1.23");
  check_canonical("-0", "0");
  check_canonical("+3", "3");
  check_canonical(".123", "0.123");
  check_canonical("1.", "1");
  check_canonical("1e+5", "100000");
  check_canonical("0e1000", "0");
  check_canonical("-0.000", "0");
  check_canonical("-1E-3", "-0.001");
  check_canonical("-17.4E37", "-174000000000000000000000000000000000000");
  check_canonical("100", "100");
  check_canonical("0.5", "0.5");
  check_canonical("12345678901234567890123456789012345678900000000000000",
                  "12345678901234567890123456789012345678900000000000000");
  {
    const char *bad[] = {"",    "dog", " 1",    "1 ",  "NaN", "Infinity",
                         "-",   "+",   ".",     "1e",  "e5",  "1.2.3",
                         "1e+", "0x1", "1e5.5", "--1", "1,5", "\x31\x00"};
    size_t i;
    df_dec d;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
      size_t n = i + 1 == sizeof bad / sizeof bad[0] ? 2 : strlen(bad[i]);
      CHECK_EQ_INT(df__dec_parse(bad[i], n, &d), DF_DEC_SYNTAX);
    }
    CHECK_EQ_INT(df__dec_parse(NULL, 0, &d), DF_DEC_SYNTAX);
  }
}

static void test_dynamodb_range(void) {
  df_dec d;
  char max[80];
  snprintf(max, sizeof max, "9.%se+125",
           "9999999999999999999999999999999999999");
  d = parse(max);
  CHECK_EQ_INT(df__dec_range(&d), DF_DEC_OK);
  CHECK_EQ_INT(d.n, 38);
  d = parse("1e-130");
  CHECK_EQ_INT(df__dec_range(&d), DF_DEC_OK);
  d = parse("-1e-130");
  CHECK_EQ_INT(df__dec_range(&d), DF_DEC_OK);
  d = parse("1e126");
  CHECK_EQ_INT(df__dec_range(&d), DF_DEC_OVERFLOW);
  d = parse("11e125");
  CHECK_EQ_INT(df__dec_range(&d), DF_DEC_OVERFLOW);
  d = parse("1e-131");
  CHECK_EQ_INT(df__dec_range(&d), DF_DEC_UNDERFLOW);
  d = parse("0.9e-130");
  CHECK_EQ_INT(df__dec_range(&d), DF_DEC_UNDERFLOW);
  d = parse("1e999999999999999999");
  CHECK_EQ_INT(df__dec_range(&d), DF_DEC_OVERFLOW);
  d = parse("1e-999999999999999999");
  CHECK_EQ_INT(df__dec_range(&d), DF_DEC_UNDERFLOW);
  d = parse("12345678901234567890123456789012345678");
  CHECK_EQ_INT(df__dec_range(&d), DF_DEC_OK);
  d = parse("123456789012345678901234567890123456789");
  CHECK_EQ_INT(df__dec_range(&d), DF_DEC_PRECISION);
  d = parse(
      "1"
      "000000000000000000000000000000000000000000000000000");
  CHECK_EQ_INT(df__dec_range(&d), DF_DEC_OK); /* trailing zeros are free */
  CHECK_EQ_INT(
      df__dec_parse("1234567890123456789012345678901234567890123", 43, &d),
      DF_DEC_PRECISION);
  CHECK(strstr(df__dec_msg(DF_DEC_OVERFLOW), "Number overflow") != NULL);
  CHECK(strstr(df__dec_msg(DF_DEC_PRECISION), "38 significant") != NULL);
  d = parse("0");
  CHECK_EQ_INT(df__dec_range(&d), DF_DEC_OK);
}

/* A double's value: the integer it is within the int64 range, else its
 * shortest decimal. */
static void test_doubles_give_their_shortest_decimal(void) {
  struct {
    double f;
    const char *s;
  } cases[] = {{0.1, "0.1"},
               {1.0, "1"},
               {-2.5, "-2.5"},
               {0.1 + 0.2, "0.30000000000000004"},
               {1152921504606846976.0, "1152921504606846976"},   /* 2^60 */
               {-4611686018427387904.0, "-4611686018427387904"}, /* -2^62 */
               {-9223372036854775808.0, "-9223372036854775808"}, /* -2^63 */
               {9223372036854775808.0, "9223372036854776000"},   /* 2^63 */
               {18446744073709551616.0, "18446744073709552000"}, /* 2^64 */
               {1e20, "100000000000000000000"},
               {1e-7, "0.0000001"},
               {5e-324, NULL},
               {DBL_MAX, NULL},
               {-0.0, "0"},
               {9007199254740993.0, "9007199254740992"}};
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    df_dec d;
    double back;
    CHECK_EQ_INT(df__dec_from_double(cases[i].f, &d), DF_DEC_OK);
    if (cases[i].s && !CHECK(strcmp(str(&d), cases[i].s) == 0))
      fprintf(stderr, "  %.17g -> %s\n", cases[i].f, str(&d));
    CHECK(df__dec_double(&d, &back) == 1 || cases[i].f == 0);
    CHECK(back == cases[i].f);
  }
  /* generated doubles: the digits read back, and one digit fewer does not
   * (an integer in the int64 range: its digits, exactly) */
  for (i = 0; i < 20000; i++) {
    uint64_t bits = rnd();
    double f, back;
    df_dec d;
    char buf[64];
    int64_t iv;
    memcpy(&f, &bits, 8);
    if (i % 4 == 0)
      f = ldexp((double)(bits >> 11), (int)(rnd() % 12)); /* big integers */
    if (isnan(f) || isinf(f)) continue;
    CHECK_EQ_INT(df__dec_from_double(f, &d), DF_DEC_OK);
    CHECK(df__dec_double(&d, &back) && back == f);
    if (f == floor(f) && f >= -9223372036854775808.0 &&
        f < 9223372036854775808.0) {
      CHECK(df__dec_int64(&d, &iv) && (double)iv == f && iv == (int64_t)f);
      continue;
    }
    CHECK(d.n <= 17);
    if (d.n > 1) {
      snprintf(buf, sizeof buf, "%.*e", d.n - 2, f);
      CHECK(strtod(buf, NULL) != f);
    }
  }
  {
    df_dec d;
    CHECK_EQ_INT(df__dec_from_double(NAN, &d), DF_DEC_NAN);
    CHECK_EQ_INT(df__dec_from_double(-INFINITY, &d), DF_DEC_OK);
    CHECK(d.inf && d.sign < 0);
    CHECK(strcmp(str(&d), "-inf") == 0);
  }
}

static void test_integers_and_exactness(void) {
  df_dec d;
  int64_t i;
  uint64_t u;
  double f;
  df__dec_from_int(INT64_MIN, &d);
  CHECK(strcmp(str(&d), "-9223372036854775808") == 0);
  CHECK(df__dec_int64(&d, &i) && i == INT64_MIN);
  CHECK(!df__dec_uint64(&d, &u));
  df__dec_from_int(INT64_MAX, &d);
  CHECK(df__dec_int64(&d, &i) && i == INT64_MAX);
  df__dec_from_uint(UINT64_MAX, &d);
  CHECK(strcmp(str(&d), "18446744073709551615") == 0);
  CHECK(!df__dec_int64(&d, &i));
  CHECK(df__dec_uint64(&d, &u) && u == UINT64_MAX);
  d = parse("18446744073709551616");
  CHECK(!df__dec_uint64(&d, &u));
  d = parse("-9223372036854775809");
  CHECK(!df__dec_int64(&d, &i));
  d = parse("1e3");
  CHECK(df__dec_int64(&d, &i) && i == 1000);
  d = parse("1.5");
  CHECK(!df__dec_int64(&d, &i));
  CHECK(df__dec_double(&d, &f) && f == 1.5);
  d = parse("0.10000000000000001");
  CHECK(!df__dec_double(&d, &f));
  CHECK(f == 0.1);
  d = parse("12345678901234567890123456789012345678");
  CHECK(!df__dec_double(&d, &f));
  d = parse("1e125");
  CHECK(df__dec_double(&d, &f) && f == 1e125);
  d = parse("9007199254740993");
  CHECK(!df__dec_double(&d, &f));
  CHECK(df__dec_int64(&d, &i) && i == 9007199254740993LL);
  d = parse("1e400");
  CHECK(!df__dec_double(&d, &f));
  for (i = 0; i < 20000; i++) {
    int64_t x = (int64_t)rnd() >> (rnd() % 64), y;
    df__dec_from_int(x, &d);
    CHECK(df__dec_int64(&d, &y) && y == x);
    d = parse(str(&d));
    CHECK(df__dec_int64(&d, &y) && y == x);
  }
}

/* A random number: integer, double, or decimal of up to 38 digits. */
static df_dec random_dec(void) {
  df_dec d;
  uint64_t k = rnd() % 8;
  if (k == 0) {
    df__dec_from_int((int64_t)rnd() >> (rnd() % 64), &d);
  } else if (k == 1) {
    df__dec_from_uint(rnd(), &d);
  } else if (k <= 3) {
    uint64_t bits = rnd();
    double f;
    memcpy(&f, &bits, 8);
    if (isnan(f)) f = (double)(rnd() % 1000) / 7.0;
    df__dec_from_double(f, &d);
  } else if (k == 4) {
    df__dec_from_double(((double)(int64_t)rnd()) / (double)(1 + rnd() % 1000),
                        &d);
  } else {
    char buf[80];
    int n = 1 + (int)(rnd() % (k == 7 ? 3 : 38)), j;
    int e = (int)(rnd() % (k == 7 ? 8 : 240)) - (k == 7 ? 4 : 120);
    size_t p = 0;
    if (rnd() % 2) buf[p++] = '-';
    for (j = 0; j < n; j++) buf[p++] = (char)('0' + rnd() % 10);
    snprintf(buf + p, sizeof buf - p, "e%d", e);
    d = parse(buf);
  }
  return d;
}

static int sign3(int c) {
  return c < 0 ? -1 : c > 0;
}

static void test_encoding_order_equals_numeric_order(void) {
  enum { N = 3000 };
  static df_dec v[N];
  static unsigned char e[N][DF_NUM_ENC_MAX];
  static size_t len[N];
  int i, j;
  for (i = 0; i < N; i++) {
    if (i < 6) {
      const char *fixed[] = {"0", "-1e-130", "1e-130", "-9e125", "9e125", "1"};
      v[i] = parse(fixed[i]);
    } else {
      v[i] = random_dec();
    }
    if (i % 97 == 0) {
      memset(&v[i], 0, sizeof v[i]);
      v[i].inf = 1;
      v[i].sign = i % 2 ? 1 : -1;
    }
    len[i] = df__dec_enc(&v[i], e[i]);
    CHECK(len[i] >= 1 && len[i] <= DF_NUM_ENC_MAX);
  }
  for (i = 0; i < N; i++) {
    df_dec back;
    size_t used;
    CHECK_EQ_INT(df__dec_dec(e[i], len[i], &back, &used), DF_OK);
    CHECK_EQ_UINT(used, len[i]);
    CHECK_EQ_INT(df__dec_cmp(&back, &v[i]), 0);
    CHECK(memcmp(&back.d, &v[i].d, (size_t)v[i].n) == 0);
    CHECK_EQ_INT(df__dec_dec(e[i], len[i] - 1, &back, &used), DF_ECORRUPT);
  }
  for (i = 0; i < N; i++)
    for (j = i; j < N; j += 1 + (int)(rnd() % 7)) {
      size_t m = len[i] < len[j] ? len[i] : len[j];
      int c = memcmp(e[i], e[j], m);
      if (c == 0) c = len[i] < len[j] ? -1 : len[i] > len[j];
      CHECK_EQ_INT(sign3(c), df__dec_cmp(&v[i], &v[j]));
    }
}

static void test_number_kinds_compare_as_decimals(void) {
  df_dec a, b;
  size_t i;
  /* the int 2^60 is the double 2^60; 1152921504606847000 (its shortest
   * decimal) is above it */
  df__dec_from_int(1152921504606846976LL, &a);
  df__dec_from_double(1152921504606846976.0, &b);
  CHECK_EQ_INT(df__dec_cmp(&a, &b), 0);
  df__dec_from_int(1152921504606847000LL, &a);
  CHECK_EQ_INT(df__dec_cmp(&a, &b), 1);
  df__dec_from_int(1, &a);
  df__dec_from_double(1.0, &b);
  CHECK_EQ_INT(df__dec_cmp(&a, &b), 0);
  b = parse("1.0000000000000000000000000000000000001");
  CHECK_EQ_INT(df__dec_cmp(&a, &b), -1);
  for (i = 0; i < 20000; i++) {
    uint64_t b1 = rnd(), b2 = rnd();
    double x, y;
    int64_t p = (int64_t)rnd() >> (rnd() % 64),
            q = (int64_t)rnd() >> (rnd() % 64);
    memcpy(&x, &b1, 8);
    memcpy(&y, &b2, 8);
    if (isnan(x) || isnan(y)) continue;
    df__dec_from_double(x, &a);
    df__dec_from_double(y, &b);
    CHECK_EQ_INT(df__dec_cmp(&a, &b), x < y ? -1 : x > y);
    df__dec_from_int(p, &a);
    df__dec_from_int(q, &b);
    CHECK_EQ_INT(df__dec_cmp(&a, &b), p < q ? -1 : p > q);
    /* an int against a double below 2^53: exact comparison is the rule */
    x = (double)((int64_t)rnd() >> 12) / (double)(1 + rnd() % 4);
    p = (int64_t)rnd() >> 12;
    df__dec_from_int(p, &a);
    df__dec_from_double(x, &b);
    CHECK_EQ_INT(df__dec_cmp(&a, &b), (long double)p < (long double)x
                                          ? -1
                                          : (long double)p > (long double)x);
  }
}

static void test_decoding_accepts_only_canonical_bytes(void) {
  unsigned char buf[32], again[DF_NUM_ENC_MAX];
  int i, accepted = 0;
  for (i = 0; i < 200000; i++) {
    size_t n = 1 + rnd() % 12, k, used;
    df_dec d;
    for (k = 0; k < n; k++) buf[k] = (unsigned char)rnd();
    buf[0] = (unsigned char)(0x10 + rnd() % 5);
    if (df__dec_dec(buf, n, &d, &used) == DF_OK) {
      accepted++;
      CHECK(used <= n);
      CHECK_EQ_UINT(df__dec_enc(&d, again), used);
      CHECK(memcmp(again, buf, used) == 0);
    }
  }
  CHECK(accepted > 1000);
  /* a trailing zero digit, a leading zero digit, a bad nibble, no end */
  {
    const unsigned char t0[] = {DF_TAG_NUM_POS, 0x80, 0x01, 0x21, 0x00};
    const unsigned char t1[] = {DF_TAG_NUM_POS, 0x80, 0x01, 0x12, 0x00};
    const unsigned char t2[] = {DF_TAG_NUM_POS, 0x80, 0x01, 0x2c, 0x00};
    const unsigned char t3[] = {DF_TAG_NUM_POS, 0x80, 0x01, 0x22};
    const unsigned char t4[] = {DF_TAG_NUM_POS, 0x80, 0x01, 0x02};
    const unsigned char ok[] = {DF_TAG_NUM_POS, 0x80, 0x01, 0x20};
    df_dec d;
    size_t used;
    CHECK_EQ_INT(df__dec_dec(t0, sizeof t0, &d, &used), DF_ECORRUPT);
    CHECK_EQ_INT(df__dec_dec(t1, sizeof t1, &d, &used), DF_ECORRUPT);
    CHECK_EQ_INT(df__dec_dec(t2, sizeof t2, &d, &used), DF_ECORRUPT);
    CHECK_EQ_INT(df__dec_dec(t3, sizeof t3, &d, &used), DF_ECORRUPT);
    CHECK_EQ_INT(df__dec_dec(t4, sizeof t4, &d, &used), DF_ECORRUPT);
    CHECK_EQ_INT(df__dec_dec(ok, sizeof ok, &d, &used), DF_OK);
    CHECK(strcmp(str(&d), "1") == 0);
  }
}

static void test_addition_is_exact(void) {
  df_dec a, b, r;
  int i;
  a = parse("1");
  b = parse("10000000000000000000000");
  CHECK_EQ_INT(df__dec_add(&a, &b, 0, &r), DF_DEC_OK);
  CHECK(strcmp(str(&r), "10000000000000000000001") == 0);
  CHECK_EQ_INT(df__dec_add(&b, &a, 1, &r), DF_DEC_OK);
  CHECK(strcmp(str(&r), "9999999999999999999999") == 0);
  a = parse("99999999999999999999999999999999999999");
  b = parse("1");
  CHECK_EQ_INT(df__dec_add(&a, &b, 0, &r), DF_DEC_OK);
  CHECK(strcmp(str(&r), "100000000000000000000000000000000000000") == 0);
  CHECK_EQ_INT(df__dec_range(&r), DF_DEC_OK);
  a = parse("1e50");
  CHECK_EQ_INT(df__dec_add(&a, &b, 0, &r), DF_DEC_PRECISION); /* 51 digits */
  a = parse("1e38");
  CHECK_EQ_INT(df__dec_add(&a, &b, 0, &r), DF_DEC_OK);
  CHECK_EQ_INT(df__dec_range(&r), DF_DEC_PRECISION); /* 39 digits */
  a = parse("1e125");
  b = parse("1e-130");
  CHECK_EQ_INT(df__dec_add(&a, &b, 0, &r), DF_DEC_PRECISION);
  a = parse("9e125");
  CHECK_EQ_INT(df__dec_add(&a, &a, 0, &r), DF_DEC_OK);
  CHECK_EQ_INT(df__dec_range(&r), DF_DEC_OVERFLOW);
  a = parse("0.1");
  b = parse("0.2");
  CHECK_EQ_INT(df__dec_add(&a, &b, 0, &r), DF_DEC_OK);
  CHECK(strcmp(str(&r), "0.3") == 0);
  CHECK_EQ_INT(df__dec_add(&a, &a, 1, &r), DF_DEC_OK);
  CHECK(r.sign == 0 && r.n == 0);
  a = parse("-5.5");
  b = parse("2.25");
  CHECK_EQ_INT(df__dec_add(&a, &b, 0, &r), DF_DEC_OK);
  CHECK(strcmp(str(&r), "-3.25") == 0);
  /* against int64 arithmetic, scaled by random powers of ten */
  for (i = 0; i < 20000; i++) {
    int64_t x = (int64_t)(rnd() % 2000001) - 1000000;
    int64_t y = (int64_t)(rnd() % 2000001) - 1000000;
    int ex = (int)(rnd() % 11) - 5, ey = (int)(rnd() % 11) - 5, m, k;
    int64_t sx = x, sy = y;
    df_dec ref;
    int neg = (int)(rnd() % 2);
    df__dec_from_int(x, &a);
    if (a.sign) a.exp += ex;
    df__dec_from_int(y, &b);
    if (b.sign) b.exp += ey;
    m = ex < ey ? ex : ey;
    for (k = 0; k < ex - m; k++) sx *= 10;
    for (k = 0; k < ey - m; k++) sy *= 10;
    df__dec_from_int(neg ? sx - sy : sx + sy, &ref);
    if (ref.sign) ref.exp += m;
    CHECK_EQ_INT(df__dec_add(&a, &b, neg, &r), DF_DEC_OK);
    CHECK_EQ_INT(df__dec_cmp(&r, &ref), 0);
    CHECK(r.n == ref.n && r.exp == ref.exp);
  }
}

int main(void) {
  RUN_TEST(test_syntax_and_canonical_form);
  RUN_TEST(test_dynamodb_range);
  RUN_TEST(test_doubles_give_their_shortest_decimal);
  RUN_TEST(test_integers_and_exactness);
  RUN_TEST(test_encoding_order_equals_numeric_order);
  RUN_TEST(test_number_kinds_compare_as_decimals);
  RUN_TEST(test_decoding_accepts_only_canonical_bytes);
  RUN_TEST(test_addition_is_exact);
  return check_done("test_decimal");
}
