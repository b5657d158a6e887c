/*
 * update.c -- the update engine: one update program, built from either
 * syntax (DynamoDB's UpdateExpression, compiled in ddbexpr.c, or
 * dynafile's table of changes, added action by action), applied to an
 * item's stored bytes.
 *
 * Applying works on a tree of the item that is opened only along the
 * paths the update names: every attribute, element or nested value the
 * update does not touch is copied into the new item as the very bytes it
 * was stored as (a float stays a float, an integer beyond 2^53 keeps every
 * digit, whatever the Lua that asked for the update can represent).
 *
 * Semantics (DynamoDB's, with the table form's documented extras):
 *  - every value and every path refers to the item as it was before the
 *    update: SET a = b, b = a swaps;
 *  - SET replaces or adds; a list position past the end appends; a
 *    missing map on the way is an error for DynamoDB's syntax ("The
 *    document path provided in the update expression is invalid for
 *    update") and is created by the table form;
 *  - REMOVE drops attributes and list elements (the rest close up; several
 *    positions of one list are removed highest first, as numbered in the
 *    old item); a missing path is no error;
 *  - ADD adds to a number, or sets a missing attribute; in the table form
 *    it also merges a list into a list as a set union (values equal as ==
 *    in filters, so 1 and 1.0 are one value), also into a new attribute;
 *  - DELETE removes values from a list (table form);
 *  - if_not_exists(path, v), list_append(a, b), a + b, a - b.
 * Integers stay integers: a sum that leaves the 64-bit range is refused.
 *
 * Invariants: a df_update owns every byte it refers to; apply never
 * changes the old item's bytes and builds the new item in the update's own
 * buffer; a failed apply leaves nothing half-done (the caller writes
 * nothing).  Recursion is bounded by DF_MAX_DEPTH.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr_tree.h"
#include "update.h"

#define NONE UINT32_MAX

typedef struct uval {
  int kind; /* DF__UV_* */
  uint32_t a, b;
  uint32_t path;
  const unsigned char *bytes; /* DF__UV_CONST */
  size_t len;
} uval;

typedef struct uact {
  int kind; /* DF_UPD_* */
  uint32_t path;
  uint32_t val; /* SET: a uval; ADD/DELETE: a DF__UV_CONST uval */
  char *where;  /* message prefix, or NULL */
} uact;

typedef struct upath {
  uint32_t first, n;
} upath;

struct df_update {
  uact *acts;
  size_t n_acts, cap_acts;
  uval *vals;
  size_t n_vals, cap_vals;
  df_path_seg *segs;
  size_t n_segs, cap_segs;
  upath *paths;
  size_t n_paths, cap_paths;
  void **chunks; /* owned copies: names, values, labels */
  size_t n_chunks, cap_chunks;
  int table_form;
  df_buf out;
};

/* --------------------------------------------------------- building */

static int fmt_err(char *err, size_t errlen, int code, const char *fmt, ...)
    DF__PRINTF(4, 5);

static int fmt_err(char *err, size_t errlen, int code, const char *fmt, ...) {
  va_list ap;
  if (!err || !errlen) return code;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return code;
}

void *df__update_keep(df_update *u, const void *p, size_t n) {
  void *c;
  if (df__grow(&u->chunks, &u->cap_chunks, u->n_chunks, sizeof *u->chunks))
    return NULL;
  c = df__malloc(n ? n : 1);
  if (!c) return NULL;
  if (n) memcpy(c, p, n);
  u->chunks[u->n_chunks++] = c;
  return c;
}

int df__update_alloc(int table_form, df_update **out) {
  df_update *u = df__malloc(sizeof *u);
  if (!u) return DF_ENOMEM;
  memset(u, 0, sizeof *u);
  u->table_form = table_form;
  df__buf_init(&u->out);
  *out = u;
  return 0;
}

int df_update_new(df_update **out) {
  if (!out) return DF_EINVAL;
  *out = NULL;
  return df__update_alloc(1, out);
}

size_t df_update_count(const df_update *u) {
  return u ? u->n_acts : 0;
}

int df_update_target(const df_update *u, size_t i, const char **name,
                     size_t *len) {
  const df_path_seg *s;
  if (!u || i >= u->n_acts || !name || !len) return DF_EINVAL;
  s = &u->segs[u->paths[u->acts[i].path].first];
  *name = s->name;
  *len = s->len;
  return 0;
}

void df_update_free(df_update *u) {
  size_t i;
  if (!u) return;
  for (i = 0; i < u->n_chunks; i++) df__free(u->chunks[i]);
  df__free(u->chunks);
  df__free(u->acts);
  df__free(u->vals);
  df__free(u->segs);
  df__free(u->paths);
  df__buf_free(&u->out);
  df__free(u);
}

int df__update_path(df_update *u, const df_path_seg *segs, size_t n,
                    uint32_t *out) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (df__grow(&u->segs, &u->cap_segs, u->n_segs, sizeof *u->segs))
      return DF_ENOMEM;
    u->segs[u->n_segs++] = segs[i];
  }
  if (df__grow(&u->paths, &u->cap_paths, u->n_paths, sizeof *u->paths))
    return DF_ENOMEM;
  u->paths[u->n_paths].first = (uint32_t)(u->n_segs - n);
  u->paths[u->n_paths].n = (uint32_t)n;
  *out = (uint32_t)u->n_paths++;
  return 0;
}

