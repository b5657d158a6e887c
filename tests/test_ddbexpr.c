/*
 * test_ddbexpr.c -- unit tests for ddbexpr.c: DynamoDB's condition, filter,
 * key-condition and projection expressions with #names and :values --
 * DynamoDB's precedence and semantics (<> on a missing attribute is true),
 * its error messages word for word, its limits, and projections of nested
 * maps and lists.
 *
 * Items and the values maps are written in the small JSON-like notation
 * of test_expr.c ('strings', x'binary', n for nil, 1.0 for floats).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"

/* ------------------------------------------------------ item notation */

static void skip_ws(const char **s) {
  while (**s == ' ') (*s)++;
}

static int enc(const char **s, df_buf *b);

/* Encode the elements of a container up to `close` into a scratch buffer,
 * then write the header and the elements. */
static int enc_container(const char **s, df_buf *b, char close, int map) {
  df_buf tmp;
  uint32_t n = 0;
  int rc = 0;
  df__buf_init(&tmp);
  (*s)++;
  skip_ws(s);
  while (**s != close && !rc) {
    rc = enc(s, &tmp);
    if (!rc && map) {
      skip_ws(s);
      if (**s != ':') rc = -1;
      (*s)++;
      if (!rc) rc = enc(s, &tmp);
    }
    n++;
    skip_ws(s);
    if (**s == ',') (*s)++;
    skip_ws(s);
  }
  (*s)++;
  if (!rc) rc = map ? df__mp_put_map(b, n) : df__mp_put_array(b, n);
  if (!rc) rc = df__buf_append(b, tmp.p, tmp.len);
  df__buf_free(&tmp);
  return rc;
}

static int enc(const char **s, df_buf *b) {
  skip_ws(s);
  if (**s == '{') return enc_container(s, b, '}', 1);
  if (**s == '[') return enc_container(s, b, ']', 0);
  if (**s == '\'' || (**s == 'x' && (*s)[1] == '\'')) {
    int bin = **s == 'x';
    const char *st;
    *s += bin ? 2 : 1;
    st = *s;
    while (**s != '\'') (*s)++;
    (*s)++;
    return bin ? df__mp_put_bin(b, st, (size_t)(*s - st - 1))
               : df__mp_put_str(b, st, (size_t)(*s - st - 1));
  }
  if (!strncmp(*s, "true", 4)) return *s += 4, df__mp_put_bool(b, 1);
  if (!strncmp(*s, "false", 5)) return *s += 5, df__mp_put_bool(b, 0);
  if (**s == 'n') return *s += 1, df__mp_put_nil(b);
  {
    char *end;
    const char *st = *s;
    int isf = 0;
    while (**s && strchr("0123456789-+.eE", **s)) {
      if (**s == '.' || **s == 'e' || **s == 'E') isf = 1;
      (*s)++;
    }
    if (*s == st) return -1;
    if (isf) return df__mp_put_float(b, strtod(st, &end));
    if (*st == '-') return df__mp_put_int(b, strtoll(st, &end, 10));
    return df__mp_put_uint(b, strtoull(st, &end, 10));
  }
}

/* Encode `json` into b (reset first). */
static void build(df_buf *b, const char *json) {
  const char *s = json;
  df__buf_reset(b);
  if (enc(&s, b) || b->failed) {
    fprintf(stderr, "bad test item: %s\n", json);
    exit(2);
  }
}

/* -------------------------------------------------------------- helpers */

static df_buf g_item, g_names, g_values;

/* Make args from two notation maps (NULL: absent). */
static df_ddb_args *args(const char *names, const char *values, char *err,
                         size_t errlen, int *rc) {
  df_ddb_args *a = NULL;
  if (names) build(&g_names, names);
  if (values) build(&g_values, values);
  *rc = df_ddb_args_new(names ? g_names.p : NULL, names ? g_names.len : 0,
                        values ? g_values.p : NULL, values ? g_values.len : 0,
                        &a, err, errlen);
  return a;
}

