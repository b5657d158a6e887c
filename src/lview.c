/*
 * lview.c -- item views: what a Lua filter function is given instead of a
 * decoded item, and the page of stored items they are views of.
 *
 * A view is a small read-only userdata over the bytes of one map or list
 * of a stored item (the core's copy in a view page, never LMDB's map).
 * Indexing it decodes only the value touched: a scalar becomes the Lua
 * value a decoded item holds (lcodec.c's one decoder, so every stored
 * type reads the same through a view), a map or a list another view of
 * the same call.  The Lua layer (reader.lua) calls the filter on a view
 * of each item of a page and has only the items it accepts decoded into
 * tables; a rejected item leaves only its small views behind.
 *
 * Invariant: a view reads its bytes only while the filter call it was
 * made for is open.  A view page opens one call at a time (view
 * opens the next, item and close close it; the reader closes it
 * before any code but the filter runs, also when the filter raises); a
 * view whose call is not its page's open one refuses every use with "used
 * after its filter call returned".  A view keeps its page alive (through
 * an anchor table, its user value), so even a view kept forever never
 * touches freed memory.  Filters and TTL functions are called by the Lua
 * layer, never from C: they may yield (OpenResty, coroutines).
 */
#include <string.h>

#include "lbinding.h"

#define LDF_VIEW_MT "dynafile.view"
#define LDF_VIEW_PAGE_MT "dynafile.view_page"

#if LUA_VERSION_NUM >= 502
#define get_anchor(L, i) lua_getuservalue(L, (i))
#define set_anchor(L, i) lua_setuservalue(L, (i))
#else
#define get_anchor(L, i) lua_getfenv(L, (i))
#define set_anchor(L, i) lua_setfenv(L, (i))
#endif

/* The calls whose views refuse misuse by name.  A page names the function
 * of its reader with an index into this table. */
static const char *const WHO[] = {"dynafile", "dynafile.query", "dynafile.scan",
                                  "dynafile.query_page", "dynafile.scan_page"};

/* The tags that begin every view page and every view
 * (lbinding_checkudata_tag). */
static const char PAGE_TAG = 'p', VIEW_TAG = 'v';

/* A reader's page of stored items, while a Lua filter judges them. */
typedef struct vpage {
  const char *tag; /* &PAGE_TAG */
  df_page *page;
  uint64_t open; /* the id of the open filter call, 0 when none */
  uint64_t last; /* the last id handed out */
  int who;       /* index into WHO */
} vpage;

typedef struct view {
  const char *tag;        /* &VIEW_TAG */
  const unsigned char *p; /* the map's or list's bytes, header included */
  size_t n;
  vpage *pg;
  uint64_t id; /* the call the view belongs to */
} view;

/* ------------------------------------------------------------ validity */

/* The view at idx, refusing one whose call has returned.  [-0, +0, v] */
static view *check(lua_State *L, int idx) {
  view *v =
      lbinding_checkudata_tag(L, idx, &VIEW_TAG, sizeof(view), LDF_VIEW_MT);
  if (v->pg->open != v->id)
    lerror_raise(L,
                 "%s: filter: a view of an item was used after its filter "
                 "call returned (keep dynafile.totable(view) instead)",
                 WHO[v->pg->who]);
  return v;
}

static void corrupt(lua_State *L) {
  lerror_raise(L, "dynafile: a stored item is malformed (corrupt data)");
}

/* The header of v's map or list: its type (DF_TMAP or DF_TARRAY), count
 * and first element.  [-0, +0, v] */
static df_value header(lua_State *L, const view *v) {
  const unsigned char *p = v->p;
  df_value h;
  if (df__mp_read(&p, v->p + v->n, &h) != 0 ||
      (h.type != DF_TMAP && h.type != DF_TARRAY))
    corrupt(L);
  return h;
}

static int is_container(unsigned char c) {
  return (c >= 0x80 && c <= 0x9f) || (c >= 0xdc && c <= 0xdf);
}

/* Push a new view of [p, p+n) for the open call of page pg, anchored by
 * the anchor table at stack index anchor ({page, the views' metatable}).
 * [-0, +1, m] */
