/*
 * query.c -- query and scan: key ranges in the B+tree, read in pages.
 *
 * A query becomes one contiguous key range [lower, upper] of the items
 * table or of the index sub-database, walked forward or backward by one
 * LMDB cursor inside one short read transaction per page.  Key conditions,
 * the seed's starts_with, start_after and scan segments all only tighten
 * the two bounds, so a query visits exactly the entries of its range
 * (df_page_examined counts them) and a page never holds a transaction
 * beyond its own call.
 *
 * Bounds are kept in two forms only: lower is "key >= L" or "key > L",
 * upper is "key < U" or "key <= U".  "Every key with prefix P" bounds are
 * first turned into these with the prefix successor.
 */
#include <string.h>

#include "handle.h"
#include "index.h"

#define BOUND_MAX (DF_KEY_MAX + 8)

typedef struct bound {
  int set;   /* 0: unbounded */
  int excl;  /* lower: key > b; upper: key < b */
  int empty; /* the bound excludes everything (no successor exists) */
  size_t n;
  unsigned char b[BOUND_MAX];
} bound;

typedef struct range {
  bound lo, hi;
  size_t prefix_len; /* partition prefix, for the sort-key bounds */
  unsigned char prefix[BOUND_MAX];
} range;

struct df_page {
  df_buf data; /* item bytes, back to back */
  size_t *off; /* count + 1 offsets into data */
  size_t cap_off;
  size_t count;
  size_t examined;
  df_buf next; /* key attributes of the resume point */
  int has_next;
};

int df_page_new(df_page **out) {
  df_page *p;
  if (out == NULL) return DF_EINVAL;
  *out = p = df__malloc(sizeof *p);
  if (p == NULL) return DF_ENOMEM;
  memset(p, 0, sizeof *p);
  df__buf_init(&p->data);
  df__buf_init(&p->next);
  return DF_OK;
}

void df_page_free(df_page *p) {
  if (p == NULL) return;
  df__buf_free(&p->data);
  df__buf_free(&p->next);
  df__free(p->off);
  df__free(p);
}

size_t df_page_count(const df_page *p) {
  return p ? p->count : 0;
}
size_t df_page_examined(const df_page *p) {
  return p ? p->examined : 0;
}

void df_page_item(const df_page *p, size_t i, const void **item, size_t *len) {
  if (p == NULL || i >= p->count) {
    *item = NULL;
    *len = 0;
    return;
  }
  *item = p->data.p + p->off[i];
  *len = p->off[i + 1] - p->off[i];
}

void df_page_next_key(const df_page *p, const void **key, size_t *len) {
  if (p == NULL || !p->has_next) {
    *key = NULL;
    *len = 0;
    return;
  }
  *key = p->next.p;
  *len = p->next.len;
}

/* -------------------------------------------------------------- bounds */

static int keycmp(const unsigned char *a, size_t an, const unsigned char *b,
                  size_t bn) {
  size_t n = an < bn ? an : bn;
  int c = n ? memcmp(a, b, n) : 0;
  if (c) return c;
  return an < bn ? -1 : an > bn;
}

/* The smallest byte string greater than every string with prefix p, in
 * place; 0 when none exists (p is all 0xff). */
static int successor(unsigned char *p, size_t *n) {
  while (*n > 0) {
    if (p[*n - 1] != 0xff) {
      p[*n - 1]++;
      return 1;
    }
    (*n)--;
  }
  return 0;
}

static void bound_set(bound *b, const unsigned char *p, size_t n, int excl) {
  b->set = 1;
  b->excl = excl;
  b->n = n;
  memcpy(b->b, p, n);
}

/* Tighten lower bound `lo` with "key >= p" (excl 0) or "key > p". */
static void lower_with(bound *lo, const unsigned char *p, size_t n, int excl) {
  int c;
  if (!lo->set) {
    bound_set(lo, p, n, excl);
    return;
  }
  c = keycmp(p, n, lo->b, lo->n);
  if (c > 0 || (c == 0 && excl)) bound_set(lo, p, n, excl);
}