/* Evaluate a condition: 1/0, -100 for a compile error (printed). */
static int ev(const char *src, const char *names, const char *values,
              const char *item) {
  char err[400];
  int rc;
  df_ddb_args *a = args(names, values, err, sizeof err, &rc);
  df_expr *e = NULL;
  unsigned char *copy;
  if (rc) {
    fprintf(stderr, "args failed: %s\n", err);
    return -100;
  }
  rc =
      df_ddb_condition(a, DF_DDB_FILTER, src, strlen(src), &e, err, sizeof err);
  df_ddb_args_free(a); /* the expression keeps what it needs */
  if (rc) {
    fprintf(stderr, "compile failed for %s: %s\n", src, err);
    return -100;
  }
  build(&g_item, item);
  copy = malloc(g_item.len);
  memcpy(copy, g_item.p, g_item.len);
  rc = df_expr_eval(e, copy, g_item.len);
  free(copy);
  df_expr_free(e);
  return rc;
}

/* The message a condition of `kind` fails to compile with. */
static void msg_is(int kind, const char *src, const char *names,
                   const char *values, const char *want) {
  char err[600];
  int rc;
  df_ddb_args *a = args(names, values, err, sizeof err, &rc);
  df_expr *e = NULL;
  if (!rc) {
    if (kind == DF_DDB_PROJECTION) {
      df_projection *pr = NULL;
      rc = df_ddb_projection(a, src, strlen(src), &pr, err, sizeof err);
      df_projection_free(pr);
    } else {
      rc = df_ddb_condition(a, kind, src, strlen(src), &e, err, sizeof err);
      df_expr_free(e);
    }
  }
  df_ddb_args_free(a);
  CHECK_EQ_INT(rc, DF_EVALIDATION);
  CHECK_EQ_STR(err, want);
}

#define V "{':a': 1, ':b': 2, ':s': 'abc', ':t': 'S', ':l': [1, 2]}"

/* ---------------------------------------------------------------- tests */

static void test_comparisons(void) {
  const char *it =
      "{'PK': 'p', 'n': 5, 's': 'abcdef', 'l': [1, 2], "
      "'m': {'x': 1, 'y': [7, {'z': 'deep'}]}, 'f': 2.5}";
  CHECK_EQ_INT(ev("n = :v", NULL, "{':v': 5}", it), 1);
  CHECK_EQ_INT(ev("n = :v", NULL, "{':v': 5.0}", it), 1);
  CHECK_EQ_INT(ev("n <> :v", NULL, "{':v': 5}", it), 0);
  CHECK_EQ_INT(ev("n < :v", NULL, "{':v': 6}", it), 1);
  CHECK_EQ_INT(ev("n <= :v AND n >= :v", NULL, "{':v': 5}", it), 1);
  CHECK_EQ_INT(ev(":v > n", NULL, "{':v': 6}", it), 1);
  CHECK_EQ_INT(ev("f BETWEEN :lo AND :hi", NULL, "{':lo': 2, ':hi': 3}", it),
               1);
  CHECK_EQ_INT(ev("n BETWEEN :lo AND :hi", NULL, "{':lo': 6, ':hi': 9}", it),
               0);
  CHECK_EQ_INT(
      ev("n IN (:a, :b, :c)", NULL, "{':a': 1, ':b': 5, ':c': 'x'}", it), 1);
  CHECK_EQ_INT(ev("s IN (:a)", NULL, "{':a': 'abc'}", it), 0);
  CHECK_EQ_INT(ev("l = :l", NULL, "{':l': [1, 2]}", it), 1);
  CHECK_EQ_INT(ev("m.y[1].z = :v", NULL, "{':v': 'deep'}", it), 1);
  CHECK_EQ_INT(ev("#m.#y[0] = :v", "{'#m': 'm', '#y': 'y'}", "{':v': 7}", it),
               1);
  CHECK_EQ_INT(ev("m.x = n", NULL, NULL, it), 0);
  CHECK_EQ_INT(ev("s < :v", NULL, "{':v': 'b'}", it), 1);
  /* different types: unequal and unordered, never an error */
  CHECK_EQ_INT(ev("n = :v", NULL, "{':v': '5'}", it), 0);
  CHECK_EQ_INT(ev("n <> :v", NULL, "{':v': '5'}", it), 1);
  CHECK_EQ_INT(ev("s > :v", NULL, "{':v': 1}", it), 0);
}

