/*
 * lbinding.h -- what the files of the Lua binding (module `dynafile.core`)
 * share.  Only the binding includes it; the C core never sees Lua.
 *
 * The binding is the only code that speaks both Lua and the C core.  It
 * never calls user Lua code: the Lua layer (lua/dynafile/) runs filters,
 * conditions, update functions and listeners around these calls.  Its
 * files, one concern each, from the bottom up (each calls only the core
 * and the files above it in this list):
 *
 *   lerror.c     raising misuse, returning expected failures (lerror_)
 *   lcodec.c     Lua values <-> MessagePack item bytes, key tables ->
 *                df_key, events; the attribute-name cache (lcodec_)
 *   lexpr.c      compiled expressions: filter and condition strings,
 *                DynamoDB expressions with their names and values,
 *                projections, update programs (lexpr_)
 *   ldb.c        the handle: one-call reads and writes, key checks,
 *                encoding, schema, stat, check, drop_index, close (ldb_)
 *   ltxn.c       transactions: begin, reads and writes inside one, commit,
 *                events (ltxn_)
 *   lview.c      item views for Lua filters and the pages they view
 *                (lview_)
 *   lquery.c     pages of queries and scans, change-log reads (lquery_)
 *   lopen.c      open arguments and the threaded opener (lopen_)
 *   ldynafile.c  luaopen_dynafile_core and the metatables, gathering the
 *                methods of the files above
 *
 * Invariants, for every file:
 *  - All C state lives in userdata (no C globals): a Lua error raised in
 *    the middle of a call (bad input, out of memory) leaks nothing; a
 *    transaction left open by an error is aborted by its __gc or by the
 *    Lua layer's pcall.
 *  - No LMDB pointer is held while Lua may raise: item bytes are copied by
 *    the core (df_db_get, pages) before they are turned into tables.
 *  - Misuse raises "dynafile.<function>: <argument>: <problem>" with no
 *    position; expected failures return nil, message, code.
 *
 * Stack notes follow Lua's manual: [-o, +p, x] = pops, pushes, may raise.
 */
#ifndef DF_LBINDING_H
#define DF_LBINDING_H

#include "compat.h"
#include "dynafile.h"
#include "internal.h"

/* The binding's cross-file names stay inside dynafile/core.so: only
 * luaopen_dynafile_core is exported to the process. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* Metatables of the userdata types. */
#define LDF_DB_MT "dynafile.db"
#define LDF_TXN_MT "dynafile.txn"
#define LDF_EXPR_MT "dynafile.expr"
#define LDF_ARGS_MT "dynafile.ddb_args"
#define LDF_PROJ_MT "dynafile.projection"
#define LDF_UPD_MT "dynafile.update"
#define LDF_ARRAY_MT "dynafile.array"
#define LDF_OPENER_MT "dynafile.opener"

/* Most index definitions (and names in one projection) an open accepts. */
#define LDF_MAX_INDEXES 64

/* The userdata at idx when it is one of the binding's blocks of this size
 * that begins with `tag`, the address of a static only the binding writes
 * into a userdata (a handle, a view, a view page): a test of a few
 * instructions on the hot paths, where luaL_checkudata looks the metatable
 * up by name in the registry.  Anything else gets luaL_checkudata's answer
 * for tname, which raises.  [-0, +0, v] */
static inline void *lbinding_checkudata_tag(lua_State *L, int idx,
                                            const char *tag, size_t size,
                                            const char *tname) {
  void *u = lua_touserdata(L, idx);
  if (u != NULL && lua_rawlen(L, idx) == size && *(const char *const *)u == tag)
    return u;
  return luaL_checkudata(L, idx, tname);
}

/* A database handle. */
typedef struct ldb {
  const char *tag; /* &ldb_tag: see ldb_arg */
  df_db *db;
  df_page *page;
  df_stream *stream; /* change-log reads, made on first use */
  df_buf buf;        /* encoding scratch */
  int readonly;      /* opened with readonly = true: every write fails */
} ldb;

/* A transaction; its user value is the ldb it belongs to. */
typedef struct ltxn {
  df_txn *t;
  int finished;
} ltxn;

/* A compiled filter or condition. */
typedef struct lexpr {
  df_expr *e;
  df_buf b; /* encoding scratch for eval */
} lexpr;

/* ---------------------------------------------------------- lerror.c */

/* Raise the formatted message as an error without a "file:line:"
 * position.  Only for what the Lua layer never causes (a method called
 * on the wrong object, corrupt stored bytes): everything else is
 * returned.  [-0, +1, v] */
int lerror_raise(lua_State *L, const char *fmt, ...);
/* Return an expected failure: nil, message (the code's default when msg
 * is empty), code name.  [-0, +3, m] */
int lerror_fail(lua_State *L, int code, const char *msg);
/* Return misuse: nil, message, code name, true.  [-0, +4, m] */
int lerror_misuse(lua_State *L, int code, const char *msg);
/* The same with the message on top of the stack.  [-1, +4, m] */
int lerror_misuse_pushed(lua_State *L, int code);
/* Return a failure of the core, as misuse for the codes that mean it (an
 * item or key refused, a closed handle, a nested write, a read-only
 * environment) and as an expected failure otherwise.  [-0, +3|4, m] */
int lerror_core(lua_State *L, int code, const char *msg);

/* ---------------------------------------------------------- lcodec.c */

/* The attribute-name cache shared by the handle and transaction methods
 * as their upvalues 1 and 2 (see lcodec.c). */
typedef struct lcodec_names {
  int table; /* stack index of the table of strings */
  struct lcodec_name_slots *slots;
} lcodec_names;

