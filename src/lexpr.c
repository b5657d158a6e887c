/*
 * lexpr.c -- compiled expressions from Lua: filter and condition strings
 * (core.compile), DynamoDB's expressions with their names and values
 * (core.ddb_args and its methods), projections, and update programs (the
 * table of changes of update_item, or an UpdateExpression).
 *
 * Invariants: every compiled object is a userdata owning its C object
 * (and any scratch buffer), freed by its __gc; an object is used by one
 * Lua state, so by one thread at a time, as the core requires.  Messages
 * are the core's (DynamoDB's wording for DynamoDB expressions), returned
 * as expected failures: what a user wrote does not parse.
 */
#include <string.h>

#include "lbinding.h"

/* The arguments of one DynamoDB request: its names and values. */
typedef struct largs {
  df_ddb_args *a;
  df_buf b; /* encoding scratch */
} largs;

/* A compiled projection. */
typedef struct lproj {
  df_projection *p;
  df_buf b; /* encoding scratch for apply */
} lproj;

/* A compiled update program. */
typedef struct lupd {
  df_update *u;
  df_buf b; /* encoding scratch */
} lupd;

/* ---------------------------------------------------------- expressions */

/* A new, empty compiled-expression userdata.  [-0, +1, m] */
static lexpr *new_lexpr(lua_State *L) {
  lexpr *x = lua_newuserdata(L, sizeof *x);
  x->e = NULL;
  df__buf_init(&x->b);
  luaL_setmetatable(L, LDF_EXPR_MT);
  return x;
}

/* core.compile(src) -> expr | nil, msg, "ValidationError" */
static int l_compile(lua_State *L) {
  size_t n;
  const char *src = luaL_checklstring(L, 1, &n);
  char err[256];
  lexpr *x = new_lexpr(L);
  int code;
  err[0] = '\0';
  code = df_expr_compile(src, n, &x->e, err, sizeof err);
  if (code != DF_OK) return lerror_fail(L, code, err);
  return 1;
}

/* core.eval(expr, item_bytes_or_nil) -> boolean (bytes from db:encode) */
static int l_eval(lua_State *L) {
  lexpr *x = luaL_checkudata(L, 1, LDF_EXPR_MT);
  size_t n = 0;
  const char *s = lua_isnoneornil(L, 2) ? NULL : luaL_checklstring(L, 2, &n);
  int r = df_expr_eval(x->e, s, n);
  if (r < 0) return lerror_raise(L, "dynafile: malformed item bytes");
  lua_pushboolean(L, r);
  return 1;
}

/* expr:eval([item]) -> boolean: the expression on a Lua item table (none:
 * on no item).  Raises "dynafile.expr.eval: item: ..." when item cannot be
 * stored. */
static int l_expr_eval_item(lua_State *L) {
  lexpr *x = luaL_checkudata(L, 1, LDF_EXPR_MT);
  int r;
  if (!x->e) return lerror_raise(L, "dynafile.expr.eval: expression freed");
  if (lua_isnoneornil(L, 2)) {
    r = df_expr_eval(x->e, NULL, 0);
  } else {
    if (lcodec_encode_item(L, 2, &x->b) != DF_OK)
      return lerror_raise(L, "dynafile.expr.eval: %s", lua_tostring(L, -1));
    r = df_expr_eval(x->e, x->b.p, x->b.len);
  }
  if (r < 0) return lerror_raise(L, "dynafile: malformed item bytes");
  lua_pushboolean(L, r);
  return 1;
}

int lexpr_gc(lua_State *L) {
  lexpr *x = luaL_checkudata(L, 1, LDF_EXPR_MT);
  df_expr_free(x->e);
  x->e = NULL;
  df__buf_free(&x->b);
  return 0;
}

/* ------------------------------------------- DynamoDB expression args */

/* Encode the map at idx (a table or nil) for df_ddb_args_new; the bytes
 * stay on the stack as a string (or nil).  [-0, +1, v] */
