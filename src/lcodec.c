/*
 * lcodec.c -- Lua values to and from dynafile's bytes: item tables <->
 * MessagePack (straight between the Lua stack and bytes, no intermediate
 * tree), key tables -> df_key, events -> tables; and the attribute-name
 * cache that makes decoding cheap.
 *
 * Invariants: an item decoded and encoded again is the same item (a
 * table whose keys are exactly 1..n is a list, an empty table a map unless
 * marked with dynafile.array, dynafile.null is MessagePack nil); the
 * decoder is as strict as the core's reader (every length checked, 0xc1
 * and unknown ext types refused, nesting bounded), so malformed bytes
 * raise and never read outside the buffer.  fuzz/fuzz_lcodec.c holds both
 * to it.  DynamoDB's B, decimals and sets (dynafile.types' values) are
 * stored as MessagePack bin and ext 1-4 (codec.c) and read back as those
 * values.
 */
#include <stdio.h>
#include <string.h>

#include "lbinding.h"

/* The address of this constant is dynafile.null (a light userdata). */
static const char null_marker = 0;
#define NULL_PTR ((void *)&null_marker)

void lcodec_push_null(lua_State *L) {
  lua_pushlightuserdata(L, NULL_PTR);
}

/* Push an integer.  A Lua without integers (5.1, LuaJIT) gets one beyond
 * 2^53 -- which a double does not hold exactly -- from the registered
 * number constructor: an int64_t cdata under LuaJIT, a decimal value
 * under 5.1; an unsigned one beyond int64 is a decimal value on 5.3+
 * (push_dec).  [-0, +1, e] */
static void make_value(lua_State *L, const char *name, const char *kind);
static void push_dec(lua_State *L, const df_dec *d, const unsigned char *enc,
                     size_t enc_n);
static void push_int(lua_State *L, int64_t v, int is_unsigned, uint64_t u) {
#if LUA_VERSION_NUM >= 503
  if (is_unsigned) {
    df_dec d;
    df__dec_from_uint(u, &d);
    push_dec(L, &d, NULL, 0);
  } else {
    compat_pushint(L, v);
  }
#else
  char buf[32];
  if (is_unsigned ? u <= ((uint64_t)1 << 53)
                  : v >= -((int64_t)1 << 53) && v <= ((int64_t)1 << 53)) {
    lua_pushnumber(L, is_unsigned ? (lua_Number)u : (lua_Number)v);
    return;
  }
  if (is_unsigned)
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)u);
  else
    snprintf(buf, sizeof buf, "%lld", (long long)v);
  lua_pushstring(L, buf);
  make_value(L, "number", NULL);
#endif
}

/* DynamoDB's types without a Lua type of their own (dynafile.types):
 * decimals, binary values and sets are tables with a metatable.  The
 * registry maps each metatable to its kind ("N", "B", "SS", "NS", "BS")
 * and holds the constructors the decoder calls (number, binary, set);
 * types.lua registers both when it loads (core.register_types). */
#define KINDS_KEY "dynafile.value_kinds"
#define MAKERS_KEY "dynafile.value_makers"
#define MTS_KEY "dynafile.value_mts"

/* The kind of the value at idx (absolute), or NULL for a plain table.
 * The string lives in the registry's kinds table.  [-0, +0, -] */
static const char *value_kind(lua_State *L, int idx) {
  const char *k = NULL;
  if (!lua_getmetatable(L, idx)) return NULL;
  lua_getfield(L, LUA_REGISTRYINDEX, KINDS_KEY);
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_pushvalue(L, -2);
    lua_rawget(L, -2);
    if (lua_type(L, -1) == LUA_TSTRING) k = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  return k;
}

/* A decimal value is a table with the metatable types.lua registers: it
 * holds its number as the order-preserving encoding of decimal.c (field
 * "enc": what the decoder gives, and a cache the key code fills), or as
 * sign, digits and exp (what types.lua makes), or both. */

/* Push the "enc" field of the decimal at idx, or nothing and 0.
 * [-0, +(0|1), -] */
static int decimal_enc(lua_State *L, int idx) {
  lua_pushliteral(L, "enc");
  lua_rawget(L, idx);
  if (lua_type(L, -1) == LUA_TSTRING) return 1;
  lua_pop(L, 1);
  return 0;
}

/* The number a decimal value at idx (absolute) holds: from its encoding,
 * else from its fields (sign, digits, exp: dynafile.types' normalised
 * form), else from its __tostring digits.  DF_OK, or DF_EVALIDATION.
 * [-0, +0, e] */
static int decimal_of(lua_State *L, int idx, df_dec *d) {
  size_t n, i;
  const char *s;
  int rc, isnum;
  lua_Number sign, exp;
  if (decimal_enc(L, idx)) {
    size_t used;
    s = lua_tolstring(L, -1, &n);
    rc =
        df__dec_dec((const unsigned char *)s, n, d, &used) == DF_OK && used == n
            ? DF_OK
            : DF_EVALIDATION;
    lua_pop(L, 1);
    if (rc == DF_OK) return DF_OK;
  }
  lua_getfield(L, idx, "sign");
  lua_getfield(L, idx, "digits");
  lua_getfield(L, idx, "exp");
  sign = lua_tonumber(L, -3);
  s = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &n) : NULL;
  isnum = lua_type(L, -1) == LUA_TNUMBER && lua_type(L, -3) == LUA_TNUMBER;
  exp = lua_tonumber(L, -1);
  memset(d, 0, sizeof *d);
  rc = DF_EVALIDATION;
  if (isnum && s && sign == 0 && n == 0 && exp == 0) {
    rc = DF_OK; /* zero */
  } else if (isnum && s && (sign == 1 || sign == -1) && n > 0 &&
             n <= DF_DEC_DIGITS && s[0] != '0' && s[n - 1] != '0' &&
             exp == (lua_Number)(int)exp && exp > -100000 && exp < 100000) {
    d->sign = (int)sign;
    d->exp = (int)exp;
    d->n = (int)n;
    rc = DF_OK;
    for (i = 0; i < n; i++) {
      if (s[i] < '0' || s[i] > '9') {
        rc = DF_EVALIDATION;
        break;
      }
      d->d[i] = (unsigned char)(s[i] - '0');
    }
  }
  lua_pop(L, 3);
  if (rc == DF_OK) return DF_OK;
  if (!luaL_callmeta(L, idx, "__tostring")) return DF_EVALIDATION;
  s = lua_tolstring(L, -1, &n);
  rc = s && df__dec_parse(s, n, d) == DF_DEC_OK ? DF_OK : DF_EVALIDATION;
  lua_pop(L, 1);
  return rc;
}

