/*
 * test_codec.c -- unit tests for codec.c (MessagePack, paths, value
 * comparison), alloc.c (df_buf, fault injection) and error.c.
 *
 * Every input the reader sees is copied into a heap block of exactly its
 * length, so an AddressSanitizer build catches any read past the end.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rnd(void) {
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return rng_state = x;
}

/* A heap copy of exactly n bytes (at least 1 allocated). */
static unsigned char *dup_exact(const void *p, size_t n) {
  unsigned char *q = malloc(n ? n : 1);
  if (n) memcpy(q, p, n);
  return q;
}

/* Validate a buffer through an exact-size copy. */
static int validate_exact(const void *p, size_t n, int depth) {
  unsigned char *q = dup_exact(p, n);
  int rc = df__mp_validate(q, n, depth);
  free(q);
  return rc;
}

/* ------------------------------------------------------------ scalars */

static void roundtrip_int(int64_t v, size_t want_len) {
  df_buf b;
  df_value r;
  const unsigned char *p;
  df__buf_init(&b);
  CHECK_EQ_INT(df__mp_put_int(&b, v), 0);
  CHECK_EQ_UINT(b.len, want_len);
  p = b.p;
  CHECK_EQ_INT(df__mp_read(&p, b.p + b.len, &r), 0);
  CHECK(p == b.p + b.len);
  CHECK_EQ_INT(r.type, DF_TINT);
  CHECK_EQ_INT(r.i, v);
  CHECK_EQ_INT(df__mp_validate(b.p, b.len, 0), 0);
  df__buf_free(&b);
}

static void roundtrip_uint(uint64_t v, size_t want_len) {
  df_buf b;
  df_value r;
  const unsigned char *p;
  df__buf_init(&b);
  CHECK_EQ_INT(df__mp_put_uint(&b, v), 0);
  CHECK_EQ_UINT(b.len, want_len);
  p = b.p;
  CHECK_EQ_INT(df__mp_read(&p, b.p + b.len, &r), 0);
  CHECK(p == b.p + b.len);
  if (v > (uint64_t)INT64_MAX) {
    CHECK_EQ_INT(r.type, DF_TUINT);
    CHECK_EQ_UINT(r.u, v);
  } else {
    CHECK_EQ_INT(r.type, DF_TINT);
    CHECK_EQ_UINT((uint64_t)r.i, v);
  }
  df__buf_free(&b);
}

static void roundtrip_float(double v) {
  df_buf b;
  df_value r;
  const unsigned char *p;
  df__buf_init(&b);
  CHECK_EQ_INT(df__mp_put_float(&b, v), 0);
  CHECK_EQ_UINT(b.len, 9);
  CHECK_EQ_INT(b.p[0], 0xcb);
  p = b.p;
  CHECK_EQ_INT(df__mp_read(&p, b.p + b.len, &r), 0);
  CHECK_EQ_INT(r.type, DF_TFLOAT);
  CHECK(memcmp(&r.f, &v, sizeof v) == 0);
  df__buf_free(&b);
}

static void roundtrip_bytes(int is_str, size_t n, size_t hdr) {
  df_buf b;
  df_value r;
  const unsigned char *p;
  char *s = malloc(n ? n : 1);
  size_t i;
  for (i = 0; i < n; i++) s[i] = (char)(i * 7);
  df__buf_init(&b);
  CHECK_EQ_INT(is_str ? df__mp_put_str(&b, s, n) : df__mp_put_bin(&b, s, n), 0);
  CHECK_EQ_UINT(b.len, hdr + n);
  p = b.p;
  CHECK_EQ_INT(df__mp_read(&p, b.p + b.len, &r), 0);
  CHECK(p == b.p + b.len);
  CHECK_EQ_INT(r.type, is_str ? DF_TSTR : DF_TBIN);
  CHECK_EQ_MEM(r.s, r.n, s, n);
  CHECK_EQ_INT(validate_exact(b.p, b.len, 0), 0);
  /* Every truncation is rejected. */
  for (i = 0; i < b.len; i += (i < 300 ? 1 : 997)) {
    unsigned char *q = dup_exact(b.p, i);
    const unsigned char *qp = q;
    CHECK_EQ_INT(df__mp_read(&qp, q + i, &r), DF_ECORRUPT);
    CHECK(qp == q);
    free(q);
  }
  df__buf_free(&b);
  free(s);
}

static void test_scalars(void) {
  df_buf b;
  df_value r, in;
  const unsigned char *p;

  roundtrip_int(0, 1);
  roundtrip_int(127, 1);
  roundtrip_int(128, 2);
  roundtrip_int(255, 2);
  roundtrip_int(256, 3);
  roundtrip_int(65535, 3);
  roundtrip_int(65536, 5);
  roundtrip_int(4294967295LL, 5);
  roundtrip_int(4294967296LL, 9);
  roundtrip_int(INT64_MAX, 9);
  roundtrip_int(-1, 1);
  roundtrip_int(-32, 1);
  roundtrip_int(-33, 2);
  roundtrip_int(-128, 2);
  roundtrip_int(-129, 3);
  roundtrip_int(-32768, 3);
  roundtrip_int(-32769, 5);
  roundtrip_int(INT32_MIN, 5);
  roundtrip_int((int64_t)INT32_MIN - 1, 9);
  roundtrip_int(INT64_MIN, 9);
  roundtrip_uint(0, 1);
  roundtrip_uint(200, 2);
  roundtrip_uint((uint64_t)INT64_MAX, 9);
  roundtrip_uint((uint64_t)INT64_MAX + 1, 9);
  roundtrip_uint(UINT64_MAX, 9);
  roundtrip_float(0.0);
  roundtrip_float(-0.0);
  roundtrip_float(1.5);
  roundtrip_float(-1e300);
  roundtrip_float(DBL_MIN / 4);
  roundtrip_float(INFINITY);
  roundtrip_float(-INFINITY);
  roundtrip_float(NAN);
  roundtrip_bytes(1, 0, 1);
  roundtrip_bytes(1, 31, 1);
  roundtrip_bytes(1, 32, 2);
  roundtrip_bytes(1, 255, 2);
  roundtrip_bytes(1, 256, 3);
  roundtrip_bytes(1, 65535, 3);
  roundtrip_bytes(1, 65536, 5);
  roundtrip_bytes(0, 0, 2);
  roundtrip_bytes(0, 255, 2);
  roundtrip_bytes(0, 256, 3);
  roundtrip_bytes(0, 65536, 5);

  /* nil, bools, put_value for every scalar type */
  df__buf_init(&b);
  memset(&in, 0, sizeof in);
  in.type = DF_TNIL;
  CHECK_EQ_INT(df__mp_put_value(&b, &in), 0);
  in.type = DF_TBOOL;
  in.i = 1;
  CHECK_EQ_INT(df__mp_put_value(&b, &in), 0);
  in.i = 0;
  CHECK_EQ_INT(df__mp_put_value(&b, &in), 0);
  in.type = DF_TINT;
  in.i = -5;
  CHECK_EQ_INT(df__mp_put_value(&b, &in), 0);
  in.type = DF_TUINT;
  in.u = UINT64_MAX;
  CHECK_EQ_INT(df__mp_put_value(&b, &in), 0);
  in.type = DF_TFLOAT;
  in.f = 2.25;
  CHECK_EQ_INT(df__mp_put_value(&b, &in), 0);
  in.type = DF_TSTR;
  in.s = "hi";
  in.n = 2;
  CHECK_EQ_INT(df__mp_put_value(&b, &in), 0);
  in.type = DF_TBIN;
  CHECK_EQ_INT(df__mp_put_value(&b, &in), 0);
  in.type = DF_TMAP;
  CHECK_EQ_INT(df__mp_put_value(&b, &in), DF_EINVAL);
  in.type = DF_TNONE;
  CHECK_EQ_INT(df__mp_put_value(&b, &in), DF_EINVAL);
  CHECK(!b.failed);
  p = b.p;
  CHECK_EQ_INT(df__mp_read(&p, b.p + b.len, &r), 0);
  CHECK_EQ_INT(r.type, DF_TNIL);
  CHECK_EQ_INT(df__mp_read(&p, b.p + b.len, &r), 0);
  CHECK(r.type == DF_TBOOL && r.i == 1);
  CHECK_EQ_INT(df__mp_read(&p, b.p + b.len, &r), 0);
  CHECK(r.type == DF_TBOOL && r.i == 0);
  CHECK_EQ_INT(df__mp_read(&p, b.p + b.len, &r), 0);
  CHECK(r.type == DF_TINT && r.i == -5);
  CHECK_EQ_INT(df__mp_read(&p, b.p + b.len, &r), 0);
  CHECK(r.type == DF_TUINT && r.u == UINT64_MAX);
  CHECK_EQ_INT(df__mp_read(&p, b.p + b.len, &r), 0);
  CHECK(r.type == DF_TFLOAT && r.f == 2.25);
  CHECK_EQ_INT(df__mp_read(&p, b.p + b.len, &r), 0);
  CHECK(r.type == DF_TSTR && r.n == 2 && !memcmp(r.s, "hi", 2));
  CHECK_EQ_INT(df__mp_read(&p, b.p + b.len, &r), 0);
  CHECK(r.type == DF_TBIN && r.n == 2 && !memcmp(r.s, "hi", 2));
  CHECK(p == b.p + b.len);
  CHECK_EQ_INT(df__mp_read(&p, b.p + b.len, &r), DF_ECORRUPT);
  df__buf_free(&b);

  /* float32 input decodes as a double */
  {
    static const unsigned char f32[] = {0xca, 0x3f, 0xc0, 0x00, 0x00};
    p = f32;
    CHECK_EQ_INT(df__mp_read(&p, f32 + sizeof f32, &r), 0);
    CHECK(r.type == DF_TFLOAT && r.f == 1.5);
  }
  /* fixed-width encodings the writer does not produce still read */
  {
    static const unsigned char wide[] = {0xd3, 0,    0,    0,    0,    0, 0, 0,
                                         5,    0xd1, 0xff, 0xfe, 0xcd, 0, 7};
    p = wide;
    CHECK_EQ_INT(df__mp_read(&p, wide + sizeof wide, &r), 0);
    CHECK(r.type == DF_TINT && r.i == 5);
    CHECK_EQ_INT(df__mp_read(&p, wide + sizeof wide, &r), 0);
    CHECK(r.type == DF_TINT && r.i == -2);
    CHECK_EQ_INT(df__mp_read(&p, wide + sizeof wide, &r), 0);
    CHECK(r.type == DF_TINT && r.i == 7);
  }
  /* ext types and the never-used byte are corrupt */
  {
    static const unsigned char bad[] = {0xc1, 0xc7, 0xc8, 0xc9, 0xd4,
                                        0xd5, 0xd6, 0xd7, 0xd8};
    unsigned char buf[20];
    size_t i;
    for (i = 0; i < sizeof bad; i++) {
      memset(buf, 1, sizeof buf);
      buf[0] = bad[i];
      p = buf;
      CHECK_EQ_INT(df__mp_read(&p, buf + sizeof buf, &r), DF_ECORRUPT);
      CHECK(p == buf);
      CHECK_EQ_INT(df__mp_validate(buf, sizeof buf, 4), DF_ECORRUPT);
    }
  }
  /* empty input */
  p = NULL;
  CHECK_EQ_INT(df__mp_read(&p, NULL, &r), DF_ECORRUPT);
  CHECK_EQ_INT(df__mp_validate(NULL, 0, 4), DF_ECORRUPT);
}

