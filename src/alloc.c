/*
 * alloc.c -- the core's allocator wrappers and the growable df_buf.
 *
 * Invariant: every allocation of the core goes through df__malloc /
 * df__realloc / df__strdup, so a -DDF_FAULT_INJECTION build can make any
 * chosen one fail; a df_buf never has len > cap, and once an append fails
 * it stays `failed` (later appends do nothing) until df__buf_reset.
 *
 * The fault-injection countdown below (with the two counters beside it) is
 * the one global mutable state of the core besides the environment
 * registry; it exists only in test builds and is updated atomically.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#ifdef DF_FAULT_INJECTION
/* The one test-only global: allocations left before the one that fails
 * (1 = the next one), 0 = off. */
static long fail_countdown;
/* Test-only counters: whether the armed fault has fired, and how many
 * allocations are live (made and not yet freed), for leak checks. */
static int fail_fired;
static long live_allocs;

#if defined(__GNUC__) || defined(__clang__)
/* Returns 1 when this allocation must fail. */
static int should_fail(void) {
  long c = __atomic_load_n(&fail_countdown, __ATOMIC_SEQ_CST);
  while (c > 0) {
    if (__atomic_compare_exchange_n(&fail_countdown, &c, c - 1, 0,
                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
      if (c == 1) __atomic_store_n(&fail_fired, 1, __ATOMIC_SEQ_CST);
      return c == 1;
    }
  }
  return 0;
}

int df_test_fail_alloc(long nth) {
  __atomic_store_n(&fail_fired, 0, __ATOMIC_SEQ_CST);
  __atomic_store_n(&fail_countdown, nth > 0 ? nth : 0, __ATOMIC_SEQ_CST);
  return 0;
}

int df__test_alloc_fired(void) {
  return __atomic_load_n(&fail_fired, __ATOMIC_SEQ_CST);
}

long df__test_alloc_live(void) {
  return __atomic_load_n(&live_allocs, __ATOMIC_SEQ_CST);
}

#define count_live(d) __atomic_add_fetch(&live_allocs, (d), __ATOMIC_SEQ_CST)
#else
/* Without GCC atomics: good enough for single-threaded tests. */
static int should_fail(void) {
  if (fail_countdown <= 0) return 0;
  if (--fail_countdown != 0) return 0;
  fail_fired = 1;
  return 1;
}

int df_test_fail_alloc(long nth) {
  fail_fired = 0;
  fail_countdown = nth > 0 ? nth : 0;
  return 0;
}

int df__test_alloc_fired(void) {
  return fail_fired;
}
long df__test_alloc_live(void) {
  return live_allocs;
}
#define count_live(d) (live_allocs += (d))
#endif
#else
#define should_fail() 0
#define count_live(d) ((void)0)

int df_test_fail_alloc(long nth) {
  (void)nth;
  return DF_EINVAL;
}
#endif

/* Sizes of 0 are raised to 1 so that NULL always means failure. */
void *df__malloc(size_t n) {
  void *p;
  if (should_fail()) return NULL;
  p = malloc(n ? n : 1);
  if (p) count_live(1);
  return p;
}

void *df__realloc(void *p, size_t n) {
  void *np;
  if (should_fail()) return NULL;
  np = realloc(p, n ? n : 1);
  if (np && !p) count_live(1);
  return np;
}

void df__free(void *p) {
  if (p) count_live(-1);
  free(p);
}

char *df__strdup(const char *s) {
  size_t n;
  char *d;
  if (!s) return NULL;
  n = strlen(s) + 1;
  d = df__malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

/* ------------------------------------------------------------ df_buf */

void df__buf_init(df_buf *b) {
  b->p = NULL;
  b->len = b->cap = 0;
  b->failed = 0;
}

void df__buf_free(df_buf *b) {
  if (!b) return;
  df__free(b->p);
  df__buf_init(b);
}

void df__buf_reset(df_buf *b) {
  b->len = 0;
  b->failed = 0;
}

int df__buf_reserve(df_buf *b, size_t extra) {
  size_t need, ncap;
  unsigned char *np;
  if (b->failed) return DF_ENOMEM;
  if (extra <= b->cap - b->len) return 0;
  if (extra > (size_t)-1 - b->len) {
    b->failed = 1;
    return DF_ENOMEM;
  }
  need = b->len + extra;
  ncap = b->cap ? b->cap : 64;
  while (ncap < need) {
    if (ncap > (size_t)-1 / 2) {
      ncap = need;
      break;
    }
    ncap *= 2;
  }
  np = df__realloc(b->p, ncap);
  if (!np) {
    b->failed = 1;
    return DF_ENOMEM;
  }
  b->p = np;
  b->cap = ncap;
  return 0;
}

int df__buf_append(df_buf *b, const void *p, size_t n) {
  if (b->failed) return DF_ENOMEM;
  if (n == 0) return 0;
  if (df__buf_reserve(b, n)) return DF_ENOMEM;
  memcpy(b->p + b->len, p, n);
  b->len += n;
  return 0;
}

int df__buf_putc(df_buf *b, unsigned char c) {
  if (b->failed) return DF_ENOMEM;
  if (b->len == b->cap && df__buf_reserve(b, 1)) return DF_ENOMEM;
  b->p[b->len++] = c;
  return 0;
}

int df__grow(void *arrp, size_t *cap, size_t used, size_t el) {
  void **arr = (void **)arrp;
  size_t ncap;
  void *np;
  if (used < *cap) return 0;
  ncap = *cap ? *cap * 2 : 8;
  /* element indexes are 32-bit in the arrays grown this way */
  if (ncap < *cap || ncap > SIZE_MAX / el || ncap > UINT32_MAX)
    return DF_ENOMEM;
  np = df__realloc(*arr, ncap * el);
  if (!np) return DF_ENOMEM;
  *arr = np;
  *cap = ncap;
  return 0;
}
