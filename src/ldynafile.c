/*
 * ldynafile.c -- the Lua binding, module `dynafile.core`: the only file that
 * speaks both Lua and the C core.
 *
 * It turns Lua tables into MessagePack item bytes and back (straight
 * between the Lua stack and bytes), Lua key tables into df_key, and wraps
 * df_db, df_txn and df_expr in userdata.  It never calls user Lua code: the
 * Lua layer (lua/dynafile/init.lua) runs filters, conditions, update
 * functions and listeners around these calls.
 *
 * Invariants:
 *  - All C state lives in userdata (no C globals): a Lua error raised in
 *    the middle of a call (bad input, out of memory) leaks nothing; a
 *    transaction left open by an error is aborted by its __gc or by the
 *    Lua layer's pcall.
 *  - No LMDB pointer is held while Lua may raise: item bytes are copied by
 *    the core (df_db_get, pages) before they are turned into tables.
 *  - Misuse raises "dynafile.<function>: <argument>: <problem>"; expected
 *    failures return nil, message, code.
 *
 * Stack notes follow Lua's manual: [-o, +p, x] = pops, pushes, may raise.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "dynafile.h"
#include "internal.h"

/* Errors raised here carry no "file:line:" prefix: the position luaL_error
 * would add is the Lua layer's own line (lua/dynafile/init.lua), which
 * tells the user nothing; the message itself names the function and the
 * argument ("dynafile.put_item: ...").  [-0, +1, v] */
static int raise_error(lua_State *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  return lua_error(L);
}
#define luaL_error raise_error

#define DB_MT "dynafile.db"
#define TXN_MT "dynafile.txn"
#define EXPR_MT "dynafile.expr"
#define ARGS_MT "dynafile.ddb_args"
#define PROJ_MT "dynafile.projection"
#define UPD_MT "dynafile.update"
#define ARRAY_MT "dynafile.array"
#define OPENER_MT "dynafile.opener"
#define DF_MAX_INDEXES_LUA 64

/* The address of this constant is dynafile.null (a light userdata). */
static const char null_marker = 0;
#define NULL_PTR ((void *)&null_marker)

typedef struct ldb {
  df_db *db;
  df_page *page;
  df_stream *stream; /* change-log reads, made on first use */
  df_buf buf; /* encoding scratch */
} ldb;

typedef struct ltxn {
  df_txn *t;
  int finished;
} ltxn;

typedef struct lexpr {
  df_expr *e;
} lexpr;

typedef struct largs {
  df_ddb_args *a;
  df_buf b; /* encoding scratch, freed with the args */
} largs;

typedef struct lupd {
  df_update *u;
  df_buf b; /* encoding scratch */
} lupd;

typedef struct lproj {
  df_projection *p;
  df_buf b; /* encoding scratch for project() */
} lproj;

/* ------------------------------------------------------------- errors */

/* Stable code strings for the Lua side. */
static const char *code_name(int code) {
  switch (code) {
    case DF_ENOMEM: return "NoMemory";
    case DF_EINVAL: return "InvalidArgument";
    case DF_EVALIDATION: return "ValidationError";
    case DF_ESCHEMA: return "ValidationError";
    case DF_ENOTFOUND: return "NotFound";
    case DF_ECONDITION: return "ConditionalCheckFailed";
    case DF_EIO: return "IOError";
    case DF_EDISKFULL: return "IOError";
    case DF_EACCESS: return "IOError";
    case DF_ECORRUPT: return "Corrupt";
    case DF_EVERSION: return "VersionMismatch";
    case DF_EFORKED: return "Forked";
    case DF_ECLOSED: return "Closed";
    case DF_EREADONLY: return "ReadOnly";
    case DF_EBUSY: return "Busy";
    case DF_ERETRY: return "Retry";
    case DF_ELIMIT: return "LimitExceeded";
    case DF_EREADERS: return "ReadersFull";
    default: return "Error";
  }
}

/* [-0, +3, -] */
static int push_fail(lua_State *L, int code, const char *msg) {
  lua_pushnil(L);
  lua_pushstring(L, msg && msg[0] ? msg : df_strerror(code));
  lua_pushstring(L, code_name(code));
  return 3;
}

/* Misuse that the core reports (bad keys, closed handle, busy writer...)
 * is raised; expected failures are returned.  [-0, +3, e] */
static int fail_or_raise(lua_State *L, const char *fn, int code,
                         const char *msg) {
  switch (code) {
    case DF_EVALIDATION:
    case DF_ECLOSED:
    case DF_EBUSY:
    case DF_EREADONLY:
    case DF_EINVAL:
    case DF_EFORKED:
      if (code == DF_EFORKED) break; /* returned: a documented code */
      return luaL_error(L, "dynafile.%s: %s", fn,
                        msg && msg[0] ? msg : df_strerror(code));
    default:
      break;
  }
  return push_fail(L, code, msg);
}

/* ------------------------------------------------------------ encoding */

typedef struct enc {
  lua_State *L;
  df_buf *b;
  const char *fn;
  int depth;
  int tables[DF_MAX_DEPTH + 1]; /* stack indexes of the tables being encoded */
  const char *path[DF_MAX_DEPTH + 1];
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

static int enc_fail(enc *e, const char *what) {
  char p[256];
  return luaL_error(e->L, "dynafile.%s: item: %s: %s", e->fn,
                    enc_path(e, p, sizeof p), what);
}

static int is_array_marked(lua_State *L, int idx) {
  int r;
  if (!lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, ARRAY_MT);
  r = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return r;
}

static void enc_value(enc *e, int idx);

/* Count a table's pairs and decide whether it is an array (keys exactly
 * 1..n).  Raises on keys that fit neither form. [-0, +0, e] */
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
      if (k >= 1 && k <= (lua_Number)len) ints++;
      else ints = -1000000000; /* integer key outside 1..n: not a list */
    } else {
      lua_pop(L, 1);
      return enc_fail(e, "table keys must be strings (a map) or 1..n "
                         "(a list)");
    }
  }
  *count = n;
  if (strs && ints) {
    return enc_fail(e, "table mixes list entries and named keys");
  }
  if (ints < 0 || (ints > 0 && (size_t)ints != len))
    return enc_fail(e, "list has holes (keys must be exactly 1..n)");
  if (n == 0) return is_array_marked(L, idx);
  return ints > 0;
}

static void enc_table(enc *e, int idx) {
  lua_State *L = e->L;
  size_t n = 0, i;
  int d, is_array;
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
  e->tables[e->depth] = idx;
  e->path[e->depth] = NULL;
  e->depth++;
  if (is_array) {
    df__mp_put_array(e->b, (uint32_t)n);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, (int)i);
      e->path[e->depth - 1] = "[]";
      enc_value(e, lua_gettop(L));
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
      lua_pop(L, 1);
    }
  }
  e->depth--;
}

/* Append the value at idx (absolute) to e->b.  [-0, +0, e] */
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
    case LUA_TTABLE:
      enc_table(e, idx);
      break;
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
    default:
      enc_fail(e, lua_pushfstring(L, "cannot store a %s",
                                  luaL_typename(L, idx)));
  }
}

/* Encode the item table at idx into b (reset first).  [-0, +0, e] */
static void encode_item(lua_State *L, int idx, df_buf *b, const char *fn) {
  enc e;
  idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
  if (lua_type(L, idx) != LUA_TTABLE)
    luaL_error(L, "dynafile.%s: item must be a table, got %s", fn,
               luaL_typename(L, idx));
  memset(&e, 0, sizeof e);
  e.L = L;
  e.b = b;
  e.fn = fn;
  df__buf_reset(b);
  enc_table(&e, idx);
  if (b->failed) luaL_error(L, "dynafile.%s: out of memory", fn);
  if (b->len && b->p[0] != 0x80 && (b->p[0] & 0xf0) != 0x80 &&
      b->p[0] != 0xde && b->p[0] != 0xdf)
    luaL_error(L, "dynafile.%s: item must be a map of attributes, not a "
                  "list", fn);
}

/* ------------------------------------------------------------ decoding */

static void push_array_mt(lua_State *L) { luaL_getmetatable(L, ARRAY_MT); }

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

typedef struct name_slots {
  unsigned char len[NAME_SLOTS];
  char s[NAME_SLOTS][NAME_MAX_LEN];
} name_slots;