static void upper_with(bound *hi, const unsigned char *p, size_t n, int excl) {
  int c;
  if (!hi->set) {
    bound_set(hi, p, n, excl);
    return;
  }
  c = keycmp(p, n, hi->b, hi->n);
  if (c < 0 || (c == 0 && excl)) bound_set(hi, p, n, excl);
}

/* lower: every key with prefix p or after it. */
static void lower_prefix(bound *lo, const unsigned char *p, size_t n) {
  lower_with(lo, p, n, 0);
}

/* lower: strictly after every key with prefix p. */
static void lower_after_prefix(bound *lo, const unsigned char *p, size_t n) {
  unsigned char s[BOUND_MAX];
  memcpy(s, p, n);
  if (!successor(s, &n)) {
    lo->empty = 1;
    return;
  }
  lower_with(lo, s, n, 0);
}

/* upper: up to and including every key with prefix p. */
static void upper_prefix(bound *hi, const unsigned char *p, size_t n) {
  unsigned char s[BOUND_MAX];
  memcpy(s, p, n);
  if (!successor(s, &n)) return; /* no limit */
  upper_with(hi, s, n, 1);
}

/* upper: strictly before every key with prefix p. */
static void upper_before_prefix(bound *hi, const unsigned char *p, size_t n) {
  upper_with(hi, p, n, 1);
}

static int below_upper(const bound *hi, const unsigned char *k, size_t n) {
  int c;
  if (!hi->set) return 1;
  c = keycmp(k, n, hi->b, hi->n);
  return hi->excl ? c < 0 : c <= 0;
}

static int above_lower(const bound *lo, const unsigned char *k, size_t n) {
  int c;
  if (!lo->set) return 1;
  c = keycmp(k, n, lo->b, lo->n);
  return lo->excl ? c > 0 : c >= 0;
}

/* The names of the key conditions' operands in messages: the Lua layer's
 * option names. */
static const char *operand_name(int cond, int second) {
  static const char *const names[] = {
      "key condition", "eq",         "lt", "le", "gt", "ge",
      "between[1]",    "begins_with"};
  if (cond == DF_COND_BETWEEN && second) return "between[2]";
  return cond >= 0 && cond <= DF_COND_BEGINS_WITH ? names[cond]
                                                  : "key condition";
}

/* prefix + enc(v) into out; DF_EVALIDATION when v is not a key value
 * (the key rule of key.c, naming the operand `what`). */
static int with_value(df_db *db, const range *r, const df_value *v,
                      int strip_terminator, const char *what,
                      unsigned char *out, size_t *n) {
  size_t m;
  char err[DF_MSG_MAX];
  int code = df__key_check(v, "", what, DF_KEY_ANY, err, sizeof err);
  if (code != DF_OK) return df__db_err(db, code, "%s", err);
  if (strip_terminator && v->type != DF_TSTR && v->type != DF_TBIN)
    return df__db_err(db, DF_EVALIDATION, "%s must be a string", what);
  memcpy(out, r->prefix, r->prefix_len);
  if (df__key_enc(v, out + r->prefix_len, DF_SK_MAX, &m) != DF_OK)
    return df__db_err(db, DF_EVALIDATION,
                      "%s is too long for a sort key (at most %d bytes "
                      "encoded: %d bytes of a string without NUL bytes)",
                      what, DF_SK_MAX, DF_SK_MAX - 3);
  if (strip_terminator)
    m -= 2; /* drop the 00 01 terminator: a prefix of every extension */
  *n = r->prefix_len + m;
  return DF_OK;
}

/* A string or binary bound too long to be any stored sort key: shorten
 * *v to its longest prefix whose encoding fits (returns 1), else 0.  No
 * stored key equals or begins with the long value, every stored key after
 * it is after the prefix, and every one before it is at most the prefix
 * (a key that extends the prefix and still fits can only follow an
 * escaped byte of the value, and then sorts after it): so the condition
 * is answered exactly with the prefix instead (gt/ge -> gt prefix, lt/le
 * -> le prefix, eq/begins_with -> nothing). */