int df__update_val(df_update *u, int kind, uint32_t a, uint32_t b,
                   uint32_t path, const void *bytes, size_t len,
                   uint32_t *out) {
  uval *v;
  if (df__grow(&u->vals, &u->cap_vals, u->n_vals, sizeof *u->vals))
    return DF_ENOMEM;
  v = &u->vals[u->n_vals];
  v->kind = kind;
  v->a = a;
  v->b = b;
  v->path = path;
  v->bytes = bytes;
  v->len = len;
  *out = (uint32_t)u->n_vals++;
  return 0;
}

int df__update_act(df_update *u, int kind, uint32_t path, uint32_t val,
                   char *where) {
  uact *a;
  if (df__grow(&u->acts, &u->cap_acts, u->n_acts, sizeof *u->acts))
    return DF_ENOMEM;
  a = &u->acts[u->n_acts++];
  a->kind = kind;
  a->path = path;
  a->val = val;
  a->where = where;
  return 0;
}

int df_update_add(df_update *u, int action, const char *path, size_t path_len,
                  const void *value, size_t value_len, const char *where,
                  char *err, size_t errlen) {
  df_path p;
  char *ps, *names, *w = NULL, why[96];
  const unsigned char *vb = NULL;
  uint32_t pi, vi = NONE;
  size_t at;
  int rc;
  if (err && errlen) err[0] = 0;
  if (!u || !path || action < DF_UPD_SET || action > DF_UPD_DELETE)
    return DF_EINVAL;
  if (action != DF_UPD_REMOVE) {
    if (!value || df__mp_validate(value, value_len, DF_MAX_DEPTH))
      return fmt_err(err, errlen, DF_EVALIDATION, "%s: malformed value",
                     where ? where : "update");
  }
  if (!(ps = df__update_keep(u, path, path_len))) return DF_ENOMEM;
  if (where && !(w = df__update_keep(u, where, strlen(where) + 1)))
    return DF_ENOMEM;
  /* the one path grammar (codec.c); quoted names decode into `names` */
  if (!(names = df__update_keep(u, path, path_len))) return DF_ENOMEM;
  if (df__path_scan(ps, path_len, DF_PATH_WHOLE, names, &p, NULL, why,
                    sizeof why, &at))
    return fmt_err(err, errlen, DF_EVALIDATION,
                   "%s: malformed path '%.*s': %s at column %zu",
                   where ? where : "update",
                   (int)(path_len > 200 ? 200 : path_len), path, why, at + 1);
  if ((rc = df__update_path(u, p.seg, p.n, &pi))) return rc;
  if (action != DF_UPD_REMOVE) {
    if (!(vb = df__update_keep(u, value, value_len))) return DF_ENOMEM;
    if ((rc = df__update_val(u, DF__UV_CONST, NONE, NONE, NONE, vb, value_len,
                             &vi)))
      return rc;
  }
  return df__update_act(u, action, pi, vi, w);
}

/* ------------------------------------------------------------ the tree */

enum { T_RAW, T_MAP, T_ARRAY };

typedef struct tnode {
  int kind;
  const unsigned char *raw, *rend; /* T_RAW: the value's bytes */
  const unsigned char *key;        /* map entry: the key's bytes */
  size_t klen;
  uint32_t child, next; /* first child; next sibling */
  int gone;             /* removed */
} tnode;

typedef struct applier {
  df_update *u;
  tnode *t;
  size_t nt, cap;
  const unsigned char *old, *oend;
  const char *const *keys; /* key attribute names, may not change */
  size_t n_keys;
  char *err;
  size_t errlen;
  void **arena; /* values computed during apply */
  size_t n_arena, cap_arena;
  /* removals of list elements, applied last: node of the list, index */
  struct removal {
    uint32_t list, index;
  } * rm;
  size_t n_rm, cap_rm;
} applier;

static int ap_fail(applier *a, const uact *act, const char *fmt, ...)
    DF__PRINTF(3, 4);

static int ap_fail(applier *a, const uact *act, const char *fmt, ...) {
  va_list ap;
  int n = 0;
  if (!a->err || !a->errlen) return DF_EVALIDATION;
  if (act && act->where) n = snprintf(a->err, a->errlen, "%s: ", act->where);
  if (n < 0 || (size_t)n >= a->errlen) return DF_EVALIDATION;
  va_start(ap, fmt);
  vsnprintf(a->err + n, a->errlen - (size_t)n, fmt, ap);
  va_end(ap);
  return DF_EVALIDATION;
}

static int new_tnode(applier *a, uint32_t *out) {
  if (df__grow(&a->t, &a->cap, a->nt, sizeof *a->t)) return DF_ENOMEM;
  memset(&a->t[a->nt], 0, sizeof a->t[0]);
  a->t[a->nt].child = NONE;
  a->t[a->nt].next = NONE;
  *out = (uint32_t)a->nt++;
  return 0;
}

