/*
 * fuzz_lcodec.c -- libFuzzer harness for the binding's codec (lcodec.c):
 * Lua values <-> MessagePack item bytes, in an embedded Lua 5.4.
 *
 * Byte 0 chooses the mode, the rest is its input.  Its bit 1 says whether
 * dynafile.types' metatables are registered (core.register_types, as
 * types.lua does: decimals, binary values and sets decode to values made
 * in C and encode back with their types) or not (the decoder's fallbacks:
 * digits strings, plain strings and lists).
 *  - Even: the rest is MessagePack bytes, decoded as an item is
 *    (lcodec_push_item, with the attribute-name cache).  The decoder must
 *    accept exactly what the core's reader validates (df__mp_validate with
 *    DF_MAX_DEPTH), raise for everything else, and never read outside the
 *    bytes (ASan).  A decoded value is then encoded again (below).
 *  - Odd: the rest is a program for a small stack machine that builds a
 *    Lua value -- integers, floats (NaN too), strings, booleans, null,
 *    functions, light userdata, tables with string, integer, float and
 *    boolean keys, shared subtables, cycles, list marks, deep nesting --
 *    and the first table it made is encoded.
 * Encoding a table must succeed exactly when the value can be an item
 * (judged here, independently of lcodec.c: keys all strings, or exactly
 * 1..n; only storable values; no cycle; at most DF_MAX_DEPTH levels; a
 * map at the top), failing with a reason "item..." otherwise; the bytes
 * it makes validate, and decode to a value equal to the one encoded.
 * A broken invariant aborts, which libFuzzer reports as a crash.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "lbinding.h"

#define CHECK(c)                                                           \
  do {                                                                     \
    if (!(c)) {                                                            \
      fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
              #c);                                                         \
      abort();                                                             \
    }                                                                      \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int luaopen_dynafile_core(lua_State *L);

/* The harness's state, made at the first input and kept: a Lua state
 * with the binding's metatables, and an encoding buffer. */
static lua_State *L;
static df_buf buf;

/* ------------------------------------------------ protected codec calls */

/* decode(bytes) -> item  (the name cache is made once, in the registry) */
static int p_decode(lua_State *S) {
  size_t n;
  const char *s = lua_tolstring(S, 1, &n);
  lcodec_names nm;
  lua_getfield(S, LUA_REGISTRYINDEX, "fuzz.names");
  lua_getfield(S, LUA_REGISTRYINDEX, "fuzz.slots");
  nm.table = lua_gettop(S) - 1;
  nm.slots = lua_touserdata(S, -1);
  lcodec_push_item(S, &nm, s, n);
  return 1;
}

/* encode(table) -> bytes; raises the reason it cannot be an item */
static int p_encode(lua_State *S) {
  if (lcodec_encode_item(S, 1, &buf) != DF_OK) return lua_error(S);
  lua_pushlstring(S, (const char *)buf.p, buf.len);
  return 1;
}

/* Call f(arg at idx) protected: 0 with the result on top, or -1 with the
 * error message on top. */
static int pcall1(lua_CFunction f, int idx) {
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, f);
  lua_pushvalue(L, idx);
  return lua_pcall(L, 1, 1, 0) == LUA_OK ? 0 : -1;
}

/* ------------------------------------------------- what an item may be */

static int is_array_marked(int idx) {
  int r;
  if (!lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, LDF_ARRAY_MT);
  r = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return r;
}

/* 1 when the table at idx is a list: keys exactly 1..n (n >= 1), or empty
 * and marked; 0 when a map: string keys only; -1 when neither. */
static int table_shape(int idx) {
  lua_Integer n = 0, max = 0;
  int strs = 0, ints = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    n++;
    if (lua_type(L, -1) == LUA_TSTRING) {
      strs = 1;
    } else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
      ints = 1;
      if (lua_tointeger(L, -1) > max) max = lua_tointeger(L, -1);
    } else {
      lua_pop(L, 1);
      return -1;
    }
  }
  if (strs && ints) return -1;
  if (ints) return max == n ? 1 : -1;
  return n == 0 && is_array_marked(idx);
}

/* Values visited by storable: a value built with shared subtables can
 * stand for a tree far too big to encode in reasonable time. */
static long visited;
#define MAX_VISITED 100000

/* 1 when the value at idx can be stored at nesting level `level` (the
 * item is level 1), with the tables on its path in path[0..level-1). */