static int shorten_bound(df_value *v) {
  unsigned char tmp[BOUND_MAX];
  size_t m, lo = 0, hi;
  df_value t;
  if (v->type != DF_TSTR && v->type != DF_TBIN) return 0;
  if (df__key_enc(v, tmp, DF_SK_MAX, &m) == DF_OK) return 0;
  hi = v->n; /* lo fits (the empty string), hi does not */
  t = *v;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    t.n = mid;
    if (df__key_enc(&t, tmp, DF_SK_MAX, &m) == DF_OK)
      lo = mid;
    else
      hi = mid;
  }
  v->n = lo;
  return 1;
}

static const df_index_def *index_def(const df_env *e, unsigned id) {
  size_t i;
  for (i = 0; i < e->schema.s.n_indexes; i++)
    if (e->schema.s.indexes[i].id == id) return &e->schema.s.indexes[i];
  return NULL;
}

/* Storage key of the entry whose key attributes are in `keymap`. */
static int resume_key(df_db *db, const df_query *q, const df_index_def *def,
                      unsigned char *out, size_t *n) {
  df_key key;
  int code;
  if (def) {
    code = df__index_entry_key(&db->env->schema.s, def, q->start_after,
                               q->start_after_len, out, n);
    if (code == DF_ENOTFOUND)
      return df__db_err(db, DF_EVALIDATION,
                        "start_after lacks the key attributes of index %s",
                        def->name);
    if (code != DF_OK)
      return df__db_err(db, DF_EVALIDATION, "start_after: %s",
                        df_strerror(code));
    return DF_OK;
  }
  {
    char msg[DF_MSG_MAX];
    code = df__item_key_of(&db->env->schema.s, q->start_after,
                           q->start_after_len, &key, msg, sizeof msg);
    if (code == DF_OK)
      code = df__item_key(&db->env->schema.s, &key, out, n, msg, sizeof msg);
    if (code != DF_OK) return df__db_err(db, code, "start_after: %s", msg);
  }
  return DF_OK;
}

