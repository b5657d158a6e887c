/*
 * check.h -- a tiny unit-test harness for the C tests.
 *
 * Each CHECK counts one passed or failed check and reports failures with
 * file and line on stderr; check_done prints the last line exactly as
 * "<prog>: N passed, N failed" and returns the exit status (0 when
 * nothing failed).  Include it from one test file only.
 */
#ifndef DF_CHECK_H
#define DF_CHECK_H

#include <stdio.h>
#include <string.h>

static long check_passed_n, check_failed_n;

static inline int check_record(int ok, const char *file, int line,
                               const char *what) {
  if (ok) {
    check_passed_n++;
  } else {
    check_failed_n++;
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
  }
  return ok;
}

#define CHECK(cond) check_record(!!(cond), __FILE__, __LINE__, #cond)

#define CHECK_EQ_INT(a, b)                                                     \
  do {                                                                         \
    long long check_a_ = (long long)(a), check_b_ = (long long)(b);            \
    if (!check_record(check_a_ == check_b_, __FILE__, __LINE__, #a " == " #b)) \
      fprintf(stderr, "  got %lld, want %lld\n", check_a_, check_b_);          \
  } while (0)

#define CHECK_EQ_UINT(a, b)                                                    \
  do {                                                                         \
    unsigned long long check_a_ = (unsigned long long)(a),                     \
                       check_b_ = (unsigned long long)(b);                     \
    if (!check_record(check_a_ == check_b_, __FILE__, __LINE__, #a " == " #b)) \
      fprintf(stderr, "  got %llu, want %llu\n", check_a_, check_b_);          \
  } while (0)

#define CHECK_EQ_STR(a, b)                                                     \
  do {                                                                         \
    const char *check_a_ = (a), *check_b_ = (b);                               \
    if (!check_record(check_a_ && check_b_ && !strcmp(check_a_, check_b_),     \
                      __FILE__, __LINE__, #a " == " #b))                       \
      fprintf(stderr, "  got \"%s\", want \"%s\"\n",                           \
              check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)"); \
  } while (0)

#define CHECK_EQ_MEM(a, an, b, bn)                                         \
  check_record((size_t)(an) == (size_t)(bn) &&                             \
                   ((size_t)(an) == 0 || !memcmp((a), (b), (size_t)(an))), \
               __FILE__, __LINE__, #a " equals " #b)

/* Print the summary line; returns the process exit status. */
static inline int check_done(const char *prog) {
  printf("%s: %ld passed, %ld failed\n", prog, check_passed_n, check_failed_n);
  return check_failed_n ? 1 : 0;
}

#endif /* DF_CHECK_H */
