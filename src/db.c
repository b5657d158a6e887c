/*
 * db.c -- the database handle's public calls: open and close, the schema
 * and identity of a handle, statistics, and the one-call forms (get, put,
 * delete), each its own transaction.
 *
 * Invariants:
 *  - A handle is bound to one environment (env.c) from a successful open
 *    until its release; a failed open leaves a handle that holds only the
 *    message and refuses every call with DF_ECLOSED.
 *  - A handle closed while transactions made from it are live stays
 *    allocated, refusing new calls, until the last of them is freed
 *    (txn.c releases it).
 */
#include <string.h>

#include "ddl.h"
#include "txn.h"

static int options_check(df_db *db, const df_open_options *o) {
  if (o->sync != DF_SYNC_FULL && o->sync != DF_SYNC_NORMAL &&
      o->sync != DF_SYNC_OFF)
    return df__db_err(db, DF_EINVAL, "invalid sync mode %d", (int)o->sync);
  return DF_OK;
}

int df_db_open(const char *path, const df_open_options *opts, df_db **out) {
  df_db *db;
  df_open_options defaults;
  df_env *e;
  int code;
  char err[DF_MSG_MAX];

  if (out == NULL) return DF_EINVAL;
  *out = db = df__db_new();
  if (db == NULL) return DF_ENOMEM;
  if (opts == NULL) {
    memset(&defaults, 0, sizeof defaults);
    opts = &defaults;
  }
  if (path == NULL || path[0] == '\0')
    return df__db_err(db, DF_EINVAL, "path must be a non-empty string");
  if ((code = options_check(db, opts)) != DF_OK) return code;
  db->sync = opts->sync;
  db->max_item_size = opts->max_item_size;
  code = df__env_acquire(path, opts, &e, err, sizeof err);
  if (code != DF_OK) return df__db_err(db, code, "%s", err);
  db->env = e;
  db->origin = opts->origin ? opts->origin : e->origin;
  code = df__ddl_open(db, opts);
  if (code != DF_OK) {
    df__env_rcache_drop(&db->rcache);
    df__env_release(e);
    db->env = NULL;
  }
  return code;
}

/* A handle closed while transactions made from it are still live stays
 * allocated (refusing new calls) until the last of them is freed. */
void df_db_close(df_db *db) {
  if (db == NULL) return;
  if (__atomic_load_n(&db->txns, __ATOMIC_ACQUIRE) > 0) {
    db->closed = 1;
    db->close_pending = 1;
    return;
  }
  df__db_release(db);
}

const df_schema *df_db_schema(const df_db *db) {
  return (db && db->env) ? &db->env->schema.s : NULL;
}

const char *df_db_id(const df_db *db) {
  return (db && db->env) ? db->env->id : "";
}

int df_db_index_find(const df_db *db, const char *name, unsigned *id) {
  const df_schema *s = df_db_schema(db);
  size_t i;
  if (s == NULL || name == NULL) return DF_EINVAL;
  for (i = 0; i < s->n_indexes; i++) {
    if (strcmp(s->indexes[i].name, name) == 0) {
      if (id) *id = s->indexes[i].id;
      return DF_OK;
    }
  }
  /* the message lives in the calling thread's slot, not in the handle */
  return df__db_err((df_db *)db, DF_ENOTFOUND, "no index named %s", name);
}

int df_db_key_check(df_db *db, const df_key *key) {
  unsigned char k[DF_KEY_MAX];
  size_t n;
  int code;
  char err[DF_MSG_MAX];
  if (key == NULL) return DF_EINVAL;
  if ((code = df__db_check(db)) != DF_OK) return code;
  code = df__item_key(&db->env->schema.s, key, k, &n, err, sizeof err);
  return code == DF_OK ? DF_OK : df__db_err(db, code, "%s", err);
}