static void push_view(lua_State *L, vpage *pg, int anchor,
                      const unsigned char *p, size_t n) {
  view *v = lua_newuserdata(L, sizeof *v);
  v->tag = &VIEW_TAG;
  v->p = p;
  v->n = n;
  v->pg = pg;
  v->id = pg->open;
  lua_rawgeti(L, anchor, 2);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, anchor);
  set_anchor(L, -2);
}

/* Push the value whose bytes are [s, e), read through the view at index
 * vi: a map or a list as a view, anything else decoded.  [-0, +1, v] */
static void push_value(lua_State *L, int vi, const view *v,
                       const unsigned char *s, const unsigned char *e) {
  if (s < e && is_container(*s)) {
    get_anchor(L, vi);
    push_view(L, v->pg, lua_gettop(L), s, (size_t)(e - s));
    lua_remove(L, -2);
  } else {
    lcodec_push_item(L, NULL, s, (size_t)(e - s));
  }
}

/* ----------------------------------------------------------- metatable */

/* view[k]: a map's attribute k, a list's element k (1-based); nil when
 * there is none. */
static int view_index(lua_State *L) {
  view *v = check(L, 1);
  df_value h, x;
  const unsigned char *s, *e, *end = v->p + v->n;
  /* a map (map_find reads its header), else a list */
  if (v->n > 0 &&
      ((v->p[0] & 0xf0) == 0x80 || v->p[0] == 0xde || v->p[0] == 0xdf)) {
    size_t len;
    const char *k;
    int r;
    if (lua_type(L, 2) != LUA_TSTRING) return 0;
    k = lua_tolstring(L, 2, &len);
    r = df__mp_map_find(v->p, v->n, k, len, &x, &s, &e);
    if (r < 0) corrupt(L);
    if (r == 0) return 0;
  } else {
    lua_Number k;
    size_t i;
    h = header(L, v);
    if (lua_type(L, 2) != LUA_TNUMBER) return 0;
    k = lua_tonumber(L, 2);
    if (!(k >= 1 && k <= (lua_Number)h.n) || k != (lua_Number)(size_t)k)
      return 0;
    s = (const unsigned char *)h.s;
    for (i = 1; i < (size_t)k; i++)
      if (df__mp_skip(&s, end) != 0) corrupt(L);
    e = s;
    if (df__mp_skip(&e, end) != 0) corrupt(L);
  }
  push_value(L, 1, v, s, e);
  return 1;
}

static int view_newindex(lua_State *L) {
  view *v = check(L, 1);
  const char *k = lua_type(L, 2) == LUA_TSTRING || lua_type(L, 2) == LUA_TNUMBER
                      ? lua_tostring(L, 2)
                      : luaL_typename(L, 2);
  lerror_raise(L,
               "%s: filter: the item is read-only (a view of the stored "
               "item): cannot assign %s",
               WHO[v->pg->who], k);
  return 0;
}

/* #view: a list's length; 0 for a map, as for a table with named keys. */
static int view_len(lua_State *L) {
  view *v = check(L, 1);
  df_value h = header(L, v);
  lua_pushinteger(L, h.type == DF_TARRAY ? (lua_Integer)h.n : 0);
  return 1;
}

static int view_tostring(lua_State *L) {
  view *v = check(L, 1);
  df_value h = header(L, v);
  if (h.type == DF_TMAP)
    lua_pushfstring(L, "dynafile.view: map of %d attribute%s: %p", (int)h.n,
                    h.n == 1 ? "" : "s", (const void *)v);
  else
    lua_pushfstring(L, "dynafile.view: list of %d element%s: %p", (int)h.n,
                    h.n == 1 ? "" : "s", (const void *)v);
  return 1;
}

/* Two views are equal when they show the same value of the same call. */
static int view_eq(lua_State *L) {
  view *a = check(L, 1), *b = check(L, 2);
  lua_pushboolean(
      L, a->p == b->p && a->n == b->n && a->pg == b->pg && a->id == b->id);
  return 1;
}