/* Push the registered metatable of kind ("N", "B", "SS", "NS", "BS"), or
 * nothing and 0 when types.lua did not register them.  [-0, +(0|1), -] */
static int push_value_mt(lua_State *L, const char *kind) {
  lua_getfield(L, LUA_REGISTRYINDEX, MTS_KEY);
  if (lua_type(L, -1) != LUA_TTABLE) {
    lua_pop(L, 1);
    return 0;
  }
  lua_getfield(L, -1, kind);
  lua_remove(L, -2);
  if (lua_type(L, -1) != LUA_TTABLE) {
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

/* Call the registered constructor `name` on the value on top of the
 * stack (and `kind`, when not NULL), replacing it by the result; without
 * constructors (types.lua not loaded) the value stays.  [-1, +1, e] */
static void make_value(lua_State *L, const char *name, const char *kind) {
  lua_getfield(L, LUA_REGISTRYINDEX, MAKERS_KEY);
  if (lua_type(L, -1) != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  if (!lua_isfunction(L, -1)) { /* none registered for this kind */
    lua_pop(L, 1);
    return;
  }
  lua_insert(L, -2);
  if (kind) lua_pushstring(L, kind);
  lua_call(L, kind ? 2 : 1, 1);
}

/* Push the Lua value of the number d, by dynafile.types' rule: an integer
 * when d is one that fits (on 5.1/LuaJIT: within 2^53), a float when a
 * double's value is exactly d, else a decimal value: a table holding the
 * encoding (enc[0..enc_n) when the caller has it, else made here) with
 * the registered metatable.  The rare cases of 5.1/LuaJIT (integers
 * beyond 2^53: int64_t cdata or a decimal) go to the registered number
 * constructor.  [-0, +1, e] */
static void push_dec(lua_State *L, const df_dec *d, const unsigned char *enc,
                     size_t enc_n) {
  char buf[DF_DEC_STR_MAX];
  unsigned char code[DF_NUM_ENC_MAX];
  int64_t i;
  double f;
  if (df__dec_int64(d, &i)) {
#if LUA_VERSION_NUM >= 503
    lua_pushinteger(L, (lua_Integer)i);
    return;
#else
    if (i >= -((int64_t)1 << 53) && i <= ((int64_t)1 << 53)) {
      lua_pushnumber(L, (lua_Number)i);
      return;
    }
    goto constructor;
#endif
  }
  /* a double's shortest decimal has at most 17 digits */
  if (d->n <= 17 && df__dec_double(d, &f)) {
    lua_pushnumber(L, (lua_Number)f);
    return;
  }
  if (enc == NULL) {
    enc_n = d->inf || d->sign == 0 ? 0 : df__dec_enc(d, code);
    enc = code;
  }
  if (enc_n > 0 && push_value_mt(L, "N")) {
    lua_createtable(L, 0, 1);
    lua_pushlstring(L, (const char *)enc, enc_n);
    lua_setfield(L, -2, "enc");
    lua_insert(L, -2);
    lua_setmetatable(L, -2);
    return;
  }
#if LUA_VERSION_NUM < 503
constructor:
#endif
  if (df__dec_str(d, buf, sizeof buf) >= sizeof buf)
    luaL_error(L, "dynafile: a number too long to print");
  lua_pushstring(L, buf);
  make_value(L, "number", NULL);
}

/* ------------------------------------------------------------ encoding */

/* The state of one encoding.  After a failure, `why` holds the reason and
 * every function returns at once; lcodec_encode_item then restores the
 * stack and pushes the reason. */
typedef struct enc {
  lua_State *L;
  df_buf *b;
  const char *root; /* how messages name the value: "item", or none */
  int depth;
  int failed;
  int tables[DF_MAX_DEPTH + 1]; /* stack indexes of the tables being encoded */
  const char *path[DF_MAX_DEPTH + 1]; /* their keys (borrowed, on the stack) */
  char why[320];
} enc;

static const char *enc_path(enc *e, char *buf, size_t cap) {
  size_t n = 0;
  int i;
  buf[0] = '\0';
  for (i = 0; i < e->depth && n + 2 < cap; i++) {
    int w = snprintf(buf + n, cap - n, i ? ".%s" : "%s",
                     e->path[i] ? e->path[i] : "[?]");
    if (w < 0) break;
    n += (size_t)w;
  }
  return n ? buf : "(item)";
}

/* Record why the value at the current path cannot be stored:
 * "item: a.b: <what>" for an item, "a.b: <what>" or "<what>" for a
 * value. */
static void enc_fail(enc *e, const char *what) {
  char p[256];
  e->failed = 1;
  if (e->root)
    snprintf(e->why, sizeof e->why, "%s: %s: %s", e->root,
             enc_path(e, p, sizeof p), what);
  else if (e->depth > 0)
    snprintf(e->why, sizeof e->why, "%s: %s", enc_path(e, p, sizeof p), what);
  else
    snprintf(e->why, sizeof e->why, "%s", what);
}

static int is_array_marked(lua_State *L, int idx) {
  int r;
  if (!lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, LDF_ARRAY_MT);
  r = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return r;
}

static void enc_value(enc *e, int idx);

/* Count a table's pairs and decide whether it is a list (keys exactly
 * 1..n, or empty and marked with dynafile.array) or a map (string keys);
 * fails on keys that fit neither.  [-0, +0, m] */
static int classify(enc *e, int idx, size_t *count) {
  lua_State *L = e->L;
  size_t n = 0, len = lua_rawlen(L, idx);
  int ints = 0, strs = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    n++;
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      strs++;
    } else if (lua_type(L, -1) == LUA_TNUMBER && compat_isinteger(L, -1)) {
      lua_Number k = lua_tonumber(L, -1);
      if (k >= 1 && k <= (lua_Number)len)
        ints++;
      else
        ints = -1000000000; /* integer key outside 1..n: not a list */
    } else {
      lua_pop(L, 1);
      enc_fail(e, "table keys must be strings (a map) or 1..n (a list)");
      return 0;
    }
  }
  *count = n;
  if (strs && ints) {
    enc_fail(e, "table mixes list entries and named keys");
    return 0;
  }
  if (ints < 0 || (ints > 0 && (size_t)ints != len)) {
    enc_fail(e, "list has holes (keys must be exactly 1..n)");
    return 0;
  }
  if (n == 0) return is_array_marked(L, idx);
  return ints > 0;
}

/* LuaJIT's int64_t/uint64_t cdata (lua_type 10): its digits, as
 * tostring gives them ("123LL", "5ULL").  DF_OK or DF_EVALIDATION.
 * [-0, +0, e] */
static int int64_cdata(lua_State *L, int idx, df_dec *d) {
  size_t n;
  const char *s;
  int rc = DF_EVALIDATION;
  if (lua_type(L, idx) != 10) return DF_EVALIDATION;
  idx = lua_absindex(L, idx);
  lua_getglobal(L, "tostring");
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);
  s = lua_tolstring(L, -1, &n);
  if (s && n > 3 && strcmp(s + n - 3, "ULL") == 0)
    n -= 3;
  else if (s && n > 2 && strcmp(s + n - 2, "LL") == 0)
    n -= 2;
  else
    s = NULL;
  if (s && df__dec_parse(s, n, d) == DF_DEC_OK) rc = DF_OK;
  lua_pop(L, 1);
  return rc;
}

