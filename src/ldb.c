/*
 * ldb.c -- the methods of a database handle: the one-call reads and
 * writes (get_item, put_item, delete_item: each one transaction of the
 * core), key checks and encoding without a write, the schema, statistics,
 * the consistency check, drop_index and close.
 *
 * Invariant: a closed handle (d->db == NULL) fails every method but
 * close and closed, which may be called any number of times (close is
 * also the handle's __gc).
 */
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "lbinding.h"

/* Every handle's block begins with the address of this static
 * (lbinding_checkudata_tag). */
const char ldb_tag = 'd';

/* [-0, +0, v] */
ldb *ldb_arg(lua_State *L, int idx) {
  ldb *d = lbinding_checkudata_tag(L, idx, &ldb_tag, sizeof(ldb), LDF_DB_MT);
  return d->db ? d : NULL;
}

/* [-0, +3, m] */
int ldb_closed_fail(lua_State *L) {
  return lerror_misuse(L, DF_ECLOSED, "database is closed");
}

/* [-0, +3, m] */
int ldb_readonly_fail(lua_State *L) {
  return lerror_misuse(L, DF_EREADONLY, "the database is opened read-only");
}

/* [-0, +0, v] */
double ldb_opt_time(lua_State *L, int idx, const ldb *d) {
  const df_schema *s;
  if (!lua_isnoneornil(L, idx)) return (double)luaL_checknumber(L, idx);
  /* a handle opened before another set the TTL attribute passes no time:
   * expiry is judged by the clock all the same */
  s = d ? df_db_schema(d->db) : NULL;
  return (s && s->ttl_attr) ? (double)time(NULL) : 0.0;
}

int ldb_close(lua_State *L) {
  ldb *d = luaL_checkudata(L, 1, LDF_DB_MT);
  df_page_free(d->page);
  d->page = NULL;
  df_stream_free(d->stream);
  d->stream = NULL;
  df__buf_free(&d->buf);
  df_db_close(d->db);
  d->db = NULL;
  return 0;
}

/* db:drop_index(name) -> true | nil, msg, code ("NotFound": no index of
 * that name) */
static int l_db_drop_index(lua_State *L) {
  ldb *d = ldb_arg(L, 1);
  const char *name = luaL_checkstring(L, 2);
  int code;
  if (d == NULL) return ldb_closed_fail(L);
  if (d->readonly) /* returned, not raised, as a read-only file system */
    return lerror_fail(L, DF_EREADONLY, "the database is opened read-only");
  code = df_db_drop_index(d->db, name);
  if (code == DF_ENOTFOUND) return lerror_misuse(L, code, df_db_errmsg(d->db));
  if (code != DF_OK) return lerror_fail(L, code, df_db_errmsg(d->db));
  lua_pushboolean(L, 1);
  return 1;
}

/* db:set_ttl(name | nil) -> true | nil, msg, code: set, change or clear
 * the TTL attribute (the core rebuilds the expiry and projected index
 * entries in one write transaction); an empty name is misuse */
static int l_db_set_ttl(lua_State *L) {
  ldb *d = ldb_arg(L, 1);
  const char *attr = luaL_optstring(L, 2, NULL);
  int code;
  if (d == NULL) return ldb_closed_fail(L);
  if (d->readonly) /* returned, not raised, as a read-only file system */
    return lerror_fail(L, DF_EREADONLY, "the database is opened read-only");
  code = df_db_set_ttl(d->db, attr);
  if (code == DF_EVALIDATION)
    return lerror_misuse(L, code, df_db_errmsg(d->db));
  if (code != DF_OK) return lerror_core(L, code, df_db_errmsg(d->db));
  lua_pushboolean(L, 1);
  return 1;
}

static int l_db_closed(lua_State *L) {
  ldb *d = luaL_checkudata(L, 1, LDF_DB_MT);
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
  ldb *d = ldb_arg(L, 1);
  const df_schema *s;
  size_t i, j;
  static const char *proj[] = {"all", "keys", "include"};
  if (d == NULL) return ldb_closed_fail(L);
  s = df_db_schema(d->db);
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
  ldb *d = ldb_arg(L, 1);
  if (d == NULL) return ldb_closed_fail(L);
  lua_pushstring(L, df_db_id(d->db));
  return 1;
}

/* Counts and sizes: integers on Lua 5.3+. */
static void set_num(lua_State *L, const char *k, double v) {
  compat_pushint(L, (int64_t)v);
  lua_setfield(L, -2, k);
}

