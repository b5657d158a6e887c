/*
 * ddbexpr.c -- DynamoDB's expression language: ConditionExpression,
 * FilterExpression, KeyConditionExpression, ProjectionExpression and
 * UpdateExpression, with ExpressionAttributeNames (#name) and
 * ExpressionAttributeValues (:value).
 *
 * Each expression is read in three passes: the lexer cuts the whole text
 * into tokens; a recursive-descent parser builds a small syntax tree (only
 * syntax errors here, reported as DynamoDB does: the offending token and
 * the text from the token before it to the token after it); a checking
 * pass then reports DynamoDB's semantic errors in DynamoDB's order
 * (redundant parentheses, unknown functions, misused functions, reserved
 * words, undefined placeholders, operand counts and types).  Conditions
 * are then compiled into the same tree as dynafile's own filter language
 * (expr_tree.h) and run by the one evaluator in expr.c; projections into
 * a df_projection (below); updates into a df_update (update.c).
 *
 * Semantics are DynamoDB's: a missing attribute makes =, <, <=, >, >=,
 * BETWEEN, IN and the functions false, and makes <> TRUE (DynamoDB's
 * "not equal" holds when either side is missing -- unlike dynafile's !=).
 * Values of different types are unequal and unordered.
 *
 * Invariants: every compiled object owns copies of the names and values
 * it uses (the caller's buffers may go at once); parser recursion is
 * bounded by MAX_NEST; nothing here allocates without a matching free on
 * every error path.
 *
 * Limits (DynamoDB's): an expression of at most 4 KB, a document path of
 * at most 32 levels, at most 100 operands for IN, at most 300 operators
 * and functions in one expression; names and values are MessagePack maps
 * of at most 2 MB together.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr_tree.h"
#include "update.h"

#define EXPR_MAX 4096
#define ARGS_MAX (2u * 1024 * 1024)
#define IN_MAX 100
#define OPS_MAX 300
#define MAX_NEST 64
#define NONE DF__EXPR_NONE

/* ============================================================ arguments */

typedef struct name_ent {
  const char *k, *v;
  size_t kn, vn;
  int used;
} name_ent;

typedef struct value_ent {
  const char *k;
  size_t kn;
  df_value v;
  const unsigned char *start, *end; /* the encoded value */
  int used;
} value_ent;

struct df_ddb_args {
  unsigned char *nbuf, *vbuf;
  size_t nlen, vlen;
  name_ent *names;
  size_t n_names;
  value_ent *values;
  size_t n_values;
};

static int set_err(char *err, size_t errlen, int code, const char *fmt, ...)
    DF__PRINTF(4, 5);

static int set_err(char *err, size_t errlen, int code, const char *fmt, ...) {
  va_list ap;
  if (!err || !errlen) return code;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return code;
}

static int is_alpha(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c) {
  return c >= '0' && c <= '9';
}

static int is_word(int c) {
  return is_alpha(c) || is_digit(c) || c == '_';
}

/* A placeholder key: prefix then one or more word characters. */
static int valid_key(const char *k, size_t n, char prefix) {
  size_t i;
  if (n < 2 || k[0] != prefix) return 0;
  for (i = 1; i < n; i++)
    if (!is_word((unsigned char)k[i])) return 0;
  return 1;
}