static void push_arg_map(lua_State *L, int idx, df_buf *b, const char *what) {
  if (lua_isnil(L, idx)) {
    lua_pushnil(L);
    return;
  }
  if (!lua_istable(L, idx))
    lerror_raise(L, "dynafile.ddb_args: %s must be a table, got %s", what,
                 luaL_typename(L, idx));
  if (lcodec_encode_item(L, idx, b) != DF_OK)
    lerror_raise(L, "dynafile.ddb_args: %s: %s", what, lua_tostring(L, -1));
  lua_pushlstring(L, (const char *)b->p, b->len);
}

/* core.ddb_args(names, values) -> args | nil, msg, "ValidationError" */
static int l_ddb_args(lua_State *L) {
  char err[512];
  size_t nl = 0, vl = 0;
  const char *ns, *vs;
  largs *a;
  int code;
  lua_settop(L, 2);
  a = lua_newuserdata(L, sizeof *a); /* 3: owns the scratch buffer */
  a->a = NULL;
  df__buf_init(&a->b);
  luaL_setmetatable(L, LDF_ARGS_MT);
  push_arg_map(L, 1, &a->b, "names");  /* 4 */
  push_arg_map(L, 2, &a->b, "values"); /* 5 */
  df__buf_free(&a->b);
  ns = lua_tolstring(L, 4, &nl);
  vs = lua_tolstring(L, 5, &vl);
  err[0] = 0;
  code =
      df_ddb_args_new(ns, ns ? nl : 0, vs, vs ? vl : 0, &a->a, err, sizeof err);
  if (code != DF_OK) return lerror_fail(L, code, err);
  lua_settop(L, 3);
  return 1;
}

static largs *args_arg(lua_State *L) {
  largs *a = luaL_checkudata(L, 1, LDF_ARGS_MT);
  if (!a->a) lerror_raise(L, "dynafile.ddb_args: arguments already freed");
  return a;
}

/* args:condition(kind, src) -> expr | nil, msg, code
 * kind: "condition", "filter" or "key_condition" */
static int l_args_condition(lua_State *L) {
  largs *a = args_arg(L);
  const char *kind = luaL_checkstring(L, 2);
  size_t n;
  const char *src = luaL_checklstring(L, 3, &n);
  char err[600];
  lexpr *x;
  int k = !strcmp(kind, "filter")          ? DF_DDB_FILTER
          : !strcmp(kind, "key_condition") ? DF_DDB_KEY_CONDITION
                                           : DF_DDB_CONDITION;
  int code;
  x = new_lexpr(L);
  err[0] = 0;
  code = df_ddb_condition(a->a, k, src, n, &x->e, err, sizeof err);
  if (code != DF_OK) return lerror_fail(L, code, err);
  return 1;
}

/* A new, empty projection userdata.  [-0, +1, m] */
static lproj *new_lproj(lua_State *L) {
  lproj *pr = lua_newuserdata(L, sizeof *pr);
  pr->p = NULL;
  df__buf_init(&pr->b);
  luaL_setmetatable(L, LDF_PROJ_MT);
  return pr;
}

/* args:projection(src) -> projection | nil, msg, code */
static int l_args_projection(lua_State *L) {
  largs *a = args_arg(L);
  size_t n;
  const char *src = luaL_checklstring(L, 2, &n);
  char err[600];
  lproj *pr = new_lproj(L);
  int code;
  err[0] = 0;
  code = df_ddb_projection(a->a, src, n, &pr->p, err, sizeof err);
  if (code != DF_OK) return lerror_fail(L, code, err);
  return 1;
}

/* Push a scalar df_value (a decimal too) as Lua (nil for none or a
 * container).
 * [-0, +1, m] */
static void push_df_value(lua_State *L, const df_value *v) {
  df_buf b;
  df__buf_init(&b);
  if (v->type == DF_TDECIMAL) /* its payload: the number's encoding */
    df__mp_put_ext(&b, DF_EXT_DECIMAL, v->s, v->n);
  else if (v->type == DF_TARRAY || v->type == DF_TMAP ||
           df__mp_put_value(&b, v))
    b.failed = 1;
  if (b.failed) {
    df__buf_free(&b);
    lua_pushnil(L);
    return;
  }
  /* the bytes into a Lua string first, so nothing leaks if decoding
   * raises */
  lua_pushlstring(L, (const char *)b.p, b.len);
  df__buf_free(&b);
  {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    lcodec_push_item(L, NULL, s, n);
  }
  lua_remove(L, -2);
}

