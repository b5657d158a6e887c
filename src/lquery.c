/*
 * lquery.c -- reads in pages: one page of a query or a scan (the Lua layer
 * loops over pages, applying Lua filters through views of a page's items,
 * lview.c, and TTL functions), and the change-log records other processes
 * wrote.
 *
 * Invariant: a page call holds no read transaction when it returns; the
 * items are decoded from the core's copy (df_page), and the next page
 * starts after the returned next_key, so a loop may write or stop at any
 * point.
 */
#include <string.h>

#include "lbinding.h"

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

/* The key value spec[field] into *v, judging nothing (the value stays
 * referenced by the spec table).  [-0, +0, e] */
static void spec_value(lua_State *L, const char *field, df_value *v) {
  lua_getfield(L, 2, field);
  lcodec_to_value(L, -1, v);
  lua_pop(L, 1);
}

/* Read the page spec at index 2 into *q (see l_db_page); the core judges
 * the values when it reads the page.  Returns DF_OK with one value pushed
 * (the start_after bytes, or nil), which q borrows and which must stay on
 * the stack while q is used; or a code with only the reason pushed.
 * [-0, +1, m] */
static int read_spec(lua_State *L, ldb *d, df_query *q, df_projection **pr,
                     size_t *max_items, size_t *max_examined) {
  int code;
  memset(q, 0, sizeof *q);
  lua_getfield(L, 2, "index");
  if (lua_isstring(L, -1)) {
    unsigned id;
    if ((code = df_db_index_find(d->db, lua_tostring(L, -1), &id)) != DF_OK) {
      lua_pushfstring(L, "index: %s", df_db_errmsg(d->db));
      lua_remove(L, -2);
      return code;
    }
    q->index = id;
  }
  lua_pop(L, 1);
  lua_getfield(L, 2, "query");
  if (lua_toboolean(L, -1)) {
    q->has_pk = 1;
    spec_value(L, "pk", &q->pk);
  }
  lua_pop(L, 1);
  lua_getfield(L, 2, "cond");
  if (lua_isstring(L, -1)) {
    const char *c = lua_tostring(L, -1);
    q->cond = cond_of(c);
    if (q->cond < 0)
      return lerror_raise(L, "dynafile.core: unknown key condition %s", c);
    spec_value(L, "lo", &q->lo);
    if (q->cond == DF_COND_BETWEEN) spec_value(L, "hi", &q->hi);
  }
  lua_pop(L, 1);
  lua_getfield(L, 2, "start");
  if (!lua_isnil(L, -1)) {
    q->has_start = 1;
    lcodec_to_value(L, -1, &q->start);
  }
  lua_pop(L, 1);
  lua_getfield(L, 2, "reverse");
  q->reverse = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 2, "segments");
  if (lua_isnumber(L, -1)) {
    q->segments = (unsigned)lua_tonumber(L, -1);
    lua_getfield(L, 2, "segment");
    q->segment = (unsigned)lua_tonumber(L, -1) - 1;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_getfield(L, 2, "filter");
  if (!lua_isnil(L, -1)) {
    lexpr *x = luaL_testudata(L, -1, LDF_EXPR_MT);
    if (x == NULL || x->e == NULL)
      return lerror_raise(L,
                          "dynafile.core: filter: not a compiled "
                          "expression");
    q->filter = x->e;
  }
  lua_pop(L, 1);
  lua_getfield(L, 2, "projection");
  *pr = lexpr_opt_projection(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 2, "max");
  *max_items = lua_isnumber(L, -1) ? (size_t)lua_tonumber(L, -1) : 100;
  lua_pop(L, 1);
  lua_getfield(L, 2, "max_examined");
  *max_examined = lua_isnumber(L, -1) ? (size_t)lua_tonumber(L, -1) : 0;
  lua_pop(L, 1);
  lua_getfield(L, 2, "now");
  q->now = ldb_opt_time(L, -1, d);
  lua_pop(L, 1);
  /* start_after: a key table, encoded; the bytes stay on the stack in a
   * string, so nothing leaks if a later step raises */
  lua_getfield(L, 2, "start_after");
  if (lua_istable(L, -1)) {
    if ((code = lcodec_encode_item(L, -1, &d->buf)) != DF_OK) {
      lua_pushfstring(L, "start_after: %s", lua_tostring(L, -1));
      lua_replace(L, -3);
      lua_pop(L, 1);
      return code;
    }
    lua_pushlstring(L, (const char *)d->buf.p, d->buf.len);
    lua_replace(L, -2);
    q->start_after = lua_tolstring(L, -1, &q->start_after_len);
  } else {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  return DF_OK;
}

/* The items of a page as DynamoDB JSON (spec.json = budget and
 * spec.json_last = want_last, see l_db_page): pushes text, count, bytes,
 * next_key, examined, last and returns 6; or returns 0, pushing nothing,
 * when an item needs the Lua path (itemjson.c). */
static int push_page_json(lua_State *L, ldb *d, df_page *page, size_t max,
                          double budget, int want_last, lcodec_names *nm) {
  size_t i, n = df_page_count(page), used = 0, size;
  double total = 0;
  const void *p;
  size_t plen;
  int code;
  df__buf_reset(&d->buf);
  for (i = 0; i < n; i++) {
    df_page_item(page, i, &p, &plen);
    if (i && df__buf_putc(&d->buf, ','))
      return lerror_fail(L, DF_ENOMEM, "out of memory");
    code = df__item_json(p, plen, &d->buf, &size);
    if (code == DF_ENOMEM) return lerror_fail(L, code, "out of memory");
    if (code != DF_OK) return 0;
    total += (double)size;
    used++;
    if (total >= budget) break;
  }
  lua_pushlstring(L, (const char *)d->buf.p, d->buf.len);
  lua_pushinteger(L, (lua_Integer)used);
  lua_pushnumber(L, total);
  df_page_next_key(page, &p, &plen);
  lcodec_push_item(L, NULL, p, plen);
  lua_pushinteger(L, (lua_Integer)df_page_examined(page));
  if (used > 0 && (total >= budget || (want_last && used == max))) {
    df_page_item(page, used - 1, &p, &plen);
    lcodec_push_item(L, nm, p, plen);
  } else {
    lua_pushnil(L);
  }
  return 6;
}

/* db:page(spec) -> items, next_key, examined | nil, msg, code
 * spec: query (true: pk is a partition value to query), pk, index (name),
 * cond ("eq", "lt", "le", "gt", "ge", "between", "begins_with") with lo
 * and hi, start (starts_with), reverse, start_after (key table),
 * segment (1-based) and segments, filter (compiled expression),
 * projection (compiled), max, max_examined, now; and lua_filter: when it
 * is a function, the page is read into the reader's own view page
 * (spec.view_page, made on first use; fn names the Lua layer's function in
 * the views' messages) and its item count is returned in place of the
 * items, for the Lua layer to judge them through views (lview.c).  Other
 * fields are ignored (the Lua layer keeps its reader's state in the same
 * table).
 *
 * spec.json (a number of bytes, for `dynafile serve`; no lua_filter, no
 * projection): the page's items as DynamoDB JSON text instead, joined by
 * commas, taken in order until their DynamoDB sizes add up to spec.json
 * bytes or more -> text, count, bytes, next_key, examined, last: last is
 * the last item taken, as a table, when the sizes reached spec.json or
 * spec.json_last is true and count is spec.max (nil otherwise).  When an
 * item needs the Lua path's judgement (itemjson.c), the page comes back as
 * tables, as without spec.json. */
static int l_db_page(lua_State *L) {
  ldb *d = ldb_arg(L, 1);
  df_query q;
  df_projection *pr;
  size_t i, n, max_items, max_examined;
  const void *p;
  size_t plen;
  int code, filtered;
  df_page *page;
  lcodec_names nm;
  if (d == NULL) return ldb_closed_fail(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  if ((code = read_spec(L, d, &q, &pr, &max_items, &max_examined)) != DF_OK)
    return lerror_misuse_pushed(L, code);
  lua_getfield(L, 2, "lua_filter");
  filtered = lua_isfunction(L, -1);
  lua_pop(L, 1);
  /* a Lua filter may read other pages while this one is in use */
  page = filtered ? lview_reader_page(L, 2) : d->page;
  code = df_query_page(d->db, &q, max_items, max_examined, page);
  if (code != DF_OK) return lerror_core(L, code, df_db_errmsg(d->db));
  n = df_page_count(page);
  lcodec_names_open(L, &nm);
  if (!filtered && pr == NULL) {
    int is_json, want_last;
    double budget;
    lua_getfield(L, 2, "json");
    lua_getfield(L, 2, "json_last");
    is_json = lua_type(L, -2) == LUA_TNUMBER;
    budget = lua_tonumber(L, -2);
    want_last = lua_toboolean(L, -1);
    lua_pop(L, 2);
    if (is_json) {
      int r = push_page_json(L, d, page, max_items, budget, want_last, &nm);
      if (r) return r;
    }
  }
  if (filtered) {
    /* the Lua layer judges the items through views (lview.c) */
    lua_pushinteger(L, (lua_Integer)n);
  } else {
    lua_createtable(L, (int)n, 0);
    for (i = 0; i < n; i++) {
      df_page_item(page, i, &p, &plen);
      lexpr_push_projected(L, &nm, pr, p, plen);
      lua_rawseti(L, -2, (int)i + 1);
    }
  }
  df_page_next_key(page, &p, &plen);
  lcodec_push_item(L, NULL, p, plen);
  lua_pushinteger(L, (lua_Integer)df_page_examined(page));
  return 3;
}

/* The name of the operand of key condition `cond` in messages: the Lua
 * layer's option names, as the core names them. */
static const char *operand(int cond, int second) {
  static const char *const names[] = {
      "key condition", "eq",         "lt", "le", "gt", "ge",
      "between[1]",    "begins_with"};
  if (cond == DF_COND_BETWEEN && second) return "between[2]";
  return cond >= 0 && cond <= DF_COND_BEGINS_WITH ? names[cond]
                                                  : "key condition";
}

/* db:check_page(spec) -> true | nil, msg, code, true: whether the index
 * and the kinds of spec's key values pass, by the core's key rule, reading
 * nothing -- so an iterator refuses bad arguments when it is made (the
 * page read judges the rest: lengths, start_after) */
static int l_db_check_page(lua_State *L) {
  ldb *d = ldb_arg(L, 1);
  df_query q;
  df_projection *pr;
  size_t max_items, max_examined;
  char err[DF_MSG_MAX];
  int code = DF_OK;
  if (d == NULL) return ldb_closed_fail(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  if ((code = read_spec(L, d, &q, &pr, &max_items, &max_examined)) != DF_OK)
    return lerror_misuse_pushed(L, code);
  err[0] = 0;
  if (q.has_pk)
    code =
        df__key_check(&q.pk, "", "partition key", DF_KEY_ANY, err, sizeof err);
  if (code == DF_OK && q.cond > 0)
    code = df__key_check(&q.lo, "", operand(q.cond, 0), DF_KEY_ANY, err,
                         sizeof err);
  if (code == DF_OK && q.cond == DF_COND_BETWEEN)
    code = df__key_check(&q.hi, "", operand(q.cond, 1), DF_KEY_ANY, err,
                         sizeof err);
  if (code == DF_OK && q.has_start)
    code =
        df__key_check(&q.start, "", "starts_with", DF_KEY_ANY, err, sizeof err);
  if (code != DF_OK) return lerror_misuse(L, code, err);
  lua_pushboolean(L, 1);
  return 1;
}

/* Read the change-log records after seq `after` (after < 0: only the
 * bounds), skipping those of origin `skip` (0: none).
 * -> events, next, first, last | nil, msg, code [, true] */
static int stream_read(lua_State *L, int all) {
  ldb *d = ldb_arg(L, 1);
  lua_Number a = luaL_checknumber(L, 2);
  uint64_t after = a < 0 ? UINT64_MAX : (uint64_t)compat_toint64(L, 2);
  size_t i, n, max = (size_t)luaL_optinteger(L, 3, 256);
  uint64_t first, last;
  int code;
  if (d == NULL) return ldb_closed_fail(L);
  if (d->stream == NULL && df_stream_new(&d->stream) != DF_OK)
    return lerror_fail(L, DF_ENOMEM, "out of memory");
  code = df_stream_read(d->db, after, max, all ? 0 : df_db_origin(d->db),
                        d->stream);
  if (code != DF_OK) return lerror_core(L, code, df_db_errmsg(d->db));
  n = df_stream_count(d->stream);
  lua_createtable(L, (int)n, 0);
  for (i = 0; i < n; i++) {
    df_stream_record r;
    if (df_stream_record_get(d->stream, i, &r) != DF_OK)
      return lerror_raise(L, "dynafile: a change-log record is malformed");
    lcodec_push_event(L, &r.event);
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

/* db:stream_read(after [, max]) -> events, next, first, last | nil, msg,
 * code: the change-log records after seq `after` that other Lua states
 * and processes wrote (this state's own are skipped: its listeners heard
 * them), oldest first, each an event with its seq and commit `time`;
 * `next` is the seq to read after next time; first and last bound the
 * log.  after < 0: only the bounds. */
static int l_db_stream_read(lua_State *L) {
  return stream_read(L, 0);
}

/* db:stream_read_all(after [, max]): the same with every writer's
 * records, this Lua state's included */
static int l_db_stream_read_all(lua_State *L) {
  return stream_read(L, 1);
}

const luaL_Reg lquery_db_methods[] = {{"page", l_db_page},
                                      {"check_page", l_db_check_page},
                                      {"stream_read", l_db_stream_read},
                                      {"stream_read_all", l_db_stream_read_all},
                                      {NULL, NULL}};
