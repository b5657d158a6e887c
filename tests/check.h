/*
 * check.h -- a tiny unit-test harness for the C tests.
 *
 * Each CHECK counts one passed or failed check and reports failures with
 * file and line on stderr.  RUN_TEST(fn) runs one test function, which
 * passes when none of its checks fail.  check_done prints the check counts
 * on stderr and, as the last line on stdout, "<prog>: N passed, N failed"
 * counting test functions (tests, not checks), and returns the exit status
 * (0 when nothing failed).  Include it from one test file only.
 */
#ifndef DF_CHECK_H
#define DF_CHECK_H

#include <stdio.h>
#include <string.h>

static long check_passed_n, check_failed_n;
static long check_tests_passed, check_tests_failed;

/* Run one test function: it passes when none of its checks fail.  The
 * summary counts test functions; a program that never uses RUN_TEST counts
 * as one test. */
#define RUN_TEST(fn)                            \
  do {                                          \
    long check_before_ = check_failed_n;        \
    fn();                                       \
    if (check_failed_n == check_before_)        \
      check_tests_passed++;                     \
    else {                                      \
      check_tests_failed++;                     \
      fprintf(stderr, "test %s failed\n", #fn); \
    }                                           \
  } while (0)

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
  long passed = check_tests_passed, failed = check_tests_failed;
  if (passed + failed == 0) { /* no RUN_TEST: the program is one test */
    passed = check_failed_n == 0;
    failed = check_failed_n != 0;
  }
  fprintf(stderr, "%s: %ld checks passed, %ld failed\n", prog, check_passed_n,
          check_failed_n);
  printf("%s: %ld passed, %ld failed\n", prog, passed, failed);
  return check_failed_n ? 1 : 0;
}

#endif /* DF_CHECK_H */