static void *arena_keep(applier *a, size_t n) {
  void *p;
  if (df__grow(&a->arena, &a->cap_arena, a->n_arena, sizeof *a->arena))
    return NULL;
  p = df__malloc(n ? n : 1);
  if (p) a->arena[a->n_arena++] = p;
  return p;
}

/* Append child c at the end of n's children. */
static void append_child(applier *a, uint32_t n, uint32_t c) {
  uint32_t k = a->t[n].child;
  if (k == NONE) {
    a->t[n].child = c;
    return;
  }
  while (a->t[k].next != NONE) k = a->t[k].next;
  a->t[k].next = c;
}

/* Open a raw map or array node into children. */
static int expand(applier *a, uint32_t n) {
  const unsigned char *p = a->t[n].raw, *end = a->t[n].rend;
  df_value h;
  size_t i;
  int is_map, rc;
  if (a->t[n].kind != T_RAW) return 0;
  if (df__mp_read(&p, end, &h)) return DF_ECORRUPT;
  if (h.type != DF_TMAP && h.type != DF_TARRAY) return DF_EINVAL;
  is_map = h.type == DF_TMAP;
  a->t[n].kind = is_map ? T_MAP : T_ARRAY;
  for (i = 0; i < h.n; i++) {
    uint32_t c;
    const unsigned char *ks = p, *vs;
    if (is_map && df__mp_skip(&p, end)) return DF_ECORRUPT;
    vs = p;
    if (df__mp_skip(&p, end)) return DF_ECORRUPT;
    if ((rc = new_tnode(a, &c))) return rc;
    a->t[c].kind = T_RAW;
    a->t[c].raw = vs;
    a->t[c].rend = p;
    if (is_map) {
      a->t[c].key = ks;
      a->t[c].klen = (size_t)(vs - ks);
    }
    append_child(a, n, c);
  }
  return 0;
}

/* The raw type of a node: DF_TMAP, DF_TARRAY or another df_type. */
static int node_type(applier *a, uint32_t n) {
  const unsigned char *p;
  df_value v;
  if (a->t[n].kind == T_MAP) return DF_TMAP;
  if (a->t[n].kind == T_ARRAY) return DF_TARRAY;
  p = a->t[n].raw;
  if (df__mp_read(&p, a->t[n].rend, &v)) return DF_TNONE;
  return v.type;
}

static int key_is(const tnode *t, const char *name, size_t n) {
  const unsigned char *p = t->key;
  df_value k;
  if (!p || df__mp_read(&p, t->key + t->klen, &k)) return 0;
  return (k.type == DF_TSTR || k.type == DF_TBIN) && k.n == n &&
         (n == 0 || !memcmp(k.s, name, n));
}

/* The live child of n for segment sg, or NONE. */
static uint32_t find_child(applier *a, uint32_t n, const df_path_seg *sg) {
  uint32_t k;
  uint32_t i = 0;
  for (k = a->t[n].child; k != NONE; k = a->t[k].next) {
    if (a->t[k].gone) continue;
    if (sg->name) {
      if (key_is(&a->t[k], sg->name, sg->len)) return k;
    } else if (i++ == sg->index) {
      return k;
    }
  }
  return NONE;
}

static uint32_t count_children(applier *a, uint32_t n) {
  uint32_t k, c = 0;
  for (k = a->t[n].child; k != NONE; k = a->t[k].next)
    if (!a->t[k].gone) c++;
  return c;
}

/* A map-entry key node for `name`, encoded into the arena. */
static int make_key(applier *a, uint32_t c, const char *name, size_t n) {
  df_buf b;
  unsigned char *p;
  df__buf_init(&b);
  if (df__mp_put_str(&b, name, n) || b.failed) {
    df__buf_free(&b);
    return DF_ENOMEM;
  }
  p = arena_keep(a, b.len);
  if (!p) {
    df__buf_free(&b);
    return DF_ENOMEM;
  }
  memcpy(p, b.p, b.len);
  a->t[c].key = p;
  a->t[c].klen = b.len;
  df__buf_free(&b);
  return 0;
}

/* Walk to the container holding the last segment of path pi.
 * Returns 0 and *parent (NONE when something on the way is missing and
 * not created), or an error: DF_EVALIDATION for a path through a value of
 * another kind. */
