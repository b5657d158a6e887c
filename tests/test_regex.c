/*
 * test_regex.c -- regex.c: POSIX extended syntax matched in linear time.
 * The classic patterns that make backtracking matchers (and glibc's
 * regexec: ".+@" over 100 KB took 14 s) take exponential or quadratic
 * time run over long subjects here in milliseconds, with the right
 * answers; a match that needs more than the budget stops with DF_ELIMIT
 * instead of holding a snapshot or the write lock; the time the budget
 * allows is measured and printed (it is the worst case a filter or
 * condition can cost on one attribute).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "internal.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int match(const char *pat, int icase, const char *s, size_t n) {
  df_rx *rx = NULL;
  const char *why = NULL;
  int rc = df__rx_compile(pat, strlen(pat), icase, &rx, &why);
  if (rc) {
    fprintf(stderr, "compile failed for /%s/: %s\n", pat, why ? why : "?");
    return -100;
  }
  rc = df__rx_match(rx, s, n, DF_RX_BUDGET);
  df__rx_free(rx);
  return rc;
}

#define M(pat, s) CHECK_EQ_INT(match(pat, 0, s, strlen(s)), 1)
#define N(pat, s) CHECK_EQ_INT(match(pat, 0, s, strlen(s)), 0)

static void test_syntax(void) {
  M("abc", "xxabcxx");
  N("abd", "xxabcxx");
  M("^ab", "abc");
  N("^b", "abc");
  M("c$", "abc");
  N("b$", "abc");
  M("^$", "");
  M("a.c", "a\nc");
  M("^a(b|cd)*e$", "abcdbe");
  N("^a(b|cd)*e$", "abcde_");
  M("^[a-c]+$", "abcabc");
  N("^[^a-c]+$", "abd");
  M("^[[:digit:]]{3}-[[:alpha:]]{2}$", "123-ab");
  N("^[[:digit:]]{3}$", "12");
  M("^x{2,}$", "xxxx");
  N("^x{2,3}$", "xxxx");
  M("^x{0,2}y$", "y");
  M("a\\.b", "a.b");
  N("a\\.b", "axb");
  M("[]a]", "]");
  M("[a-]", "-");
  M("^(ab|a)(bc|c)$", "abc");
  CHECK_EQ_INT(match("^HeLLo$", 1, "hello", 5), 1);
  CHECK_EQ_INT(match("^[A-C]+$", 1, "abc", 3), 1);
}

static void refused(const char *pat, const char *want) {
  df_rx *rx = NULL;
  const char *why = NULL;
  int rc = df__rx_compile(pat, strlen(pat), 0, &rx, &why);
  CHECK_EQ_INT(rc, DF_EVALIDATION);
  CHECK(rx == NULL);
  if (why && want) CHECK_EQ_STR(why, want);
}

static void test_refused(void) {
  refused("(a", "missing )");
  refused("a)", "unmatched )");
  refused("[a", "unterminated [ ]");
  refused("\\1", "back-references are not supported");
  refused("*a", "repetition of nothing");
  refused("[z-a]", "invalid range end in [ ]");
  refused("((a{100}){100}){100}", "too complex");
  refused("[[:nope:]]", "unknown character class");
}

/* The classic pathological patterns over long subjects. */
static void test_pathological(void) {
  size_t n = 100000, i;
  char *s = malloc(n + 2);
  struct {
    const char *pat;
    int want;
  } cases[] = {{".+@", 0},       {"(a+)+b", 0},    {"(a|aa)+$", 1},
               {"(a*)*b", 0},    {"^(a|a?)+$", 1}, {"(x+x+)+y", 0},
               {"(.*a){12}", 1}, {"^(a+)+$", 1},   {"a*a*a*a*a*b", 0}};
  double worst = 0;
  memset(s, 'a', n);
  s[n] = 0;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    double t0 = now_s(), dt;
    int r = match(cases[i].pat, 0, s, n);
    dt = now_s() - t0;
    if (!check_record(r == cases[i].want, __FILE__, __LINE__, cases[i].pat))
      fprintf(stderr, "  /%s/ on 100 KB of 'a': got %d\n", cases[i].pat, r);
    if (dt > worst) worst = dt;
  }
  printf(
      "test_regex: 9 pathological patterns over 100,000 bytes: slowest "
      "%.1f ms\n",
      worst * 1000);
  CHECK(worst < 2.0); /* linear: milliseconds; 2 s only for a loaded box */
  free(s);
}

/* The budget: the costliest match it allows, then DF_ELIMIT. */
static void test_budget(void) {
  size_t n = 4000000;
  char *s = malloc(n);
  char pat[600];
  int k, r;
  double t0, dt;
  memset(s, 'a', n);
  /* 40 alternatives that stay live on every byte: ~120 states each step */
  pat[0] = 0;
  for (k = 0; k < 40; k++) strcat(pat, k ? "|a*b" : "(a*b");
  strcat(pat, ")");
  t0 = now_s();
  r = match(pat, 0, s, n);
  dt = now_s() - t0;
  CHECK_EQ_INT(r, DF_ELIMIT);
  printf("test_regex: the budget (%llu steps) stopped a match after %.1f ms\n",
         (unsigned long long)DF_RX_BUDGET, dt * 1000);
  CHECK(dt < 5.0);
  /* the same pattern on a short subject answers */
  CHECK_EQ_INT(match(pat, 0, "aaab", 4), 1);
  free(s);
}

int main(void) {
  RUN_TEST(test_syntax);
  RUN_TEST(test_refused);
  RUN_TEST(test_pathological);
  RUN_TEST(test_budget);
  return check_done("test_regex");
}
