/*
 * expr_tree.h -- the compiled form of a condition, shared by the two front
 * ends that build it (expr.c: dynafile's filter language; ddbexpr.c:
 * DynamoDB's condition, filter and key-condition expressions) and by the
 * one evaluator that runs it on stored item bytes (expr.c).  Not API.
 *
 * Invariant: a df_expr owns every byte its nodes point to.  Names, strings
 * and regex sources copied from the source text live in `pool` (sized once
 * at compile time, never reallocated); values and names given beside a
 * DynamoDB expression live in `vbuf` and `nbuf`, copies of the caller's
 * MessagePack maps.  A literal container (a list or map value) points into
 * `vbuf` and ends at `vbuf + vlen`.
 */
#ifndef DF_EXPR_TREE_H
#define DF_EXPR_TREE_H

#include "internal.h"

#define DF__EXPR_NONE UINT32_MAX

/* node kinds */
enum {
  DF__N_OR,
  DF__N_AND,
  DF__N_NOT,
  DF__N_CMP,      /* a op b */
  DF__N_IN,       /* a in ops[child .. child+count) */
  DF__N_MATCH,    /* a =~ rx[child] */
  DF__N_EXISTS,   /* a present */
  DF__N_BEGINS,   /* begins_with(a, b) */
  DF__N_CONTAINS, /* contains(a, b) */
  DF__N_BETWEEN,  /* b <= a <= c */
  DF__N_TYPE,     /* attribute_type(a, op) (op: DF__TY_*) */
  DF__N_TRUTH     /* a is present and not false, null, 0 or "" */
};
/* comparison operators */
enum { DF__OP_EQ, DF__OP_NE, DF__OP_LT, DF__OP_LE, DF__OP_GT, DF__OP_GE };
/* operand kinds (DF__A_SIZE_U16: size() as DynamoDB counts a string, in
 * UTF-16 code units) */
enum { DF__A_LIT, DF__A_PATH, DF__A_SIZE, DF__A_SIZE_U16 };
/* DynamoDB type names, for attribute_type */
enum {
  DF__TY_S,
  DF__TY_N,
  DF__TY_B,
  DF__TY_BOOL,
  DF__TY_NULL,
  DF__TY_M,
  DF__TY_L,
  DF__TY_SS,
  DF__TY_NS,
  DF__TY_BS
};

typedef struct df__operand {
  uint32_t kind; /* DF__A_* */
  uint32_t idx;  /* literal index (A_LIT) or path index */
} df__operand;

typedef struct df__node {
  uint8_t kind, op;
  uint32_t next;  /* next sibling under an AND/OR, NONE at the end */
  uint32_t child; /* AND/OR: first child; NOT: child; IN: first operand of
                     e->ops; MATCH: regex index */
  uint32_t count; /* IN: number of operands */
  df__operand a, b, c;
} df__node;

typedef struct df__pathref {
  uint32_t first, n; /* a run of segs */
} df__pathref;

struct df_expr {
  df__node *nodes;
  size_t n_nodes, cap_nodes;
  df_value *lits;
  size_t n_lits, cap_lits;
  df_path_seg *segs;
  size_t n_segs, cap_segs;
  df__pathref *paths;
  size_t n_paths, cap_paths;
  df__operand *ops; /* operand lists (IN) */
  size_t n_ops, cap_ops;
  df_rx **rx;
  size_t n_rx, cap_rx;
  char *pool; /* never reallocated: pointers into it are stable */
  size_t pool_len, pool_cap;
  unsigned char *vbuf, *nbuf; /* copies of the values and names maps */
  size_t vlen, nlen;
  uint32_t root;
};

/* Is s[0..n) one of DynamoDB's reserved words (any case)?  (ddbexpr.c) */
int df__ddb_is_reserved(const char *s, size_t n);
/* == between two encoded values [a, ae) and [b, be) as filters see it:
 * 1, 0, or DF_ECORRUPT.  (expr.c) */
int df__value_equal(const unsigned char *a, const unsigned char *ae,
                    const unsigned char *b, const unsigned char *be);
/* A new empty expression with a pool of pool_cap bytes.  NULL: no memory. */
df_expr *df__expr_alloc(size_t pool_cap);

#endif /* DF_EXPR_TREE_H */