/* Copy up to 64 bytes of s for a message, making them printable. */
static const char *shown(const char *s, size_t n, char *buf, size_t cap) {
  size_t i, k = 0;
  for (i = 0; i < n && k + 4 < cap && i < 64; i++) {
    unsigned char c = (unsigned char)s[i];
    buf[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
  }
  if (i < n && k + 4 < cap) {
    memcpy(buf + k, "...", 3);
    k += 3;
  }
  buf[k] = 0;
  return buf;
}

/* Read a map header of `what` at [p, end): *count pairs. */
static int map_header(const unsigned char **p, const unsigned char *end,
                      size_t *count) {
  df_value m;
  if (df__mp_read(p, end, &m) || m.type != DF_TMAP) return DF_EVALIDATION;
  *count = m.n;
  return 0;
}

static int copy_buf(const void *src, size_t n, unsigned char **out) {
  *out = df__malloc(n ? n : 1);
  if (!*out) return DF_ENOMEM;
  if (n) memcpy(*out, src, n);
  return 0;
}

static int load_names(df_ddb_args *a, char *err, size_t errlen) {
  const unsigned char *p = a->nbuf, *end = a->nbuf + a->nlen;
  size_t n, i;
  char b1[80];
  if (map_header(&p, end, &n))
    return set_err(err, errlen, DF_EVALIDATION,
                   "ExpressionAttributeNames must be a map of strings");
  if (n == 0)
    return set_err(err, errlen, DF_EVALIDATION,
                   "ExpressionAttributeNames must not be empty");
  a->names = df__malloc(n * sizeof *a->names);
  if (!a->names) return DF_ENOMEM;
  for (i = 0; i < n; i++) {
    df_value k, v;
    if (df__mp_read(&p, end, &k) || k.type != DF_TSTR ||
        df__mp_read(&p, end, &v) || v.type != DF_TSTR)
      return set_err(err, errlen, DF_EVALIDATION,
                     "ExpressionAttributeNames must be a map of strings");
    if (!valid_key(k.s, k.n, '#')) {
      shown(k.s, k.n, b1, sizeof b1);
      return set_err(err, errlen, DF_EVALIDATION,
                     "ExpressionAttributeNames contains invalid key: Syntax "
                     "error; token: \"%s\", near: \"%s\"",
                     b1, b1);
    }
    if (v.n == 0) {
      shown(k.s, k.n, b1, sizeof b1);
      return set_err(err, errlen, DF_EVALIDATION,
                     "ExpressionAttributeNames contains invalid value: Empty "
                     "attribute name for key %s",
                     b1);
    }
    a->names[i].k = k.s;
    a->names[i].kn = k.n;
    a->names[i].v = v.s;
    a->names[i].vn = v.n;
    a->names[i].used = 0;
  }
  a->n_names = n;
  if (p != end)
    return set_err(err, errlen, DF_EVALIDATION,
                   "ExpressionAttributeNames must be one map");
  return 0;
}

static int load_values(df_ddb_args *a, char *err, size_t errlen) {
  const unsigned char *p = a->vbuf, *end = a->vbuf + a->vlen;
  size_t n, i;
  char b1[80];
  if (map_header(&p, end, &n))
    return set_err(err, errlen, DF_EVALIDATION,
                   "ExpressionAttributeValues must be a map");
  if (n == 0)
    return set_err(err, errlen, DF_EVALIDATION,
                   "ExpressionAttributeValues must not be empty");
  a->values = df__malloc(n * sizeof *a->values);
  if (!a->values) return DF_ENOMEM;
  for (i = 0; i < n; i++) {
    df_value k;
    const unsigned char *vs, *ve;
    if (df__mp_read(&p, end, &k) || k.type != DF_TSTR)
      return set_err(err, errlen, DF_EVALIDATION,
                     "ExpressionAttributeValues must be a map with string "
                     "keys");
    if (!valid_key(k.s, k.n, ':')) {
      shown(k.s, k.n, b1, sizeof b1);
      return set_err(err, errlen, DF_EVALIDATION,
                     "ExpressionAttributeValues contains invalid key: Syntax "
                     "error; token: \"%s\", near: \"%s\"",
                     b1, b1);
    }
    vs = ve = p;
    if (df__mp_skip(&ve, end))
      return set_err(err, errlen, DF_EVALIDATION,
                     "ExpressionAttributeValues holds malformed bytes");
    if (df__mp_read(&p, end, &a->values[i].v))
      return set_err(err, errlen, DF_EVALIDATION,
                     "ExpressionAttributeValues holds malformed bytes");
    p = ve;
    a->values[i].k = k.s;
    a->values[i].kn = k.n;
    a->values[i].start = vs;
    a->values[i].end = ve;
    a->values[i].used = 0;
  }
  a->n_values = n;
  if (p != end)
    return set_err(err, errlen, DF_EVALIDATION,
                   "ExpressionAttributeValues must be one map");
  return 0;
}

int df_ddb_args_new(const void *names, size_t nlen, const void *values,
                    size_t vlen, df_ddb_args **out, char *err, size_t errlen) {
  df_ddb_args *a;
  int rc;
  if (err && errlen) err[0] = 0;
  if (!out) return DF_EINVAL;
  *out = NULL;
  if ((!names && nlen) || (!values && vlen)) return DF_EINVAL;
  if (nlen + vlen > ARGS_MAX)
    return set_err(err, errlen, DF_EVALIDATION,
                   "ExpressionAttributeNames and ExpressionAttributeValues "
                   "exceed 2 MB together");
  a = df__malloc(sizeof *a);
  if (!a) return DF_ENOMEM;
  memset(a, 0, sizeof *a);
  if (names && (rc = copy_buf(names, nlen, &a->nbuf))) goto failed;
  a->nlen = names ? nlen : 0;
  if (values && (rc = copy_buf(values, vlen, &a->vbuf))) goto failed;
  a->vlen = values ? vlen : 0;
  if (a->nbuf && (rc = load_names(a, err, errlen))) goto failed;
  if (a->vbuf && (rc = load_values(a, err, errlen))) goto failed;
  *out = a;
  return 0;
failed:
  if (rc == DF_ENOMEM) set_err(err, errlen, rc, "out of memory");
  df_ddb_args_free(a);
  return rc;
}

void df_ddb_args_free(df_ddb_args *a) {
  if (!a) return;
  df__free(a->names);
  df__free(a->values);
  df__free(a->nbuf);
  df__free(a->vbuf);
  df__free(a);
}

int df_ddb_args_check_unused(const df_ddb_args *a, char *err, size_t errlen) {
  size_t i, k = 0, first = 1;
  const char *what;
  if (err && errlen) err[0] = 0;
  if (!a) return DF_EINVAL;
  for (what = "Names"; what; what = what[0] == 'N' ? "Values" : NULL) {
    int names = what[0] == 'N';
    size_t n = names ? a->n_names : a->n_values;
    int any = 0;
    for (i = 0; i < n; i++)
      if (!(names ? a->names[i].used : a->values[i].used)) any = 1;
    if (!any) continue;
    if (err && errlen) {
      k = (size_t)snprintf(err, errlen,
                           "Value provided in ExpressionAttribute%s unused in "
                           "expressions: keys: {",
                           what);
      first = 1;
      for (i = 0; i < n && k + 1 < errlen; i++) {
        const char *key = names ? a->names[i].k : a->values[i].k;
        size_t kn = names ? a->names[i].kn : a->values[i].kn;
        int used = names ? a->names[i].used : a->values[i].used;
        if (used) continue;
        k += (size_t)snprintf(err + k, errlen - k, "%s%.*s", first ? "" : ", ",
                              (int)kn, key);
        first = 0;
      }
      if (k + 1 < errlen) snprintf(err + k, errlen - k, "}");
    }
    return DF_EVALIDATION;
  }
  return 0;
}

static name_ent *find_name(df_ddb_args *a, const char *k, size_t n) {
  size_t i;
  if (!a) return NULL;
  for (i = 0; i < a->n_names; i++)
    if (a->names[i].kn == n && !memcmp(a->names[i].k, k, n))
      return &a->names[i];
  return NULL;
}

static value_ent *find_value(df_ddb_args *a, const char *k, size_t n) {
  size_t i;
  if (!a) return NULL;
  for (i = 0; i < a->n_values; i++)
    if (a->values[i].kn == n && !memcmp(a->values[i].k, k, n))
      return &a->values[i];
  return NULL;
}

/* ============================================================== lexer */

enum {
  K_END,
  K_BAD, /* a character no token starts with */
  K_WORD,
  K_NAME,  /* #name */
  K_VALUE, /* :value */
  K_NUM,
  K_LP,
  K_RP,
  K_LB,
  K_RB,
  K_COMMA,
  K_DOT,
  K_EQ,
  K_NE,
  K_LT,
  K_LE,
  K_GT,
  K_GE,
  K_PLUS,
  K_MINUS
};

typedef struct token {
  int kind;
  uint32_t pos, len;
} token;

/* Cut src into tokens; the last is K_END (or K_BAD followed by one more
 * token, for the "near" text of the message). */
static int lex_all(const char *s, size_t n, token **out, size_t *count) {
  token *t = NULL;
  size_t cap = 0, used = 0, i = 0;
  int bad = 0;
  for (;;) {
    token k;
    while (i < n &&
           (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
      i++;
    k.pos = (uint32_t)i;
    k.len = 1;
    if (i >= n) {
      k.kind = K_END;
      k.len = 0;
    } else {
      unsigned char c = (unsigned char)s[i];
      unsigned char d = i + 1 < n ? (unsigned char)s[i + 1] : 0;
      if (is_alpha(c)) {
        size_t j = i + 1;
        while (j < n && is_word((unsigned char)s[j])) j++;
        k.kind = K_WORD;
        k.len = (uint32_t)(j - i);
      } else if ((c == '#' || c == ':') && is_word(d)) {
        size_t j = i + 1;
        while (j < n && is_word((unsigned char)s[j])) j++;
        k.kind = c == '#' ? K_NAME : K_VALUE;
        k.len = (uint32_t)(j - i);
      } else if (is_digit(c)) {
        size_t j = i + 1;
        while (j < n && is_digit((unsigned char)s[j])) j++;
        k.kind = K_NUM;
        k.len = (uint32_t)(j - i);
      } else {
        switch (c) {
          case '(':
            k.kind = K_LP;
            break;
          case ')':
            k.kind = K_RP;
            break;
          case '[':
            k.kind = K_LB;
            break;
          case ']':
            k.kind = K_RB;
            break;
          case ',':
            k.kind = K_COMMA;
            break;
          case '.':
            k.kind = K_DOT;
            break;
          case '=':
            k.kind = K_EQ;
            break;
          case '+':
            k.kind = K_PLUS;
            break;
          case '-':
            k.kind = K_MINUS;
            break;
          case '<':
            if (d == '>')
              k.kind = K_NE, k.len = 2;
            else if (d == '=')
              k.kind = K_LE, k.len = 2;
            else
              k.kind = K_LT;
            break;
          case '>':
            if (d == '=')
              k.kind = K_GE, k.len = 2;
            else
              k.kind = K_GT;
            break;
          default:
            k.kind = K_BAD;
            /* one whole UTF-8 character */
            if (c >= 0xc0) {
              while (i + k.len < n &&
                     ((unsigned char)s[i + k.len] & 0xc0) == 0x80 && k.len < 4)
                k.len++;
            }
            break;
        }
      }
    }
    if (df__grow(&t, &cap, used, sizeof *t)) {
      df__free(t);
      return DF_ENOMEM;
    }
    t[used++] = k;
    i = k.pos + k.len;
    if (k.kind == K_END) break;
    if (bad) break; /* the token after a bad one: enough for "near" */
    if (k.kind == K_BAD) bad = 1;
  }
  if (t[used - 1].kind != K_END) {
    /* keep a K_END sentinel after the look-ahead token */
    if (df__grow(&t, &cap, used, sizeof *t)) {
      df__free(t);
      return DF_ENOMEM;
    }
    t[used].kind = K_END;
    t[used].pos = (uint32_t)n;
    t[used].len = 0;
    used++;
  }
  *out = t;
  *count = used;
  return 0;
}

/* ========================================================= syntax tree */

enum {
  X_OR,
  X_AND,
  X_NOT,
  X_CMP,     /* op: the comparator token kind */
  X_BETWEEN, /* children: a, lo, hi */
  X_IN,      /* children: a, then the list */
  X_FUNC,    /* tok: the name; children: the arguments */
  X_PATH,    /* elems[first .. first+n): token indexes */
  X_VALUE,   /* tok */
  X_ARITH,   /* op: K_PLUS or K_MINUS; children: a, b (updates) */
  X_SET,     /* update actions: children: path, value */
  X_REMOVE,  /* child: path */
  X_ADD,     /* children: path, value */
  X_DELETE   /* children: path, value */
};

typedef struct xnode {
  int kind, op;
  uint32_t tok;      /* the token that names or starts it */
  uint32_t child;    /* first child */
  uint32_t next;     /* next sibling */
  uint32_t first, n; /* X_PATH: its elements in p->elems */
  uint32_t parens;   /* parentheses directly around it */
} xnode;

typedef struct parser {
  const char *src;
  size_t len;
  token *t;
  size_t nt, pos;
  xnode *x;
  size_t nx, capx;
  uint32_t *elems; /* path elements: token indexes */
  size_t nel, capel;
  int depth;
  int ops;  /* operators and functions seen */
  int kind; /* DF_DDB_* */
  df_ddb_args *args;
  char *err;
  size_t errlen;
  int synerr;              /* a syntax error is recorded */
  unsigned sections;       /* update sections seen (bit per X_SET..X_DELETE) */
  const char *dup_section; /* the first section given twice */
} parser;

static const char *kind_name(int kind) {
  switch (kind) {
    case DF_DDB_CONDITION:
      return "ConditionExpression";
    case DF_DDB_FILTER:
      return "FilterExpression";
    case DF_DDB_KEY_CONDITION:
      return "KeyConditionExpression";
    case DF_DDB_UPDATE:
      return "UpdateExpression";
    default:
      return "ProjectionExpression";
  }
}

static int fail(parser *p, const char *fmt, ...) DF__PRINTF(2, 3);

static int fail(parser *p, const char *fmt, ...) {
  va_list ap;
  int n;
  if (!p->err || !p->errlen) return DF_EVALIDATION;
  n = snprintf(p->err, p->errlen, "Invalid %s: ", kind_name(p->kind));
  if (n >= 0 && (size_t)n < p->errlen) {
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return DF_EVALIDATION;
}

static int nomem(parser *p) {
  set_err(p->err, p->errlen, DF_ENOMEM, "out of memory");
  return DF_ENOMEM;
}

/* DynamoDB's syntax error: the token, and the text from the token before
 * it to the token after it. */
static int syntax(parser *p) {
  size_t k = p->pos < p->nt ? p->pos : p->nt - 1;
  const token *t = &p->t[k];
  size_t from = k > 0 ? p->t[k - 1].pos : t->pos;
  size_t to = t->pos + t->len;
  char tb[80], nb[160];
  if (k + 1 < p->nt && t->kind != K_END) to = p->t[k + 1].pos + p->t[k + 1].len;
  if (t->kind == K_END) to = k > 0 ? p->t[k - 1].pos + p->t[k - 1].len : p->len;
  if (to < from) to = from;
  shown(p->src + from, to - from, nb, sizeof nb);
  if (t->kind == K_END)
    snprintf(tb, sizeof tb, "<EOF>");
  else
    shown(p->src + t->pos, t->len, tb, sizeof tb);
  return fail(p, "Syntax error; token: \"%s\", near: \"%s\"", tb, nb);
}

static const token *cur(const parser *p) {
  return &p->t[p->pos];
}

/* Is the current token the keyword w (any case)? */
static int is_kw(const parser *p, size_t k, const char *w) {
  const token *t = &p->t[k];
  size_t n = strlen(w), i;
  if (t->kind != K_WORD || t->len != n) return 0;
  for (i = 0; i < n; i++) {
    char c = p->src[t->pos + i];
    if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
    if (c != w[i]) return 0;
  }
  return 1;
}

static int is_cond_kw(const parser *p, size_t k) {
  return is_kw(p, k, "AND") || is_kw(p, k, "OR") || is_kw(p, k, "NOT") ||
         is_kw(p, k, "BETWEEN") || is_kw(p, k, "IN");
}

static int is_update_kw(const parser *p, size_t k) {
  return is_kw(p, k, "SET") || is_kw(p, k, "REMOVE") || is_kw(p, k, "ADD") ||
         is_kw(p, k, "DELETE");
}

static int is_keyword(const parser *p, size_t k) {
  return p->kind == DF_DDB_UPDATE ? is_update_kw(p, k) : is_cond_kw(p, k);
}

static int new_x(parser *p, int kind, uint32_t *out) {
  xnode *n;
  if (df__grow(&p->x, &p->capx, p->nx, sizeof *p->x)) return nomem(p);
  n = &p->x[p->nx];
  memset(n, 0, sizeof *n);
  n->kind = kind;
  n->tok = (uint32_t)p->pos;
  n->child = NONE;
  n->next = NONE;
  *out = (uint32_t)p->nx++;
  return 0;
}

/* Append child c to node n's children. */
static void adopt(parser *p, uint32_t n, uint32_t c) {
  uint32_t k = p->x[n].child;
  if (k == NONE) {
    p->x[n].child = c;
    return;
  }
  while (p->x[k].next != NONE) k = p->x[k].next;
  p->x[k].next = c;
}

static int add_elem(parser *p, uint32_t tok) {
  if (df__grow(&p->elems, &p->capel, p->nel, sizeof *p->elems)) return nomem(p);
  p->elems[p->nel++] = tok;
  return 0;
}

/* path := element { "." element | "[" number "]" } */
static int parse_path(parser *p, uint32_t *out) {
  uint32_t id;
  int rc;
  const token *t = cur(p);
  if (!((t->kind == K_WORD && !is_keyword(p, p->pos)) || t->kind == K_NAME))
    return syntax(p);
  if ((rc = new_x(p, X_PATH, &id))) return rc;
  p->x[id].first = (uint32_t)p->nel;
  if ((rc = add_elem(p, (uint32_t)p->pos))) return rc;
  p->pos++;
  for (;;) {
    t = cur(p);
    if (t->kind == K_DOT) {
      p->pos++;
      t = cur(p);
      if (!(t->kind == K_WORD || t->kind == K_NAME)) return syntax(p);
      if ((rc = add_elem(p, (uint32_t)p->pos))) return rc;
      p->pos++;
    } else if (t->kind == K_LB) {
      p->pos++;
      if (cur(p)->kind != K_NUM) return syntax(p);
      if ((rc = add_elem(p, (uint32_t)p->pos))) return rc;
      p->pos++;
      if (cur(p)->kind != K_RB) return syntax(p);
      p->pos++;
    } else {
      break;
    }
  }
  p->x[id].n = (uint32_t)(p->nel - p->x[id].first);
  *out = id;
  return 0;
}

static int parse_operand(parser *p, uint32_t *out);

/* name "(" operand { "," operand } ")"; the name is the current token. */
static int parse_call(parser *p, uint32_t *out) {
  uint32_t id, a;
  int rc;
  if ((rc = new_x(p, X_FUNC, &id))) return rc;
  p->pos += 2; /* name and "(" */
  if (++p->ops > OPS_MAX)
    return fail(p,
                "The expression has too many operators or functions; "
                "limit: %d",
                OPS_MAX);
  if (p->depth >= MAX_NEST) return syntax(p);
  p->depth++;
  for (;;) {
    if ((rc = parse_operand(p, &a))) return rc;
    adopt(p, id, a);
    if (cur(p)->kind == K_COMMA) {
      p->pos++;
      continue;
    }
    break;
  }
  p->depth--;
  if (cur(p)->kind != K_RP) return syntax(p);
  p->pos++;
  *out = id;
  return 0;
}

static int starts_call(const parser *p) {
  return cur(p)->kind == K_WORD && !is_keyword(p, p->pos) &&
         p->t[p->pos + 1].kind == K_LP;
}

/* operand := "(" operand ")" | call | :value | path, and in updates
 * operand ("+" | "-") operand at the top of a SET value. */
static int parse_operand(parser *p, uint32_t *out) {
  const token *t = cur(p);
  int rc;
  if (t->kind == K_LP) {
    if (p->depth >= MAX_NEST) return syntax(p);
    p->depth++;
    p->pos++;
    if ((rc = parse_operand(p, out))) return rc;
    p->depth--;
    if (cur(p)->kind != K_RP) return syntax(p);
    p->pos++;
    p->x[*out].parens++;
    return 0;
  }
  if (starts_call(p)) return parse_call(p, out);
  if (t->kind == K_VALUE) {
    if ((rc = new_x(p, X_VALUE, out))) return rc;
    p->pos++;
    return 0;
  }
  return parse_path(p, out);
}

static int is_comparator(int k) {
  return k == K_EQ || k == K_NE || k == K_LT || k == K_LE || k == K_GT ||
         k == K_GE;
}

static int parse_or(parser *p, uint32_t *out);

/* comparison := operand cmp operand | operand BETWEEN operand AND operand
 *             | operand IN "(" operand {"," operand} ")" | call */
static int parse_comparison(parser *p, uint32_t *out) {
  uint32_t a, b, c, id;
  int rc, n;
  if ((rc = parse_operand(p, &a))) return rc;
  if (is_comparator(cur(p)->kind)) {
    if ((rc = new_x(p, X_CMP, &id))) return rc;
    p->x[id].op = cur(p)->kind;
    p->pos++;
    if ((rc = parse_operand(p, &b))) return rc;
    adopt(p, id, a);
    adopt(p, id, b);
  } else if (is_kw(p, p->pos, "BETWEEN")) {
    if ((rc = new_x(p, X_BETWEEN, &id))) return rc;
    p->pos++;
    if ((rc = parse_operand(p, &b))) return rc;
    if (!is_kw(p, p->pos, "AND")) return syntax(p);
    p->pos++;
    if ((rc = parse_operand(p, &c))) return rc;
    adopt(p, id, a);
    adopt(p, id, b);
    adopt(p, id, c);
  } else if (is_kw(p, p->pos, "IN")) {
    if ((rc = new_x(p, X_IN, &id))) return rc;
    p->pos++;
    if (cur(p)->kind != K_LP) return syntax(p);
    p->pos++;
    adopt(p, id, a);
    for (n = 0;; n++) {
      if ((rc = parse_operand(p, &b))) return rc;
      adopt(p, id, b);
      if (cur(p)->kind != K_COMMA) break;
      p->pos++;
    }
    if (cur(p)->kind != K_RP) return syntax(p);
    p->pos++;
    if (n + 1 > IN_MAX)
      return fail(p,
                  "The IN operator is provided with too many operands; "
                  "number of operands: %d",
                  n + 1);
  } else if (p->x[a].kind == X_FUNC && p->x[a].parens == 0) {
    *out = a;
    return 0;
  } else {
    return syntax(p);
  }
  if (++p->ops > OPS_MAX)
    return fail(p,
                "The expression has too many operators or functions; "
                "limit: %d",
                OPS_MAX);
  *out = id;
  return 0;
}

static int parse_primary(parser *p, uint32_t *out) {
  if (cur(p)->kind == K_LP) {
    /* "(" condition ")" unless it turns out to be a parenthesised
     * operand of a comparison: try the condition first. */
    size_t save = p->pos, nx = p->nx, nel = p->nel;
    int ops = p->ops, rc;
    char saved_err = p->err && p->errlen ? p->err[0] : 0;
    if (p->depth >= MAX_NEST) return syntax(p);
    p->depth++;
    p->pos++;
    rc = parse_or(p, out);
    if (rc == 0 && cur(p)->kind == K_RP) {
      size_t after = p->pos + 1;
      if (!is_comparator(p->t[after].kind) && !is_kw(p, after, "BETWEEN") &&
          !is_kw(p, after, "IN")) {
        p->pos++;
        p->depth--;
        p->x[*out].parens++;
        return 0;
      }
    }
    if (rc == DF_ENOMEM) return rc;
    p->depth--;
    p->pos = save;
    p->nx = nx;
    p->nel = nel;
    p->ops = ops;
    if (p->err && p->errlen) p->err[0] = saved_err;
  }
  return parse_comparison(p, out);
}

static int parse_not(parser *p, uint32_t *out) {
  uint32_t id, c;
  int rc;
  if (is_kw(p, p->pos, "NOT")) {
    if (p->depth >= MAX_NEST) return syntax(p);
    if ((rc = new_x(p, X_NOT, &id))) return rc;
    p->pos++;
    p->depth++;
    if ((rc = parse_not(p, &c))) return rc;
    p->depth--;
    adopt(p, id, c);
    if (++p->ops > OPS_MAX)
      return fail(p,
                  "The expression has too many operators or functions; "
                  "limit: %d",
                  OPS_MAX);
    *out = id;
    return 0;
  }
  return parse_primary(p, out);
}

static int parse_list(parser *p, int kind, uint32_t *out) {
  const char *kw = kind == X_OR ? "OR" : "AND";
  uint32_t first, nx, grp = NONE;
  int rc = kind == X_OR ? parse_list(p, X_AND, &first) : parse_not(p, &first);
  if (rc) return rc;
  while (is_kw(p, p->pos, kw)) {
    p->pos++;
    rc = kind == X_OR ? parse_list(p, X_AND, &nx) : parse_not(p, &nx);
    if (rc) return rc;
    if (grp == NONE) {
      if ((rc = new_x(p, kind, &grp))) return rc;
      adopt(p, grp, first);
    }
    adopt(p, grp, nx);
    if (++p->ops > OPS_MAX)
      return fail(p,
                  "The expression has too many operators or functions; "
                  "limit: %d",
                  OPS_MAX);
  }
  *out = grp == NONE ? first : grp;
  return 0;
}

static int parse_or(parser *p, uint32_t *out) {
  return parse_list(p, X_OR, out);
}

/* projection := path { "," path } */
static int parse_projection(parser *p, uint32_t *out) {
  uint32_t id, a;
  int rc;
  if ((rc = new_x(p, X_AND, &id))) return rc;
  for (;;) {
    if ((rc = parse_path(p, &a))) return rc;
    adopt(p, id, a);
    if (cur(p)->kind != K_COMMA) break;
    p->pos++;
  }
  *out = id;
  return 0;
}

/* A SET value: operand [("+" | "-") operand], optionally in parentheses. */
static int parse_set_value(parser *p, uint32_t *out) {
  uint32_t a, b, id;
  int rc;
  if ((rc = parse_operand(p, &a))) return rc;
  if (cur(p)->kind != K_PLUS && cur(p)->kind != K_MINUS) {
    *out = a;
    return 0;
  }
  if ((rc = new_x(p, X_ARITH, &id))) return rc;
  p->x[id].op = cur(p)->kind;
  p->pos++;
  if ((rc = parse_operand(p, &b))) return rc;
  adopt(p, id, a);
  adopt(p, id, b);
  if (++p->ops > OPS_MAX)
    return fail(p,
                "The expression has too many operators or functions; "
                "limit: %d",
                OPS_MAX);
  *out = id;
  return 0;
}

/* update := section { section }; section := SET set {"," set}
 *   | REMOVE path {"," path} | ADD path value {"," path value}
 *   | DELETE path value {"," ...} */
static int parse_update(parser *p, uint32_t *out) {
  uint32_t root, act, a, b;
  int rc, kind;
  if ((rc = new_x(p, X_AND, &root))) return rc;
  do {
    if (is_kw(p, p->pos, "SET"))
      kind = X_SET;
    else if (is_kw(p, p->pos, "REMOVE"))
      kind = X_REMOVE;
    else if (is_kw(p, p->pos, "ADD"))
      kind = X_ADD;
    else if (is_kw(p, p->pos, "DELETE"))
      kind = X_DELETE;
    else
      return syntax(p);
    if (p->sections & (1u << (kind - X_SET))) {
      if (!p->dup_section)
        p->dup_section = kind == X_SET      ? "SET"
                         : kind == X_REMOVE ? "REMOVE"
                         : kind == X_ADD    ? "ADD"
                                            : "DELETE";
    }
    p->sections |= 1u << (kind - X_SET);
    p->pos++;
    for (;;) {
      if ((rc = new_x(p, kind, &act))) return rc;
      if ((rc = parse_path(p, &a))) return rc;
      adopt(p, act, a);
      if (kind == X_SET) {
        if (cur(p)->kind != K_EQ) return syntax(p);
        p->pos++;
        if (cur(p)->kind == K_LP && !starts_call(p)) {
          /* "(" value ")" */
          p->pos++;
          if ((rc = parse_set_value(p, &b))) return rc;
          if (cur(p)->kind != K_RP) return syntax(p);
          p->pos++;
        } else if ((rc = parse_set_value(p, &b))) {
          return rc;
        }
        adopt(p, act, b);
      } else if (kind == X_ADD || kind == X_DELETE) {
        if (cur(p)->kind != K_VALUE) return syntax(p);
        if ((rc = new_x(p, X_VALUE, &b))) return rc;
        p->pos++;
        adopt(p, act, b);
      }
      adopt(p, root, act);
      if (cur(p)->kind != K_COMMA) break;
      p->pos++;
    }
  } while (cur(p)->kind != K_END);
  *out = root;
  return 0;
}

/* ============================================================ checking */

/* DynamoDB's reserved words (its documentation's list), sorted. */
static const char *const reserved[] = {"ABORT",
                                       "ABSOLUTE",
                                       "ACTION",
                                       "ADD",
                                       "AFTER",
                                       "AGENT",
                                       "AGGREGATE",
                                       "ALL",
                                       "ALLOCATE",
                                       "ALTER",
                                       "ANALYZE",
                                       "AND",
                                       "ANY",
                                       "ARCHIVE",
                                       "ARE",
                                       "ARRAY",
                                       "AS",
                                       "ASC",
                                       "ASCII",
                                       "ASENSITIVE",
                                       "ASSERTION",
                                       "ASYMMETRIC",
                                       "AT",
                                       "ATOMIC",
                                       "ATTACH",
                                       "ATTRIBUTE",
                                       "AUTH",
                                       "AUTHORIZATION",
                                       "AUTHORIZE",
                                       "AUTO",
                                       "AVG",
                                       "BACK",
                                       "BACKUP",
                                       "BASE",
                                       "BATCH",
                                       "BEFORE",
                                       "BEGIN",
                                       "BETWEEN",
                                       "BIGINT",
                                       "BINARY",
                                       "BIT",
                                       "BLOB",
                                       "BLOCK",
                                       "BOOLEAN",
                                       "BOTH",
                                       "BREADTH",
                                       "BUCKET",
                                       "BULK",
                                       "BY",
                                       "BYTE",
                                       "CALL",
                                       "CALLED",
                                       "CALLING",
                                       "CAPACITY",
                                       "CASCADE",
                                       "CASCADED",
                                       "CASE",
                                       "CAST",
                                       "CATALOG",
                                       "CHAR",
                                       "CHARACTER",
                                       "CHECK",
                                       "CLASS",
                                       "CLOB",
                                       "CLOSE",
                                       "CLUSTER",
                                       "CLUSTERED",
                                       "CLUSTERING",
                                       "CLUSTERS",
                                       "COALESCE",
                                       "COLLATE",
                                       "COLLATION",
                                       "COLLECTION",
                                       "COLUMN",
                                       "COLUMNS",
                                       "COMBINE",
                                       "COMMENT",
                                       "COMMIT",
                                       "COMPACT",
                                       "COMPILE",
                                       "COMPRESS",
                                       "CONDITION",
                                       "CONFLICT",
                                       "CONNECT",
                                       "CONNECTION",
                                       "CONSISTENCY",
                                       "CONSISTENT",
                                       "CONSTRAINT",
                                       "CONSTRAINTS",
                                       "CONSTRUCTOR",
                                       "CONSUMED",
                                       "CONTINUE",
                                       "CONVERT",
                                       "COPY",
                                       "CORRESPONDING",
                                       "COUNT",
                                       "COUNTER",
                                       "CREATE",
                                       "CROSS",
                                       "CUBE",
                                       "CURRENT",
                                       "CURSOR",
                                       "CYCLE",
                                       "DATA",
                                       "DATABASE",
                                       "DATE",
                                       "DATETIME",
                                       "DAY",
                                       "DEALLOCATE",
                                       "DEC",
                                       "DECIMAL",
                                       "DECLARE",
                                       "DEFAULT",
                                       "DEFERRABLE",
                                       "DEFERRED",
                                       "DEFINE",
                                       "DEFINED",
                                       "DEFINITION",
                                       "DELETE",
                                       "DELIMITED",
                                       "DEPTH",
                                       "DEREF",
                                       "DESC",
                                       "DESCRIBE",
                                       "DESCRIPTOR",
                                       "DETACH",
                                       "DETERMINISTIC",
                                       "DIAGNOSTICS",
                                       "DIRECTORIES",
                                       "DISABLE",
                                       "DISCONNECT",
                                       "DISTINCT",
                                       "DISTRIBUTE",
                                       "DO",
                                       "DOMAIN",
                                       "DOUBLE",
                                       "DROP",
                                       "DUMP",
                                       "DURATION",
                                       "DYNAMIC",
                                       "EACH",
                                       "ELEMENT",
                                       "ELSE",
                                       "ELSEIF",
                                       "EMPTY",
                                       "ENABLE",
                                       "END",
                                       "EQUAL",
                                       "EQUALS",
                                       "ERROR",
                                       "ESCAPE",
                                       "ESCAPED",
                                       "EVAL",
                                       "EVALUATE",
                                       "EXCEEDED",
                                       "EXCEPT",
                                       "EXCEPTION",
                                       "EXCEPTIONS",
                                       "EXCLUSIVE",
                                       "EXEC",
                                       "EXECUTE",
                                       "EXISTS",
                                       "EXIT",
                                       "EXPLAIN",
                                       "EXPLODE",
                                       "EXPORT",
                                       "EXPRESSION",
                                       "EXTENDED",
                                       "EXTERNAL",
                                       "EXTRACT",
                                       "FAIL",
                                       "FALSE",
                                       "FAMILY",
                                       "FETCH",
                                       "FIELDS",
                                       "FILE",
                                       "FILTER",
                                       "FILTERING",
                                       "FINAL",
                                       "FINISH",
                                       "FIRST",
                                       "FIXED",
                                       "FLATTERN",
                                       "FLOAT",
                                       "FOR",
                                       "FORCE",
                                       "FOREIGN",
                                       "FORMAT",
                                       "FORWARD",
                                       "FOUND",
                                       "FREE",
                                       "FROM",
                                       "FULL",
                                       "FUNCTION",
                                       "FUNCTIONS",
                                       "GENERAL",
                                       "GENERATE",
                                       "GET",
                                       "GLOB",
                                       "GLOBAL",
                                       "GO",
                                       "GOTO",
                                       "GRANT",
                                       "GREATER",
                                       "GROUP",
                                       "GROUPING",
                                       "HANDLER",
                                       "HASH",
                                       "HAVE",
                                       "HAVING",
                                       "HEAP",
                                       "HIDDEN",
                                       "HOLD",
                                       "HOUR",
                                       "IDENTIFIED",
                                       "IDENTITY",
                                       "IF",
                                       "IGNORE",
                                       "IMMEDIATE",
                                       "IMPORT",
                                       "IN",
                                       "INCLUDING",
                                       "INCLUSIVE",
                                       "INCREMENT",
                                       "INCREMENTAL",
                                       "INDEX",
                                       "INDEXED",
                                       "INDEXES",
                                       "INDICATOR",
                                       "INFINITE",
                                       "INITIALLY",
                                       "INLINE",
                                       "INNER",
                                       "INNTER",
                                       "INOUT",
                                       "INPUT",
                                       "INSENSITIVE",
                                       "INSERT",
                                       "INSTEAD",
                                       "INT",
                                       "INTEGER",
                                       "INTERSECT",
                                       "INTERVAL",
                                       "INTO",
                                       "INVALIDATE",
                                       "IS",
                                       "ISOLATION",
                                       "ITEM",
                                       "ITEMS",
                                       "ITERATE",
                                       "JOIN",
                                       "KEY",
                                       "KEYS",
                                       "LAG",
                                       "LANGUAGE",
                                       "LARGE",
                                       "LAST",
                                       "LATERAL",
                                       "LEAD",
                                       "LEADING",
                                       "LEAVE",
                                       "LEFT",
                                       "LENGTH",
                                       "LESS",
                                       "LEVEL",
                                       "LIKE",
                                       "LIMIT",
                                       "LIMITED",
                                       "LINES",
                                       "LIST",
                                       "LOAD",
                                       "LOCAL",
                                       "LOCALTIME",
                                       "LOCALTIMESTAMP",
                                       "LOCATION",
                                       "LOCATOR",
                                       "LOCK",
                                       "LOCKS",
                                       "LOG",
                                       "LOGED",
                                       "LONG",
                                       "LOOP",
                                       "LOWER",
                                       "MAP",
                                       "MATCH",
                                       "MATERIALIZED",
                                       "MAX",
                                       "MAXLEN",
                                       "MEMBER",
                                       "MERGE",
                                       "METHOD",
                                       "METRICS",
                                       "MIN",
                                       "MINUS",
                                       "MINUTE",
                                       "MISSING",
                                       "MOD",
                                       "MODE",
                                       "MODIFIES",
                                       "MODIFY",
                                       "MODULE",
                                       "MONTH",
                                       "MULTI",
                                       "MULTISET",
                                       "NAME",
                                       "NAMES",
                                       "NATIONAL",
                                       "NATURAL",
                                       "NCHAR",
                                       "NCLOB",
                                       "NEW",
                                       "NEXT",
                                       "NO",
                                       "NONE",
                                       "NOT",
                                       "NULL",
                                       "NULLIF",
                                       "NUMBER",
                                       "NUMERIC",
                                       "OBJECT",
                                       "OF",
                                       "OFFLINE",
                                       "OFFSET",
                                       "OLD",
                                       "ON",
                                       "ONLINE",
                                       "ONLY",
                                       "OPAQUE",
                                       "OPEN",
                                       "OPERATOR",
                                       "OPTION",
                                       "OR",
                                       "ORDER",
                                       "ORDINALITY",
                                       "OTHER",
                                       "OTHERS",
                                       "OUT",
                                       "OUTER",
                                       "OUTPUT",
                                       "OVER",
                                       "OVERLAPS",
                                       "OVERRIDE",
                                       "OWNER",
                                       "PAD",
                                       "PARALLEL",
                                       "PARAMETER",
                                       "PARAMETERS",
                                       "PARTIAL",
                                       "PARTITION",
                                       "PARTITIONED",
                                       "PARTITIONS",
                                       "PATH",
                                       "PERCENT",
                                       "PERCENTILE",
                                       "PERMISSION",
                                       "PERMISSIONS",
                                       "PIPE",
                                       "PIPELINED",
                                       "PLAN",
                                       "POOL",
                                       "POSITION",
                                       "PRECISION",
                                       "PREPARE",
                                       "PRESERVE",
                                       "PRIMARY",
                                       "PRIOR",
                                       "PRIVATE",
                                       "PRIVILEGES",
                                       "PROCEDURE",
                                       "PROCESSED",
                                       "PROJECT",
                                       "PROJECTION",
                                       "PROPERTY",
                                       "PROVISIONING",
                                       "PUBLIC",
                                       "PUT",
                                       "QUERY",
                                       "QUIT",
                                       "QUORUM",
                                       "RAISE",
                                       "RANDOM",
                                       "RANGE",
                                       "RANK",
                                       "RAW",
                                       "READ",
                                       "READS",
                                       "REAL",
                                       "REBUILD",
                                       "RECORD",
                                       "RECURSIVE",
                                       "REDUCE",
                                       "REF",
                                       "REFERENCE",
                                       "REFERENCES",
                                       "REFERENCING",
                                       "REGEXP",
                                       "REGION",
                                       "REINDEX",
                                       "RELATIVE",
                                       "RELEASE",
                                       "REMAINDER",
                                       "RENAME",
                                       "REPEAT",
                                       "REPLACE",
                                       "REQUEST",
                                       "RESET",
                                       "RESIGNAL",
                                       "RESOURCE",
                                       "RESPONSE",
                                       "RESTORE",
                                       "RESTRICT",
                                       "RESULT",
                                       "RETURN",
                                       "RETURNING",
                                       "RETURNS",
                                       "REVERSE",
                                       "REVOKE",
                                       "RIGHT",
                                       "ROLE",
                                       "ROLES",
                                       "ROLLBACK",
                                       "ROLLUP",
                                       "ROUTINE",
                                       "ROW",
                                       "ROWS",
                                       "RULE",
                                       "RULES",
                                       "SAMPLE",
                                       "SATISFIES",
                                       "SAVE",
                                       "SAVEPOINT",
                                       "SCAN",
                                       "SCHEMA",
                                       "SCOPE",
                                       "SCROLL",
                                       "SEARCH",
                                       "SECOND",
                                       "SECTION",
                                       "SEGMENT",
                                       "SEGMENTS",
                                       "SELECT",
                                       "SELF",
                                       "SEMI",
                                       "SENSITIVE",
                                       "SEPARATE",
                                       "SEQUENCE",
                                       "SERIALIZABLE",
                                       "SESSION",
                                       "SET",
                                       "SETS",
                                       "SHARD",
                                       "SHARE",
                                       "SHARED",
                                       "SHORT",
                                       "SHOW",
                                       "SIGNAL",
                                       "SIMILAR",
                                       "SIZE",
                                       "SKEWED",
                                       "SMALLINT",
                                       "SNAPSHOT",
                                       "SOME",
                                       "SOURCE",
                                       "SPACE",
                                       "SPACES",
                                       "SPARSE",
                                       "SPECIFIC",
                                       "SPECIFICTYPE",
                                       "SPLIT",
                                       "SQL",
                                       "SQLCODE",
                                       "SQLERROR",
                                       "SQLEXCEPTION",
                                       "SQLSTATE",
                                       "SQLWARNING",
                                       "START",
                                       "STATE",
                                       "STATIC",
                                       "STATUS",
                                       "STORAGE",
                                       "STORE",
                                       "STORED",
                                       "STREAM",
                                       "STRING",
                                       "STRUCT",
                                       "STYLE",
                                       "SUB",
                                       "SUBMULTISET",
                                       "SUBPARTITION",
                                       "SUBSTRING",
                                       "SUBTYPE",
                                       "SUM",
                                       "SUPER",
                                       "SYMMETRIC",
                                       "SYNONYM",
                                       "SYSTEM",
                                       "TABLE",
                                       "TABLESAMPLE",
                                       "TEMP",
                                       "TEMPORARY",
                                       "TERMINATED",
                                       "TEXT",
                                       "THAN",
                                       "THEN",
                                       "THROUGHPUT",
                                       "TIME",
                                       "TIMESTAMP",
                                       "TIMEZONE",
                                       "TINYINT",
                                       "TO",
                                       "TOKEN",
                                       "TOTAL",
                                       "TOUCH",
                                       "TRAILING",
                                       "TRANSACTION",
                                       "TRANSFORM",
                                       "TRANSLATE",
                                       "TRANSLATION",
                                       "TREAT",
                                       "TRIGGER",
                                       "TRIM",
                                       "TRUE",
                                       "TRUNCATE",
                                       "TTL",
                                       "TUPLE",
                                       "TYPE",
                                       "UNDER",
                                       "UNDO",
                                       "UNION",
                                       "UNIQUE",
                                       "UNIT",
                                       "UNKNOWN",
                                       "UNLOGGED",
                                       "UNNEST",
                                       "UNPROCESSED",
                                       "UNSIGNED",
                                       "UNTIL",
                                       "UPDATE",
                                       "UPPER",
                                       "URL",
                                       "USAGE",
                                       "USE",
                                       "USER",
                                       "USERS",
                                       "USING",
                                       "UUID",
                                       "VACUUM",
                                       "VALUE",
                                       "VALUED",
                                       "VALUES",
                                       "VARCHAR",
                                       "VARIABLE",
                                       "VARIANCE",
                                       "VARINT",
                                       "VARYING",
                                       "VIEW",
                                       "VIEWS",
                                       "VIRTUAL",
                                       "VOID",
                                       "WAIT",
                                       "WHEN",
                                       "WHENEVER",
                                       "WHERE",
                                       "WHILE",
                                       "WINDOW",
                                       "WITH",
                                       "WITHIN",
                                       "WITHOUT",
                                       "WORK",
                                       "WRAPPED",
                                       "WRITE",
                                       "YEAR",
                                       "ZONE"};

int df__ddb_is_reserved(const char *s, size_t n) {
  char up[32];
  size_t i, lo = 0, hi = sizeof reserved / sizeof reserved[0];
  if (n == 0 || n >= sizeof up) return 0;
  for (i = 0; i < n; i++) {
    char c = s[i];
    up[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
  }
  up[n] = 0;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(up, reserved[mid]);
    if (c == 0) return 1;
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return 0;
}

/* Error categories, in the order DynamoDB reports them. */
enum {
  E_PARENS,
  E_FUNCTION_NAME,
  E_MISUSED,
  E_RESERVED,
  E_SECTION,
  E_UNDEFINED,
  E_OVERLAP,
  E_OPERANDS,
  E_DISTINCT,
  E_TYPE,
  E_COUNT
};

typedef struct checker {
  parser *p;
  char msg[E_COUNT][320];
  int has[E_COUNT];
} checker;

static void note(checker *c, int cat, const char *fmt, ...) DF__PRINTF(3, 4);

static void note(checker *c, int cat, const char *fmt, ...) {
  va_list ap;
  /* DynamoDB refuses redundant parentheses in conditions, filters and
   * updates, but takes them in a KeyConditionExpression. */
  if (cat == E_PARENS && c->p->kind == DF_DDB_KEY_CONDITION) return;
  if (c->has[cat]) return;
  c->has[cat] = 1;
  va_start(ap, fmt);
  vsnprintf(c->msg[cat], sizeof c->msg[cat], fmt, ap);
  va_end(ap);
}

static const token *tok_of(const parser *p, uint32_t k) {
  return &p->t[k];
}

static const char *tok_text(const parser *p, uint32_t k, char *buf,
                            size_t cap) {
  return shown(p->src + p->t[k].pos, p->t[k].len, buf, cap);
}

static int tok_is(const parser *p, uint32_t k, const char *w) {
  const token *t = tok_of(p, k);
  return t->len == strlen(w) && !memcmp(p->src + t->pos, w, t->len);
}

static uint32_t nth_child(const parser *p, uint32_t n, int i) {
  uint32_t k = p->x[n].child;
  while (k != NONE && i-- > 0) k = p->x[k].next;
  return k;
}

static int child_count(const parser *p, uint32_t n) {
  int c = 0;
  uint32_t k;
  for (k = p->x[n].child; k != NONE; k = p->x[k].next) c++;
  return c;
}

/* The DynamoDB type name of a value. */
static const char *value_type(const df_value *v) {
  switch (v->type) {
    case DF_TSTR:
      return "S";
    case DF_TINT:
    case DF_TUINT:
    case DF_TFLOAT:
    case DF_TDECIMAL:
      return "N";
    case DF_TBIN:
      return "B";
    case DF_TSS:
      return "SS";
    case DF_TNS:
      return "NS";
    case DF_TBS:
      return "BS";
    case DF_TBOOL:
      return "BOOL";
    case DF_TNIL:
      return "NULL";
    case DF_TARRAY:
      return "L";
    case DF_TMAP:
      return "M";
    default:
      return "?";
  }
}

/* The value behind an X_VALUE node, or NULL when undefined. */
static value_ent *value_of(parser *p, uint32_t n) {
  const token *t = tok_of(p, p->x[n].tok);
  return find_value(p->args, p->src + t->pos, t->len);
}

/* A path's spelling for messages: [a, b, [2]]. */
static void path_text(parser *p, uint32_t n, char *out, size_t cap) {
  size_t k = 0, i;
  k += (size_t)snprintf(out, cap, "[");
  for (i = 0; i < p->x[n].n && k + 1 < cap; i++) {
    uint32_t tk = p->elems[p->x[n].first + i];
    const token *t = tok_of(p, tk);
    const char *s = p->src + t->pos;
    size_t len = t->len;
    if (t->kind == K_NAME) {
      name_ent *ne = find_name(p->args, s, len);
      if (ne) s = ne->v, len = ne->vn;
    }
    k += (size_t)snprintf(out + k, cap - k,
                          t->kind == K_NUM ? "%s[%.*s]" : "%s%.*s",
                          i ? ", " : "", (int)(len > 64 ? 64 : len), s);
  }
  if (k + 1 < cap) snprintf(out + k, cap - k, "]");
}

static void check_path(checker *c, uint32_t n) {
  parser *p = c->p;
  size_t i;
  char b[80];
  if (p->x[n].parens > 1)
    note(c, E_PARENS, "The expression has redundant parentheses;");
  if (p->x[n].n > DF_MAX_DEPTH)
    note(c, E_OPERANDS,
         "The document path has too many nesting levels; nesting levels: %u",
         (unsigned)p->x[n].n);
  for (i = 0; i < p->x[n].n; i++) {
    uint32_t tk = p->elems[p->x[n].first + i];
    const token *t = tok_of(p, tk);
    if (t->kind == K_WORD && df__ddb_is_reserved(p->src + t->pos, t->len))
      note(c, E_RESERVED,
           "Attribute name is a reserved keyword; reserved keyword: %s",
           tok_text(p, tk, b, sizeof b));
    if (t->kind == K_NAME) {
      name_ent *ne = find_name(p->args, p->src + t->pos, t->len);
      if (!ne)
        note(c, E_UNDEFINED,
             "An expression attribute name used in the document path is not "
             "defined; attribute name: %s",
             tok_text(p, tk, b, sizeof b));
      else
        ne->used = 1;
    }
    if (t->kind == K_NUM &&
        (t->len > 10 || strtoull(p->src + t->pos, NULL, 10) > 0xffffffffu))
      note(c, E_OPERANDS, "List index is too large; index: %s",
           tok_text(p, tk, b, sizeof b));
  }
}

static void check_value(checker *c, uint32_t n) {
  parser *p = c->p;
  char b[80];
  value_ent *v = value_of(p, n);
  if (p->x[n].parens > 1)
    note(c, E_PARENS, "The expression has redundant parentheses;");
  if (!v)
    note(c, E_UNDEFINED,
         "An expression attribute value used in expression is not defined; "
         "attribute value: %s",
         tok_text(p, p->x[n].tok, b, sizeof b));
  else
    v->used = 1;
}

/* Two operands are the same document path. */
static int same_path(parser *p, uint32_t a, uint32_t b) {
  uint32_t i;
  if (p->x[a].kind != X_PATH || p->x[b].kind != X_PATH ||
      p->x[a].n != p->x[b].n)
    return 0;
  for (i = 0; i < p->x[a].n; i++) {
    const token *x = tok_of(p, p->elems[p->x[a].first + i]);
    const token *y = tok_of(p, p->elems[p->x[b].first + i]);
    if (x->len != y->len || memcmp(p->src + x->pos, p->src + y->pos, x->len))
      return 0;
  }
  return 1;
}

static const char *cmp_text(int k) {
  switch (k) {
    case K_EQ:
      return "=";
    case K_NE:
      return "<>";
    case K_LT:
      return "<";
    case K_LE:
      return "<=";
    case K_GT:
      return ">";
    default:
      return ">=";
  }
}

static void check_operand(checker *c, uint32_t n, int as_condition);

/* The type of a literal operand, NULL for paths and functions. */
static const df_value *literal(parser *p, uint32_t n) {
  value_ent *v;
  if (p->x[n].kind != X_VALUE) return NULL;
  v = value_of(p, n);
  return v ? &v->v : NULL;
}

static void check_function(checker *c, uint32_t n, int as_condition) {
  parser *p = c->p;
  uint32_t k, a0, a1;
  char name[80], pb[400];
  int argc = child_count(p, n);
  static const struct {
    const char *name;
    int argc, cond;
  } fns[] = {{"attribute_exists", 1, 1}, {"attribute_not_exists", 1, 1},
             {"attribute_type", 2, 1},   {"begins_with", 2, 1},
             {"contains", 2, 1},         {"size", 1, 0}};
  int i, want = -1, cond = 0;
  tok_text(p, p->x[n].tok, name, sizeof name);
  if (p->x[n].parens > 1)
    note(c, E_PARENS, "The expression has redundant parentheses;");
  for (i = 0; i < (int)(sizeof fns / sizeof fns[0]); i++)
    if (tok_is(p, p->x[n].tok, fns[i].name)) {
      want = fns[i].argc;
      cond = fns[i].cond;
    }
  if (p->kind == DF_DDB_UPDATE) {
    if (tok_is(p, p->x[n].tok, "if_not_exists") ||
        tok_is(p, p->x[n].tok, "list_append")) {
      want = 2;
      cond = 0;
    } else {
      want = -1;
    }
  }
  for (k = p->x[n].child; k != NONE; k = p->x[k].next) check_operand(c, k, 0);
  if (want < 0) {
    note(c, E_FUNCTION_NAME, "Invalid function name; function: %s", name);
    return;
  }
  if (cond != as_condition)
    note(c, E_MISUSED,
         "The function is not allowed to be used this way in an expression; "
         "function: %s",
         name);
  if (argc != want) {
    note(c, E_OPERANDS,
         "Incorrect number of operands for operator or function; operator or "
         "function: %s, number of operands: %d",
         name, argc);
    return;
  }
  a0 = nth_child(p, n, 0);
  a1 = nth_child(p, n, 1);
  if ((tok_is(p, p->x[n].tok, "attribute_exists") ||
       tok_is(p, p->x[n].tok, "attribute_not_exists") ||
       tok_is(p, p->x[n].tok, "attribute_type") ||
       tok_is(p, p->x[n].tok, "size") ||
       tok_is(p, p->x[n].tok, "if_not_exists")) &&
      p->x[a0].kind != X_PATH)
    note(c, E_OPERANDS,
         "Operator or function requires a document path; operator or "
         "function: %s",
         name);
  if (argc == 2 && same_path(p, a0, a1) &&
      !tok_is(p, p->x[n].tok, "list_append")) {
    path_text(p, a0, pb, sizeof pb);
    note(c, E_DISTINCT,
         "The first operand must be distinct from the remaining operands for "
         "this operator or function; operator: %s, first operand: %s",
         name, pb);
  }
  if (tok_is(p, p->x[n].tok, "begins_with")) {
    for (k = p->x[n].child; k != NONE; k = p->x[k].next) {
      const df_value *v = literal(p, k);
      if (v && v->type != DF_TSTR && v->type != DF_TBIN)
        note(c, E_TYPE,
             "Incorrect operand type for operator or function; operator or "
             "function: begins_with, operand type: %s",
             value_type(v));
    }
  } else if (tok_is(p, p->x[n].tok, "attribute_type")) {
    const df_value *v = literal(p, a1);
    static const char *types[] = {"S", "N", "B",  "BOOL", "NULL",
                                  "M", "L", "SS", "NS",   "BS"};
    int ok = 0;
    if (v && v->type == DF_TSTR) {
      for (i = 0; i < 10; i++)
        if (v->n == strlen(types[i]) && !memcmp(v->s, types[i], v->n)) ok = 1;
      if (!ok)
        note(c, E_TYPE,
             "Invalid attribute type name found; type: %.*s, valid types: "
             "{B,NULL,SS,BOOL,L,BS,N,NS,S,M}",
             (int)(v->n > 64 ? 64 : v->n), v->s);
    } else if (v || p->x[a1].kind != X_VALUE) {
      note(c, E_TYPE,
           "Incorrect operand type for operator or function; operator or "
           "function: attribute_type, operand type: %s",
           v ? value_type(v) : "{NS,SS,L,BS,N,M,B,BOOL,NULL,S}");
    }
  } else if (tok_is(p, p->x[n].tok, "list_append")) {
    for (k = p->x[n].child; k != NONE; k = p->x[k].next) {
      const df_value *v = literal(p, k);
      if (v && v->type != DF_TARRAY)
        note(c, E_TYPE,
             "Incorrect operand type for operator or function; operator or "
             "function: list_append, operand type: %s",
             value_type(v));
    }
  }
}

/* as_condition: the node stands where a condition is expected. */
static void check_operand(checker *c, uint32_t n, int as_condition) {
  parser *p = c->p;
  switch (p->x[n].kind) {
    case X_PATH:
      check_path(c, n);
      break;
    case X_VALUE:
      check_value(c, n);
      break;
    case X_FUNC:
      check_function(c, n, as_condition);
      break;
    case X_ARITH: {
      uint32_t k;
      for (k = p->x[n].child; k != NONE; k = p->x[k].next) {
        const df_value *v = literal(p, k);
        check_operand(c, k, 0);
        if (v && v->type != DF_TINT && v->type != DF_TUINT &&
            v->type != DF_TFLOAT && v->type != DF_TDECIMAL)
          note(c, E_TYPE,
               "Incorrect operand type for operator or function; operator or "
               "function: %s, operand type: %s",
               p->x[n].op == K_PLUS ? "+" : "-", value_type(v));
      }
      break;
    }
    default:
      break;
  }
}

/* Order operators accept S, N and B constants. */
static void check_order_operand(checker *c, int op, uint32_t n) {
  const df_value *v = literal(c->p, n);
  if (v && v->type != DF_TSTR && v->type != DF_TBIN && v->type != DF_TINT &&
      v->type != DF_TUINT && v->type != DF_TFLOAT && v->type != DF_TDECIMAL)
    note(c, E_TYPE,
         "Incorrect operand type for operator or function; operator or "
         "function: %s, operand type: %s",
         op < 0 ? "BETWEEN" : cmp_text(op), value_type(v));
}

/* A constant's text for BETWEEN messages: {N:5} */
static void value_text(const df_value *v, char *out, size_t cap) {
  switch (v->type) {
    case DF_TSTR:
    case DF_TBIN:
      snprintf(out, cap, "{%s:%.*s}", value_type(v),
               (int)(v->n > 64 ? 64 : v->n), v->s);
      break;
    case DF_TINT:
      snprintf(out, cap, "{N:%lld}", (long long)v->i);
      break;
    case DF_TUINT:
      snprintf(out, cap, "{N:%llu}", (unsigned long long)v->u);
      break;
    case DF_TFLOAT:
      snprintf(out, cap, "{N:%.17g}", v->f);
      break;
    default:
      snprintf(out, cap, "{%s}", value_type(v));
  }
}

static void check_cond(checker *c, uint32_t n) {
  parser *p = c->p;
  uint32_t k, a, b;
  char pb[400];
  if (p->x[n].parens > 1 && p->x[n].kind != X_FUNC)
    note(c, E_PARENS, "The expression has redundant parentheses;");
  switch (p->x[n].kind) {
    case X_OR:
    case X_AND:
    case X_NOT:
      for (k = p->x[n].child; k != NONE; k = p->x[k].next) check_cond(c, k);
      return;
    case X_FUNC:
      check_function(c, n, 1);
      return;
    case X_CMP:
      a = nth_child(p, n, 0);
      b = nth_child(p, n, 1);
      check_operand(c, a, 0);
      check_operand(c, b, 0);
      if (same_path(p, a, b)) {
        path_text(p, a, pb, sizeof pb);
        note(c, E_DISTINCT,
             "The first operand must be distinct from the remaining operands "
             "for this operator or function; operator: %s, first operand: %s",
             cmp_text(p->x[n].op), pb);
      }
      if (p->x[n].op != K_EQ && p->x[n].op != K_NE) {
        check_order_operand(c, p->x[n].op, a);
        check_order_operand(c, p->x[n].op, b);
      }
      return;
    case X_BETWEEN: {
      const df_value *lo, *hi;
      for (k = p->x[n].child; k != NONE; k = p->x[k].next) {
        check_operand(c, k, 0);
        check_order_operand(c, -1, k);
      }
      lo = literal(p, nth_child(p, n, 1));
      hi = literal(p, nth_child(p, n, 2));
      if (lo && hi) {
        char lb[100], hb[100];
        int cmp = df__value_cmp(lo, hi);
        value_text(lo, lb, sizeof lb);
        value_text(hi, hb, sizeof hb);
        if (strcmp(value_type(lo), value_type(hi)))
          note(c, E_TYPE,
               "The BETWEEN operator requires same data type for lower and "
               "upper bounds; lower bound operand: AttributeValue: %s, upper "
               "bound operand: AttributeValue: %s",
               lb, hb);
        else if (cmp == 1)
          note(c, E_TYPE,
               "The BETWEEN operator requires upper bound to be greater than "
               "or equal to lower bound; lower bound operand: AttributeValue: "
               "%s, upper bound operand: AttributeValue: %s",
               lb, hb);
      }
      return;
    }
    case X_IN:
      for (k = p->x[n].child; k != NONE; k = p->x[k].next)
        check_operand(c, k, 0);
      return;
    default:
      /* a bare operand where a condition belongs cannot parse */
      return;
  }
}

/* The first recorded error, in DynamoDB's order. */
static int report(checker *c) {
  int i;
  for (i = 0; i < E_COUNT; i++)
    if (c->has[i]) return fail(c->p, "%s", c->msg[i]);
  return 0;
}

/* ====================================================== common driver */

static int parse_start(parser *p, df_ddb_args *a, int kind, const char *src,
                       size_t len, char *err, size_t errlen) {
  int rc;
  memset(p, 0, sizeof *p);
  p->src = src ? src : "";
  p->len = len;
  p->kind = kind;
  p->args = a;
  p->err = err;
  p->errlen = errlen;
  if (err && errlen) err[0] = 0;
  if (!src && len) return DF_EINVAL;
  if (len == 0) return fail(p, "The expression can not be empty;");
  if (len > EXPR_MAX)
    return fail(p,
                "Expression size has exceeded the maximum allowed size; "
                "expression size: %zu",
                len);
  rc = lex_all(p->src, len, &p->t, &p->nt);
  if (rc) return nomem(p);
  return 0;
}

static void parse_end(parser *p) {
  df__free(p->t);
  df__free(p->x);
  df__free(p->elems);
}

/* Parse the whole text as `kind`; *root receives the tree. */
static int parse_whole(parser *p, uint32_t *root) {
  int rc;
  size_t k;
  for (k = 0; k < p->nt; k++)
    if (p->t[k].kind == K_BAD) {
      /* the parser would stop there anyway; DynamoDB names that token */
      break;
    }
  switch (p->kind) {
    case DF_DDB_UPDATE:
      rc = parse_update(p, root);
      break;
    case DF_DDB_PROJECTION:
      rc = parse_projection(p, root);
      break;
    default:
      rc = parse_or(p, root);
      break;
  }
  if (rc) return rc;
  if (cur(p)->kind != K_END) return syntax(p);
  return 0;
}

/* ============================================ conditions: compilation */

typedef struct emitter {
  parser *p;
  df_expr *e;
} emitter;

static int emit_node(emitter *m, int kind, uint32_t *out) {
  df_expr *e = m->e;
  df__node *n;
  if (df__grow(&e->nodes, &e->cap_nodes, e->n_nodes, sizeof *e->nodes))
    return DF_ENOMEM;
  n = &e->nodes[e->n_nodes];
  memset(n, 0, sizeof *n);
  n->kind = (uint8_t)kind;
  n->next = NONE;
  n->child = NONE;
  *out = (uint32_t)e->n_nodes++;
  return 0;
}

/* Resolve a path into e->segs/e->paths; names point into e->nbuf or the
 * pool. */
static int emit_path(emitter *m, uint32_t x, uint32_t *out) {
  parser *p = m->p;
  df_expr *e = m->e;
  uint32_t i, first = (uint32_t)e->n_segs;
  for (i = 0; i < p->x[x].n; i++) {
    const token *t = tok_of(p, p->elems[p->x[x].first + i]);
    df_path_seg sg;
    if (df__grow(&e->segs, &e->cap_segs, e->n_segs, sizeof *e->segs))
      return DF_ENOMEM;
    if (t->kind == K_NUM) {
      sg.name = NULL;
      sg.len = 0;
      sg.index = (uint32_t)strtoul(p->src + t->pos, NULL, 10);
    } else if (t->kind == K_NAME) {
      name_ent *ne = find_name(p->args, p->src + t->pos, t->len);
      sg.name = (const char *)e->nbuf + (ne->v - (const char *)p->args->nbuf);
      sg.len = ne->vn;
      sg.index = 0;
    } else {
      memcpy(e->pool + e->pool_len, p->src + t->pos, t->len);
      sg.name = e->pool + e->pool_len;
      sg.len = t->len;
      sg.index = 0;
      e->pool_len += t->len;
    }
    e->segs[e->n_segs++] = sg;
  }
  if (df__grow(&e->paths, &e->cap_paths, e->n_paths, sizeof *e->paths))
    return DF_ENOMEM;
  e->paths[e->n_paths].first = first;
  e->paths[e->n_paths].n = p->x[x].n;
  *out = (uint32_t)e->n_paths++;
  return 0;
}

static int emit_operand(emitter *m, uint32_t x, df__operand *o) {
  parser *p = m->p;
  df_expr *e = m->e;
  if (p->x[x].kind == X_VALUE) {
    value_ent *v = value_of(p, x);
    df_value lit = v->v;
    if (lit.s) /* strings and containers point into the copy */
      lit.s = (const char *)e->vbuf + (lit.s - (const char *)p->args->vbuf);
    if (df__grow(&e->lits, &e->cap_lits, e->n_lits, sizeof *e->lits))
      return DF_ENOMEM;
    e->lits[e->n_lits] = lit;
    o->kind = DF__A_LIT;
    o->idx = (uint32_t)e->n_lits++;
    return 0;
  }
  if (p->x[x].kind == X_FUNC) { /* size(path): strings in UTF-16 units */
    o->kind = DF__A_SIZE_U16;
    return emit_path(m, nth_child(p, x, 0), &o->idx);
  }
  o->kind = DF__A_PATH;
  return emit_path(m, x, &o->idx);
}

static int emit_cond(emitter *m, uint32_t x, uint32_t *out);

static int emit_not(emitter *m, uint32_t child, uint32_t *out) {
  int rc = emit_node(m, DF__N_NOT, out);
  if (!rc) m->e->nodes[*out].child = child;
  return rc;
}

static int emit_cond(emitter *m, uint32_t x, uint32_t *out) {
  parser *p = m->p;
  df_expr *e = m->e;
  uint32_t k, id, last = NONE, c;
  int rc;
  df__operand a, b;
  switch (p->x[x].kind) {
    case X_OR:
    case X_AND:
      if ((rc = emit_node(m, p->x[x].kind == X_OR ? DF__N_OR : DF__N_AND, &id)))
        return rc;
      for (k = p->x[x].child; k != NONE; k = p->x[k].next) {
        if ((rc = emit_cond(m, k, &c))) return rc;
        if (last == NONE)
          e->nodes[id].child = c;
        else
          e->nodes[last].next = c;
        last = c;
      }
      *out = id;
      return 0;
    case X_NOT:
      if ((rc = emit_cond(m, p->x[x].child, &c))) return rc;
      return emit_not(m, c, out);
    case X_CMP:
      if ((rc = emit_operand(m, nth_child(p, x, 0), &a)) ||
          (rc = emit_operand(m, nth_child(p, x, 1), &b)) ||
          (rc = emit_node(m, DF__N_CMP, &id)))
        return rc;
      e->nodes[id].a = a;
      e->nodes[id].b = b;
      switch (p->x[x].op) {
        case K_NE: /* DynamoDB: true when either side is missing */
          e->nodes[id].op = DF__OP_EQ;
          return emit_not(m, id, out);
        case K_LT:
          e->nodes[id].op = DF__OP_LT;
          break;
        case K_LE:
          e->nodes[id].op = DF__OP_LE;
          break;
        case K_GT:
          e->nodes[id].op = DF__OP_GT;
          break;
        case K_GE:
          e->nodes[id].op = DF__OP_GE;
          break;
        default:
          e->nodes[id].op = DF__OP_EQ;
      }
      *out = id;
      return 0;
    case X_BETWEEN: {
      df__operand lo, hi;
      if ((rc = emit_operand(m, nth_child(p, x, 0), &a)) ||
          (rc = emit_operand(m, nth_child(p, x, 1), &lo)) ||
          (rc = emit_operand(m, nth_child(p, x, 2), &hi)) ||
          (rc = emit_node(m, DF__N_BETWEEN, &id)))
        return rc;
      e->nodes[id].a = a;
      e->nodes[id].b = lo;
      e->nodes[id].c = hi;
      *out = id;
      return 0;
    }
    case X_IN: {
      uint32_t first, count = 0;
      if ((rc = emit_operand(m, p->x[x].child, &a))) return rc;
      first = (uint32_t)e->n_ops;
      for (k = p->x[p->x[x].child].next; k != NONE; k = p->x[k].next) {
        df__operand o;
        if ((rc = emit_operand(m, k, &o))) return rc;
        if (df__grow(&e->ops, &e->cap_ops, e->n_ops, sizeof *e->ops))
          return DF_ENOMEM;
        e->ops[e->n_ops++] = o;
        count++;
      }
      if ((rc = emit_node(m, DF__N_IN, &id))) return rc;
      e->nodes[id].a = a;
      e->nodes[id].child = first;
      e->nodes[id].count = count;
      *out = id;
      return 0;
    }
    case X_FUNC: {
      uint32_t a0 = nth_child(p, x, 0), a1 = nth_child(p, x, 1);
      int neg = 0;
      if (tok_is(p, p->x[x].tok, "attribute_exists") ||
          (neg = tok_is(p, p->x[x].tok, "attribute_not_exists"))) {
        if ((rc = emit_operand(m, a0, &a)) ||
            (rc = emit_node(m, DF__N_EXISTS, &id)))
          return rc;
        e->nodes[id].a = a;
        if (neg) return emit_not(m, id, out);
        *out = id;
        return 0;
      }
      if (tok_is(p, p->x[x].tok, "attribute_type")) {
        static const char *types[] = {"S", "N", "B",  "BOOL", "NULL",
                                      "M", "L", "SS", "NS",   "BS"};
        const df_value *v = literal(p, a1);
        int t;
        if ((rc = emit_operand(m, a0, &a)) ||
            (rc = emit_node(m, DF__N_TYPE, &id)))
          return rc;
        e->nodes[id].a = a;
        for (t = 0; t < 10; t++)
          if (v->n == strlen(types[t]) && !memcmp(v->s, types[t], v->n))
            e->nodes[id].op = (uint8_t)t;
        *out = id;
        return 0;
      }
      if ((rc = emit_operand(m, a0, &a)) || (rc = emit_operand(m, a1, &b)) ||
          (rc =
               emit_node(m,
                         tok_is(p, p->x[x].tok, "begins_with") ? DF__N_BEGINS
                                                               : DF__N_CONTAINS,
                         &id)))
        return rc;
      e->nodes[id].a = a;
      e->nodes[id].b = b;
      *out = id;
      return 0;
    }
    default:
      return DF_EINVAL;
  }
}

int df_ddb_condition(df_ddb_args *a, int kind, const char *src, size_t len,
                     df_expr **out, char *err, size_t errlen) {
  parser p;
  checker c;
  emitter m;
  uint32_t root;
  int rc;
  if (!out) return DF_EINVAL;
  *out = NULL;
  if (kind != DF_DDB_CONDITION && kind != DF_DDB_FILTER &&
      kind != DF_DDB_KEY_CONDITION)
    return DF_EINVAL;
  if ((rc = parse_start(&p, a, kind, src, len, err, errlen))) {
    parse_end(&p);
    return rc;
  }
  if ((rc = parse_whole(&p, &root))) goto done;
  memset(&c, 0, sizeof c);
  c.p = &p;
  check_cond(&c, root);
  if ((rc = report(&c))) goto done;
  m.p = &p;
  m.e = df__expr_alloc(len + 1);
  if (!m.e) {
    rc = nomem(&p);
    goto done;
  }
  if ((a && a->nbuf && copy_buf(a->nbuf, a->nlen, &m.e->nbuf)) ||
      (a && a->vbuf && copy_buf(a->vbuf, a->vlen, &m.e->vbuf))) {
    df_expr_free(m.e);
    rc = nomem(&p);
    goto done;
  }
  m.e->nlen = a && a->nbuf ? a->nlen : 0;
  m.e->vlen = a && a->vbuf ? a->vlen : 0;
  if ((rc = emit_cond(&m, root, &m.e->root))) {
    df_expr_free(m.e);
    if (rc == DF_ENOMEM) nomem(&p);
    goto done;
  }
  *out = m.e;
done:
  parse_end(&p);
  return rc;
}

/* ====================================================== key conditions */

/* One condition of a key condition: the attribute it names, or an error. */
static int key_part(parser *p, uint32_t x, df_key_condition *kc, const char *pk,
                    const char *sk, int *seen_pk, int *seen_sk) {
  uint32_t k, attr = NONE, vals[2];
  int nv = 0, op, i, flip = 0;
  const char *name;
  size_t name_len;
  int kind = p->x[x].kind;
  if (kind == X_OR)
    return fail(p, "Invalid operator used in KeyConditionExpression: OR");
  if (kind == X_NOT)
    return fail(p, "Invalid operator used in KeyConditionExpression: NOT");
  if (kind == X_IN)
    return fail(p, "Invalid operator used in KeyConditionExpression: IN");
  if (kind == X_CMP && p->x[x].op == K_NE)
    return fail(p, "Invalid operator used in KeyConditionExpression: <>");
  if (kind == X_FUNC && !tok_is(p, p->x[x].tok, "begins_with")) {
    char b[80];
    return fail(p, "Invalid operator used in KeyConditionExpression: %s",
                tok_text(p, p->x[x].tok, b, sizeof b));
  }
  for (k = p->x[x].child, i = 0; k != NONE; k = p->x[k].next, i++) {
    if (p->x[k].kind == X_PATH) {
      if (attr != NONE)
        return fail(p,
                    "Invalid condition in KeyConditionExpression: Multiple "
                    "attribute names used in one condition");
      if (p->x[k].n > 1)
        return fail(p,
                    "KeyConditionExpressions cannot have conditions on "
                    "nested attributes");
      attr = k;
      flip = i != 0;
    } else if (p->x[k].kind == X_FUNC) {
      return fail(p,
                  "KeyConditionExpressions cannot contain nested "
                  "operations");
    } else if (nv < 2) {
      vals[nv++] = k;
    }
  }
  if (attr == NONE)
    return fail(p,
                "Invalid condition in KeyConditionExpression: No key "
                "attribute specified");
  if ((kind == X_BETWEEN || kind == X_FUNC) && flip)
    return fail(p,
                "Invalid condition in KeyConditionExpression: %s operator "
                "must have the key attribute as its first operand",
                kind == X_BETWEEN ? "BETWEEN" : "begins_with");
  {
    const token *t = tok_of(p, p->elems[p->x[attr].first]);
    name = p->src + t->pos;
    name_len = t->len;
    if (t->kind == K_NAME) {
      name_ent *ne = find_name(p->args, name, name_len);
      name = ne->v;
      name_len = ne->vn;
    }
  }
  op = kind == X_BETWEEN ? DF_COND_BETWEEN
       : kind == X_FUNC  ? DF_COND_BEGINS_WITH
                         : DF_COND_EQ;
  if (kind == X_CMP) {
    switch (p->x[x].op) {
      case K_LT:
        op = flip ? DF_COND_GT : DF_COND_LT;
        break;
      case K_LE:
        op = flip ? DF_COND_GE : DF_COND_LE;
        break;
      case K_GT:
        op = flip ? DF_COND_LT : DF_COND_GT;
        break;
      case K_GE:
        op = flip ? DF_COND_LE : DF_COND_GE;
        break;
      default:
        op = DF_COND_EQ;
    }
  }
  if (strlen(pk) == name_len && !memcmp(pk, name, name_len)) {
    if (*seen_pk)
      return fail(p,
                  "KeyConditionExpressions must only contain one "
                  "condition per key");
    if (op != DF_COND_EQ) return fail(p, "Query key condition not supported");
    *seen_pk = 1;
    kc->pk = value_of(p, vals[0])->v;
    return 0;
  }
  if (sk && strlen(sk) == name_len && !memcmp(sk, name, name_len)) {
    if (*seen_sk)
      return fail(p,
                  "KeyConditionExpressions must only contain one "
                  "condition per key");
    *seen_sk = 1;
    kc->cond = op;
    kc->lo = value_of(p, vals[0])->v;
    if (op == DF_COND_BETWEEN) kc->hi = value_of(p, vals[1])->v;
    return 0;
  }
  return fail(p, "Query condition missed key schema element: %s", pk);
}

int df_ddb_key_condition(df_ddb_args *a, const char *src, size_t len,
                         const char *pk, const char *sk, df_key_condition *kc,
                         char *err, size_t errlen) {
  parser p;
  checker c;
  uint32_t root, k;
  int rc, seen_pk = 0, seen_sk = 0;
  if (!kc || !pk) return DF_EINVAL;
  memset(kc, 0, sizeof *kc);
  if ((rc = parse_start(&p, a, DF_DDB_KEY_CONDITION, src, len, err, errlen))) {
    parse_end(&p);
    return rc;
  }
  if ((rc = parse_whole(&p, &root))) goto done;
  memset(&c, 0, sizeof c);
  c.p = &p;
  check_cond(&c, root);
  if ((rc = report(&c))) goto done;
  if (p.x[root].kind == X_AND) {
    int n = child_count(&p, root);
    if (n > 2) {
      rc = fail(&p, "Conditions can be of length 1 or 2 only");
      goto done;
    }
    for (k = p.x[root].child; k != NONE; k = p.x[k].next) {
      if (p.x[k].kind == X_AND) {
        rc = fail(&p, "Conditions can be of length 1 or 2 only");
        goto done;
      }
      if ((rc = key_part(&p, k, kc, pk, sk, &seen_pk, &seen_sk))) goto done;
    }
  } else if ((rc = key_part(&p, root, kc, pk, sk, &seen_pk, &seen_sk))) {
    goto done;
  }
  if (!seen_pk)
    rc = fail(&p, "Query condition missed key schema element: %s", pk);
done:
  parse_end(&p);
  return rc;
}

/* ========================================================= projections */

/* A projection: paths resolved against the names, with their segments
 * owned by the projection (names point into nbuf or pool). */
struct df_projection {
  df_path_seg *segs;
  uint32_t *starts; /* path i: segs[starts[i] .. starts[i+1]) */
  size_t n_paths;
  char *pool;
  unsigned char *nbuf;
  df_buf out;
};

void df_projection_free(df_projection *pr) {
  if (!pr) return;
  df__free(pr->segs);
  df__free(pr->starts);
  df__free(pr->pool);
  df__free(pr->nbuf);
  df__buf_free(&pr->out);
  df__free(pr);
}

/* Two paths overlap (one is a prefix of the other) or conflict (a name
 * where the other has an index): DynamoDB refuses both. */
static int check_overlaps(parser *p, const uint32_t *list, size_t count) {
  size_t li, lj;
  char b1[400], b2[400];
  for (li = 0; li < count; li++)
    for (lj = li + 1; lj < count; lj++) {
      uint32_t i = list[li], j = list[lj];
      uint32_t k, n = p->x[i].n < p->x[j].n ? p->x[i].n : p->x[j].n;
      int conflict = 0, differ = 0;
      for (k = 0; k < n && !differ; k++) {
        const token *x = tok_of(p, p->elems[p->x[i].first + k]);
        const token *y = tok_of(p, p->elems[p->x[j].first + k]);
        const char *xs = p->src + x->pos, *ys = p->src + y->pos;
        size_t xn = x->len, yn = y->len;
        if ((x->kind == K_NUM) != (y->kind == K_NUM)) {
          conflict = 1;
          break;
        }
        if (x->kind == K_NAME) {
          name_ent *ne = find_name(p->args, xs, xn);
          if (ne) xs = ne->v, xn = ne->vn;
        }
        if (y->kind == K_NAME) {
          name_ent *ne = find_name(p->args, ys, yn);
          if (ne) ys = ne->v, yn = ne->vn;
        }
        if (x->kind == K_NUM) {
          if (strtoul(xs, NULL, 10) != strtoul(ys, NULL, 10)) differ = 1;
        } else if (xn != yn || memcmp(xs, ys, xn)) {
          differ = 1;
        }
      }
      if (differ) continue;
      path_text(p, i, b1, sizeof b1);
      path_text(p, j, b2, sizeof b2);
      return fail(p,
                  "Two document paths %s with each other; must remove or "
                  "rewrite one of these paths; path one: %s, path two: %s",
                  conflict ? "conflict" : "overlap", b1, b2);
    }
  return 0;
}

int df_ddb_projection(df_ddb_args *a, const char *src, size_t len,
                      df_projection **out, char *err, size_t errlen) {
  parser p;
  checker c;
  uint32_t root, k;
  df_projection *pr = NULL;
  size_t nseg = 0, np = 0;
  int rc;
  if (!out) return DF_EINVAL;
  *out = NULL;
  if ((rc = parse_start(&p, a, DF_DDB_PROJECTION, src, len, err, errlen))) {
    parse_end(&p);
    return rc;
  }
  if ((rc = parse_whole(&p, &root))) goto done;
  memset(&c, 0, sizeof c);
  c.p = &p;
  for (k = p.x[root].child; k != NONE; k = p.x[k].next) check_path(&c, k);
  if ((rc = report(&c))) goto done;
  for (k = p.x[root].child; k != NONE; k = p.x[k].next) {
    np++;
    nseg += p.x[k].n;
  }
  {
    uint32_t *list = df__malloc((np ? np : 1) * sizeof *list);
    size_t i = 0;
    if (!list) goto oom;
    for (k = p.x[root].child; k != NONE; k = p.x[k].next) list[i++] = k;
    rc = check_overlaps(&p, list, np);
    df__free(list);
    if (rc) goto done;
  }
  pr = df__malloc(sizeof *pr);
  if (!pr) goto oom;
  memset(pr, 0, sizeof *pr);
  df__buf_init(&pr->out);
  pr->segs = df__malloc(nseg * sizeof *pr->segs);
  pr->starts = df__malloc((np + 1) * sizeof *pr->starts);
  pr->pool = df__malloc(len + 1);
  if (!pr->segs || !pr->starts || !pr->pool) goto oom;
  if (a && a->nbuf && copy_buf(a->nbuf, a->nlen, &pr->nbuf)) goto oom;
  {
    size_t s = 0, i = 0, pool = 0;
    for (k = p.x[root].child; k != NONE; k = p.x[k].next) {
      uint32_t j;
      pr->starts[i++] = (uint32_t)s;
      for (j = 0; j < p.x[k].n; j++) {
        const token *t = tok_of(&p, p.elems[p.x[k].first + j]);
        df_path_seg *sg = &pr->segs[s++];
        sg->index = 0;
        if (t->kind == K_NUM) {
          sg->name = NULL;
          sg->len = 0;
          sg->index = (uint32_t)strtoul(p.src + t->pos, NULL, 10);
        } else if (t->kind == K_NAME) {
          name_ent *ne = find_name(a, p.src + t->pos, t->len);
          sg->name = (const char *)pr->nbuf + (ne->v - (const char *)a->nbuf);
          sg->len = ne->vn;
        } else {
          memcpy(pr->pool + pool, p.src + t->pos, t->len);
          sg->name = pr->pool + pool;
          sg->len = t->len;
          pool += t->len;
        }
      }
    }
    pr->starts[np] = (uint32_t)s;
    pr->n_paths = np;
  }
  *out = pr;
  goto done;
oom:
  df_projection_free(pr);
  rc = nomem(&p);
done:
  parse_end(&p);
  return rc;
}

/* ---------------------------------------------------------- projecting */

typedef struct proj_ctx {
  const df_projection *pr;
  df_buf *out;
  const unsigned char *end;
  unsigned char *sel; /* per path: still matching at this depth */
} proj_ctx;

static int seg_is(const df_path_seg *a, const char *name, size_t n) {
  return a->name && a->len == n && (n == 0 || !memcmp(a->name, name, n));
}

/* Write the projection of the value at [v, ve) for the paths selected
 * (sel[i]) at depth d.  *wrote: whether anything was written. */
static int project_value(proj_ctx *c, const unsigned char *v,
                         const unsigned char *ve, size_t d, int *wrote) {
  const df_projection *pr = c->pr;
  size_t i, count = 0;
  df_value hdr;
  const unsigned char *q = v;
  df_buf tmp;
  int rc = 0, want_list = -1;
  *wrote = 0;
  for (i = 0; i < pr->n_paths; i++) {
    if (!c->sel[i]) continue;
    if (pr->starts[i] + d == pr->starts[i + 1]) { /* ends here: all of it */
      *wrote = 1;
      return df__buf_append(c->out, v, (size_t)(ve - v));
    }
    want_list = pr->segs[pr->starts[i] + d].name == NULL;
  }
  if (want_list < 0) return 0;
  if (df__mp_read(&q, ve, &hdr)) return DF_ECORRUPT;
  if (hdr.type != (want_list ? DF_TARRAY : DF_TMAP)) return 0;
  df__buf_init(&tmp);
  {
    df_buf *saved = c->out;
    unsigned char *keep = df__malloc(pr->n_paths ? pr->n_paths : 1);
    size_t e;
    if (!keep) return DF_ENOMEM;
    memcpy(keep, c->sel, pr->n_paths);
    c->out = &tmp;
    for (e = 0; e < hdr.n && !rc; e++) {
      const unsigned char *ks = q, *vs, *vend;
      df_value key;
      int any = 0, w = 0;
      if (!want_list) {
        if (df__mp_read(&q, ve, &key)) {
          rc = DF_ECORRUPT;
          break;
        }
        if (key.type == DF_TARRAY || key.type == DF_TMAP) {
          q = ks;
          if (df__mp_skip(&q, ve)) {
            rc = DF_ECORRUPT;
            break;
          }
        }
      }
      vs = vend = q;
      if (df__mp_skip(&vend, ve)) {
        rc = DF_ECORRUPT;
        break;
      }
      q = vend;
      for (i = 0; i < pr->n_paths; i++) {
        const df_path_seg *sg;
        c->sel[i] = 0;
        if (!keep[i]) continue;
        sg = &pr->segs[pr->starts[i] + d];
        if (want_list ? (sg->name == NULL && sg->index == e)
                      : ((key.type == DF_TSTR || key.type == DF_TBIN) &&
                         seg_is(sg, key.s, key.n))) {
          c->sel[i] = 1;
          any = 1;
        }
      }
      if (!any) continue;
      {
        size_t mark = tmp.len;
        if (!want_list) df__buf_append(&tmp, ks, (size_t)(vs - ks));
        rc = project_value(c, vs, vend, d + 1, &w);
        if (!w)
          tmp.len = mark;
        else
          count++;
      }
    }
    memcpy(c->sel, keep, pr->n_paths);
    df__free(keep);
    c->out = saved;
  }
  if (!rc && tmp.failed) rc = DF_ENOMEM;
  if (!rc && count) {
    rc = want_list ? df__mp_put_array(c->out, (uint32_t)count)
                   : df__mp_put_map(c->out, (uint32_t)count);
    if (!rc) rc = df__buf_append(c->out, tmp.p, tmp.len);
    *wrote = 1;
  }
  df__buf_free(&tmp);
  return rc;
}

int df_projection_apply(df_projection *pr, const void *item, size_t len,
                        const void **out, size_t *out_len) {
  proj_ctx c;
  int rc, wrote;
  unsigned char *sel;
  if (!pr || !out || !out_len || (!item && len)) return DF_EINVAL;
  df__buf_reset(&pr->out);
  sel = df__malloc(pr->n_paths ? pr->n_paths : 1);
  if (!sel) return DF_ENOMEM;
  memset(sel, 1, pr->n_paths);
  c.pr = pr;
  c.out = &pr->out;
  c.end = (const unsigned char *)item + len;
  c.sel = sel;
  rc = len ? project_value(&c, item, c.end, 0, &wrote) : 0;
  df__free(sel);
  if (!rc && (!len || !wrote)) rc = df__mp_put_map(&pr->out, 0);
  if (!rc && pr->out.failed) rc = DF_ENOMEM;
  if (rc) return rc;
  *out = pr->out.p;
  *out_len = pr->out.len;
  return 0;
}

size_t df_projection_count(const df_projection *pr) {
  return pr ? pr->n_paths : 0;
}

/* ============================================================ updates */

static const char *long_type(const df_value *v) {
  switch (v->type) {
    case DF_TSTR:
      return "STRING";
    case DF_TINT:
    case DF_TUINT:
    case DF_TFLOAT:
    case DF_TDECIMAL:
      return "NUMBER";
    case DF_TSS:
      return "STRING_SET";
    case DF_TNS:
      return "NUMBER_SET";
    case DF_TBS:
      return "BINARY_SET";
    case DF_TBIN:
      return "BINARY";
    case DF_TBOOL:
      return "BOOLEAN";
    case DF_TNIL:
      return "NULL";
    case DF_TARRAY:
      return "LIST";
    case DF_TMAP:
      return "MAP";
    default:
      return "?";
  }
}

typedef struct ubuild {
  parser *p;
  df_update *u;
  const unsigned char *vcopy; /* the values map, kept by u */
  const char *ncopy;          /* the names map, kept by u */
  char *src;                  /* the source, kept by u */
} ubuild;

static int upath(ubuild *b, uint32_t x, uint32_t *out) {
  parser *p = b->p;
  df_path_seg segs[DF_MAX_DEPTH];
  uint32_t i;
  for (i = 0; i < p->x[x].n && i < DF_MAX_DEPTH; i++) {
    const token *t = tok_of(p, p->elems[p->x[x].first + i]);
    segs[i].index = 0;
    segs[i].name = NULL;
    segs[i].len = 0;
    if (t->kind == K_NUM) {
      segs[i].index = (uint32_t)strtoul(p->src + t->pos, NULL, 10);
    } else if (t->kind == K_NAME) {
      name_ent *ne = find_name(p->args, p->src + t->pos, t->len);
      segs[i].name = b->ncopy + (ne->v - (const char *)p->args->nbuf);
      segs[i].len = ne->vn;
    } else {
      segs[i].name = b->src + t->pos;
      segs[i].len = t->len;
    }
  }
  return df__update_path(b->u, segs, i, out);
}

static int uvalue(ubuild *b, uint32_t x, uint32_t *out) {
  parser *p = b->p;
  uint32_t va, vb, pa;
  int rc;
  switch (p->x[x].kind) {
    case X_VALUE: {
      value_ent *v = value_of(p, x);
      const unsigned char *s = b->vcopy + (v->start - p->args->vbuf);
      return df__update_val(b->u, DF__UV_CONST, NONE, NONE, NONE, s,
                            (size_t)(v->end - v->start), out);
    }
    case X_PATH:
      if ((rc = upath(b, x, &pa))) return rc;
      return df__update_val(b->u, DF__UV_PATH, NONE, NONE, pa, NULL, 0, out);
    case X_ARITH:
      if ((rc = uvalue(b, nth_child(p, x, 0), &va)) ||
          (rc = uvalue(b, nth_child(p, x, 1), &vb)))
        return rc;
      return df__update_val(b->u,
                            p->x[x].op == K_PLUS ? DF__UV_PLUS : DF__UV_MINUS,
                            va, vb, NONE, NULL, 0, out);
    case X_FUNC:
      if (tok_is(p, p->x[x].tok, "if_not_exists")) {
        if ((rc = upath(b, nth_child(p, x, 0), &pa)) ||
            (rc = uvalue(b, nth_child(p, x, 1), &vb)))
          return rc;
        return df__update_val(b->u, DF__UV_IF_NOT_EXISTS, NONE, vb, pa, NULL, 0,
                              out);
      }
      if ((rc = uvalue(b, nth_child(p, x, 0), &va)) ||
          (rc = uvalue(b, nth_child(p, x, 1), &vb)))
        return rc;
      return df__update_val(b->u, DF__UV_LIST_APPEND, va, vb, NONE, NULL, 0,
                            out);
    default:
      return DF_EINVAL;
  }
}

int df_ddb_update(df_ddb_args *a, const char *src, size_t len, df_update **out,
                  char *err, size_t errlen) {
  parser p;
  checker c;
  ubuild b;
  uint32_t root, k, *list = NULL;
  size_t n = 0;
  int rc;
  if (!out) return DF_EINVAL;
  *out = NULL;
  if ((rc = parse_start(&p, a, DF_DDB_UPDATE, src, len, err, errlen))) {
    parse_end(&p);
    return rc;
  }
  if ((rc = parse_whole(&p, &root))) goto done;
  memset(&c, 0, sizeof c);
  c.p = &p;
  if (p.dup_section)
    note(&c, E_SECTION,
         "The \"%s\" section can only be used once in an update expression;",
         p.dup_section);
  for (k = p.x[root].child; k != NONE; k = p.x[k].next) {
    uint32_t path = p.x[k].child, val = p.x[path].next;
    check_path(&c, path);
    n++;
    if (val == NONE) continue;
    check_operand(&c, val, 0);
    if (p.x[k].kind == X_ADD || p.x[k].kind == X_DELETE) {
      const df_value *v = literal(&p, val);
      /* ADD takes numbers and sets, DELETE sets */
      int is_set =
          v && (v->type == DF_TSS || v->type == DF_TNS || v->type == DF_TBS);
      int is_num = v && (v->type == DF_TINT || v->type == DF_TUINT ||
                         v->type == DF_TFLOAT || v->type == DF_TDECIMAL);
      if (v && !is_set && (p.x[k].kind == X_DELETE || !is_num))
        note(&c, E_TYPE,
             "Incorrect operand type for operator or function; operator: "
             "%s, operand type: %s",
             p.x[k].kind == X_ADD ? "ADD" : "DELETE", long_type(v));
    }
  }
  if ((rc = report(&c))) goto done;
  list = df__malloc((n ? n : 1) * sizeof *list);
  if (!list) {
    rc = nomem(&p);
    goto done;
  }
  n = 0;
  for (k = p.x[root].child; k != NONE; k = p.x[k].next)
    list[n++] = p.x[k].child;
  if ((rc = check_overlaps(&p, list, n))) goto done;
  memset(&b, 0, sizeof b);
  b.p = &p;
  if ((rc = df__update_alloc(0, &b.u))) {
    rc = nomem(&p);
    goto done;
  }
  if ((a && a->nbuf && !(b.ncopy = df__update_keep(b.u, a->nbuf, a->nlen))) ||
      (a && a->vbuf && !(b.vcopy = df__update_keep(b.u, a->vbuf, a->vlen))) ||
      !(b.src = df__update_keep(b.u, p.src, len))) {
    df_update_free(b.u);
    rc = nomem(&p);
    goto done;
  }
  for (k = p.x[root].child; k != NONE && !rc; k = p.x[k].next) {
    uint32_t path = p.x[k].child, val = p.x[path].next, pi, vi = NONE;
    int kind = p.x[k].kind == X_SET      ? DF_UPD_SET
               : p.x[k].kind == X_REMOVE ? DF_UPD_REMOVE
               : p.x[k].kind == X_ADD    ? DF_UPD_ADD
                                         : DF_UPD_DELETE;
    rc = upath(&b, path, &pi);
    if (!rc && val != NONE) rc = uvalue(&b, val, &vi);
    if (!rc) rc = df__update_act(b.u, kind, pi, vi, NULL);
  }
  if (rc) {
    df_update_free(b.u);
    rc = nomem(&p);
    goto done;
  }
  *out = b.u;
done:
  df__free(list);
  parse_end(&p);
  return rc;
}
