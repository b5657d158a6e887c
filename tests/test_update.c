/*
 * test_update.c -- update.c, the update engine on stored bytes: an update
 * leaves the exact bytes of every attribute it does not name (a float 1.0,
 * integers past 2^53, uint64), applies both syntaxes with their semantics
 * (old-item values, list positions numbered in the old list, set union of
 * lists in the table form), and refuses what does not fit without output.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"

static const unsigned char KEY[] = {0x81, 0xa2, 'P', 'K', 0xa1, 'p'};
static const char *KEYS[] = {"PK"};

static void put_s(df_buf *b, const char *s) {
  df__mp_put_str(b, s, strlen(s));
}

/* {PK: "p", f: 1.0, big: 2^53 + 1, u: 2^64 - 1, l: [1, 2, 3]} */
static void item(df_buf *b) {
  df__buf_reset(b);
  df__mp_put_map(b, 5);
  put_s(b, "PK");
  put_s(b, "p");
  put_s(b, "f");
  df__mp_put_float(b, 1.0);
  put_s(b, "big");
  df__mp_put_int(b, 9007199254740993LL);
  put_s(b, "u");
  df__mp_put_uint(b, UINT64_MAX);
  put_s(b, "l");
  df__mp_put_array(b, 3);
  df__mp_put_int(b, 1);
  df__mp_put_int(b, 2);
  df__mp_put_int(b, 3);
}

static int contains(const void *hay, size_t n, const void *needle, size_t m) {
  return memmem(hay, n, needle, m) != NULL;
}

static void test_exact_bytes(void) {
  df_buf it, v;
  df_update *u = NULL;
  const void *out;
  size_t olen;
  char err[200];
  unsigned char f10[] = {0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0};
  unsigned char big[] = {0xcf, 0, 0x20, 0, 0, 0, 0, 0, 1};
  unsigned char u64[] = {0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  df__buf_init(&it);
  df__buf_init(&v);
  item(&it);
  CHECK_EQ_INT(df_update_new(&u), 0);
  df__mp_put_int(&v, 7);
  CHECK_EQ_INT(
      df_update_add(u, DF_UPD_SET, "n", 1, v.p, v.len, NULL, err, sizeof err),
      0);
  CHECK_EQ_INT(df_update_apply(u, it.p, it.len, KEY, sizeof KEY, KEYS, 1, &out,
                               &olen, err, sizeof err),
               0);
  CHECK(df__mp_validate(out, olen, DF_MAX_DEPTH) == 0);
  CHECK(contains(out, olen, f10, sizeof f10));
  CHECK(contains(out, olen, big, sizeof big));
  CHECK(contains(out, olen, u64, sizeof u64));
  CHECK_EQ_UINT(olen, it.len + 3); /* "n": 7 added, nothing else changed */
  df_update_free(u);
  df__buf_free(&it);
  df__buf_free(&v);
}

static void test_list_positions_and_union(void) {
  df_buf it, v, want;
  df_update *u = NULL;
  const void *out;
  size_t olen;
  char err[200];
  df__buf_init(&it);
  df__buf_init(&v);
  df__buf_init(&want);
  item(&it);
  df_update_new(&u);
  /* remove l[0] and l[2] (old numbering), add [3, 4, 4, 1.0] as a set */
  CHECK_EQ_INT(df_update_add(u, DF_UPD_REMOVE, "l[2]", 4, NULL, 0, NULL, err,
                             sizeof err),
               0);
  CHECK_EQ_INT(df_update_add(u, DF_UPD_REMOVE, "l[0]", 4, NULL, 0, NULL, err,
                             sizeof err),
               0);
  df__mp_put_array(&v, 4);
  df__mp_put_int(&v, 3);
  df__mp_put_int(&v, 4);
  df__mp_put_int(&v, 4);
  df__mp_put_float(&v, 1.0);
  CHECK_EQ_INT(
      df_update_add(u, DF_UPD_ADD, "m", 1, v.p, v.len, NULL, err, sizeof err),
      0);
  CHECK_EQ_INT(df_update_apply(u, it.p, it.len, KEY, sizeof KEY, KEYS, 1, &out,
                               &olen, err, sizeof err),
               0);
  /* l is [2]; m is [3, 4, 1.0] */
  df__mp_put_array(&want, 1);
  df__mp_put_int(&want, 2);
  CHECK(contains(out, olen, want.p, want.len));
  df__buf_reset(&want);
  put_s(&want, "m");
  df__mp_put_array(&want, 3);
  df__mp_put_int(&want, 3);
  df__mp_put_int(&want, 4);
  df__mp_put_float(&want, 1.0);
  CHECK(contains(out, olen, want.p, want.len));
  df_update_free(u);
  df__buf_free(&it);
  df__buf_free(&v);
  df__buf_free(&want);
}

static void test_refusals(void) {
  df_buf it, v;
  df_update *u = NULL;
  const void *out = NULL;
  size_t olen = 0;
  char err[200];
  df__buf_init(&it);
  df__buf_init(&v);
  item(&it);
  df_update_new(&u);
  df__mp_put_int(&v, 1);
  df_update_add(u, DF_UPD_ADD, "big", 3, v.p, v.len, "changes.add[\"big\"]",
                err, sizeof err);
  df_update_add(u, DF_UPD_SET, "f.x", 3, v.p, v.len, "changes.set[\"f.x\"]",
                err, sizeof err);
  CHECK_EQ_INT(df_update_apply(u, it.p, it.len, KEY, sizeof KEY, KEYS, 1, &out,
                               &olen, err, sizeof err),
               DF_EVALIDATION);
  CHECK_EQ_STR(err, "changes.set[\"f.x\"]: 'f' is not a map");
  df_update_free(u);
  u = NULL;
  df_update_new(&u);
  df_update_add(u, DF_UPD_SET, "PK", 2, v.p, v.len, NULL, err, sizeof err);
  CHECK_EQ_INT(df_update_apply(u, it.p, it.len, KEY, sizeof KEY, KEYS, 1, &out,
                               &olen, err, sizeof err),
               DF_EVALIDATION);
  CHECK(strstr(err, "cannot change key attribute PK") != NULL);
  /* a malformed path and a malformed value are refused when added */
  CHECK_EQ_INT(df_update_add(u, DF_UPD_SET, "a..b", 4, v.p, v.len, NULL, err,
                             sizeof err),
               DF_EVALIDATION);
  CHECK_EQ_INT(
      df_update_add(u, DF_UPD_SET, "a", 1, "\xc1", 1, NULL, err, sizeof err),
      DF_EVALIDATION);
  /* the item is created from the key when missing */
  df_update_free(u);
  u = NULL;
  df_update_new(&u);
  df_update_add(u, DF_UPD_SET, "`a.b`", 5, v.p, v.len, NULL, err, sizeof err);
  CHECK_EQ_INT(df_update_apply(u, NULL, 0, KEY, sizeof KEY, KEYS, 1, &out,
                               &olen, err, sizeof err),
               0);
  {
    unsigned char want[] = {0x82, 0xa2, 'P', 'K', 0xa1, 'p',
                            0xa3, 'a',  '.', 'b', 0x01};
    CHECK_EQ_MEM(out, olen, want, sizeof want);
  }
  df_update_free(u);
  df__buf_free(&it);
  df__buf_free(&v);
}

int main(void) {
  RUN_TEST(test_exact_bytes);
  RUN_TEST(test_list_positions_and_union);
  RUN_TEST(test_refusals);
  return check_done("test_update");
}