static void test_missing(void) {
  const char *it = "{'PK': 'p', 'n': 5}";
  CHECK_EQ_INT(ev("q = :v", NULL, "{':v': 1}", it), 0);
  /* DynamoDB: <> holds when either side is missing, even both */
  CHECK_EQ_INT(ev("q <> :v", NULL, "{':v': 1}", it), 1);
  CHECK_EQ_INT(ev("q <> z", NULL, NULL, it), 1);
  CHECK_EQ_INT(ev("q = z", NULL, NULL, it), 0);
  CHECK_EQ_INT(ev("q < :v", NULL, "{':v': 1}", it), 0);
  CHECK_EQ_INT(ev("q BETWEEN :a AND :b", NULL, "{':a': 1, ':b': 2}", it), 0);
  CHECK_EQ_INT(ev("NOT q = :v", NULL, "{':v': 1}", it), 1);
  CHECK_EQ_INT(ev("size(q) > :v", NULL, "{':v': 0}", it), 0);
  CHECK_EQ_INT(ev("attribute_not_exists(q)", NULL, NULL, it), 1);
  CHECK_EQ_INT(ev("attribute_exists(n)", NULL, NULL, it), 1);
}

static void test_precedence(void) {
  const char *it = "{'a': 1, 'b': 2, 'c': 3}";
  /* NOT binds tighter than AND, AND than OR */
  CHECK_EQ_INT(ev("a = :x OR b = :x AND c = :x", NULL, "{':x': 1}", it), 1);
  CHECK_EQ_INT(ev("(a = :x OR b = :x) AND c = :x", NULL, "{':x': 1}", it), 0);
  CHECK_EQ_INT(ev("NOT a = :x AND b = :y", NULL, "{':x': 9, ':y': 2}", it), 1);
  CHECK_EQ_INT(ev("NOT (a = :x AND b = :y)", NULL, "{':x': 1, ':y': 2}", it),
               0);
  CHECK_EQ_INT(ev("a = :x and b = :y", NULL, "{':x': 1, ':y': 2}", it), 1);
  CHECK_EQ_INT(ev("(a) = :x", NULL, "{':x': 1}", it), 1);
  CHECK_EQ_INT(ev("not not a = :x", NULL, "{':x': 1}", it), 1);
}

static void test_functions(void) {
  const char *it =
      "{'s': 'hello', 'l': ['x', 3], 'm': {'k': 1}, 'b': true, "
      "'z': n, 'n': 7, 'bin': x'0102'}";
  CHECK_EQ_INT(ev("begins_with(s, :p)", NULL, "{':p': 'he'}", it), 1);
  CHECK_EQ_INT(ev("begins_with(s, :p)", NULL, "{':p': 'lo'}", it), 0);
  CHECK_EQ_INT(ev("contains(s, :p)", NULL, "{':p': 'll'}", it), 1);
  CHECK_EQ_INT(ev("contains(l, :p)", NULL, "{':p': 3}", it), 1);
  CHECK_EQ_INT(ev("contains(l, :p)", NULL, "{':p': 'y'}", it), 0);
  CHECK_EQ_INT(ev("size(s) = :n", NULL, "{':n': 5}", it), 1);
  CHECK_EQ_INT(
      ev("size(l) = :n AND size(m) = :o", NULL, "{':n': 2, ':o': 1}", it), 1);
  CHECK_EQ_INT(ev("size(n) >= :n", NULL, "{':n': 0}", it), 0);
  CHECK_EQ_INT(ev("attribute_type(s, :t)", NULL, "{':t': 'S'}", it), 1);
  CHECK_EQ_INT(ev("attribute_type(n, :t)", NULL, "{':t': 'N'}", it), 1);
  CHECK_EQ_INT(ev("attribute_type(l, :t)", NULL, "{':t': 'L'}", it), 1);
  CHECK_EQ_INT(ev("attribute_type(m, :t)", NULL, "{':t': 'M'}", it), 1);
  CHECK_EQ_INT(ev("attribute_type(b, :t)", NULL, "{':t': 'BOOL'}", it), 1);
  CHECK_EQ_INT(ev("attribute_type(z, :t)", NULL, "{':t': 'NULL'}", it), 1);
  CHECK_EQ_INT(ev("attribute_type(bin, :t)", NULL, "{':t': 'B'}", it), 1);
  CHECK_EQ_INT(ev("attribute_type(s, :t)", NULL, "{':t': 'N'}", it), 0);
}

