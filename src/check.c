/*
 * check.c -- verify that the derived sub-databases agree with the items.
 *
 * Every index entry and every expiry entry is derived from exactly one
 * item.  So the check walks the items once, computing each entry the item
 * implies and looking it up (a missing entry is an error), and counts
 * them; afterwards each sub-database must hold exactly as many entries as
 * were implied, per index (an extra entry is a stale one).  Runs in one
 * read transaction: a consistent snapshot, blocking no writer.
 */
#include <string.h>

#include "handle.h"
#include "index.h"
#include "ttl.h"

static int present(const df_kv *kv, df_sub sub, const unsigned char *k,
                   size_t n) {
  df_bytes v;
  return df__kv_get(kv, sub, k, n, &v) == DF_OK;
}

/* Entries of index `id` (keys starting with the id byte). */
static uint64_t count_prefix(const df_kv *kv, unsigned id) {
  df_kvcursor *c;
  df_bytes k;
  unsigned char p = (unsigned char)id;
  uint64_t n = 0;
  int rc;
  if (df__kv_cursor(kv, DF_SUB_INDEX, &c) != DF_OK) return 0;
  k.p = &p;
  k.n = 1;
  for (rc = df__kv_step(c, DF_KV_SEEK, &k, NULL);
       rc == DF_OK && k.n > 0 && k.p[0] == p;
       rc = df__kv_step(c, DF_KV_NEXT, &k, NULL))
    n++;
  df__kv_cursor_close(c);
  return n;
}

int df_db_check(df_db *db, df_check_report *r) {
  const df_schema *s;
  df_kv kv;
  df_kvcursor *c;
  df_bytes k, v;
  uint64_t expected[DF_MAX_INDEXES];
  uint64_t expected_expiry = 0, have;
  unsigned char buf[DF_EXPIRY_KEY_MAX];
  size_t i, n;
  int code, rc;
  df_key key;
  char err[DF_MSG_MAX];

  if (r == NULL) return DF_EINVAL;
  memset(r, 0, sizeof *r);
  if ((code = df__db_check(db)) != DF_OK) return code;
  s = &db->env->schema.s;
  memset(expected, 0, sizeof expected);
  if ((code = df__db_read(db, &kv)) != DF_OK) return code;
  rc = df__kv_cursor(&kv, DF_SUB_ITEMS, &c);
  if (rc != DF_OK) {
    df__db_read_end(db, &kv);
    return df__db_err(db, rc, "cannot read items: %s", df_strerror(rc));
  }
  for (rc = df__kv_step(c, DF_KV_FIRST, &k, &v); rc == DF_OK;
       rc = df__kv_step(c, DF_KV_NEXT, &k, &v)) {
    r->items++;
    if (df__mp_validate(v.p, v.n, DF_MAX_DEPTH) != 0 ||
        df__item_key_of(s, v.p, v.n, &key, err, sizeof err) != DF_OK ||
        df__item_key(s, &key, buf, &n, err, sizeof err) != DF_OK || n != k.n ||
        memcmp(buf, k.p, n) != 0) {
      r->bad_items++;
      continue;
    }
    for (i = 0; i < s->n_indexes; i++) {
      code = df__index_entry_key(s, &s->indexes[i], v.p, v.n, buf, &n);
      if (code != DF_OK) continue; /* not in this index (sparse) */
      expected[i]++;
      if (!present(&kv, DF_SUB_INDEX, buf, n)) r->missing_index++;
    }
    if (df__expiry_key(s, v.p, v.n, k.p, k.n, buf, &n)) {
      expected_expiry++;
      if (!present(&kv, DF_SUB_EXPIRY, buf, n)) r->missing_expiry++;
    }
  }
  df__kv_cursor_close(c);
  for (i = 0; i < s->n_indexes; i++) {
    have = count_prefix(&kv, s->indexes[i].id);
    r->index_entries += have;
    if (have > expected[i]) r->stale_index += have - expected[i];
  }
  if (df__kv_count(&kv, DF_SUB_EXPIRY, &have) == DF_OK) {
    r->expiry_entries = have;
    if (have > expected_expiry) r->stale_expiry = have - expected_expiry;
  }
  df__db_read_end(db, &kv);
  df__env_commit_report(db->env, r);
  return DF_OK;
}
