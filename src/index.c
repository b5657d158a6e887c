/*
 * index.c -- global and local secondary indexes: the key and value of an
 * index entry, keeping entries in step with item changes, building a new
 * index from the items (backfill), clearing one, and reading entries back
 * for queries.  Works on the write context txn.c hands it (write.h) or on
 * a reader's kv view; never begins or commits a transaction.
 *
 * Every index lives in the one `index` sub-database, each entry key
 * prefixed by the index's id byte:
 *   lsi: id | hash64(pk)  | enc(pk)  | enc(lsi_sk) | enc(sk)
 *   gsi: id | hash64(gpk) | enc(gpk) | enc(gsk)    | enc(pk) | enc(sk)
 * (partition-type values through df__key_enc_partition, sort-type values
 * through df__key_enc_sort -- a long one as prefix + hash; enc(gsk) only
 * when the GSI has a sort key, enc(sk) only when the table has one).
 * Ending every entry key with the table's primary key makes it unique, so
 * many items may share an index key and are ordered among themselves by
 * their primary key.  The longest possible key is 1 + 8 + 64 + 176 + 64 +
 * 176 = 489 bytes, inside LMDB's 511 (checked at compile time below).
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
 * Sparse: an item whose index key attribute is missing has no entry.  A
 * write whose item holds an index key attribute that is not a string,
 * binary or number (a boolean, null, a list, a map, a set), or that cannot
 * be a key (a partition value over DF_PK_MAX bytes, a sort value over
 * DF_SK_MAX, NaN), fails as a whole with DF_EVALIDATION naming the
 * attribute and the index, as DynamoDB's does ("Type mismatch for Index
 * Key ...").  Building an index from existing items leaves out the items
 * of the wrong type (DynamoDB's index violations) -- databases of earlier
 * releases may hold such items -- and fails on the others.
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

#include "index.h"
#include "schema.h"
#include "write.h"

#define VAL_ITEM 0x01
#define VAL_LOOKUP 0x02
#define VAL_EXPIRES 0x80

/* The longest entry key the layout above can produce. */
#define ENTRY_KEY_MAX                                             \
  (1 + 8 + DF_PK_INLINE_MAX + DF_SK_LONG_LEN + DF_PK_INLINE_MAX + \
   DF_SK_LONG_LEN)
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
         v->type == DF_TUINT || v->type == DF_TFLOAT || v->type == DF_TDECIMAL;
}

