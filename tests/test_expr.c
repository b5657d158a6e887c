/*
 * test_expr.c -- unit tests for expr.c: the filter/condition language's
 * parser (precedence, literals, paths, error messages with columns,
 * hostile input) and its evaluator on MessagePack item bytes (types,
 * missing attributes, functions, regex, corrupt bytes).
 *
 * Items are written in a small JSON-like notation ('single' quotes for
 * strings, x'..' for binaries, n for nil, 1.0 for floats, d'..' for a
 * number in its canonical stored form, <..> for a set of the kind of its
 * first element) and encoded with
 * df__mp_put_*; each is evaluated from a heap copy of exactly its length,
 * so an AddressSanitizer build catches any read past the end.
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

/* <e, ...>: a set of the kind of its first element. */
static int enc_set(const char **s, df_buf *b) {
  size_t start = b->len, n = 0;
  df_type kind;
  int rc = 0;
  (*s)++;
  skip_ws(s);
  kind = **s == '\'' ? DF_TSS : **s == 'x' ? DF_TBS : DF_TNS;
  while (**s != '>' && !rc) {
    rc = enc(s, b);
    n++;
    skip_ws(s);
    if (**s == ',') (*s)++;
    skip_ws(s);
  }
  (*s)++;
  return rc ? rc : df__mp_finish_set(b, start, kind, n, NULL);
}