typedef struct names {
  int table; /* stack index of the table of strings */
  name_slots *slots;
} names;

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
  int nb;
  if (p >= end) return -1;
  c = *p++;
  avail = (size_t)(end - p);
  if (c <= 0x7f) {
    compat_pushint(L, (int64_t)c);
  } else if (c >= 0xe0) {
    compat_pushint(L, (int64_t)c - 256);
  } else if (c >= 0xa0 && c <= 0xbf) {
    n = c & 0x1f;
    goto str;
  } else if (c <= 0x8f) {
    n = c & 0x0f;
    goto map;
  } else if (c <= 0x9f) {
    n = c & 0x0f;
    goto array;
  } else {
    switch (c) {
      case 0xc0:
        lua_pushlightuserdata(L, NULL_PTR);
        break;
      case 0xc2:
      case 0xc3:
        lua_pushboolean(L, c == 0xc3);
        break;
      case 0xc4: /* bin 8/16/32 and str 8/16/32 */
      case 0xd9:
        nb = 1;
        goto strlen;
      case 0xc5:
      case 0xda:
        nb = 2;
        goto strlen;
      case 0xc6:
      case 0xdb:
        nb = 4;
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
      case 0xcb: {
        double d;
        uint64_t u;
        if (avail < 8) return -1;
        u = be_uint(p, 8);
        memcpy(&d, &u, 8);
        lua_pushnumber(L, (lua_Number)d);
        p += 8;
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
        if (u > (uint64_t)INT64_MAX) lua_pushnumber(L, (lua_Number)u);
        else compat_pushint(L, (int64_t)u);
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
        compat_pushint(L, v);
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
      default:
        return -1; /* 0xc1 and the ext types */
    }
  }
  *pp = p;
  return 0;

str:
  if (avail < n) return -1;
  lua_pushlstring(L, (const char *)p, n);
  *pp = p + n;
  return 0;

array:
  /* every element takes at least one byte: a count beyond the bytes left
   * is malformed (and must not size a table) */
  if (depth > DF_MAX_DEPTH + 1 || n > (size_t)(end - p)) return -1;
  luaL_checkstack(L, 4, "item nested too deep");
  lua_createtable(L, (int)n, 0);
  for (i = 0; i < n; i++) {
    if (dec_value(L, &p, end, depth + 1, nm) != 0) return -1;
    lua_rawseti(L, -2, (int)i + 1);
  }
  if (n == 0) {
    push_array_mt(L);
    lua_setmetatable(L, -2);
  }
  *pp = p;
  return 0;

map:
  if (depth > DF_MAX_DEPTH + 1 || n > (size_t)(end - p) / 2) return -1;
  luaL_checkstack(L, 4, "item nested too deep");
  lua_createtable(L, 0, (int)n);
  for (i = 0; i < n; i++) {
    int kt;
    if (nm != NULL && p < end && *p > 0xa0 && *p <= 0xbf &&
        (size_t)(*p & 0x1f) < (size_t)(end - p)) {
      size_t kn = *p & 0x1f;
      push_name(L, nm, p + 1, kn);
      p += 1 + kn;
      if (dec_value(L, &p, end, depth + 1, nm) != 0) return -1;
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

/* Push an item, its attribute names from the cache nm (NULL: none).
 * [-0, +1, e] */
static void push_item_named(lua_State *L, const names *nm, const void *item,
                            size_t len) {
  const unsigned char *p = item, *end = p + len;
  int top = lua_gettop(L);
  if (item == NULL) {
    lua_pushnil(L);
    return;
  }
  if (dec_value(L, &p, end, 1, nm) != 0) {
    lua_settop(L, top);
    luaL_error(L, "dynafile: a stored item is malformed (corrupt data)");
  }
}

/* Make the attribute-name cache of the running C function (a handle or
 * transaction method: upvalues 1 and 2) usable by push_item_named: its
 * table is pushed, to stay on the stack while nm is used.  [-0, +1, -] */
static void names_open(lua_State *L, names *nm) {
  lua_pushvalue(L, lua_upvalueindex(1));
  nm->table = lua_gettop(L);
  nm->slots = lua_touserdata(L, lua_upvalueindex(2));
}

/* [-0, +1, e] */
static void push_item(lua_State *L, const void *item, size_t len) {
  push_item_named(L, NULL, item, len);
}

/* The projection at idx (a dynafile.projection userdata), NULL for nil. */
static df_projection *opt_projection(lua_State *L, int idx, const char *fn) {
  lproj *pr;
  if (lua_isnoneornil(L, idx)) return NULL;
  pr = luaL_testudata(L, idx, PROJ_MT);
  if (!pr || !pr->p)
    luaL_error(L, "dynafile.%s: projection: not a compiled projection", fn);
  return pr->p;
}

/* Push an item, projected first when pr is non-NULL.  [-0, +1, e] */
static void push_projected(lua_State *L, const names *nm, df_projection *pr,
                           const void *item, size_t len) {
  if (pr) {
    const void *o;
    size_t ol;
    int rc = df_projection_apply(pr, item, len, &o, &ol);
    if (rc) luaL_error(L, "dynafile: projection: %s", df_strerror(rc));
    item = o;
    len = ol;
  }
  push_item_named(L, nm, item, len);
}

/* ---------------------------------------------------------------- keys */

static void key_value(lua_State *L, int idx, const char *fn,
                      const char *attr, df_value *v) {
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
        if (v->f != v->f)
          luaL_error(L, "dynafile.%s: key attribute %s must not be NaN", fn,
                     attr);
      }
      return;
    case LUA_TNIL:
      luaL_error(L, "dynafile.%s: key: missing key attribute %s", fn, attr);
      return;
    default:
      luaL_error(L,
                 "dynafile.%s: key attribute %s must be a string or a "
                 "number, got %s",
                 fn, attr, luaL_typename(L, idx));
  }
}

/* Read a key table at idx into *k; its strings borrow from the two values
 * pushed, which must stay on the stack while *k is used.  [-0, +2, e] */
static void check_key(lua_State *L, int idx, df_db *db, const char *fn,
                      df_key *k) {
  const df_schema *s = df_db_schema(db);
  memset(k, 0, sizeof *k);
  if (lua_type(L, idx) != LUA_TTABLE)
    luaL_error(L, "dynafile.%s: key must be a table, got %s", fn,
               luaL_typename(L, idx));
  /* The values stay on the stack until the caller returns: an __index
   * function may have made them, and nothing else keeps them alive. */
  luaL_checkstack(L, 2, "key");
  lua_getfield(L, idx, s->pk);
  key_value(L, -1, fn, s->pk, &k->pk);
  if (s->sk) {
    lua_getfield(L, idx, s->sk);
    key_value(L, -1, fn, s->sk, &k->sk);
  }
}

/* ------------------------------------------------------------ handles */

static ldb *check_db(lua_State *L, int idx, const char *fn) {
  ldb *d = luaL_testudata(L, idx, DB_MT);
  if (d == NULL)
    luaL_error(L, "dynafile.%s: expected a database handle, got %s", fn,
               luaL_typename(L, idx));
  if (d->db == NULL) luaL_error(L, "dynafile.%s: database is closed", fn);
  return d;
}

static double opt_now(lua_State *L, int idx) {
  return lua_isnoneornil(L, idx) ? 0.0 : (double)luaL_checknumber(L, idx);
}

/* What df_db_open needs, read from the options table of core.open.  The
 * strings borrow from that table, which must stay alive (referenced) as
 * long as the open runs. */
typedef struct open_args {
  df_open_options o;
  df_schema s, create;
  df_index_def defs[DF_MAX_INDEXES_LUA];
  const char *incs[DF_MAX_INDEXES_LUA][DF_MAX_INDEXES_LUA];
} open_args;

/* The change-log origin of this Lua state in this process: every handle
 * it opens writes it, and its stream reads skip it (its own commits were
 * delivered in-process).  The address of the state's db metatable tells
 * states of one process apart, the pid the processes that inherited one
 * state through fork (nginx workers), so it is computed at each open,
 * which comes after fork.  [-0, +0, -] */
static uint64_t state_origin(lua_State *L) {
  uint64_t parts[2];
  uint64_t h;
  luaL_getmetatable(L, DB_MT);
  parts[0] = (uint64_t)(uintptr_t)lua_topointer(L, -1);
  lua_pop(L, 1);
  parts[1] = (uint64_t)getpid();
  h = df__hash64(parts, sizeof parts, 0x737461746521ull);
  return h ? h : 1;
}

/* opts.stream: nil (leave the stored setting), false (off), true (the
 * default retention) or {keep = n, keep_seconds = s}; checked by the Lua
 * layer.  [-0, +0, -] */
static void read_stream_args(lua_State *L, int t, df_open_options *o) {
  o->origin = state_origin(L);
  lua_getfield(L, t, "stream");
  if (lua_type(L, -1) == LUA_TBOOLEAN) {
    o->stream = 1;
    o->stream_keep = lua_toboolean(L, -1) ? DF_STREAM_KEEP_DEFAULT : 0;
  } else if (lua_istable(L, -1)) {
    o->stream = 1;
    lua_getfield(L, -1, "keep");
    if (lua_isnumber(L, -1)) o->stream_keep = (uint64_t)lua_tonumber(L, -1);
    lua_getfield(L, -2, "keep_seconds");
    if (lua_isnumber(L, -1))
      o->stream_keep_seconds = (double)lua_tonumber(L, -1);
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

/* Read opts (pk, sk, ttl, sync, readonly, map_size, max_readers, indexes =
 * {{name=, kind="gsi"|"lsi", pk=, sk=, projection="all"|"keys"|{...}}})
 * at stack index `t` into *a.  [-0, +0, e] */
static void read_open_args(lua_State *L, int t, open_args *a) {
  int have_schema = 0;
  size_t i, n_idx = 0;
  memset(a, 0, sizeof *a);
  luaL_checktype(L, t, LUA_TTABLE);
  luaL_checkstack(L, 8, "dynafile.open");
  lua_getfield(L, t, "pk");
  if (lua_isstring(L, -1)) {
    a->s.pk = lua_tostring(L, -1);
    have_schema = 1;
  }
  lua_getfield(L, t, "sk");
  if (lua_isstring(L, -1)) a->s.sk = lua_tostring(L, -1);
  lua_getfield(L, t, "ttl");
  if (lua_isstring(L, -1)) a->s.ttl_attr = lua_tostring(L, -1);
  lua_getfield(L, t, "sync");
  if (lua_isstring(L, -1)) {
    const char *m = lua_tostring(L, -1);
    if (strcmp(m, "normal") == 0) a->o.sync = DF_SYNC_NORMAL;
    else if (strcmp(m, "off") == 0) a->o.sync = DF_SYNC_OFF;
    else a->o.sync = DF_SYNC_FULL;
  }
  lua_getfield(L, t, "readonly");
  a->o.readonly = lua_toboolean(L, -1);
  lua_getfield(L, t, "map_size");
  if (lua_isnumber(L, -1)) a->o.map_size = (size_t)lua_tonumber(L, -1);
  lua_getfield(L, t, "max_readers");
  if (lua_isnumber(L, -1)) a->o.max_readers = (unsigned)lua_tonumber(L, -1);
  lua_pop(L, 7); /* the strings stay referenced by the options table */
  read_stream_args(L, t, &a->o);
  lua_getfield(L, t, "indexes");
  if (lua_istable(L, -1)) {
    int ti = lua_gettop(L);
    n_idx = lua_rawlen(L, ti);
    if (n_idx > DF_MAX_INDEXES_LUA)
      luaL_error(L, "dynafile.open: too many indexes");
    for (i = 0; i < n_idx; i++) {
      df_index_def *x = &a->defs[i];
      int it;
      lua_rawgeti(L, ti, (int)i + 1);
      it = lua_gettop(L);
      lua_getfield(L, it, "name");
      x->name = lua_tostring(L, -1);
      lua_getfield(L, it, "kind");
      x->kind = (lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "lsi") == 0)
                    ? DF_LSI
                    : DF_GSI;
      lua_getfield(L, it, "pk");
      x->pk = lua_tostring(L, -1);
      lua_getfield(L, it, "sk");
      x->sk = lua_tostring(L, -1);
      lua_getfield(L, it, "projection");
      if (lua_istable(L, -1)) {
        int pt = lua_gettop(L);
        size_t j, m = lua_rawlen(L, pt);
        if (m > DF_MAX_INDEXES_LUA)
          luaL_error(L, "dynafile.open: projection too long");
        x->projection = DF_PROJ_INCLUDE;
        for (j = 0; j < m; j++) {
          lua_rawgeti(L, pt, (int)j + 1);
          a->incs[i][j] = lua_tostring(L, -1);
          if (a->incs[i][j] == NULL)
            luaL_error(L, "dynafile.open: index %s: projection names must "
                          "be strings", x->name ? x->name : "?");
          lua_pop(L, 1);
        }
        x->include = a->incs[i];
        x->n_include = m;
      } else if (lua_isstring(L, -1) &&
                 strcmp(lua_tostring(L, -1), "keys") == 0) {
        x->projection = DF_PROJ_KEYS;
      }
      lua_settop(L, ti); /* values stay referenced from the options table */
    }
    a->s.indexes = a->defs;
    a->s.n_indexes = n_idx;
  }
  lua_pop(L, 1);
  /* pk absent: keep the stored keys (or the defaults PK/SK when new) */
  a->create = a->s;
  if (a->create.pk == NULL) {
    a->create.pk = "PK";
    a->create.sk = "SK";
  }
  if (have_schema || a->s.ttl_attr || a->s.n_indexes) a->o.schema = &a->s;
  a->o.create_schema = &a->create;
}

/* A new, empty handle userdata.  [-0, +1, e] */
static ldb *new_ldb(lua_State *L) {
  ldb *d = lua_newuserdata(L, sizeof *d);
  memset(d, 0, sizeof *d);
  df__buf_init(&d->buf);
  luaL_setmetatable(L, DB_MT);
  return d;
}

/* Hand an open result to the handle `d` on top of the stack (d takes the
 * db over), or replace it by the failure.  [-1, +1|3, e] */
static int finish_open(lua_State *L, ldb *d, int code, df_db *db) {
  if (code != DF_OK) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", df_db_errmsg(db));
    df_db_close(db);
    lua_pop(L, 1);
    return push_fail(L, code, msg);
  }
  d->db = db;
  if (df_page_new(&d->page) != DF_OK)
    return luaL_error(L, "dynafile.open: out of memory");
  return 1;
}

/* The path argument at idx, refusing NUL bytes (C would cut it short).
 * [-0, +0, e] */
static const char *check_path(lua_State *L, int idx) {
  size_t n;
  const char *path = luaL_checklstring(L, idx, &n);
  if (strlen(path) != n)
    luaL_error(L, "dynafile.open: path must not contain NUL bytes");
  return path;
}

/* core.open(path, opts) -> db | nil, msg, code */
static int l_open(lua_State *L) {
  const char *path = check_path(L, 1);
  open_args *a;
  df_db *db = NULL;
  ldb *d;
  int code;
  /* a scratch userdata: too big for the C stack, freed by the GC */
  a = lua_newuserdata(L, sizeof *a);
  read_open_args(L, 2, a);
  d = new_ldb(L);
  code = df_db_open(path, &a->o, &db);
  return finish_open(L, d, code, db);
}

/* ------------------------------------------------- open with progress
 *
 * Building a new index at open can take a while on a large table, and the
 * caller may want to show progress.  The core reports it through a C
 * callback (df_open_options.progress) from inside df_db_open, where no Lua
 * code may run: the write transaction and the process-wide registry lock
 * are held, and a Lua function there could re-enter dynafile (or its
 * garbage collector close a handle) and deadlock.  So core.open_start
 * runs df_db_open in a helper thread; the callback only queues progress
 * under a mutex, and opener:wait() -- called by the Lua layer on the Lua
 * thread, outside every lock -- hands each report back, so the Lua layer
 * calls the user's function itself.  The helper thread touches no Lua
 * state. */

typedef struct progress_ev {
  char *name; /* malloc'd copy */
  size_t done, total;
} progress_ev;

#define OPENER_QUEUE (DF_MAX_INDEXES_LUA + 2)

typedef struct lopener {
  open_args a; /* read by the helper thread */
  char *path;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int inited, started, joined;
  progress_ev q[OPENER_QUEUE]; /* guarded by mu */
  size_t head, n;
  int finished, code; /* guarded by mu */
  df_db *db;          /* the result, until a handle takes it */
  int opts_ref;       /* keeps the options table (and its strings) alive */
} lopener;

/* The core's progress callback, on the helper thread: queue the report.
 * Reports for the same index as the last queued one replace it, so the
 * queue never needs more than one slot per index. */
static void on_progress(void *ud, const char *index, size_t done,
                        size_t total) {
  lopener *op = ud;
  progress_ev *last;
  pthread_mutex_lock(&op->mu);
  last = op->n ? &op->q[(op->head + op->n - 1) % OPENER_QUEUE] : NULL;
  if (last && last->name && strcmp(last->name, index) == 0) {
    last->done = done;
    last->total = total;
  } else if (op->n < OPENER_QUEUE) {
    progress_ev *ev = &op->q[(op->head + op->n) % OPENER_QUEUE];
    size_t len = strlen(index) + 1;
    ev->name = malloc(len);
    if (ev->name) {
      memcpy(ev->name, index, len);
      ev->done = done;
      ev->total = total;
      op->n++;
    }
  }
  pthread_cond_signal(&op->cv);
  pthread_mutex_unlock(&op->mu);
}

static void *open_thread(void *arg) {
  lopener *op = arg;
  df_db *db = NULL;
  int code = df_db_open(op->path, &op->a.o, &db);
  pthread_mutex_lock(&op->mu);
  op->db = db;
  op->code = code;
  op->finished = 1;
  pthread_cond_signal(&op->cv);
  pthread_mutex_unlock(&op->mu);
  return NULL;
}

static void opener_join(lopener *op) {
  if (op->started && !op->joined) {
    pthread_join(op->thread, NULL);
    op->joined = 1;
  }
}

static int l_opener_gc(lua_State *L) {
  lopener *op = luaL_checkudata(L, 1, OPENER_MT);
  size_t i;
  opener_join(op);
  if (op->db) df_db_close(op->db);
  op->db = NULL;
  for (i = 0; i < OPENER_QUEUE; i++) {
    free(op->q[i].name);
    op->q[i].name = NULL;
  }
  op->n = 0;
  if (op->inited) {
    pthread_mutex_destroy(&op->mu);
    pthread_cond_destroy(&op->cv);
    op->inited = 0;
  }
  free(op->path);
  op->path = NULL;
  if (op->opts_ref != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, op->opts_ref);
    op->opts_ref = LUA_NOREF;
  }
  return 0;
}

