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

#include "store.h"

static int lookup(MDB_txn *txn, MDB_dbi dbi, const unsigned char *k,
                  size_t n) {
  MDB_val key, val;
  key.mv_data = (void *)k;
  key.mv_size = n;
  return mdb_get(txn, dbi, &key, &val);
}

/* Entries of index `id` (keys starting with the id byte). */
static uint64_t count_prefix(MDB_txn *txn, MDB_dbi dbi, unsigned id) {
  MDB_cursor *c;
  MDB_val k, v;
  unsigned char p = (unsigned char)id;
  uint64_t n = 0;
  int rc;
  if (mdb_cursor_open(txn, dbi, &c) != 0) return 0;
  k.mv_data = &p;
  k.mv_size = 1;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
       rc == 0 && k.mv_size > 0 && ((unsigned char *)k.mv_data)[0] == p;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
    n++;
  mdb_cursor_close(c);
  return n;
}

static int ttl_key(const df_schema *s, const void *item, size_t len,
                   const MDB_val *ik, unsigned char *out, size_t *n) {
  df_value v;
  size_t m;
  if (s->ttl_attr == NULL ||
      df__mp_map_find(item, len, s->ttl_attr, strlen(s->ttl_attr), &v, NULL,
                      NULL) != 1)
    return 0;
  if (v.type == DF_TFLOAT && v.f != v.f) return 0;
  if (v.type != DF_TINT && v.type != DF_TUINT && v.type != DF_TFLOAT) return 0;
  if (df__key_enc(&v, out, DF_NUM_ENC_LEN, &m) != DF_OK) return 0;
  if (m + ik->mv_size > DF_KEY_MAX) return 0;
  memcpy(out + m, ik->mv_data, ik->mv_size);
  *n = m + ik->mv_size;
  return 1;
}

int df_db_check(df_db *db, df_check_report *r) {
  const df_schema *s;
  MDB_txn *txn;
  MDB_cursor *c;
  MDB_val k, v;
  MDB_stat st;
  uint64_t expected[DF_MAX_INDEXES];
  uint64_t expected_expiry = 0;
  unsigned char buf[DF_KEY_MAX + DF_NUM_ENC_LEN];
  size_t i, n;
  int code, rc;
  df_key key;
  char err[DF_MSG_MAX];

  if (r == NULL) return DF_EINVAL;
  memset(r, 0, sizeof *r);
  if ((code = df__db_check(db)) != DF_OK) return code;
  s = &db->env->schema.s;
  memset(expected, 0, sizeof expected);
  if ((code = df__read_begin(db, &txn)) != DF_OK) return code;
  rc = mdb_cursor_open(txn, db->env->dbi_items, &c);
  if (rc != 0) {
    df__read_end(db, txn);
    return df__db_err(db, df__map_err(rc), "cannot read items: %s",
                      mdb_strerror(rc));
  }
  for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    r->items++;
    if (df__mp_validate(v.mv_data, v.mv_size, DF_MAX_DEPTH) != 0 ||
        df__item_key_of(s, v.mv_data, v.mv_size, &key, err, sizeof err) !=
            DF_OK ||
        df__item_key(s, &key, buf, &n, err, sizeof err) != DF_OK ||
        n != k.mv_size || memcmp(buf, k.mv_data, n) != 0) {
      r->bad_items++;
      continue;
    }
    for (i = 0; i < s->n_indexes; i++) {
      code = df__index_entry_key(db->env, &s->indexes[i], v.mv_data,
                                 v.mv_size, buf, &n);
      if (code != DF_OK) continue; /* not in this index (sparse) */
      expected[i]++;
      if (lookup(txn, db->env->dbi_index, buf, n) != 0) r->missing_index++;
    }
    if (ttl_key(s, v.mv_data, v.mv_size, &k, buf, &n)) {
      expected_expiry++;
      if (lookup(txn, db->env->dbi_expiry, buf, n) != 0) r->missing_expiry++;
    }
  }
  mdb_cursor_close(c);
  for (i = 0; i < s->n_indexes; i++) {
    uint64_t have = count_prefix(txn, db->env->dbi_index, s->indexes[i].id);
    r->index_entries += have;
    if (have > expected[i]) r->stale_index += have - expected[i];
  }
  if (mdb_stat(txn, db->env->dbi_expiry, &st) == 0) {
    r->expiry_entries = st.ms_entries;
    if (st.ms_entries > expected_expiry)
      r->stale_expiry = st.ms_entries - expected_expiry;
  }
  df__read_end(db, txn);
  return DF_OK;
}
