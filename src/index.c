/*
 * index.c -- global and local secondary indexes: the key and value of an
 * index entry, keeping entries in step with item changes, building a new
 * index from the items (backfill), reading entries back for queries, and
 * dropping an index.
 *
 * Every index lives in the one `index` sub-database, each entry key
 * prefixed by the index's id byte:
 *   lsi: id | hash64(pk)  | enc(pk)  | enc(lsi_sk) | enc(sk)
 *   gsi: id | hash64(gpk) | enc(gpk) | enc(gsk)    | enc(pk) | enc(sk)
 * (partition-type values through df__key_enc_partition, sort-type values
 * through df__key_enc with DF_SK_MAX; enc(gsk) only when the GSI has a sort
 * key, enc(sk) only when the table has one).  Ending every entry key with
 * the table's primary key makes it unique, so many items may share an
 * index key and are ordered among themselves by their primary key.  The
 * longest possible key is 1 + 8 + 64 + 180 + 64 + 180 = 497 bytes, inside
 * LMDB's 511 (checked at compile time below).
 *
 * Entry values begin with a tag byte:
 *   VAL_ITEM   the rest is a MessagePack map: a copy of the item
 *              (projection "all") or its projection ("keys", a list);
 *   VAL_ITEM | VAL_EXPIRES   as VAL_ITEM, preceded by the item's TTL
 *              value as an 8-byte big-endian double, so a projection that
 *              leaves the TTL attribute out still hides expired items;
 *   VAL_LOOKUP the 8-byte hash64 of the table partition key: with the
 *              primary key at the end of the entry key, it rebuilds the
 *              item's key, and the item is read from `items`.
 * Which form "all" uses is chosen by all_by_lookup() (see the README's
 * "Secondary indexes" section for the measured trade-off); readers accept
 * every form, so the choice can change without rewriting a database.
 *
 * Sparse: an item whose index key attribute is missing, or is not a string,
 * binary or number, has no entry.  A key value that is of a key type but
 * cannot be encoded (a string longer than DF_PK_MAX or whose encoding is
 * longer than DF_SK_MAX, NaN) is a DF_EVALIDATION naming the attribute and
 * the index, and the write fails as a whole.
 *
 * Invariant: after every committed write transaction, each index holds
 * exactly one entry per item that has its key attributes, built from the
 * current item, and nothing else.  df__index_apply runs inside the item's
 * own write transaction (txn.c calls it for every change), so an index is
 * never out of step with the items, not even after a crash.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "schema.h"
#include "store.h"

#define VAL_ITEM 0x01
#define VAL_LOOKUP 0x02
#define VAL_EXPIRES 0x80

/* The longest entry key the layout above can produce. */
#define ENTRY_KEY_MAX \
  (1 + 8 + DF_PK_INLINE_MAX + DF_SK_MAX + DF_PK_INLINE_MAX + DF_SK_MAX)
typedef char entry_key_fits[ENTRY_KEY_MAX <= DF_KEY_MAX ? 1 : -1];

/* How often backfill reports progress, in items (at least). */
#define PROGRESS_STEP 1000

/* Projection "all": 1 stores a lookup into `items`, 0 a copy of the item.
 * A build can flip it with -DDF_INDEX_ALL_LOOKUP=1 to measure both. */
#ifndef DF_INDEX_ALL_LOOKUP
#define DF_INDEX_ALL_LOOKUP 0
#endif

static int all_by_lookup(const df_index_def *d) {
  return d->projection == DF_PROJ_ALL && DF_INDEX_ALL_LOOKUP;
}