static int walk(applier *a, const uact *act, uint32_t pi, int create,
                uint32_t *parent) {
  const upath *up = &a->u->paths[pi];
  const df_path_seg *segs = &a->u->segs[up->first];
  uint32_t n = 0, i;
  int rc;
  *parent = NONE;
  for (i = 0; i + 1 < up->n; i++) {
    uint32_t c;
    int want_list = segs[i + 1].name == NULL, t;
    if ((rc = expand(a, n)) && rc != DF_EINVAL) return rc;
    c = find_child(a, n, &segs[i]);
    if (c == NONE) {
      if (!create) return 0;
      if (!a->u->table_form)
        return ap_fail(a, act,
                       "The document path provided in the update expression "
                       "is invalid for update");
      if (want_list || !segs[i].name)
        return ap_fail(a, act,
                       a->u->table_form
                           ? "'%.*s' does not exist, so it cannot hold "
                             "position %u"
                           : "The document path provided in the update "
                             "expression is invalid for update",
                       (int)(segs[i].name ? segs[i].len : 0),
                       segs[i].name ? segs[i].name : "", segs[i + 1].index);
      if ((rc = new_tnode(a, &c))) return rc;
      a->t[c].kind = T_MAP;
      if ((rc = make_key(a, c, segs[i].name, segs[i].len))) return rc;
      append_child(a, n, c);
    }
    t = node_type(a, c);
    if (t == DF_TNIL && create && !want_list && a->u->table_form) {
      /* a null on the way becomes a map, as a missing one would */
      a->t[c].kind = T_MAP;
      a->t[c].child = NONE;
      t = DF_TMAP;
    }
    if (t != (want_list ? DF_TARRAY : DF_TMAP)) {
      if (t == DF_TNIL && !create) return 0;
      if (a->u->table_form)
        return ap_fail(a, act, "'%.*s' is not a %s",
                       (int)(segs[i].name ? segs[i].len : 0),
                       segs[i].name ? segs[i].name : "(list element)",
                       want_list ? "list" : "map");
      return ap_fail(a, act,
                     "The document path provided in the update expression "
                     "is invalid for update");
    }
    if ((rc = expand(a, c))) return rc;
    n = c;
  }
  if ((rc = expand(a, n)) && rc != DF_EINVAL) return rc;
  {
    int t = node_type(a, n), want_list = segs[up->n - 1].name == NULL;
    if (t != (want_list ? DF_TARRAY : DF_TMAP)) {
      if (a->u->table_form)
        return ap_fail(a, act, "the value holding '%.*s' is not a %s",
                       (int)(segs[up->n - 1].name ? segs[up->n - 1].len : 0),
                       segs[up->n - 1].name ? segs[up->n - 1].name : "",
                       want_list ? "list" : "map");
      return ap_fail(a, act,
                     "The document path provided in the update expression "
                     "is invalid for update");
    }
  }
  *parent = n;
  return 0;
}

/* Put bytes [v, ve) at the last segment of path pi under parent. */
static int put_at(applier *a, uint32_t parent, uint32_t pi,
                  const unsigned char *v, const unsigned char *ve) {
  const upath *up = &a->u->paths[pi];
  const df_path_seg *last = &a->u->segs[up->first + up->n - 1];
  uint32_t c = find_child(a, parent, last);
  int rc;
  if (c == NONE) {
    if ((rc = new_tnode(a, &c))) return rc;
    if (last->name && (rc = make_key(a, c, last->name, last->len))) return rc;
    append_child(a, parent, c); /* a position past the end appends */
  }
  a->t[c].kind = T_RAW;
  a->t[c].child = NONE;
  a->t[c].raw = v;
  a->t[c].rend = ve;
  return 0;
}

/* ------------------------------------------------------------- values */

typedef struct span {
  const unsigned char *p, *e;
} span;

/* Find path pi in the OLD item: 1 found, 0 missing, or DF_ECORRUPT. */
static int old_value(applier *a, uint32_t pi, span *out) {
  const upath *up = &a->u->paths[pi];
  df_path p;
  if (!a->old) return 0;
  p.n = up->n;
  memcpy(p.seg, &a->u->segs[up->first], up->n * sizeof p.seg[0]);
  return df__mp_path_find(a->old, (size_t)(a->oend - a->old), &p, NULL, &out->p,
                          &out->e);
}

static int keep_buf(applier *a, df_buf *b, span *out) {
  unsigned char *p;
  if (b->failed) return DF_ENOMEM;
  p = arena_keep(a, b->len);
  if (!p) return DF_ENOMEM;
  memcpy(p, b->p, b->len);
  out->p = p;
  out->e = p + b->len;
  return 0;
}

static int is_number(const df_value *v) {
  return v->type == DF_TINT || v->type == DF_TUINT || v->type == DF_TFLOAT ||
         v->type == DF_TDECIMAL;
}

static int is_set(int t) {
  return t == DF_TSS || t == DF_TNS || t == DF_TBS;
}

/* a + b as DynamoDB computes it: exact decimals, 38 digits, its range. */
static int add_decimals(applier *a, const uact *act, const df_value *x,
                        const df_value *y, int minus, df_buf *out) {
  df_dec dx, dy, r;
  int why;
  if (df__dec_from_value(x, &dx) || df__dec_from_value(y, &dy))
    return ap_fail(a, act, "%s",
                   "An operand in the update expression has an incorrect "
                   "data type");
  why = df__dec_add(&dx, &dy, minus, &r);
  if (why == DF_DEC_OK) why = df__dec_range(&r);
  if (why != DF_DEC_OK) return ap_fail(a, act, "%s", df__dec_msg(why));
  return df__mp_put_dec(out, &r);
}

/* a + b (or a - b), exact for integers; DF_EVALIDATION when an integer
 * result leaves the 64-bit range. */