/* core.open_start(path, opts) -> opener | nil, msg, code
 * As core.open, with progress: the open runs while opener:wait() returns
 * the progress reports. */
static int l_open_start(lua_State *L) {
  const char *path = check_path(L, 1);
  lopener *op;
  size_t n = strlen(path) + 1;
  luaL_checktype(L, 2, LUA_TTABLE);
  op = lua_newuserdata(L, sizeof *op);
  memset(op, 0, sizeof *op);
  op->opts_ref = LUA_NOREF;
  luaL_setmetatable(L, OPENER_MT);
  read_open_args(L, 2, &op->a);
  op->a.o.progress = on_progress;
  op->a.o.progress_ud = op;
  lua_pushvalue(L, 2);
  op->opts_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  op->path = malloc(n);
  if (op->path == NULL) return luaL_error(L, "dynafile.open: out of memory");
  memcpy(op->path, path, n);
  pthread_mutex_init(&op->mu, NULL);
  pthread_cond_init(&op->cv, NULL);
  op->inited = 1;
  if (pthread_create(&op->thread, NULL, open_thread, op) != 0)
    return push_fail(L, DF_EIO, "dynafile.open: cannot start a thread");
  op->started = 1;
  return 1;
}

/* opener:wait() -> false, index, done, total  (a progress report)
 *               | db | nil, msg, code         (the open finished) */
