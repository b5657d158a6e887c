/*
 * compat.h -- the differences between Lua 5.1/LuaJIT, 5.2, 5.3 and 5.4
 * that the binding meets, kept in one place.  Only the binding's files
 * include it (through lbinding.h).
 */
#ifndef DF_COMPAT_H
#define DF_COMPAT_H

#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdint.h>

#if LUA_VERSION_NUM < 502
#define lua_rawlen(L, i) lua_objlen(L, (i))
#define lua_absindex(L, i) compat_absindex(L, (i))
static inline int compat_absindex(lua_State *L, int i) {
  return i > 0 || i <= LUA_REGISTRYINDEX ? i : lua_gettop(L) + i + 1;
}
#endif

/* Lua 5.1 lacks these; LuaJIT 2.1 (which says 5.1) has them, and shows it
 * by defining luaL_newlibtable. */
#if LUA_VERSION_NUM < 502 && !defined(luaL_newlibtable)
#define luaL_setfuncs(L, l, nup) compat_setfuncs(L, l, nup)
#define luaL_newlib(L, l) (lua_newtable(L), luaL_setfuncs(L, l, 0))

static inline void compat_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
  for (; l->name; l++) {
    int i;
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}

static inline void *luaL_testudata(lua_State *L, int i, const char *tname) {
  void *p = lua_touserdata(L, i);
  if (p == NULL || !lua_getmetatable(L, i)) return NULL;
  luaL_getmetatable(L, tname);
  if (!lua_rawequal(L, -1, -2)) p = NULL;
  lua_pop(L, 2);
  return p;
}

static inline void luaL_setmetatable(lua_State *L, const char *tname) {
  luaL_getmetatable(L, tname);
  lua_setmetatable(L, -2);
}
#endif

/* Integers: Lua 5.3+ has a separate integer subtype; earlier versions
 * have only doubles, which are stored as integers when integral. */
#if LUA_VERSION_NUM >= 503
#define compat_isinteger(L, i) lua_isinteger(L, (i))
#define compat_pushint(L, v) lua_pushinteger(L, (lua_Integer)(v))
#else
/* A number of a Lua without integers is stored as an integer up to 2^53,
 * where every integer-valued double is exact; beyond, it is a double
 * whose value is its shortest decimal, as on Lua 5.3+ (LuaJIT's int64_t
 * cdata carry the integers beyond). */
static inline int compat_isinteger(lua_State *L, int i) {
  lua_Number n = lua_tonumber(L, i);
  return n == floor(n) && n >= -9007199254740992.0 && n <= 9007199254740992.0;
}
#define compat_pushint(L, v) lua_pushnumber(L, (lua_Number)(v))
#endif

static inline int64_t compat_toint64(lua_State *L, int i) {
#if LUA_VERSION_NUM >= 503
  return (int64_t)lua_tointeger(L, i);
#else
  return (int64_t)lua_tonumber(L, i);
#endif
}

#endif /* DF_COMPAT_H */