/* args:key_condition(src, pk, sk) -> {pk = v, cond = "eq"..., lo =, hi =}
 * | nil, msg, code */
static int l_args_key_condition(lua_State *L) {
  static const char *conds[] = {NULL, "eq", "lt",      "le",
                                "gt", "ge", "between", "begins_with"};
  largs *a = args_arg(L);
  size_t n;
  const char *src = luaL_checklstring(L, 2, &n);
  const char *pk = luaL_checkstring(L, 3);
  const char *sk = luaL_optstring(L, 4, NULL);
  char err[600];
  df_key_condition kc;
  int code;
  err[0] = 0;
  code = df_ddb_key_condition(a->a, src, n, pk, sk, &kc, err, sizeof err);
  if (code != DF_OK) return lerror_fail(L, code, err);
  lua_createtable(L, 0, 4);
  push_df_value(L, &kc.pk);
  lua_setfield(L, -2, "pk");
  if (kc.cond > 0 && kc.cond <= DF_COND_BEGINS_WITH) {
    lua_pushstring(L, conds[kc.cond]);
    lua_setfield(L, -2, "cond");
    push_df_value(L, &kc.lo);
    lua_setfield(L, -2, "lo");
    if (kc.cond == DF_COND_BETWEEN) {
      push_df_value(L, &kc.hi);
      lua_setfield(L, -2, "hi");
    }
  }
  return 1;
}

