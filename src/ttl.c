/*
 * ttl.c -- time to live: the `expiry` sub-database and the purge.
 *
 * When the schema names a TTL attribute, every item whose attribute holds a
 * number has one entry in `expiry`: enc(expire time) | items key, with an
 * empty value.  Entries sort by time, so a purge visits only what expired.
 * Invariant: the entry is written and removed in the same transaction as
 * the item (df__expiry_apply is called for every change), so `expiry`
 * never disagrees with `items`.
 */
#include <string.h>

#include "store.h"

/* The TTL value of an item as a key value, 0 when it has none. */
static int ttl_of(const df_schema *s, const void *item, size_t len,
                  df_value *v) {
  if (item == NULL || s->ttl_attr == NULL) return 0;
  if (df__mp_map_find(item, len, s->ttl_attr, strlen(s->ttl_attr), v, NULL,
                      NULL) != 1)
    return 0;
  if (v->type == DF_TFLOAT) return v->f == v->f; /* NaN: never expires */
  return v->type == DF_TINT || v->type == DF_TUINT;
}

static int expiry_key(const df_value *v, const unsigned char *k, size_t klen,
                      unsigned char *out, size_t *outlen) {
  size_t n;
  if (df__key_enc(v, out, DF_NUM_ENC_LEN, &n) != DF_OK) return DF_EVALIDATION;
  if (n + klen > DF_KEY_MAX) return DF_EVALIDATION;
  memcpy(out + n, k, klen);
  *outlen = n + klen;
  return DF_OK;
}

static int put_entry(MDB_txn *txn, MDB_dbi dbi, const df_value *v,
                     const unsigned char *k, size_t klen) {
  unsigned char buf[DF_KEY_MAX + DF_NUM_ENC_LEN];
  MDB_val mk, mv;
  size_t n;
  if (expiry_key(v, k, klen, buf, &n) != DF_OK) return 0; /* not indexed */
  mk.mv_data = buf;
  mk.mv_size = n;
  mv.mv_data = (void *)"";
  mv.mv_size = 0;
  return mdb_put(txn, dbi, &mk, &mv, 0);
}

int df__expiry_apply(df_txn *t, const unsigned char *k, size_t klen,
                     const void *old, size_t old_len, const void *new_item,
                     size_t new_len) {
  const df_schema *s = &t->env->schema.s;
  df_value ov, nv;
  int has_old, has_new, rc;
  unsigned char buf[DF_KEY_MAX + DF_NUM_ENC_LEN];
  size_t n;
  MDB_val mk;
  if (s->ttl_attr == NULL) return DF_OK;
  has_old = ttl_of(s, old, old_len, &ov);
  has_new = ttl_of(s, new_item, new_len, &nv);
  if (has_old && has_new && df__value_cmp(&ov, &nv) == 0) return DF_OK;
  if (has_old && expiry_key(&ov, k, klen, buf, &n) == DF_OK) {
    mk.mv_data = buf;
    mk.mv_size = n;
    rc = mdb_del(t->txn, t->env->dbi_expiry, &mk, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND) {
      if (rc == MDB_MAP_FULL) t->map_full = 1;
      return df__txn_err(t, df__map_err(rc), "expiry update failed: %s",
                         mdb_strerror(rc));
    }
  }
  if (has_new) {
    rc = put_entry(t->txn, t->env->dbi_expiry, &nv, k, klen);
    if (rc != 0) {
      if (rc == MDB_MAP_FULL) t->map_full = 1;
      return df__txn_err(t, df__map_err(rc), "expiry update failed: %s",
                         mdb_strerror(rc));
    }
  }
  return DF_OK;
}

int df__expiry_rebuild(df_db *db, MDB_txn *txn, df_env *e) {
  MDB_cursor *c;
  MDB_val k, v;
  df_value tv;
  int rc;
  (void)db;
  rc = mdb_drop(txn, e->dbi_expiry, 0);
  if (rc != 0) return df__map_err(rc);
  if (e->schema.s.ttl_attr == NULL) return DF_OK;
  rc = mdb_cursor_open(txn, e->dbi_items, &c);
  if (rc != 0) return df__map_err(rc);
  for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    if (!ttl_of(&e->schema.s, v.mv_data, v.mv_size, &tv)) continue;
    rc = put_entry(txn, e->dbi_expiry, &tv, k.mv_data, k.mv_size);
    if (rc != 0) break;
  }
  mdb_cursor_close(c);
  return rc == MDB_NOTFOUND ? DF_OK : df__map_err(rc);
}

int df_txn_purge_expired(df_txn *t, size_t limit, size_t *count) {
  MDB_cursor *c = NULL;
  MDB_val k, v, ik, iv;
  df_value when;
  const unsigned char *p;
  char scratch[16];
  size_t done = 0;
  int rc, code = DF_OK;
  if (count) *count = 0;
  if (t == NULL || !t->live) return DF_EINVAL;
  if (!(t->flags & DF_TXN_WRITE))
    return df__txn_err(t, DF_EREADONLY, "purge needs a write transaction");
  if (t->env->schema.s.ttl_attr == NULL) return DF_OK;
  while (limit == 0 || done < limit) {
    rc = mdb_cursor_open(t->txn, t->env->dbi_expiry, &c);
    if (rc != 0) break;
    rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    mdb_cursor_close(c);
    if (rc == MDB_NOTFOUND) {
      rc = 0;
      break;
    }
    if (rc != 0) break;
    p = k.mv_data;
    if (df__key_dec(&p, p + k.mv_size, &when, scratch, sizeof scratch) != 0)
      return df__txn_err(t, DF_ECORRUPT, "corrupt expiry entry");
    if (!((when.type == DF_TINT && (double)when.i < t->now) ||
          (when.type == DF_TFLOAT && when.f < t->now)))
      break; /* the first entry is not yet due: nothing more is */
    ik.mv_data = (void *)p;
    ik.mv_size = k.mv_size - (size_t)(p - (const unsigned char *)k.mv_data);
    rc = mdb_get(t->txn, t->env->dbi_items, &ik, &iv);
    if (rc == 0 &&
        df__item_expired(&t->env->schema.s, iv.mv_data, iv.mv_size, t->now)) {
      df__buf_reset(&t->old);
      if (df__buf_append(&t->old, iv.mv_data, iv.mv_size) != 0)
        return df__txn_err(t, DF_ENOMEM, "out of memory");
      {
        unsigned char key_copy[DF_KEY_MAX];
        memcpy(key_copy, ik.mv_data, ik.mv_size);
        code = df__txn_remove(t, key_copy, ik.mv_size, t->old.p, t->old.len,
                              1);
      }
      if (code != DF_OK) return code;
      done++;
    } else {
      /* A stale entry (cannot happen while writes go through txn.c, but
       * never loop on one). */
      rc = mdb_del(t->txn, t->env->dbi_expiry, &k, NULL);
      if (rc != 0) break;
    }
  }
  if (count) *count = done;
  if (rc != 0 && rc != MDB_NOTFOUND) {
    if (rc == MDB_MAP_FULL) t->map_full = 1;
    return df__txn_err(t, df__map_err(rc), "purge failed: %s",
                       mdb_strerror(rc));
  }
  return DF_OK;
}