/* A decimal, binary value or set (kind from value_kind).  [-0, +0, m] */
static void enc_special(enc *e, int idx, const char *kind) {
  lua_State *L = e->L;
  if (strcmp(kind, "N") == 0) {
    df_dec d;
    if (decimal_of(L, idx, &d) != DF_OK) {
      enc_fail(e, "a decimal value that is not a number");
      return;
    }
    if (df__mp_put_dec(e->b, &d) != DF_OK)
      enc_fail(e, "cannot store a decimal");
    return;
  }
  if (strcmp(kind, "B") == 0) {
    size_t n;
    const char *p;
    lua_rawgeti(L, idx, 1);
    p = lua_tolstring(L, -1, &n);
    if (p == NULL || lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      enc_fail(e, "a binary value without its bytes");
      return;
    }
    df__mp_put_bin(e->b, p, n);
    lua_pop(L, 1);
    return;
  }
  { /* a set: its elements, then sorted and checked by the core */
    size_t n = lua_rawlen(L, idx), i, start = e->b->len;
    const char *why = NULL;
    df_type t = kind[0] == 'S' ? DF_TSS : kind[0] == 'N' ? DF_TNS : DF_TBS;
    int rc;
    luaL_checkstack(L, 4, "set");
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, (int)i);
      enc_value(e, lua_gettop(L));
      lua_pop(L, 1);
      if (e->failed) return;
    }
    rc = df__mp_finish_set(e->b, start, t, n, &why);
    if (rc == DF_EVALIDATION) {
      char what[160];
      snprintf(what, sizeof what, "%s: %s",
               t == DF_TSS   ? "string set"
               : t == DF_TNS ? "number set"
                             : "binary set",
               why ? why : "not a set");
      enc_fail(e, what);
    }
  }
}

/* [-0, +0, m] (values may be left on the stack after a failure) */
static void enc_table(enc *e, int idx) {
  lua_State *L = e->L;
  size_t n = 0, i;
  int d, is_array;
  if (e->b->failed) return; /* out of memory: stop at once */
  if (e->depth >= DF_MAX_DEPTH) {
    enc_fail(e, "nesting deeper than 32 levels (or a cyclic table)");
    return;
  }
  for (d = 0; d < e->depth; d++)
    if (lua_rawequal(L, e->tables[d], idx)) {
      enc_fail(e, "cyclic table (a table contains itself)");
      return;
    }
  luaL_checkstack(L, 6, "item nested too deep");
  is_array = classify(e, idx, &n);
  if (e->failed) return;
  e->tables[e->depth] = idx;
  e->path[e->depth] = NULL;
  e->depth++;
  if (is_array) {
    df__mp_put_array(e->b, (uint32_t)n);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, (int)i);
      e->path[e->depth - 1] = "[]";
      enc_value(e, lua_gettop(L));
      if (e->failed) return;
      lua_pop(L, 1);
    }
  } else {
    df__mp_put_map(e->b, (uint32_t)n);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      size_t kl;
      const char *k = lua_tolstring(L, -2, &kl);
      df__mp_put_str(e->b, k, kl);
      e->path[e->depth - 1] = k;
      enc_value(e, lua_gettop(L));
      if (e->failed) return;
      lua_pop(L, 1);
    }
  }
  e->depth--;
}