/* The iterator of pairs(view): upvalues the view, the offset of the next
 * element and how many remain. */
static int view_next(lua_State *L) {
  view *v = luaL_checkudata(L, lua_upvalueindex(1), LDF_VIEW_MT);
  if (v->pg->open != v->id) check(L, lua_upvalueindex(1)); /* raises */
  size_t off = (size_t)lua_tonumber(L, lua_upvalueindex(2));
  lua_Number left = lua_tonumber(L, lua_upvalueindex(3));
  df_value h = header(L, v);
  const unsigned char *s = v->p + off, *e, *end = v->p + v->n;
  if (left <= 0) return 0;
  if (off == 0) s = (const unsigned char *)h.s;
  if (h.type == DF_TMAP) {
    e = s;
    if (df__mp_skip(&e, end) != 0) corrupt(L);
    lcodec_push_item(L, NULL, s, (size_t)(e - s));
    s = e;
  } else {
    lua_pushinteger(L, (lua_Integer)(h.n - (size_t)left) + 1);
  }
  e = s;
  if (df__mp_skip(&e, end) != 0) corrupt(L);
  push_value(L, lua_upvalueindex(1), v, s, e);
  lua_pushnumber(L, (lua_Number)(e - v->p));
  lua_replace(L, lua_upvalueindex(2));
  lua_pushnumber(L, left - 1);
  lua_replace(L, lua_upvalueindex(3));
  return 2;
}

/* pairs(view) where Lua honours __pairs, and core.view_pairs(x):
 * iterator, view, nil -- a list's elements with their positions, a map's
 * attributes in stored order; for a table, next, table, nil. */
static int view_pairs(lua_State *L) {
  view *v;
  if (lua_type(L, 1) == LUA_TTABLE) {
    lua_getglobal(L, "next");
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
  }
  v = check(L, 1);
  lua_pushvalue(L, 1);
  lua_pushnumber(L, 0);
  lua_pushnumber(L, (lua_Number)header(L, v).n);
  lua_pushcclosure(L, view_next, 3);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

/* core.view_totable(x): a view copied into tables (the value a decoded
 * item holds); anything else as it is. */
static int l_view_totable(lua_State *L) {
  view *v;
  if (!luaL_testudata(L, 1, LDF_VIEW_MT)) {
    lua_settop(L, 1);
    return 1;
  }
  v = check(L, 1);
  lcodec_push_item(L, NULL, v->p, v->n);
  return 1;
}

/* core.view_type(x): "M" or "L" for a view, nil for anything else. */
static int l_view_type(lua_State *L) {
  view *v;
  if (!luaL_testudata(L, 1, LDF_VIEW_MT)) return 0;
  v = check(L, 1);
  lua_pushstring(L, header(L, v).type == DF_TMAP ? "M" : "L");
  return 1;
}

const luaL_Reg lview_funcs[] = {{"view_totable", l_view_totable},
                                {"view_type", l_view_type},
                                {"view_pairs", view_pairs},
                                {NULL, NULL}};

/* ---------------------------------------------------------- view pages */

static int page_gc(lua_State *L) {
  vpage *pg = luaL_checkudata(L, 1, LDF_VIEW_PAGE_MT);
  df_page_free(pg->page);
  pg->page = NULL;
  pg->open = 0;
  return 0;
}

static int who_of(lua_State *L, int spec) {
  int i, who = 0;
  lua_getfield(L, spec, "fn");
  if (lua_type(L, -1) == LUA_TSTRING) {
    const char *fn = lua_tostring(L, -1);
    for (i = 1; i < (int)(sizeof WHO / sizeof WHO[0]); i++)
      if (strcmp(WHO[i] + 9, fn) == 0) who = i;
  }
  lua_pop(L, 1);
  return who;
}

/* [-0, +0, m] */
df_page *lview_reader_page(lua_State *L, int spec) {
  vpage *pg;
  lua_getfield(L, spec, "view_page");
  pg = luaL_testudata(L, -1, LDF_VIEW_PAGE_MT);
  if (pg == NULL) {
    lua_pop(L, 1);
    pg = lua_newuserdata(L, sizeof *pg);
    memset(pg, 0, sizeof *pg);
    pg->tag = &PAGE_TAG;
    luaL_getmetatable(L, LDF_VIEW_PAGE_MT);
    lua_setmetatable(L, -2);
    /* the anchor every view of this page holds: a table keeping the page,
     * and the views' metatable at hand */
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, 1);
    luaL_getmetatable(L, LDF_VIEW_MT);
    lua_rawseti(L, -2, 2);
    set_anchor(L, -2);
    if (df_page_new(&pg->page) != DF_OK)
      lerror_raise(L, "dynafile: out of memory");
    pg->who = who_of(L, spec);
    lua_pushvalue(L, -1);
    lua_setfield(L, spec, "view_page");
  }
  lua_pop(L, 1); /* the spec keeps it */
  pg->open = 0;
  return pg->page;
}

