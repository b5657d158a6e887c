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
 *
 * Long sort values (key.c: kept in keys as a DF_SK_PREFIX-byte prefix and
 * a hash) are ordered among those sharing their prefix by hash, not by
 * value.  Such entries make a group: the run of entries whose keys share
 * everything up to the end of their first long part's prefix.  The walk
 * reads a group whole, puts it in value order from the items (comparing
 * every part as its value, long parts by the full value in the item), and
 * takes its entries in that order.  Bounds made from long values (a key
 * condition, a resume point) take in their whole group, and the group's
 * entries are then held to the exact condition one by one.  So pages,
 * resume points and conditions stay exact with long keys, at the cost of
 * reading a group whole for every page that touches it (groups are values
 * over 157 bytes sharing their first 157 in one partition: rare).
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

/* The parts of the keys a query walks (key.c's encodings, after a fixed
 * head: the index id and the partition hash): which attribute each holds,
 * to compare long ones by their full values. */
#define MAX_PARTS 4
typedef struct parts {
  size_t head;
  size_t n;
  const char *attr[MAX_PARTS];
} parts;

typedef struct range {
  bound lo, hi;
  size_t prefix_len; /* partition prefix, for the sort-key bounds */
  unsigned char prefix[BOUND_MAX];
  parts parts;
  int resume_in_group; /* start_after falls in a group of long values */
  size_t resume_len;
  unsigned char resume[BOUND_MAX]; /* its storage key */
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

/* prefix + enc(v) into out (see df__key_enc_bound: without the
 * terminator when strip_terminator, a prefix of every extension); *is_long
 * when only the first DF_SK_PREFIX bytes of a long value went in: the
 * bound then stands for the whole group of that prefix.  DF_EVALIDATION
 * when v is not a key value. */
static int with_value(df_db *db, const range *r, const df_value *v,
                      int strip_terminator, const char *what,
                      unsigned char *out, size_t *n, int *is_long) {
  size_t m;
  char err[DF_MSG_MAX];
  int code = df__key_check(v, "", what, DF_KEY_ANY, err, sizeof err);
  if (code != DF_OK) return df__db_err(db, code, "%s", err);
  if (strip_terminator && v->type != DF_TSTR && v->type != DF_TBIN)
    return df__db_err(db, DF_EVALIDATION, "%s must be a string", what);
  memcpy(out, r->prefix, r->prefix_len);
  if (df__key_enc_bound(v, strip_terminator, out + r->prefix_len, &m,
                        is_long) != DF_OK)
    return df__db_err(db, DF_EVALIDATION, "%s cannot be encoded", what);
  *n = r->prefix_len + m;
  return DF_OK;
}

static const df_index_def *index_def(const df_env *e, unsigned id) {
  size_t i;
  for (i = 0; i < e->schema.s.n_indexes; i++)
    if (e->schema.s.indexes[i].id == id) return &e->schema.s.indexes[i];
  return NULL;
}

static void set_parts(parts *p, const df_schema *s, const df_index_def *def) {
  p->n = 0;
  if (!def) {
    p->head = 8;
    p->attr[p->n++] = s->pk;
    if (s->sk) p->attr[p->n++] = s->sk;
    return;
  }
  p->head = 9;
  if (def->kind == DF_LSI) {
    p->attr[p->n++] = s->pk;
    p->attr[p->n++] = def->sk;
    p->attr[p->n++] = s->sk;
    return;
  }
  p->attr[p->n++] = def->pk;
  if (def->sk) p->attr[p->n++] = def->sk;
  p->attr[p->n++] = s->pk;
  if (s->sk) p->attr[p->n++] = s->sk;
}

/* The length of key k's group prefix: up to the end of the prefix of its
 * first long part; 0 when it has none (the usual case, decided at once
 * for keys too short to hold one). */
static inline size_t group_prefix(const parts *p, const unsigned char *k,
                                  size_t n) {
  const unsigned char *q = k + p->head, *end = k + n;
  size_t i, m;
  int is_long;
  if (n < p->head + DF_SK_LONG_LEN) return 0;
  for (i = 0; i < p->n && q < end; i++) {
    if ((m = df__key_part_len(q, end, &is_long)) == 0) return 0;
    if (is_long) return (size_t)(q - k) + DF_SK_PREFIX;
    q += m;
  }
  return 0;
}

/* Key order of two key values: numbers, then strings, then binaries. */
static int value_order(const df_value *a, const df_value *b) {
  int ra = a->type == DF_TSTR ? 1 : a->type == DF_TBIN ? 2 : 0;
  int rb = b->type == DF_TSTR ? 1 : b->type == DF_TBIN ? 2 : 0;
  int c;
  if (ra != rb) return ra < rb ? -1 : 1;
  c = df__value_cmp(a, b);
  return c == 2 ? 0 : c;
}

/* An entry (a storage key and the item it holds, or a resume point's key
 * and key map) taken apart for ordering: where each part of the key lies,
 * which are long, and the full values of the long ones, from the item. */
typedef struct entry_view {
  const unsigned char *k;
  size_t n, nparts;
  size_t off[MAX_PARTS + 1]; /* part i is k[off[i], off[i + 1]) */
  unsigned char is_long[MAX_PARTS];
  df_value val[MAX_PARTS]; /* of long parts; DF_TNONE when absent */
} entry_view;

static void view_of(const parts *p, const unsigned char *k, size_t n,
                    const void *item, size_t len, entry_view *ev) {
  const unsigned char *end = k + n;
  size_t i, at = p->head < n ? p->head : n;
  ev->k = k;
  ev->n = n;
  ev->nparts = 0;
  ev->off[0] = at;
  for (i = 0; i < p->n; i++) {
    int is_long;
    size_t m = df__key_part_len(k + at, end, &is_long);
    if (m == 0) break;
    ev->is_long[i] = (unsigned char)is_long;
    memset(&ev->val[i], 0, sizeof ev->val[i]);
    if (is_long)
      df__mp_map_find(item, len, p->attr[i], strlen(p->attr[i]), &ev->val[i],
                      NULL, NULL);
    at += m;
    ev->off[++ev->nparts] = at;
  }
}

/* Order two entries by value: part by part, a long part by its full value
 * when both share its prefix (then by the hash, which tells apart values
 * equal as far as the items say, e.g. malformed ones). */
static int view_order(const entry_view *a, const entry_view *b) {
  size_t i;
  int c = keycmp(a->k, a->off[0], b->k, b->off[0]);
  if (c) return c;
  for (i = 0; i < a->nparts && i < b->nparts; i++) {
    const unsigned char *pa = a->k + a->off[i], *pb = b->k + b->off[i];
    size_t la = a->off[i + 1] - a->off[i], lb = b->off[i + 1] - b->off[i];
    c = 0;
    if (a->is_long[i] && b->is_long[i] && memcmp(pa, pb, DF_SK_PREFIX) == 0 &&
        a->val[i].type != DF_TNONE && b->val[i].type != DF_TNONE)
      c = value_order(&a->val[i], &b->val[i]);
    if (c == 0) c = keycmp(pa, la, pb, lb);
    if (c) return c;
  }
  return keycmp(a->k + a->off[i], a->n - a->off[i], b->k + b->off[i],
                b->n - b->off[i]);
}

/* Does the sort value of `item` meet the query's key condition and
 * starts_with exactly?  (For the entries of a group, whose keys hold only
 * a prefix of their long values.) */
static int meets_condition(const df_query *q, const df_schema *s,
                           const df_index_def *def, const void *item,
                           size_t len) {
  const char *name = def ? def->sk : s->sk;
  df_value v;
  if (!q->has_pk || name == NULL) return 1;
  if (q->cond == DF_COND_NONE && !q->has_start) return 1;
  if (df__mp_map_find(item, len, name, strlen(name), &v, NULL, NULL) != 1)
    return 0;
  switch (q->cond) {
    case DF_COND_EQ:
      if (value_order(&v, &q->lo) != 0) return 0;
      break;
    case DF_COND_LT:
      if (value_order(&v, &q->lo) >= 0) return 0;
      break;
    case DF_COND_LE:
      if (value_order(&v, &q->lo) > 0) return 0;
      break;
    case DF_COND_GT:
      if (value_order(&v, &q->lo) <= 0) return 0;
      break;
    case DF_COND_GE:
      if (value_order(&v, &q->lo) < 0) return 0;
      break;
    case DF_COND_BETWEEN:
      if (value_order(&v, &q->lo) < 0 || value_order(&v, &q->hi) > 0) return 0;
      break;
    case DF_COND_BEGINS_WITH:
      if (v.type != q->lo.type || v.n < q->lo.n ||
          (q->lo.n && memcmp(v.s, q->lo.s, q->lo.n) != 0))
        return 0;
      break;
    default:
      break;
  }
  if (q->has_start && (q->reverse ? value_order(&v, &q->start) > 0
                                  : value_order(&v, &q->start) < 0))
    return 0;
  return 1;
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
  set_parts(&r->parts, &db->env->schema.s, def);
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
    int lg;
    switch (q->cond) {
      case DF_COND_EQ:
        if ((code = with_value(db, r, &q->lo, 0, what, tmp, &m, &lg)))
          return code;
        lower_prefix(&r->lo, tmp, m);
        upper_prefix(&r->hi, tmp, m);
        break;
      case DF_COND_LT:
        if ((code = with_value(db, r, &q->lo, 0, what, tmp, &m, &lg)))
          return code;
        if (lg)
          upper_prefix(&r->hi, tmp, m);
        else
          upper_before_prefix(&r->hi, tmp, m);
        break;
      case DF_COND_LE:
        if ((code = with_value(db, r, &q->lo, 0, what, tmp, &m, &lg)))
          return code;
        upper_prefix(&r->hi, tmp, m);
        break;
      case DF_COND_GT:
        if ((code = with_value(db, r, &q->lo, 0, what, tmp, &m, &lg)))
          return code;
        if (lg)
          lower_prefix(&r->lo, tmp, m);
        else
          lower_after_prefix(&r->lo, tmp, m);
        break;
      case DF_COND_GE:
        if ((code = with_value(db, r, &q->lo, 0, what, tmp, &m, &lg)))
          return code;
        lower_prefix(&r->lo, tmp, m);
        break;
      case DF_COND_BETWEEN:
        if ((code = with_value(db, r, &q->lo, 0, what, tmp, &m, &lg)))
          return code;
        lower_prefix(&r->lo, tmp, m);
        what = operand_name(q->cond, 1);
        if ((code = with_value(db, r, &q->hi, 0, what, tmp, &m, &lg)))
          return code;
        upper_prefix(&r->hi, tmp, m);
        break;
      case DF_COND_BEGINS_WITH:
        if ((code = with_value(db, r, &q->lo, 1, what, tmp, &m, &lg)))
          return code;
        lower_prefix(&r->lo, tmp, m);
        upper_prefix(&r->hi, tmp, m);
        break;
      default:
        return df__db_err(db, DF_EINVAL, "unknown key condition %d", q->cond);
    }
  }
  if (q->has_pk && q->has_start) {
    int lg;
    if ((code = with_value(db, r, &q->start, 0, "starts_with", tmp, &m, &lg)))
      return code;
    if (q->reverse)
      upper_prefix(&r->hi, tmp, m);
    else
      lower_prefix(&r->lo, tmp, m);
  }
  if (q->start_after) {
    size_t g;
    if ((code = resume_key(db, q, def, tmp, &m))) return code;
    memcpy(r->resume, tmp, m);
    r->resume_len = m;
    g = group_prefix(&r->parts, tmp, m);
    if (g) { /* in a group: take it whole, the walk skips up to the point */
      r->resume_in_group = 1;
      if (q->reverse)
        upper_prefix(&r->hi, tmp, g);
      else
        lower_prefix(&r->lo, tmp, g);
    } else if (q->reverse) {
      upper_with(&r->hi, tmp, m, 1);
    } else {
      lower_with(&r->lo, tmp, m, 1);
    }
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

/* What a page's walk carries from entry to entry. */
typedef struct walk {
  df_db *db;
  const df_query *q;
  const df_index_def *def;
  const df_schema *s;
  const df_kv *kv;
  df_page *page;
  const range *r;
  size_t max_items, max_examined;
  int pk_hashed;
  df_schema pk_schema; /* the attribute holding the partition asked for */
  uintptr_t seen_page; /* the B+tree page warm() last loaded */
  size_t psize;
  const void *last; /* last examined item, mapped until the transaction
                       ends: the resume key is taken from it at the end */
  size_t last_len;
} walk;

/* The (projected) item of entry (k, v).  DF_OK or an error (set). */
static inline int entry_item(walk *w, const df_bytes *k, const df_bytes *v,
                             const void **item, size_t *len, int *hidden) {
  int code;
  *hidden = 0;
  warm(&w->seen_page, w->psize, v->p);
  if (!w->def) {
    *item = v->p;
    *len = v->n;
    return DF_OK;
  }
  code =
      df__index_entry_item(w->kv, w->def, k, v, w->q->now, item, len, hidden);
  if (code != DF_OK)
    return df__db_err(w->db, code, "index %s: a malformed entry (%s)",
                      w->def->name, df_strerror(code));
  return DF_OK;
}

static int page_full(const walk *w) {
  return w->page->count >= w->max_items ||
         (w->max_examined && w->page->examined >= w->max_examined);
}

/* Examine one entry whose item is known: count it, keep it as the resume
 * point, and add it to the page unless expired, of a colliding partition
 * value, or filtered out.  DF_OK or an error (set). */
static inline int take(walk *w, const void *item, size_t len, int hidden) {
  w->page->examined++;
  w->last = item;
  w->last_len = len;
  if (hidden ||
      (w->s->ttl_attr && df__item_expired(w->s, item, len, w->q->now)))
    return DF_OK;
  if (w->pk_hashed && !df__item_pk_is(&w->pk_schema, item, len, &w->q->pk))
    return DF_OK; /* another value whose hash collides with the one asked */
  if (w->q->filter) {
    int ok = df_expr_eval(w->q->filter, item, len);
    if (ok == DF_ELIMIT)
      return df__db_err(w->db, DF_ELIMIT,
                        "filter: a regular expression needed more than its "
                        "budget of %llu steps on one item; anchor or "
                        "simplify it",
                        (unsigned long long)DF_RX_BUDGET);
    if (ok < 0)
      return df__db_err(w->db, ok == DF_ENOMEM ? DF_ENOMEM : DF_ECORRUPT,
                        "a stored item is malformed");
    if (!ok) return DF_OK;
  }
  return page_add(w->page, item, len) == DF_OK ? DF_OK : DF_ENOMEM;
}

/* Groups up to this size are read without allocating. */
#define SMALL_GROUP 4

typedef struct grouped {
  entry_view v;
  const void *item;
  size_t len;
  int hidden;
} grouped;

/* Sort g[0..n) by view_order: a straight merge sort, stable. */
static void sort_group(grouped *g, grouped *tmp, size_t n) {
  size_t width, i;
  for (width = 1; width < n; width *= 2) {
    for (i = 0; i < n; i += 2 * width) {
      size_t lo = i, mid = i + width < n ? i + width : n;
      size_t hi = i + 2 * width < n ? i + 2 * width : n, a = lo, b = mid,
             k = lo;
      while (a < mid && b < hi)
        tmp[k++] = view_order(&g[b].v, &g[a].v) < 0 ? g[b++] : g[a++];
      while (a < mid) tmp[k++] = g[a++];
      while (b < hi) tmp[k++] = g[b++];
    }
    memcpy(g, tmp, n * sizeof *g);
  }
}

static int in_range(const walk *w, const df_bytes *k) {
  return w->q->reverse ? above_lower(&w->r->lo, k->p, k->n)
                       : below_upper(&w->r->hi, k->p, k->n);
}

/* The entry at (k, v) begins a group whose keys share their first glen
 * bytes: read it whole (leaving the cursor, *rc, k and v on the entry
 * after it), put it in value order, and take its entries in the
 * direction of travel that meet the key condition and lie beyond the
 * resume point.  *full: the page filled up inside the group. */
static int walk_group(walk *w, df_kvcursor *cur, df_bytes *k, df_bytes *v,
                      size_t glen, int *rc, int *full) {
  const df_query *q = w->q;
  const range *r = w->r;
  unsigned char g[BOUND_MAX];
  grouped small[2 * SMALL_GROUP], *e = small, *tmp;
  entry_view resume;
  size_t n = 0, cap = SMALL_GROUP, i;
  int code = DF_OK;
  memcpy(g, k->p, glen);
  *full = 0;
  do {
    if (!in_range(w, k) || k->n < glen || memcmp(k->p, g, glen) != 0) break;
    if (n == cap) { /* past the few the stack holds (room for sorting too) */
      size_t nc = 2 * cap;
      grouped *ne = df__malloc(2 * nc * sizeof *e);
      if (!ne) {
        code = DF_ENOMEM;
        goto done;
      }
      memcpy(ne, e, n * sizeof *e);
      if (e != small) df__free(e);
      e = ne;
      cap = nc;
    }
    code = entry_item(w, k, v, &e[n].item, &e[n].len, &e[n].hidden);
    if (code != DF_OK) goto done;
    e[n].v.k = k->p; /* taken apart below, when there is order to restore */
    e[n].v.n = k->n;
    n++;
    *rc = df__kv_step(cur, q->reverse ? DF_KV_PREV : DF_KV_NEXT, k, v);
  } while (*rc == DF_OK);
  if (n > 1 || r->resume_in_group) {
    for (i = 0; i < n; i++)
      view_of(&r->parts, e[i].v.k, e[i].v.n, e[i].item, e[i].len, &e[i].v);
    tmp = e + cap;
    sort_group(e, tmp, n);
  }
  if (r->resume_in_group)
    view_of(&r->parts, r->resume, r->resume_len, q->start_after,
            q->start_after_len, &resume);
  for (i = 0; i < n; i++) {
    const grouped *x = &e[q->reverse ? n - 1 - i : i];
    if (!meets_condition(q, w->s, w->def, x->item, x->len)) continue;
    if (r->resume_in_group) {
      int c = view_order(&x->v, &resume);
      if (q->reverse ? c >= 0 : c <= 0) continue; /* at or before it */
    }
    if (page_full(w)) {
      *full = 1;
      break;
    }
    if ((code = take(w, x->item, x->len, x->hidden)) != DF_OK) break;
  }
done:
  if (e != small) df__free(e);
  return code;
}

int df_query_page(df_db *db, const df_query *q, size_t max_items,
                  size_t max_examined, df_page *page) {
  df_kv kv;
  df_kvcursor *cur;
  df_sub sub;
  df_bytes k, v;
  range r;
  walk w;
  int code, rc;
  int exhausted = 0;

  if (q == NULL || page == NULL) return DF_EINVAL;
  if ((code = df__db_check(db)) != DF_OK) return code;
  memset(&w, 0, sizeof w);
  w.db = db;
  w.q = q;
  w.s = &db->env->schema.s;
  w.page = page;
  w.r = &r;
  df__buf_reset(&page->data);
  page->count = 0;
  page->examined = 0;
  page->has_next = 0;
  if (q->limit && (max_items == 0 || q->limit < max_items))
    max_items = q->limit;
  if (max_items == 0) max_items = 100;
  w.max_items = max_items;
  w.max_examined = max_examined;
  if (q->segments > 0 && q->segment >= q->segments)
    return df__db_err(db, DF_EINVAL, "segment %u out of range 0..%u",
                      q->segment, q->segments - 1);
  if (q->index) {
    w.def = index_def(db->env, q->index);
    if (w.def == NULL)
      return df__db_err(db, DF_ENOTFOUND, "no index with id %u", q->index);
  }
  if ((code = make_range(db, q, w.def, &r)) != DF_OK) return code;
  if (r.lo.empty) return DF_OK;
  /* a query on a long (hashed) partition key checks each item's value:
   * the hash alone does not prove it */
  w.pk_hashed = q->has_pk && r.prefix_len > (w.def ? 9u : 8u) &&
                r.prefix[w.def ? 9 : 8] == DF_TAG_HASHED;
  w.pk_schema = *w.s;
  if (w.def && w.def->kind == DF_GSI) w.pk_schema.pk = w.def->pk;
  sub = w.def ? DF_SUB_INDEX : DF_SUB_ITEMS;
  if ((code = df__db_read(db, &kv)) != DF_OK) return code;
  w.kv = &kv;
  /* a power of two (env.c checked) */
  w.psize = db->env->page_size;
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
  while (rc == DF_OK) {
    const void *item;
    size_t item_len, glen;
    int hidden, full = 0;
    if (!in_range(&w, &k)) {
      exhausted = 1;
      break;
    }
    if (page_full(&w)) break;
    glen = group_prefix(&r.parts, k.p, k.n);
    if (glen) {
      code = walk_group(&w, cur, &k, &v, glen, &rc, &full);
      if (full) rc = DF_OK; /* stopped inside the group: more to come */
      if (code != DF_OK || full) break;
      continue;
    }
    if ((code = entry_item(&w, &k, &v, &item, &item_len, &hidden)) != DF_OK)
      break;
    if ((code = take(&w, item, item_len, hidden)) != DF_OK) break;
    rc = df__kv_step(cur, q->reverse ? DF_KV_PREV : DF_KV_NEXT, &k, &v);
  }
  if (rc == DF_ENOTFOUND)
    exhausted = 1;
  else if (rc != DF_OK && code == DF_OK)
    code = df__db_err(db, rc, "cursor failed: %s", df_strerror(rc));
  if (code == DF_OK && w.last != NULL && !exhausted &&
      key_attrs(&page->next, w.s, w.def, w.last, w.last_len) != DF_OK)
    code = DF_ENOMEM;
  df__kv_cursor_close(cur);
  df__db_read_end(db, &kv);
  if (code == DF_ENOMEM) return df__db_err(db, code, "out of memory");
  if (code != DF_OK) return code;
  page->has_next = !exhausted && w.last != NULL;
  return DF_OK;
}