/* Append the value at idx (absolute) to e->b.  [-0, +0, m] */
static void enc_value(enc *e, int idx) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      df__mp_put_str(e->b, s, n);
      break;
    }
    case LUA_TNUMBER:
      if (compat_isinteger(L, idx)) {
        df__mp_put_int(e->b, compat_toint64(L, idx));
      } else {
        df__mp_put_float(e->b, (double)lua_tonumber(L, idx));
      }
      break;
    case LUA_TBOOLEAN:
      df__mp_put_bool(e->b, lua_toboolean(L, idx));
      break;
    case LUA_TTABLE: {
      const char *kind = value_kind(L, idx);
      if (kind)
        enc_special(e, idx, kind);
      else
        enc_table(e, idx);
      break;
    }
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL_PTR) {
        df__mp_put_nil(e->b);
        break;
      }
      enc_fail(e, "cannot store a light userdata");
      break;
    case LUA_TNIL:
      df__mp_put_nil(e->b);
      break;
    default: {
      char what[64];
      df_dec d;
      if (int64_cdata(L, idx, &d) == DF_OK) {
        if (df__mp_put_dec(e->b, &d) != DF_OK)
          enc_fail(e, "cannot store a number");
        break;
      }
      snprintf(what, sizeof what, "cannot store a %s", luaL_typename(L, idx));
      enc_fail(e, what);
    }
  }
}

/* [-0, +(0|1), m] */
int lcodec_encode_item(lua_State *L, int idx, df_buf *b) {
  enc e;
  int top = lua_gettop(L);
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE) {
    lua_pushfstring(L, "item must be a table, got %s", luaL_typename(L, idx));
    return DF_EVALIDATION;
  }
  memset(&e, 0, sizeof e);
  e.L = L;
  e.b = b;
  e.root = "item";
  df__buf_reset(b);
  enc_table(&e, idx);
  lua_settop(L, top);
  if (e.failed) {
    lua_pushstring(L, e.why);
    return DF_EVALIDATION;
  }
  if (b->failed) {
    lua_pushliteral(L, "out of memory");
    return DF_ENOMEM;
  }
  if (b->len && (b->p[0] & 0xf0) != 0x80 && b->p[0] != 0xde &&
      b->p[0] != 0xdf) {
    lua_pushliteral(L, "item must be a map of attributes, not a list");
    return DF_EVALIDATION;
  }
  return DF_OK;
}

/* [-0, +(0|1), m] */
int lcodec_encode_value(lua_State *L, int idx, df_buf *b) {
  enc e;
  int top = lua_gettop(L);
  idx = lua_absindex(L, idx);
  memset(&e, 0, sizeof e);
  e.L = L;
  e.b = b;
  df__buf_reset(b);
  enc_value(&e, idx);
  lua_settop(L, top);
  if (e.failed) {
    lua_pushstring(L, e.why);
    return DF_EVALIDATION;
  }
  if (b->failed) {
    lua_pushliteral(L, "out of memory");
    return DF_ENOMEM;
  }
  return DF_OK;
}

/* ------------------------------------------------------------ decoding */

static void push_array_mt(lua_State *L) {
  luaL_getmetatable(L, LDF_ARRAY_MT);
}

/* Big-endian unsigned integer of nb bytes at p. */
static uint64_t be_uint(const unsigned char *p, int nb) {
  uint64_t x = 0;
  int i;
  for (i = 0; i < nb; i++) x = (x << 8) | p[i];
  return x;
}

/* The attribute-name cache: items repeat the same attribute names, and
 * pushing a name from a cache is cheaper than interning it again.  It is
 * a table of NAME_SLOTS strings plus a userdata holding a copy of each
 * slot's bytes (compared in C, without a call into Lua), shared as
 * upvalues 1 and 2 by the handle and transaction methods; a slot is picked
 * by the length and a few bytes of the name, and a slot holding another
 * name is replaced.  Invariant: slot i of the userdata holds the bytes of
 * the string at index i + 1 of the table, or length 0.  The cache only
 * saves work: a decoded item is the same with or without it. */
#define NAME_SLOTS 256
#define NAME_MAX_LEN 31 /* fixstr names only */

typedef struct lcodec_name_slots {
  unsigned char len[NAME_SLOTS];
  char s[NAME_SLOTS][NAME_MAX_LEN];
} name_slots;

typedef lcodec_names names;

void lcodec_push_name_cache(lua_State *L) {
  lua_createtable(L, NAME_SLOTS, 0);
  memset(lua_newuserdata(L, sizeof(name_slots)), 0, sizeof(name_slots));
}

/* Push the name s[0..n) (0 < n <= NAME_MAX_LEN).  [-0, +1, e] */
static void push_name(lua_State *L, const names *nm, const unsigned char *s,
                      size_t n) {
  unsigned h = ((unsigned)n * 37u + s[0] * 7u + s[n - 1] * 3u + s[n / 2]) &
               (NAME_SLOTS - 1);
  name_slots *ns = nm->slots;
  if (ns->len[h] == n && memcmp(ns->s[h], s, n) == 0) {
    lua_rawgeti(L, nm->table, (int)h + 1);
    return;
  }
  lua_pushlstring(L, (const char *)s, n);
  lua_pushvalue(L, -1);
  lua_rawseti(L, nm->table, (int)h + 1);
  memcpy(ns->s[h], s, n);
  ns->len[h] = (unsigned char)n;
}

