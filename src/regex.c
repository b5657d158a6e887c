/*
 * regex.c -- the regular expressions of filter strings (`a =~ /re/`):
 * POSIX extended syntax, matched in time linear in the subject.
 *
 * A pattern compiles into a small program for a Thompson automaton (no
 * backtracking, no back-references), which a match runs over the subject
 * once, keeping the set of live program positions: the cost is at most
 * (subject length + 1) x (program length) steps, whatever the pattern.
 * Every match also has a budget of DF_RX_BUDGET steps: a match that would
 * need more stops with DF_ELIMIT, so no filter or condition can hold a
 * read snapshot or the write lock for longer than that budget costs on one
 * attribute (measured in the README).
 *
 * Syntax: literals; `.`; bracket expressions `[a-z]`, `[^...]`, with
 * `[:alpha:]`-style classes (ASCII); `^` and `$` (start and end of the
 * subject); groups `( )`; alternation `|`; `*`, `+`, `?`, `{m}`, `{m,}`,
 * `{m,n}` (m, n <= 255); a backslash makes the next character literal.
 * Matching is on bytes, as the C locale does; flag i folds ASCII case.
 * Programs longer than DF_RX_MAX_PROG instructions (after repetitions are
 * expanded) are refused as too complex.
 *
 * Invariants: compiling and matching never recurse deeper than the
 * pattern's parentheses (at most RX_MAX_NEST); a compiled program is only
 * read by a match, so threads may share one; a match allocates only when
 * the program is too long for its stack buffers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define RX_MAX_NEST 32
#define REP_MAX 255

enum { I_CHAR, I_ANY, I_CLASS, I_BOL, I_EOL, I_SPLIT, I_JMP, I_MATCH };

typedef struct rx_inst {
  uint8_t op;
  uint8_t c;     /* I_CHAR */
  uint32_t x, y; /* I_SPLIT: x, y; I_JMP: x; I_CLASS: x = class index */
} rx_inst;

struct df_rx {
  rx_inst *prog;
  size_t n, cap;
  unsigned char (*classes)[32]; /* 256-bit sets */
  size_t n_classes, cap_classes;
  int icase;
};

/* ------------------------------------------------------------ syntax tree */

enum { X_EMPTY, X_CHAR, X_ANY, X_CLASS, X_BOL, X_EOL, X_CAT, X_ALT, X_REP };

typedef struct rnode {
  int kind;
  int c;           /* X_CHAR; X_CLASS: class index */
  int min, max;    /* X_REP; max -1: no limit */
  int first, next; /* children (X_CAT, X_ALT, X_REP), siblings */
} rnode;

typedef struct rparser {
  const char *s;
  size_t n, pos;
  rnode *t;
  size_t nt, cap;
  df_rx *rx;
  int depth;
  const char **why;
} rparser;

static int bad(rparser *p, const char *why) {
  if (p->why) *p->why = why;
  return DF_EVALIDATION;
}

static int node(rparser *p, int kind, int *out) {
  if (df__grow(&p->t, &p->cap, p->nt, sizeof *p->t)) return DF_ENOMEM;
  memset(&p->t[p->nt], 0, sizeof p->t[0]);
  p->t[p->nt].kind = kind;
  p->t[p->nt].first = -1;
  p->t[p->nt].next = -1;
  *out = (int)p->nt++;
  return 0;
}

static void add_child(rparser *p, int parent, int child) {
  int k = p->t[parent].first;
  if (k < 0) {
    p->t[parent].first = child;
    return;
  }
  while (p->t[k].next >= 0) k = p->t[k].next;
  p->t[k].next = child;
}

static int new_class(rparser *p, int *out) {
  df_rx *rx = p->rx;
  if (df__grow(&rx->classes, &rx->cap_classes, rx->n_classes,
               sizeof rx->classes[0]))
    return DF_ENOMEM;
  memset(rx->classes[rx->n_classes], 0, 32);
  *out = (int)rx->n_classes++;
  return 0;
}