/* ------------------------------------------------------- containers */

static void check_container(int is_map, uint32_t n, size_t hdr) {
  df_buf b;
  df_value r;
  const unsigned char *p;
  uint32_t i;
  df__buf_init(&b);
  CHECK_EQ_INT(is_map ? df__mp_put_map(&b, n) : df__mp_put_array(&b, n), 0);
  CHECK_EQ_UINT(b.len, hdr);
  for (i = 0; i < (is_map ? 2 * n : n); i++) df__mp_put_nil(&b);
  p = b.p;
  CHECK_EQ_INT(df__mp_read(&p, b.p + b.len, &r), 0);
  CHECK_EQ_INT(r.type, is_map ? DF_TMAP : DF_TARRAY);
  CHECK_EQ_UINT(r.n, n);
  CHECK(r.s == (const char *)b.p + hdr);
  CHECK_EQ_INT(validate_exact(b.p, b.len, 1), 0);
  CHECK_EQ_INT(validate_exact(b.p, b.len - 1 + (n == 0), 1),
               n == 0 ? 0 : DF_ECORRUPT);
  p = b.p;
  CHECK_EQ_INT(df__mp_skip(&p, b.p + b.len), 0);
  CHECK(p == b.p + b.len);
  df__buf_free(&b);
}

/* An item exercising every type, used for truncation and fuzzing. */
static void build_item(df_buf *b) {
  df__mp_put_map(b, 7);
  df__mp_put_str(b, "id", 2);
  df__mp_put_str(b, "user#1", 6);
  df__mp_put_str(b, "n", 1);
  df__mp_put_int(b, -123456789);
  df__mp_put_str(b, "f", 1);
  df__mp_put_float(b, 3.25);
  df__mp_put_str(b, "u", 1);
  df__mp_put_uint(b, UINT64_MAX);
  df__mp_put_bin(b, "b", 1); /* a bin key */
  df__mp_put_bin(b, "\0\1\2", 3);
  df__mp_put_str(b, "data", 4);
  df__mp_put_map(b, 2);
  df__mp_put_str(b, "items", 5);
  df__mp_put_array(b, 3);
  df__mp_put_int(b, 10);
  df__mp_put_map(b, 1);
  df__mp_put_str(b, "x", 1);
  df__mp_put_bool(b, 1);
  df__mp_put_array(b, 2);
  df__mp_put_nil(b);
  df__mp_put_array(b, 1);
  df__mp_put_str(b, "deep", 4);
  df__mp_put_str(b, "t", 1);
  df__mp_put_bool(b, 0);
  df__mp_put_str(b, "last", 4);
  df__mp_put_str(b, "end", 3);
}

static void test_containers(void) {
  df_buf b;
  size_t i;

  check_container(0, 0, 1);
  check_container(0, 15, 1);
  check_container(0, 16, 3);
  check_container(0, 65535, 3);
  check_container(0, 65536, 5);
  check_container(1, 0, 1);
  check_container(1, 15, 1);
  check_container(1, 16, 3);
  check_container(1, 65536, 5);

  /* Truncation at every length is rejected, never overread. */
  df__buf_init(&b);
  build_item(&b);
  CHECK(!b.failed);
  CHECK_EQ_INT(validate_exact(b.p, b.len, DF_MAX_DEPTH), 0);
  CHECK_EQ_INT(validate_exact(b.p, b.len, 5), 0); /* item is 5 deep */
  CHECK_EQ_INT(validate_exact(b.p, b.len, 4), DF_ECORRUPT);
  for (i = 0; i < b.len; i++) {
    unsigned char *q = dup_exact(b.p, i);
    const unsigned char *qp = q;
    df_value v;
    CHECK_EQ_INT(df__mp_validate(q, i, DF_MAX_DEPTH), DF_ECORRUPT);
    CHECK_EQ_INT(df__mp_skip(&qp, q + i), DF_ECORRUPT);
    CHECK(df__mp_map_find(q, i, "last", 4, &v, NULL, NULL) != 1);
    free(q);
  }
  /* Trailing bytes are not one value. */
  df__buf_putc(&b, 0xc0);
  CHECK_EQ_INT(validate_exact(b.p, b.len, DF_MAX_DEPTH), DF_ECORRUPT);
  df__buf_free(&b);

  /* Hostile counts are rejected at once. */
  {
    static const unsigned char big[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0};
    static const unsigned char bigmap[] = {0xdf, 0x7f, 0xff, 0xff,
                                           0xff, 0xc0, 0xc0};
    static const unsigned char bigstr[] = {0xdb, 0xff, 0xff, 0xff, 0xf0, 'a'};
    static const unsigned char map1[] = {0x81, 0xc0};
    CHECK_EQ_INT(validate_exact(big, sizeof big, 4), DF_ECORRUPT);
    CHECK_EQ_INT(validate_exact(bigmap, sizeof bigmap, 4), DF_ECORRUPT);
    CHECK_EQ_INT(validate_exact(bigstr, sizeof bigstr, 4), DF_ECORRUPT);
    CHECK_EQ_INT(validate_exact(map1, sizeof map1, 4), DF_ECORRUPT);
  }
}

