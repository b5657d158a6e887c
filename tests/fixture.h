/*
 * fixture.h -- what the C tests of the database share: a temporary root
 * directory for their databases, key values and keys, items built from
 * (name, value) pairs, attribute readers, and opening a database with a
 * check.  Include it after check.h, from one test file.
 *
 * Invariant: every database a test makes lives under fx_root, which
 * fx_root_make creates (under $TMPDIR) and fx_root_remove deletes with
 * everything in it; item builders write into a df_buf the caller owns and
 * never allocate anything else.
 */
#ifndef DF_FIXTURE_H
#define DF_FIXTURE_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static char fx_root[4096];

/* Create the temporary root $TMPDIR/dynafile-<prog>.XXXXXX; 0 on failure
 * (with a message). */
static inline int fx_root_make(const char *prog) {
  const char *tmp = getenv("TMPDIR");
  snprintf(fx_root, sizeof fx_root, "%s/dynafile-%s.XXXXXX",
           tmp && tmp[0] ? tmp : "/tmp", prog);
  if (mkdtemp(fx_root) == NULL) {
    perror("mkdtemp");
    return 0;
  }
  return 1;
}

/* Remove a directory tree (a database). */
static inline void fx_rm(const char *path) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", path);
}

static inline void fx_root_remove(void) {
  if (fx_root[0]) fx_rm(fx_root);
}

/* The path fx_root/<name> in buf (not created). */
static inline const char *fx_path(char *buf, size_t cap, const char *name) {
  snprintf(buf, cap, "%s/%s", fx_root, name);
  return buf;
}

/* A fresh path under the root, a new one at every call (not created). */
static inline const char *fx_fresh(char *buf, size_t cap) {
  static int counter;
  char name[32];
  snprintf(name, sizeof name, "db%d", ++counter);
  return fx_path(buf, cap, name);
}

/* ------------------------------------------------------------- values */

static inline df_value fx_str(const char *s) {
  df_value v;
  memset(&v, 0, sizeof v);
  v.type = DF_TSTR;
  v.s = s;
  v.n = strlen(s);
  return v;
}

static inline df_value fx_int(int64_t i) {
  df_value v;
  memset(&v, 0, sizeof v);
  v.type = DF_TINT;
  v.i = i;
  return v;
}

static inline df_value fx_float(double f) {
  df_value v;
  memset(&v, 0, sizeof v);
  v.type = DF_TFLOAT;
  v.f = f;
  return v;
}

static inline df_value fx_bin(const void *p, size_t n) {
  df_value v;
  memset(&v, 0, sizeof v);
  v.type = DF_TBIN;
  v.s = p;
  v.n = n;
  return v;
}

/* A key; pass a DF_TNONE sort key (fx_none()) for a table without one. */
static inline df_key fx_key(df_value pk, df_value sk) {
  df_key k;
  k.pk = pk;
  k.sk = sk;
  return k;
}

static inline df_value fx_none(void) {
  df_value v;
  memset(&v, 0, sizeof v);
  return v;
}

/* -------------------------------------------------------------- items */

/* The end of fx_item's pairs (a typed null: variadic arguments). */
#define FX_END ((const char *)0)

/* Reset b to a map of the (const char *name, df_value value) pairs that
 * follow, up to FX_END: fx_item(&b, "PK", fx_str("p"), "SK", fx_int(1),
 * FX_END).  Values of DF_TNONE are left out. */
static inline void fx_item(df_buf *b, ...) {
  va_list ap;
  const char *name;
  uint32_t n = 0;
  size_t head;
  df__buf_reset(b);
  head = b->len;
  df__buf_append(b, "\xdf\0\0\0\0", 5); /* map32, count fixed below */
  va_start(ap, b);
  while ((name = va_arg(ap, const char *)) != NULL) {
    df_value v = va_arg(ap, df_value);
    if (v.type == DF_TNONE) continue;
    df__mp_put_str(b, name, strlen(name));
    df__mp_put_value(b, &v);
    n++;
  }
  va_end(ap);
  if (b->failed) return;
  b->p[head + 1] = (unsigned char)(n >> 24);
  b->p[head + 2] = (unsigned char)(n >> 16);
  b->p[head + 3] = (unsigned char)(n >> 8);
  b->p[head + 4] = (unsigned char)n;
}

/* The integer attribute `name` of item bytes, or -1 when it is absent or
 * not an integer. */
static inline int64_t fx_attr_int(const void *item, size_t len,
                                  const char *name) {
  df_value v;
  if (item == NULL ||
      df__mp_map_find(item, len, name, strlen(name), &v, NULL, NULL) != 1 ||
      v.type != DF_TINT)
    return -1;
  return v.i;
}

/* The string attribute `name` copied into out (NUL-terminated), or "". */
static inline const char *fx_attr_str(const void *item, size_t len,
                                      const char *name, char *out, size_t cap) {
  df_value v;
  out[0] = '\0';
  if (df__mp_map_find(item, len, name, strlen(name), &v, NULL, NULL) == 1 &&
      v.type == DF_TSTR && v.n < cap) {
    memcpy(out, v.s, v.n);
    out[v.n] = '\0';
  }
  return out;
}

/* ---------------------------------------------------------- databases */

/* Options with `schema` given (or, with create_only, used only when the
 * database is new) and the sync mode. */
static inline df_open_options fx_options(const df_schema *schema,
                                         int create_only, df_sync sync) {
  df_open_options o;
  memset(&o, 0, sizeof o);
  if (create_only)
    o.create_schema = schema;
  else
    o.schema = schema;
  o.sync = sync;
  return o;
}

/* Open path with o, counting one check; NULL (with the message printed)
 * when the open failed. */
static inline df_db *fx_open(const char *path, const df_open_options *o) {
  df_db *db = NULL;
  int rc = df_db_open(path, o, &db);
  if (!CHECK(rc == DF_OK)) {
    fprintf(stderr, "  open %s: %s\n", path, df_db_errmsg(db));
    df_db_close(db);
    return NULL;
  }
  return db;
}

#endif /* DF_FIXTURE_H */