static void test_messages(void) {
  msg_is(DF_DDB_FILTER, "a = :a AND", NULL, "{':a': 1}",
         "Invalid FilterExpression: Syntax error; token: \"<EOF>\", near: "
         "\"AND\"");
  msg_is(DF_DDB_CONDITION, "foo", NULL, NULL,
         "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", "
         "near: \"foo\"");
  msg_is(DF_DDB_CONDITION, "a = :a ! b", NULL, "{':a': 1}",
         "Invalid ConditionExpression: Syntax error; token: \"!\", near: "
         "\":a ! b\"");
  msg_is(DF_DDB_CONDITION, "_a = :a", NULL, "{':a': 1}",
         "Invalid ConditionExpression: Syntax error; token: \"_\", near: "
         "\"_a\"");
  msg_is(DF_DDB_CONDITION, "", NULL, NULL,
         "Invalid ConditionExpression: The expression can not be empty;");
  msg_is(DF_DDB_CONDITION, "#n = :a", NULL, "{':a': 1}",
         "Invalid ConditionExpression: An expression attribute name used in "
         "the document path is not defined; attribute name: #n");
  msg_is(DF_DDB_CONDITION, "a = :zz", NULL, "{':a': 1}",
         "Invalid ConditionExpression: An expression attribute value used in "
         "expression is not defined; attribute value: :zz");
  msg_is(DF_DDB_FILTER, "status = :a", NULL, "{':a': 1}",
         "Invalid FilterExpression: Attribute name is a reserved keyword; "
         "reserved keyword: status");
  msg_is(DF_DDB_FILTER, "frobnicate(a)", NULL, NULL,
         "Invalid FilterExpression: Invalid function name; function: "
         "frobnicate");
  msg_is(DF_DDB_FILTER, "attribute_exists(a, b)", NULL, NULL,
         "Invalid FilterExpression: Incorrect number of operands for "
         "operator or function; operator or function: attribute_exists, "
         "number of operands: 2");
  msg_is(DF_DDB_FILTER, "attribute_exists(:a)", NULL, "{':a': 1}",
         "Invalid FilterExpression: Operator or function requires a "
         "document path; operator or function: attribute_exists");
  msg_is(DF_DDB_FILTER, "size(a)", NULL, NULL,
         "Invalid FilterExpression: The function is not allowed to be used "
         "this way in an expression; function: size");
  msg_is(DF_DDB_FILTER, "attribute_exists(a) = :a", NULL, "{':a': 1}",
         "Invalid FilterExpression: The function is not allowed to be used "
         "this way in an expression; function: attribute_exists");
  msg_is(DF_DDB_FILTER, "begins_with(a, :a)", NULL, "{':a': 1}",
         "Invalid FilterExpression: Incorrect operand type for operator or "
         "function; operator or function: begins_with, operand type: N");
  msg_is(DF_DDB_FILTER, "attribute_type(a, :a)", NULL, "{':a': 'X'}",
         "Invalid FilterExpression: Invalid attribute type name found; type: "
         "X, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}");
  msg_is(DF_DDB_FILTER, "a = a", NULL, NULL,
         "Invalid FilterExpression: The first operand must be distinct from "
         "the remaining operands for this operator or function; operator: "
         "=, first operand: [a]");
  msg_is(DF_DDB_FILTER, "((a = :a))", NULL, "{':a': 1}",
         "Invalid FilterExpression: The expression has redundant "
         "parentheses;");
  msg_is(DF_DDB_FILTER, "a BETWEEN :b AND :a", NULL, "{':a': 1, ':b': 2}",
         "Invalid FilterExpression: The BETWEEN operator requires upper "
         "bound to be greater than or equal to lower bound; lower bound "
         "operand: AttributeValue: {N:2}, upper bound operand: "
         "AttributeValue: {N:1}");
  msg_is(DF_DDB_FILTER, "a < :l", NULL, "{':l': [1]}",
         "Invalid FilterExpression: Incorrect operand type for operator or "
         "function; operator or function: <, operand type: L");
  msg_is(DF_DDB_PROJECTION, "a.b, a", NULL, NULL,
         "Invalid ProjectionExpression: Two document paths overlap with each "
         "other; must remove or rewrite one of these paths; path one: [a, "
         "b], path two: [a]");
  msg_is(DF_DDB_PROJECTION, "a[0], a.b", NULL, NULL,
         "Invalid ProjectionExpression: Two document paths conflict with "
         "each other; must remove or rewrite one of these paths; path one: "
         "[a, [0]], path two: [a, b]");
}