static int l_opener_wait(lua_State *L) {
  lopener *op = luaL_checkudata(L, 1, OPENER_MT);
  ldb *d;
  int code;
  if (!op->started || op->joined)
    return luaL_error(L, "dynafile.open: the open has finished");
  pthread_mutex_lock(&op->mu);
  while (op->n == 0 && !op->finished) pthread_cond_wait(&op->cv, &op->mu);
  if (op->n > 0) {
    progress_ev ev = op->q[op->head];
    op->q[op->head].name = NULL;
    op->head = (op->head + 1) % OPENER_QUEUE;
    op->n--;
    pthread_mutex_unlock(&op->mu);
    lua_pushboolean(L, 0);
    lua_pushstring(L, ev.name);
    free(ev.name);
    compat_pushint(L, ev.done);
    compat_pushint(L, ev.total);
    return 4;
  }
  pthread_mutex_unlock(&op->mu);
  d = new_ldb(L); /* before taking the db over: this may raise */
  opener_join(op);
  code = op->code;
  {
    df_db *db = op->db;
    op->db = NULL;
    return finish_open(L, d, code, db);
  }
}

static int l_db_close(lua_State *L) {
  ldb *d = luaL_checkudata(L, 1, DB_MT);
  df_page_free(d->page);
  d->page = NULL;
  df_stream_free(d->stream);
  d->stream = NULL;
  df__buf_free(&d->buf);
  df_db_close(d->db);
  d->db = NULL;
  return 0;
}

/* db:drop_index(name) -> true | nil, msg, code */
static int l_db_drop_index(lua_State *L) {
  ldb *d = check_db(L, 1, "drop_index");
  const char *name = luaL_checkstring(L, 2);
  int code = df_db_drop_index(d->db, name);
  if (code == DF_ENOTFOUND)
    return luaL_error(L, "dynafile.drop_index: name: no index named %s",
                      name);
  if (code != DF_OK)
    return fail_or_raise(L, "drop_index", code, df_db_errmsg(d->db));
  lua_pushboolean(L, 1);
  return 1;
}

static int l_db_closed(lua_State *L) {
  ldb *d = luaL_checkudata(L, 1, DB_MT);
  lua_pushboolean(L, d->db == NULL);
  return 1;
}