static int make_range(df_db *db, const df_query *q, const df_index_def *def,
                      range *r) {
  unsigned char tmp[BOUND_MAX];
  size_t n = 0, m;
  uint64_t h;
  int code;
  memset(r, 0, sizeof *r);
  if (def) r->prefix[n++] = (unsigned char)def->id;
  if (q->has_pk) {
    char err[DF_MSG_MAX];
    code = df__key_check(&q->pk, "", "partition key", DF_KEY_PARTITION, err,
                         sizeof err);
    if (code != DF_OK) return df__db_err(db, code, "%s", err);
    if (df__key_enc_partition(&q->pk, r->prefix + n + 8, &m, &h) != DF_OK)
      return df__db_err(db, DF_EVALIDATION, "partition key cannot be encoded");
    df__key_put_u64(r->prefix + n, h);
    n += 8 + m;
  }
  r->prefix_len = n;
  if (n) {
    lower_prefix(&r->lo, r->prefix, n);
    upper_prefix(&r->hi, r->prefix, n);
  }
  if (!q->has_pk && q->segments > 1) {
    /* Segment k of n: the hash range [k*2^64/n, (k+1)*2^64/n). */
    __extension__ typedef unsigned __int128 u128;
    uint64_t a = (uint64_t)(((u128)q->segment << 64) / q->segments);
    uint64_t b = (uint64_t)(((u128)(q->segment + 1) << 64) / q->segments);
    memcpy(tmp, r->prefix, n);
    df__key_put_u64(tmp + n, a);
    lower_with(&r->lo, tmp, n + 8, 0);
    if (q->segment + 1 < q->segments) {
      df__key_put_u64(tmp + n, b);
      upper_with(&r->hi, tmp, n + 8, 1);
    }
  }
  if (q->has_pk && q->cond != DF_COND_NONE) {
    const char *what = operand_name(q->cond, 0);
    const char *what_hi = operand_name(q->cond, 1);
    df_value lo = q->lo, hi = q->hi;
    int lo_long = shorten_bound(&lo), hi_long = 0;
    if (q->cond == DF_COND_BETWEEN) hi_long = shorten_bound(&hi);
    if (lo_long || hi_long) {
      switch (q->cond) {
        case DF_COND_EQ:
        case DF_COND_BEGINS_WITH:
          r->lo.empty = 1; /* no stored key is that long */
          break;
        case DF_COND_GT:
        case DF_COND_GE:
          if ((code = with_value(db, r, &lo, 0, what, tmp, &m))) return code;
          lower_after_prefix(&r->lo, tmp, m);
          break;
        case DF_COND_LT:
        case DF_COND_LE:
          if ((code = with_value(db, r, &lo, 0, what, tmp, &m))) return code;
          upper_prefix(&r->hi, tmp, m);
          break;
        case DF_COND_BETWEEN:
          if ((code = with_value(db, r, &lo, 0, what, tmp, &m))) return code;
          if (lo_long)
            lower_after_prefix(&r->lo, tmp, m);
          else
            lower_prefix(&r->lo, tmp, m);
          if ((code = with_value(db, r, &hi, 0, what_hi, tmp, &m))) return code;
          upper_prefix(&r->hi, tmp, m);
          break;
        default:
          return df__db_err(db, DF_EINVAL, "unknown key condition %d", q->cond);
      }
    } else {
      switch (q->cond) {
        case DF_COND_EQ:
          if ((code = with_value(db, r, &q->lo, 0, what, tmp, &m))) return code;
          lower_prefix(&r->lo, tmp, m);
          upper_prefix(&r->hi, tmp, m);
          break;
        case DF_COND_LT:
          if ((code = with_value(db, r, &q->lo, 0, what, tmp, &m))) return code;
          upper_before_prefix(&r->hi, tmp, m);
          break;
        case DF_COND_LE:
          if ((code = with_value(db, r, &q->lo, 0, what, tmp, &m))) return code;
          upper_prefix(&r->hi, tmp, m);
          break;
        case DF_COND_GT:
          if ((code = with_value(db, r, &q->lo, 0, what, tmp, &m))) return code;
          lower_after_prefix(&r->lo, tmp, m);
          break;
        case DF_COND_GE:
          if ((code = with_value(db, r, &q->lo, 0, what, tmp, &m))) return code;
          lower_prefix(&r->lo, tmp, m);
          break;
        case DF_COND_BETWEEN:
          if ((code = with_value(db, r, &q->lo, 0, what, tmp, &m))) return code;
          lower_prefix(&r->lo, tmp, m);
          what = operand_name(q->cond, 1);
          if ((code = with_value(db, r, &q->hi, 0, what, tmp, &m))) return code;
          upper_prefix(&r->hi, tmp, m);
          break;
        case DF_COND_BEGINS_WITH:
          if ((code = with_value(db, r, &q->lo, 1, what, tmp, &m))) return code;
          lower_prefix(&r->lo, tmp, m);
          upper_prefix(&r->hi, tmp, m);
          break;
        default:
          return df__db_err(db, DF_EINVAL, "unknown key condition %d", q->cond);
      }
    }
  }
  if (q->has_pk && q->has_start) {
    if ((code = with_value(db, r, &q->start, 0, "starts_with", tmp, &m)))
      return code;
    if (q->reverse)
      upper_prefix(&r->hi, tmp, m);
    else
      lower_prefix(&r->lo, tmp, m);
  }
  if (q->start_after) {
    if ((code = resume_key(db, q, def, tmp, &m))) return code;
    if (q->reverse)
      upper_with(&r->hi, tmp, m, 1);
    else
      lower_with(&r->lo, tmp, m, 1);
  }
  return DF_OK;
}

/* ---------------------------------------------------------------- pages */

/* Entering a new B+tree page: ask the CPU to load all of it at once.  The
 * entries of a leaf page are stored in insertion order, not key order, so
 * a walk in key order jumps around inside the page and the hardware
 * prefetcher cannot guess; one sequential sweep per page turns about one
 * cache miss per entry into a handful per page (a filtered scan of a
 * table larger than the CPU caches took a fifth less time).  LMDB pages
 * are aligned in the map, so the page holding a value starts at its
 * address rounded down to the page size; prefetching never faults. */