/* args:check_unused() -> true | nil, msg, "ValidationError" */
static int l_args_check_unused(lua_State *L) {
  largs *a = args_arg(L);
  char err[600];
  int code = df_ddb_args_check_unused(a->a, err, sizeof err);
  if (code != DF_OK) return lerror_fail(L, code, err);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_args_gc(lua_State *L) {
  largs *a = luaL_checkudata(L, 1, LDF_ARGS_MT);
  df_ddb_args_free(a->a);
  a->a = NULL;
  df__buf_free(&a->b);
  return 0;
}

/* --------------------------------------------------------- projections */

/* [-0, +0, v] */
df_projection *lexpr_opt_projection(lua_State *L, int idx) {
  lproj *pr;
  if (lua_isnoneornil(L, idx)) return NULL;
  pr = luaL_testudata(L, idx, LDF_PROJ_MT);
  if (pr == NULL || pr->p == NULL) {
    lerror_raise(L, "dynafile.core: projection: not a compiled projection");
    return NULL; /* not reached */
  }
  return pr->p;
}

/* [-0, +1, v] */
void lexpr_push_projected(lua_State *L, const lcodec_names *nm,
                          df_projection *pr, const void *item, size_t len) {
  if (pr && item) {
    const void *o;
    size_t ol;
    int rc = df_projection_apply(pr, item, len, &o, &ol);
    if (rc) lerror_raise(L, "dynafile: projection: %s", df_strerror(rc));
    item = o;
    len = ol;
  }
  lcodec_push_item(L, nm, item, len);
}

/* projection:apply(item) -> the projected item (a new table).  Raises
 * "dynafile.projection.apply: item: ..." when item cannot be stored. */
static int l_proj_apply(lua_State *L) {
  lproj *pr = luaL_checkudata(L, 1, LDF_PROJ_MT);
  if (!pr->p)
    return lerror_raise(L, "dynafile.projection.apply: projection freed");
  if (lcodec_encode_item(L, 2, &pr->b) != DF_OK)
    return lerror_raise(L, "dynafile.projection.apply: %s",
                        lua_tostring(L, -1));
  lexpr_push_projected(L, NULL, pr->p, pr->b.p, pr->b.len);
  return 1;
}

static int l_proj_gc(lua_State *L) {
  lproj *pr = luaL_checkudata(L, 1, LDF_PROJ_MT);
  df_projection_free(pr->p);
  pr->p = NULL;
  df__buf_free(&pr->b);
  return 0;
}

/* ------------------------------------------------------ update programs */

/* A new, empty update-program userdata.  [-0, +1, m] */
static lupd *new_lupd(lua_State *L) {
  lupd *u = lua_newuserdata(L, sizeof *u);
  u->u = NULL;
  df__buf_init(&u->b);
  luaL_setmetatable(L, LDF_UPD_MT);
  return u;
}

/* core.update_new() -> an empty table-form update program | nil, msg,
 * code */
static int l_update_new(lua_State *L) {
  lupd *u = new_lupd(L);
  int code = df_update_new(&u->u);
  if (code != DF_OK) return lerror_fail(L, code, NULL);
  return 1;
}

/* args:update(src) -> update | nil, msg, code */
static int l_args_update(lua_State *L) {
  largs *a = args_arg(L);
  size_t n;
  const char *src = luaL_checklstring(L, 2, &n);
  char err[600];
  lupd *u = new_lupd(L);
  int code;
  err[0] = 0;
  code = df_ddb_update(a->a, src, n, &u->u, err, sizeof err);
  if (code != DF_OK) return lerror_fail(L, code, err);
  return 1;
}

/* [-0, +0, v] */
df_update *lexpr_update_arg(lua_State *L, int idx) {
  lupd *u = luaL_checkudata(L, idx, LDF_UPD_MT);
  if (!u->u) lerror_raise(L, "dynafile.core: update program freed");
  return u->u;
}

/* u:add(action, path, value, where) -> true | nil, msg, code, true
 * action: "set", "remove", "add" or "delete"; value: any storable value;
 * where: how the change is named in messages ("changes.set.a") */
static int l_update_add(lua_State *L) {
  static const char *actions[] = {"set", "remove", "add", "delete", NULL};
  lupd *u = luaL_checkudata(L, 1, LDF_UPD_MT);
  int action = luaL_checkoption(L, 2, NULL, actions) + 1;
  size_t pn;
  const char *path = luaL_checklstring(L, 3, &pn);
  const char *where = luaL_optstring(L, 5, NULL);
  char err[400];
  int code;
  if (!u->u) return lerror_raise(L, "dynafile.core: update program freed");
  df__buf_reset(&u->b);
  if (action != DF_UPD_REMOVE) {
    lua_settop(L, 5);
    code = lcodec_encode_value(L, 4, &u->b);
    if (code != DF_OK) {
      if (where) {
        lua_pushfstring(L, "%s: %s", where, lua_tostring(L, -1));
        lua_remove(L, -2);
      }
      return lerror_misuse_pushed(L, code);
    }
  }
  err[0] = 0;
  code = df_update_add(u->u, action, path, pn, u->b.p, u->b.len, where, err,
                       sizeof err);
  if (code != DF_OK) return lerror_misuse(L, code, err);
  lua_pushboolean(L, 1);
  return 1;
}

/* core.apply_update(program, old_or_nil, key, pk, sk_or_nil) -> new |
 * nil, msg, code [, true]: the program applied to a Lua item (the
 * DynamoDB backend applies updates to items it read, outside any local
 * transaction).  "ValidationError" without the misuse mark: the changes
 * do not fit the item. */
static int l_apply_update(lua_State *L) {
  lupd *u = luaL_checkudata(L, 1, LDF_UPD_MT);
  const char *pk = luaL_checkstring(L, 4);
  const char *sk = luaL_optstring(L, 5, NULL);
  const char *keys[2];
  size_t nkeys = 0, ol = 0, kl, nlen;
  const char *os = NULL, *ks;
  const void *nw;
  char err[600];
  int code, kt;
  if (!u->u) return lerror_raise(L, "dynafile.core: update program freed");
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 5);
  if (!lua_isnil(L, 2)) {
    if ((code = lcodec_encode_item(L, 2, &u->b)) != DF_OK)
      return lerror_misuse_pushed(L, code);
    lua_pushlstring(L, (const char *)u->b.p, u->b.len); /* 6 */
  } else {
    lua_pushnil(L);
  }
  lua_createtable(L, 0, 2);
  kt = lua_gettop(L);
  keys[nkeys++] = pk;
  lua_getfield(L, 3, pk);
  lua_setfield(L, kt, pk);
  if (sk) {
    keys[nkeys++] = sk;
    lua_getfield(L, 3, sk);
    lua_setfield(L, kt, sk);
  }
  if ((code = lcodec_encode_item(L, kt, &u->b)) != DF_OK)
    return lerror_misuse_pushed(L, code);
  lua_pushlstring(L, (const char *)u->b.p, u->b.len);
  ks = lua_tolstring(L, -1, &kl);
  if (lua_isstring(L, 6)) os = lua_tolstring(L, 6, &ol);
  err[0] = 0;
  code = df_update_apply(u->u, os, ol, ks, kl, keys, nkeys, &nw, &nlen, err,
                         sizeof err);
  if (code == DF_EVALIDATION) return lerror_fail(L, code, err);
  if (code != DF_OK) return lerror_core(L, code, err);
  lcodec_push_item(L, NULL, nw, nlen);
  return 1;
}