static int add_numbers(applier *a, const uact *act, const df_value *x,
                       const df_value *y, int minus, df_buf *out) {
  /* DynamoDB's syntax computes as DynamoDB does, in decimal; the table
   * form keeps Lua's integers and floats unless a decimal is involved */
  if (!a->u->table_form || x->type == DF_TDECIMAL || y->type == DF_TDECIMAL)
    return add_decimals(a, act, x, y, minus, out);
  if (x->type == DF_TFLOAT || y->type == DF_TFLOAT) {
    double fx = x->type == DF_TFLOAT ? x->f
                : x->type == DF_TINT ? (double)x->i
                                     : (double)x->u;
    double fy = y->type == DF_TFLOAT ? y->f
                : y->type == DF_TINT ? (double)y->i
                                     : (double)y->u;
    return df__mp_put_float(out, minus ? fx - fy : fx + fy);
  }
  {
    /* sign and magnitude: every int64 and uint64 fits */
    int nx = x->type == DF_TINT && x->i < 0,
        ny = y->type == DF_TINT && y->i < 0;
    uint64_t mx = x->type == DF_TUINT ? x->u
                  : nx                ? (uint64_t)(-(x->i + 1)) + 1
                                      : (uint64_t)x->i;
    uint64_t my = y->type == DF_TUINT ? y->u
                  : ny                ? (uint64_t)(-(y->i + 1)) + 1
                                      : (uint64_t)y->i;
    uint64_t m;
    int neg, over = 0;
    if (minus) ny = !ny;
    if (nx == ny) {
      m = mx + my;
      over = m < mx;
      neg = nx;
    } else if (mx >= my) {
      m = mx - my;
      neg = nx;
    } else {
      m = my - mx;
      neg = ny;
    }
    if (m == 0) neg = 0;
    if (!over && neg && m <= (uint64_t)INT64_MAX + 1)
      return df__mp_put_int(
          out, m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m);
    /* the table form keeps Lua's integers: past INT64_MAX only when an
     * operand already was */
    if (!over && !neg &&
        (m <= (uint64_t)INT64_MAX || !a->u->table_form || x->type == DF_TUINT ||
         y->type == DF_TUINT))
      return df__mp_put_uint(out, m);
    if (a->u->table_form)
      return ap_fail(a, act, "the sum overflows a 64-bit integer");
    return ap_fail(a, act,
                   "Number overflow. Attempting to store a number with "
                   "magnitude larger than supported range");
  }
}

static int eval_val(applier *a, const uact *act, uint32_t vi, span *out,
                    int depth);

static const char *MISSING_OPERAND =
    "The provided expression refers to an attribute that does not exist in "
    "the item";
static const char *BAD_OPERAND =
    "An operand in the update expression has an incorrect data type";

static int eval_val(applier *a, const uact *act, uint32_t vi, span *out,
                    int depth) {
  const uval *v = &a->u->vals[vi];
  span x, y;
  df_value dx, dy;
  const unsigned char *q;
  df_buf b;
  int rc;
  if (depth > DF_MAX_DEPTH) return ap_fail(a, act, "update nested too deep");
  switch (v->kind) {
    case DF__UV_CONST:
      out->p = v->bytes;
      out->e = v->bytes + v->len;
      return 0;
    case DF__UV_PATH:
      rc = old_value(a, v->path, out);
      if (rc < 0) return rc;
      if (!rc) return ap_fail(a, act, "%s", MISSING_OPERAND);
      return 0;
    case DF__UV_IF_NOT_EXISTS:
      rc = old_value(a, v->path, out);
      if (rc < 0) return rc;
      if (rc) return 0;
      return eval_val(a, act, v->b, out, depth + 1);
    case DF__UV_PLUS:
    case DF__UV_MINUS:
      if ((rc = eval_val(a, act, v->a, &x, depth + 1)) ||
          (rc = eval_val(a, act, v->b, &y, depth + 1)))
        return rc;
      q = x.p;
      if (df__mp_read(&q, x.e, &dx)) return DF_ECORRUPT;
      q = y.p;
      if (df__mp_read(&q, y.e, &dy)) return DF_ECORRUPT;
      if (!is_number(&dx) || !is_number(&dy))
        return ap_fail(a, act, "%s", BAD_OPERAND);
      df__buf_init(&b);
      rc = add_numbers(a, act, &dx, &dy, v->kind == DF__UV_MINUS, &b);
      if (!rc) rc = keep_buf(a, &b, out);
      df__buf_free(&b);
      return rc;
    case DF__UV_LIST_APPEND: {
      const unsigned char *px, *py;
      if ((rc = eval_val(a, act, v->a, &x, depth + 1)) ||
          (rc = eval_val(a, act, v->b, &y, depth + 1)))
        return rc;
      px = x.p;
      py = y.p;
      if (df__mp_read(&px, x.e, &dx) || df__mp_read(&py, y.e, &dy))
        return DF_ECORRUPT;
      if (dx.type != DF_TARRAY || dy.type != DF_TARRAY)
        return ap_fail(a, act, "%s", BAD_OPERAND);
      if (dx.n + dy.n > UINT32_MAX) return ap_fail(a, act, "list too long");
      df__buf_init(&b);
      df__mp_put_array(&b, (uint32_t)(dx.n + dy.n));
      df__buf_append(&b, px, (size_t)(x.e - px));
      df__buf_append(&b, py, (size_t)(y.e - py));
      rc = keep_buf(a, &b, out);
      df__buf_free(&b);
      return rc;
    }
    default:
      return DF_EINVAL;
  }
}