static void warm(uintptr_t *seen, size_t psize, const void *data) {
#if defined(__GNUC__) || defined(__clang__)
  uintptr_t base = (uintptr_t)data & ~(uintptr_t)(psize - 1);
  size_t off;
  if (base == *seen) return;
  *seen = base;
  for (off = 0; off < psize; off += 64)
    __builtin_prefetch((const void *)(base + off), 0, 3);
#else
  (void)seen;
  (void)psize;
  (void)data;
#endif
}

static int page_add(df_page *p, const void *item, size_t len) {
  if (p->count + 2 > p->cap_off) {
    size_t cap = p->cap_off ? p->cap_off * 2 : 64;
    size_t *o = df__realloc(p->off, cap * sizeof *o);
    if (o == NULL) return DF_ENOMEM;
    p->off = o;
    p->cap_off = cap;
  }
  if (p->count == 0) p->off[0] = p->data.len;
  if (df__buf_append(&p->data, item, len) != 0) return DF_ENOMEM;
  p->count++;
  p->off[p->count] = p->data.len;
  return DF_OK;
}

/* The key attributes (table and index) of `item`, as a MessagePack map. */
static int key_attrs(df_buf *b, const df_schema *s, const df_index_def *def,
                     const void *item, size_t len) {
  const char *names[4];
  size_t n = 0;
  df__buf_reset(b);
  names[n++] = s->pk;
  names[n++] = s->sk;
  if (def) {
    names[n++] = def->pk;
    names[n++] = def->sk;
  }
  return df__item_project(b, names, n, item, len);
}