/* u:paths() -> the top-level attributes the update changes, each once */
static int l_update_paths(lua_State *L) {
  df_update *u = lexpr_update_arg(L, 1);
  size_t i, n = df_update_count(u);
  int k = 0;
  lua_createtable(L, (int)n, 0);
  lua_createtable(L, 0, (int)n); /* seen */
  for (i = 0; i < n; i++) {
    const char *name;
    size_t len;
    if (df_update_target(u, i, &name, &len) != DF_OK) continue;
    lua_pushlstring(L, name, len);
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    if (lua_toboolean(L, -1)) {
      lua_pop(L, 2);
      continue;
    }
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushboolean(L, 1);
    lua_rawset(L, -4);
    lua_rawseti(L, -3, ++k);
  }
  lua_pop(L, 1);
  return 1;
}

static int l_update_gc(lua_State *L) {
  lupd *u = luaL_checkudata(L, 1, LDF_UPD_MT);
  df_update_free(u->u);
  u->u = NULL;
  df__buf_free(&u->b);
  return 0;
}

/* ------------------------------------------------------------- kinds */

/* core.kind(v) -> "expr" | "projection" | "ddb_args" | "update" | nil */
static int l_kind(lua_State *L) {
  if (luaL_testudata(L, 1, LDF_EXPR_MT))
    lua_pushliteral(L, "expr");
  else if (luaL_testudata(L, 1, LDF_PROJ_MT))
    lua_pushliteral(L, "projection");
  else if (luaL_testudata(L, 1, LDF_ARGS_MT))
    lua_pushliteral(L, "ddb_args");
  else if (luaL_testudata(L, 1, LDF_UPD_MT))
    lua_pushliteral(L, "update");
  else
    lua_pushnil(L);
  return 1;
}

/* ------------------------------------------------------------ classes */

/* A metatable with methods m (or none) and the finalizer gc.
 * [-0, +0, m] */
static void new_class(lua_State *L, const char *name, const luaL_Reg *m,
                      lua_CFunction gc) {
  luaL_newmetatable(L, name);
  if (m) {
    lua_newtable(L);
    luaL_setfuncs(L, m, 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}

static const luaL_Reg expr_methods[] = {{"eval", l_expr_eval_item},
                                        {NULL, NULL}};
static const luaL_Reg args_methods[] = {{"condition", l_args_condition},
                                        {"projection", l_args_projection},
                                        {"key_condition", l_args_key_condition},
                                        {"check_unused", l_args_check_unused},
                                        {"update", l_args_update},
                                        {NULL, NULL}};
static const luaL_Reg proj_methods[] = {{"apply", l_proj_apply}, {NULL, NULL}};
static const luaL_Reg update_methods[] = {
    {"add", l_update_add}, {"paths", l_update_paths}, {NULL, NULL}};

/* [-0, +0, m] */
void lexpr_register(lua_State *L) {
  new_class(L, LDF_EXPR_MT, expr_methods, lexpr_gc);
  new_class(L, LDF_ARGS_MT, args_methods, l_args_gc);
  new_class(L, LDF_PROJ_MT, proj_methods, l_proj_gc);
  new_class(L, LDF_UPD_MT, update_methods, l_update_gc);
}

const luaL_Reg lexpr_funcs[] = {{"compile", l_compile},
                                {"eval", l_eval},
                                {"ddb_args", l_ddb_args},
                                {"update_new", l_update_new},
                                {"kind", l_kind},
                                {"apply_update", l_apply_update},
                                {NULL, NULL}};