int df_db_stat(df_db *db, df_stat *out) {
  df_kv kv;
  df_kvcursor *c;
  df_bytes k;
  int code;
  if (out == NULL) return DF_EINVAL;
  if ((code = df__db_check(db)) != DF_OK) return code;
  memset(out, 0, sizeof *out);
  if ((code = df__db_read(db, &kv)) != DF_OK) return code;
  df__kv_count(&kv, DF_SUB_ITEMS, &out->items);
  df__kv_count(&kv, DF_SUB_INDEX, &out->index_entries);
  if (df__kv_cursor(&kv, DF_SUB_STREAM, &c) == DF_OK) {
    if (df__kv_step(c, DF_KV_FIRST, &k, NULL) == DF_OK && k.n == 8)
      out->stream_first = df__key_get_u64(k.p);
    if (df__kv_step(c, DF_KV_LAST, &k, NULL) == DF_OK && k.n == 8)
      out->stream_last = df__key_get_u64(k.p);
    df__kv_cursor_close(c);
  }
  df__db_read_end(db, &kv);
  df__env_info(db->env, &out->map_size, &out->used_bytes, &out->max_readers,
               &out->readers_used);
  out->format = db->env->schema.format;
  return DF_OK;
}

int df_db_item_key(df_db *db, const void *item, size_t len, df_key *key) {
  int code;
  char err[DF_MSG_MAX];
  if ((code = df__db_check(db)) != DF_OK) return code;
  code = df__item_key_of(&db->env->schema.s, item, len, key, err, sizeof err);
  if (code != DF_OK) df__db_err(db, code, "%s", err);
  return code;
}

/* ------------------------------------------------------- one-call forms */

int df_db_get(df_db *db, const df_key *key, double now, const void **item,
              size_t *len) {
  unsigned char k[DF_KEY_MAX];
  size_t klen;
  df_kv kv;
  df_bytes v;
  const df_schema *s;
  int code;
  df_slot *slot;
  char err[DF_MSG_MAX];
  if ((code = df__db_check(db)) != DF_OK) return code;
  s = &db->env->schema.s;
  code = df__item_key(s, key, k, &klen, err, sizeof err);
  if (code != DF_OK) return df__db_err(db, code, "%s", err);
  /* the copy goes to the calling thread's buffer: a shared handle's
   * other threads never overwrite it */
  if ((slot = df__db_slot(db)) == NULL) return DF_ENOMEM;
  if ((code = df__db_read(db, &kv)) != DF_OK) return code;
  code = df__kv_get(&kv, DF_SUB_ITEMS, k, klen, &v);
  if (code == DF_OK && (df__item_expired(s, v.p, v.n, now) ||
                        !df__item_key_is(s, k, klen, v.p, v.n, key)))
    code = DF_ENOTFOUND;
  if (code == DF_OK) {
    df__buf_reset(&slot->got);
    if (df__buf_append(&slot->got, v.p, v.n) != 0) code = DF_ENOMEM;
  }
  df__db_read_end(db, &kv);
  if (code == DF_ENOTFOUND) return code;
  if (code == DF_ENOMEM) return df__db_err(db, code, "out of memory");
  if (code != DF_OK)
    return df__db_err(db, code, "read failed: %s", df_strerror(code));
  *item = slot->got.p;
  *len = slot->got.len;
  return DF_OK;
}

typedef struct one_write {
  const void *item; /* put this, or */
  size_t len;
  const df_key *key; /* delete this */
  int found;
} one_write;

static int one_write_body(df_txn *t, void *ud) {
  one_write *w = ud;
  /* every write path also deletes a few expired items */
  int code = df_txn_purge_expired(t, 8, NULL);
  if (code != DF_OK) return code;
  if (w->item) return df_txn_put(t, w->item, w->len, NULL, NULL);
  return df_txn_delete(t, w->key, &w->found, NULL, NULL);
}

int df_db_put(df_db *db, const void *item, size_t len, double now) {
  one_write w;
  if (item == NULL) return df__db_err(db, DF_EINVAL, "item is NULL");
  memset(&w, 0, sizeof w);
  w.item = item;
  w.len = len;
  return df__txn_run(db, DF_TXN_WRITE, now, one_write_body, &w);
}

int df_db_delete(df_db *db, const df_key *key, double now, int *found) {
  one_write w;
  int code;
  memset(&w, 0, sizeof w);
  w.key = key;
  code = df__txn_run(db, DF_TXN_WRITE, now, one_write_body, &w);
  if (found) *found = code == DF_OK && w.found;
  return code;
}