static void test_depth(void) {
  df_buf b;
  const unsigned char *p;
  int d;

  /* Exactly DF_MAX_DEPTH nested arrays pass, one more does not. */
  for (d = DF_MAX_DEPTH - 1; d <= DF_MAX_DEPTH + 1; d++) {
    int k;
    int want = d <= DF_MAX_DEPTH ? 0 : DF_ECORRUPT;
    df__buf_init(&b);
    for (k = 0; k < d; k++) df__mp_put_array(&b, 1);
    df__mp_put_int(&b, 1);
    CHECK_EQ_INT(validate_exact(b.p, b.len, DF_MAX_DEPTH), want);
    /* max_depth is clamped to DF_MAX_DEPTH */
    CHECK_EQ_INT(validate_exact(b.p, b.len, d), want);
    CHECK_EQ_INT(validate_exact(b.p, b.len, d - 1), DF_ECORRUPT);
    p = b.p;
    CHECK_EQ_INT(df__mp_skip(&p, b.p + b.len), want);
    df__buf_free(&b);
  }
  /* Empty containers count as a level. */
  {
    static const unsigned char e[] = {0x91, 0x80};
    CHECK_EQ_INT(validate_exact(e, sizeof e, 2), 0);
    CHECK_EQ_INT(validate_exact(e, sizeof e, 1), DF_ECORRUPT);
    CHECK_EQ_INT(validate_exact(e + 1, 1, 0), DF_ECORRUPT);
  }
  /* A million levels: rejected without recursion. */
  {
    size_t n = 1000000;
    unsigned char *q = malloc(n);
    memset(q, 0x91, n - 1);
    q[n - 1] = 0xc0;
    CHECK_EQ_INT(df__mp_validate(q, n, DF_MAX_DEPTH), DF_ECORRUPT);
    CHECK_EQ_INT(df__mp_validate(q, n, 1 << 30), DF_ECORRUPT);
    p = q;
    CHECK_EQ_INT(df__mp_skip(&p, q + n), DF_ECORRUPT);
    memset(q, 0x81, n); /* maps, key side */
    CHECK_EQ_INT(df__mp_validate(q, n, DF_MAX_DEPTH), DF_ECORRUPT);
    free(q);
  }
}

/* ------------------------------------------------------- find / paths */

static void test_map_find(void) {
  df_buf b;
  df_value v;
  const unsigned char *vs = NULL, *ve = NULL;

  df__buf_init(&b);
  build_item(&b);
  CHECK_EQ_INT(df__mp_map_find(b.p, b.len, "id", 2, &v, &vs, &ve), 1);
  CHECK(v.type == DF_TSTR && v.n == 6 && !memcmp(v.s, "user#1", 6));
  CHECK(ve - vs == 7);
  CHECK_EQ_INT(df__mp_map_find(b.p, b.len, "u", 1, &v, NULL, NULL), 1);
  CHECK(v.type == DF_TUINT && v.u == UINT64_MAX);
  CHECK_EQ_INT(df__mp_map_find(b.p, b.len, "b", 1, &v, NULL, NULL), 1);
  CHECK(v.type == DF_TBIN && v.n == 3);
  CHECK_EQ_INT(df__mp_map_find(b.p, b.len, "data", 4, &v, &vs, &ve), 1);
  CHECK_EQ_INT(v.type, DF_TMAP);
  CHECK_EQ_UINT(v.n, 2);
  CHECK_EQ_INT(df__mp_validate(vs, (size_t)(ve - vs), 4), 0);
  CHECK_EQ_INT(df__mp_validate(vs, (size_t)(ve - vs), 3), DF_ECORRUPT);
  CHECK_EQ_INT(df__mp_map_find(b.p, b.len, "last", 4, &v, &vs, &ve), 1);
  CHECK(ve == b.p + b.len);
  CHECK_EQ_INT(df__mp_map_find(b.p, b.len, "missing", 7, &v, NULL, NULL), 0);
  CHECK_EQ_INT(df__mp_map_find(b.p, b.len, "i", 1, &v, NULL, NULL), 0);
  CHECK_EQ_INT(df__mp_map_find(b.p, b.len, "", 0, &v, NULL, NULL), 0);
  df__buf_reset(&b);
  /* not a map */
  df__mp_put_array(&b, 1);
  df__mp_put_str(&b, "id", 2);
  CHECK_EQ_INT(df__mp_map_find(b.p, b.len, "id", 2, &v, NULL, NULL), 0);
  df__buf_reset(&b);
  /* non-string keys are skipped, an empty key matches "" */
  df__mp_put_map(&b, 4);
  df__mp_put_int(&b, 5);
  df__mp_put_str(&b, "five", 4);
  df__mp_put_array(&b, 2);
  df__mp_put_str(&b, "k", 1);
  df__mp_put_str(&b, "k", 1);
  df__mp_put_str(&b, "arr", 3);
  df__mp_put_str(&b, "", 0);
  df__mp_put_int(&b, 0);
  df__mp_put_str(&b, "k", 1);
  df__mp_put_int(&b, 42);
  CHECK_EQ_INT(df__mp_map_find(b.p, b.len, "k", 1, &v, NULL, NULL), 1);
  CHECK(v.type == DF_TINT && v.i == 42);
  CHECK_EQ_INT(df__mp_map_find(b.p, b.len, "", 0, &v, NULL, NULL), 1);
  CHECK(v.type == DF_TINT && v.i == 0);
  df__buf_reset(&b);
  /* malformed before the key: corrupt */
  df__mp_put_map(&b, 2);
  df__mp_put_str(&b, "a", 1);
  df__buf_putc(&b, 0xc1);
  df__mp_put_str(&b, "k", 1);
  df__mp_put_int(&b, 1);
  CHECK_EQ_INT(df__mp_map_find(b.p, b.len, "k", 1, &v, NULL, NULL),
               DF_ECORRUPT);
  CHECK_EQ_INT(df__mp_map_find(b.p, b.len, "a", 1, &v, NULL, NULL),
               DF_ECORRUPT);
  df__buf_free(&b);
}

static int parses(const char *s) {
  df_path pth;
  return df__path_parse(s, strlen(s), &pth) == 0;
}

static void test_paths(void) {
  df_path pth;
  df_buf b;
  df_value v;
  const unsigned char *vs, *ve;
  char longp[200];
  int i;

  CHECK_EQ_INT(df__path_parse("a.b[3].c", 8, &pth), 0);
  CHECK_EQ_UINT(pth.n, 4);
  CHECK(pth.seg[0].name && pth.seg[0].len == 1 && pth.seg[0].name[0] == 'a');
  CHECK(pth.seg[1].name && pth.seg[1].name[0] == 'b');
  CHECK(!pth.seg[2].name && pth.seg[2].index == 3);
  CHECK(pth.seg[3].name && pth.seg[3].name[0] == 'c');
  CHECK_EQ_INT(df__path_parse("a[0][1]", 7, &pth), 0);
  CHECK(pth.n == 3 && pth.seg[1].index == 0 && pth.seg[2].index == 1);
  /* one list-position limit for C and Lua: 2^31 - 1 */
  CHECK_EQ_INT(df__path_parse("x[2147483647]", 13, &pth), 0);
  CHECK_EQ_UINT(pth.seg[1].index, DF_PATH_INDEX_MAX);
  CHECK(!parses("x[2147483648]"));
  CHECK(parses("name with spaces.#x"));
  CHECK(parses("a"));
  CHECK(!parses(""));
  CHECK(!parses("."));
  CHECK(!parses("a."));
  CHECK(!parses(".a"));
  CHECK(!parses("a..b"));
  CHECK(!parses("a["));
  CHECK(!parses("a[1"));
  CHECK(!parses("a[]"));
  CHECK(!parses("a[x]"));
  CHECK(!parses("a[-1]"));
  CHECK(!parses("a[ 1]"));
  CHECK(!parses("a]"));
  CHECK(!parses("a[1]b"));
  CHECK(!parses("[0]"));
  CHECK(!parses("a[4294967296]"));
  CHECK(parses("`a.b`[1].`c]`"));
  CHECK(!parses("`a"));
  CHECK(!parses("a`b`"));
  CHECK(!parses("a[99999999999999999999999]"));
  /* "a" . "a" ... : exactly DF_MAX_DEPTH segments pass, one more fails */
  for (i = 0; i < DF_MAX_DEPTH; i++) {
    longp[2 * i] = 'a';
    longp[2 * i + 1] = '.';
  }
  CHECK_EQ_INT(df__path_parse(longp, 2 * DF_MAX_DEPTH - 1, &pth), 0);
  CHECK_EQ_UINT(pth.n, DF_MAX_DEPTH);
  longp[2 * DF_MAX_DEPTH] = 'a';
  CHECK_EQ_INT(df__path_parse(longp, 2 * DF_MAX_DEPTH + 1, &pth),
               DF_EVALIDATION);
  /* length bounds the string: "a.b" cut to "a" */
  CHECK_EQ_INT(df__path_parse("a.b", 1, &pth), 0);
  CHECK_EQ_UINT(pth.n, 1);

  df__buf_init(&b);
  build_item(&b);
#define FIND(s)                        \
  (df__path_parse(s, strlen(s), &pth), \
   df__mp_path_find(b.p, b.len, &pth, &v, &vs, &ve))
  CHECK_EQ_INT(FIND("data.items[0]"), 1);
  CHECK(v.type == DF_TINT && v.i == 10);
  CHECK_EQ_INT(FIND("data.items[1].x"), 1);
  CHECK(v.type == DF_TBOOL && v.i == 1);
  CHECK_EQ_INT(FIND("data.items[2][1][0]"), 1);
  CHECK(v.type == DF_TSTR && v.n == 4 && !memcmp(v.s, "deep", 4));
  CHECK(ve - vs == 5);
  CHECK_EQ_INT(FIND("data.items[2][0]"), 1);
  CHECK_EQ_INT(v.type, DF_TNIL);
  CHECK_EQ_INT(FIND("data.items"), 1);
  CHECK(v.type == DF_TARRAY && v.n == 3);
  CHECK_EQ_INT(FIND("data.t"), 1);
  CHECK(v.type == DF_TBOOL && v.i == 0);
  CHECK_EQ_INT(FIND("data.items[3]"), 0);
  CHECK_EQ_INT(FIND("data.items.x"), 0);
  CHECK_EQ_INT(FIND("data[0]"), 0);
  CHECK_EQ_INT(FIND("id.x"), 0);
  CHECK_EQ_INT(FIND("nope.x"), 0);
  CHECK_EQ_INT(FIND("data.items[1].y"), 0);
  CHECK_EQ_INT(FIND("last"), 1);
#undef FIND
  pth.n = 0; /* the empty path finds the whole item */
  CHECK_EQ_INT(df__mp_path_find(b.p, b.len, &pth, &v, &vs, &ve), 1);
  CHECK(v.type == DF_TMAP && vs == b.p && ve == b.p + b.len);
  df__buf_free(&b);
}