static int storable(int idx, int level, const void **path) {
  int i, ok = 1;
  visited++;
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
    case LUA_TBOOLEAN:
    case LUA_TNUMBER:
    case LUA_TSTRING:
      return 1;
    case LUA_TLIGHTUSERDATA: {
      int r;
      lcodec_push_null(L);
      r = lua_rawequal(L, -1, idx);
      lua_pop(L, 1);
      return r;
    }
    case LUA_TTABLE:
      break;
    default:
      return 0;
  }
  if (level > DF_MAX_DEPTH) return 0;
  for (i = 0; i < level - 1; i++)
    if (path[i] == lua_topointer(L, idx)) return 0; /* a cycle */
  if (table_shape(idx) < 0) return 0;
  path[level - 1] = lua_topointer(L, idx);
  lua_pushnil(L);
  while (ok && visited <= MAX_VISITED && lua_next(L, idx)) {
    ok = storable(lua_gettop(L), level + 1, path);
    lua_pop(L, 1);
  }
  if (!ok || visited > MAX_VISITED) lua_pop(L, 1);
  return ok;
}

static int item_storable(int idx) {
  const void *path[DF_MAX_DEPTH + 1];
  return lua_type(L, idx) == LUA_TTABLE && table_shape(idx) == 0 &&
         storable(idx, 1, path);
}

/* ------------------------------------------------------------ equality */

/* The values at a and b are equal as items: the same scalars (integers
 * and floats apart, NaN equal to NaN), tables with equal values under
 * the same keys, empty tables marked alike. */
static int same(int a, int b, int level) {
  int n = 0, m = 0, ok = 1;
  if (lua_type(L, a) != lua_type(L, b)) return 0;
  switch (lua_type(L, a)) {
    case LUA_TNUMBER:
      if (lua_isinteger(L, a) != lua_isinteger(L, b)) return 0;
      if (lua_isinteger(L, a))
        return lua_tointeger(L, a) == lua_tointeger(L, b);
      if (isnan(lua_tonumber(L, a))) return isnan(lua_tonumber(L, b));
      return lua_tonumber(L, a) == lua_tonumber(L, b) &&
             signbit(lua_tonumber(L, a)) == signbit(lua_tonumber(L, b));
    case LUA_TTABLE:
      break;
    default:
      return lua_rawequal(L, a, b);
  }
  CHECK(level <= DF_MAX_DEPTH + 1);
  lua_pushnil(L);
  while (ok && lua_next(L, a)) {
    int v = lua_gettop(L);
    n++;
    lua_pushvalue(L, v - 1);
    lua_rawget(L, b);
    ok = same(v, v + 1, level + 1);
    lua_pop(L, 2);
  }
  if (!ok) {
    lua_pop(L, 1);
    return 0;
  }
  lua_pushnil(L);
  while (lua_next(L, b)) {
    m++;
    lua_pop(L, 1);
  }
  return n == m && (n > 0 || is_array_marked(a) == is_array_marked(b));
}

/* ------------------------------------------------------------ checks */

/* Encode the table at idx; it must succeed exactly when it can be an
 * item, and round-trip.  Leaves the stack as it was. */
static void check_encode(int idx) {
  int top = lua_gettop(L), want;
  visited = 0;
  want = item_storable(idx);
  if (visited > MAX_VISITED) return;
  if (pcall1(p_encode, idx) != 0) {
    const char *msg = lua_tostring(L, -1);
    if (want) fprintf(stderr, "refused: %s\n", msg ? msg : "?");
    CHECK(!want);
    CHECK(msg != NULL && strncmp(msg, "item", 4) == 0);
  } else {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    if (!want) fprintf(stderr, "encoded what cannot be an item\n");
    CHECK(want);
    CHECK(df__mp_validate(s, n, DF_MAX_DEPTH) == 0);
    CHECK(pcall1(p_decode, -1) == 0);
    CHECK(same(idx, lua_gettop(L), 1));
  }
  lua_settop(L, top);
}

static void fuzz_decode(const uint8_t *data, size_t size) {
  int valid = df__mp_validate(data, size, DF_MAX_DEPTH) == 0;
  lua_pushlstring(L, (const char *)data, size);
  if (pcall1(p_decode, -1) != 0) {
    CHECK(!valid);
    return;
  }
  CHECK(valid);
  if (lua_type(L, -1) == LUA_TTABLE) check_encode(lua_gettop(L));
}

/* The stack machine: each instruction is one byte, some followed by an
 * operand.  Values are kept on the Lua stack above `base`. */