static void set_bit(unsigned char *set, int c, int icase) {
  set[c >> 3] |= (unsigned char)(1u << (c & 7));
  if (icase) {
    if (c >= 'a' && c <= 'z')
      c -= 32;
    else if (c >= 'A' && c <= 'Z')
      c += 32;
    set[c >> 3] |= (unsigned char)(1u << (c & 7));
  }
}

static int in_named_class(const char *name, size_t n, int c) {
#define IS(s) (n == sizeof(s) - 1 && !memcmp(name, s, n))
  if (IS("alpha")) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  if (IS("digit")) return c >= '0' && c <= '9';
  if (IS("alnum"))
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
  if (IS("upper")) return c >= 'A' && c <= 'Z';
  if (IS("lower")) return c >= 'a' && c <= 'z';
  if (IS("space")) return c == ' ' || (c >= '\t' && c <= '\r');
  if (IS("blank")) return c == ' ' || c == '\t';
  if (IS("punct"))
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) ||
           (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
  if (IS("print")) return c >= 32 && c <= 126;
  if (IS("graph")) return c >= 33 && c <= 126;
  if (IS("cntrl")) return c < 32 || c == 127;
  if (IS("xdigit"))
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F');
  return -1;
#undef IS
}

/* A bracket expression; p->pos is just after '['. */
static int parse_bracket(rparser *p, int *out) {
  int neg = 0, ci, rc, first = 1, i;
  unsigned char *set;
  if ((rc = new_class(p, &ci))) return rc;
  if (p->pos < p->n && p->s[p->pos] == '^') {
    neg = 1;
    p->pos++;
  }
  for (;;) {
    int lo, hi;
    if (p->pos >= p->n) return bad(p, "unterminated [ ]");
    set = p->rx->classes[ci];
    lo = (unsigned char)p->s[p->pos];
    if (lo == ']' && !first) {
      p->pos++;
      break;
    }
    first = 0;
    if (lo == '[' && p->pos + 1 < p->n &&
        (p->s[p->pos + 1] == ':' || p->s[p->pos + 1] == '.' ||
         p->s[p->pos + 1] == '=')) {
      char kind = p->s[p->pos + 1];
      size_t st = p->pos + 2, e = st;
      while (e + 1 < p->n && !(p->s[e] == kind && p->s[e + 1] == ']')) e++;
      if (e + 1 >= p->n) return bad(p, "unterminated [: :] in [ ]");
      if (kind == ':') {
        int any = 0;
        for (i = 0; i < 256; i++) {
          int r = in_named_class(p->s + st, e - st, i);
          if (r < 0) return bad(p, "unknown character class");
          if (r) {
            set_bit(set, i, p->rx->icase);
            any = 1;
          }
        }
        (void)any;
        p->pos = e + 2;
        continue;
      }
      if (e - st != 1) return bad(p, "multi-character collating elements");
      lo = (unsigned char)p->s[st];
      p->pos = e + 2;
    } else {
      p->pos++;
    }
    hi = lo;
    if (p->pos + 1 < p->n && p->s[p->pos] == '-' && p->s[p->pos + 1] != ']') {
      hi = (unsigned char)p->s[p->pos + 1];
      p->pos += 2;
      if (hi < lo) return bad(p, "invalid range end in [ ]");
    }
    for (i = lo; i <= hi; i++) set_bit(set, i, p->rx->icase);
  }
  if (neg)
    for (i = 0; i < 32; i++) set[i] = (unsigned char)~set[i];
  if ((rc = node(p, X_CLASS, out))) return rc;
  p->t[*out].c = ci;
  return 0;
}

static int parse_alt(rparser *p, int *out);

