/*
 * index.c -- global and local secondary indexes (maintenance, backfill).
 */
#include "store.h"

int df__index_apply(df_txn *t, const unsigned char *item_key, size_t klen,
                    const void *old, size_t old_len, const void *new_item,
                    size_t new_len) {
  (void)t; (void)item_key; (void)klen; (void)old; (void)old_len;
  (void)new_item; (void)new_len;
  return DF_OK;
}

int df__index_backfill(df_db *db, MDB_txn *txn, df_env *e,
                       const df_index_def *def, const df_open_options *o) {
  (void)db; (void)txn; (void)e; (void)def; (void)o;
  return DF_OK;
}

int df__index_entry_key(const df_env *e, const df_index_def *def,
                        const void *item, size_t len, unsigned char *out,
                        size_t *n) {
  (void)e; (void)def; (void)item; (void)len; (void)out; (void)n;
  return DF_ENOTFOUND;
}

int df__index_entry_item(MDB_txn *txn, df_env *e, const df_index_def *def,
                         const MDB_val *k, const MDB_val *v,
                         const void **item, size_t *len) {
  (void)txn; (void)e; (void)def; (void)k;
  *item = v->mv_data;
  *len = v->mv_size;
  return DF_OK;
}