static void test_args(void) {
  char err[300];
  int rc;
  df_ddb_args *a = args("{'n': 'x'}", NULL, err, sizeof err, &rc);
  CHECK_EQ_INT(rc, DF_EVALIDATION);
  CHECK_EQ_STR(err,
               "ExpressionAttributeNames contains invalid key: Syntax "
               "error; token: \"n\", near: \"n\"");
  df_ddb_args_free(a);
  a = args(NULL, "{'v': 1}", err, sizeof err, &rc);
  CHECK_EQ_INT(rc, DF_EVALIDATION);
  CHECK_EQ_STR(err,
               "ExpressionAttributeValues contains invalid key: Syntax "
               "error; token: \"v\", near: \"v\"");
  df_ddb_args_free(a);
  a = args(NULL, "{}", err, sizeof err, &rc);
  CHECK_EQ_STR(err, "ExpressionAttributeValues must not be empty");
  df_ddb_args_free(a);
  /* unused placeholders, across the expressions of one request */
  a = args("{'#a': 'a', '#b': 'b', '#c': 'c'}", "{':x': 1, ':y': 2}", err,
           sizeof err, &rc);
  CHECK_EQ_INT(rc, 0);
  {
    df_expr *e1 = NULL, *e2 = NULL;
    CHECK_EQ_INT(df_ddb_condition(a, DF_DDB_CONDITION, "#a = :x", 7, &e1, err,
                                  sizeof err),
                 0);
    CHECK_EQ_INT(df_ddb_args_check_unused(a, err, sizeof err), DF_EVALIDATION);
    CHECK_EQ_STR(err,
                 "Value provided in ExpressionAttributeNames unused in "
                 "expressions: keys: {#b, #c}");
    CHECK_EQ_INT(df_ddb_condition(a, DF_DDB_FILTER, "#b = :y OR #c = :y", 18,
                                  &e2, err, sizeof err),
                 0);
    CHECK_EQ_INT(df_ddb_args_check_unused(a, err, sizeof err), 0);
    df_expr_free(e1);
    df_expr_free(e2);
  }
  df_ddb_args_free(a);
  a = args(NULL, "{':x': 1, ':y': 2}", err, sizeof err, &rc);
  {
    df_expr *e = NULL;
    df_ddb_condition(a, DF_DDB_CONDITION, "q = :x", 6, &e, err, sizeof err);
    CHECK_EQ_INT(df_ddb_args_check_unused(a, err, sizeof err), DF_EVALIDATION);
    CHECK_EQ_STR(err,
                 "Value provided in ExpressionAttributeValues unused in "
                 "expressions: keys: {:y}");
    df_expr_free(e);
  }
  df_ddb_args_free(a);
}