static int parse_atom(rparser *p, int *out) {
  unsigned char c = (unsigned char)p->s[p->pos];
  int rc;
  switch (c) {
    case '(':
      if (++p->depth > RX_MAX_NEST)
        return bad(p, "groups nested deeper than 32");
      p->pos++;
      if ((rc = parse_alt(p, out))) return rc;
      if (p->pos >= p->n || p->s[p->pos] != ')') return bad(p, "missing )");
      p->pos++;
      p->depth--;
      return 0;
    case '.':
      p->pos++;
      return node(p, X_ANY, out);
    case '^':
      p->pos++;
      return node(p, X_BOL, out);
    case '$':
      p->pos++;
      return node(p, X_EOL, out);
    case '[':
      p->pos++;
      return parse_bracket(p, out);
    case '\\':
      if (p->pos + 1 >= p->n) return bad(p, "trailing backslash");
      c = (unsigned char)p->s[p->pos + 1];
      if (c >= '1' && c <= '9')
        return bad(p, "back-references are not supported");
      p->pos += 2;
      break;
    case '*':
    case '+':
    case '?':
    case '{':
      return bad(p, "repetition of nothing");
    default:
      p->pos++;
      break;
  }
  if (p->rx->icase && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
    int ci;
    if ((rc = new_class(p, &ci))) return rc;
    set_bit(p->rx->classes[ci], c, 1);
    if ((rc = node(p, X_CLASS, out))) return rc;
    p->t[*out].c = ci;
    return 0;
  }
  if ((rc = node(p, X_CHAR, out))) return rc;
  p->t[*out].c = c;
  return 0;
}

/* {m}, {m,}, {m,n} at p->pos ('{'); 0 and the bounds, or 1 when it is not
 * a repetition (then '{' is a literal). */
static int parse_braces(rparser *p, int *min, int *max) {
  size_t i = p->pos + 1;
  long m = 0, x;
  if (i >= p->n || p->s[i] < '0' || p->s[i] > '9') return 1;
  while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9' && m <= REP_MAX)
    m = m * 10 + (p->s[i++] - '0');
  x = m;
  if (i < p->n && p->s[i] == ',') {
    i++;
    x = -1;
    if (i < p->n && p->s[i] >= '0' && p->s[i] <= '9') {
      x = 0;
      while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9' && x <= REP_MAX)
        x = x * 10 + (p->s[i++] - '0');
    }
  }
  if (i >= p->n || p->s[i] != '}') return 1;
  p->pos = i + 1;
  *min = (int)m;
  *max = (int)x;
  return 0;
}

static int parse_piece(rparser *p, int *out) {
  int rc, atom;
  if ((rc = parse_atom(p, &atom))) return rc;
  while (p->pos < p->n) {
    char c = p->s[p->pos];
    int min, max, rep;
    if (c == '*') {
      min = 0, max = -1;
      p->pos++;
    } else if (c == '+') {
      min = 1, max = -1;
      p->pos++;
    } else if (c == '?') {
      min = 0, max = 1;
      p->pos++;
    } else if (c == '{') {
      if (parse_braces(p, &min, &max)) break;
      if (min > REP_MAX || max > REP_MAX || (max >= 0 && max < min))
        return bad(p, "invalid repetition count");
    } else {
      break;
    }
    if ((rc = node(p, X_REP, &rep))) return rc;
    p->t[rep].min = min;
    p->t[rep].max = max;
    add_child(p, rep, atom);
    atom = rep;
  }
  *out = atom;
  return 0;
}

static int parse_cat(rparser *p, int *out) {
  int cat, rc, piece;
  if ((rc = node(p, X_CAT, &cat))) return rc;
  while (p->pos < p->n && p->s[p->pos] != '|' && p->s[p->pos] != ')') {
    if ((rc = parse_piece(p, &piece))) return rc;
    add_child(p, cat, piece);
  }
  *out = cat;
  return 0;
}

static int parse_alt(rparser *p, int *out) {
  int alt, rc, cat;
  if ((rc = parse_cat(p, &cat))) return rc;
  if (p->pos >= p->n || p->s[p->pos] != '|') {
    *out = cat;
    return 0;
  }
  if ((rc = node(p, X_ALT, &alt))) return rc;
  add_child(p, alt, cat);
  while (p->pos < p->n && p->s[p->pos] == '|') {
    p->pos++;
    if ((rc = parse_cat(p, &cat))) return rc;
    add_child(p, alt, cat);
  }
  *out = alt;
  return 0;
}

/* ------------------------------------------------------------- program */