static int enc(const char **s, df_buf *b) {
  skip_ws(s);
  if (**s == '{') return enc_container(s, b, '}', 1);
  if (**s == '[') return enc_container(s, b, ']', 0);
  if (**s == '<') return enc_set(s, b);
  if (**s == 'd' && (*s)[1] == '\'') {
    const char *st = *s + 2;
    df_dec d;
    *s = strchr(st, '\'') + 1;
    if (df__dec_parse(st, (size_t)(*s - st - 1), &d)) return -1;
    return df__mp_put_dec(b, &d);
  }
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

/* Evaluate src on raw bytes (copied to an exact-size heap block).
 * Compile failures return -100 and print the message. */
static int eval_raw(const char *src, const void *item, size_t len) {
  df_expr *e = NULL;
  char err[200];
  unsigned char *copy = NULL;
  int rc = df_expr_compile(src, strlen(src), &e, err, sizeof err);
  if (rc) {
    fprintf(stderr, "compile failed (%d) for %s: %s\n", rc, src, err);
    return -100;
  }
  if (item) {
    copy = malloc(len ? len : 1);
    memcpy(copy, item, len);
  }
  rc = df_expr_eval(e, copy, len);
  free(copy);
  df_expr_free(e);
  return rc;
}

/* Evaluate src on the item written as json. */
static int ev(const char *src, const char *json) {
  df_buf b;
  int rc;
  df__buf_init(&b);
  build(&b, json);
  rc = eval_raw(src, b.p, b.len);
  df__buf_free(&b);
  return rc;
}

#define T(src, json) CHECK_EQ_INT(ev(src, json), 1)
#define F(src, json) CHECK_EQ_INT(ev(src, json), 0)

/* Expect a syntax error with exactly this message. */
static void syn(const char *src, size_t len, const char *want) {
  df_expr *e = (df_expr *)1;
  char err[200];
  int rc = df_expr_compile(src, len, &e, err, sizeof err);
  CHECK_EQ_INT(rc, DF_EVALIDATION);
  CHECK(e == NULL);
  CHECK_EQ_STR(err, want);
  if (rc == 0) df_expr_free(e);
}

#define SYN(src, want) syn(src, strlen(src), want)

/* Expect a syntax error whose message starts with want. */
static void syn_prefix(const char *src, const char *want) {
  df_expr *e = NULL;
  char err[200];
  int rc = df_expr_compile(src, strlen(src), &e, err, sizeof err);
  CHECK_EQ_INT(rc, DF_EVALIDATION);
  if (!check_record(!strncmp(err, want, strlen(want)), __FILE__, __LINE__,
                    want))
    fprintf(stderr, "  got \"%s\" for %s\n", err, src);
  df_expr_free(e);
}

/* ---------------------------------------------------------------- tests */

static void test_seed_examples(void) {
  T("SK =~ /^a/", "{'PK':'p','SK':'abc'}");
  F("SK =~ /^a/", "{'PK':'p','SK':'bac'}");
  T("SK == 1", "{'PK':'p','SK':1}");
  F("SK == 1", "{'PK':'p','SK':'1'}");
  T("data.count > 0", "{'data':{'count':3}}");
  F("data.count > 0", "{'data':{'count':0}}");
  F("data.count > 0", "{'data':{'other':3}}");
  F("data.count > 0", "{'data':5}");
}

static void test_precedence(void) {
  const char *src = "a == 1 or b == 2 and c == 3";
  T(src, "{'a':1,'b':0,'c':0}");
  F(src, "{'a':0,'b':2,'c':0}");
  T(src, "{'a':0,'b':2,'c':3}");
  F(src, "{'a':0,'b':0,'c':3}");
  /* parentheses override */
  F("(a == 1 or b == 2) and c == 3", "{'a':1,'b':0,'c':0}");
  T("(a == 1 or b == 2) and c == 3", "{'a':1,'b':0,'c':3}");
  /* not binds tighter than and/or, looser than comparisons */
  T("not a == 1", "{'a':2}");
  F("not a == 1", "{'a':1}");
  T("not a == 1", "{}");
  T("not a == 1 and b == 2", "{'a':0,'b':2}");
  F("not a == 1 and b == 2", "{'a':0,'b':3}");
  T("not (a == 1 and b == 2)", "{'a':1,'b':3}");
  T("not not a == 1", "{'a':1}");
  F("not not not a == 1", "{'a':1}");
  T("!(a == 1) && b == 2 || c == 3", "{'c':3}");
  T("!(a == 1) && b == 2 || c == 3", "{'a':0,'b':2}");
  F("!(a == 1) && b == 2 || c == 3", "{'a':1,'b':2}");
  T("a == 1 AND b == 2 OR NOT c == 3", "{}");
  T("((((a == 1))))", "{'a':1}");
  T("a=1 and b<>2", "{'a':1,'b':3}");
  T("a==1 and(b==2)", "{'a':1,'b':2}");
  T("(a==1)and(b==2)", "{'a':1,'b':2}");
}

static void test_compare(void) {
  const char *it = "{'i':5,'f':2.5,'s':'abc','t':true,'z':n,'l':[1,2]}";
  T("i == 5", it);
  T("i != 4", it);
  T("i < 6", it);
  T("i <= 5", it);
  T("i > 4", it);
  T("i >= 5", it);
  F("i < 5", it);
  F("i > 5", it);
  T("5 == i", it);
  T("4 < i", it);
  F("6 < i", it);
  T("f > 2", it);
  T("f < 3", it);
  T("f == 2.5", it);
  T("f == 25e-1", it);
  T("s == 'abc'", it);
  T("s == \"abc\"", it);
  T("s < 'abd'", it);
  T("s > 'ab'", it);
  T("s >= 'abc'", it);
  F("s < 'abc'", it);
  T("t == true", it);
  F("t == false", it);
  T("t > false", it);
  T("z == null", it);
  F("z != null", it);
  T("s != null", it);
  F("i == null", it);
  F("z < null", it);
  F("z <= null", it);
  /* type mismatches: false, never an error; != is their negation */
  F("s == 1", it);
  T("s != 1", it);
  F("s < 1", it);
  F("s > 1", it);
  F("s <= 1", it);
  F("s >= 1", it);
  F("i == '5'", it);
  T("i != '5'", it);
  F("t == 1", it);
  F("t > 0", it);
  F("l > 1", it);
  F("l == 1", it);
  T("l != 1", it);
  /* path vs path */
  T("i > f", it);
  F("i == s", it);
  T("i != s", it);
  T("l == l", it);
  /* int vs float */
  T("one == 1.0", "{'one':1}");
  T("one == 1", "{'one':1.0}");
  T("one >= 1", "{'one':1.0}");
  T("one < 1.5", "{'one':1}");
  T("a == b", "{'a':1,'b':1.0}");
  /* big integers: exact, beyond double precision */
  T("u == 18446744073709551615", "{'u':18446744073709551615}");
  F("u == 18446744073709551614", "{'u':18446744073709551615}");
  T("u > 9223372036854775807", "{'u':18446744073709551615}");
  T("n == -9223372036854775808", "{'n':-9223372036854775808}");
  T("n < -9223372036854775807", "{'n':-9223372036854775808}");
  T("n == 9007199254740993", "{'n':9007199254740993}");
  F("n == 9007199254740992.0", "{'n':9007199254740993}");
  T("n > 9007199254740992.0", "{'n':9007199254740993}");
  /* integer literal beyond 64 bits becomes a float */
  T("n < 18446744073709551616", "{'n':18446744073709551615}");
  T("n == 1e20", "{'n':1e20}");
  T("n == 100000000000000000000", "{'n':1e20}");
  T("n == -2.5E+3", "{'n':-2500}");
  T("n == -0", "{'n':0}");
  /* escapes */
  {
    df_buf b;
    df__buf_init(&b);
    df__mp_put_map(&b, 1);
    df__mp_put_str(&b, "s", 1);
    df__mp_put_str(&b, "a\tbA'\"\\`\n\r", 10);
    CHECK_EQ_INT(eval_raw("s == 'a\\tb\\x41\\'\\\"\\\\\\`\\n\\r'", b.p, b.len),
                 1);
    CHECK_EQ_INT(eval_raw("s == \"a\\tb\\x41'\\\"\\\\`\\n\\r\"", b.p, b.len),
                 1);
    CHECK_EQ_INT(eval_raw("s == 'a\\tb\\x42\\'\\\"\\\\\\`\\n\\r'", b.p, b.len),
                 0);
    df__buf_free(&b);
  }
  /* deep equality of containers, maps regardless of key order */
  T("a == b", "{'a':{'x':1,'y':[1,'z']},'b':{'y':[1.0,'z'],'x':1}}");
  F("a == b", "{'a':{'x':1,'y':[1,'z']},'b':{'y':[1,'y'],'x':1}}");
  F("a == b", "{'a':{'x':1},'b':{'y':1}}");
  F("a == b", "{'a':[1,2],'b':[1,2,3]}");
  F("a == b", "{'a':[1,2],'b':{'1':2}}");
  T("a != b", "{'a':[1,2],'b':[2,1]}");
  F("a < b", "{'a':[1],'b':[2]}");
  /* binaries are DynamoDB's B, a type of their own: never equal to a
   * string (datamodel-values) */
  F("b == 'ab'", "{'b':x'ab'}");
  T("b == c", "{'b':x'ab','c':x'ab'}");
  T("b < c", "{'b':x'ab','c':x'ac'}");
}

/* DynamoDB's sets and exact decimals (datamodel-values). */
static void test_sets_and_decimals(void) {
  const char *it =
      "{'ss':<'b','a'>,'ns':<1,2.5,d'0.10000000000000001'>,"
      "'bs':<x'01',x'02'>,'ss2':<'a','b'>,'d':d'0.10000000000000001',"
      "'big':d'12345678901234567890123456789012345678'}";
  T("size(ss) == 2", it);
  T("size(ns) == 3", it);
  T("contains(ss, 'a')", it);
  F("contains(ss, 'c')", it);
  T("contains(ns, 1.0)", it);
  T("contains(ns, 2.5)", it);
  F("contains(ns, 0.1)", it);
  F("contains(ss, 1)", it);
  T("ss == ss2", it);
  F("ss == ns", it);
  F("ss < ss2", it);
  F("d == 0.1", it);
  T("d > 0.1", it);
  T("d < 0.10000000000000002", it);
  T("big < 1.2345678901234568e37", it); /* the double nearest */
  T("big > 1.2345678901234566e37", it);
  F("big < 1", it);
}

static void test_missing(void) {
  const char *it = "{'a':1}";
  F("x == 1", it);
  F("x != 1", it);
  F("x < 1", it);
  F("x >= 1", it);
  F("x == null", it);
  F("x != null", it);
  F("1 == x", it);
  F("x == y", it);
  F("x != y", it);
  F("a != x", it);
  F("x in [1, null]", it);
  F("x =~ /.*/", it);
  F("begins_with(x, '')", it);
  F("contains(x, 1)", it);
  F("size(x) == 0", it);
  F("size(x) != 0", it);
  F("exists(x)", it);
  T("not exists(x)", it);
  T("not x == 1", it);
  T("not x != 1", it);
  F("a.b == 1", it);
  F("a[0] == 1", it);
  F("l[5] == 1", "{'l':[1,2]}");
  F("l.x == 1", "{'l':[1,2]}");
  F("m[0] == 1", "{'m':{'0':1}}");
  /* no item: every attribute missing */
  CHECK_EQ_INT(eval_raw("a == 1", NULL, 0), 0);
  CHECK_EQ_INT(eval_raw("a != 1", NULL, 0), 0);
  CHECK_EQ_INT(eval_raw("not exists(a)", NULL, 0), 1);
  CHECK_EQ_INT(eval_raw("not exists(a)", "", 0), 1);
  CHECK_EQ_INT(eval_raw("exists(a) or not exists(a)", NULL, 0), 1);
  /* a top-level value that is not a map has no attributes */
  CHECK_EQ_INT(eval_raw("a == 1", "\x05", 1), 0);
}

/* A bare attribute is a truth test, as Lua judges values. */
static void test_truth(void) {
  CHECK_EQ_INT(ev("flag", "{'flag': true}"), 1);
  CHECK_EQ_INT(ev("flag", "{'flag': false}"), 0);
  CHECK_EQ_INT(ev("flag", "{'flag': n}"), 0);
  CHECK_EQ_INT(ev("flag", "{'other': true}"), 0);
  CHECK_EQ_INT(ev("flag", "{'flag': 0}"), 1);
  CHECK_EQ_INT(ev("flag", "{'flag': ''}"), 1);
  CHECK_EQ_INT(ev("not flag and m.x", "{'m': {'x': 1}}"), 1);
  CHECK_EQ_INT(ev("(flag) or flag2", "{'flag2': [1]}"), 1);
}

static void test_in(void) {
  T("s in ['a', 'b']", "{'s':'b'}");
  F("s in ['a', 'b']", "{'s':'c'}");
  T("n in [1, 2.0, 'x']", "{'n':2}");
  T("n in [1, 2.0, 'x']", "{'n':1.0}");
  F("n in [1, 2.0, 'x']", "{'n':'2'}");
  F("n in []", "{'n':1}");
  T("n in [null]", "{'n':n}");
  T("n in [true,false]", "{'n':false}");
  T("l[1] in [5]", "{'l':[4,5]}");
  T("size(l) in [2]", "{'l':[4,5]}");
  T("n IN [1]", "{'n':1}");
  T("n in[1]", "{'n':1}");
}

static void test_paths(void) {
  const char *it =
      "{'list':['a','b',{'c':7}],'a':{'b':[0,1,{'c':'deep'}]},"
      "'my attr':{'x':1},'and':3,'x-y':[9]}";
  T("list[1] == 'b'", it);
  T("list[0] == 'a'", it);
  T("list[2].c == 7", it);
  F("list[3] == 'a'", it);
  T("a.b[2].c == 'deep'", it);
  T("a.b[1] == 1", it);
  T("`my attr`.x == 1", it);
  T("`and` == 3", it);
  T("`x-y`[0] == 9", it);
  T("exists(`my attr`)", it);
  T("a.and == 1 or a.b[0] == 0", it);
  T("size == 3", "{'size':3}");
  T("exists == 1", "{'exists':1}");
  T("`a\\`b` == 1", "{'a`b':1}");
  T("_x1 == 1", "{'_x1':1}");
  /* a path of exactly DF_MAX_DEPTH segments compiles */
  {
    char buf[200];
    int i, k = 0;
    k += sprintf(buf + k, "a");
    for (i = 1; i < DF_MAX_DEPTH; i++) k += sprintf(buf + k, "[0]");
    sprintf(buf + k, " == 1");
    CHECK_EQ_INT(eval_raw(buf, NULL, 0), 0);
    sprintf(buf + k, "[0] == 1");
    syn(buf, strlen(buf), "filter: path longer than 32 segments at column 1");
  }
}

static void test_functions(void) {
  const char *it =
      "{'s':'hello world','tags':['x','y','z'],'nums':[1,2.5,3],"
      "'m':{'a':1,'b':2},'n':42,'e':'','bn':x'abc',"
      "'nest':[[1,2],{'k':'v'}]}";
  T("exists(s)", it);
  T("exists(m.a)", it);
  F("exists(m.c)", it);
  T("exists(tags[2])", it);
  F("exists(tags[3])", it);
  T("exists(z)", "{'z':n}");
  T("begins_with(s, 'hello')", it);
  T("begins_with(s, '')", it);
  T("begins_with(s, 'hello world')", it);
  F("begins_with(s, 'hello world!')", it);
  F("begins_with(s, 'world')", it);
  F("begins_with(n, '4')", it);
  F("begins_with(tags, 'x')", it);
  T("begins_with(bn, 'ab')", it);
  T("contains(s, 'o w')", it);
  T("contains(s, '')", it);
  T("contains(s, 'world')", it);
  F("contains(s, 'worlds')", it);
  F("contains(s, 1)", it);
  T("contains(tags, 'y')", it);
  F("contains(tags, 'w')", it);
  F("contains(tags, 1)", it);
  T("contains(nums, 2.5)", it);
  T("contains(nums, 3.0)", it);
  F("contains(nums, '3')", it);
  F("contains(m, 'a')", it);
  F("contains(n, 4)", it);
  T("contains(nest, nest[0])", it);
  T("contains(nest, nest[1])", it);
  F("contains(nest, nest[0][0])", it);
  T("contains(tags, tags[0])", it);
  T("size(s) == 11", it);
  T("size(tags) > 2", it);
  F("size(tags) > 3", it);
  T("size(m) == 2", it);
  T("size(e) == 0", it);
  T("size(bn) == 3", it);
  T("size(nest[0]) == 2", it);
  F("size(n) == 0", it);
  F("size(n) != 0", it);
  T("3 == size(tags)", it);
  T("size(tags) == size(nums)", it);
  T("size (tags) == 3 and exists (s)", it);
}

static void test_regex(void) {
  const char *it = "{'SK':'abc','p':'a/b','u':'ABC','n':5,'l':['abc']}";
  T("SK =~ /^a/", it);
  T("SK =~ /c$/", it);
  T("SK =~ /^abc$/", it);
  F("SK =~ /^b/", it);
  F("SK =~ /^ab$/", it);
  T("SK =~ /b/", it);
  T("SK =~ /^(a|x)b+c?$/", it);
  F("u =~ /^abc$/", it);
  T("u =~ /^abc$/i", it);
  T("u=~/^ABC$/", it);
  T("p =~ /^a\\/b$/", it);
  T("p =~ /^a[\\/]b$/", it);
  T("SK =~ /^a.c$/", it);
  F("SK =~ /^a\\.c$/", it);
  T("SK =~ /^[[:lower:]]{3}$/", it);
  F("n =~ /5/", it);
  F("l =~ /abc/", it);
  T("not SK =~ /^b/", it);
  T("SK =~ /^a/ and u =~ /C$/", it);
  /* stored strings are not NUL terminated; an embedded NUL is a byte */
  {
    df_buf b;
    df__buf_init(&b);
    df__mp_put_map(&b, 1);
    df__mp_put_str(&b, "s", 1);
    df__mp_put_str(&b, "ab\0cd", 5);
    CHECK_EQ_INT(eval_raw("s =~ /d$/", b.p, b.len), 1);
    CHECK_EQ_INT(eval_raw("s =~ /^ab$/", b.p, b.len), 0);
    CHECK_EQ_INT(eval_raw("size(s) == 5", b.p, b.len), 1);
    CHECK_EQ_INT(eval_raw("s == 'ab\\0cd'", b.p, b.len), 1);
    CHECK_EQ_INT(eval_raw("contains(s, 'b\\x00c')", b.p, b.len), 1);
    df__buf_free(&b);
  }
  /* the matched string ends where its bytes end, not at the next NUL */
  {
    df_buf b;
    df__buf_init(&b);
    df__mp_put_map(&b, 2);
    df__mp_put_str(&b, "s", 1);
    df__mp_put_str(&b, "ab", 2);
    df__mp_put_str(&b, "t", 1);
    df__mp_put_str(&b, "cd", 2);
    CHECK_EQ_INT(eval_raw("s =~ /^ab$/", b.p, b.len), 1);
    CHECK_EQ_INT(eval_raw("s =~ /c/", b.p, b.len), 0);
    df__buf_free(&b);
  }
}

static void test_syntax_errors(void) {
  SYN("a == 1 and )", "filter: unexpected token ')' at column 12");
  SYN("(a == 1) and b == 2)", "filter: unexpected token ')' at column 20");
  SYN("", "filter: empty expression at column 1");
  SYN("   \t\n", "filter: empty expression at column 6");
  SYN("a ==", "filter: unexpected end of expression at column 5");
  SYN("(a == 1", "filter: unexpected end of expression at column 8");
  SYN("a == 1 b", "filter: unexpected token 'b' at column 8");
  SYN("a == 1 2", "filter: unexpected token '2' at column 8");
  SYN("1",
      "filter: a constant alone is not a condition at column 2; "
      "compare an attribute with it");
  SYN("true == 6",
      "filter: comparison of two constants at column 10: it "
      "does not depend on the item; compare an attribute");
  SYN("a b", "filter: unexpected token 'b' at column 3");
  SYN("a == == 1", "filter: unexpected token '==' at column 6");
  SYN("a == \"abc", "filter: unterminated string at column 6");
  SYN("a == 'abc\\'", "filter: unterminated string at column 6");
  SYN("a =~ /abc", "filter: unterminated regex at column 6");
  SYN("a =~ /abc\\/", "filter: unterminated regex at column 6");
  SYN("a =~ abc", "filter: expected /regex/ after '=~' at column 6");
  SYN("a =~ /x/g", "filter: unknown regex flag 'g' at column 9");
  SYN("a =~ /x/in", "filter: unknown regex flag 'in' at column 9");
  syn_prefix("a =~ /(/", "filter: bad regex at column 6: ");
  syn_prefix("x == 1 or a =~ /a{2,1}/", "filter: bad regex at column 16: ");
  syn_prefix("a =~ /(a)\\1/", "filter: bad regex at column 6: back-ref");
  SYN("foo(a)", "filter: unknown function 'foo' at column 1");
  SYN("a == 1 or bar (x) == 2", "filter: unknown function 'bar' at column 11");
  SYN("a == 'x\\q'", "filter: invalid escape '\\q' at column 8");
  SYN("a == 'x\\x4'", "filter: bad \\x escape (two hex digits) at column 8");
  SYN("a. == 1", "filter: expected a name after '.' at column 3");
  SYN("a[x] == 1", "filter: expected a list index at column 2");
  SYN("a[] == 1", "filter: expected a list index at column 2");
  /* list positions: 2^31 - 1 at most, in C and Lua alike (codec.c) */
  SYN("a[2147483648] == 1",
      "filter: list index too large (at most 2147483647) at column 3");
  SYN("a[2147483647].`b\\q` == 1", "filter: invalid escape '\\q' at column 17");
  SYN("a @ 1", "filter: unexpected character '@' at column 3");
  SYN("a == 1 & b == 2", "filter: unexpected character '&' at column 8");
  SYN("12abc == a", "filter: malformed number at column 1");
  SYN("a==1and b==2", "filter: malformed number at column 4");
  /* an unescaped slash ends the regex, even inside brackets */
  syn_prefix("p =~ /^a[/]b$/", "filter: bad regex at column 6: ");
  SYN("a == 1.2.3", "filter: malformed number at column 6");
  SYN("a in [1, 2,]", "filter: unexpected token ']' at column 12");
  SYN("a in [1, b]", "filter: unexpected token 'b' at column 10");
  SYN("a in 1", "filter: unexpected token '1' at column 6");
  SYN("exists(1)", "filter: unexpected token '1' at column 8");
  SYN("exists(a, b)", "filter: unexpected token ',' at column 9");
  SYN("begins_with(a)", "filter: unexpected token ')' at column 14");
  SYN("size(a)", "filter: unexpected end of expression at column 8");
  SYN("a == exists(b)", "filter: unexpected token 'exists' at column 6");
  SYN("exists(a) == 1", "filter: unexpected token '==' at column 11");
  SYN("not", "filter: unexpected end of expression at column 4");
  SYN("a == 1 or", "filter: unexpected end of expression at column 10");
  SYN("and == 1", "filter: unexpected token 'and' at column 1");
  SYN("()", "filter: unexpected token ')' at column 2");
  SYN("`abc == 1", "filter: unterminated name at column 1");
  syn("a == 1\0", 7, "filter: unexpected character '\\x00' at column 7");
  syn("a =~ /a\0/", 9, "filter: NUL byte in regex at column 8");
  /* nesting: 64 levels compile, 65 do not */
  {
    char buf[300];
    int i, k = 0;
    for (i = 0; i < 64; i++) buf[k++] = '(';
    k += sprintf(buf + k, "a == 1");
    for (i = 0; i < 64; i++) buf[k++] = ')';
    buf[k] = 0;
    CHECK_EQ_INT(eval_raw(buf, "\x81\xa1\x61\x01", 4), 1);
    k = 0;
    for (i = 0; i < 65; i++) buf[k++] = '(';
    k += sprintf(buf + k, "a == 1");
    for (i = 0; i < 65; i++) buf[k++] = ')';
    buf[k] = 0;
    SYN(buf, "filter: nesting deeper than 64 at column 65");
  }
  /* long token text is shortened in messages */
  SYN("a == 1 abcdefghijklmnopqrstuvwxyz",
      "filter: unexpected token 'abcdefghijklmnopqrstuvwx...' at column 8");
  /* errors with a tiny or absent message buffer */
  {
    df_expr *e = NULL;
    char small[8];
    CHECK_EQ_INT(df_expr_compile("a ==", 4, &e, small, sizeof small),
                 DF_EVALIDATION);
    CHECK_EQ_STR(small, "filter:");
    CHECK_EQ_INT(df_expr_compile("a ==", 4, &e, NULL, 0), DF_EVALIDATION);
    CHECK(e == NULL);
    CHECK_EQ_INT(df_expr_compile(NULL, 0, &e, NULL, 0), DF_EVALIDATION);
    CHECK_EQ_INT(df_expr_compile(NULL, 3, &e, NULL, 0), DF_EINVAL);
    CHECK_EQ_INT(df_expr_compile("a == 1", 6, NULL, NULL, 0), DF_EINVAL);
    CHECK_EQ_INT(df_expr_eval(NULL, NULL, 0), DF_EINVAL);
    df_expr_free(NULL);
  }
  /* the length is honoured: no NUL needed, bytes after len ignored */
  {
    df_expr *e = NULL;
    char err[100];
    CHECK_EQ_INT(df_expr_compile("a == 1 garbage", 6, &e, err, sizeof err), 0);
    CHECK_EQ_STR(err, "");
    CHECK_EQ_INT(df_expr_eval(e, "\x81\xa1\x61\x01", 4), 1);
    df_expr_free(e);
  }
}

static void test_hostile(void) {
  size_t n = 200000, i;
  char *buf = malloc(n * 8 + 64);
  df_expr *e = NULL;
  char err[200];
  int rc;
  /* a long chain of not folds, no deep tree */
  for (i = 0; i < n; i++) memcpy(buf + i * 4, "not ", 4);
  strcpy(buf + n * 4, "a == 1");
  rc = df_expr_compile(buf, strlen(buf), &e, err, sizeof err);
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_INT(df_expr_eval(e, "\x81\xa1\x61\x01", 4), 1);
  df_expr_free(e);
  /* many ( without a stack overflow */
  memset(buf, '(', n);
  buf[n] = 0;
  rc = df_expr_compile(buf, n, &e, err, sizeof err);
  CHECK_EQ_INT(rc, DF_EVALIDATION);
  CHECK_EQ_STR(err, "filter: nesting deeper than 64 at column 65");
  /* a long or-chain is flat: evaluates without deep recursion */
  {
    size_t k = 0;
    for (i = 0; i < n / 2; i++)
      k += (size_t)sprintf(buf + k, "a==%zu or ", i + 2);
    k += (size_t)sprintf(buf + k, "a==1");
    rc = df_expr_compile(buf, k, &e, err, sizeof err);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(df_expr_eval(e, "\x81\xa1\x61\x01", 4), 1);
    CHECK_EQ_INT(df_expr_eval(e, "\x81\xa1\x61\x00", 4), 0);
    df_expr_free(e);
  }
  /* regexes that would make regcomp recurse or explode */
  memcpy(buf, "a =~ /", 6);
  memset(buf + 6, '(', 40);
  buf[46] = '/';
  buf[47] = 0;
  syn_prefix(buf, "filter: bad regex at column 6: groups nested deeper");
  syn_prefix("a =~ /((a{100}){100}){100}/",
             "filter: bad regex at column 6: too complex");
  /* stacked repetitions cost nothing in a linear-time matcher */
  T("a =~ /a****************************/", "{'a':'b'}");
  T("a =~ /^(x{1,5}|[a-c]{2}){1,3}$/", "{'a':'abxx'}");
  F("a =~ /^(x{1,5}|[a-c]{2}){1,3}$/", "{'a':'abxxd'}");
  free(buf);
  /* every prefix of a valid expression is rejected cleanly or compiles */
  {
    const char *src =
        "(a.b[1] == 'x\\ty' or not c in [1, -2.5e3, true, null]) and "
        "d =~ /^q\\/r/i && begins_with(`e f`, \"g\") || size(h) >= 3";
    size_t len = strlen(src), j;
    int ok = 1;
    for (j = 0; j <= len; j++) {
      char *cp = malloc(j ? j : 1);
      memcpy(cp, src, j);
      rc = df_expr_compile(cp, j, &e, err, sizeof err);
      if (rc != 0 && rc != DF_EVALIDATION) ok = 0;
      if (rc == 0) df_expr_free(e);
      free(cp);
    }
    CHECK(ok);
    CHECK_EQ_INT(df_expr_compile(src, len, &e, err, sizeof err), 0);
    df_expr_free(e);
  }
}

static void test_corrupt(void) {
  /* truncated: map of 2 pairs with only one and a key */
  CHECK_EQ_INT(eval_raw("b == 1", "\x82\xa1\x61\x01\xa1\x62", 6), DF_ECORRUPT);
  /* never-used byte 0xc1 as the header */
  CHECK_EQ_INT(eval_raw("a == 1", "\xc1", 1), DF_ECORRUPT);
  /* string header longer than the bytes */
  CHECK_EQ_INT(eval_raw("a == 1", "\x81\xa5\x61", 3), DF_ECORRUPT);
  /* value truncated after the key matched */
  CHECK_EQ_INT(eval_raw("a == 1", "\x81\xa1\x61\xcd\x01", 5), DF_ECORRUPT);
  /* errors propagate through not, and, or, in, functions */
  CHECK_EQ_INT(eval_raw("not b == 1", "\x82\xa1\x61\x01\xa1\x62", 6),
               DF_ECORRUPT);
  CHECK_EQ_INT(eval_raw("a == 1 and b == 1", "\x82\xa1\x61\x01\xa1\x62", 6),
               DF_ECORRUPT);
  CHECK_EQ_INT(eval_raw("a == 2 or b == 1", "\x82\xa1\x61\x01\xa1\x62", 6),
               DF_ECORRUPT);
  CHECK_EQ_INT(eval_raw("exists(b)", "\x82\xa1\x61\x01\xa1\x62", 6),
               DF_ECORRUPT);
  /* short-circuit: the malformed tail is never read */
  CHECK_EQ_INT(eval_raw("a == 1 or b == 1", "\x82\xa1\x61\x01\xa1\x62", 6), 1);
  /* a corrupt element inside an array seen by contains */
  CHECK_EQ_INT(eval_raw("contains(l, 9)", "\x81\xa1l\x92\x01\xa5x", 7),
               DF_ECORRUPT);
}

static void test_fault_injection(void) {
  const char *src =
      "(a.b[1] == 'x' or c in [1, 2, 3]) and d =~ /^q/ and "
      "begins_with(`e f`, 'g') and size(h) >= 3 and x == 1 and y == 2";
  long nth;
  int saw_nomem = 0, ok = 1;
  if (df_test_fail_alloc(0) != 0) {
    printf("test_expr: fault injection not built in, skipped\n");
    return;
  }
  for (nth = 1; nth < 200; nth++) {
    df_expr *e = NULL;
    char err[200];
    int rc;
    df_test_fail_alloc(nth);
    rc = df_expr_compile(src, strlen(src), &e, err, sizeof err);
    df_test_fail_alloc(0);
    if (rc == DF_ENOMEM) {
      saw_nomem = 1;
      if (e != NULL || strcmp(err, "filter: out of memory")) ok = 0;
      continue;
    }
    if (rc != 0) ok = 0;
    df_expr_free(e);
    break;
  }
  CHECK(saw_nomem);
  CHECK(ok);
}

/* Evaluating one compiled expression many times gives the same answer
 * every time (no state carried between evaluations).  Its speed is
 * measured in bench/, not here. */
static void test_repeated_eval(void) {
  df_buf b;
  df_expr *e = NULL;
  char err[100];
  long i, iters = 100000, hits = 0;
  df__buf_init(&b);
  build(&b,
        "{'PK':'player#00042','SK':'score#2024-01-01T00:00:00',"
        "'name':'Somebody Withaname','level':17,'guild':'north-wind',"
        "'tags':['a','bb','ccc'],'data':{'count':3,'ratio':0.25},"
        "'created':1700000000,'flag':true,'note':'lorem ipsum dolor sit',"
        "'score':900}");
  CHECK_EQ_INT(df_expr_compile("score > 899", 11, &e, err, sizeof err), 0);
  for (i = 0; i < iters; i++) hits += df_expr_eval(e, b.p, b.len);
  CHECK_EQ_INT(hits, iters);
  df_expr_free(e);
  df__buf_free(&b);
}

int main(void) {
  RUN_TEST(test_seed_examples);
  RUN_TEST(test_precedence);
  RUN_TEST(test_compare);
  RUN_TEST(test_sets_and_decimals);
  RUN_TEST(test_missing);
  RUN_TEST(test_truth);
  RUN_TEST(test_in);
  RUN_TEST(test_paths);
  RUN_TEST(test_functions);
  RUN_TEST(test_regex);
  RUN_TEST(test_syntax_errors);
  RUN_TEST(test_hostile);
  RUN_TEST(test_corrupt);
  RUN_TEST(test_fault_injection);
  RUN_TEST(test_repeated_eval);
  return check_done("test_expr");
}
