/*
 * kv.c -- keyed access to the sub-databases inside an LMDB transaction:
 * get, put, append, delete, count, clear and cursors (see kv.h).
 *
 * Invariant: this file and env.c are the only ones that call LMDB; every
 * LMDB return code leaves here as a DF_E* code (df__kv_code), so no file
 * above needs lmdb.h.  Nothing here keeps state between calls.
 */
#include <errno.h>
#include <lmdb.h>
#include <string.h>

#include "kv.h"

int df__kv_code(int rc) {
  switch (rc) {
    case 0:
      return DF_OK;
    case MDB_NOTFOUND:
      return DF_ENOTFOUND;
    case ENOMEM:
      return DF_ENOMEM;
    case EACCES:
    case EPERM:
      return DF_EACCESS;
    case ENOSPC:
    case EDQUOT:
      return DF_EDISKFULL;
    case EROFS:
      return DF_EREADONLY;
    case MDB_INVALID:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INCOMPATIBLE:
    case MDB_BAD_DBI:
      return DF_ECORRUPT;
    case MDB_VERSION_MISMATCH:
      return DF_EVERSION;
    case MDB_READERS_FULL:
      return DF_EREADERS;
    case MDB_MAP_FULL:
    case MDB_MAP_RESIZED:
      return DF_ERETRY;
    default:
      return DF_EIO;
  }
}

static MDB_val val(const void *p, size_t n) {
  MDB_val v;
  v.mv_data = (void *)p;
  v.mv_size = n;
  return v;
}

int df__kv_get(const df_kv *kv, df_sub sub, const void *k, size_t kn,
               df_bytes *v) {
  MDB_val mk = val(k, kn), mv;
  int rc = mdb_get(kv->txn, kv->dbi[sub], &mk, &mv);
  if (rc != 0) return df__kv_code(rc);
  v->p = mv.mv_data;
  v->n = mv.mv_size;
  return DF_OK;
}

/* A value the caller filled in through the map (df__kv_append) is copied
 * into the record before the next write can move it. */
#define SETTLE(kv) \
  if ((kv)->rec) df__redo_rec_settle((kv)->rec)

int df__kv_put(const df_kv *kv, df_sub sub, const void *k, size_t kn,
               const void *v, size_t vn) {
  MDB_val mk = val(k, kn), mv = val(v, vn);
  int rc;
  SETTLE(kv);
  rc = mdb_put(kv->txn, kv->dbi[sub], &mk, &mv, 0);
  if (rc != 0) return df__kv_code(rc);
  return kv->rec ? df__redo_rec_put(kv->rec, sub, k, kn, v, vn) : DF_OK;
}

int df__kv_append(const df_kv *kv, df_sub sub, const void *k, size_t kn,
                  size_t vn, void **room) {
  MDB_val mk = val(k, kn), mv = val(NULL, vn);
  int rc;
  SETTLE(kv);
  rc = mdb_put(kv->txn, kv->dbi[sub], &mk, &mv, MDB_APPEND | MDB_RESERVE);
  if (rc != 0) return df__kv_code(rc);
  *room = mv.mv_data;
  return kv->rec ? df__redo_rec_put_later(kv->rec, sub, k, kn, mv.mv_data, vn)
                 : DF_OK;
}

int df__kv_del(const df_kv *kv, df_sub sub, const void *k, size_t kn) {
  MDB_val mk = val(k, kn);
  int rc;
  SETTLE(kv);
  rc = mdb_del(kv->txn, kv->dbi[sub], &mk, NULL);
  if (rc != 0) return df__kv_code(rc);
  return kv->rec ? df__redo_rec_del(kv->rec, sub, k, kn) : DF_OK;
}

int df__kv_count(const df_kv *kv, df_sub sub, uint64_t *n) {
  MDB_stat st;
  int rc = mdb_stat(kv->txn, kv->dbi[sub], &st);
  if (rc != 0) return df__kv_code(rc);
  *n = st.ms_entries;
  return DF_OK;
}

int df__kv_clear(const df_kv *kv, df_sub sub) {
  int rc;
  SETTLE(kv);
  rc = mdb_drop(kv->txn, kv->dbi[sub], 0);
  if (rc != 0) return df__kv_code(rc);
  return kv->rec ? df__redo_rec_clear(kv->rec, sub) : DF_OK;
}

int df__kv_cursor(const df_kv *kv, df_sub sub, df_kvcursor **out) {
  return df__kv_code(mdb_cursor_open(kv->txn, kv->dbi[sub], out));
}

int df__kv_step(df_kvcursor *c, int op, df_bytes *k, df_bytes *v) {
  static const MDB_cursor_op ops[] = {MDB_FIRST, MDB_LAST, MDB_NEXT, MDB_PREV,
                                      MDB_SET_RANGE};
  MDB_val mk, mv;
  int rc;
  if (op == DF_KV_SEEK) mk = val(k->p, k->n);
  rc = mdb_cursor_get(c, &mk, &mv, ops[op]);
  if (rc != 0) return df__kv_code(rc);
  if (k) {
    k->p = mk.mv_data;
    k->n = mk.mv_size;
  }
  if (v) {
    v->p = mv.mv_data;
    v->n = mv.mv_size;
  }
  return DF_OK;
}

int df__kv_cursor_del(const df_kv *kv, df_sub sub, df_kvcursor *c) {
  unsigned char key[DF_KEY_MAX];
  MDB_val mk, mv;
  size_t kn;
  int rc;
  if (kv->rec == NULL) return df__kv_code(mdb_cursor_del(c, 0));
  df__redo_rec_settle(kv->rec);
  /* the key, copied before the entry (and maybe its page) goes */
  rc = mdb_cursor_get(c, &mk, &mv, MDB_GET_CURRENT);
  if (rc != 0) return df__kv_code(rc);
  if (mk.mv_size > sizeof key) return DF_ECORRUPT;
  kn = mk.mv_size;
  memcpy(key, mk.mv_data, kn);
  rc = mdb_cursor_del(c, 0);
  if (rc != 0) return df__kv_code(rc);
  return df__redo_rec_del(kv->rec, sub, key, kn);
}

void df__kv_cursor_close(df_kvcursor *c) {
  if (c) mdb_cursor_close(c);
}