static int emit(df_rx *rx, int op, uint32_t x, uint32_t y, uint32_t *at) {
  if (rx->n >= DF_RX_MAX_PROG) return DF_EVALIDATION;
  if (df__grow(&rx->prog, &rx->cap, rx->n, sizeof *rx->prog)) return DF_ENOMEM;
  rx->prog[rx->n].op = (uint8_t)op;
  rx->prog[rx->n].c = 0;
  rx->prog[rx->n].x = x;
  rx->prog[rx->n].y = y;
  if (at) *at = (uint32_t)rx->n;
  rx->n++;
  return 0;
}

static int gen(rparser *p, int t, int depth) {
  df_rx *rx = p->rx;
  const rnode *nd = &p->t[t];
  int rc, k, i;
  uint32_t at, at2;
  if (depth > 2 * RX_MAX_NEST + 8) return bad(p, "pattern nested too deep");
  switch (nd->kind) {
    case X_CHAR:
      if ((rc = emit(rx, I_CHAR, 0, 0, &at))) return rc;
      rx->prog[at].c = (uint8_t)nd->c;
      return 0;
    case X_ANY:
      return emit(rx, I_ANY, 0, 0, NULL);
    case X_CLASS:
      return emit(rx, I_CLASS, (uint32_t)nd->c, 0, NULL);
    case X_BOL:
      return emit(rx, I_BOL, 0, 0, NULL);
    case X_EOL:
      return emit(rx, I_EOL, 0, 0, NULL);
    case X_CAT:
      for (k = nd->first; k >= 0; k = p->t[k].next)
        if ((rc = gen(p, k, depth + 1))) return rc;
      return 0;
    case X_ALT: {
      /* SPLIT a, next; a; JMP end; ... last */
      uint32_t jumps[256];
      int nj = 0;
      for (k = nd->first; k >= 0; k = p->t[k].next) {
        if (p->t[k].next >= 0) {
          if ((rc = emit(rx, I_SPLIT, 0, 0, &at))) return rc;
          rx->prog[at].x = at + 1;
          if ((rc = gen(p, k, depth + 1))) return rc;
          if (nj >= 256) return bad(p, "too many alternatives");
          if ((rc = emit(rx, I_JMP, 0, 0, &jumps[nj++]))) return rc;
          rx->prog[at].y = (uint32_t)rx->n;
        } else if ((rc = gen(p, k, depth + 1))) {
          return rc;
        }
      }
      for (i = 0; i < nj; i++) rx->prog[jumps[i]].x = (uint32_t)rx->n;
      return 0;
    }
    case X_REP: {
      int child = nd->first;
      for (i = 0; i < nd->min; i++)
        if ((rc = gen(p, child, depth + 1))) return rc;
      if (nd->max < 0) {
        /* L: SPLIT body, out; body; JMP L */
        if ((rc = emit(rx, I_SPLIT, 0, 0, &at))) return rc;
        rx->prog[at].x = at + 1;
        if ((rc = gen(p, child, depth + 1))) return rc;
        if ((rc = emit(rx, I_JMP, at, 0, NULL))) return rc;
        rx->prog[at].y = (uint32_t)rx->n;
        return 0;
      }
      for (i = nd->min; i < nd->max; i++) {
        if ((rc = emit(rx, I_SPLIT, 0, 0, &at2))) return rc;
        rx->prog[at2].x = at2 + 1;
        if ((rc = gen(p, child, depth + 1))) return rc;
        rx->prog[at2].y = (uint32_t)rx->n; /* skip this copy */
      }
      return 0;
    }
    default:
      return 0;
  }
}

void df__rx_free(df_rx *rx) {
  if (!rx) return;
  df__free(rx->prog);
  df__free(rx->classes);
  df__free(rx);
}