static int is_key_type(const df_value *v) {
  return v->type == DF_TSTR || v->type == DF_TBIN || v->type == DF_TINT ||
         v->type == DF_TUINT || v->type == DF_TFLOAT;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    DF__PRINTF(3, 4);
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  if (err) {
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return DF_EVALIDATION;
}

/* Find attribute `name` of the item: 1 found with a key type, 0 not in the
 * index (absent or another type), DF_ECORRUPT for malformed bytes. */
static int find_key_attr(const void *item, size_t len, const char *name,
                         df_value *v) {
  int r = df__mp_map_find(item, len, name, strlen(name), v, NULL, NULL);
  if (r < 0) return DF_ECORRUPT;
  return r == 1 && is_key_type(v);
}

/* Append a partition-type value: hash64 (when `with_hash`) then enc. */
static int put_partition(const df_value *v, int with_hash, const char *attr,
                         const df_index_def *d, unsigned char *out, size_t *n,
                         char *err, size_t errlen) {
  size_t m;
  uint64_t h;
  if (v->type == DF_TFLOAT && isnan(v->f))
    return fail(err, errlen, "attribute %s (key of index %s) must not be NaN",
                attr, d->name);
  if ((v->type == DF_TSTR || v->type == DF_TBIN) && v->n > DF_PK_MAX)
    return fail(err, errlen,
                "attribute %s is too long for index %s (%zu bytes; a "
                "partition key holds at most %d)",
                attr, d->name, v->n, DF_PK_MAX);
  if (df__key_enc_partition(v, out + *n + (with_hash ? 8 : 0), &m, &h) != 0)
    return fail(err, errlen, "attribute %s cannot be a key of index %s", attr,
                d->name);
  if (with_hash) {
    df__key_put_u64(out + *n, h);
    *n += 8;
  }
  *n += m;
  return DF_OK;
}

/* Append a sort-type value. */
static int put_sort(const df_value *v, const char *attr, const df_index_def *d,
                    unsigned char *out, size_t *n, char *err, size_t errlen) {
  size_t m;
  if (v->type == DF_TFLOAT && isnan(v->f))
    return fail(err, errlen, "attribute %s (key of index %s) must not be NaN",
                attr, d->name);
  if (df__key_enc(v, out + *n, DF_SK_MAX, &m) != 0)
    return fail(err, errlen,
                "attribute %s is too long for index %s (a sort key holds at "
                "most %d encoded bytes: %d bytes of a string without NUL "
                "bytes)",
                attr, d->name, DF_SK_MAX, DF_SK_MAX - 3);
  *n += m;
  return DF_OK;
}

/* The entry key of `item` (or of a map holding just key attributes) into
 * out (DF_KEY_MAX bytes): DF_OK, DF_ENOTFOUND when the item has no entry,
 * DF_EVALIDATION (message in err) or DF_ECORRUPT. */
static int entry_key(const df_schema *s, const df_index_def *d,
                     const void *item, size_t len, unsigned char *out,
                     size_t *outlen, char *err, size_t errlen) {
  df_value ipk, isk, pk, sk;
  size_t n = 0;
  int r, code;
  const char *ipk_name = d->kind == DF_GSI ? d->pk : s->pk;
  memset(&isk, 0, sizeof isk);
  memset(&sk, 0, sizeof sk);
  if ((r = find_key_attr(item, len, ipk_name, &ipk)) != 1)
    return r < 0 ? r : DF_ENOTFOUND;
  if (d->sk && (r = find_key_attr(item, len, d->sk, &isk)) != 1)
    return r < 0 ? r : DF_ENOTFOUND;
  if (d->kind == DF_GSI) {
    if ((r = find_key_attr(item, len, s->pk, &pk)) != 1)
      return r < 0 ? r : DF_ENOTFOUND;
    if (s->sk && (r = find_key_attr(item, len, s->sk, &sk)) != 1)
      return r < 0 ? r : DF_ENOTFOUND;
  } else {
    pk = ipk;
    if ((r = find_key_attr(item, len, s->sk, &sk)) != 1)
      return r < 0 ? r : DF_ENOTFOUND;
  }
  out[n++] = (unsigned char)d->id;
  if ((code = put_partition(&ipk, 1, ipk_name, d, out, &n, err, errlen)))
    return code;
  if (d->sk && (code = put_sort(&isk, d->sk, d, out, &n, err, errlen)))
    return code;
  if (d->kind == DF_GSI &&
      (code = put_partition(&pk, 0, s->pk, d, out, &n, err, errlen)))
    return code;
  if (s->sk && (code = put_sort(&sk, s->sk, d, out, &n, err, errlen)))
    return code;
  if (n > DF_KEY_MAX) /* cannot happen: see ENTRY_KEY_MAX */
    return fail(err, errlen, "the key of index %s is too long (%zu bytes)",
                d->name, n);
  *outlen = n;
  return DF_OK;
}

int df__index_entry_key(const df_env *e, const df_index_def *def,
                        const void *item, size_t len, unsigned char *out,
                        size_t *n) {
  return entry_key(&e->schema.s, def, item, len, out, n, NULL, 0);
}

/* Copy attribute `name` (when present) into the map being built. */
static void copy_attr(df_buf *b, const void *item, size_t len,
                      const char *name, uint32_t *count) {
  const unsigned char *vs, *ve;
  df_value v;
  if (name == NULL) return;
  if (df__mp_map_find(item, len, name, strlen(name), &v, &vs, &ve) != 1)
    return;
  df__mp_put_str(b, name, strlen(name));
  df__buf_append(b, vs, (size_t)(ve - vs));
  (*count)++;
}

static int seen_before(const char *const *names, size_t i) {
  size_t j;
  for (j = 0; j < i; j++)
    if (names[j] && strcmp(names[j], names[i]) == 0) return 1;
  return 0;
}

/* Append the projection of `item` for index d ("keys" or a list): the
 * table and index key attributes, then the listed ones, each once. */
static void project(df_buf *b, const df_schema *s, const df_index_def *d,
                    const void *item, size_t len) {
  const char *names[4 + DF_MAX_INDEXES];
  size_t i, n = 0, head = b->len;
  uint32_t count = 0;
  names[n++] = s->pk;
  names[n++] = s->sk;
  names[n++] = d->pk;
  names[n++] = d->sk;
  for (i = 0; d->projection == DF_PROJ_INCLUDE && i < d->n_include; i++)
    names[n++] = d->include[i];
  df__buf_append(b, "\xdf\0\0\0\0", 5); /* map32, count fixed below */
  for (i = 0; i < n; i++)
    if (names[i] && !seen_before(names, i))
      copy_attr(b, item, len, names[i], &count);
  if (b->failed) return;
  b->p[head + 1] = (unsigned char)(count >> 24);
  b->p[head + 2] = (unsigned char)(count >> 16);
  b->p[head + 3] = (unsigned char)(count >> 8);
  b->p[head + 4] = (unsigned char)count;
}

/* The TTL value of an item, when the schema has a TTL attribute and the
 * item holds a number there. */
static int ttl_value(const df_schema *s, const void *item, size_t len,
                     double *when) {
  df_value v;
  if (s->ttl_attr == NULL) return 0;
  if (df__mp_map_find(item, len, s->ttl_attr, strlen(s->ttl_attr), &v, NULL,
                      NULL) != 1)
    return 0;
  switch (v.type) {
    case DF_TINT: *when = (double)v.i; return 1;
    case DF_TUINT: *when = (double)v.u; return 1;
    case DF_TFLOAT: *when = v.f; return 1;
    default: return 0;
  }
}

/* The entry value of `item` for index d into b (reset first). */
static int entry_value(df_buf *b, const df_schema *s, const df_index_def *d,
                       const unsigned char *item_key, const void *item,
                       size_t len) {
  double when;
  df__buf_reset(b);
  if (all_by_lookup(d)) {
    df__buf_putc(b, VAL_LOOKUP);
    df__buf_append(b, item_key, 8);
  } else if (d->projection == DF_PROJ_ALL) {
    df__buf_putc(b, VAL_ITEM);
    df__buf_append(b, item, len);
  } else {
    if (ttl_value(s, item, len, &when)) {
      unsigned char w[8];
      uint64_t bits;
      memcpy(&bits, &when, 8);
      df__key_put_u64(w, bits);
      df__buf_putc(b, VAL_ITEM | VAL_EXPIRES);
      df__buf_append(b, w, 8);
    } else {
      df__buf_putc(b, VAL_ITEM);
    }
    project(b, s, d, item, len);
  }
  return b->failed ? DF_ENOMEM : DF_OK;
}

static int put_entry(MDB_txn *txn, MDB_dbi dbi, const unsigned char *k,
                     size_t klen, const df_buf *v) {
  MDB_val mk, mv;
  mk.mv_data = (void *)k;
  mk.mv_size = klen;
  mv.mv_data = v->p;
  mv.mv_size = v->len;
  return mdb_put(txn, dbi, &mk, &mv, 0);
}

/* An LMDB failure inside a write transaction. */
static int lmdb_failed(df_txn *t, int rc, const char *what) {
  if (rc == MDB_MAP_FULL) {
    t->map_full = 1;
    return df__txn_err(t, DF_ERETRY,
                       "the database map is full; it grows at commit: run "
                       "the transaction again");
  }
  return df__txn_err(t, df__map_err(rc), "index %s failed: %s", what,
                     mdb_strerror(rc));
}

int df__index_apply(df_txn *t, const unsigned char *item_key, size_t klen,
                    const void *old, size_t old_len, const void *new_item,
                    size_t new_len) {
  const df_schema *s = &t->env->schema.s;
  unsigned char ok_[DF_KEY_MAX], nk[DF_KEY_MAX];
  size_t i, okn = 0, nkn = 0;
  int code, rc, has_old, has_new;
  (void)klen;
  for (i = 0; i < s->n_indexes; i++) {
    const df_index_def *d = &s->indexes[i];
    has_old = has_new = 0;
    if (new_item) {
      code = entry_key(s, d, new_item, new_len, nk, &nkn, t->errmsg,
                       sizeof t->errmsg);
      if (code == DF_OK) has_new = 1;
      else if (code != DF_ENOTFOUND) return code;
    }
    if (old) {
      code = entry_key(s, d, old, old_len, ok_, &okn, NULL, 0);
      if (code == DF_OK) has_old = 1;
      else if (code != DF_ENOTFOUND && code != DF_EVALIDATION) return code;
    }
    if (has_old && has_new && okn == nkn && memcmp(ok_, nk, nkn) == 0) {
      /* Same entry key: only the value can have changed.  A lookup value
       * depends on the key alone; a copy is rewritten unless identical. */
      if (all_by_lookup(d)) continue;
      if (d->projection == DF_PROJ_ALL && old_len == new_len &&
          memcmp(old, new_item, new_len) == 0)
        continue;
      has_old = 0; /* overwritten by the put below */
    }
    if (has_old) {
      MDB_val mk;
      mk.mv_data = ok_;
      mk.mv_size = okn;
      rc = mdb_del(t->txn, t->env->dbi_index, &mk, NULL);
      if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_failed(t, rc, "delete");
    }
    if (has_new) {
      code = entry_value(&t->scratch, s, d, item_key, new_item, new_len);
      if (code != DF_OK) return code;
      rc = put_entry(t->txn, t->env->dbi_index, nk, nkn, &t->scratch);
      if (rc != 0) return lmdb_failed(t, rc, "write");
    }
  }
  return DF_OK;
}

/* ------------------------------------------------------------- reading */

/* Length of the encoded key value at p (see key.c), 0 when malformed. */
static size_t enc_len(const unsigned char *p, const unsigned char *end) {
  const unsigned char *q;
  if (p >= end) return 0;
  switch (*p) {
    case DF_TAG_NUM: return end - p >= DF_NUM_ENC_LEN ? DF_NUM_ENC_LEN : 0;
    case DF_TAG_HASHED: return end - p >= 17 ? 17 : 0;
    case DF_TAG_STR:
      for (q = p + 1; q + 1 < end; q++) {
        if (*q != 0x00) continue;
        if (q[1] == 0x01) return (size_t)(q + 2 - p);
        q++; /* 00 ff: an escaped NUL */
      }
      return 0;
    default: return 0;
  }
}

/* Rebuild the items key of an entry: hash | enc(pk) | enc(sk), where the
 * encoded primary key is the tail of the entry key after the index's own
 * key values. */
static int item_key_of_entry(const df_index_def *d, const MDB_val *k,
                             const unsigned char *hash, unsigned char *out,
                             size_t *outlen) {
  const unsigned char *p = k->mv_data, *end = p + k->mv_size, *pk;
  size_t m, n = 0;
  p += 1 + 8; /* id, partition hash */
  pk = p;
  if ((m = enc_len(p, end)) == 0) return DF_ECORRUPT; /* index pk */
  p += m;
  if (d->kind == DF_LSI) {
    /* id | hash64(pk) | enc(pk) | enc(lsi_sk) | enc(sk): the item key is
     * hash64(pk) | enc(pk) | enc(sk) */
    memcpy(out, pk - 8, 8 + m);
    n = 8 + m;
  } else {
    memcpy(out, hash, 8);
    n = 8;
  }
  if (d->sk) {
    if ((m = enc_len(p, end)) == 0) return DF_ECORRUPT;
    p += m;
  }
  if (n + (size_t)(end - p) > DF_KEY_MAX || p >= end) return DF_ECORRUPT;
  memcpy(out + n, p, (size_t)(end - p));
  *outlen = n + (size_t)(end - p);
  return DF_OK;
}

int df__index_entry_item(MDB_txn *txn, df_env *e, const df_index_def *def,
                         const MDB_val *k, const MDB_val *v, double now,
                         const void **item, size_t *len, int *hidden) {
  const unsigned char *p = v->mv_data;
  *hidden = 0;
  if (v->mv_size < 2) return DF_ECORRUPT;
  if (p[0] == VAL_ITEM) {
    *item = p + 1;
    *len = v->mv_size - 1;
    return DF_OK;
  }
  if (p[0] == (VAL_ITEM | VAL_EXPIRES)) {
    uint64_t bits;
    double when;
    if (v->mv_size < 10) return DF_ECORRUPT;
    bits = df__key_get_u64(p + 1);
    memcpy(&when, &bits, 8);
    *hidden = when < now;
    *item = p + 9;
    *len = v->mv_size - 9;
    return DF_OK;
  }
  if (p[0] == VAL_LOOKUP && v->mv_size == 9) {
    unsigned char ik[DF_KEY_MAX];
    MDB_val mk, mv;
    int rc;
    if (item_key_of_entry(def, k, p + 1, ik, &mk.mv_size) != DF_OK)
      return DF_ECORRUPT;
    mk.mv_data = ik;
    rc = mdb_get(txn, e->dbi_items, &mk, &mv);
    if (rc == MDB_NOTFOUND) return DF_ECORRUPT; /* index out of step */
    if (rc != 0) return df__map_err(rc);
    *item = mv.mv_data;
    *len = mv.mv_size;
    return DF_OK;
  }
  return DF_ECORRUPT;
}

/* ------------------------------------------------------------ building */

/* Delete every entry of index `id`. */
static int clear_entries(MDB_txn *txn, df_env *e, unsigned id,
                         size_t *deleted) {
  MDB_cursor *c;
  MDB_val k, v;
  unsigned char prefix = (unsigned char)id;
  int rc;
  *deleted = 0;
  rc = mdb_cursor_open(txn, e->dbi_index, &c);
  if (rc != 0) return rc;
  for (;;) {
    k.mv_data = &prefix;
    k.mv_size = 1;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (rc != 0 || *(unsigned char *)k.mv_data != prefix) break;
    if ((rc = mdb_cursor_del(c, 0)) != 0) break;
    (*deleted)++;
  }
  mdb_cursor_close(c);
  return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

int df__index_backfill(df_db *db, MDB_txn *txn, df_env *e,
                       const df_index_def *def, const df_open_options *o) {
  const df_schema *s = &e->schema.s;
  MDB_cursor *c = NULL;
  MDB_stat st;
  MDB_val k, v;
  unsigned char ek[DF_KEY_MAX];
  size_t ekn, done = 0, total = 0, step, cleared;
  df_buf val;
  char err[DF_MSG_MAX];
  int rc, code = DF_OK;

  df__buf_init(&val);
  /* A new index id may have held entries of a dropped index: start clean. */
  rc = clear_entries(txn, e, def->id, &cleared);
  if (rc == 0) rc = mdb_stat(txn, e->dbi_items, &st);
  if (rc == 0) rc = mdb_cursor_open(txn, e->dbi_items, &c);
  if (rc != 0) goto lmdb;
  total = st.ms_entries;
  step = total / 100 > PROGRESS_STEP ? total / 100 : PROGRESS_STEP;
  if (o && o->progress) o->progress(o->progress_ud, def->name, 0, total);
  for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    done++;
    if (o && o->progress && done % step == 0 && done < total)
      o->progress(o->progress_ud, def->name, done, total);
    code = entry_key(s, def, v.mv_data, v.mv_size, ek, &ekn, err, sizeof err);
    if (code == DF_ENOTFOUND) continue;
    if (code == DF_EVALIDATION) {
      df__db_err(db, code, "cannot build index %s: %s", def->name, err);
      goto out;
    }
    if (code != DF_OK) goto fail;
    code = entry_value(&val, s, def, k.mv_data, v.mv_data, v.mv_size);
    if (code != DF_OK) goto fail;
    rc = put_entry(txn, e->dbi_index, ek, ekn, &val);
    if (rc != 0) goto lmdb;
  }
  if (rc != MDB_NOTFOUND) goto lmdb;
  if (o && o->progress) o->progress(o->progress_ud, def->name, total, total);
  code = DF_OK;
  goto out;
lmdb:
  code = df__map_err(rc);
  df__db_err(db, code, "cannot build index %s: %s", def->name,
             mdb_strerror(rc));
  goto out;
fail:
  df__db_err(db, code, "cannot build index %s: %s", def->name,
             df_strerror(code));
out:
  if (c) mdb_cursor_close(c);
  df__buf_free(&val);
  return code;
}

/* Rebuild the entries of every index whose values carry the TTL (after a
 * TTL attribute was added): they were written without it. */
int df__index_rebuild_projected(df_db *db, MDB_txn *txn, df_env *e,
                                size_t n) {
  size_t i;
  int code;
  for (i = 0; i < n && i < e->schema.s.n_indexes; i++) {
    const df_index_def *d = &e->schema.s.indexes[i];
    if (d->projection == DF_PROJ_ALL) continue;
    code = df__index_backfill(db, txn, e, d, NULL);
    if (code != DF_OK) return code;
  }
  return DF_OK;
}

/* ------------------------------------------------------------- dropping */

/* One attempt: DF_ERETRY after the map had to grow. */
static int drop_once(df_db *db, const char *name) {
  df_env *e = db->env;
  df_txn *t;
  df_schema copy;
  df_schema_owned next;
  df_index_def defs[DF_MAX_INDEXES];
  size_t i, n, deleted;
  unsigned id = 0;
  int code, rc;
  char err[DF_MSG_MAX];

  code = df_txn_begin(db, DF_TXN_WRITE, 0, &t);
  if (code != DF_OK) return code;
  copy = e->schema.s; /* current: the begin refreshed it */
  for (i = n = 0; i < copy.n_indexes; i++) {
    if (strcmp(copy.indexes[i].name, name) == 0) id = copy.indexes[i].id;
    else defs[n++] = copy.indexes[i];
  }
  if (id == 0) {
    df_txn_free(t);
    return df__db_err(db, DF_ENOTFOUND, "no index named %s", name);
  }
  copy.indexes = defs;
  copy.n_indexes = n;
  rc = clear_entries(t->txn, e, id, &deleted);
  if (rc != 0) {
    df_txn_free(t); /* releases the map before growing it */
    if (rc == MDB_MAP_FULL) {
      df__env_grow(e);
      return DF_ERETRY;
    }
    return df__db_err(db, df__map_err(rc), "cannot drop index %s: %s", name,
                      mdb_strerror(rc));
  }
  code = df__schema_copy(&copy, &next, err, sizeof err);
  if (code != DF_OK) {
    df_txn_free(t);
    return df__db_err(db, code, "cannot drop index %s: %s", name, err);
  }
  rc = df__schema_put(t->txn, e, &next.s);
  if (rc != DF_OK) {
    df__schema_free(&next);
    df_txn_free(t);
    if (rc == DF_ERETRY) {
      df__env_grow(e);
      return DF_ERETRY;
    }
    return df__db_err(db, rc, "cannot drop index %s: %s", name,
                      df_strerror(rc));
  }
  /* adopting the new schema after the commit must not fail */
  if (df__schema_reserve(e) != DF_OK) {
    df__schema_free(&next);
    df_txn_free(t);
    return df__db_err(db, DF_ENOMEM, "cannot drop index %s: out of memory",
                      name);
  }
  code = df_txn_commit(t); /* grows the map itself on DF_ERETRY */
  if (code != DF_OK) {
    df__schema_free(&next);
    if (code != DF_ERETRY)
      df__db_err(db, code, "cannot drop index %s: %s", name, t->errmsg);
    df_txn_free(t);
    return code;
  }
  df_txn_free(t);
  df__schema_adopt(e, &next);
  df__meta_json_write(e);
  return DF_OK;
}

int df_db_drop_index(df_db *db, const char *name) {
  int code, tries;
  if ((code = df__db_check(db)) != DF_OK) return code;
  if (name == NULL) return df__db_err(db, DF_EINVAL, "index name is NULL");
  for (tries = 0; tries < 16; tries++) {
    code = drop_once(db, name);
    if (code != DF_ERETRY) return code;
  }
  return df__db_err(db, DF_EIO, "the map kept filling up; giving up");
}