/* Equality of two encoded values as filters see it (== in expr.c). */
static int same_value(const span *x, const span *y) {
  return df__value_equal(x->p, x->e, y->p, y->e);
}

/* ADD/DELETE of a list into/from a list (the table form's set union and
 * difference).  cur: the current list (bytes) or NULL; add: the list. */
static int merge_lists(applier *a, const span *cur, const span *val, int del,
                       span *out) {
  const unsigned char *p, *q, *ce = cur ? cur->e : NULL;
  df_value hc, hv;
  df_buf b, body;
  size_t i, j, n = 0;
  int rc = 0;
  hc.n = 0;
  p = cur ? cur->p : NULL;
  if (cur && df__mp_read(&p, ce, &hc)) return DF_ECORRUPT;
  q = val->p;
  if (df__mp_read(&q, val->e, &hv)) return DF_ECORRUPT;
  df__buf_init(&b);
  df__buf_init(&body);
  /* the elements kept from the current list */
  {
    const unsigned char *e = p;
    for (i = 0; i < hc.n; i++) {
      span el;
      int drop = 0;
      el.p = e;
      if (df__mp_skip(&e, ce)) {
        rc = DF_ECORRUPT;
        goto done;
      }
      el.e = e;
      if (del) {
        const unsigned char *f = q;
        for (j = 0; j < hv.n && !drop; j++) {
          span d;
          d.p = f;
          if (df__mp_skip(&f, val->e)) {
            rc = DF_ECORRUPT;
            goto done;
          }
          d.e = f;
          drop = same_value(&el, &d) == 1;
        }
      }
      if (!drop) {
        df__buf_append(&body, el.p, (size_t)(el.e - el.p));
        n++;
      }
    }
  }
  if (!del) {
    /* the added elements not present yet (nor earlier in the addition) */
    const unsigned char *f = q;
    for (j = 0; j < hv.n; j++) {
      span d;
      const unsigned char *g = body.p;
      int present = 0;
      d.p = f;
      if (df__mp_skip(&f, val->e)) {
        rc = DF_ECORRUPT;
        goto done;
      }
      d.e = f;
      for (i = 0; i < n && !present; i++) {
        span el;
        el.p = g;
        if (df__mp_skip(&g, body.p + body.len)) {
          rc = DF_ECORRUPT;
          goto done;
        }
        el.e = g;
        present = same_value(&el, &d) == 1;
      }
      if (!present) {
        df__buf_append(&body, d.p, (size_t)(d.e - d.p));
        n++;
      }
    }
  }
  if (n > UINT32_MAX) {
    rc = DF_EVALIDATION;
    goto done;
  }
  df__mp_put_array(&b, (uint32_t)n);
  df__buf_append(&b, body.p, body.len);
  if (body.failed) b.failed = 1;
  rc = keep_buf(a, &b, out);
done:
  df__buf_free(&b);
  df__buf_free(&body);
  (void)a;
  return rc;
}

/* ADD/DELETE of a set into/from a set of the same kind: union or
 * difference, stored as a set again.  An emptied set gives out->p NULL. */
static int merge_sets(applier *a, const span *cur, const span *val, int del,
                      int kind, span *out) {
  df_value hc, hv;
  const unsigned char *p = cur->p, *q = val->p, *e;
  df_buf b;
  size_t i, n = 0;
  int rc = 0;
  if (df__mp_read(&p, cur->e, &hc) || df__mp_read(&q, val->e, &hv))
    return DF_ECORRUPT;
  df__buf_init(&b);
  /* the elements of the current set, less those deleted */
  p = (const unsigned char *)hc.s;
  for (i = 0; i < hc.n; i++) {
    df_value x;
    const unsigned char *xs = p;
    if (df__mp_read(&p, cur->e, &x)) {
      rc = DF_ECORRUPT;
      goto done;
    }
    if (del) {
      int in = df__mp_set_contains(&hv, &x);
      if (in < 0) {
        rc = in;
        goto done;
      }
      if (in) continue;
    }
    df__buf_append(&b, xs, (size_t)(p - xs));
    n++;
  }
  if (!del) {
    e = (const unsigned char *)hv.s;
    for (i = 0; i < hv.n; i++) {
      df_value x;
      const unsigned char *xs = e;
      int in;
      if (df__mp_read(&e, val->e, &x)) {
        rc = DF_ECORRUPT;
        goto done;
      }
      in = df__mp_set_contains(&hc, &x);
      if (in < 0) {
        rc = in;
        goto done;
      }
      if (in) continue;
      df__buf_append(&b, xs, (size_t)(e - xs));
      n++;
    }
  }
  if (n == 0) {
    out->p = out->e = NULL;
    goto done;
  }
  if ((rc = df__mp_finish_set(&b, 0, (df_type)kind, n, NULL))) goto done;
  rc = keep_buf(a, &b, out);
done:
  df__buf_free(&b);
  return rc;
}