int df_query_page(df_db *db, const df_query *q, size_t max_items,
                  size_t max_examined, df_page *page) {
  const df_index_def *def = NULL;
  df_kv kv;
  df_kvcursor *cur;
  df_sub sub;
  df_bytes k, v;
  range r;
  int code, rc;
  const void *item = NULL;
  size_t item_len = 0;
  const df_schema *s;
  int have_last = 0;
  int exhausted = 0;
  const void *last = NULL; /* last examined item, mapped until the
                              transaction ends */
  size_t last_len = 0;
  uintptr_t seen_page = 0; /* the B+tree page warm() last loaded */
  size_t psize;
  int pk_hashed;
  df_schema pk_schema;
  int hidden = 0;

  if (q == NULL || page == NULL) return DF_EINVAL;
  if ((code = df__db_check(db)) != DF_OK) return code;
  s = &db->env->schema.s;
  df__buf_reset(&page->data);
  page->count = 0;
  page->examined = 0;
  page->has_next = 0;
  if (q->limit && (max_items == 0 || q->limit < max_items))
    max_items = q->limit;
  if (max_items == 0) max_items = 100;
  if (q->segments > 0 && q->segment >= q->segments)
    return df__db_err(db, DF_EINVAL, "segment %u out of range 0..%u",
                      q->segment, q->segments - 1);
  if (q->index) {
    def = index_def(db->env, q->index);
    if (def == NULL)
      return df__db_err(db, DF_ENOTFOUND, "no index with id %u", q->index);
  }
  if ((code = make_range(db, q, def, &r)) != DF_OK) return code;
  if (r.lo.empty) return DF_OK;
  /* a query on a long (hashed) partition key checks each item's value:
   * the hash alone does not prove it */
  pk_hashed = q->has_pk && r.prefix_len > (def ? 9u : 8u) &&
              r.prefix[def ? 9 : 8] == DF_TAG_HASHED;
  /* the attribute holding the partition value asked for */
  pk_schema = *s;
  if (def && def->kind == DF_GSI) pk_schema.pk = def->pk;
  sub = def ? DF_SUB_INDEX : DF_SUB_ITEMS;
  if ((code = df__db_read(db, &kv)) != DF_OK) return code;
  /* a power of two (env.c checked) */
  psize = db->env->page_size;
  rc = df__kv_cursor(&kv, sub, &cur);
  if (rc != DF_OK) {
    df__db_read_end(db, &kv);
    return df__db_err(db, rc, "cannot open cursor: %s", df_strerror(rc));
  }
  /* Position on the first entry of the range in the direction of travel. */
  if (!q->reverse) {
    if (r.lo.set) {
      k.p = r.lo.b;
      k.n = r.lo.n;
      rc = df__kv_step(cur, DF_KV_SEEK, &k, &v);
      if (rc == DF_OK && r.lo.excl && keycmp(k.p, k.n, r.lo.b, r.lo.n) == 0)
        rc = df__kv_step(cur, DF_KV_NEXT, &k, &v);
    } else {
      rc = df__kv_step(cur, DF_KV_FIRST, &k, &v);
    }
  } else {
    if (r.hi.set) {
      k.p = r.hi.b;
      k.n = r.hi.n;
      rc = df__kv_step(cur, DF_KV_SEEK, &k, &v);
      if (rc == DF_ENOTFOUND)
        rc = df__kv_step(cur, DF_KV_LAST, &k, &v);
      else if (rc == DF_OK && !below_upper(&r.hi, k.p, k.n))
        rc = df__kv_step(cur, DF_KV_PREV, &k, &v);
    } else {
      rc = df__kv_step(cur, DF_KV_LAST, &k, &v);
    }
  }
  code = DF_OK;
  for (; rc == DF_OK;
       rc = df__kv_step(cur, q->reverse ? DF_KV_PREV : DF_KV_NEXT, &k, &v)) {
    if (q->reverse ? !above_lower(&r.lo, k.p, k.n)
                   : !below_upper(&r.hi, k.p, k.n)) {
      exhausted = 1;
      break;
    }
    if (page->count >= max_items ||
        (max_examined && page->examined >= max_examined))
      break;
    page->examined++;
    warm(&seen_page, psize, v.p);
    if (def) {
      code = df__index_entry_item(&kv, def, &k, &v, q->now, &item, &item_len,
                                  &hidden);
      if (code != DF_OK) {
        code = df__db_err(db, code, "index %s: a malformed entry (%s)",
                          def->name, df_strerror(code));
        break;
      }
    } else {
      item = v.p;
      item_len = v.n;
    }
    have_last = 1;
    /* The item (of the table, or an index entry's: see
     * df__index_entry_item) stays mapped until the transaction ends, so
     * the resume key is taken once, from the last one, after the loop. */
    last = item;
    last_len = item_len;
    if (hidden || df__item_expired(s, item, item_len, q->now)) continue;
    if (pk_hashed && !df__item_pk_is(&pk_schema, item, item_len, &q->pk))
      continue; /* another value whose hash collides with the one asked */
    if (q->filter) {
      int ok = df_expr_eval(q->filter, item, item_len);
      if (ok == DF_ELIMIT) {
        code = df__db_err(db, DF_ELIMIT,
                          "filter: a regular expression needed more than "
                          "its budget of %llu steps on one item; anchor or "
                          "simplify it",
                          (unsigned long long)DF_RX_BUDGET);
        break;
      }
      if (ok < 0) {
        code = df__db_err(db, ok == DF_ENOMEM ? DF_ENOMEM : DF_ECORRUPT,
                          "a stored item is malformed");
        break;
      }
      if (!ok) continue;
    }
    if (page_add(page, item, item_len) != DF_OK) {
      code = DF_ENOMEM;
      break;
    }
  }
  if (rc == DF_ENOTFOUND)
    exhausted = 1;
  else if (rc != DF_OK && code == DF_OK)
    code = df__db_err(db, rc, "cursor failed: %s", df_strerror(rc));
  if (code == DF_OK && last != NULL && !exhausted &&
      key_attrs(&page->next, s, def, last, last_len) != DF_OK)
    code = DF_ENOMEM;
  df__kv_cursor_close(cur);
  df__db_read_end(db, &kv);
  if (code == DF_ENOMEM) return df__db_err(db, code, "out of memory");
  if (code != DF_OK) return code;
  page->has_next = !exhausted && have_last;
  return DF_OK;
}