/* Push a new, empty name cache: its table, then its userdata.
 * [-0, +2, m] */
void lcodec_push_name_cache(lua_State *L);
/* Make the name cache of the running C function usable: its table is
 * pushed, to stay on the stack while nm is used.  [-0, +1, -] */
void lcodec_names_open(lua_State *L, lcodec_names *nm);

/* Push dynafile.null.  [-0, +1, -] */
void lcodec_push_null(lua_State *L);

/* Encode the item table at idx into b (reset first).  Returns DF_OK, or
 * DF_EVALIDATION or DF_ENOMEM with the reason pushed ("item: a.b: cannot
 * store a function").  [-0, +(0|1), m] */
int lcodec_encode_item(lua_State *L, int idx, df_buf *b);
/* Encode the Lua value at idx (any storable value) into b (reset
 * first).  Returns DF_OK, or DF_EVALIDATION or DF_ENOMEM with the reason
 * pushed ("a.b: cannot store a function").  [-0, +(0|1), m] */
int lcodec_encode_value(lua_State *L, int idx, df_buf *b);
/* Push an item decoded from MessagePack bytes (nil when item is NULL),
 * its attribute names from the cache nm (NULL: none).  Raises on
 * malformed bytes.  [-0, +1, v] */
void lcodec_push_item(lua_State *L, const lcodec_names *nm, const void *item,
                      size_t len);
/* Push an event as {action=, old=, new=, expired=, seq=}.  [-0, +1, v] */
void lcodec_push_event(lua_State *L, const df_event *ev);

/* The Lua value at idx as a df_value, judging nothing (the core's key
 * rule judges it): a string or number as itself, nil as absent
 * (DF_TNONE), a boolean, dynafile.null (DF_TNIL), and anything else as
 * DF_TOTHER naming its Lua type ("a function").  v->s borrows the Lua
 * string.  [-0, +0, -] */
void lcodec_to_value(lua_State *L, int idx, df_value *v);
/* Read a key table at idx into *k, judging nothing but that it is a
 * table.  Returns DF_OK with two values pushed, which *k's strings borrow
 * and which must stay on the stack while *k is used; or DF_EVALIDATION
 * with only the reason pushed.  [-0, +2|+1, m] */
int lcodec_read_key(lua_State *L, int idx, df_db *db, df_key *k);

/* ------------------------------------------------------------ lexpr.c */

/* The projection at idx (a compiled projection), NULL for none; raises on
 * anything else.  [-0, +0, v] */
df_projection *lexpr_opt_projection(lua_State *L, int idx);
/* Push an item, projected first when pr is not NULL.  [-0, +1, v] */
void lexpr_push_projected(lua_State *L, const lcodec_names *nm,
                          df_projection *pr, const void *item, size_t len);
/* The update program at idx; raises on anything else.  [-0, +0, v] */
df_update *lexpr_update_arg(lua_State *L, int idx);
/* Make the metatables of compiled expressions, projections, update
 * programs and DynamoDB arguments.  [-0, +0, m] */
void lexpr_register(lua_State *L);
/* The finalizer of a compiled expression. */
int lexpr_gc(lua_State *L);

/* ------------------------------------------------------------- ldb.c */

/* The handle at idx (raises when it is none), NULL when it is closed.
 * [-0, +0, v] */
extern const char ldb_tag;
ldb *ldb_arg(lua_State *L, int idx);
/* Return misuse: "database is closed" (Closed).  [-0, +4, m] */
int ldb_closed_fail(lua_State *L);
/* Return misuse: "the database is opened read-only" (ReadOnly), what a
 * write through a read-only handle gives (the core refuses writes to an
 * environment opened read-only; a handle opened read-only on an
 * environment another handle writes to is refused here).  [-0, +4, m] */
int ldb_readonly_fail(lua_State *L);
/* An optional time argument; when absent, the clock's time if the schema
 * in force has a TTL attribute (d may be NULL), else 0.  [-0, +0, v] */
double ldb_opt_time(lua_State *L, int idx, const ldb *d);
/* The handle's finalizer (also its close method). */
int ldb_close(lua_State *L);

/* ------------------------------------------------------------ lview.c */

/* The page a reader (the spec table at index spec) reads when a Lua
 * filter judges its items: its own (spec.view_page), so a filter may run
 * other queries; no filter call is open on it.  [-0, +0, m] */
df_page *lview_reader_page(lua_State *L, int spec);
/* Make the metatables of views and view pages (whose methods share the
 * name cache: its table and userdata, the two values on top of the
 * stack).  [-0, +0, m] */
void lview_register(lua_State *L);

/* ------------------------------------- what each file adds to the module */

/* Functions of the module table. */
extern const luaL_Reg lcodec_funcs[]; /* decode */
extern const luaL_Reg lexpr_funcs[];  /* compile, eval, ddb_args, ... */
extern const luaL_Reg lopen_funcs[];  /* open, open_start */
extern const luaL_Reg lview_funcs[];  /* view_totable, view_type, view_pairs */
/* Methods of a handle (upvalues: the name cache). */
extern const luaL_Reg ldb_methods[];
extern const luaL_Reg ltxn_db_methods[];   /* begin */
extern const luaL_Reg lquery_db_methods[]; /* page, stream_read */
/* Methods of a transaction (upvalues: the name cache). */
extern const luaL_Reg ltxn_methods[];
/* Methods of an opener. */
extern const luaL_Reg lopen_opener_methods[];

/* Finalizers of the other userdata. */
int ltxn_free(lua_State *L);
int lopen_opener_gc(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif /* DF_LBINDING_H */
