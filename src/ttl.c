/*
 * ttl.c -- time to live: the `expiry` sub-database.
 *
 * When the schema names a TTL attribute, every item whose attribute holds a
 * number (not NaN) has one entry in `expiry`: enc(expire time) | items key,
 * with an empty value.  Entries sort by time, so the purge (txn.c) visits
 * only what is due, oldest first -- starting DF_TTL_MAX_AGE before now:
 * older times never expire (df__ttl_expired), their entries stay.
 *
 * Invariant: the entry is written and removed in the same transaction as
 * the item (txn.c calls df__expiry_apply for every change, on the write
 * context of write.h), so `expiry` never disagrees with `items`.  Nothing
 * here begins, commits or dooms a transaction.
 */
#include <string.h>

#include "ttl.h"
#include "write.h"

int df__expiry_key(const df_schema *s, const void *item, size_t len,
                   const unsigned char *k, size_t klen, unsigned char *out,
                   size_t *outlen) {
  df_value v;
  size_t n;
  if (!df__item_ttl(s, item, len, &v, NULL)) return 0;
  if (v.type == DF_TFLOAT && v.f != v.f) return 0; /* NaN: never expires */
  if (df__key_enc(&v, out, DF_NUM_ENC_MAX, &n) != DF_OK) return 0;
  if (n + klen > DF_KEY_MAX) return 0;
  memcpy(out + n, k, klen);
  *outlen = n + klen;
  return 1;
}

static int store_failed(df_write *w, int code) {
  if (code == DF_ERETRY)
    return df__fmt(w->errmsg, sizeof w->errmsg, code,
                   "the database map is full; it grows at commit: run the "
                   "transaction again");
  return df__fmt(w->errmsg, sizeof w->errmsg, code, "expiry update failed: %s",
                 df_strerror(code));
}

int df__expiry_apply(df_write *w, const unsigned char *k, size_t klen,
                     const void *old, size_t old_len, const void *new_item,
                     size_t new_len) {
  const df_schema *s = w->schema;
  unsigned char ok_[DF_EXPIRY_KEY_MAX], nk[DF_EXPIRY_KEY_MAX];
  size_t okn = 0, nkn = 0;
  int has_old, has_new, code;
  if (s->ttl_attr == NULL) return DF_OK;
  has_old = old && df__expiry_key(s, old, old_len, k, klen, ok_, &okn);
  has_new = new_item && df__expiry_key(s, new_item, new_len, k, klen, nk, &nkn);
  if (has_old && has_new && okn == nkn && memcmp(ok_, nk, okn) == 0)
    return DF_OK;
  if (has_old) {
    code = df__kv_del(&w->kv, DF_SUB_EXPIRY, ok_, okn);
    if (code != DF_OK && code != DF_ENOTFOUND) return store_failed(w, code);
  }
  if (has_new) {
    code = df__kv_put(&w->kv, DF_SUB_EXPIRY, nk, nkn, "", 0);
    if (code != DF_OK) return store_failed(w, code);
  }
  return DF_OK;
}

int df__expiry_rebuild(df_write *w) {
  df_kvcursor *c;
  df_bytes k, v;
  unsigned char ek[DF_EXPIRY_KEY_MAX];
  size_t ekn;
  int code;
  code = df__kv_clear(&w->kv, DF_SUB_EXPIRY);
  if (code != DF_OK) return store_failed(w, code);
  if (w->schema->ttl_attr == NULL) return DF_OK;
  code = df__kv_cursor(&w->kv, DF_SUB_ITEMS, &c);
  if (code != DF_OK) return store_failed(w, code);
  for (code = df__kv_step(c, DF_KV_FIRST, &k, &v); code == DF_OK;
       code = df__kv_step(c, DF_KV_NEXT, &k, &v)) {
    if (!df__expiry_key(w->schema, v.p, v.n, k.p, k.n, ek, &ekn)) continue;
    code = df__kv_put(&w->kv, DF_SUB_EXPIRY, ek, ekn, "", 0);
    if (code != DF_OK) break;
  }
  df__kv_cursor_close(c);
  return code == DF_ENOTFOUND ? DF_OK : store_failed(w, code);
}

int df__expiry_first_due(df_write *w, double now, unsigned char *entry,
                         size_t *entry_len, size_t *item_at) {
  df_kvcursor *c;
  df_bytes k;
  df_value when, oldest;
  df_dec d;
  double t = 0;
  const unsigned char *p;
  unsigned char from[DF_NUM_ENC_MAX];
  char scratch[16];
  int code;
  /* the first entry not older than DF_TTL_MAX_AGE */
  memset(&oldest, 0, sizeof oldest);
  oldest.type = DF_TFLOAT;
  oldest.f = now - DF_TTL_MAX_AGE;
  if (df__key_enc(&oldest, from, sizeof from, &k.n) != DF_OK) return 0;
  k.p = from;
  code = df__kv_cursor(&w->kv, DF_SUB_EXPIRY, &c);
  if (code != DF_OK) return store_failed(w, code);
  code = df__kv_step(c, DF_KV_SEEK, &k, NULL);
  df__kv_cursor_close(c);
  if (code == DF_ENOTFOUND) return 0;
  if (code != DF_OK) return store_failed(w, code);
  p = k.p;
  if (k.n > DF_EXPIRY_KEY_MAX ||
      df__key_dec(&p, k.p + k.n, &when, scratch, sizeof scratch) != 0 ||
      df__dec_from_value(&when, &d) != DF_OK)
    return df__fmt(w->errmsg, sizeof w->errmsg, DF_ECORRUPT,
                   "corrupt expiry entry");
  df__dec_double(&d, &t);
  if (!df__ttl_expired(t, now))
    return 0; /* the first entry is not yet due: nothing more is */
  memcpy(entry, k.p, k.n);
  *entry_len = k.n;
  *item_at = (size_t)(p - k.p);
  return 1;
}

int df__expiry_drop(df_write *w, const unsigned char *entry, size_t len) {
  int code = df__kv_del(&w->kv, DF_SUB_EXPIRY, entry, len);
  return code == DF_OK || code == DF_ENOTFOUND ? DF_OK : store_failed(w, code);
}