int df__rx_compile(const char *pat, size_t n, int icase, df_rx **out,
                   const char **why) {
  rparser p;
  df_rx *rx;
  int rc, root;
  *out = NULL;
  if (why) *why = NULL;
  rx = df__malloc(sizeof *rx);
  if (!rx) return DF_ENOMEM;
  memset(rx, 0, sizeof *rx);
  rx->icase = icase;
  memset(&p, 0, sizeof p);
  p.s = pat;
  p.n = n;
  p.rx = rx;
  p.why = why;
  rc = parse_alt(&p, &root);
  if (!rc && p.pos < p.n) rc = bad(&p, "unmatched )");
  if (!rc) rc = gen(&p, root, 0);
  if (!rc) rc = emit(rx, I_MATCH, 0, 0, NULL);
  if (rc == DF_EVALIDATION && why && !*why) *why = "too complex";
  df__free(p.t);
  if (rc) {
    df__rx_free(rx);
    return rc;
  }
  *out = rx;
  return 0;
}

/* ------------------------------------------------------------ matching */

typedef struct rlist {
  uint32_t *dense, *sparse;
  size_t n;
} rlist;

static int has(const rlist *l, uint32_t pc) {
  uint32_t i = l->sparse[pc];
  return i < l->n && l->dense[i] == pc;
}

/* Add pc and everything reachable from it without consuming a byte. */
static void add(const df_rx *rx, rlist *l, uint32_t pc, size_t pos, size_t n,
                uint32_t *stack, uint64_t *steps) {
  size_t sp = 0;
  stack[sp++] = pc;
  while (sp) {
    const rx_inst *in;
    pc = stack[--sp];
    if (has(l, pc)) continue;
    l->sparse[pc] = (uint32_t)l->n;
    l->dense[l->n++] = pc;
    (*steps)++;
    in = &rx->prog[pc];
    switch (in->op) {
      case I_JMP:
        stack[sp++] = in->x;
        break;
      case I_SPLIT:
        stack[sp++] = in->y;
        stack[sp++] = in->x;
        break;
      case I_BOL:
        if (pos == 0) stack[sp++] = pc + 1;
        break;
      case I_EOL:
        if (pos == n) stack[sp++] = pc + 1;
        break;
      default:
        break;
    }
  }
}

int df__rx_match(const df_rx *rx, const char *s, size_t n, uint64_t budget) {
  /* four lists of m entries and an add stack of 2m + 2 */
  uint32_t small[6 * 256 + 2];
  uint32_t *buf = small, *st;
  rlist cl, nl;
  size_t m = rx->n, i, j;
  uint64_t steps = 0;
  int r = 0;
  if (m > 256) {
    buf = df__malloc((6 * m + 2) * sizeof *buf);
    if (!buf) return DF_ENOMEM;
  }
  cl.dense = buf;
  cl.sparse = buf + m;
  nl.dense = buf + 2 * m;
  nl.sparse = buf + 3 * m;
  st = buf + 4 * m;
  /* The sparse arrays are read before they are written (a stale entry is
     rejected by the dense check), but reading memory never written is
     undefined for the C abstract machine and noise for valgrind: clear
     them once per match (2m words). */
  memset(cl.sparse, 0, m * sizeof *cl.sparse);
  memset(nl.sparse, 0, m * sizeof *nl.sparse);
  cl.n = nl.n = 0;
  for (i = 0; i <= n; i++) {
    unsigned char c = i < n ? (unsigned char)s[i] : 0;
    add(rx, &cl, 0, i, n, st, &steps); /* a match may start anywhere */
    nl.n = 0;
    for (j = 0; j < cl.n; j++) {
      const rx_inst *in = &rx->prog[cl.dense[j]];
      int ok = 0;
      steps++;
      switch (in->op) {
        case I_MATCH:
          r = 1;
          goto done;
        case I_CHAR:
          ok = i < n && in->c == c;
          break;
        case I_ANY:
          ok = i < n;
          break;
        case I_CLASS:
          ok = i < n && ((rx->classes[in->x][c >> 3] >> (c & 7)) & 1);
          break;
        default:
          break;
      }
      if (ok) add(rx, &nl, cl.dense[j] + 1, i + 1, n, st, &steps);
    }
    if (steps > budget) {
      r = DF_ELIMIT;
      goto done;
    }
    {
      rlist t = cl;
      cl = nl;
      nl = t;
    }
  }
done:
  if (buf != small) df__free(buf);
  return r;
}