/* The scalars most values are -- small integers, strings up to 255
 * bytes, floats, booleans, nil -- pushed without a call: 1 pushed (and
 * *pp advanced), 0 another kind of value (nothing done), -1 malformed.
 * dec_value starts with it, and the loops over a map's or a list's values
 * try it before calling dec_value.  [-0, +(0|1), e] */
static inline int dec_scalar(lua_State *L, const unsigned char **pp,
                             const unsigned char *end) {
  const unsigned char *p = *pp;
  size_t n;
  unsigned c;
  if (p >= end) return -1;
  c = *p;
  if (c <= 0x7f) {
    compat_pushint(L, (int64_t)c);
    n = 1;
  } else if (c >= 0xe0) {
    compat_pushint(L, (int64_t)c - 256);
    n = 1;
  } else if (c >= 0xa0 && c <= 0xbf) {
    n = c & 0x1f;
    if ((size_t)(end - p) - 1 < n) return -1;
    lua_pushlstring(L, (const char *)p + 1, n);
    n += 1;
  } else if (c == 0xd9) { /* str 8 */
    if (end - p < 2 || (size_t)(end - p) - 2 < p[1]) return -1;
    n = p[1];
    lua_pushlstring(L, (const char *)p + 2, n);
    n += 2;
  } else if (c == 0xcb) {
    double d;
    uint64_t u;
    if (end - p < 9) return -1;
    u = be_uint(p + 1, 8);
    memcpy(&d, &u, 8);
    lua_pushnumber(L, (lua_Number)d);
    n = 9;
  } else if (c == 0xc2 || c == 0xc3) {
    lua_pushboolean(L, c == 0xc3);
    n = 1;
  } else if (c == 0xc0) {
    lua_pushlightuserdata(L, NULL_PTR);
    n = 1;
  } else {
    return 0;
  }
  *pp = p + n;
  return 1;
}

/* Stack room: a list or map being decoded holds at most 3 slots (itself,
 * a key, a value), a scalar's constructor or metatable a few more; the
 * decoder makes sure of STACK_SLOTS slots at the containers of depth 1,
 * 1 + STACK_LEVELS, ..., enough for the levels up to the next check (the
 * item itself is at depth 1). */
#define STACK_LEVELS 4
#define STACK_SLOTS 24

/* Push the MessagePack value at *p as Lua, advancing *p.  This is the hot
 * path of every get, query and scan, so it reads the bytes directly (one
 * switch on the type byte) rather than through the core's df__mp_read; it
 * is as strict: every length is checked against `end`, ext types and 0xc1
 * are refused, nesting is bounded.  Returns 0, or -1 for malformed bytes
 * (the values pushed so far stay on the stack; the caller resets it).
 * nm: the attribute-name cache, or NULL.
 * [-0, +1, e] */
