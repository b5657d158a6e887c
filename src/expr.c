/*
 * expr.c -- the filter/condition expression language.
 *
 * A recursive-descent parser compiles the source once into a small tree of
 * nodes kept in flat arrays (df_expr); the evaluator walks that tree on an
 * item's stored MessagePack bytes, finding attributes with the codec's
 * bounds-checked reader, never decoding the item and never allocating
 * (a long regular expression's match takes scratch memory: regex.c).
 *
 * Invariants: a compiled df_expr owns every byte it points to -- names,
 * strings and regex sources are copied into one pool allocated at compile
 * time with room for the whole source, so pointers into it never move; and
 * its tree is at most MAX_NEST parentheses deep (AND/OR are n-ary, NOT
 * chains are folded), so parser and evaluator recursion stays bounded
 * whatever the input.  Every allocation goes through df__malloc/realloc and
 * every error path frees what was built (df_expr_free accepts a half-built
 * expression).
 *
 * The language
 *   expr     := or
 *   or       := and { ("or" | "||") and }
 *   and      := unary { ("and" | "&&") unary }
 *   unary    := { "not" | "!" } primary
 *   primary  := "(" expr ")"
 *             | path                           (a truth test)
 *             | "exists" "(" path ")"
 *             | "begins_with" "(" operand "," operand ")"
 *             | "contains" "(" operand "," operand ")"
 *             | operand cmp operand            cmp: == = != <> < <= > >=
 *             | operand "in" "[" [literal {"," literal}] "]"
 *             | operand "=~" "/" regex "/" ["i"]
 *   operand  := path | literal | "size" "(" path ")"
 *   path     := name { "." name | "[" digits "]" }   (no blanks inside)
 *   name     := [A-Za-z_][A-Za-z0-9_]*  |  `any bytes`   (backtick-quoted)
 *   literal  := integer | float | "string" | 'string' | true | false | null
 * Precedence: comparisons > not > and > or.  Keywords (and or not in true
 * false null, and nil as another spelling of null) are reserved in
 * all-lowercase and all-uppercase spelling when they start a path; write `and`
 * in backticks for an attribute of that name. After a dot any identifier is a
 * name (a.not is fine).  Function names are lowercase and only recognised when
 * followed by "(", so `size > 3` reads the attribute "size".
 *  - Quoted names: backticks, with the same backslash escapes as strings
 *    (so `a\`b` is the name a`b): `my attr`.x, data.`x-y`[0].
 *  - Strings: "..." or '...' with escapes \n \t \r \0 \\ \" \' \` \xHH.
 *  - Numbers: -?digits[.digits][(e|E)[+-]digits].  Integers stay integers
 *    (-2^63 .. 2^64-1); an integer literal beyond that range becomes a
 *    float, as in Lua.  A number may not run into a letter ("1and" is an
 *    error; write "1 and").
 *  - Regex: POSIX extended, compiled and matched by regex.c in time
 *    linear in the subject, with a budget per match (DF_ELIMIT past it);
 *    "\/" is a slash inside the regex; flag "i" ignores ASCII case.
 *    Back-references and patterns longer than DF_RX_MAX_PROG
 *    instructions (after repetitions are expanded) are refused, as syntax
 *    errors.
 *
 * Semantics
 *  - A missing attribute makes every comparison false -- including != --
 *    and also in, =~, begins_with, contains and size(); so "x != 1" holds
 *    only when x exists and is not equal to 1.  Test absence with
 *    "not exists(x)".  A NULL or empty item has every attribute missing.
 *  - == and != compare any two present values: numbers numerically (1 ==
 *    1.0), strings and binaries bytewise, booleans, null (null == a stored
 *    nil), and arrays/maps deeply (maps regardless of key order).  Values of
 *    different types are unequal, never an error; != is exactly the
 *    negation of == when both sides are present ("a" != 1 is true).
 *  - < <= > >= hold only between two numbers, two strings, two binaries or
 *    two booleans (false < true); anything else (null, containers, mixed
 *    types, NaN) is false.
 *  - size(p): byte length of a string/binary, element count of an array,
 *    pair count of a map; any other type counts as missing.  (DynamoDB
 *    expressions, ddbexpr.c, count a string in UTF-16 code units.)
 *  - contains(a, v): substring test when both are strings (or
 *    binaries); element membership (==) when a is an array; else false.
 *    begins_with(a, s): prefix test on two strings or two binaries.
 *    Strings and binaries compare bytewise with each other everywhere, as
 *    df__value_cmp does.
 *  - Evaluation short-circuits; bytes that are read and found malformed
 *    give DF_ECORRUPT (the item is not validated as a whole).  A compiled
 *    expression is only read by df_expr_eval, so threads may share one.
 * Syntax errors are DF_EVALIDATION with "filter: <what> at column N"
 * (1-based byte column) in err.
 */
#include <limits.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr_tree.h"

#define MAX_NEST 64 /* parentheses */
#define NUM_MAX 512 /* longest float literal */
#define NONE DF__EXPR_NONE

/* functions */
enum { F_EXISTS, F_BEGINS, F_CONTAINS, F_SIZE };
/* tokens */
enum {
  T_END,
  T_LP,
  T_RP,
  T_LB,
  T_RB,
  T_COMMA,
  T_AND,
  T_OR,
  T_NOT,
  T_IN,
  T_EQ,
  T_NE,
  T_LT,
  T_LE,
  T_GT,
  T_GE,
  T_MATCH,
  T_PATH,
  T_FUNC,
  T_STR,
  T_NUM,
  T_TRUE,
  T_FALSE,
  T_NULL
};