/* The view page at index 1 (the page methods have its metatable as
 * upvalue 3) and its item at index 2 (1-based) into *p, *len; raises on
 * anything else.  [-0, +0, v] */
static vpage *page_item_arg(lua_State *L, const void **p, size_t *len) {
  vpage *pg =
      lbinding_checkudata_tag(L, 1, &PAGE_TAG, sizeof(vpage), LDF_VIEW_PAGE_MT);
  lua_Integer i = lua_type(L, 2) == LUA_TNUMBER ? lua_tointeger(L, 2)
                                                : luaL_checkinteger(L, 2);
  if (pg->page == NULL || i < 1 || (size_t)i > df_page_count(pg->page))
    lerror_raise(L, "dynafile.core: no item %d in this page", (int)i);
  df_page_item(pg->page, (size_t)i - 1, p, len);
  return pg;
}

/* vpage:view(i) -> view: close the page's open filter call, open a new
 * one and give a view of item i for it. */
static int l_page_view(lua_State *L) {
  const void *p;
  size_t len;
  vpage *pg = page_item_arg(L, &p, &len);
  pg->open = ++pg->last;
  get_anchor(L, 1);
  push_view(L, pg, lua_gettop(L), p, len);
  return 1;
}

/* vpage:item(i) -> item: close the page's open filter call and decode
 * item i (what the loop is given). */
static int l_page_item(lua_State *L) {
  const void *p;
  size_t len;
  lcodec_names nm;
  vpage *pg = page_item_arg(L, &p, &len);
  pg->open = 0;
  lcodec_names_open(L, &nm);
  lcodec_push_item(L, &nm, p, len);
  return 1;
}

/* vpage:close(): close the page's open filter call. */
static int l_page_close(lua_State *L) {
  vpage *pg =
      lbinding_checkudata_tag(L, 1, &PAGE_TAG, sizeof(vpage), LDF_VIEW_PAGE_MT);
  pg->open = 0;
  return 0;
}

/* [-0, +0, m] */
void lview_register(lua_State *L) {
  static const luaL_Reg mt[] = {{"__index", view_index},
                                {"__newindex", view_newindex},
                                {"__len", view_len},
                                {"__tostring", view_tostring},
                                {"__eq", view_eq},
                                {"__pairs", view_pairs},
                                {NULL, NULL}};
  static const luaL_Reg page_methods[] = {{"view", l_page_view},
                                          {"item", l_page_item},
                                          {"close", l_page_close},
                                          {NULL, NULL}};
  int names = lua_gettop(L) - 1; /* the name cache: table, slots */
  /* the metamethods of views have the metatable as upvalue 1 */
  luaL_newmetatable(L, LDF_VIEW_MT);
  lua_pushvalue(L, -1);
  luaL_setfuncs(L, mt, 1);
  lua_pushliteral(L, "dynafile.view");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  /* the methods of view pages: upvalues the name cache (1, 2) and the
   * metatable (3) */
  luaL_newmetatable(L, LDF_VIEW_PAGE_MT);
  lua_newtable(L);
  lua_pushvalue(L, names);
  lua_pushvalue(L, names + 1);
  lua_pushvalue(L, -4);
  luaL_setfuncs(L, page_methods, 3);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, page_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}