static int dec_value(lua_State *L, const unsigned char **pp,
                     const unsigned char *end, int depth, const names *nm) {
  const unsigned char *p = *pp;
  size_t n, i, avail;
  unsigned c;
  int nb, is_bin = 0, r;
  if ((r = dec_scalar(L, pp, end)) != 0) return r > 0 ? 0 : -1;
  c = *p++;
  avail = (size_t)(end - p);
  if (c <= 0x8f) {
    n = c & 0x0f;
    goto map;
  } else if (c <= 0x9f) {
    n = c & 0x0f;
    goto array;
  } else {
    switch (c) { /* (dec_scalar has taken nil, booleans, str 8, float 64) */
      case 0xc4: /* bin 8/16/32 and str 16/32 */
        nb = 1;
        is_bin = c == 0xc4;
        goto strlen;
      case 0xc5:
      case 0xda:
        nb = 2;
        is_bin = c == 0xc5;
        goto strlen;
      case 0xc6:
      case 0xdb:
        nb = 4;
        is_bin = c == 0xc6;
      strlen:
        if (avail < (size_t)nb) return -1;
        n = (size_t)be_uint(p, nb);
        p += nb;
        avail -= (size_t)nb;
        goto str;
      case 0xca: {
        float f;
        uint32_t u;
        if (avail < 4) return -1;
        u = (uint32_t)be_uint(p, 4);
        memcpy(&f, &u, 4);
        lua_pushnumber(L, (lua_Number)f);
        p += 4;
        break;
      }
      case 0xcc:
      case 0xcd:
      case 0xce:
      case 0xcf: {
        uint64_t u;
        nb = 1 << (c - 0xcc);
        if (avail < (size_t)nb) return -1;
        u = be_uint(p, nb);
        if (u > (uint64_t)INT64_MAX)
          push_int(L, 0, 1, u);
        else
          push_int(L, (int64_t)u, 0, 0);
        p += nb;
        break;
      }
      case 0xd0:
      case 0xd1:
      case 0xd2:
      case 0xd3: {
        uint64_t u;
        int64_t v;
        nb = 1 << (c - 0xd0);
        if (avail < (size_t)nb) return -1;
        u = be_uint(p, nb);
        if (nb < 8 && (u >> (8 * nb - 1)) != 0) /* sign-extend */
          u |= ~(uint64_t)0 << (8 * nb);
        memcpy(&v, &u, 8);
        push_int(L, v, 0, 0);
        p += nb;
        break;
      }
      case 0xdc:
      case 0xdd:
        nb = c == 0xdc ? 2 : 4;
        if (avail < (size_t)nb) return -1;
        n = (size_t)be_uint(p, nb);
        p += nb;
        goto array;
      case 0xde:
      case 0xdf:
        nb = c == 0xde ? 2 : 4;
        if (avail < (size_t)nb) return -1;
        n = (size_t)be_uint(p, nb);
        p += nb;
        goto map;
      case 0xd4: /* fixext 1/2/4/8/16 */
      case 0xd5:
      case 0xd6:
      case 0xd7:
      case 0xd8:
        n = (size_t)1 << (c - 0xd4);
        goto ext;
      case 0xc7: /* ext 8/16/32 */
      case 0xc8:
      case 0xc9:
        nb = 1 << (c - 0xc7);
        if (avail < (size_t)nb) return -1;
        n = (size_t)be_uint(p, nb);
        p += nb;
        avail -= (size_t)nb;
        goto ext;
      default:
        return -1; /* 0xc1 */
    }
  }
  *pp = p;
  return 0;

str:
  if (avail < n) return -1;
  if (is_bin && push_value_mt(L, "B")) { /* as types.binary makes it */
    lua_createtable(L, 1, 0);
    lua_pushlstring(L, (const char *)p, n);
    lua_rawseti(L, -2, 1);
    lua_insert(L, -2);
    lua_setmetatable(L, -2);
  } else {
    lua_pushlstring(L, (const char *)p, n);
    if (is_bin) make_value(L, "binary", NULL);
  }
  *pp = p + n;
  return 0;

ext: /* the data model's ext types (codec.c): decimals and sets */
  if (avail < 1 || avail - 1 < n) return -1;
  {
    int type = (int)(signed char)p[0];
    const unsigned char *q = p + 1, *qend = p + 1 + n;
    /* exactly what the core's reader accepts: canonical decimals of
     * DynamoDB's range (as codec.c's take_ext), sets of their kind's
     * elements (df__mp_validate) */
    if (type == DF_EXT_DECIMAL) {
      df_dec d;
      size_t used;
      if (df__dec_dec(q, n, &d, &used) != DF_OK || used != n || d.inf ||
          d.sign == 0 || df__dec_range(&d) != DF_DEC_OK)
        return -1;
      push_dec(L, &d, q, n);
    } else if (df__mp_validate(*pp, (size_t)(qend - *pp), DF_MAX_DEPTH) != 0) {
      return -1;
    } else if (type == DF_EXT_SS || type == DF_EXT_NS || type == DF_EXT_BS) {
      /* a MessagePack array of the elements, distinct and sorted (the
       * validation above): the set's table as types.set makes it */
      const char *kind = type == DF_EXT_SS   ? "SS"
                         : type == DF_EXT_NS ? "NS"
                                             : "BS";
      if (dec_value(L, &q, qend, depth + 1, NULL) != 0 || q != qend) return -1;
      if (lua_type(L, -1) != LUA_TTABLE) return -1;
      if (push_value_mt(L, kind))
        lua_setmetatable(L, -2);
      else
        make_value(L, "set",
                   type == DF_EXT_SS   ? "S"
                   : type == DF_EXT_NS ? "N"
                                       : "B");
    } else {
      return -1;
    }
    *pp = qend;
    return 0;
  }

array:
  /* every element takes at least one byte: a count beyond the bytes left
   * is malformed (and must not size a table) */
  if (depth > DF_MAX_DEPTH || n > (size_t)(end - p)) return -1;
  if (depth % STACK_LEVELS == 1) luaL_checkstack(L, STACK_SLOTS, "item");
  lua_createtable(L, (int)n, 0);
  for (i = 0; i < n; i++) {
    if ((r = dec_scalar(L, &p, end)) < 0 ||
        (r == 0 && dec_value(L, &p, end, depth + 1, nm) != 0))
      return -1;
    lua_rawseti(L, -2, (int)i + 1);
  }
  if (n == 0) {
    push_array_mt(L);
    lua_setmetatable(L, -2);
  }
  *pp = p;
  return 0;

map:
  if (depth > DF_MAX_DEPTH || n > (size_t)(end - p) / 2) return -1;
  if (depth % STACK_LEVELS == 1) luaL_checkstack(L, STACK_SLOTS, "item");
  lua_createtable(L, 0, (int)n);
  for (i = 0; i < n; i++) {
    int kt;
    if (nm != NULL && p<end && * p> 0xa0 && *p <= 0xbf &&
        (size_t)(*p & 0x1f) < (size_t)(end - p)) {
      size_t kn = *p & 0x1f;
      push_name(L, nm, p + 1, kn);
      p += 1 + kn;
      if ((r = dec_scalar(L, &p, end)) < 0 ||
          (r == 0 && dec_value(L, &p, end, depth + 1, nm) != 0))
        return -1;
      lua_rawset(L, -3); /* a string key */
      continue;
    }
    if (dec_value(L, &p, end, depth + 1, nm) != 0) return -1;
    if (dec_value(L, &p, end, depth + 1, nm) != 0) return -1;
    kt = lua_type(L, -2);
    if (kt == LUA_TLIGHTUSERDATA ||
        (kt == LUA_TNUMBER && lua_tonumber(L, -2) != lua_tonumber(L, -2))) {
      lua_pop(L, 2); /* a nil or NaN key cannot live in a Lua table */
      continue;
    }
    lua_rawset(L, -3);
  }
  *pp = p;
  return 0;
}

/* [-0, +1, v] */
void lcodec_push_item(lua_State *L, const names *nm, const void *item,
                      size_t len) {
  const unsigned char *p = item, *end;
  int top = lua_gettop(L);
  if (item == NULL) {
    lua_pushnil(L);
    return;
  }
  end = p + len;
  if (dec_value(L, &p, end, 1, nm) != 0 || p != end) {
    lua_settop(L, top);
    lerror_raise(L, "dynafile: a stored item is malformed (corrupt data)");
  }
}