/* A count of a report struct, read by offset: uint64_t or unsigned. */
typedef struct count_field {
  const char *name;
  size_t offset, size;
} count_field;
#define COUNT_FIELD(type, member) \
  { #member, offsetof(type, member), sizeof(((type *)0)->member) }

/* Push a new table holding the `n` counts `fields` of `report`. */
static void push_counts(lua_State *L, const void *report,
                        const count_field *fields, size_t n) {
  size_t i;
  lua_createtable(L, 0, (int)n + 2);
  for (i = 0; i < n; i++) {
    const char *at = (const char *)report + fields[i].offset;
    uint64_t v;
    if (fields[i].size == sizeof(uint64_t)) {
      memcpy(&v, at, sizeof v);
    } else {
      unsigned u;
      memcpy(&u, at, sizeof u);
      v = u;
    }
    set_num(L, fields[i].name, (double)v);
  }
}

static const count_field STAT_FIELDS[] = {
    COUNT_FIELD(df_stat, items),        COUNT_FIELD(df_stat, index_entries),
    COUNT_FIELD(df_stat, map_size),     COUNT_FIELD(df_stat, used_bytes),
    COUNT_FIELD(df_stat, max_readers),  COUNT_FIELD(df_stat, readers_used),
    COUNT_FIELD(df_stat, stream_first), COUNT_FIELD(df_stat, stream_last),
};

static int l_db_stat(lua_State *L) {
  ldb *d = ldb_arg(L, 1);
  df_stat st;
  int code;
  if (d == NULL) return ldb_closed_fail(L);
  code = df_db_stat(d->db, &st);
  if (code != DF_OK) return lerror_fail(L, code, df_db_errmsg(d->db));
  push_counts(L, &st, STAT_FIELDS, sizeof STAT_FIELDS / sizeof *STAT_FIELDS);
  return 1;
}

static const count_field CHECK_FIELDS[] = {
    COUNT_FIELD(df_check_report, items),
    COUNT_FIELD(df_check_report, index_entries),
    COUNT_FIELD(df_check_report, expiry_entries),
    COUNT_FIELD(df_check_report, bad_items),
    COUNT_FIELD(df_check_report, missing_index),
    COUNT_FIELD(df_check_report, stale_index),
    COUNT_FIELD(df_check_report, missing_expiry),
    COUNT_FIELD(df_check_report, stale_expiry),
    COUNT_FIELD(df_check_report, checkpoint),
    COUNT_FIELD(df_check_report, log_bytes),
};

/* db:check() -> report table | nil, msg, code */
static int l_db_check(lua_State *L) {
  ldb *d = ldb_arg(L, 1);
  df_check_report r;
  int code;
  if (d == NULL) return ldb_closed_fail(L);
  code = df_db_check(d->db, &r);
  if (code != DF_OK) return lerror_fail(L, code, df_db_errmsg(d->db));
  push_counts(L, &r, CHECK_FIELDS, sizeof CHECK_FIELDS / sizeof *CHECK_FIELDS);
  lua_pushboolean(L, r.bad_items == 0 && r.missing_index == 0 &&
                         r.stale_index == 0 && r.missing_expiry == 0 &&
                         r.stale_expiry == 0);
  lua_setfield(L, -2, "ok");
  /* what recovery did at open, and the redo log now */
  lua_newtable(L);
  lua_pushboolean(L, r.recovered);
  lua_setfield(L, -2, "recovered");
  lua_pushboolean(L, r.meta_restored);
  lua_setfield(L, -2, "meta_restored");
  set_num(L, "records_replayed", (double)r.records_replayed);
  set_num(L, "replayed_bytes", (double)r.replayed_bytes);
  lua_pushnumber(L, (lua_Number)r.recovery_seconds); /* a fraction */
  lua_setfield(L, -2, "seconds");
  lua_pushboolean(L, r.log_created);
  lua_setfield(L, -2, "log_created");
  lua_setfield(L, -2, "recovery");
  return 1;
}

/* db:get_item(key [, now [, projection]]) -> item | nil | nil, msg, code
 */
static int l_db_get_item(lua_State *L) {
  ldb *d = ldb_arg(L, 1);
  df_key k;
  const void *item;
  size_t len;
  int code;
  double now = ldb_opt_time(L, 3, d);
  df_projection *pr = lexpr_opt_projection(L, 4);
  if (d == NULL) return ldb_closed_fail(L);
  if ((code = lcodec_read_key(L, 2, d->db, &k)) != DF_OK)
    return lerror_misuse_pushed(L, code);
  code = df_db_get(d->db, &k, now, &item, &len);
  if (code == DF_ENOTFOUND) {
    lua_pushnil(L);
    return 1;
  }
  if (code != DF_OK) return lerror_core(L, code, df_db_errmsg(d->db));
  {
    lcodec_names nm;
    lcodec_names_open(L, &nm);
    lexpr_push_projected(L, &nm, pr, item, len);
  }
  return 1;
}

/* db:get_item_json(key [, now]) -> json, size | item, nil | false |
 * nil, msg, code: the item with key as DynamoDB JSON text with its
 * DynamoDB size in bytes (itemjson.c); the item as a table when one of its
 * values needs the Lua path's judgement; false when there is none.  For
 * `dynafile serve`'s GetItem. */
static int l_db_get_item_json(lua_State *L) {
  ldb *d = ldb_arg(L, 1);
  df_key k;
  const void *item;
  size_t len, size = 0;
  int code;
  double now = ldb_opt_time(L, 3, d);
  if (d == NULL) return ldb_closed_fail(L);
  if ((code = lcodec_read_key(L, 2, d->db, &k)) != DF_OK)
    return lerror_misuse_pushed(L, code);
  code = df_db_get(d->db, &k, now, &item, &len);
  if (code == DF_ENOTFOUND) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (code != DF_OK) return lerror_core(L, code, df_db_errmsg(d->db));
  df__buf_reset(&d->buf);
  code = df__item_json(item, len, &d->buf, &size);
  if (code == DF_OK) {
    lua_pushlstring(L, (const char *)d->buf.p, d->buf.len);
    lua_pushnumber(L, (lua_Number)size);
    return 2;
  }
  if (code == DF_ENOMEM) return lerror_fail(L, code, "out of memory");
  {
    /* the Lua path's judgement (malformed bytes: the decoder's error) */
    lcodec_names nm;
    lcodec_names_open(L, &nm);
    lexpr_push_projected(L, &nm, NULL, item, len);
  }
  lua_pushnil(L);
  return 2;
}

/* db:put_item(item [, now]) -> true | nil, msg, code */
static int l_db_put_item(lua_State *L) {
  ldb *d = ldb_arg(L, 1);
  double now = ldb_opt_time(L, 3, d);
  int code;
  if (d == NULL) return ldb_closed_fail(L);
  if (d->readonly) return ldb_readonly_fail(L);
  if ((code = lcodec_encode_item(L, 2, &d->buf)) != DF_OK)
    return lerror_misuse_pushed(L, code);
  code = df_db_put(d->db, d->buf.p, d->buf.len, now);
  if (code != DF_OK) return lerror_core(L, code, df_db_errmsg(d->db));
  lua_pushboolean(L, 1);
  return 1;
}

/* db:delete_item(key [, now]) -> true, found | nil, msg, code */
static int l_db_delete_item(lua_State *L) {
  ldb *d = ldb_arg(L, 1);
  df_key k;
  int code, found = 0;
  double now = ldb_opt_time(L, 3, d);
  if (d == NULL) return ldb_closed_fail(L);
  if (d->readonly) return ldb_readonly_fail(L);
  if ((code = lcodec_read_key(L, 2, d->db, &k)) != DF_OK)
    return lerror_misuse_pushed(L, code);
  code = df_db_delete(d->db, &k, now, &found);
  if (code != DF_OK) return lerror_core(L, code, df_db_errmsg(d->db));
  lua_pushboolean(L, 1);
  lua_pushboolean(L, found);
  return 2;
}

/* db:check_key(key) -> true | nil, msg, code, true: whether key is a
 * valid key table (the core's key rule), without reading */
static int l_db_check_key(lua_State *L) {
  ldb *d = ldb_arg(L, 1);
  df_key k;
  int code;
  if (d == NULL) return ldb_closed_fail(L);
  if ((code = lcodec_read_key(L, 2, d->db, &k)) != DF_OK)
    return lerror_misuse_pushed(L, code);
  if ((code = df_db_key_check(d->db, &k)) != DF_OK)
    return lerror_core(L, code, df_db_errmsg(d->db));
  lua_pushboolean(L, 1);
  return 1;
}

/* db:encode(item) -> the item's bytes | nil, msg, code */
static int l_db_encode(lua_State *L) {
  ldb *d = ldb_arg(L, 1);
  int code;
  if (d == NULL) return ldb_closed_fail(L);
  if ((code = lcodec_encode_item(L, 2, &d->buf)) != DF_OK)
    return lerror_misuse_pushed(L, code);
  lua_pushlstring(L, (const char *)d->buf.p, d->buf.len);
  return 1;
}

const luaL_Reg ldb_methods[] = {{"close", ldb_close},
                                {"closed", l_db_closed},
                                {"drop_index", l_db_drop_index},
                                {"set_ttl", l_db_set_ttl},
                                {"schema", l_db_schema},
                                {"id", l_db_id},
                                {"stat", l_db_stat},
                                {"check", l_db_check},
                                {"get_item", l_db_get_item},
                                {"get_item_json", l_db_get_item_json},
                                {"put_item", l_db_put_item},
                                {"delete_item", l_db_delete_item},
                                {"check_key", l_db_check_key},
                                {"encode", l_db_encode},
                                {NULL, NULL}};