/* --------------------------------------------------------- value_cmp */

/* The one path grammar, with the messages every caller shows. */
static int scan(const char *s, int mode, df_path *pth, char *names,
                size_t *used, char *err, size_t *at) {
  return df__path_scan(s, strlen(s), mode, names, pth, used, err, 128, at);
}

static void test_path_grammar(void) {
  df_path pth;
  char names[64], err[128];
  size_t used, at;
  /* quoted names: any byte, escapes decoded, the same in both modes */
  CHECK_EQ_INT(scan("`a.b`.c", DF_PATH_WHOLE, &pth, names, &used, err, &at),
               DF_OK);
  CHECK(pth.n == 2 && pth.seg[0].len == 3 &&
        !memcmp(pth.seg[0].name, "a.b", 3));
  CHECK_EQ_INT(
      scan("`x\\ty\\`z\\x41`", DF_PATH_EMBEDDED, &pth, names, &used, err, &at),
      DF_OK);
  CHECK_EQ_UINT(pth.n, 1);
  CHECK_EQ_MEM(pth.seg[0].name, pth.seg[0].len, "x\ty`zA", 6);
  /* plain names: any character but . [ ] ` when the path stands alone;
   * identifiers inside an expression, where the path stops */
  CHECK_EQ_INT(
      scan("first-name.x y", DF_PATH_WHOLE, &pth, NULL, &used, err, &at),
      DF_OK);
  CHECK(pth.n == 2 && pth.seg[0].len == 10 && used == 14);
  CHECK_EQ_INT(
      scan("a.b[2] == 3", DF_PATH_EMBEDDED, &pth, names, &used, err, &at),
      DF_OK);
  CHECK(pth.n == 3 && pth.seg[2].index == 2 && used == 6);
  CHECK_EQ_INT(
      scan("first-name", DF_PATH_EMBEDDED, &pth, names, &used, err, &at),
      DF_OK);
  CHECK(pth.n == 1 && pth.seg[0].len == 5 && used == 5);
  /* the messages, and where they point */
  CHECK_EQ_INT(scan("a..b", DF_PATH_WHOLE, &pth, names, &used, err, &at),
               DF_EVALIDATION);
  CHECK_EQ_STR(err, "expected a name after '.'");
  CHECK_EQ_UINT(at, 2); /* where the name should start */
  CHECK_EQ_INT(scan("a[x]", DF_PATH_WHOLE, &pth, names, &used, err, &at),
               DF_EVALIDATION);
  CHECK_EQ_STR(err, "expected a list index");
  CHECK_EQ_UINT(at, 1);
  CHECK_EQ_INT(
      scan("a[2147483648]", DF_PATH_EMBEDDED, &pth, names, &used, err, &at),
      DF_EVALIDATION);
  CHECK_EQ_STR(err, "list index too large (at most 2147483647)");
  CHECK_EQ_UINT(at, 2);
  CHECK_EQ_INT(scan("`ab", DF_PATH_WHOLE, &pth, names, &used, err, &at),
               DF_EVALIDATION);
  CHECK_EQ_STR(err, "unterminated name");
  CHECK_EQ_INT(scan("`a\\qb`", DF_PATH_WHOLE, &pth, names, &used, err, &at),
               DF_EVALIDATION);
  CHECK_EQ_STR(err, "invalid escape '\\q'");
  CHECK_EQ_UINT(at, 2);
  CHECK_EQ_INT(scan("`a\\x4`", DF_PATH_WHOLE, &pth, names, &used, err, &at),
               DF_EVALIDATION);
  CHECK_EQ_STR(err, "bad \\x escape (two hex digits)");
  CHECK_EQ_INT(scan("a]b", DF_PATH_WHOLE, &pth, names, &used, err, &at),
               DF_EVALIDATION);
  CHECK_EQ_STR(err, "unexpected ']'");
  CHECK_EQ_UINT(at, 1);
  CHECK_EQ_INT(scan("", DF_PATH_WHOLE, &pth, names, &used, err, &at),
               DF_EVALIDATION);
  CHECK_EQ_STR(err, "empty path");
  CHECK_EQ_INT(scan("1a", DF_PATH_EMBEDDED, &pth, names, &used, err, &at),
               DF_EVALIDATION);
  CHECK_EQ_STR(err, "expected a name");
  /* without a names buffer, escapes are refused, never misread */
  CHECK_EQ_INT(scan("`a\\nb`", DF_PATH_WHOLE, &pth, NULL, &used, err, &at),
               DF_EVALIDATION);
  CHECK_EQ_STR(err, "escapes in a quoted name are not allowed here");
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

static df_value vs_(int type, const char *s, size_t n) {
  df_value v;
  memset(&v, 0, sizeof v);
  v.type = (df_type)type;
  v.s = s;
  v.n = n;
  return v;
}

/* Check cmp(a,b) == want and the mirrored result. */
static void cmp_is(df_value a, df_value b, int want, int line) {
  int c = df__value_cmp(&a, &b), d = df__value_cmp(&b, &a);
  int wd = want == 2 ? 2 : -want;
  if (!check_record(c == want && d == wd, __FILE__, line, "value_cmp"))
    fprintf(stderr, "  got %d/%d, want %d/%d\n", c, d, want, wd);
}
#define CMP(a, b, w) cmp_is(a, b, w, __LINE__)

static void test_value_cmp(void) {
  const double two63 = 9223372036854775808.0, two64 = 18446744073709551616.0;
  df_value t, f, n1, n2, none;

  CMP(vi(1), vi(2), -1);
  CMP(vi(-5), vi(-5), 0);
  CMP(vi(INT64_MIN), vi(INT64_MAX), -1);
  CMP(vi(1), vf(1.0), 0);
  CMP(vi(1), vf(1.5), -1);
  CMP(vi(2), vf(1.5), 1);
  CMP(vi(-1), vf(-1.5), 1);
  CMP(vi(-2), vf(-1.5), -1);
  CMP(vi(0), vf(-0.0), 0);
  CMP(vi(0), vf(DBL_MIN), -1);
  CMP(vi(0), vf(-DBL_MIN), 1);
  /* int64 limits against doubles: a double's value is the integer it is
   * inside the int64 range, so the double 2^63-1024 is
   * 9223372036854774784 and the double -2^63 is INT64_MIN; beyond, its
   * shortest decimal: the double 2^63 is 9223372036854776000 */
  CMP(vi(INT64_MAX), vf(two63), -1);
  CMP(vi(INT64_MAX), vf(nextafter(two63, 0)), 1);
  CMP(vi(9223372036854775000LL), vf(nextafter(two63, 0)), 1);
  CMP(vi(9223372036854774784LL), vf(nextafter(two63, 0)), 0);
  CMP(vi(INT64_MAX - 1022), vf(nextafter(two63, 0)), 1);
  CMP(vi(INT64_MAX - 1023), vf(nextafter(two63, 0)), 0); /* 2^63-1024 */
  CMP(vi(INT64_MAX - 1024), vf(nextafter(two63, 0)), -1);
  CMP(vi(INT64_MIN), vf(-two63), 0);
  CMP(vi(INT64_MIN + 1), vf(-two63), 1);
  CMP(vi(1152921504606846976LL), vf(1152921504606846976.0), 0); /* 2^60 */
  CMP(vi(1152921504606847000LL), vf(1152921504606846976.0), 1);
  CMP(vi(INT64_MIN), vf(nextafter(-two63, -INFINITY)), 1);
  CMP(vi((1LL << 53) + 1), vf(9007199254740992.0), 1);
  CMP(vi((1LL << 53) + 1), vf(9007199254740994.0), -1);
  CMP(vi(-(1LL << 53) - 1), vf(-9007199254740992.0), -1);
  CMP(vi(INT64_MAX), vf(INFINITY), -1);
  CMP(vi(INT64_MIN), vf(-INFINITY), 1);
  CMP(vi(0), vf(NAN), 2);
  CMP(vf(NAN), vf(NAN), 2);
  CMP(vf(1.0), vf(NAN), 2);
  CMP(vf(-INFINITY), vf(INFINITY), -1);
  CMP(vf(1e300), vf(1e300), 0);
  /* unsigned */
  CMP(vu(UINT64_MAX), vf(two64), -1);
  CMP(vu(UINT64_MAX), vf(nextafter(two64, 0)), 1);
  CMP(vu(UINT64_MAX - 2047), vf(nextafter(two64, 0)), -1);
  CMP(vu(18446744073709550000ULL), vf(nextafter(two64, 0)), 0);
  CMP(vu((uint64_t)INT64_MAX + 1), vf(two63), -1);
  CMP(vu(9223372036854776000ULL), vf(two63), 0);
  CMP(vu((uint64_t)INT64_MAX + 1), vi(INT64_MAX), 1);
  CMP(vu((uint64_t)INT64_MAX + 1), vi(-1), 1);
  CMP(vu(UINT64_MAX), vu(UINT64_MAX - 1), 1);
  CMP(vu(5), vi(5), 0); /* tolerated: a small uint */
  CMP(vu(UINT64_MAX), vf(-1.0), 1);
  CMP(vu(UINT64_MAX), vf(NAN), 2);
  /* strings and binaries: bytes, then length */
  CMP(vs_(DF_TSTR, "abc", 3), vs_(DF_TSTR, "abd", 3), -1);
  CMP(vs_(DF_TSTR, "ab", 2), vs_(DF_TSTR, "abc", 3), -1);
  CMP(vs_(DF_TSTR, "", 0), vs_(DF_TSTR, "", 0), 0);
  CMP(vs_(DF_TSTR, "a\0b", 3), vs_(DF_TSTR, "a\0c", 3), -1);
  CMP(vs_(DF_TSTR, "\xff", 1), vs_(DF_TSTR, "a", 1), 1);
  CMP(vs_(DF_TBIN, "abc", 3), vs_(DF_TSTR, "abc", 3), 2); /* B is not S */
  CMP(vs_(DF_TBIN, "abc", 3), vs_(DF_TBIN, "abd", 3), -1);
  CMP(vs_(DF_TSTR, "1", 1), vi(1), 2);
  /* booleans, nil, mixed kinds */
  memset(&t, 0, sizeof t);
  t.type = DF_TBOOL;
  t.i = 1;
  f = t;
  f.i = 0;
  CMP(f, t, -1);
  CMP(t, t, 0);
  CMP(t, vi(1), 2);
  memset(&n1, 0, sizeof n1);
  n1.type = DF_TNIL;
  n2 = n1;
  CMP(n1, n2, 0);
  CMP(n1, f, 2);
  CMP(n1, vi(0), 2);
  memset(&none, 0, sizeof none);
  CMP(none, none, 2);
  CMP(vs_(DF_TMAP, NULL, 0), vs_(DF_TMAP, NULL, 0), 2);
  CMP(vs_(DF_TARRAY, NULL, 0), vs_(DF_TARRAY, NULL, 0), 2);
}

/* The decimal value of f as a long double: exact for the doubles this
 * test makes (integers below 2^64 beyond 2^53, binary fractions below):
 * f itself inside the int64 range, its shortest decimal beyond. */
static long double shortest_ld(double f) {
  char buf[40];
  int p;
  for (p = 1; p <= 17; p++) {
    snprintf(buf, sizeof buf, "%.*e", p - 1, f);
    if (strtod(buf, NULL) == f) break;
  }
  if (f >= -9223372036854775808.0 && f < 9223372036854775808.0)
    return (long double)f;
  return strtold(buf, NULL);
}

/* Random int/float pairs against a long double reference of the double's
 * decimal value (exact for int64 on x86-64; skipped where long double is
 * plain double). */
static void test_value_cmp_random(void) {
  int k, bad = 0;
  if (LDBL_MANT_DIG < 64) return;
  for (k = 0; k < 200000; k++) {
    int64_t i = (int64_t)rnd();
    double f;
    df_value a, b;
    long double li, lf;
    int want, got;
    switch (k % 4) {
      case 0:
        f = (double)i;
        break;
      case 1:
        f = (double)i + (double)((int)(rnd() % 5) - 2) * ldexp(1.0, 10);
        break;
      case 2:
        i >>= rnd() % 64;
        f = (double)i + 0.5 * (double)((int)(rnd() % 3) - 1);
        break;
      default:
        i = (int64_t)(rnd() % 2001) - 1000;
        f = (double)(int64_t)(rnd() % 2001 - 1000) / 4.0;
        break;
    }
    li = (long double)i;
    lf = shortest_ld(f);
    want = li < lf ? -1 : li > lf;
    a = vi(i);
    b = vf(f);
    got = df__value_cmp(&a, &b);
    if (got != want) bad++;
  }
  CHECK_EQ_INT(bad, 0);
}

/* ---------------------------------------------------- data model types */

static df_dec dec_of(const char *s) {
  df_dec d;
  CHECK_EQ_INT(df__dec_parse(s, strlen(s), &d), DF_DEC_OK);
  return d;
}

/* Write the number `s` canonically and read it back. */
static df_value number_back(df_buf *b, const char *s) {
  df_dec d = dec_of(s);
  const unsigned char *p;
  df_value v;
  df__buf_reset(b);
  CHECK_EQ_INT(df__mp_put_dec(b, &d), 0);
  CHECK_EQ_INT(validate_exact(b->p, b->len, 0), 0);
  p = b->p;
  CHECK_EQ_INT(df__mp_read(&p, b->p + b->len, &v), 0);
  CHECK(p == b->p + b->len);
  return v;
}

static void test_decimals(void) {
  df_buf b;
  df_value v, w;
  df_dec d;
  size_t n;
  int i;
  df__buf_init(&b);
  v = number_back(&b, "42");
  CHECK(v.type == DF_TINT && v.i == 42);
  v = number_back(&b, "-9223372036854775808");
  CHECK(v.type == DF_TINT && v.i == INT64_MIN);
  v = number_back(&b, "18446744073709551615");
  CHECK(v.type == DF_TUINT && v.u == UINT64_MAX);
  v = number_back(&b, "0.1");
  CHECK(v.type == DF_TFLOAT && v.f == 0.1);
  v = number_back(&b, "1e125");
  CHECK(v.type == DF_TFLOAT && v.f == 1e125);
  v = number_back(&b, "0.10000000000000001");
  CHECK_EQ_INT(v.type, DF_TDECIMAL);
  CHECK(b.p[0] == 0xc7 || (b.p[0] >= 0xd4 && b.p[0] <= 0xd8));
  CHECK_EQ_INT(df__dec_from_value(&v, &d), DF_OK);
  {
    char buf[DF_DEC_STR_MAX];
    df__dec_str(&d, buf, sizeof buf);
    CHECK(strcmp(buf, "0.10000000000000001") == 0);
  }
  /* a decimal compares with every kind of number */
  w = vf(0.1);
  CMP(v, w, 1);
  w = vi(1);
  CMP(v, w, -1);
  v = number_back(&b, "12345678901234567890123456789012345678");
  CHECK_EQ_INT(v.type, DF_TDECIMAL);
  CMP(v, vu(UINT64_MAX), 1);
  CMP(v, vf(1.2345678901234568e37),
      -1); /* 12345678901234568000000000000000000000 */
  CMP(v, vs_(DF_TSTR, "1", 1), 2);
  /* every payload length takes the smallest ext form */
  for (i = 1; i <= 38; i++) {
    char digits[64];
    int k;
    for (k = 0; k < i; k++) digits[k] = (char)('1' + k % 9);
    snprintf(digits + i, sizeof digits - (size_t)i, "e-%d", 60);
    v = number_back(&b, digits);
    if (i <= 15) { /* a double holds up to 15 digits exactly */
      CHECK_EQ_INT(v.type, DF_TFLOAT);
      continue;
    }
    if (i >= 18) CHECK_EQ_INT(v.type, DF_TDECIMAL);
    if (v.type != DF_TDECIMAL) continue;
    n = v.n;
    CHECK(b.len ==
          n + (n == 1 || n == 2 || n == 4 || n == 8 || n == 16 ? 2 : 3));
  }
  /* malformed decimals: unknown ext type, non-canonical or infinite
   * payload, zero (an int's job), truncated */
  {
    const unsigned char bad1[] = {0xd4, 0x07, 0x12};
    const unsigned char bad2[] = {0xd5, 0x01, 0x13, 0x80};
    const unsigned char bad3[] = {0xd4, 0x01, 0x14};
    const unsigned char bad4[] = {0xd4, 0x01, 0x12};
    const unsigned char bad5[] = {0xc7, 0x04, 0x01, 0x13, 0x80, 0x01};
    const unsigned char ok[] = {0xc7, 0x04, 0x01, 0x13, 0x80, 0x01, 0x20};
    CHECK_EQ_INT(validate_exact(bad1, sizeof bad1, 0), DF_ECORRUPT);
    CHECK_EQ_INT(validate_exact(bad2, sizeof bad2, 0), DF_ECORRUPT);
    CHECK_EQ_INT(validate_exact(bad3, sizeof bad3, 0), DF_ECORRUPT);
    CHECK_EQ_INT(validate_exact(bad4, sizeof bad4, 0), DF_ECORRUPT);
    CHECK_EQ_INT(validate_exact(bad5, sizeof bad5, 0), DF_ECORRUPT);
    CHECK_EQ_INT(validate_exact(ok, sizeof ok, 0), 0);
  }
  df__buf_free(&b);
}

/* Encode the elements (values given as Lua-like strings: "s:x", "b:x",
 * "n:1.5") and finish them into a set of kind. */
static int make_set(df_buf *b, df_type kind, const char *const *elems, size_t n,
                    const char **why) {
  size_t i;
  df__buf_reset(b);
  df__mp_put_map(b, 1);
  df__mp_put_str(b, "s", 1);
  {
    size_t start = b->len;
    for (i = 0; i < n; i++) {
      const char *e = elems[i];
      if (e[0] == 's')
        df__mp_put_str(b, e + 2, strlen(e + 2));
      else if (e[0] == 'b')
        df__mp_put_bin(b, e + 2, strlen(e + 2));
      else if (e[0] == 'f')
        df__mp_put_float(b, strtod(e + 2, NULL));
      else {
        df_dec d = dec_of(e + 2);
        df__mp_put_dec(b, &d);
      }
    }
    return df__mp_finish_set(b, start, kind, n, why);
  }
}

static void test_sets(void) {
  df_buf b, c;
  df_value v, w, x;
  const char *why;
  const char *ss[] = {"s:pear", "s:apple", "s:fig", "s:app"};
  const char *ns[] = {"n:10", "n:-1.5", "n:0.10000000000000001", "f:0.1",
                      "n:1e20"};
  const char *bs[] = {"b:\x02", "b:\x01\x02", "b:\x01"};
  df__buf_init(&b);
  df__buf_init(&c);
  CHECK_EQ_INT(make_set(&b, DF_TSS, ss, 4, &why), DF_OK);
  CHECK_EQ_INT(validate_exact(b.p, b.len, 1), 0);
  CHECK_EQ_INT(df__mp_map_find(b.p, b.len, "s", 1, &v, NULL, NULL), 1);
  CHECK_EQ_INT(v.type, DF_TSS);
  CHECK_EQ_UINT(v.n, 4);
  {
    /* sorted bytewise, a prefix first */
    const unsigned char *p = (const unsigned char *)v.s, *end = p + v.u;
    const char *want[] = {"app", "apple", "fig", "pear"};
    size_t i;
    for (i = 0; i < 4; i++) {
      CHECK_EQ_INT(df__mp_read(&p, end, &x), 0);
      CHECK(x.type == DF_TSTR && x.n == strlen(want[i]) &&
            memcmp(x.s, want[i], x.n) == 0);
    }
    CHECK(p == end);
  }
  x = vs_(DF_TSTR, "fig", 3);
  CHECK_EQ_INT(df__mp_set_contains(&v, &x), 1);
  x = vs_(DF_TSTR, "figs", 4);
  CHECK_EQ_INT(df__mp_set_contains(&v, &x), 0);
  x = vs_(DF_TBIN, "fig", 3);
  CHECK_EQ_INT(df__mp_set_contains(&v, &x), 0);
  /* the same elements in another order make an equal set */
  {
    const char *ss2[] = {"s:fig", "s:app", "s:pear", "s:apple"};
    CHECK_EQ_INT(make_set(&c, DF_TSS, ss2, 4, &why), DF_OK);
    CHECK_EQ_INT(b.len, c.len);
    CHECK(memcmp(b.p, c.p, b.len) == 0);
    CHECK_EQ_INT(df__mp_map_find(c.p, c.len, "s", 1, &w, NULL, NULL), 1);
    CMP(v, w, 0);
    CHECK_EQ_INT(make_set(&c, DF_TSS, ss2, 3, &why), DF_OK);
    CHECK_EQ_INT(df__mp_map_find(c.p, c.len, "s", 1, &w, NULL, NULL), 1);
    CMP(v, w, 2);
  }
  /* numbers: sorted by value, every kind of number */
  CHECK_EQ_INT(make_set(&b, DF_TNS, ns, 5, &why), DF_OK);
  CHECK_EQ_INT(validate_exact(b.p, b.len, 1), 0);
  CHECK_EQ_INT(df__mp_map_find(b.p, b.len, "s", 1, &v, NULL, NULL), 1);
  CHECK_EQ_INT(v.type, DF_TNS);
  x = vf(0.1);
  CHECK_EQ_INT(df__mp_set_contains(&v, &x), 1);
  x = vi(10);
  CHECK_EQ_INT(df__mp_set_contains(&v, &x), 1);
  x = vf(10.0);
  CHECK_EQ_INT(df__mp_set_contains(&v, &x), 1);
  x = vi(11);
  CHECK_EQ_INT(df__mp_set_contains(&v, &x), 0);
  {
    const unsigned char *p = (const unsigned char *)v.s, *end = p + v.u;
    df_value prev;
    size_t i;
    for (i = 0; i < v.n; i++) {
      CHECK_EQ_INT(df__mp_read(&p, end, &x), 0);
      if (i) CHECK_EQ_INT(df__value_cmp(&prev, &x), -1);
      prev = x;
    }
  }
  CHECK_EQ_INT(make_set(&b, DF_TBS, bs, 3, &why), DF_OK);
  CHECK_EQ_INT(validate_exact(b.p, b.len, 1), 0);
  /* refused: duplicates (1 and 1.0 are one number), wrong kinds, none */
  {
    const char *dup[] = {"n:1", "f:1.0"};
    const char *dup_s[] = {"s:a", "s:b", "s:a"};
    const char *mixed[] = {"s:a", "b:a"};
    const char *nan[] = {"f:nan"};
    CHECK_EQ_INT(make_set(&b, DF_TNS, dup, 2, &why), DF_EVALIDATION);
    CHECK(why && strstr(why, "once"));
    CHECK_EQ_INT(make_set(&b, DF_TSS, dup_s, 3, &why), DF_EVALIDATION);
    CHECK_EQ_INT(make_set(&b, DF_TSS, mixed, 2, &why), DF_EVALIDATION);
    CHECK_EQ_INT(make_set(&b, DF_TBS, mixed, 2, &why), DF_EVALIDATION);
    CHECK_EQ_INT(make_set(&b, DF_TNS, mixed, 1, &why), DF_EVALIDATION);
    CHECK_EQ_INT(make_set(&b, DF_TNS, nan, 1, &why), DF_EVALIDATION);
    CHECK_EQ_INT(make_set(&b, DF_TSS, mixed, 0, &why), DF_EVALIDATION);
  }
  /* hand-made payloads the validator refuses: unsorted, duplicate, empty,
   * wrong element type, bytes after the array, not an array */
  {
    const unsigned char unsorted[] = {0xc7, 5,   0x02, 0x92,
                                      0xa1, 'b', 0xa1, 'a'};
    const unsigned char dup[] = {0xc7, 5, 0x02, 0x92, 0xa1, 'a', 0xa1, 'a'};
    const unsigned char empty[] = {0xd4, 0x02, 0x90};
    const unsigned char wrong[] = {0xd5, 0x02, 0x91, 0x01};
    const unsigned char extra[] = {0xd6, 0x03, 0x91, 0x01, 0x02, 0x03};
    const unsigned char notarr[] = {0xd4, 0x03, 0x01};
    const unsigned char good[] = {0xc7, 5, 0x02, 0x92, 0xa1, 'a', 0xa1, 'b'};
    const unsigned char goodn[] = {0xd6, 0x03, 0x93, 0x01, 0x02, 0x03};
    const unsigned char *p = unsorted;
    CHECK_EQ_INT(validate_exact(unsorted, sizeof unsorted, 0), DF_ECORRUPT);
    CHECK_EQ_INT(validate_exact(dup, sizeof dup, 0), DF_ECORRUPT);
    CHECK_EQ_INT(validate_exact(empty, sizeof empty, 0), DF_ECORRUPT);
    CHECK_EQ_INT(validate_exact(wrong, sizeof wrong, 0), DF_ECORRUPT);
    CHECK_EQ_INT(validate_exact(extra, sizeof extra, 0), DF_ECORRUPT);
    CHECK_EQ_INT(validate_exact(notarr, sizeof notarr, 0), DF_ECORRUPT);
    CHECK_EQ_INT(validate_exact(good, sizeof good, 0), 0);
    CHECK_EQ_INT(validate_exact(goodn, sizeof goodn, 0), 0);
    /* skipping does not look inside */
    CHECK_EQ_INT(df__mp_skip(&p, unsorted + sizeof unsorted), 0);
    CHECK(p == unsorted + sizeof unsorted);
  }
  /* an item being written may hold no NaN, even inside a list; it may
   * hold the infinities */
  df__buf_reset(&b);
  df__mp_put_map(&b, 2);
  df__mp_put_str(&b, "a", 1);
  df__mp_put_float(&b, INFINITY);
  df__mp_put_str(&b, "l", 1);
  df__mp_put_array(&b, 2);
  df__mp_put_int(&b, 1);
  df__mp_put_float(&b, NAN);
  CHECK_EQ_INT(df__mp_validate(b.p, b.len, DF_MAX_DEPTH), 0);
  CHECK_EQ_INT(df__mp_validate_item(b.p, b.len), DF_EVALIDATION);
  b.len -= 9;
  df__mp_put_float(&b, -INFINITY);
  CHECK_EQ_INT(df__mp_validate_item(b.p, b.len), 0);
  {
    const unsigned char nan32[] = {0x81, 0xa1, 'x', 0xca, 0x7f, 0xc0, 0, 0};
    const unsigned char inf32[] = {0x81, 0xa1, 'x', 0xca, 0x7f, 0x80, 0, 0};
    CHECK_EQ_INT(df__mp_validate_item(nan32, sizeof nan32), DF_EVALIDATION);
    CHECK_EQ_INT(df__mp_validate_item(inf32, sizeof inf32), 0);
    CHECK_EQ_INT(df__mp_validate_item(nan32, sizeof nan32 - 1), DF_ECORRUPT);
  }
  df__buf_free(&b);
  df__buf_free(&c);
}

/* --------------------------------------------- keeping stored bytes */

/* The bytes of attribute `name` in item m. */
static int attr_bytes(const df_buf *m, const char *name,
                      const unsigned char **s, const unsigned char **e) {
  return df__mp_map_find(m->p, m->len, name, strlen(name), NULL, s, e) == 1;
}

static int same_attr(const df_buf *a, const df_buf *b, const char *name) {
  const unsigned char *as, *ae, *bs, *be;
  return attr_bytes(a, name, &as, &ae) && attr_bytes(b, name, &bs, &be) &&
         ae - as == be - bs && memcmp(as, bs, (size_t)(ae - as)) == 0;
}

static void test_keep_bytes(void) {
  df_buf old, nw, out;
  df__buf_init(&old);
  df__buf_init(&nw);
  df__buf_init(&out);
  /* stored: a = 1.0 (float), b = 2^53 + 1, m = {x = 1.0, y = [1, 2.5]},
   * l = [1.0, 2], s = NS {1, 2.5}, z = -0.0 */
  df__mp_put_map(&old, 6);
  df__mp_put_str(&old, "a", 1);
  df__mp_put_float(&old, 1.0);
  df__mp_put_str(&old, "b", 1);
  df__mp_put_int(&old, 9007199254740993LL);
  df__mp_put_str(&old, "m", 1);
  df__mp_put_map(&old, 2);
  df__mp_put_str(&old, "x", 1);
  df__mp_put_float(&old, 1.0);
  df__mp_put_str(&old, "y", 1);
  df__mp_put_array(&old, 2);
  df__mp_put_int(&old, 1);
  df__mp_put_float(&old, 2.5);
  df__mp_put_str(&old, "l", 1);
  df__mp_put_array(&old, 2);
  df__mp_put_float(&old, 1.0);
  df__mp_put_int(&old, 2);
  df__mp_put_str(&old, "s", 1);
  {
    size_t st = old.len;
    df__mp_put_int(&old, 1);
    df__mp_put_float(&old, 2.5);
    CHECK_EQ_INT(df__mp_finish_set(&old, st, DF_TNS, 2, NULL), DF_OK);
  }
  df__mp_put_str(&old, "z", 1);
  df__mp_put_float(&old, -0.0);
  /* what Lua 5.1 writes back after reading it: integers for integral
   * floats, 1.0 in the set written 1.0, keys in another order */
  df__mp_put_map(&nw, 6);
  df__mp_put_str(&nw, "z", 1);
  df__mp_put_int(&nw, 0);
  df__mp_put_str(&nw, "l", 1);
  df__mp_put_array(&nw, 2);
  df__mp_put_int(&nw, 1);
  df__mp_put_int(&nw, 2);
  df__mp_put_str(&nw, "m", 1);
  df__mp_put_map(&nw, 2);
  df__mp_put_str(&nw, "y", 1);
  df__mp_put_array(&nw, 2);
  df__mp_put_int(&nw, 1);
  df__mp_put_float(&nw, 2.5);
  df__mp_put_str(&nw, "x", 1);
  df__mp_put_int(&nw, 1);
  df__mp_put_str(&nw, "s", 1);
  {
    size_t st = nw.len;
    df__mp_put_float(&nw, 1.0);
    df__mp_put_float(&nw, 2.5);
    CHECK_EQ_INT(df__mp_finish_set(&nw, st, DF_TNS, 2, NULL), DF_OK);
  }
  df__mp_put_str(&nw, "b", 1);
  df__mp_put_int(&nw, 9007199254740993LL);
  df__mp_put_str(&nw, "a", 1);
  df__mp_put_int(&nw, 1);
  CHECK_EQ_INT(df__item_keep_bytes(old.p, old.len, nw.p, nw.len, &out), DF_OK);
  /* nothing changed: the stored bytes, byte for byte */
  CHECK(out.len == old.len && memcmp(out.p, old.p, old.len) == 0);
  /* one attribute changed and one added: the others keep their bytes */
  nw.len = 0;
  df__mp_put_map(&nw, 4);
  df__mp_put_str(&nw, "a", 1);
  df__mp_put_int(&nw, 1);
  df__mp_put_str(&nw, "m", 1);
  df__mp_put_map(&nw, 2);
  df__mp_put_str(&nw, "x", 1);
  df__mp_put_int(&nw, 2); /* changed */
  df__mp_put_str(&nw, "y", 1);
  df__mp_put_array(&nw, 2);
  df__mp_put_int(&nw, 1);
  df__mp_put_int(&nw, 3); /* changed */
  df__mp_put_str(&nw, "l", 1);
  df__mp_put_array(&nw, 3); /* longer: new */
  df__mp_put_int(&nw, 1);
  df__mp_put_int(&nw, 2);
  df__mp_put_int(&nw, 3);
  df__mp_put_str(&nw, "new", 3);
  df__mp_put_str(&nw, "v", 1);
  CHECK_EQ_INT(df__item_keep_bytes(old.p, old.len, nw.p, nw.len, &out), DF_OK);
  CHECK_EQ_INT(df__mp_validate(out.p, out.len, DF_MAX_DEPTH), 0);
  CHECK(same_attr(&out, &old, "a"));  /* 1.0 stays a float */
  CHECK(!same_attr(&out, &old, "m")); /* changed inside */
  CHECK(same_attr(&out, &nw, "l"));   /* another length: the new one */
  CHECK(same_attr(&out, &nw, "new"));
  {
    const unsigned char *ms, *me;
    df_value x;
    df_path path;
    CHECK(attr_bytes(&out, "m", &ms, &me));
    df__path_parse("m.x", 3, &path);
    CHECK_EQ_INT(df__mp_path_find(out.p, out.len, &path, &x, NULL, NULL), 1);
    CHECK(x.type == DF_TINT && x.i == 2);
    df__path_parse("m.y[0]", 6, &path);
    CHECK_EQ_INT(df__mp_path_find(out.p, out.len, &path, &x, NULL, NULL), 1);
    CHECK(x.type == DF_TINT && x.i == 1);
    df__path_parse("m.y[1]", 6, &path);
    CHECK_EQ_INT(df__mp_path_find(out.p, out.len, &path, &x, NULL, NULL), 1);
    CHECK(x.type == DF_TINT && x.i == 3);
  }
  /* a string is never the number it spells; no old item: the new bytes */
  nw.len = 0;
  df__mp_put_map(&nw, 1);
  df__mp_put_str(&nw, "a", 1);
  df__mp_put_str(&nw, "1", 1);
  CHECK_EQ_INT(df__item_keep_bytes(old.p, old.len, nw.p, nw.len, &out), DF_OK);
  CHECK(out.len == nw.len && memcmp(out.p, nw.p, nw.len) == 0);
  CHECK_EQ_INT(df__item_keep_bytes(NULL, 0, nw.p, nw.len, &out), DF_OK);
  CHECK(out.len == nw.len && memcmp(out.p, nw.p, nw.len) == 0);
  CHECK_EQ_INT(df__item_keep_bytes(old.p, old.len, "\xc1", 1, &out),
               DF_ECORRUPT);
  df__buf_free(&old);
  df__buf_free(&nw);
  df__buf_free(&out);
}

/* -------------------------------------------------------------- fuzz */

static void fuzz_one(const unsigned char *data, size_t n) {
  unsigned char *q = dup_exact(data, n);
  const unsigned char *p = q;
  df_value v;
  df_path pth;
  const unsigned char *vs, *ve;
  (void)df__mp_validate(q, n, DF_MAX_DEPTH);
  (void)df__mp_skip(&p, q + n);
  CHECK(p >= q && p <= q + n);
  p = q;
  while (p < q + n && df__mp_read(&p, q + n, &v) == 0) {
  }
  CHECK(p <= q + n);
  if (df__mp_map_find(q, n, "id", 2, &v, &vs, &ve) == 1)
    CHECK(vs >= q && ve <= q + n && vs < ve);
  df__path_parse("data.items[1].x", 15, &pth);
  if (df__mp_path_find(q, n, &pth, &v, &vs, &ve) == 1)
    CHECK(vs >= q && ve <= q + n && vs < ve);
  free(q);
}

static void test_fuzz(void) {
  df_buf b;
  unsigned char buf[64];
  int k;
  size_t i;
  df__buf_init(&b);
  build_item(&b);
  for (k = 0; k < 20000; k++) { /* mutated items */
    unsigned char *m = dup_exact(b.p, b.len);
    int flips = 1 + (int)(rnd() % 4);
    while (flips--) m[rnd() % b.len] = (unsigned char)rnd();
    fuzz_one(m, (size_t)(rnd() % (b.len + 1)));
    free(m);
  }
  for (k = 0; k < 20000; k++) { /* random bytes biased to headers */
    size_t n = rnd() % sizeof buf;
    for (i = 0; i < n; i++) {
      uint64_t r = rnd();
      buf[i] =
          (r & 0x100) ? (unsigned char)(0x80 | (r & 0x7f)) : (unsigned char)r;
    }
    fuzz_one(buf, n);
  }
  df__buf_free(&b);
}

/* --------------------------------------------------- alloc and errors */

static void test_alloc_errors(void) {
  df_buf b;
  char msg[16];
  int i;
  char *s;

  df__buf_init(&b);
  for (i = 0; i < 1000; i++)
    CHECK_EQ_INT(df__buf_putc(&b, (unsigned char)i), 0);
  CHECK_EQ_UINT(b.len, 1000);
  CHECK(b.cap >= 1000 && (b.cap & (b.cap - 1)) == 0); /* doubling from 64 */
  CHECK_EQ_INT(b.p[999], (unsigned char)999);
  CHECK_EQ_INT(df__buf_append(&b, "xyz", 3), 0);
  CHECK_EQ_INT(df__buf_append(&b, NULL, 0), 0);
  CHECK_EQ_UINT(b.len, 1003);
  CHECK_EQ_INT(df__buf_reserve(&b, (size_t)-1), DF_ENOMEM);
  CHECK(b.failed);
  CHECK_EQ_INT(df__buf_putc(&b, 1), DF_ENOMEM);
  CHECK_EQ_INT(df__mp_put_nil(&b), DF_ENOMEM);
  CHECK_EQ_UINT(b.len, 1003);
  df__buf_reset(&b);
  CHECK(!b.failed && b.len == 0);
  CHECK_EQ_INT(df__buf_append(&b, "ok", 2), 0);
  df__buf_free(&b);
  df__buf_free(&b);
  df__buf_free(NULL);
  df__free(NULL);
  s = df__strdup("hello");
  CHECK_EQ_STR(s, "hello");
  df__free(s);
  CHECK(df__strdup(NULL) == NULL);

#ifdef DF_FAULT_INJECTION
  CHECK_EQ_INT(df_test_fail_alloc(3), 0);
  {
    void *a = df__malloc(8), *c = df__malloc(8), *d = df__malloc(8),
         *e = df__malloc(8);
    CHECK(a && c && !d && e); /* only the third fails */
    df__free(a);
    df__free(c);
    df__free(e);
  }
  df_test_fail_alloc(1);
  CHECK(df__strdup("x") == NULL);
  df__buf_init(&b);
  df_test_fail_alloc(1);
  CHECK_EQ_INT(df__mp_put_str(&b, "abc", 3), DF_ENOMEM);
  CHECK(b.failed);
  CHECK_EQ_INT(df__mp_put_str(&b, "abc", 3), DF_ENOMEM);
  df__buf_reset(&b);
  CHECK_EQ_INT(df__mp_put_str(&b, "abc", 3), 0);
  df__buf_free(&b);
  df_test_fail_alloc(5);
  CHECK_EQ_INT(df_test_fail_alloc(0), 0);
  s = df__malloc(1);
  CHECK(s != NULL);
  df__free(s);
#else
  CHECK_EQ_INT(df_test_fail_alloc(1), DF_EINVAL);
  s = df__malloc(1);
  CHECK(s != NULL);
  df__free(s);
#endif

  CHECK_EQ_STR(df_strerror(DF_OK), "ok");
  CHECK_EQ_STR(df_strerror(DF_ENOMEM), "out of memory");
  CHECK_EQ_STR(df_strerror(DF_ESCHEMA), "schema differs from the stored one");
  CHECK_EQ_STR(df_strerror(12345), "unknown error");
  CHECK_EQ_STR(df_errname(DF_ENOMEM), "ENOMEM");
  CHECK_EQ_STR(df_errname(DF_ECORRUPT), "ECORRUPT");
  CHECK_EQ_STR(df_errname(DF_OK), "OK");
  CHECK(df_errname(-999) != NULL);
  /* the stable code strings: one table for C, Lua and the server */
  CHECK_EQ_STR(df_error_name(DF_OK), "None");
  CHECK_EQ_STR(df_error_name(DF_ENOMEM), "NoMemory");
  CHECK_EQ_STR(df_error_name(DF_EINVAL), "InvalidArgument");
  CHECK_EQ_STR(df_error_name(DF_EVALIDATION), "ValidationError");
  CHECK_EQ_STR(df_error_name(DF_ENOTFOUND), "NotFound");
  CHECK_EQ_STR(df_error_name(DF_ECONDITION), "ConditionalCheckFailed");
  CHECK_EQ_STR(df_error_name(DF_EIO), "IOError");
  CHECK_EQ_STR(df_error_name(DF_ECORRUPT), "Corrupt");
  CHECK_EQ_STR(df_error_name(DF_EFORKED), "Forked");
  CHECK_EQ_STR(df_error_name(DF_ECLOSED), "Closed");
  CHECK_EQ_STR(df_error_name(DF_EREADONLY), "ReadOnly");
  CHECK_EQ_STR(df_error_name(DF_EBUSY), "Busy");
  CHECK_EQ_STR(df_error_name(DF_ERETRY), "Retry");
  CHECK_EQ_STR(df_error_name(DF_EREADERS), "ReadersFull");
  CHECK_EQ_STR(df_error_name(DF_EVERSION), "VersionMismatch");
  CHECK_EQ_STR(df_error_name(DF_EDISKFULL), "IOError");
  CHECK_EQ_STR(df_error_name(DF_EACCESS), "IOError");
  CHECK_EQ_STR(df_error_name(DF_ESCHEMA), "ValidationError");
  CHECK_EQ_STR(df_error_name(-999), "Error");
  CHECK_EQ_INT(df__fmt(msg, sizeof msg, DF_EIO, "%s %d", "abc", 42), DF_EIO);
  CHECK_EQ_STR(msg, "abc 42");
  CHECK_EQ_INT(df__fmt(msg, sizeof msg, DF_EINVAL, "%s", "0123456789abcdefXYZ"),
               DF_EINVAL);
  CHECK_EQ_STR(msg, "0123456789abcde");
  CHECK_EQ_INT(df__fmt(NULL, 0, DF_ENOMEM, "x"), DF_ENOMEM);
}

int main(void) {
  RUN_TEST(test_scalars);
  RUN_TEST(test_containers);
  RUN_TEST(test_depth);
  RUN_TEST(test_map_find);
  RUN_TEST(test_paths);
  RUN_TEST(test_path_grammar);
  RUN_TEST(test_value_cmp);
  RUN_TEST(test_value_cmp_random);
  RUN_TEST(test_decimals);
  RUN_TEST(test_sets);
  RUN_TEST(test_keep_bytes);
  RUN_TEST(test_fuzz);
  RUN_TEST(test_alloc_errors);
  return check_done("test_codec");
}