/* [-0, +1, -] */
void lcodec_names_open(lua_State *L, names *nm) {
  lua_pushvalue(L, lua_upvalueindex(1));
  nm->table = lua_gettop(L);
  nm->slots = lua_touserdata(L, lua_upvalueindex(2));
}

/* ---------------------------------------------------------------- keys */

/* A decimal value as a key value: DF_TDECIMAL over its order-preserving
 * encoding, the string of its "enc" field (made and stored there when the
 * value has only its fields), alive as long as the decimal value is (the
 * caller keeps that on the stack).  [-0, +0, m] */
static int decimal_key(lua_State *L, int idx, df_value *v) {
  idx = lua_absindex(L, idx);
  if (!decimal_enc(L, idx)) {
    df_dec d;
    unsigned char code[DF_NUM_ENC_MAX];
    size_t n;
    if (decimal_of(L, idx, &d) != DF_OK || (n = df__dec_enc(&d, code)) == 0)
      return DF_EVALIDATION;
    lua_pushliteral(L, "enc");
    lua_pushlstring(L, (const char *)code, n);
    lua_rawset(L, idx);
    if (!decimal_enc(L, idx)) return DF_EVALIDATION;
  }
  v->type = DF_TDECIMAL;
  v->s = lua_tolstring(L, -1, &v->n);
  lua_pop(L, 1); /* the decimal value keeps the string alive */
  return DF_OK;
}

/* [-0, +0, -] */
void lcodec_to_value(lua_State *L, int idx, df_value *v) {
  static const char *const other[] = {"a table", "a function", "a userdata",
                                      "a coroutine", "a light userdata"};
  const char *what = NULL;
  memset(v, 0, sizeof *v);
  switch (lua_type(L, idx)) {
    case LUA_TSTRING:
      v->type = DF_TSTR;
      v->s = lua_tolstring(L, idx, &v->n);
      return;
    case LUA_TNUMBER:
      if (compat_isinteger(L, idx)) {
        v->type = DF_TINT;
        v->i = compat_toint64(L, idx);
      } else {
        v->type = DF_TFLOAT;
        v->f = (double)lua_tonumber(L, idx);
      }
      return;
    case LUA_TNIL:
    case LUA_TNONE:
      v->type = DF_TNONE;
      return;
    case LUA_TBOOLEAN:
      v->type = DF_TBOOL;
      v->i = lua_toboolean(L, idx);
      return;
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL_PTR) {
        v->type = DF_TNIL;
        return;
      }
      what = other[4];
      break;
    case LUA_TTABLE: {
      const char *kind = value_kind(L, idx);
      if (kind && kind[0] == 'B' && kind[1] == 0) {
        lua_rawgeti(L, idx, 1); /* the table keeps the string alive */
        if (lua_type(L, -1) == LUA_TSTRING) {
          v->type = DF_TBIN;
          v->s = lua_tolstring(L, -1, &v->n);
          lua_pop(L, 1);
          return;
        }
        lua_pop(L, 1);
      } else if (kind && kind[0] == 'N' && kind[1] == 0) {
        if (decimal_key(L, idx, v) == DF_OK) return;
      }
      what = other[0];
      break;
    }
    case LUA_TFUNCTION:
      what = other[1];
      break;
    case 10: { /* LuaJIT's int64_t cdata: the integer it holds */
      df_dec d;
      if (int64_cdata(L, idx, &d) == DF_OK) {
        int64_t i;
        uint64_t u;
        if (df__dec_int64(&d, &i)) {
          v->type = DF_TINT;
          v->i = i;
          return;
        }
        if (df__dec_uint64(&d, &u)) {
          v->type = DF_TUINT;
          v->u = u;
          return;
        }
      }
      what = other[2];
      break;
    }
    case LUA_TTHREAD:
      what = other[3];
      break;
    default:
      what = other[2];
  }
  v->type = DF_TOTHER;
  v->s = what;
  v->n = strlen(what);
}

/* [-0, +2|+1, m] */
int lcodec_read_key(lua_State *L, int idx, df_db *db, df_key *k) {
  const df_schema *s = df_db_schema(db);
  memset(k, 0, sizeof *k);
  if (lua_type(L, idx) != LUA_TTABLE) {
    lua_pushfstring(L, "key must be a table, got %s", luaL_typename(L, idx));
    return DF_EVALIDATION;
  }
  /* The values stay on the stack until the caller returns: an __index
   * function may have made them, and nothing else keeps them alive. */
  luaL_checkstack(L, 2, "key");
  lua_getfield(L, idx, s->pk);
  lcodec_to_value(L, -1, &k->pk);
  if (s->sk) {
    lua_getfield(L, idx, s->sk);
    lcodec_to_value(L, -1, &k->sk);
  } else {
    lua_pushnil(L); /* two values, always */
  }
  return DF_OK;
}

/* ------------------------------------------------------------- events */

/* [-0, +1, v] */
void lcodec_push_event(lua_State *L, const df_event *ev) {
  lua_createtable(L, 0, 4);
  lua_pushstring(L, ev->action == DF_EV_PUT ? "PUT" : "DELETE");
  lua_setfield(L, -2, "action");
  if (ev->old) {
    lcodec_push_item(L, NULL, ev->old, ev->old_len);
    lua_setfield(L, -2, "old");
  }
  if (ev->new_item) {
    lcodec_push_item(L, NULL, ev->new_item, ev->new_len);
    lua_setfield(L, -2, "new");
  }
  if (ev->expired) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "expired");
  }
  if (ev->seq) {
    compat_pushint(L, ev->seq);
    lua_setfield(L, -2, "seq");
  }
}

