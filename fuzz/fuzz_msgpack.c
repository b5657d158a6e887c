/*
 * fuzz_msgpack.c -- libFuzzer harness for the MessagePack reader (codec.c).
 *
 * Input: byte 0 chooses a validation depth, byte 1 the length L of a
 * document path, bytes 2..2+L the path text ("a.b[3].c"), the rest the
 * MessagePack bytes.  Whatever the bytes, the reader must stay inside
 * them (ASan), terminate, and agree with itself:
 *  - df__mp_validate(depth) accepts exactly what one df__mp_skip consumes
 *    to the end, when the nesting is within depth;
 *  - a validated value re-encoded with the writer validates again, and
 *    re-encoding that gives the same bytes (the writer is canonical; sets
 *    go through the set writer, decimals keep their payload);
 *  - df__mp_map_find and df__mp_path_find return a value whose bytes lie
 *    inside the input and read back as the value reported;
 *  - df__value_cmp is antisymmetric on the scalars read;
 *  - df__item_json (itemjson.c) returns one of its codes, leaves the
 *    buffer as it found it unless it succeeds, and succeeds only on a
 *    complete map, with text that starts with '{' and ends with '}'.
 * A broken invariant aborts, which libFuzzer reports as a crash.
 */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Re-encode the one value at *p with the writer.  0 or -1. */
static int reencode(const unsigned char **p, const unsigned char *end,
                    df_buf *out, int depth) {
  df_value v;
  size_t i;
  if (depth > DF_MAX_DEPTH + 1) return -1;
  if (df__mp_read(p, end, &v) != 0) return -1;
  switch (v.type) {
    case DF_TARRAY:
      df__mp_put_array(out, (uint32_t)v.n);
      for (i = 0; i < v.n; i++)
        if (reencode(p, end, out, depth + 1)) return -1;
      return 0;
    case DF_TMAP:
      df__mp_put_map(out, (uint32_t)v.n);
      for (i = 0; i < 2 * v.n; i++)
        if (reencode(p, end, out, depth + 1)) return -1;
      return 0;
    case DF_TFLOAT:
      return df__mp_put_float(out, v.f) ? -1 : 0;
    case DF_TDECIMAL:
      return df__mp_put_ext(out, DF_EXT_DECIMAL, v.s, v.n) ? -1 : 0;
    case DF_TSS:
    case DF_TNS:
    case DF_TBS: {
      /* the elements again, through the set writer (sorted, distinct) */
      const unsigned char *q = (const unsigned char *)v.s;
      size_t start = out->len;
      for (i = 0; i < v.n; i++)
        if (reencode(&q, q + v.u - (size_t)(q - (const unsigned char *)v.s),
                     out, depth + 1))
          return -1;
      return df__mp_finish_set(out, start, v.type, v.n, NULL) ? -1 : 0;
    }
    default:
      return df__mp_put_value(out, &v) ? -1 : 0;
  }
}

static void check_found(const unsigned char *data, size_t len, int r,
                        const df_value *v, const unsigned char *vs,
                        const unsigned char *ve) {
  CHECK(r == 0 || r == 1 || r == DF_ECORRUPT);
  if (r == 1) {
    const unsigned char *q = vs, *e = vs;
    df_value again;
    CHECK(vs >= data && ve <= data + len && vs < ve);
    CHECK(df__mp_read(&q, ve, &again) == 0);
    CHECK(again.type == v->type && again.n == v->n);
    CHECK(df__mp_skip(&e, data + len) == 0 && e == ve);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const unsigned char *p, *end, *doc;
  size_t plen, len;
  int depth, rc;
  df_path path;
  df_value v, prev;
  int have_prev = 0;

  if (size < 2) return 0;
  depth = data[0] % (DF_MAX_DEPTH + 3) - 1; /* -1 .. DF_MAX_DEPTH + 1 */
  plen = data[1];
  if (plen > size - 2) plen = size - 2;
  doc = data + 2 + plen;
  len = size - 2 - plen;
  end = doc + len;

  /* validate versus skip */
  rc = df__mp_validate(doc, len, depth);
  CHECK(rc == 0 || rc == DF_ECORRUPT);
  if (rc == 0 && depth >= DF_MAX_DEPTH) {
    df_buf a, b;
    p = doc;
    CHECK(df__mp_skip(&p, end) == 0 && p == end);
    df__buf_init(&a);
    df__buf_init(&b);
    p = doc;
    CHECK(reencode(&p, end, &a, 1) == 0 && p == end);
    CHECK(df__mp_validate(a.p, a.len, DF_MAX_DEPTH) == 0);
    p = a.p;
    CHECK(reencode(&p, a.p + a.len, &b, 1) == 0);
    CHECK(a.len == b.len && memcmp(a.p, b.p, a.len) == 0);
    df__buf_free(&a);
    df__buf_free(&b);
  }

  /* walk scalars and containers headers one by one */
  p = doc;
  while (p < end) {
    const unsigned char *before = p;
    if (df__mp_read(&p, end, &v) != 0) {
      CHECK(p == before);
      break;
    }
    CHECK(p > before && p <= end);
    if (v.type == DF_TSTR || v.type == DF_TBIN)
      CHECK(v.s >= (const char *)doc && v.s + v.n <= (const char *)end);
    if (have_prev) {
      int a = df__value_cmp(&prev, &v), b = df__value_cmp(&v, &prev);
      CHECK(a >= -1 && a <= 2);
      CHECK(a == 2 ? b == 2 : a == -b);
    }
    if (v.type != DF_TARRAY && v.type != DF_TMAP) {
      prev = v;
      have_prev = 1;
    }
  }

  /* items as DynamoDB JSON */
  {
    df_buf j;
    size_t isize = 0;
    int r;
    df__buf_init(&j);
    CHECK(df__buf_append(&j, "[", 1) == 0);
    r = df__item_json(doc, len, &j, &isize);
    CHECK(r == DF_OK || r == DF_ECORRUPT || r == DF_EVALIDATION ||
          r == DF_ENOMEM);
    if (r == DF_OK) {
      p = doc;
      CHECK(df__mp_skip(&p, end) == 0 && p == end);
      CHECK(j.len >= 3 && j.p[1] == '{' && j.p[j.len - 1] == '}');
    } else {
      CHECK(j.len == 1 && !j.failed);
    }
    df__buf_free(&j);
  }

  /* attribute and path lookup */
  {
    const unsigned char *vs = NULL, *ve = NULL;
    const char *name = (const char *)data + 2;
    int r = df__mp_map_find(doc, len, name, plen, &v, &vs, &ve);
    check_found(doc, len, r, &v, vs, ve);
    if (df__path_parse(name, plen, &path) == 0) {
      CHECK(path.n >= 1 && path.n <= DF_MAX_DEPTH);
      vs = ve = NULL;
      r = df__mp_path_find(doc, len, &path, &v, &vs, &ve);
      check_found(doc, len, r, &v, vs, ve);
    }
  }
  return 0;
}