static const char *type_word(int t) {
  switch (t) {
    case DF_TSTR:
      return "string";
    case DF_TBIN:
      return "binary";
    case DF_TBOOL:
      return "boolean";
    case DF_TNIL:
      return "null";
    case DF_TMAP:
      return "map";
    case DF_TARRAY:
      return "list";
    default:
      return "number";
  }
}

/* ------------------------------------------------------------ actions */

static int touches_key(applier *a, uint32_t pi) {
  const upath *up = &a->u->paths[pi];
  const df_path_seg *s = &a->u->segs[up->first];
  size_t i;
  if (!s->name) return 0;
  for (i = 0; i < a->n_keys; i++)
    if (strlen(a->keys[i]) == s->len && !memcmp(a->keys[i], s->name, s->len))
      return 1;
  return 0;
}

static int do_set(applier *a, const uact *act, const span *v) {
  uint32_t parent;
  int rc = walk(a, act, act->path, 1, &parent);
  if (rc) return rc;
  return put_at(a, parent, act->path, v->p, v->e);
}

static int do_add_delete(applier *a, const uact *act, int del) {
  const uval *v = &a->u->vals[act->val];
  const upath *up = &a->u->paths[act->path];
  const df_path_seg *last = &a->u->segs[up->first + up->n - 1];
  span val, cur, res;
  df_value dv, dc;
  const unsigned char *q;
  uint32_t parent, c;
  int rc = walk(a, act, act->path, !del, &parent);
  if (rc) return rc;
  if (parent == NONE) return 0; /* DELETE on a missing path */
  val.p = v->bytes;
  val.e = v->bytes + v->len;
  q = val.p;
  if (df__mp_read(&q, val.e, &dv)) return DF_ECORRUPT;
  c = find_child(a, parent, last);
  if (c == NONE || node_type(a, c) == DF_TNIL) {
    if (del) return 0;
    if (dv.type == DF_TARRAY && a->u->table_form) {
      /* a union also on a new attribute: no duplicates */
      if ((rc = merge_lists(a, NULL, &val, 0, &res))) return rc;
      return put_at(a, parent, act->path, res.p, res.e);
    }
    return put_at(a, parent, act->path, val.p, val.e);
  }
  if (a->t[c].kind != T_RAW) {
    /* opened by an earlier action: paths do not overlap, so never */
    return ap_fail(a, act, "%s", BAD_OPERAND);
  }
  cur.p = a->t[c].raw;
  cur.e = a->t[c].rend;
  q = cur.p;
  if (df__mp_read(&q, cur.e, &dc)) return DF_ECORRUPT;
  if (!del && is_number(&dv)) {
    df_buf b;
    if (!is_number(&dc)) {
      if (a->u->table_form)
        return ap_fail(a, act, "'%.*s' holds a %s, not a number",
                       (int)(last->name ? last->len : 0),
                       last->name ? last->name : "", type_word(dc.type));
      return ap_fail(a, act, "%s", BAD_OPERAND);
    }
    df__buf_init(&b);
    rc = add_numbers(a, act, &dc, &dv, 0, &b);
    if (!rc) rc = keep_buf(a, &b, &res);
    df__buf_free(&b);
    if (rc) return rc;
    return put_at(a, parent, act->path, res.p, res.e);
  }
  if (is_set(dv.type) && dv.type == dc.type) {
    if ((rc = merge_sets(a, &cur, &val, del, dc.type, &res))) return rc;
    if (res.p == NULL) { /* DELETE emptied the set: DynamoDB removes it */
      a->t[c].gone = 1;
      return 0;
    }
    return put_at(a, parent, act->path, res.p, res.e);
  }
  if (dv.type == DF_TARRAY && dc.type == DF_TARRAY && a->u->table_form) {
    if ((rc = merge_lists(a, &cur, &val, del, &res))) return rc;
    return put_at(a, parent, act->path, res.p, res.e);
  }
  if (a->u->table_form)
    return ap_fail(a, act, "'%.*s' holds a %s, which cannot take a %s",
                   (int)(last->name ? last->len : 0),
                   last->name ? last->name : "", type_word(dc.type),
                   type_word(dv.type));
  return ap_fail(a, act, "%s", BAD_OPERAND);
}

static int do_remove(applier *a, const uact *act) {
  const upath *up = &a->u->paths[act->path];
  const df_path_seg *last = &a->u->segs[up->first + up->n - 1];
  uint32_t parent, c;
  int rc = walk(a, act, act->path, 0, &parent);
  if (rc) return rc;
  if (parent == NONE) return 0;
  c = find_child(a, parent, last);
  if (c == NONE) return 0;
  if (last->name) {
    a->t[c].gone = 1;
    return 0;
  }
  /* list positions: removed last, highest first (old numbering) */
  if (df__grow(&a->rm, &a->cap_rm, a->n_rm, sizeof *a->rm)) return DF_ENOMEM;
  a->rm[a->n_rm].list = parent;
  a->rm[a->n_rm].index = c;
  a->n_rm++;
  return 0;
}