/* ------------------------------------------------------------ methods */

/* core.parse_path(path) -> segments | nil, message: a document path by
 * the one grammar of the core (df__path_scan: names, `quoted names`,
 * [list positions]), names as strings and list positions as 1-based
 * integers; the message says where the path goes wrong. */
static int l_parse_path(lua_State *L) {
  size_t n, at = 0, i;
  const char *s = luaL_checklstring(L, 1, &n);
  char err[256];
  char *decoded = lua_newuserdata(L, n + 1); /* quoted names, decoded */
  df_path p;
  int code;
  err[0] = 0;
  code = df__path_scan(s, n, DF_PATH_WHOLE, decoded, &p, NULL, err, sizeof err,
                       &at);
  if (code != DF_OK) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s at character %d", err, (int)at + 1);
    return 2;
  }
  lua_createtable(L, (int)p.n, 0);
  for (i = 0; i < p.n; i++) {
    if (p.seg[i].name)
      lua_pushlstring(L, p.seg[i].name, p.seg[i].len);
    else
      lua_pushinteger(L, (lua_Integer)p.seg[i].index + 1);
    lua_rawseti(L, -2, (int)i + 1);
  }
  return 1;
}

/* core.decode(bytes) -> item */
static int l_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lcodec_push_item(L, NULL, s, n);
  return 1;
}

/* core.decimal_parts(enc) -> sign, digits, exp: the number a decimal's
 * encoding holds (sign -1, 0 or 1; digits without leading or trailing
 * zeros, "" for zero; value = digits * 10^exp); raises on a malformed
 * encoding. */
static int l_decimal_parts(lua_State *L) {
  size_t n, used;
  const char *s = luaL_checklstring(L, 1, &n);
  char digits[DF_DEC_DIGITS];
  df_dec d;
  int k;
  if (df__dec_dec((const unsigned char *)s, n, &d, &used) != DF_OK ||
      used != n || d.inf)
    return luaL_error(L, "dynafile: a malformed decimal encoding");
  for (k = 0; k < d.n; k++) digits[k] = (char)('0' + d.d[k]);
  compat_pushint(L, d.sign);
  lua_pushlstring(L, digits, (size_t)d.n);
  compat_pushint(L, d.sign == 0 ? 0 : d.exp);
  return 3;
}

/* Parse a DynamoDB N string (1) within DynamoDB's range; 0 when it is
 * not one (the caller gives the message). */
static int parse_number(lua_State *L, df_dec *d) {
  size_t n;
  const char *s;
  if (lua_type(L, 1) != LUA_TSTRING) return 0;
  s = lua_tolstring(L, 1, &n);
  return df__dec_parse(s, n, d) == DF_DEC_OK && df__dec_range(d) == DF_DEC_OK;
}

/* core.decimal_parse(s) -> decimal value | nil: s as a decimal value
 * (dynafile.decimal(s)); nil when s is no DynamoDB number or out of
 * range.  Needs register_types. */
static int l_decimal_parse(lua_State *L) {
  df_dec d;
  unsigned char code[DF_NUM_ENC_MAX];
  size_t n;
  if (!parse_number(L, &d) || !push_value_mt(L, "N")) return 0;
  lua_createtable(L, 0, 4);
  if (d.sign == 0) { /* zero has no encoding worth keeping: its fields */
    compat_pushint(L, 0);
    lua_setfield(L, -2, "sign");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "digits");
    compat_pushint(L, 0);
    lua_setfield(L, -2, "exp");
  }
  n = df__dec_enc(&d, code);
  lua_pushlstring(L, (const char *)code, n);
  lua_setfield(L, -2, "enc");
  lua_insert(L, -2);
  lua_setmetatable(L, -2);
  return 1;
}

/* core.number_parse(s) -> value | nil: the Lua value of an N string
 * (dynafile.number(s)); nil when s is no DynamoDB number or out of
 * range. */
static int l_number_parse(lua_State *L) {
  df_dec d;
  if (!parse_number(L, &d)) return 0;
  push_dec(L, &d, NULL, 0);
  return 1;
}

/* core.register_types(kinds, makers): kinds maps each metatable of
 * dynafile.types to "N", "B", "SS", "NS" or "BS"; makers holds number(s),
 * binary(s) and set(list, kind), which the decoder calls for what it does
 * not build itself.  The decoder builds decimals, binary values and sets
 * itself, as those constructors would, with the metatables of kinds. */
static int l_register_types(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_pushvalue(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, KINDS_KEY);
  lua_pushvalue(L, 2);
  lua_setfield(L, LUA_REGISTRYINDEX, MAKERS_KEY);
  lua_newtable(L); /* kind -> metatable */
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    if (lua_type(L, -1) == LUA_TSTRING && lua_type(L, -2) == LUA_TTABLE) {
      lua_pushvalue(L, -1);
      lua_pushvalue(L, -3);
      lua_rawset(L, -5);
    }
    lua_pop(L, 1);
  }
  lua_setfield(L, LUA_REGISTRYINDEX, MTS_KEY);
  return 0;
}

const luaL_Reg lcodec_funcs[] = {{"decode", l_decode},
                                 {"decimal_parts", l_decimal_parts},
                                 {"decimal_parse", l_decimal_parse},
                                 {"number_parse", l_number_parse},
                                 {"parse_path", l_parse_path},
                                 {"register_types", l_register_types},
                                 {NULL, NULL}};