typedef df__operand operand;
typedef df__node node;
typedef df__pathref pathref;

/* ================================================================ parser */

typedef struct parser {
  const char *src;
  size_t len, pos; /* pos: just after the current token */
  df_expr *e;
  char *err;
  size_t errlen;
  int depth;
  /* the current token */
  int tok;
  size_t tpos, tlen;
  df_value val;  /* literal tokens */
  uint32_t path; /* T_PATH */
  int fn;        /* T_FUNC */
} parser;

static int fail(parser *p, int code, const char *fmt, ...) DF__PRINTF(3, 4);

static int fail(parser *p, int code, const char *fmt, ...) {
  va_list ap;
  int n;
  if (!p->err || !p->errlen) return code;
  n = snprintf(p->err, p->errlen, "filter: ");
  if (n >= 0 && (size_t)n < p->errlen) {
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return code;
}

static int nomem(parser *p) {
  return fail(p, DF_ENOMEM, "out of memory");
}

/* Copy up to 24 bytes of src for a message, making them printable. */
static void show(const char *s, size_t n, char *out, size_t cap) {
  size_t i, k = 0;
  for (i = 0; i < n && i < 24 && k + 4 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    out[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
  }
  if (i < n && k + 4 < cap) {
    memcpy(out + k, "...", 3);
    k += 3;
  }
  out[k] = 0;
}

static int fail_tok(parser *p) {
  char buf[40];
  if (p->tok == T_END)
    return fail(p, DF_EVALIDATION, "unexpected end of expression at column %zu",
                p->tpos + 1);
  show(p->src + p->tpos, p->tlen, buf, sizeof buf);
  return fail(p, DF_EVALIDATION, "unexpected token '%s' at column %zu", buf,
              p->tpos + 1);
}

/* Make room for one more element of size `el` in *arr. */
static int is_ident_start(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_ident(int c) {
  return is_ident_start(c) || (c >= '0' && c <= '9');
}

static int is_digit(int c) {
  return c >= '0' && c <= '9';
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decode a quoted run starting at p->pos (the opening quote q) into the
 * pool; *s and *n receive the bytes.  what: "string" or "name". */
static int lex_quoted(parser *p, const char *what, const char **s, size_t *n) {
  df_expr *e = p->e;
  size_t open = p->pos, pos = p->pos + 1;
  char q = p->src[open];
  char *out = e->pool + e->pool_len;
  size_t room = e->pool_cap - e->pool_len, k = 0;
  for (;;) {
    char c;
    if (pos >= p->len)
      return fail(p, DF_EVALIDATION, "unterminated %s at column %zu", what,
                  open + 1);
    c = p->src[pos];
    if (c == q) break;
    if (c == '\\') {
      int h1, h2;
      if (pos + 1 >= p->len)
        return fail(p, DF_EVALIDATION, "unterminated %s at column %zu", what,
                    open + 1);
      switch (p->src[pos + 1]) {
        case 'n':
          c = '\n';
          break;
        case 't':
          c = '\t';
          break;
        case 'r':
          c = '\r';
          break;
        case '0':
          c = '\0';
          break;
        case '\\':
          c = '\\';
          break;
        case '"':
          c = '"';
          break;
        case '\'':
          c = '\'';
          break;
        case '`':
          c = '`';
          break;
        case 'x':
          h1 = pos + 2 < p->len ? hexval((unsigned char)p->src[pos + 2]) : -1;
          h2 = pos + 3 < p->len ? hexval((unsigned char)p->src[pos + 3]) : -1;
          if (h1 < 0 || h2 < 0)
            return fail(p, DF_EVALIDATION,
                        "bad \\x escape (two hex digits) at column %zu",
                        pos + 1);
          c = (char)(h1 * 16 + h2);
          pos += 2;
          break;
        default: {
          char buf[8];
          show(p->src + pos + 1, 1, buf, sizeof buf);
          return fail(p, DF_EVALIDATION, "invalid escape '\\%s' at column %zu",
                      buf, pos + 1);
        }
      }
      pos += 2;
    } else {
      pos++;
    }
    if (k >= room) /* cannot happen: output never outgrows the source */
      return nomem(p);
    out[k++] = c;
  }
  e->pool_len += k;
  p->pos = pos + 1;
  *s = out;
  *n = k;
  return 0;
}

static int add_seg(parser *p, const char *name, size_t len, uint32_t index) {
  df_expr *e = p->e;
  if (df__grow(&e->segs, &e->cap_segs, e->n_segs, sizeof *e->segs))
    return nomem(p);
  e->segs[e->n_segs].name = name;
  e->segs[e->n_segs].len = len;
  e->segs[e->n_segs].index = index;
  e->n_segs++;
  return 0;
}

static const struct {
  const char *s;
  int tok;
} keywords[] = {
    {"and", T_AND},   {"AND", T_AND},   {"or", T_OR},       {"OR", T_OR},
    {"not", T_NOT},   {"NOT", T_NOT},   {"in", T_IN},       {"IN", T_IN},
    {"true", T_TRUE}, {"TRUE", T_TRUE}, {"false", T_FALSE}, {"FALSE", T_FALSE},
    {"null", T_NULL}, {"NULL", T_NULL}, {"nil", T_NULL},
};

static const struct {
  const char *s;
  int fn;
} functions[] = {
    {"exists", F_EXISTS},
    {"begins_with", F_BEGINS},
    {"contains", F_CONTAINS},
    {"size", F_SIZE},
};

/* A keyword, function name or path starting at p->pos. */
static int lex_word(parser *p) {
  df_expr *e = p->e;
  size_t start = p->pos, i;
  uint32_t first;
  int rc;
  if (p->src[start] != '`') {
    size_t end = start, n, after;
    while (end < p->len && is_ident((unsigned char)p->src[end])) end++;
    n = end - start;
    for (i = 0; i < sizeof keywords / sizeof keywords[0]; i++) {
      if (strlen(keywords[i].s) == n &&
          !memcmp(keywords[i].s, p->src + start, n)) {
        p->tok = keywords[i].tok;
        p->pos = end;
        if (p->tok == T_TRUE || p->tok == T_FALSE) {
          memset(&p->val, 0, sizeof p->val);
          p->val.type = DF_TBOOL;
          p->val.i = p->tok == T_TRUE;
        } else if (p->tok == T_NULL) {
          memset(&p->val, 0, sizeof p->val);
          p->val.type = DF_TNIL;
        }
        p->tlen = n;
        return 0;
      }
    }
    after = end;
    while (after < p->len && (p->src[after] == ' ' || p->src[after] == '\t' ||
                              p->src[after] == '\n' || p->src[after] == '\r'))
      after++;
    if (after < p->len && p->src[after] == '(') {
      for (i = 0; i < sizeof functions / sizeof functions[0]; i++) {
        if (strlen(functions[i].s) == n &&
            !memcmp(functions[i].s, p->src + start, n)) {
          p->tok = T_FUNC;
          p->fn = functions[i].fn;
          p->tlen = n;
          p->pos = after + 1;
          return 0;
        }
      }
      {
        char buf[40];
        show(p->src + start, n, buf, sizeof buf);
        return fail(p, DF_EVALIDATION, "unknown function '%s' at column %zu",
                    buf, start + 1);
      }
    }
  }
  /* The path: codec.c's one grammar, embedded in the expression.  Quoted
   * names are decoded straight into the pool; plain ones, which point
   * into the source, are copied after them (the pool outgrows no source). */
  {
    df_path path;
    char *names = e->pool + e->pool_len, why[96];
    size_t used, at, k, decoded = 0;
    if (df__path_scan(p->src + start, p->len - start, DF_PATH_EMBEDDED, names,
                      &path, &used, why, sizeof why, &at))
      return fail(p, DF_EVALIDATION, "%s at column %zu", why, start + at + 1);
    for (k = 0; k < path.n; k++)
      if (path.seg[k].name && path.seg[k].name >= names &&
          path.seg[k].name < e->pool + e->pool_cap)
        decoded += path.seg[k].len;
    e->pool_len += decoded;
    first = (uint32_t)e->n_segs;
    for (k = 0; k < path.n; k++) {
      const char *name = path.seg[k].name;
      size_t len = path.seg[k].len;
      if (name && !(name >= names && name < e->pool + e->pool_cap)) {
        if (len > e->pool_cap - e->pool_len) return nomem(p);
        memcpy(e->pool + e->pool_len, name, len);
        name = e->pool + e->pool_len;
        e->pool_len += len;
      }
      if ((rc = add_seg(p, name, len, path.seg[k].index))) return rc;
    }
    p->pos = start + used;
  }
  if (df__grow(&e->paths, &e->cap_paths, e->n_paths, sizeof *e->paths))
    return nomem(p);
  e->paths[e->n_paths].first = first;
  e->paths[e->n_paths].n = (uint32_t)(e->n_segs - first);
  p->path = (uint32_t)e->n_paths++;
  p->tok = T_PATH;
  p->tlen = p->pos - start;
  return 0;
}

static int lex_number(parser *p) {
  size_t start = p->pos, pos = p->pos, n;
  int neg = 0, isfloat = 0;
  uint64_t mag = 0;
  int over = 0;
  if (p->src[pos] == '-') {
    neg = 1;
    pos++;
  }
  while (pos < p->len && is_digit((unsigned char)p->src[pos])) {
    unsigned dg = (unsigned)(p->src[pos] - '0');
    if (mag > (UINT64_MAX - dg) / 10)
      over = 1;
    else
      mag = mag * 10 + dg;
    pos++;
  }
  if (pos + 1 < p->len && p->src[pos] == '.' &&
      is_digit((unsigned char)p->src[pos + 1])) {
    isfloat = 1;
    pos++;
    while (pos < p->len && is_digit((unsigned char)p->src[pos])) pos++;
  }
  if (pos < p->len && (p->src[pos] == 'e' || p->src[pos] == 'E')) {
    size_t q = pos + 1;
    if (q < p->len && (p->src[q] == '+' || p->src[q] == '-')) q++;
    if (q < p->len && is_digit((unsigned char)p->src[q])) {
      isfloat = 1;
      pos = q;
      while (pos < p->len && is_digit((unsigned char)p->src[pos])) pos++;
    }
  }
  if (pos < p->len &&
      (is_ident((unsigned char)p->src[pos]) || p->src[pos] == '.'))
    return fail(p, DF_EVALIDATION, "malformed number at column %zu", start + 1);
  n = pos - start;
  memset(&p->val, 0, sizeof p->val);
  if (!isfloat && !over) {
    if (!neg && mag <= (uint64_t)INT64_MAX) {
      p->val.type = DF_TINT;
      p->val.i = (int64_t)mag;
    } else if (!neg) {
      p->val.type = DF_TUINT;
      p->val.u = mag;
    } else if (mag <= (uint64_t)INT64_MAX) {
      p->val.type = DF_TINT;
      p->val.i = -(int64_t)mag;
    } else if (mag == (uint64_t)INT64_MAX + 1) {
      p->val.type = DF_TINT;
      p->val.i = INT64_MIN;
    } else {
      isfloat = 1;
    }
  } else {
    isfloat = 1;
  }
  if (isfloat) {
    /* strtod follows LC_NUMERIC: swap '.' for the locale's decimal point */
    char buf[NUM_MAX + 16], *endp;
    const char *dp = localeconv()->decimal_point;
    size_t dpl = dp && *dp ? strlen(dp) : 1, i, k = 0;
    if (!dp || !*dp) dp = ".";
    if (n > NUM_MAX || dpl > 8)
      return fail(p, DF_EVALIDATION, "number too long at column %zu",
                  start + 1);
    for (i = 0; i < n; i++) {
      if (p->src[start + i] == '.') {
        memcpy(buf + k, dp, dpl);
        k += dpl;
      } else {
        buf[k++] = p->src[start + i];
      }
    }
    buf[k] = 0;
    p->val.type = DF_TFLOAT;
    p->val.f = strtod(buf, &endp);
    if (endp != buf + k)
      return fail(p, DF_EVALIDATION, "malformed number at column %zu",
                  start + 1);
  }
  p->tok = T_NUM;
  p->pos = pos;
  p->tlen = n;
  return 0;
}

/* Read the next token. */
static int lex(parser *p) {
  const char *s = p->src;
  size_t pos = p->pos;
  char c, d;
  while (pos < p->len && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' ||
                          s[pos] == '\r' || s[pos] == '\f' || s[pos] == '\v'))
    pos++;
  p->tpos = pos;
  p->pos = pos;
  p->tlen = 1;
  if (pos >= p->len) {
    p->tok = T_END;
    p->tlen = 0;
    return 0;
  }
  c = s[pos];
  d = pos + 1 < p->len ? s[pos + 1] : 0;
#define TOK(t, n)       \
  do {                  \
    p->tok = (t);       \
    p->tlen = (n);      \
    p->pos = pos + (n); \
    return 0;           \
  } while (0)
  switch (c) {
    case '(':
      TOK(T_LP, 1);
    case ')':
      TOK(T_RP, 1);
    case '[':
      TOK(T_LB, 1);
    case ']':
      TOK(T_RB, 1);
    case ',':
      TOK(T_COMMA, 1);
    case '&':
      if (d == '&') TOK(T_AND, 2);
      break;
    case '|':
      if (d == '|') TOK(T_OR, 2);
      break;
    case '!':
      if (d == '=') TOK(T_NE, 2);
      TOK(T_NOT, 1);
    case '=':
      if (d == '=') TOK(T_EQ, 2);
      if (d == '~') TOK(T_MATCH, 2);
      TOK(T_EQ, 1);
    case '<':
      if (d == '=') TOK(T_LE, 2);
      if (d == '>') TOK(T_NE, 2);
      TOK(T_LT, 1);
    case '>':
      if (d == '=') TOK(T_GE, 2);
      TOK(T_GT, 1);
    case '"':
    case '\'': {
      int rc;
      memset(&p->val, 0, sizeof p->val);
      p->val.type = DF_TSTR;
      if ((rc = lex_quoted(p, "string", &p->val.s, &p->val.n))) return rc;
      p->tok = T_STR;
      p->tlen = p->pos - pos;
      return 0;
    }
    default:
      break;
  }
#undef TOK
  if (is_digit((unsigned char)c) || (c == '-' && is_digit((unsigned char)d)))
    return lex_number(p);
  if (is_ident_start((unsigned char)c) || c == '`') return lex_word(p);
  {
    char buf[40];
    if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
      show(s + pos, 1, buf, sizeof buf);
    else
      snprintf(buf, sizeof buf, "\\x%02x", (unsigned char)c);
    return fail(p, DF_EVALIDATION, "unexpected character '%s' at column %zu",
                buf, pos + 1);
  }
}

/* The regex after '=~'; p->pos is just after the operator.  *out receives
 * its index in e->rx. */
static int lex_regex(parser *p, uint32_t *out) {
  df_expr *e = p->e;
  size_t pos = p->pos, open, k = 0, room;
  char *pat;
  int icase = 0, rc;
  df_rx *rx;
  while (pos < p->len && (p->src[pos] == ' ' || p->src[pos] == '\t' ||
                          p->src[pos] == '\n' || p->src[pos] == '\r'))
    pos++;
  if (pos >= p->len || p->src[pos] != '/')
    return fail(p, DF_EVALIDATION, "expected /regex/ after '=~' at column %zu",
                pos + 1);
  open = pos++;
  pat = e->pool + e->pool_len;
  room = e->pool_cap - e->pool_len;
  for (;;) {
    char c;
    if (pos >= p->len)
      return fail(p, DF_EVALIDATION, "unterminated regex at column %zu",
                  open + 1);
    c = p->src[pos];
    if (c == '/') break;
    if (c == '\0' || (c == '\\' && pos + 1 < p->len && p->src[pos + 1] == 0))
      return fail(p, DF_EVALIDATION, "NUL byte in regex at column %zu",
                  pos + 1);
    if (k + 2 >= room) /* cannot happen: see the pool's sizing */
      return nomem(p);
    if (c == '\\' && pos + 1 < p->len) {
      if (p->src[pos + 1] != '/') pat[k++] = '\\';
      pat[k++] = p->src[pos + 1];
      pos += 2;
    } else {
      pat[k++] = c;
      pos++;
    }
  }
  pos++; /* the closing slash */
  if (pos < p->len && is_ident((unsigned char)p->src[pos])) {
    size_t f = pos;
    while (pos < p->len && is_ident((unsigned char)p->src[pos])) pos++;
    if (pos - f != 1 || p->src[f] != 'i') {
      char buf[40];
      show(p->src + f, pos - f, buf, sizeof buf);
      return fail(p, DF_EVALIDATION, "unknown regex flag '%s' at column %zu",
                  buf, f + 1);
    }
    icase = 1;
  }
  pat[k] = 0;
  e->pool_len += k + 1;
  p->pos = pos;
  if (df__grow(&e->rx, &e->cap_rx, e->n_rx, sizeof *e->rx)) return nomem(p);
  {
    const char *why = NULL;
    rc = df__rx_compile(pat, k, icase, &rx, &why);
    if (rc == DF_ENOMEM) return nomem(p);
    if (rc)
      return fail(p, DF_EVALIDATION, "bad regex at column %zu: %s", open + 1,
                  why ? why : "refused");
  }
  e->rx[e->n_rx] = rx;
  *out = (uint32_t)e->n_rx++;
  return 0;
}

static int new_node(parser *p, int kind, uint32_t *out) {
  df_expr *e = p->e;
  node *n;
  if (df__grow(&e->nodes, &e->cap_nodes, e->n_nodes, sizeof *e->nodes))
    return nomem(p);
  n = &e->nodes[e->n_nodes];
  memset(n, 0, sizeof *n);
  n->kind = (uint8_t)kind;
  n->next = NONE;
  n->child = NONE;
  *out = (uint32_t)e->n_nodes++;
  return 0;
}

static int add_lit(parser *p, uint32_t *out) {
  df_expr *e = p->e;
  if (df__grow(&e->lits, &e->cap_lits, e->n_lits, sizeof *e->lits))
    return nomem(p);
  e->lits[e->n_lits] = p->val;
  *out = (uint32_t)e->n_lits++;
  return 0;
}

static int is_literal(int tok) {
  return tok == T_STR || tok == T_NUM || tok == T_TRUE || tok == T_FALSE ||
         tok == T_NULL;
}

static int expect(parser *p, int tok) {
  if (p->tok != tok) return fail_tok(p);
  return lex(p);
}

static int parse_operand(parser *p, operand *o) {
  int rc;
  if (p->tok == T_PATH) {
    o->kind = DF__A_PATH;
    o->idx = p->path;
    return lex(p);
  }
  if (p->tok == T_FUNC && p->fn == F_SIZE) {
    if ((rc = lex(p))) return rc;
    if (p->tok != T_PATH) return fail_tok(p);
    o->kind = DF__A_SIZE;
    o->idx = p->path;
    if ((rc = lex(p))) return rc;
    return expect(p, T_RP);
  }
  if (is_literal(p->tok)) {
    o->kind = DF__A_LIT;
    if ((rc = add_lit(p, &o->idx))) return rc;
    return lex(p);
  }
  return fail_tok(p);
}

static int parse_func(parser *p, uint32_t *out) {
  int fn = p->fn, rc;
  operand a, b;
  uint32_t id;
  if ((rc = lex(p))) return rc;
  if (fn == F_EXISTS) {
    if (p->tok != T_PATH) return fail_tok(p);
    a.kind = DF__A_PATH;
    a.idx = p->path;
    b = a;
    if ((rc = lex(p))) return rc;
  } else {
    if ((rc = parse_operand(p, &a)) || (rc = expect(p, T_COMMA)) ||
        (rc = parse_operand(p, &b)))
      return rc;
  }
  if ((rc = expect(p, T_RP))) return rc;
  if ((rc = new_node(p,
                     fn == F_EXISTS   ? DF__N_EXISTS
                     : fn == F_BEGINS ? DF__N_BEGINS
                                      : DF__N_CONTAINS,
                     &id)))
    return rc;
  p->e->nodes[id].a = a;
  p->e->nodes[id].b = b;
  *out = id;
  return 0;
}

static int parse_list(parser *p, int kind, uint32_t *out);

static int parse_primary(parser *p, uint32_t *out) {
  operand a, b;
  uint32_t id, aux = 0, count = 0;
  int rc, kind = DF__N_CMP, op = 0;
  if (p->tok == T_LP) {
    if (p->depth >= MAX_NEST)
      return fail(p, DF_EVALIDATION, "nesting deeper than %d at column %zu",
                  MAX_NEST, p->tpos + 1);
    p->depth++;
    if ((rc = lex(p)) || (rc = parse_list(p, DF__N_OR, out))) return rc;
    p->depth--;
    return expect(p, T_RP);
  }
  if (p->tok == T_FUNC && p->fn != F_SIZE) return parse_func(p, out);
  if ((rc = parse_operand(p, &a))) return rc;
  memset(&b, 0, sizeof b);
  switch (p->tok) {
    case T_EQ:
      op = DF__OP_EQ;
      goto cmp;
    case T_NE:
      op = DF__OP_NE;
      goto cmp;
    case T_LT:
      op = DF__OP_LT;
      goto cmp;
    case T_LE:
      op = DF__OP_LE;
      goto cmp;
    case T_GT:
      op = DF__OP_GT;
      goto cmp;
    case T_GE:
      op = DF__OP_GE;
    cmp:
      kind = DF__N_CMP;
      if ((rc = lex(p)) || (rc = parse_operand(p, &b))) return rc;
      break;
    case T_IN:
      kind = DF__N_IN;
      if ((rc = lex(p)) || (rc = expect(p, T_LB))) return rc;
      aux = (uint32_t)p->e->n_ops;
      while (p->tok != T_RB) {
        uint32_t li;
        if (!is_literal(p->tok)) return fail_tok(p);
        if ((rc = add_lit(p, &li)) || (rc = lex(p))) return rc;
        if (df__grow(&p->e->ops, &p->e->cap_ops, p->e->n_ops,
                     sizeof *p->e->ops))
          return nomem(p);
        p->e->ops[p->e->n_ops].kind = DF__A_LIT;
        p->e->ops[p->e->n_ops++].idx = li;
        count++;
        if (p->tok != T_COMMA) break;
        if ((rc = lex(p))) return rc;
        if (p->tok == T_RB) /* no trailing comma */
          return fail_tok(p);
      }
      if ((rc = expect(p, T_RB))) return rc;
      break;
    case T_MATCH:
      kind = DF__N_MATCH;
      if ((rc = lex_regex(p, &aux)) || (rc = lex(p))) return rc;
      break;
    case T_END:
    case T_AND:
    case T_OR:
    case T_RP:
      /* a bare attribute: a truth test, as in Lua (present, and not
       * false or null) */
      if (a.kind != DF__A_PATH) {
        if (p->tok != T_END || a.kind == DF__A_SIZE) return fail_tok(p);
        return fail(p, DF_EVALIDATION,
                    "a constant alone is not a condition at column %zu; "
                    "compare an attribute with it",
                    p->tpos + 1);
      }
      kind = DF__N_TRUTH;
      break;
    default:
      return fail_tok(p);
  }
  if (kind == DF__N_CMP && a.kind == DF__A_LIT && b.kind == DF__A_LIT)
    return fail(p, DF_EVALIDATION,
                "comparison of two constants at column %zu: it does not "
                "depend on the item; compare an attribute",
                p->tpos + 1);
  if ((rc = new_node(p, kind, &id))) return rc;
  p->e->nodes[id].op = (uint8_t)op;
  p->e->nodes[id].a = a;
  p->e->nodes[id].b = b;
  p->e->nodes[id].child = aux;
  p->e->nodes[id].count = count;
  *out = id;
  return 0;
}

static int parse_unary(parser *p, uint32_t *out) {
  int neg = 0, rc;
  uint32_t child;
  while (p->tok == T_NOT) {
    neg ^= 1;
    if ((rc = lex(p))) return rc;
  }
  if ((rc = parse_primary(p, &child))) return rc;
  if (!neg) {
    *out = child;
    return 0;
  }
  if ((rc = new_node(p, DF__N_NOT, out))) return rc;
  p->e->nodes[*out].child = child;
  return 0;
}

/* kind DF__N_OR: and-terms separated by or; DF__N_AND: unaries separated by
 * and. Recursion: DF__N_OR calls DF__N_AND once, which never recurses here. */
static int parse_list(parser *p, int kind, uint32_t *out) {
  int optok = kind == DF__N_OR ? T_OR : T_AND, rc;
  uint32_t first, last, grp = NONE, nx;
  rc = kind == DF__N_OR ? parse_list(p, DF__N_AND, &first)
                        : parse_unary(p, &first);
  if (rc) return rc;
  last = first;
  while (p->tok == optok) {
    if ((rc = lex(p))) return rc;
    rc = kind == DF__N_OR ? parse_list(p, DF__N_AND, &nx) : parse_unary(p, &nx);
    if (rc) return rc;
    if (grp == NONE) {
      if ((rc = new_node(p, kind, &grp))) return rc;
      p->e->nodes[grp].child = first;
    }
    p->e->nodes[last].next = nx;
    last = nx;
  }
  *out = grp == NONE ? first : grp;
  return 0;
}

int df_expr_compile(const char *src, size_t len, df_expr **out, char *err,
                    size_t errlen) {
  parser p;
  df_expr *e;
  int rc;
  memset(&p, 0, sizeof p);
  p.err = err;
  p.errlen = errlen;
  if (err && errlen) err[0] = 0;
  if (!out) return fail(&p, DF_EINVAL, "no output pointer");
  *out = NULL;
  if (!src && len) return fail(&p, DF_EINVAL, "NULL source");
  if (len > NONE / 4) return fail(&p, DF_EVALIDATION, "expression too long");
  /* Every name, string and regex copied out takes no more bytes than its
   * span of source (quotes and slashes pay for the regex's NUL), so the
   * pool never needs to grow and its pointers stay valid. */
  e = df__expr_alloc(len + 1);
  if (!e) return nomem(&p);
  p.src = src ? src : "";
  p.len = len;
  p.e = e;
  if ((rc = lex(&p))) goto failed;
  if (p.tok == T_END) {
    rc = fail(&p, DF_EVALIDATION, "empty expression at column %zu", p.tpos + 1);
    goto failed;
  }
  if ((rc = parse_list(&p, DF__N_OR, &e->root))) goto failed;
  if (p.tok != T_END) {
    rc = fail_tok(&p);
    goto failed;
  }
  *out = e;
  return 0;
failed:
  df_expr_free(e);
  return rc;
}

df_expr *df__expr_alloc(size_t pool_cap) {
  df_expr *e = df__malloc(sizeof *e);
  if (!e) return NULL;
  memset(e, 0, sizeof *e);
  e->pool_cap = pool_cap;
  e->pool = df__malloc(pool_cap ? pool_cap : 1);
  if (!e->pool) {
    df__free(e);
    return NULL;
  }
  return e;
}

void df_expr_free(df_expr *e) {
  size_t i;
  if (!e) return;
  df__free(e->ops);
  df__free(e->vbuf);
  df__free(e->nbuf);
  for (i = 0; i < e->n_rx; i++) {
    df__rx_free(e->rx[i]);
  }
  df__free(e->rx);
  df__free(e->nodes);
  df__free(e->lits);
  df__free(e->segs);
  df__free(e->paths);
  df__free(e->pool);
  df__free(e);
}

/* ============================================================= evaluator */

typedef struct ctx {
  const unsigned char *item, *end;
  size_t len;
} ctx;

/* size(path) of the value v found (kind DF__A_SIZE or DF__A_SIZE_U16):
 * 1 with v made the integer, or 0 (no size: missing).  A string's size is
 * its bytes, or in UTF-16 code units for DynamoDB expressions: one per
 * character, two for a character outside the Basic Multilingual Plane (a
 * 4-byte UTF-8 sequence).  Out of line, so that fetch stays small enough
 * to be inlined into the evaluator. */
static DF__NOINLINE int size_of(uint32_t kind, df_value *v) {
  size_t i;
  int64_t units = 0;
  const unsigned char *s;
  switch (v->type) {
    case DF_TSTR:
      if (kind == DF__A_SIZE_U16) {
        s = (const unsigned char *)v->s;
        for (i = 0; i < v->n; i++) {
          if ((s[i] & 0xc0) != 0x80) units++;
          if (s[i] >= 0xf0) units++;
        }
        v->i = units;
        v->type = DF_TINT;
        return 1;
      }
      /* fall through */
    case DF_TBIN:
    case DF_TARRAY:
    case DF_TMAP:
    case DF_TSS:
    case DF_TNS:
    case DF_TBS:
      v->i = (int64_t)v->n;
      v->type = DF_TINT;
      return 1;
    default:
      return 0;
  }
}

/* Resolve an operand: 1 found (*v filled, *vend: the end of the bytes it
 * points into, for containers), 0 missing, or DF_ECORRUPT. */
static inline int fetch(const df_expr *e, const ctx *c, const operand *o,
                        df_value *v, const unsigned char **vend) {
  const pathref *pr;
  const df_path_seg *sg;
  int rc;
  if (o->kind == DF__A_LIT) {
    *v = e->lits[o->idx];
    *vend = e->vbuf ? e->vbuf + e->vlen : NULL;
    return 1;
  }
  *vend = c->end;
  if (!c->len) return 0;
  pr = &e->paths[o->idx];
  sg = &e->segs[pr->first];
  if (pr->n == 1) {
    rc = df__mp_map_find(c->item, c->len, sg->name, sg->len, v, NULL, NULL);
  } else {
    df_path path;
    path.n = pr->n;
    memcpy(path.seg, sg, pr->n * sizeof *sg);
    rc = df__mp_path_find(c->item, c->len, &path, v, NULL, NULL);
  }
  if (rc != 1 || o->kind == DF__A_PATH) return rc;
  return size_of(o->kind, v);
}

/* Read one whole element at *p (a container's header fills v, its
 * contents are skipped). */
static int next_elem(const unsigned char **p, const unsigned char *end,
                     df_value *v) {
  const unsigned char *start = *p;
  int rc = df__mp_read(p, end, v);
  if (rc) return rc;
  if (v->type == DF_TARRAY || v->type == DF_TMAP) {
    *p = start;
    rc = df__mp_skip(p, end);
  }
  return rc;
}

static int is_container(const df_value *v) {
  return v->type == DF_TARRAY || v->type == DF_TMAP;
}

/* Equality as == sees it: 1, 0 or DF_ECORRUPT.  A container's elements
 * are read up to its own end (ea for a, eb for b). */
static int equal(const df_value *a, const unsigned char *ea, const df_value *b,
                 const unsigned char *eb, int depth) {
  const unsigned char *pa, *pb;
  size_t i, j;
  int rc;
  if (a->type == DF_TNIL || b->type == DF_TNIL) return a->type == b->type;
  if (!is_container(a) && !is_container(b)) return df__value_cmp(a, b) == 0;
  if (a->type != b->type || a->n != b->n) return 0;
  if (depth > DF_MAX_DEPTH || !ea || !eb) return DF_ECORRUPT;
  pa = (const unsigned char *)a->s;
  if (a->type == DF_TARRAY) {
    pb = (const unsigned char *)b->s;
    for (i = 0; i < a->n; i++) {
      df_value x, y;
      if ((rc = next_elem(&pa, ea, &x)) || (rc = next_elem(&pb, eb, &y)))
        return rc;
      if ((rc = equal(&x, ea, &y, eb, depth + 1)) != 1) return rc;
    }
    return 1;
  }
  for (i = 0; i < a->n; i++) {
    df_value ka, va;
    int found = 0;
    if ((rc = next_elem(&pa, ea, &ka)) || (rc = next_elem(&pa, ea, &va)))
      return rc;
    pb = (const unsigned char *)b->s;
    for (j = 0; j < b->n; j++) {
      df_value kb, vb;
      if ((rc = next_elem(&pb, eb, &kb)) || (rc = next_elem(&pb, eb, &vb)))
        return rc;
      rc = equal(&ka, ea, &kb, eb, depth + 1);
      if (rc < 0) return rc;
      if (rc) {
        if ((rc = equal(&va, ea, &vb, eb, depth + 1)) != 1) return rc;
        found = 1;
        break;
      }
    }
    if (!found) return 0;
  }
  return 1;
}

int df__value_equal(const unsigned char *a, const unsigned char *ae,
                    const unsigned char *b, const unsigned char *be) {
  df_value x, y;
  const unsigned char *p = a, *q = b;
  if (df__mp_read(&p, ae, &x) || df__mp_read(&q, be, &y)) return DF_ECORRUPT;
  return equal(&x, ae, &y, be, 0);
}

/* The DynamoDB type name (DF__TY_*) of a stored value. */
static int type_of(const df_value *v) {
  switch (v->type) {
    case DF_TSTR:
      return DF__TY_S;
    case DF_TINT:
    case DF_TUINT:
    case DF_TFLOAT:
    case DF_TDECIMAL:
      return DF__TY_N;
    case DF_TBIN:
      return DF__TY_B;
    case DF_TSS:
      return DF__TY_SS;
    case DF_TNS:
      return DF__TY_NS;
    case DF_TBS:
      return DF__TY_BS;
    case DF_TBOOL:
      return DF__TY_BOOL;
    case DF_TMAP:
      return DF__TY_M;
    case DF_TARRAY:
      return DF__TY_L;
    default:
      return DF__TY_NULL;
  }
}

/* A bare attribute as a condition, as Lua judges values: present and not
 * false or null (0 and "" are true). */
static int truthy(const df_value *v) {
  if (v->type == DF_TNIL) return 0;
  if (v->type == DF_TBOOL) return v->i != 0;
  return 1;
}

static inline int order(const df_value *a, const df_value *b, int op) {
  int c;
  if (a->type == DF_TINT && b->type == DF_TINT) /* the usual number */
    c = (a->i > b->i) - (a->i < b->i);
  else if (a->type == DF_TNIL || b->type == DF_TNIL)
    return 0;
  else
    c = df__value_cmp(a, b);
  if (c == 2) return 0;
  switch (op) {
    case DF__OP_LT:
      return c < 0;
    case DF__OP_LE:
      return c <= 0;
    case DF__OP_GT:
      return c > 0;
    default:
      return c >= 0;
  }
}

/* Strings and binaries mix, as in df__value_cmp. */
static int bytes_pair(const df_value *a, const df_value *b) {
  return (a->type == DF_TSTR || a->type == DF_TBIN) &&
         (b->type == DF_TSTR || b->type == DF_TBIN);
}

static int eval(const df_expr *e, const ctx *c, uint32_t i) {
  const node *n = &e->nodes[i];
  const unsigned char *ea, *eb, *ec;
  df_value a, b, x;
  uint32_t k;
  int r;
  switch (n->kind) {
    case DF__N_OR:
      for (k = n->child; k != NONE; k = e->nodes[k].next)
        if ((r = eval(e, c, k)) != 0) return r;
      return 0;
    case DF__N_AND:
      for (k = n->child; k != NONE; k = e->nodes[k].next)
        if ((r = eval(e, c, k)) != 1) return r;
      return 1;
    case DF__N_NOT:
      r = eval(e, c, n->child);
      return r < 0 ? r : !r;
    case DF__N_EXISTS:
      return fetch(e, c, &n->a, &a, &ea);
    default:
      break;
  }
  if ((r = fetch(e, c, &n->a, &a, &ea)) <= 0) return r;
  switch (n->kind) {
    case DF__N_CMP:
      if ((r = fetch(e, c, &n->b, &b, &eb)) <= 0) return r;
      if (n->op == DF__OP_EQ) return equal(&a, ea, &b, eb, 0);
      if (n->op == DF__OP_NE) {
        r = equal(&a, ea, &b, eb, 0);
        return r < 0 ? r : !r;
      }
      return order(&a, &b, n->op);
    case DF__N_BETWEEN:
      if ((r = fetch(e, c, &n->b, &b, &eb)) <= 0) return r;
      if ((r = fetch(e, c, &n->c, &x, &ec)) <= 0) return r;
      return order(&a, &b, DF__OP_GE) && order(&a, &x, DF__OP_LE);
    case DF__N_IN:
      for (k = 0; k < n->count; k++) {
        if ((r = fetch(e, c, &e->ops[n->child + k], &b, &eb)) < 0) return r;
        if (r && (r = equal(&a, ea, &b, eb, 0)) != 0) return r;
      }
      return 0;
    case DF__N_TYPE:
      return type_of(&a) == n->op;
    case DF__N_TRUTH:
      return truthy(&a);
    case DF__N_MATCH:
      return a.type == DF_TSTR
                 ? df__rx_match(e->rx[n->child], a.s, a.n, DF_RX_BUDGET)
                 : 0;
    case DF__N_BEGINS:
      if ((r = fetch(e, c, &n->b, &b, &eb)) <= 0) return r;
      return bytes_pair(&a, &b) && a.n >= b.n &&
             (b.n == 0 || !memcmp(a.s, b.s, b.n));
    case DF__N_CONTAINS:
      if ((r = fetch(e, c, &n->b, &b, &eb)) <= 0) return r;
      if (bytes_pair(&a, &b))
        return b.n == 0 || (a.n >= b.n && memmem(a.s, a.n, b.s, b.n) != NULL);
      if (a.type == DF_TSS || a.type == DF_TNS || a.type == DF_TBS)
        return df__mp_set_contains(&a, &b);
      if (a.type == DF_TARRAY) {
        const unsigned char *q = (const unsigned char *)a.s;
        size_t j;
        for (j = 0; j < a.n; j++) {
          if ((r = next_elem(&q, ea, &x))) return r;
          if ((r = equal(&x, ea, &b, eb, 0)) != 0) return r;
        }
      }
      return 0;
    default:
      return 0;
  }
}

int df_expr_eval(const df_expr *e, const void *item, size_t len) {
  ctx c;
  if (!e) return DF_EINVAL;
  if (!item) len = 0;
  c.item = item;
  c.len = len;
  c.end = len ? (const unsigned char *)item + len : NULL;
  return eval(e, &c, e->root);
}