/* DynamoDB's name of a value's type, for messages. */
static const char *ddb_type(const df_value *v) {
  switch (v->type) {
    case DF_TSTR:
      return "S";
    case DF_TBIN:
      return "B";
    case DF_TINT:
    case DF_TUINT:
    case DF_TFLOAT:
    case DF_TDECIMAL:
      return "N";
    case DF_TBOOL:
      return "BOOL";
    case DF_TNIL:
      return "NULL";
    case DF_TARRAY:
      return "L";
    case DF_TMAP:
      return "M";
    case DF_TSS:
      return "SS";
    case DF_TNS:
      return "NS";
    case DF_TBS:
      return "BS";
    default:
      return "?";
  }
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

/* Find attribute `name` of the item: 1 found with a key type, 0 absent,
 * DF_ECORRUPT for malformed bytes; present with another type: 0 when
 * `lenient`, else DF_EVALIDATION with the message in err. */
static int find_key_attr(const void *item, size_t len, const char *name,
                         const df_index_def *d, int lenient, df_value *v,
                         char *err, size_t errlen) {
  int r = df__mp_map_find(item, len, name, strlen(name), v, NULL, NULL);
  if (r < 0) return DF_ECORRUPT;
  if (r == 0) return 0;
  if (is_key_type(v)) return 1;
  if (lenient) return 0;
  return fail(err, errlen,
              "One or more parameter values were invalid: Type mismatch for "
              "Index Key %s Expected: S, N or B Actual: %s IndexName: %s",
              name, ddb_type(v), d->name);
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
  if (df__key_enc_sort(v, out + *n, &m, NULL) != 0)
    return fail(err, errlen,
                "attribute %s is too long for index %s (%zu bytes; a sort "
                "key holds at most %d)",
                attr, d->name, v->n, DF_SK_MAX);
  *n += m;
  return DF_OK;
}

/* The entry key of `item` (or of a map holding just key attributes) into
 * out (DF_KEY_MAX bytes): DF_OK, DF_ENOTFOUND when the item has no entry,
 * DF_EVALIDATION (message in err) or DF_ECORRUPT.  `lenient`: an index key
 * attribute of a type no key has leaves the item out of the index instead
 * of failing (building, checking, and the old item of a change). */
static int entry_key(const df_schema *s, const df_index_def *d,
                     const void *item, size_t len, const df_key *tk,
                     int lenient, unsigned char *out, size_t *outlen, char *err,
                     size_t errlen) {
  df_value ipk, isk, pk, sk;
  size_t n = 0;
  int r, code;
  const char *ipk_name = d->kind == DF_GSI ? d->pk : s->pk;
  memset(&isk, 0, sizeof isk);
  memset(&sk, 0, sizeof sk);
  r = find_key_attr(item, len, ipk_name, d, lenient, &ipk, err, errlen);
  if (r != 1) return r < 0 ? r : DF_ENOTFOUND;
  if (d->sk) {
    r = find_key_attr(item, len, d->sk, d, lenient, &isk, err, errlen);
    if (r != 1) return r < 0 ? r : DF_ENOTFOUND;
  }
  /* the table's key attributes: the key rule has checked them (tk: the
   * caller found them) */
  if (d->kind == DF_GSI) {
    if (tk) {
      pk = tk->pk;
      if (s->sk) sk = tk->sk;
    } else {
      r = find_key_attr(item, len, s->pk, d, 1, &pk, NULL, 0);
      if (r != 1) return r < 0 ? r : DF_ENOTFOUND;
      if (s->sk &&
          (r = find_key_attr(item, len, s->sk, d, 1, &sk, NULL, 0)) != 1)
        return r < 0 ? r : DF_ENOTFOUND;
    }
  } else {
    pk = ipk;
    if (tk) {
      sk = tk->sk;
    } else {
      r = find_key_attr(item, len, s->sk, d, 1, &sk, NULL, 0);
      if (r != 1) return r < 0 ? r : DF_ENOTFOUND;
    }
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

int df__index_entry_key(const df_schema *s, const df_index_def *def,
                        const void *item, size_t len, unsigned char *out,
                        size_t *n) {
  return entry_key(s, def, item, len, NULL, 1, out, n, NULL, 0);
}

/* Append the projection of `item` for index d ("keys" or a list): the
 * table and index key attributes, then the listed ones, each once. */
static void project(df_buf *b, const df_schema *s, const df_index_def *d,
                    const void *item, size_t len) {
  const char *names[4 + DF_MAX_INDEXES];
  size_t i, n = 0;
  names[n++] = s->pk;
  names[n++] = s->sk;
  names[n++] = d->pk;
  names[n++] = d->sk;
  for (i = 0; d->projection == DF_PROJ_INCLUDE && i < d->n_include; i++)
    names[n++] = d->include[i];
  df__item_project(b, names, n, item, len);
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
    if (df__item_ttl(s, item, len, NULL, &when)) {
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

/* A storage failure while writing index entries. */
static int store_failed(df_write *w, int code, const char *what) {
  if (code == DF_ERETRY)
    return df__fmt(w->errmsg, sizeof w->errmsg, code,
                   "the database map is full; it grows at commit: run the "
                   "transaction again");
  return df__fmt(w->errmsg, sizeof w->errmsg, code, "index %s failed: %s", what,
                 df_strerror(code));
}

/* df__index_check keeps the entry keys of the item it checked in
 * w->checked, for the df__index_apply that writes that item (the same
 * bytes at the same address): per index one byte, 1 when the item has an
 * entry, followed by the key's length (2 bytes, big-endian) and the key,
 * or 0 when it has none. */
int df__index_check(df_write *w, const df_key *key, const void *new_item,
                    size_t new_len) {
  const df_schema *s = w->schema;
  unsigned char k[DF_KEY_MAX + 3];
  size_t i, n;
  w->checked_item = NULL;
  df__buf_reset(&w->checked);
  for (i = 0; i < s->n_indexes; i++) {
    int code = entry_key(s, &s->indexes[i], new_item, new_len, key, 0, k + 3,
                         &n, w->errmsg, sizeof w->errmsg);
    if (code == DF_OK) {
      k[0] = 1;
      k[1] = (unsigned char)(n >> 8);
      k[2] = (unsigned char)n;
      df__buf_append(&w->checked, k, n + 3);
    } else if (code == DF_ENOTFOUND) {
      df__buf_putc(&w->checked, 0);
    } else {
      return code;
    }
  }
  /* out of memory: apply works the keys out again */
  if (!w->checked.failed) {
    w->checked_item = new_item;
    w->checked_len = new_len;
  }
  return DF_OK;
}

/* The entry key of the new item for the next index from w->checked at *at
 * (see df__index_check): DF_OK or DF_ENOTFOUND. */
static int checked_key(df_write *w, size_t *at, unsigned char *out,
                       size_t *outlen) {
  const unsigned char *p = w->checked.p + *at;
  size_t n;
  if (p[0] == 0) {
    *at += 1;
    return DF_ENOTFOUND;
  }
  n = (size_t)p[1] << 8 | p[2];
  memcpy(out, p + 3, n);
  *outlen = n;
  *at += 3 + n;
  return DF_OK;
}

int df__index_apply(df_write *w, const unsigned char *item_key, const void *old,
                    size_t old_len, const void *new_item, size_t new_len) {
  const df_schema *s = w->schema;
  unsigned char ok_[DF_KEY_MAX], nk[DF_KEY_MAX];
  size_t i, okn = 0, nkn = 0, at = 0;
  int code, has_old, has_new;
  int checked = new_item != NULL && new_item == w->checked_item &&
                new_len == w->checked_len;
  if (new_item) w->checked_item = NULL; /* used once */
  for (i = 0; i < s->n_indexes; i++) {
    const df_index_def *d = &s->indexes[i];
    has_old = has_new = 0;
    if (new_item) {
      code = checked ? checked_key(w, &at, nk, &nkn)
                     : entry_key(s, d, new_item, new_len, NULL, 0, nk, &nkn,
                                 w->errmsg, sizeof w->errmsg);
      if (code == DF_OK)
        has_new = 1;
      else if (code != DF_ENOTFOUND)
        return code;
    }
    if (old) {
      code = entry_key(s, d, old, old_len, NULL, 1, ok_, &okn, NULL, 0);
      if (code == DF_OK)
        has_old = 1;
      else if (code != DF_ENOTFOUND && code != DF_EVALIDATION)
        return code;
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
      code = df__kv_del(&w->kv, DF_SUB_INDEX, ok_, okn);
      if (code != DF_OK && code != DF_ENOTFOUND)
        return store_failed(w, code, "delete");
    }
    if (has_new) {
      code = entry_value(&w->scratch, s, d, item_key, new_item, new_len);
      if (code != DF_OK)
        return df__fmt(w->errmsg, sizeof w->errmsg, code, "out of memory");
      code = df__kv_put(&w->kv, DF_SUB_INDEX, nk, nkn, w->scratch.p,
                        w->scratch.len);
      if (code != DF_OK) return store_failed(w, code, "write");
    }
  }
  return DF_OK;
}

/* ------------------------------------------------------------- reading */

/* Length of the encoded key value at p (see key.c), 0 when malformed. */
static size_t enc_len(const unsigned char *p, const unsigned char *end) {
  return df__key_part_len(p, end, NULL);
}

/* Rebuild the items key of an entry: hash | enc(pk) | enc(sk), where the
 * encoded primary key is the tail of the entry key after the index's own
 * key values. */
static int item_key_of_entry(const df_index_def *d, const df_bytes *k,
                             const unsigned char *hash, unsigned char *out,
                             size_t *outlen) {
  const unsigned char *p = k->p, *end = p + k->n, *pk;
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

int df__index_entry_item(const df_kv *kv, const df_index_def *def,
                         const df_bytes *k, const df_bytes *v, double now,
                         const void **item, size_t *len, int *hidden) {
  const unsigned char *p = v->p;
  *hidden = 0;
  if (v->n < 2) return DF_ECORRUPT;
  if (p[0] == VAL_ITEM) {
    *item = p + 1;
    *len = v->n - 1;
    return DF_OK;
  }
  if (p[0] == (VAL_ITEM | VAL_EXPIRES)) {
    uint64_t bits;
    double when;
    if (v->n < 10) return DF_ECORRUPT;
    bits = df__key_get_u64(p + 1);
    memcpy(&when, &bits, 8);
    *hidden = df__ttl_expired(when, now);
    *item = p + 9;
    *len = v->n - 9;
    return DF_OK;
  }
  if (p[0] == VAL_LOOKUP && v->n == 9) {
    unsigned char ik[DF_KEY_MAX];
    size_t ikn;
    df_bytes iv;
    int code;
    if (item_key_of_entry(def, k, p + 1, ik, &ikn) != DF_OK) return DF_ECORRUPT;
    code = df__kv_get(kv, DF_SUB_ITEMS, ik, ikn, &iv);
    if (code == DF_ENOTFOUND) return DF_ECORRUPT; /* index out of step */
    if (code != DF_OK) return code;
    *item = iv.p;
    *len = iv.n;
    return DF_OK;
  }
  return DF_ECORRUPT;
}

/* ------------------------------------------------------------ building */

int df__index_clear(df_write *w, unsigned id) {
  df_kvcursor *c;
  df_bytes k;
  unsigned char prefix = (unsigned char)id;
  int code;
  code = df__kv_cursor(&w->kv, DF_SUB_INDEX, &c);
  if (code != DF_OK) return store_failed(w, code, "clear");
  for (;;) {
    k.p = &prefix;
    k.n = 1;
    code = df__kv_step(c, DF_KV_SEEK, &k, NULL);
    if (code != DF_OK || k.p[0] != prefix) break;
    if ((code = df__kv_cursor_del(&w->kv, DF_SUB_INDEX, c)) != DF_OK) break;
  }
  df__kv_cursor_close(c);
  if (code == DF_OK || code == DF_ENOTFOUND) return DF_OK;
  return store_failed(w, code, "clear");
}

int df__index_build(df_write *w, const df_index_def *def,
                    df_progress_fn progress, void *progress_ud) {
  const df_schema *s = w->schema;
  df_kvcursor *c = NULL;
  df_bytes k, v;
  unsigned char ek[DF_KEY_MAX], last[DF_KEY_MAX];
  size_t lastn;
  size_t ekn, done = 0, step;
  uint64_t total = 0;
  df_buf val;
  char err[DF_MSG_MAX];
  int code;

  /* A new index id may have held entries of a dropped index: start clean. */
  if ((code = df__index_clear(w, def->id)) != DF_OK) return code;
  df__buf_init(&val);
  code = df__kv_count(&w->kv, DF_SUB_ITEMS, &total);
  if (code == DF_OK) code = df__kv_cursor(&w->kv, DF_SUB_ITEMS, &c);
  if (code != DF_OK) goto store;
  step = total / 100 > PROGRESS_STEP ? total / 100 : PROGRESS_STEP;
  if (progress) progress(progress_ud, def->name, 0, total);
  for (code = df__kv_step(c, DF_KV_FIRST, &k, &v); code == DF_OK;
       code = df__kv_step(c, DF_KV_NEXT, &k, &v)) {
  again:
    done++;
    if (progress && done % step == 0 && done < total)
      progress(progress_ud, def->name, done, total);
    code = entry_key(s, def, v.p, v.n, NULL, 1, ek, &ekn, err, sizeof err);
    if (code == DF_ENOTFOUND) continue;
    if (code == DF_EVALIDATION) {
      df__fmt(w->errmsg, sizeof w->errmsg, code, "cannot build index %s: %s",
              def->name, err);
      goto out;
    }
    if (code != DF_OK) goto fail;
    code = entry_value(&val, s, def, k.p, v.p, v.n);
    if (code != DF_OK) goto fail;
    code = df__kv_put(&w->kv, DF_SUB_INDEX, ek, ekn, val.p, val.len);
    if (code == DF_ERETRY && w->regrow && k.n <= sizeof last) {
      /* the map is full: move to a bigger one and go on from this item
       * (its cursor belongs to the old transaction) */
      memcpy(last, k.p, k.n);
      lastn = k.n;
      df__kv_cursor_close(c);
      c = NULL;
      if ((code = w->regrow(w)) != DF_OK) goto out;
      if ((code = df__kv_cursor(&w->kv, DF_SUB_ITEMS, &c)) != DF_OK) goto store;
      k.p = last;
      k.n = lastn;
      code = df__kv_step(c, DF_KV_SEEK, &k, &v);
      if (code != DF_OK) goto store;
      done--;
      goto again;
    }
    if (code != DF_OK) goto store;
  }
  if (code != DF_ENOTFOUND) goto store;
  if (progress) progress(progress_ud, def->name, total, total);
  code = DF_OK;
  goto out;
store:
  if (code == DF_ERETRY) {
    store_failed(w, code, "build");
    goto out;
  }
fail:
  df__fmt(w->errmsg, sizeof w->errmsg, code, "cannot build index %s: %s",
          def->name, df_strerror(code));
out:
  df__kv_cursor_close(c);
  df__buf_free(&val);
  return code;
}

int df__index_rebuild_projected(df_write *w, size_t n) {
  size_t i;
  int code;
  for (i = 0; i < n && i < w->schema->n_indexes; i++) {
    const df_index_def *d = &w->schema->indexes[i];
    if (d->projection == DF_PROJ_ALL) continue;
    code = df__index_build(w, d, NULL, NULL);
    if (code != DF_OK) return code;
  }
  return DF_OK;
}
