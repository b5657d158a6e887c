/*
 * fuzz_expr.c -- libFuzzer harness for the filter-expression compiler and
 * evaluator (expr.c).
 *
 * Input: the expression source up to the first NUL byte, then item bytes
 * (MessagePack, usually malformed unless the corpus says otherwise).
 * Compiling must return DF_OK or DF_EVALIDATION (or DF_ENOMEM) with a
 * NUL-terminated message; evaluating a compiled expression must return 0,
 * 1 or DF_ECORRUPT, and the same answer twice; on a well-formed item it
 * must never be DF_ECORRUPT.  Nothing leaks (LeakSanitizer).
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nul = memchr(data, 0, size);
  size_t slen = nul ? (size_t)(nul - data) : size;
  const uint8_t *item = nul ? nul + 1 : NULL;
  size_t ilen = nul ? size - slen - 1 : 0;
  char err[128];
  df_expr *e = NULL;
  int rc, r1, r2;

  if (slen > 4096) return 0; /* long inputs only slow the search down */
  memset(err, 'x', sizeof err);
  rc = df_expr_compile((const char *)data, slen, &e, err, sizeof err);
  CHECK(memchr(err, 0, sizeof err) != NULL || rc == DF_OK);
  if (rc != DF_OK) {
    CHECK(rc == DF_EVALIDATION || rc == DF_ENOMEM);
    CHECK(rc != DF_EVALIDATION || err[0] != '\0');
    df_expr_free(e);
    return 0;
  }
  CHECK(e != NULL);
  r1 = df_expr_eval(e, item, ilen);
  r2 = df_expr_eval(e, item, ilen);
  CHECK(r1 == 0 || r1 == 1 || r1 == DF_ECORRUPT);
  CHECK(r1 == r2);
  if (ilen && df__mp_validate(item, ilen, DF_MAX_DEPTH) == 0)
    CHECK(r1 != DF_ECORRUPT);
  CHECK(df_expr_eval(e, NULL, 0) >= 0);
  df_expr_free(e);
  return 0;
}
