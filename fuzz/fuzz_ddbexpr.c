/*
 * fuzz_ddbexpr.c -- libFuzzer harness for DynamoDB's expression language
 * (ddbexpr.c) and the update engine (update.c).
 *
 * Input: one byte choosing the kind (condition, filter, key condition,
 * update, projection), the expression up to the first NUL byte, then item
 * bytes.  The names and values are fixed: #a #b #n and :v :s :l :t :z.
 * Compiling must give DF_OK, or DF_EVALIDATION with a NUL-terminated
 * message in DynamoDB's form, or DF_ENOMEM; a compiled condition must
 * evaluate to 0, 1 or DF_ECORRUPT (never DF_ECORRUPT on a well-formed
 * item); a projection or an update applied to a well-formed item must give
 * a well-formed map (or, for an update, DF_EVALIDATION with a message).
 * Nothing leaks (LeakSanitizer).
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

static void put_s(df_buf *b, const char *s) {
  df__mp_put_str(b, s, strlen(s));
}

static df_ddb_args *make_args(void) {
  df_buf n, v;
  df_ddb_args *a = NULL;
  char err[200];
  df__buf_init(&n);
  df__buf_init(&v);
  df__mp_put_map(&n, 3);
  put_s(&n, "#a");
  put_s(&n, "a");
  put_s(&n, "#b");
  put_s(&n, "b.c");
  put_s(&n, "#n");
  put_s(&n, "n");
  df__mp_put_map(&v, 5);
  put_s(&v, ":v");
  df__mp_put_int(&v, 1);
  put_s(&v, ":s");
  put_s(&v, "x");
  put_s(&v, ":l");
  df__mp_put_array(&v, 2);
  df__mp_put_int(&v, 1);
  df__mp_put_float(&v, 2.5);
  put_s(&v, ":t");
  put_s(&v, "S");
  put_s(&v, ":z");
  df__mp_put_int(&v, 0);
  CHECK(!n.failed && !v.failed);
  if (df_ddb_args_new(n.p, n.len, v.p, v.len, &a, err, sizeof err)) a = NULL;
  df__buf_free(&n);
  df__buf_free(&v);
  return a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *src, *nul, *item;
  size_t slen, ilen;
  int kind, rc, valid;
  char err[700];
  df_ddb_args *a;
  if (size < 1) return 0;
  kind = 1 + data[0] % 5;
  src = data + 1;
  nul = memchr(src, 0, size - 1);
  slen = nul ? (size_t)(nul - src) : size - 1;
  item = nul ? nul + 1 : NULL;
  ilen = nul ? size - 1 - slen - 1 : 0;
  if (slen > 5000) return 0;
  valid = ilen && df__mp_validate(item, ilen, DF_MAX_DEPTH) == 0;
  a = make_args();
  if (!a) return 0; /* out of memory */
  memset(err, 'x', sizeof err);
  if (kind == DF_DDB_UPDATE) {
    df_update *u = NULL;
    rc = df_ddb_update(a, (const char *)src, slen, &u, err, sizeof err);
    CHECK(memchr(err, 0, sizeof err) != NULL || rc == DF_OK);
    CHECK(rc == DF_OK || rc == DF_EVALIDATION || rc == DF_ENOMEM);
    CHECK(rc != DF_EVALIDATION ||
          !strncmp(err, "Invalid UpdateExpression: ", 26));
    if (rc == DF_OK && (valid || !ilen)) {
      static const char *keys[] = {"PK"};
      const unsigned char key[] = {0x81, 0xa2, 'P', 'K', 0xa1, 'p'};
      const void *out;
      size_t olen;
      int r =
          df_update_apply(u, valid ? item : NULL, valid ? ilen : 0, key,
                          sizeof key, keys, 1, &out, &olen, err, sizeof err);
      CHECK(r == DF_OK || r == DF_EVALIDATION || r == DF_ENOMEM);
      if (r == DF_OK) CHECK(df__mp_validate(out, olen, DF_MAX_DEPTH + 1) == 0);
    }
    df_update_free(u);
  } else if (kind == DF_DDB_PROJECTION) {
    df_projection *p = NULL;
    rc = df_ddb_projection(a, (const char *)src, slen, &p, err, sizeof err);
    CHECK(rc == DF_OK || rc == DF_EVALIDATION || rc == DF_ENOMEM);
    if (rc == DF_OK && valid) {
      const void *out;
      size_t olen;
      int r = df_projection_apply(p, item, ilen, &out, &olen);
      CHECK(r == DF_OK || r == DF_ENOMEM);
      if (r == DF_OK) CHECK(df__mp_validate(out, olen, DF_MAX_DEPTH) == 0);
    }
    df_projection_free(p);
  } else if (kind == DF_DDB_KEY_CONDITION) {
    df_key_condition kc;
    rc = df_ddb_key_condition(a, (const char *)src, slen, "PK", "SK", &kc, err,
                              sizeof err);
    CHECK(rc == DF_OK || rc == DF_EVALIDATION || rc == DF_ENOMEM);
    CHECK(rc != DF_OK || kc.pk.type != DF_TNONE);
  } else {
    df_expr *e = NULL;
    rc =
        df_ddb_condition(a, kind, (const char *)src, slen, &e, err, sizeof err);
    CHECK(memchr(err, 0, sizeof err) != NULL || rc == DF_OK);
    CHECK(rc == DF_OK || rc == DF_EVALIDATION || rc == DF_ENOMEM);
    CHECK(rc != DF_EVALIDATION || !strncmp(err, "Invalid ", 8));
    if (rc == DF_OK) {
      int r1 = df_expr_eval(e, item, ilen), r2 = df_expr_eval(e, item, ilen);
      CHECK(r1 == 0 || r1 == 1 || r1 == DF_ECORRUPT);
      CHECK(r1 == r2);
      if (valid) CHECK(r1 != DF_ECORRUPT);
    }
    df_expr_free(e);
  }
  df_ddb_args_free(a);
  return 0;
}