static void test_limits(void) {
  char src[5000], err[300];
  size_t i, k = 0;
  df_expr *e = NULL;
  int rc;
  df_ddb_args *a = args(NULL, "{':v': 1}", err, sizeof err, &rc);
  memset(src, 0, sizeof src);
  for (i = 0; k < 4100; i++) k += (size_t)sprintf(src + k, "a = :v OR ");
  rc =
      df_ddb_condition(a, DF_DDB_FILTER, src, strlen(src), &e, err, sizeof err);
  CHECK_EQ_INT(rc, DF_EVALIDATION);
  CHECK(strstr(err, "Expression size has exceeded the maximum allowed size"));
  /* 101 operands for IN */
  k = (size_t)sprintf(src, "a IN (");
  for (i = 0; i < 101; i++) k += (size_t)sprintf(src + k, i ? ", :v" : ":v");
  sprintf(src + k, ")");
  rc =
      df_ddb_condition(a, DF_DDB_FILTER, src, strlen(src), &e, err, sizeof err);
  CHECK_EQ_STR(err,
               "Invalid FilterExpression: The IN operator is provided "
               "with too many operands; number of operands: 101");
  /* deep parentheses are refused, not a stack overflow */
  for (i = 0; i < 2000; i++) src[i] = '(';
  src[2000] = 0;
  rc = df_ddb_condition(a, DF_DDB_FILTER, src, 2000, &e, err, sizeof err);
  CHECK_EQ_INT(rc, DF_EVALIDATION);
  /* a 33-level path */
  k = 0;
  for (i = 0; i < 33; i++) k += (size_t)sprintf(src + k, i ? ".a" : "a");
  sprintf(src + k, " = :v");
  rc =
      df_ddb_condition(a, DF_DDB_FILTER, src, strlen(src), &e, err, sizeof err);
  CHECK_EQ_STR(err,
               "Invalid FilterExpression: The document path has too "
               "many nesting levels; nesting levels: 33");
  df_ddb_args_free(a);
}

static void key_cond(const char *src, const char *values, int want_rc,
                     int want_cond, const char *want_msg) {
  char err[300];
  int rc;
  df_ddb_args *a = args("{'#s': 'SK'}", values, err, sizeof err, &rc);
  df_key_condition kc;
  rc = df_ddb_key_condition(a, src, strlen(src), "PK", "SK", &kc, err,
                            sizeof err);
  CHECK_EQ_INT(rc, want_rc);
  if (!rc) CHECK_EQ_INT(kc.cond, want_cond);
  if (want_msg) CHECK_EQ_STR(err, want_msg);
  df_ddb_args_free(a);
}