static void fuzz_build(const uint8_t *p, const uint8_t *end) {
  int base = lua_gettop(L), first = 0;
  while (p < end && lua_gettop(L) - base < 200) {
    unsigned op = *p++ % 16;
    int top = lua_gettop(L);
    CHECK(lua_checkstack(L, 8));
    int table_below = top - base >= 2 && lua_istable(L, top - 1);
    switch (op) {
      case 0: { /* integer: a signed byte, or 8 bytes */
        int64_t v = 0;
        if (p < end && *p == 0x80 && end - p >= 9) {
          memcpy(&v, p + 1, 8);
          p += 9;
        } else if (p < end) {
          v = (int8_t)*p++;
        }
        lua_pushinteger(L, (lua_Integer)v);
        break;
      }
      case 1: { /* float: 8 bytes, or a small fraction */
        double d = 0.5;
        if (end - p >= 8) {
          memcpy(&d, p, 8);
          p += 8;
        }
        lua_pushnumber(L, d);
        break;
      }
      case 2: { /* string: a length byte, then bytes */
        size_t n = p < end ? *p++ % 40 : 0;
        if (n > (size_t)(end - p)) n = (size_t)(end - p);
        lua_pushlstring(L, (const char *)p, n);
        p += n;
        break;
      }
      case 3:
        lua_pushboolean(L, p < end ? *p++ & 1 : 0);
        break;
      case 4:
        lcodec_push_null(L);
        break;
      case 5:
        lua_pushcfunction(L, p_encode);
        break;
      case 6:
        lua_newtable(L);
        if (!first) first = lua_gettop(L);
        break;
      case 7:  /* t[name] = v, name one byte of a few */
      case 9:  /* t[k] = v, k a small integer */
      case 10: /* t[k + 0.5] = v */
      case 14: /* t[true] = v */
        if (!table_below) {
          if (top > base) lua_pop(L, 1);
          break;
        }
        if (op == 7) {
          char name[2] = {(char)('a' + (p < end ? *p++ % 4 : 0)), 0};
          lua_pushstring(L, name);
        } else if (op == 9) {
          lua_pushinteger(L, p < end ? (int8_t)*p++ : 1);
        } else if (op == 10) {
          lua_pushnumber(L, (p < end ? *p++ % 4 : 0) + 0.5);
        } else {
          lua_pushboolean(L, 1);
        }
        lua_insert(L, -2);
        lua_rawset(L, -3);
        break;
      case 8: /* t[#t + 1] = v */
        if (!table_below) {
          if (top > base) lua_pop(L, 1);
          break;
        }
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        break;
      case 11: /* t.self = t: a cycle */
        if (top > base && lua_istable(L, -1)) {
          lua_pushvalue(L, -1);
          lua_setfield(L, -2, "self");
        }
        break;
      case 12: /* mark as a list */
        if (top > base && lua_istable(L, -1)) {
          luaL_getmetatable(L, LDF_ARRAY_MT);
          lua_setmetatable(L, -2);
        }
        break;
      case 13: /* push again a value further down (shared subtables) */
        if (top > base) {
          int k = p < end ? *p++ % (top - base) : 0;
          lua_pushvalue(L, top - k);
        }
        break;
      default: /* 15: a light userdata that is not null */
        lua_pushlightuserdata(L, &buf);
        break;
    }
  }
  if (first && first <= lua_gettop(L) && lua_istable(L, first))
    check_encode(first);
  lua_settop(L, base);
}

/* core.register_types with a metatable per kind (made once, kept in the
 * registry's fuzz.mts), or with no kinds at all.  No constructors: what
 * the decoder leaves to them stays as it is. */
static const char *const kinds[] = {"N", "B", "SS", "NS", "BS"};

static void register_types(int with_kinds) {
  int i;
  lua_getfield(L, LUA_REGISTRYINDEX, "fuzz.core");
  lua_getfield(L, -1, "register_types");
  CHECK(lua_isfunction(L, -1));
  lua_newtable(L); /* metatable -> kind */
  lua_getfield(L, LUA_REGISTRYINDEX, "fuzz.mts");
  for (i = 0; with_kinds && i < 5; i++) {
    lua_getfield(L, -1, kinds[i]);
    lua_pushstring(L, kinds[i]);
    lua_rawset(L, -4);
  }
  lua_pop(L, 1);
  lua_newtable(L);
  CHECK(lua_pcall(L, 2, 0, 0) == LUA_OK);
  lua_pop(L, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (L == NULL) {
    int i;
    L = luaL_newstate();
    CHECK(L != NULL);
    luaL_requiref(L, "dynafile.core", luaopen_dynafile_core, 0);
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.core");
    lcodec_push_name_cache(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.slots");
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.names");
    lua_newtable(L); /* a metatable per kind, kept */
    for (i = 0; i < 5; i++) {
      lua_newtable(L);
      lua_setfield(L, -2, kinds[i]);
    }
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.mts");
    df__buf_init(&buf);
  }
  if (size < 1) return 0;
  register_types((data[0] & 2) != 0);
  if (data[0] % 2 == 0)
    fuzz_decode(data + 1, size - 1);
  else
    fuzz_build(data + 1, data + size);
  lua_settop(L, 0);
  return 0;
}