/* ------------------------------------------------------------ writing */

static int write_node(applier *a, uint32_t n, df_buf *out, int depth) {
  uint32_t k, cnt;
  if (depth > DF_MAX_DEPTH + 1) return DF_EVALIDATION;
  if (a->t[n].kind == T_RAW)
    return df__buf_append(out, a->t[n].raw,
                          (size_t)(a->t[n].rend - a->t[n].raw));
  cnt = count_children(a, n);
  if (a->t[n].kind == T_MAP)
    df__mp_put_map(out, cnt);
  else
    df__mp_put_array(out, cnt);
  for (k = a->t[n].child; k != NONE; k = a->t[k].next) {
    int rc;
    if (a->t[k].gone) continue;
    if (a->t[n].kind == T_MAP) df__buf_append(out, a->t[k].key, a->t[k].klen);
    if ((rc = write_node(a, k, out, depth + 1))) return rc;
  }
  return out->failed ? DF_ENOMEM : 0;
}

int df_update_apply(df_update *u, const void *old, size_t old_len,
                    const void *key, size_t key_len,
                    const char *const *key_names, size_t n_keys,
                    const void **out, size_t *out_len, char *err,
                    size_t errlen) {
  applier a;
  span *vals = NULL;
  size_t i;
  int rc = 0;
  uint32_t root;
  if (err && errlen) err[0] = 0;
  if (!u || !out || !out_len || (!old && old_len) || !key || !key_len)
    return DF_EINVAL;
  memset(&a, 0, sizeof a);
  a.u = u;
  a.old = old_len ? old : NULL;
  a.oend = a.old ? (const unsigned char *)old + old_len : NULL;
  a.keys = key_names;
  a.n_keys = n_keys;
  a.err = err;
  a.errlen = errlen;
  if ((rc = new_tnode(&a, &root))) goto done;
  a.t[root].kind = T_RAW;
  a.t[root].raw = a.old ? a.old : key;
  a.t[root].rend = a.old ? a.oend : (const unsigned char *)key + key_len;
  if ((rc = expand(&a, root))) {
    if (rc == DF_EINVAL) rc = DF_EVALIDATION;
    goto done;
  }
  for (i = 0; i < u->n_acts; i++)
    if (touches_key(&a, u->acts[i].path)) {
      const df_path_seg *s = &u->segs[u->paths[u->acts[i].path].first];
      rc = u->table_form
               ? ap_fail(&a, &u->acts[i],
                         "cannot change key attribute %.*s (it is part of "
                         "the key)",
                         (int)s->len, s->name)
               : ap_fail(&a, NULL,
                         "One or more parameter values were invalid: Cannot "
                         "update attribute %.*s. This attribute is part of "
                         "the key",
                         (int)s->len, s->name);
      goto done;
    }
  /* every SET value from the old item first */
  vals = df__malloc((u->n_acts ? u->n_acts : 1) * sizeof *vals);
  if (!vals) {
    rc = DF_ENOMEM;
    goto done;
  }
  for (i = 0; i < u->n_acts; i++)
    if (u->acts[i].kind == DF_UPD_SET &&
        (rc = eval_val(&a, &u->acts[i], u->acts[i].val, &vals[i], 0)))
      goto done;
  for (i = 0; i < u->n_acts && !rc; i++)
    if (u->acts[i].kind == DF_UPD_SET) rc = do_set(&a, &u->acts[i], &vals[i]);
  for (i = 0; i < u->n_acts && !rc; i++)
    if (u->acts[i].kind == DF_UPD_ADD) rc = do_add_delete(&a, &u->acts[i], 0);
  for (i = 0; i < u->n_acts && !rc; i++)
    if (u->acts[i].kind == DF_UPD_DELETE)
      rc = do_add_delete(&a, &u->acts[i], 1);
  for (i = 0; i < u->n_acts && !rc; i++)
    if (u->acts[i].kind == DF_UPD_REMOVE) rc = do_remove(&a, &u->acts[i]);
  if (rc) goto done;
  /* the list positions, all numbered in the old lists */
  for (i = 0; i < a.n_rm; i++) a.t[a.rm[i].index].gone = 1;
  df__buf_reset(&u->out);
  if ((rc = write_node(&a, root, &u->out, 0))) goto done;
  *out = u->out.p;
  *out_len = u->out.len;
done:
  if (rc == DF_ECORRUPT)
    fmt_err(err, errlen, rc, "a stored item is malformed");
  else if (rc == DF_ENOMEM)
    fmt_err(err, errlen, rc, "out of memory");
  for (i = 0; i < a.n_arena; i++) df__free(a.arena[i]);
  df__free(a.arena);
  df__free(a.t);
  df__free(a.rm);
  df__free(vals);
  return rc;
}