static void set_str(lua_State *L, const char *k, const char *v) {
  if (v == NULL) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

/* db:schema() -> {pk=, sk=, ttl=, indexes = {name = {...}}} */
static int l_db_schema(lua_State *L) {
  ldb *d = check_db(L, 1, "schema");
  const df_schema *s = df_db_schema(d->db);
  size_t i, j;
  static const char *proj[] = {"all", "keys", "include"};
  lua_newtable(L);
  set_str(L, "pk", s->pk);
  set_str(L, "sk", s->sk);
  set_str(L, "ttl", s->ttl_attr);
  lua_newtable(L);
  for (i = 0; i < s->n_indexes; i++) {
    const df_index_def *x = &s->indexes[i];
    lua_newtable(L);
    set_str(L, "name", x->name);
    set_str(L, "kind", x->kind == DF_GSI ? "gsi" : "lsi");
    set_str(L, "pk", x->pk);
    set_str(L, "sk", x->sk);
    if (x->projection == DF_PROJ_INCLUDE) {
      lua_newtable(L);
      for (j = 0; j < x->n_include; j++) {
        lua_pushstring(L, x->include[j]);
        lua_rawseti(L, -2, (int)j + 1);
      }
      lua_setfield(L, -2, "projection");
    } else {
      set_str(L, "projection", proj[x->projection]);
    }
    lua_pushinteger(L, (lua_Integer)x->id);
    lua_setfield(L, -2, "id");
    lua_setfield(L, -2, x->name);
  }
  lua_setfield(L, -2, "indexes");
  return 1;
}

static int l_db_id(lua_State *L) {
  ldb *d = check_db(L, 1, "id");
  lua_pushstring(L, df_db_id(d->db));
  return 1;
}

/* Counts and sizes: integers on Lua 5.3+. */
static void set_num(lua_State *L, const char *k, double v) {
  compat_pushint(L, (int64_t)v);
  lua_setfield(L, -2, k);
}

static int l_db_stat(lua_State *L) {
  ldb *d = check_db(L, 1, "stat");
  df_stat st;
  int code = df_db_stat(d->db, &st);
  if (code != DF_OK) return push_fail(L, code, df_db_errmsg(d->db));
  lua_newtable(L);
  set_num(L, "items", (double)st.items);
  set_num(L, "index_entries", (double)st.index_entries);
  set_num(L, "map_size", (double)st.map_size);
  set_num(L, "used_bytes", (double)st.used_bytes);
  set_num(L, "max_readers", (double)st.max_readers);
  set_num(L, "readers_used", (double)st.readers_used);
  set_num(L, "stream_first", (double)st.stream_first);
  set_num(L, "stream_last", (double)st.stream_last);
  return 1;
}

/* db:check() -> report table | nil, msg, code */
static int l_db_check(lua_State *L) {
  ldb *d = check_db(L, 1, "check");
  df_check_report r;
  int code = df_db_check(d->db, &r);
  if (code != DF_OK) return push_fail(L, code, df_db_errmsg(d->db));
  lua_newtable(L);
  set_num(L, "items", (double)r.items);
  set_num(L, "index_entries", (double)r.index_entries);
  set_num(L, "expiry_entries", (double)r.expiry_entries);
  set_num(L, "bad_items", (double)r.bad_items);
  set_num(L, "missing_index", (double)r.missing_index);
  set_num(L, "stale_index", (double)r.stale_index);
  set_num(L, "missing_expiry", (double)r.missing_expiry);
  set_num(L, "stale_expiry", (double)r.stale_expiry);
  lua_pushboolean(L, r.bad_items == 0 && r.missing_index == 0 &&
                         r.stale_index == 0 && r.missing_expiry == 0 &&
                         r.stale_expiry == 0);
  lua_setfield(L, -2, "ok");
  return 1;
}

/* db:get(key, now) -> item | nil */
static int l_db_get(lua_State *L) {
  ldb *d = check_db(L, 1, "get_item");
  df_key k;
  const void *item;
  size_t len;
  int code;
  double now = opt_now(L, 3);
  df_projection *pr = opt_projection(L, 4, "get_item");
  check_key(L, 2, d->db, "get_item", &k);
  code = df_db_get(d->db, &k, now, &item, &len);
  if (code == DF_ENOTFOUND) {
    lua_pushnil(L);
    return 1;
  }
  if (code != DF_OK)
    return fail_or_raise(L, "get_item", code, df_db_errmsg(d->db));
  {
    names nm;
    names_open(L, &nm);
    push_projected(L, &nm, pr, item, len);
  }
  return 1;
}

/* db:put(item, now) -> true | nil, msg, code */
static int l_db_put(lua_State *L) {
  ldb *d = check_db(L, 1, "put_item");
  int code;
  encode_item(L, 2, &d->buf, "put_item");
  code = df_db_put(d->db, d->buf.p, d->buf.len, opt_now(L, 3));
  if (code != DF_OK)
    return fail_or_raise(L, "put_item", code, df_db_errmsg(d->db));
  lua_pushboolean(L, 1);
  return 1;
}

/* db:delete(key, now) -> true, found | nil, msg, code */
static int l_db_delete(lua_State *L) {
  ldb *d = check_db(L, 1, "delete_item");
  df_key k;
  int code, found = 0;
  double now = opt_now(L, 3);
  check_key(L, 2, d->db, "delete_item", &k);
  code = df_db_delete(d->db, &k, now, &found);
  if (code != DF_OK)
    return fail_or_raise(L, "delete_item", code, df_db_errmsg(d->db));
  lua_pushboolean(L, 1);
  lua_pushboolean(L, found);
  return 2;
}

/* db:check_key(key, fn) -- raises when key is not a valid key table */
static int l_db_check_key(lua_State *L) {
  ldb *d = check_db(L, 1, "check_key");
  df_key k;
  const char *fn = luaL_optstring(L, 3, "check_key");
  check_key(L, 2, d->db, fn, &k);
  return 0;
}

/* ----------------------------------------------------------- queries */

static int cond_of(const char *s) {
  static const struct {
    const char *name;
    int cond;
  } t[] = {{"eq", DF_COND_EQ},
           {"lt", DF_COND_LT},
           {"le", DF_COND_LE},
           {"gt", DF_COND_GT},
           {"ge", DF_COND_GE},
           {"between", DF_COND_BETWEEN},
           {"begins_with", DF_COND_BEGINS_WITH}};
  size_t i;
  for (i = 0; i < sizeof t / sizeof t[0]; i++)
    if (strcmp(s, t[i].name) == 0) return t[i].cond;
  return -1;
}

static void spec_value(lua_State *L, int spec, const char *field,
                       const char *fn, df_value *v) {
  lua_getfield(L, spec, field);
  key_value(L, -1, fn, field, v);
  /* the value stays referenced by the spec table */
  lua_pop(L, 1);
}

/* db:page(spec) -> items, next_key | nil, examined
 * spec: fn, index, pk, cond, lo, hi, start, reverse, start_after, segment,
 * segments (1-based segment), filter (expr), max, now, max_examined */
static int l_db_page(lua_State *L) {
  ldb *d = check_db(L, 1, "query");
  df_query q;
  const char *fn;
  size_t i, n, max_items, max_examined;
  const void *p;
  size_t plen;
  int code;
  names nm;
  df_projection *pr;

  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  memset(&q, 0, sizeof q);
  lua_getfield(L, 2, "fn");
  fn = lua_isstring(L, -1) ? lua_tostring(L, -1) : "query";
  lua_pop(L, 1);
  lua_getfield(L, 2, "index");
  if (lua_isstring(L, -1)) {
    unsigned id;
    if (df_db_index_find(d->db, lua_tostring(L, -1), &id) != DF_OK)
      return luaL_error(L, "dynafile.%s: index: no index named %s", fn,
                        lua_tostring(L, -1));
    q.index = id;
  }
  lua_pop(L, 1);
  lua_getfield(L, 2, "pk");
  if (!lua_isnil(L, -1)) {
    q.has_pk = 1;
    key_value(L, -1, fn, "partition key", &q.pk);
  }
  lua_pop(L, 1);
  lua_getfield(L, 2, "cond");
  if (lua_isstring(L, -1)) {
    q.cond = cond_of(lua_tostring(L, -1));
    if (q.cond < 0)
      return luaL_error(L, "dynafile.%s: unknown key condition %s", fn,
                        lua_tostring(L, -1));
    spec_value(L, 2, "lo", fn, &q.lo);
    if (q.cond == DF_COND_BETWEEN) spec_value(L, 2, "hi", fn, &q.hi);
  }
  lua_pop(L, 1);
  lua_getfield(L, 2, "start");
  if (!lua_isnil(L, -1)) {
    q.has_start = 1;
    key_value(L, -1, fn, "starts_with", &q.start);
  }
  lua_pop(L, 1);
  lua_getfield(L, 2, "reverse");
  q.reverse = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 2, "segments");
  if (lua_isnumber(L, -1)) {
    q.segments = (unsigned)lua_tonumber(L, -1);
    lua_getfield(L, 2, "segment");
    q.segment = (unsigned)lua_tonumber(L, -1) - 1;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_getfield(L, 2, "filter");
  if (!lua_isnil(L, -1)) {
    lexpr *x = luaL_testudata(L, -1, EXPR_MT);
    if (x == NULL || x->e == NULL)
      return luaL_error(L, "dynafile.%s: filter: not a compiled expression",
                        fn);
    q.filter = x->e;
  }
  lua_pop(L, 1);
  lua_getfield(L, 2, "projection");
  pr = opt_projection(L, -1, fn);
  lua_pop(L, 1);
  lua_getfield(L, 2, "max");
  max_items = lua_isnumber(L, -1) ? (size_t)lua_tonumber(L, -1) : 100;
  lua_pop(L, 1);
  lua_getfield(L, 2, "max_examined");
  max_examined = lua_isnumber(L, -1) ? (size_t)lua_tonumber(L, -1) : 0;
  lua_pop(L, 1);
  lua_getfield(L, 2, "now");
  q.now = lua_isnumber(L, -1) ? (double)lua_tonumber(L, -1) : 0.0;
  lua_pop(L, 1);
  /* start_after: encode the key table; keep the bytes in a string on the
   * stack so nothing leaks if a later step raises. */
  lua_getfield(L, 2, "start_after");
  if (lua_istable(L, -1)) {
    encode_item(L, -1, &d->buf, fn);
    lua_pushlstring(L, (const char *)d->buf.p, d->buf.len);
    q.start_after = lua_tolstring(L, -1, &q.start_after_len);
    /* stays at stack index 4 */
  } else {
    lua_pushnil(L);
  }
  code = df_query_page(d->db, &q, max_items, max_examined, d->page);
  if (code != DF_OK) return fail_or_raise(L, fn, code, df_db_errmsg(d->db));
  n = df_page_count(d->page);
  names_open(L, &nm);
  lua_createtable(L, (int)n, 0);
  for (i = 0; i < n; i++) {
    df_page_item(d->page, i, &p, &plen);
    push_projected(L, &nm, pr, p, plen);
    lua_rawseti(L, -2, (int)i + 1);
  }
  df_page_next_key(d->page, &p, &plen);
  if (p) push_item(L, p, plen);
  else lua_pushnil(L);
  lua_pushinteger(L, (lua_Integer)df_page_examined(d->page));
  return 3;
}

/* ------------------------------------------------------- transactions */

static ltxn *check_txn(lua_State *L, int idx, const char *fn) {
  ltxn *t = luaL_checkudata(L, idx, TXN_MT);
  if (t->t == NULL || t->finished)
    luaL_error(L, "dynafile.%s: transaction is finished", fn);
  return t;
}

/* db:begin(write, events, now) -> txn | nil, msg, code */
static int l_db_begin(lua_State *L) {
  ldb *d = check_db(L, 1, "transaction");
  unsigned flags = 0;
  ltxn *t;
  int code;
  double now = opt_now(L, 4); /* before anything is pushed at index 4 */
  lua_settop(L, 4);
  if (lua_toboolean(L, 2)) flags |= DF_TXN_WRITE;
  if (lua_toboolean(L, 3)) flags |= DF_TXN_EVENTS;
  t = lua_newuserdata(L, sizeof *t);
  memset(t, 0, sizeof *t);
  luaL_setmetatable(L, TXN_MT);
  lua_pushvalue(L, 1); /* keep the db alive while the txn lives */
#if LUA_VERSION_NUM >= 502
  lua_setuservalue(L, -2);
#else
  lua_newtable(L);
  lua_insert(L, -2);
  lua_rawseti(L, -2, 1);
  lua_setfenv(L, -2);
#endif
  code = df_txn_begin(d->db, flags, now, &t->t);
  if (code == DF_EBUSY) {
    /* The write transaction this thread holds may belong to a txn that
     * nothing references any more (an error -- out of memory -- unwound
     * its caller before it could free it, or a coroutine holding it was
     * dropped): collect it, which aborts it, and try once more. */
    lua_gc(L, LUA_GCCOLLECT, 0);
    code = df_txn_begin(d->db, flags, now, &t->t);
  }
  if (code != DF_OK) {
    if (code == DF_EBUSY)
      return luaL_error(L, "dynafile: %s", df_db_errmsg(d->db));
    return push_fail(L, code, df_db_errmsg(d->db));
  }
  return 1;
}

static ldb *txn_db(lua_State *L, int idx) {
#if LUA_VERSION_NUM >= 502
  lua_getuservalue(L, idx);
#else
  lua_getfenv(L, idx);
  lua_rawgeti(L, -1, 1);
  lua_remove(L, -2);
#endif
  {
    ldb *d = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (d == NULL || d->db == NULL)
      luaL_error(L, "dynafile: the transaction's database is closed");
    return d;
  }
}

/* txn:get(key) -> item | nil */
static int l_txn_get(lua_State *L) {
  ltxn *t = check_txn(L, 1, "get_item");
  ldb *d = txn_db(L, 1);
  df_key k;
  const void *item;
  size_t len;
  int code;
  df_projection *pr = opt_projection(L, 3, "get_item");
  check_key(L, 2, d->db, "get_item", &k);
  code = df_txn_get(t->t, &k, &item, &len);
  if (code == DF_ENOTFOUND) {
    lua_pushnil(L);
    return 1;
  }
  if (code != DF_OK)
    return fail_or_raise(L, "get_item", code, df_txn_errmsg(t->t));
  if (pr) {
    int rc = df_projection_apply(pr, item, len, &item, &len);
    if (rc) return luaL_error(L, "dynafile: projection: %s", df_strerror(rc));
  }
  /* copy before decoding: decoding may raise, LMDB memory must not be
   * referenced past a longjmp (it is not, but keep the rule simple) */
  lua_pushlstring(L, item, len);
  {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    names nm;
    names_open(L, &nm);
    push_item_named(L, &nm, s, n);
  }
  return 1;
}

/* txn:put(item_or_encoded, want_old, fn) -> true, old | nil, msg, code */
static int l_txn_put(lua_State *L) {
  ltxn *t = check_txn(L, 1, "put_item");
  ldb *d = txn_db(L, 1);
  const char *fn = luaL_optstring(L, 4, "put_item");
  const void *old = NULL, *item;
  size_t old_len = 0, len;
  int code, want_old = lua_toboolean(L, 3);
  if (lua_type(L, 2) == LUA_TSTRING) {
    item = lua_tolstring(L, 2, &len);
  } else {
    encode_item(L, 2, &d->buf, fn);
    item = d->buf.p;
    len = d->buf.len;
  }
  code = df_txn_put(t->t, item, len, want_old ? &old : NULL, &old_len);
  if (code != DF_OK) return fail_or_raise(L, fn, code, df_txn_errmsg(t->t));
  lua_pushboolean(L, 1);
  if (old) push_item(L, old, old_len);
  else lua_pushnil(L);
  return 2;
}

/* txn:delete(key, want_old, fn) -> found, old | nil, msg, code */
static int l_txn_delete(lua_State *L) {
  ltxn *t = check_txn(L, 1, "delete_item");
  ldb *d = txn_db(L, 1);
  const char *fn = luaL_optstring(L, 4, "delete_item");
  df_key k;
  const void *old = NULL;
  size_t old_len = 0;
  int code, found = 0, want_old = lua_toboolean(L, 3);
  int expired = lua_toboolean(L, 5);
  check_key(L, 2, d->db, fn, &k);
  if (expired)
    code = df_txn_delete_expired(t->t, &k, &found);
  else
    code = df_txn_delete(t->t, &k, &found, want_old ? &old : NULL, &old_len);
  if (code != DF_OK) return fail_or_raise(L, fn, code, df_txn_errmsg(t->t));
  lua_pushboolean(L, found);
  if (old) push_item(L, old, old_len);
  else lua_pushnil(L);
  return 2;
}

/* txn:update(key, update, want_old, fn) -> new, old | nil, msg, code
 * The update applied to the stored item's bytes (or to the key alone
 * when there is none), written back in this transaction. */
static int l_txn_update(lua_State *L) {
  ltxn *t = check_txn(L, 1, "update_item");
  ldb *d = txn_db(L, 1);
  lupd *u = luaL_checkudata(L, 3, UPD_MT);
  int want_old = lua_toboolean(L, 4);
  const char *fn = luaL_optstring(L, 5, "update_item");
  const df_schema *sc = df_db_schema(d->db);
  const char *keys[2];
  size_t nkeys = 0;
  df_key k;
  const void *old = NULL, *nw;
  size_t old_len = 0, nlen;
  char err[600];
  int code, kt, ot;
  if (!u->u) return luaL_error(L, "dynafile.%s: update freed", fn);
  lua_settop(L, 5);
  check_key(L, 2, d->db, fn, &k);
  /* the key map: just the key attributes of the key table */
  keys[nkeys++] = sc->pk;
  if (sc->sk) keys[nkeys++] = sc->sk;
  lua_createtable(L, 0, 2); /* check_key may have pushed: index by top */
  kt = lua_gettop(L);
  lua_getfield(L, 2, sc->pk);
  lua_setfield(L, kt, sc->pk);
  if (sc->sk) {
    lua_getfield(L, 2, sc->sk);
    lua_setfield(L, kt, sc->sk);
  }
  encode_item(L, kt, &u->b, fn);
  code = df_txn_get(t->t, &k, &old, &old_len);
  if (code == DF_ENOTFOUND) {
    old = NULL;
    old_len = 0;
  } else if (code != DF_OK) {
    return fail_or_raise(L, fn, code, df_txn_errmsg(t->t));
  }
  err[0] = 0;
  code = df_update_apply(u->u, old, old_len, u->b.p, u->b.len, keys, nkeys, &nw,
                         &nlen, err, sizeof err);
  if (code != DF_OK) {
    if (code == DF_EVALIDATION)
      return push_fail(L, code, lua_pushfstring(L, "dynafile.%s: %s", fn, err));
    return fail_or_raise(L, fn, code, err);
  }
  /* the old item to Lua before the write moves it */
  if (want_old && old) {
    lua_pushlstring(L, old, old_len);
  } else {
    lua_pushnil(L);
  }
  ot = lua_gettop(L);
  code = df_txn_put(t->t, nw, nlen, NULL, NULL);
  if (code != DF_OK) return fail_or_raise(L, fn, code, df_txn_errmsg(t->t));
  {
    names nm;
    names_open(L, &nm);
    push_item_named(L, &nm, nw, nlen);
    if (lua_isstring(L, ot)) {
      size_t n;
      const char *s = lua_tolstring(L, ot, &n);
      push_item_named(L, &nm, s, n);
    } else {
      lua_pushnil(L);
    }
  }
  return 2;
}

/* txn:check(key, expr) -> boolean: the expression on the stored item */
static int l_txn_check(lua_State *L) {
  ltxn *t = check_txn(L, 1, "condition");
  ldb *d = txn_db(L, 1);
  lexpr *x = luaL_checkudata(L, 3, EXPR_MT);
  df_key k;
  const void *item = NULL;
  size_t len = 0;
  int code, r;
  check_key(L, 2, d->db, "condition", &k);
  code = df_txn_get(t->t, &k, &item, &len);
  if (code == DF_ENOTFOUND) {
    item = NULL;
    len = 0;
  } else if (code != DF_OK) {
    return fail_or_raise(L, "condition", code, df_txn_errmsg(t->t));
  }
  r = df_expr_eval(x->e, item, len);
  if (r == DF_ELIMIT)
    return luaL_error(L, "dynafile: condition: a regular expression needed "
                         "more than its budget of %d steps on the item; "
                         "anchor or simplify it",
                      (int)DF_RX_BUDGET);
  if (r < 0) return luaL_error(L, "dynafile: a stored item is malformed");
  lua_pushboolean(L, r);
  return 1;
}

/* txn:purge(limit) -> count | nil, msg, code */
static int l_txn_purge(lua_State *L) {
  ltxn *t = check_txn(L, 1, "purge_expired");
  size_t count = 0;
  int code = df_txn_purge_expired(
      t->t, (size_t)luaL_optinteger(L, 2, 0), &count);
  if (code != DF_OK)
    return fail_or_raise(L, "purge_expired", code, df_txn_errmsg(t->t));
  lua_pushinteger(L, (lua_Integer)count);
  return 1;
}

/* txn:commit() -> true | nil, msg, code ("Retry": run it all again) */
static int l_txn_commit(lua_State *L) {
  ltxn *t = check_txn(L, 1, "commit");
  int code = df_txn_commit(t->t);
  t->finished = 1;
  if (code != DF_OK) return push_fail(L, code, df_txn_errmsg(t->t));
  lua_pushboolean(L, 1);
  return 1;
}

/* An event as {action=, old=, new=, expired=, seq=}.  [-0, +1, e] */
static void push_event(lua_State *L, const df_event *ev) {
  lua_createtable(L, 0, 4);
  lua_pushstring(L, ev->action == DF_EV_PUT ? "PUT" : "DELETE");
  lua_setfield(L, -2, "action");
  if (ev->old) {
    push_item(L, ev->old, ev->old_len);
    lua_setfield(L, -2, "old");
  }
  if (ev->new_item) {
    push_item(L, ev->new_item, ev->new_len);
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

/* txn:events() -> list of {action=, old=, new=, expired=, seq=} */
static int l_txn_events(lua_State *L) {
  ltxn *t = luaL_checkudata(L, 1, TXN_MT);
  size_t i, n = t->t ? df_txn_event_count(t->t) : 0;
  df_event ev;
  lua_createtable(L, (int)n, 0);
  for (i = 0; i < n; i++) {
    df_txn_event(t->t, i, &ev);
    push_event(L, &ev);
    lua_rawseti(L, -2, (int)i + 1);
  }
  return 1;
}

/* db:stream_read(after, max [, all]) -> events, next, first, last | nil, msg,
 * code
 * The change-log records after seq `after` that other Lua states and
 * processes wrote (this state's own are skipped unless `all`), oldest first,
 * each an
 * event with its seq and commit `time`; `next` is the seq to read after
 * next time; first and last bound the log.  after < 0: only the bounds. */
static int l_db_stream_read(lua_State *L) {
  ldb *d = check_db(L, 1, "poll_stream");
  lua_Number a = luaL_checknumber(L, 2);
  uint64_t after = a < 0 ? UINT64_MAX : (uint64_t)compat_toint64(L, 2);
  size_t i, n, max = (size_t)luaL_optinteger(L, 3, 256);
  uint64_t first, last;
  int code;
  if (d->stream == NULL && df_stream_new(&d->stream) != DF_OK)
    return luaL_error(L, "dynafile.poll_stream: out of memory");
  /* a 4th argument true reads every writer's records, this state's too
   * (dynafile serve's GetRecords) */
  code = df_stream_read(d->db, after, max,
                        lua_toboolean(L, 4) ? 0 : df_db_origin(d->db),
                        d->stream);
  if (code != DF_OK)
    return fail_or_raise(L, "poll_stream", code, df_db_errmsg(d->db));
  n = df_stream_count(d->stream);
  lua_createtable(L, (int)n, 0);
  for (i = 0; i < n; i++) {
    df_stream_record r;
    if (df_stream_record_get(d->stream, i, &r) != DF_OK)
      return luaL_error(L, "dynafile: a change-log record is malformed");
    push_event(L, &r.event);
    lua_pushnumber(L, (lua_Number)r.time);
    lua_setfield(L, -2, "time");
    lua_rawseti(L, -2, (int)i + 1);
  }
  df_stream_bounds(d->stream, &first, &last);
  compat_pushint(L, a < 0 ? last : df_stream_next(d->stream));
  compat_pushint(L, first);
  compat_pushint(L, last);
  return 4;
}

static int l_txn_free(lua_State *L) {
  ltxn *t = luaL_checkudata(L, 1, TXN_MT);
  df_txn_free(t->t);
  t->t = NULL;
  t->finished = 1;
  return 0;
}

/* -------------------------------------------------------- expressions */

/* core.compile(src) -> expr | nil, msg, "ValidationError" */
static int l_compile(lua_State *L) {
  size_t n;
  const char *src = luaL_checklstring(L, 1, &n);
  char err[256];
  lexpr *x = lua_newuserdata(L, sizeof *x);
  int code;
  x->e = NULL;
  luaL_setmetatable(L, EXPR_MT);
  err[0] = '\0';
  code = df_expr_compile(src, n, &x->e, err, sizeof err);
  if (code != DF_OK) return push_fail(L, code, err);
  return 1;
}

/* core.eval(expr, item_bytes_or_nil) -> boolean (bytes from db:encode) */
static int l_eval(lua_State *L) {
  lexpr *x = luaL_checkudata(L, 1, EXPR_MT);
  size_t n = 0;
  const char *s = lua_isnoneornil(L, 2) ? NULL : luaL_checklstring(L, 2, &n);
  int r = df_expr_eval(x->e, s, n);
  if (r < 0) return luaL_error(L, "dynafile: malformed item bytes");
  lua_pushboolean(L, r);
  return 1;
}

static int l_expr_gc(lua_State *L) {
  lexpr *x = luaL_checkudata(L, 1, EXPR_MT);
  df_expr_free(x->e);
  x->e = NULL;
  return 0;
}

/* ------------------------------------------- DynamoDB expression args */

/* Encode the map at idx (a table or nil) for df_ddb_args_new; the bytes
 * stay on the stack as a string (or nil).  [-0, +1, e] */
static void push_arg_map(lua_State *L, int idx, df_buf *b, const char *what) {
  if (lua_isnil(L, idx)) {
    lua_pushnil(L);
    return;
  }
  if (!lua_istable(L, idx))
    luaL_error(L, "dynafile.expr: %s must be a table, got %s", what,
               luaL_typename(L, idx));
  encode_item(L, idx, b, "expr");
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
  luaL_setmetatable(L, ARGS_MT);
  push_arg_map(L, 1, &a->b, "names");  /* 4 */
  push_arg_map(L, 2, &a->b, "values"); /* 5 */
  df__buf_free(&a->b);
  ns = lua_tolstring(L, 4, &nl);
  vs = lua_tolstring(L, 5, &vl);
  err[0] = 0;
  code =
      df_ddb_args_new(ns, ns ? nl : 0, vs, vs ? vl : 0, &a->a, err, sizeof err);
  if (code != DF_OK) return push_fail(L, code, err);
  lua_settop(L, 3);
  return 1;
}

static largs *check_args(lua_State *L) {
  largs *a = luaL_checkudata(L, 1, ARGS_MT);
  if (!a->a) luaL_error(L, "dynafile.expr: arguments already freed");
  return a;
}

/* args:condition(kind, src) -> expr | nil, msg, code
 * kind: "condition", "filter" or "key_condition" */
static int l_args_condition(lua_State *L) {
  largs *a = check_args(L);
  const char *kind = luaL_checkstring(L, 2);
  size_t n;
  const char *src = luaL_checklstring(L, 3, &n);
  char err[600];
  lexpr *x;
  int k = !strcmp(kind, "filter")          ? DF_DDB_FILTER
          : !strcmp(kind, "key_condition") ? DF_DDB_KEY_CONDITION
                                           : DF_DDB_CONDITION;
  int code;
  x = lua_newuserdata(L, sizeof *x);
  x->e = NULL;
  luaL_setmetatable(L, EXPR_MT);
  err[0] = 0;
  code = df_ddb_condition(a->a, k, src, n, &x->e, err, sizeof err);
  if (code != DF_OK) return push_fail(L, code, err);
  return 1;
}

/* args:projection(src) -> projection | nil, msg, code */
static int l_args_projection(lua_State *L) {
  largs *a = check_args(L);
  size_t n;
  const char *src = luaL_checklstring(L, 2, &n);
  char err[600];
  lproj *pr;
  int code;
  pr = lua_newuserdata(L, sizeof *pr);
  pr->p = NULL;
  df__buf_init(&pr->b);
  luaL_setmetatable(L, PROJ_MT);
  err[0] = 0;
  code = df_ddb_projection(a->a, src, n, &pr->p, err, sizeof err);
  if (code != DF_OK) return push_fail(L, code, err);
  return 1;
}

static void push_df_value(lua_State *L, const df_value *v) {
  df_buf b;
  df__buf_init(&b);
  if (v->type == DF_TARRAY || v->type == DF_TMAP || df__mp_put_value(&b, v) ||
      b.failed) {
    df__buf_free(&b);
    lua_pushnil(L);
    return;
  }
  lua_pushlstring(L, (const char *)b.p, b.len);
  df__buf_free(&b);
  {
    size_t n;
    const unsigned char *s = (const unsigned char *)lua_tolstring(L, -1, &n);
    const unsigned char *p = s;
    dec_value(L, &p, s + n, 0, NULL);
  }
  lua_remove(L, -2);
}

/* args:key_condition(src, pk, sk) -> {pk = v, cond = "eq"..., lo =, hi =}
 * | nil, msg, code */
static int l_args_key_condition(lua_State *L) {
  static const char *conds[] = {NULL, "eq", "lt",      "le",
                                "gt", "ge", "between", "begins_with"};
  largs *a = check_args(L);
  size_t n;
  const char *src = luaL_checklstring(L, 2, &n);
  const char *pk = luaL_checkstring(L, 3);
  const char *sk = luaL_optstring(L, 4, NULL);
  char err[600];
  df_key_condition kc;
  int code;
  err[0] = 0;
  code = df_ddb_key_condition(a->a, src, n, pk, sk, &kc, err, sizeof err);
  if (code != DF_OK) return push_fail(L, code, err);
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

static lupd *new_lupd(lua_State *L) {
  lupd *u = lua_newuserdata(L, sizeof *u);
  u->u = NULL;
  df__buf_init(&u->b);
  luaL_setmetatable(L, UPD_MT);
  return u;
}

/* core.update_new() -> an empty table-form update program */
static int l_update_new(lua_State *L) {
  lupd *u = new_lupd(L);
  int code = df_update_new(&u->u);
  if (code != DF_OK) return luaL_error(L, "dynafile: %s", df_strerror(code));
  return 1;
}

/* args:update(src) -> update | nil, msg, code */
static int l_args_update(lua_State *L) {
  largs *a = check_args(L);
  size_t n;
  const char *src = luaL_checklstring(L, 2, &n);
  char err[600];
  lupd *u = new_lupd(L);
  int code;
  err[0] = 0;
  code = df_ddb_update(a->a, src, n, &u->u, err, sizeof err);
  if (code != DF_OK) return push_fail(L, code, err);
  return 1;
}

/* u:add(action, path, value, where) -> true | nil, msg, code
 * action: "set", "remove", "add" or "delete"; value: any storable value */
static int l_update_add(lua_State *L) {
  static const char *actions[] = {"set", "remove", "add", "delete", NULL};
  lupd *u = luaL_checkudata(L, 1, UPD_MT);
  int action = luaL_checkoption(L, 2, NULL, actions) + 1;
  size_t pn;
  const char *path = luaL_checklstring(L, 3, &pn);
  const char *where = luaL_optstring(L, 5, NULL);
  char err[400];
  int code;
  if (!u->u) return luaL_error(L, "dynafile: update freed");
  df__buf_reset(&u->b);
  if (action != DF_UPD_REMOVE) {
    enc e;
    memset(&e, 0, sizeof e);
    e.L = L;
    e.b = &u->b;
    e.fn = "update_item";
    lua_settop(L, 5);
    enc_value(&e, 4);
    if (u->b.failed) return luaL_error(L, "dynafile: out of memory");
  }
  err[0] = 0;
  code = df_update_add(u->u, action, path, pn, u->b.p, u->b.len, where, err,
                       sizeof err);
  if (code != DF_OK) return push_fail(L, code, err);
  lua_pushboolean(L, 1);
  return 1;
}

/* core.apply_update(u, old_or_nil, key, pk, sk_or_nil, fn) -> new |
 * nil, msg, code: the update applied to a Lua item (the DynamoDB backend
 * applies updates to items it read, outside any local transaction). */
static int l_apply_update(lua_State *L) {
  lupd *u = luaL_checkudata(L, 1, UPD_MT);
  const char *pk = luaL_checkstring(L, 4);
  const char *sk = luaL_optstring(L, 5, NULL);
  const char *fn = luaL_optstring(L, 6, "update_item");
  const char *keys[2];
  size_t nkeys = 0, ol = 0, kl, nlen;
  const char *os = NULL, *ks;
  const void *nw;
  char err[600];
  int code, kt;
  if (!u->u) return luaL_error(L, "dynafile.%s: update freed", fn);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 6);
  if (!lua_isnil(L, 2)) {
    encode_item(L, 2, &u->b, fn);
    lua_pushlstring(L, (const char *)u->b.p, u->b.len); /* 7 */
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
  encode_item(L, kt, &u->b, fn);
  lua_pushlstring(L, (const char *)u->b.p, u->b.len);
  ks = lua_tolstring(L, -1, &kl);
  if (lua_isstring(L, 7)) os = lua_tolstring(L, 7, &ol);
  err[0] = 0;
  code = df_update_apply(u->u, os, ol, ks, kl, keys, nkeys, &nw, &nlen, err,
                         sizeof err);
  if (code == DF_EVALIDATION)
    return push_fail(L, code, lua_pushfstring(L, "dynafile.%s: %s", fn, err));
  if (code != DF_OK) return fail_or_raise(L, fn, code, err);
  push_item(L, nw, nlen);
  return 1;
}

/* u:paths() -> the top-level attributes the update changes, each once */
static int l_update_paths(lua_State *L) {
  lupd *u = luaL_checkudata(L, 1, UPD_MT);
  size_t i, n = df_update_count(u->u);
  int k = 0;
  lua_createtable(L, (int)n, 0);
  lua_createtable(L, 0, (int)n); /* seen */
  for (i = 0; i < n; i++) {
    const char *name;
    size_t len;
    if (df_update_target(u->u, i, &name, &len) != DF_OK) continue;
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
  lupd *u = luaL_checkudata(L, 1, UPD_MT);
  df_update_free(u->u);
  u->u = NULL;
  df__buf_free(&u->b);
  return 0;
}

/* core.project(projection, item_table, fn) -> the projected item */
static int l_project(lua_State *L) {
  lproj *pr = luaL_checkudata(L, 1, PROJ_MT);
  const char *fn = luaL_optstring(L, 3, "query");
  const void *o;
  size_t ol;
  int rc;
  if (!pr->p) return luaL_error(L, "dynafile.%s: projection freed", fn);
  encode_item(L, 2, &pr->b, fn);
  rc = df_projection_apply(pr->p, pr->b.p, pr->b.len, &o, &ol);
  if (rc)
    return luaL_error(L, "dynafile.%s: projection: %s", fn, df_strerror(rc));
  push_item(L, o, ol);
  return 1;
}

/* expr:eval(item) -> boolean, on a Lua item table (nil: no item) */
static int l_expr_eval_item(lua_State *L) {
  lexpr *x = luaL_checkudata(L, 1, EXPR_MT);
  df_buf b;
  int r;
  if (!x->e) return luaL_error(L, "dynafile: expression freed");
  if (lua_isnoneornil(L, 2)) {
    r = df_expr_eval(x->e, NULL, 0);
  } else {
    lua_settop(L, 2);
    df__buf_init(&b);
    /* the bytes go into a Lua string so nothing leaks if encoding raises */
    {
      lproj *holder = lua_newuserdata(L, sizeof *holder); /* 3 */
      holder->p = NULL;
      df__buf_init(&holder->b);
      luaL_setmetatable(L, PROJ_MT);
      encode_item(L, 2, &holder->b, "eval");
      r = df_expr_eval(x->e, holder->b.p, holder->b.len);
    }
    (void)b;
  }
  if (r < 0) return luaL_error(L, "dynafile: malformed item bytes");
  lua_pushboolean(L, r);
  return 1;
}

/* core.kind(v) -> "expr" | "projection" | "ddb_args" | nil */
static int l_kind(lua_State *L) {
  if (luaL_testudata(L, 1, EXPR_MT))
    lua_pushliteral(L, "expr");
  else if (luaL_testudata(L, 1, PROJ_MT))
    lua_pushliteral(L, "projection");
  else if (luaL_testudata(L, 1, ARGS_MT))
    lua_pushliteral(L, "ddb_args");
  else if (luaL_testudata(L, 1, UPD_MT))
    lua_pushliteral(L, "update");
  else
    lua_pushnil(L);
  return 1;
}

/* args:check_unused() -> true | nil, msg, "ValidationError" */
static int l_args_check_unused(lua_State *L) {
  largs *a = check_args(L);
  char err[600];
  int code = df_ddb_args_check_unused(a->a, err, sizeof err);
  if (code != DF_OK) return push_fail(L, code, err);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_args_gc(lua_State *L) {
  largs *a = luaL_checkudata(L, 1, ARGS_MT);
  df_ddb_args_free(a->a);
  a->a = NULL;
  df__buf_free(&a->b);
  return 0;
}

static int l_proj_gc(lua_State *L) {
  lproj *pr = luaL_checkudata(L, 1, PROJ_MT);
  df_projection_free(pr->p);
  pr->p = NULL;
  df__buf_free(&pr->b);
  return 0;
}

/* ------------------------------------------------------------- codec */

static int l_encode(lua_State *L) {
  ldb *d = check_db(L, 1, "encode");
  const char *fn = luaL_optstring(L, 3, "encode");
  encode_item(L, 2, &d->buf, fn);
  lua_pushlstring(L, (const char *)d->buf.p, d->buf.len);
  return 1;
}

static int l_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  push_item(L, s, n);
  return 1;
}

static int l_null_tostring(lua_State *L) {
  lua_pushliteral(L, "dynafile.null");
  return 1;
}

/* ----------------------------------------------------------- module */

static const luaL_Reg db_methods[] = {
    {"close", l_db_close},     {"closed", l_db_closed},
    {"drop_index", l_db_drop_index},
    {"schema", l_db_schema},   {"id", l_db_id},
    {"stat", l_db_stat},       {"get", l_db_get},
    {"check", l_db_check},
    {"put", l_db_put},         {"delete", l_db_delete},
    {"check_key", l_db_check_key},
    {"page", l_db_page},       {"begin", l_db_begin},
    {"encode", l_encode},      {"stream_read", l_db_stream_read},
    {NULL, NULL}};

static const luaL_Reg txn_methods[] = {
    {"get", l_txn_get},       {"put", l_txn_put},
    {"delete", l_txn_delete}, {"check", l_txn_check},
    {"update", l_txn_update}, {"purge", l_txn_purge},
    {"commit", l_txn_commit}, {"events", l_txn_events},
    {"free", l_txn_free},     {NULL, NULL}};

static const luaL_Reg opener_methods[] = {{"wait", l_opener_wait},
                                          {NULL, NULL}};

static const luaL_Reg funcs[] = {{"open", l_open},
                                 {"open_start", l_open_start},
                                 {"compile", l_compile},
                                 {"eval", l_eval},
                                 {"decode", l_decode},
                                 {"ddb_args", l_ddb_args},
                                 {"project", l_project},
                                 {"kind", l_kind},
                                 {"update_new", l_update_new},
                                 {"apply_update", l_apply_update},
                                 {NULL, NULL}};

static const luaL_Reg args_methods[] = {{"condition", l_args_condition},
                                        {"projection", l_args_projection},
                                        {"key_condition", l_args_key_condition},
                                        {"check_unused", l_args_check_unused},
                                        {"update", l_args_update},
                                        {NULL, NULL}};

/* A metatable whose methods share two upvalues: the attribute-name cache
 * (push_name), the two values on top of the stack.  [-0, +0, e] */
static void new_class(lua_State *L, const char *name, const luaL_Reg *m,
                      lua_CFunction gc) {
  int top = lua_gettop(L);
  luaL_newmetatable(L, name);
  lua_newtable(L);
  lua_pushvalue(L, top - 1);
  lua_pushvalue(L, top);
  luaL_setfuncs(L, m, 2);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}

int luaopen_dynafile_core(lua_State *L);
int luaopen_dynafile_core(lua_State *L) {
  lua_createtable(L, NAME_SLOTS, 0); /* the attribute-name cache */
  memset(lua_newuserdata(L, sizeof(name_slots)), 0, sizeof(name_slots));
  new_class(L, DB_MT, db_methods, l_db_close);
  new_class(L, TXN_MT, txn_methods, l_txn_free);
  new_class(L, OPENER_MT, opener_methods, l_opener_gc);
  lua_pop(L, 2);
  luaL_newmetatable(L, EXPR_MT);
  lua_pushcfunction(L, l_expr_gc);
  lua_setfield(L, -2, "__gc");
  lua_newtable(L);
  lua_pushcfunction(L, l_expr_eval_item);
  lua_setfield(L, -2, "eval");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newmetatable(L, ARGS_MT);
  lua_newtable(L);
  luaL_setfuncs(L, args_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_args_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, PROJ_MT);
  lua_pushcfunction(L, l_proj_gc);
  lua_setfield(L, -2, "__gc");
  lua_newtable(L);
  lua_pushcfunction(L, l_project);
  lua_setfield(L, -2, "apply");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newmetatable(L, UPD_MT);
  lua_pushcfunction(L, l_update_gc);
  lua_setfield(L, -2, "__gc");
  lua_newtable(L);
  lua_pushcfunction(L, l_update_add);
  lua_setfield(L, -2, "add");
  lua_pushcfunction(L, l_update_paths);
  lua_setfield(L, -2, "paths");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newmetatable(L, ARRAY_MT);
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  lua_pushlightuserdata(L, NULL_PTR);
  lua_setfield(L, -2, "null");
  luaL_getmetatable(L, ARRAY_MT);
  lua_setfield(L, -2, "array_mt");
  lua_pushstring(L, DF_VERSION);
  lua_setfield(L, -2, "version");
  (void)l_null_tostring;
  return 1;
}
