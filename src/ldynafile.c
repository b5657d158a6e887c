/*
 * ldynafile.c -- the Lua binding, module `dynafile.core`: luaopen and the
 * metatables of its userdata, gathering the methods the other files of
 * the binding define.  What each file holds is listed in lbinding.h.
 *
 * Invariant: the module keeps no C globals; the only shared state, the
 * attribute-name cache, is an upvalue of the handle and transaction
 * methods, created here once per Lua state.
 */
#include "lbinding.h"

/* ------------------------------------------------------------- module */

/* A metatable whose methods, from each list in m (NULL-terminated), share
 * two upvalues: the attribute-name cache, the two values on top of the
 * stack.  [-0, +0, m] */
static void new_class(lua_State *L, const char *name, const luaL_Reg *const *m,
                      lua_CFunction gc) {
  int top = lua_gettop(L);
  luaL_newmetatable(L, name);
  lua_newtable(L);
  for (; *m; m++) {
    lua_pushvalue(L, top - 1);
    lua_pushvalue(L, top);
    luaL_setfuncs(L, *m, 2);
  }
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}

static const luaL_Reg *const db_methods[] = {ldb_methods, ltxn_db_methods,
                                             lquery_db_methods, NULL};
static const luaL_Reg *const txn_methods[] = {ltxn_methods, NULL};
static const luaL_Reg *const opener_methods[] = {lopen_opener_methods, NULL};
static const luaL_Reg *const funcs[] = {lopen_funcs, lexpr_funcs, lcodec_funcs,
                                        lview_funcs, NULL};

int luaopen_dynafile_core(lua_State *L);
int luaopen_dynafile_core(lua_State *L) {
  const luaL_Reg *const *f;
  lcodec_push_name_cache(L);
  new_class(L, LDF_DB_MT, db_methods, ldb_close);
  new_class(L, LDF_TXN_MT, txn_methods, ltxn_free);
  new_class(L, LDF_OPENER_MT, opener_methods, lopen_opener_gc);
  lview_register(L);
  lua_pop(L, 2);
  lexpr_register(L);
  luaL_newmetatable(L, LDF_ARRAY_MT);
  lua_pop(L, 1);
  lua_newtable(L);
  for (f = funcs; *f; f++) luaL_setfuncs(L, *f, 0);
  lcodec_push_null(L);
  lua_setfield(L, -2, "null");
  luaL_getmetatable(L, LDF_ARRAY_MT);
  lua_setfield(L, -2, "array_mt");
  lua_pushstring(L, DF_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushinteger(L, DF_FORMAT_VERSION);
  lua_setfield(L, -2, "format");
  /* the handle's methods, for the Lua layer's hot paths to call without a
   * method lookup on the userdata */
  luaL_getmetatable(L, LDF_DB_MT);
  lua_getfield(L, -1, "__index");
  lua_setfield(L, -3, "db_methods");
  lua_pop(L, 1);
  /* how many times the Lua layer's write runner runs a transaction whose
   * map had to grow: the core's bound for its own */
  lua_pushinteger(L, DF_GROW_RETRIES);
  lua_setfield(L, -2, "grow_retries");
  return 1;
}