static void test_key_conditions(void) {
  char err[300];
  int rc;
  df_key_condition kc;
  df_ddb_args *a = args(NULL, "{':p': 'user#1', ':lo': 'a', ':hi': 'm'}", err,
                        sizeof err, &rc);
  rc = df_ddb_key_condition(a, "PK = :p AND SK BETWEEN :lo AND :hi", 34, "PK",
                            "SK", &kc, err, sizeof err);
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_INT(kc.cond, DF_COND_BETWEEN);
  CHECK_EQ_MEM(kc.pk.s, kc.pk.n, "user#1", 6);
  CHECK_EQ_MEM(kc.lo.s, kc.lo.n, "a", 1);
  CHECK_EQ_MEM(kc.hi.s, kc.hi.n, "m", 1);
  df_ddb_args_free(a);
  key_cond("PK = :p AND begins_with(#s, :lo)", "{':p': 1, ':lo': 'x'}", 0,
           DF_COND_BEGINS_WITH, NULL);
  key_cond(":p = PK AND :lo < #s", "{':p': 1, ':lo': 'x'}", 0, DF_COND_GT,
           NULL);
  key_cond("PK = :p", "{':p': 1, ':lo': 'x'}", 0, DF_COND_NONE, NULL);
  key_cond("#s = :lo", "{':lo': 'x'}", DF_EVALIDATION, 0,
           "Invalid KeyConditionExpression: Query condition missed key schema "
           "element: PK");
  key_cond("PK = :p OR #s = :lo", "{':p': 1, ':lo': 'x'}", DF_EVALIDATION, 0,
           "Invalid KeyConditionExpression: Invalid operator used in "
           "KeyConditionExpression: OR");
  key_cond("PK = :p AND PK = :lo", "{':p': 1, ':lo': 'x'}", DF_EVALIDATION, 0,
           "Invalid KeyConditionExpression: KeyConditionExpressions must only "
           "contain one condition per key");
  key_cond("PK < :p", "{':p': 1}", DF_EVALIDATION, 0,
           "Invalid KeyConditionExpression: Query key condition not "
           "supported");
  key_cond("PK = :p AND #s.x = :lo", "{':p': 1, ':lo': 'x'}", DF_EVALIDATION, 0,
           "Invalid KeyConditionExpression: KeyConditionExpressions cannot "
           "have conditions on nested attributes");
}

/* Project `item` with `src`, compare with the notation `want`. */
static void proj(const char *src, const char *names, const char *item,
                 const char *want) {
  char err[300];
  int rc;
  df_ddb_args *a = names ? args(names, NULL, err, sizeof err, &rc) : NULL;
  df_projection *pr = NULL;
  const void *out;
  size_t outlen;
  df_buf w;
  rc = df_ddb_projection(a, src, strlen(src), &pr, err, sizeof err);
  df_ddb_args_free(a);
  CHECK_EQ_INT(rc, 0);
  if (rc) {
    fprintf(stderr, "  %s\n", err);
    return;
  }
  build(&g_item, item);
  rc = df_projection_apply(pr, g_item.p, g_item.len, &out, &outlen);
  CHECK_EQ_INT(rc, 0);
  df__buf_init(&w);
  build(&w, want);
  if (!CHECK_EQ_MEM(out, outlen, w.p, w.len))
    fprintf(stderr, "  projection %s of %s\n", src, item);
  df__buf_free(&w);
  df_projection_free(pr);
}

static void test_projection(void) {
  const char *it =
      "{'PK': 'p', 'a': 1, 'b': {'c': 2, 'd': [10, 20, 30]}, "
      "'e': 'x'}";
  proj("a", NULL, it, "{'a': 1}");
  proj("e, a", NULL, it, "{'a': 1, 'e': 'x'}");
  proj("b.c", NULL, it, "{'b': {'c': 2}}");
  proj("b.d[2], b.d[0]", NULL, it, "{'b': {'d': [10, 30]}}");
  proj("#x.d", "{'#x': 'b'}", it, "{'b': {'d': [10, 20, 30]}}");
  proj("nope, b.nope, b.d[7]", NULL, it, "{}");
  proj("b.c.deeper", NULL, it, "{}");
}

int main(void) {
  df__buf_init(&g_item);
  df__buf_init(&g_names);
  df__buf_init(&g_values);
  RUN_TEST(test_comparisons);
  RUN_TEST(test_missing);
  RUN_TEST(test_precedence);
  RUN_TEST(test_functions);
  RUN_TEST(test_messages);
  RUN_TEST(test_args);
  RUN_TEST(test_limits);
  RUN_TEST(test_key_conditions);
  RUN_TEST(test_projection);
  df__buf_free(&g_item);
  df__buf_free(&g_names);
  df__buf_free(&g_values);
  return check_done("test_ddbexpr");
}
