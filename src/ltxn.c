/*
 * ltxn.c -- transactions from Lua: a read or a write transaction of a
 * handle, reads and writes inside one, conditions evaluated on the stored
 * item, the TTL purge, commit, and the events of a committed write.
 *
 * A write transaction begins with the opportunistic TTL purge every write
 * makes (up to 8 expired items deleted, see purge_a_few), except the one
 * begun by purge_txn, which purges what it is asked to.
 *
 * Invariants: a transaction keeps its handle alive (its user value) and
 * is freed -- aborted when not committed -- by free or by its __gc, so an
 * error that unwinds past the Lua layer never leaves the write lock held
 * for longer than a garbage collection; a finished transaction fails
 * every method but events and free.
 */
#include <string.h>

#include "lbinding.h"

/* How many expired items every write transaction deletes as it begins
 * (with a TTL attribute; the one-call forms of the core do the same). */
#define PURGE_A_FEW 8

/* The open transaction at idx; raises when finished (the Lua layer never
 * uses one after commit or free).  [-0, +0, v] */
static ltxn *txn_arg(lua_State *L, int idx) {
  ltxn *t = luaL_checkudata(L, idx, LDF_TXN_MT);
  if (t->t == NULL || t->finished)
    lerror_raise(L, "dynafile.core: the transaction is finished");
  return t;
}

/* The handle the transaction at idx belongs to; NULL when it was closed
 * meanwhile.  [-0, +0, -] */
static ldb *txn_db(lua_State *L, int idx) {
  ldb *d;
#if LUA_VERSION_NUM >= 502
  lua_getuservalue(L, idx);
#else
  lua_getfenv(L, idx);
  lua_rawgeti(L, -1, 1);
  lua_remove(L, -2);
#endif
  d = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return d && d->db ? d : NULL;
}

/* ---------------------------------------------------------------- begin */

/* Begin a transaction of the handle at 1 with the time at 2.
 * -> txn | nil, msg, code */
static int begin(lua_State *L, unsigned flags, int purge_a_few) {
  ldb *d = ldb_arg(L, 1);
  double now = ldb_opt_time(L, 2, d);
  ltxn *t;
  int code;
  if (d == NULL) return ldb_closed_fail(L);
  if ((flags & DF_TXN_WRITE) && d->readonly) return ldb_readonly_fail(L);
  lua_settop(L, 1);
  t = lua_newuserdata(L, sizeof *t);
  memset(t, 0, sizeof *t);
  luaL_setmetatable(L, LDF_TXN_MT);
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
  if (code != DF_OK) return lerror_core(L, code, df_db_errmsg(d->db));
  if (purge_a_few) {
    code = df_txn_purge_expired(t->t, PURGE_A_FEW, NULL);
    if (code != DF_OK) {
      int n = lerror_core(L, code, df_txn_errmsg(t->t));
      df_txn_free(t->t);
      t->t = NULL;
      t->finished = 1;
      return n;
    }
  }
  return 1;
}

/* db:read_txn([now]) -> txn | nil, msg, code */
static int l_db_read_txn(lua_State *L) {
  return begin(L, 0, 0);
}

/* db:write_txn([now]) -> txn | nil, msg, code ("Busy": this thread holds
 * the write transaction already; "ReadOnly") */
static int l_db_write_txn(lua_State *L) {
  return begin(L, DF_TXN_WRITE, 1);
}

/* db:write_txn_with_events([now]): the same, recording the events that
 * txn:events() returns after the commit */
static int l_db_write_txn_with_events(lua_State *L) {
  return begin(L, DF_TXN_WRITE | DF_TXN_EVENTS, 1);
}

/* db:purge_txn([now]), db:purge_txn_with_events([now]): write
 * transactions for txn:purge_expired, without the purge of a few */
static int l_db_purge_txn(lua_State *L) {
  return begin(L, DF_TXN_WRITE, 0);
}
static int l_db_purge_txn_with_events(lua_State *L) {
  return begin(L, DF_TXN_WRITE | DF_TXN_EVENTS, 0);
}

/* ------------------------------------------------------ reads and writes */

/* txn:get(key [, projection]) -> item | nil | nil, msg, code */
static int l_txn_get(lua_State *L) {
  ltxn *t = txn_arg(L, 1);
  ldb *d = txn_db(L, 1);
  df_projection *pr = lexpr_opt_projection(L, 3);
  df_key k;
  const void *item;
  size_t len;
  int code;
  if (d == NULL) return ldb_closed_fail(L);
  if ((code = lcodec_read_key(L, 2, d->db, &k)) != DF_OK)
    return lerror_misuse_pushed(L, code);
  code = df_txn_get(t->t, &k, &item, &len);
  if (code == DF_ENOTFOUND) {
    lua_pushnil(L);
    return 1;
  }
  if (code != DF_OK) return lerror_core(L, code, df_txn_errmsg(t->t));
  if (pr) {
    int rc = df_projection_apply(pr, item, len, &item, &len);
    if (rc) return lerror_raise(L, "dynafile: projection: %s", df_strerror(rc));
  }
  /* copy before decoding: decoding may raise, LMDB memory must not be
   * referenced past a longjmp (it is not, but keep the rule simple) */
  lua_pushlstring(L, item, len);
  {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    lcodec_names nm;
    lcodec_names_open(L, &nm);
    lcodec_push_item(L, &nm, s, n);
  }
  return 1;
}

/* Write the item at 2 (a table, or bytes from db:encode).
 * -> true [, old] | nil, msg, code */
static int put(lua_State *L, int want_old) {
  ltxn *t = txn_arg(L, 1);
  ldb *d = txn_db(L, 1);
  const void *old = NULL, *item;
  size_t old_len = 0, len;
  int code;
  if (d == NULL) return ldb_closed_fail(L);
  if (lua_type(L, 2) == LUA_TSTRING) {
    item = lua_tolstring(L, 2, &len);
  } else {
    if ((code = lcodec_encode_item(L, 2, &d->buf)) != DF_OK)
      return lerror_misuse_pushed(L, code);
    item = d->buf.p;
    len = d->buf.len;
  }
  code = df_txn_put(t->t, item, len, want_old ? &old : NULL, &old_len);
  if (code != DF_OK) return lerror_core(L, code, df_txn_errmsg(t->t));
  lua_pushboolean(L, 1);
  if (!want_old) return 1;
  lcodec_push_item(L, NULL, old, old_len);
  return 2;
}

/* txn:put(item) -> true | nil, msg, code */
static int l_txn_put(lua_State *L) {
  return put(L, 0);
}
/* txn:put_return_old(item) -> true, old item or nil | nil, msg, code */
static int l_txn_put_return_old(lua_State *L) {
  return put(L, 1);
}

enum { DELETE, DELETE_RETURN_OLD, DELETE_EXPIRED };

/* Delete the item under the key at 2.
 * -> found [, old] | nil, msg, code */
static int delete_key(lua_State *L, int how) {
  ltxn *t = txn_arg(L, 1);
  ldb *d = txn_db(L, 1);
  df_key k;
  const void *old = NULL;
  size_t old_len = 0;
  int code, found = 0;
  if (d == NULL) return ldb_closed_fail(L);
  if ((code = lcodec_read_key(L, 2, d->db, &k)) != DF_OK)
    return lerror_misuse_pushed(L, code);
  if (how == DELETE_EXPIRED)
    code = df_txn_delete_expired(t->t, &k, &found);
  else
    code = df_txn_delete(t->t, &k, &found,
                         how == DELETE_RETURN_OLD ? &old : NULL, &old_len);
  if (code != DF_OK) return lerror_core(L, code, df_txn_errmsg(t->t));
  lua_pushboolean(L, found);
  if (how != DELETE_RETURN_OLD) return 1;
  lcodec_push_item(L, NULL, old, old_len);
  return 2;
}

/* txn:delete(key) -> found | nil, msg, code */
static int l_txn_delete(lua_State *L) {
  return delete_key(L, DELETE);
}
/* txn:delete_return_old(key) -> found, old item or nil | nil, msg, code */
static int l_txn_delete_return_old(lua_State *L) {
  return delete_key(L, DELETE_RETURN_OLD);
}
/* txn:delete_expired(key) -> found | nil, msg, code: a deletion by TTL
 * (its event is marked expired) */
static int l_txn_delete_expired(lua_State *L) {
  return delete_key(L, DELETE_EXPIRED);
}

/* Apply the update program at 3 to the item under the key at 2 (to the
 * key alone when there is none) and write the result.
 * -> new item [, old item or nil] | nil, msg, code [, true]
 * "ValidationError" without the misuse mark: the changes do not fit the
 * stored item (a path through a value of another type, ADD to a string,
 * an overflow), an expected failure. */
static int update(lua_State *L, int want_old) {
  ltxn *t = txn_arg(L, 1);
  ldb *d = txn_db(L, 1);
  df_update *u = lexpr_update_arg(L, 3);
  const df_schema *sc;
  const char *keys[2];
  size_t nkeys = 0;
  df_key k;
  const void *old = NULL, *nw;
  size_t old_len = 0, nlen;
  char err[600];
  int code, kt, ot;
  if (d == NULL) return ldb_closed_fail(L);
  lua_settop(L, 3);
  if ((code = lcodec_read_key(L, 2, d->db, &k)) != DF_OK)
    return lerror_misuse_pushed(L, code);
  /* the key map: just the key attributes of the key table */
  sc = df_db_schema(d->db);
  keys[nkeys++] = sc->pk;
  if (sc->sk) keys[nkeys++] = sc->sk;
  lua_createtable(L, 0, 2);
  kt = lua_gettop(L);
  lua_pushvalue(L, 4);
  lua_setfield(L, kt, sc->pk);
  if (sc->sk) {
    lua_pushvalue(L, 5);
    lua_setfield(L, kt, sc->sk);
  }
  if ((code = lcodec_encode_item(L, kt, &d->buf)) != DF_OK)
    return lerror_misuse_pushed(L, code);
  code = df_txn_get(t->t, &k, &old, &old_len);
  if (code == DF_ENOTFOUND) {
    old = NULL;
    old_len = 0;
  } else if (code != DF_OK) {
    return lerror_core(L, code, df_txn_errmsg(t->t));
  }
  err[0] = 0;
  code = df_update_apply(u, old, old_len, d->buf.p, d->buf.len, keys, nkeys,
                         &nw, &nlen, err, sizeof err);
  if (code == DF_EVALIDATION) return lerror_fail(L, code, err);
  if (code != DF_OK) return lerror_core(L, code, err);
  /* the old item to Lua before the write moves it */
  if (want_old && old)
    lua_pushlstring(L, old, old_len);
  else
    lua_pushnil(L);
  ot = lua_gettop(L);
  code = df_txn_put(t->t, nw, nlen, NULL, NULL);
  if (code != DF_OK) return lerror_core(L, code, df_txn_errmsg(t->t));
  {
    lcodec_names nm;
    lcodec_names_open(L, &nm);
    lcodec_push_item(L, &nm, nw, nlen);
    if (!want_old) return 1;
    if (lua_isstring(L, ot)) {
      size_t n;
      const char *s = lua_tolstring(L, ot, &n);
      lcodec_push_item(L, &nm, s, n);
    } else {
      lua_pushnil(L);
    }
  }
  return 2;
}

/* txn:update(key, program) -> new item | nil, msg, code [, true] */
static int l_txn_update(lua_State *L) {
  return update(L, 0);
}
/* txn:update_return_old(key, program) -> new, old | nil, msg, code
 * [, true] */
static int l_txn_update_return_old(lua_State *L) {
  return update(L, 1);
}

/* txn:condition_holds(key, expr) -> boolean | nil, msg, code: the
 * compiled expression on the stored item (absent: evaluated on nothing) */
static int l_txn_condition_holds(lua_State *L) {
  ltxn *t = txn_arg(L, 1);
  ldb *d = txn_db(L, 1);
  lexpr *x = luaL_checkudata(L, 3, LDF_EXPR_MT);
  df_key k;
  const void *item = NULL;
  size_t len = 0;
  int code, r;
  if (d == NULL) return ldb_closed_fail(L);
  if ((code = lcodec_read_key(L, 2, d->db, &k)) != DF_OK)
    return lerror_misuse_pushed(L, code);
  code = df_txn_get(t->t, &k, &item, &len);
  if (code == DF_ENOTFOUND) {
    item = NULL;
    len = 0;
  } else if (code != DF_OK) {
    return lerror_core(L, code, df_txn_errmsg(t->t));
  }
  r = df_expr_eval(x->e, item, len);
  if (r == DF_ELIMIT) { /* the user's condition: misuse, raised */
    lua_pushfstring(L,
                    "condition: a regular expression needed more than its "
                    "budget of %d steps on the item; anchor or simplify it",
                    (int)DF_RX_BUDGET);
    return lerror_misuse_pushed(L, DF_ELIMIT);
  }
  if (r < 0) return lerror_raise(L, "dynafile: a stored item is malformed");
  lua_pushboolean(L, r);
  return 1;
}

/* txn:purge_expired([limit]) -> count | nil, msg, code */
static int l_txn_purge_expired(lua_State *L) {
  ltxn *t = txn_arg(L, 1);
  size_t count = 0;
  int code =
      df_txn_purge_expired(t->t, (size_t)luaL_optinteger(L, 2, 0), &count);
  if (code != DF_OK) return lerror_core(L, code, df_txn_errmsg(t->t));
  lua_pushinteger(L, (lua_Integer)count);
  return 1;
}

/* txn:commit() -> true | nil, msg, code ("Retry": run it all again) */
static int l_txn_commit(lua_State *L) {
  ltxn *t = txn_arg(L, 1);
  int code = df_txn_commit(t->t);
  t->finished = 1;
  if (code != DF_OK) return lerror_fail(L, code, df_txn_errmsg(t->t));
  lua_pushboolean(L, 1);
  return 1;
}

/* txn:events() -> list of {action=, old=, new=, expired=, seq=} */
static int l_txn_events(lua_State *L) {
  ltxn *t = luaL_checkudata(L, 1, LDF_TXN_MT);
  size_t i, n = t->t ? df_txn_event_count(t->t) : 0;
  df_event ev;
  lua_createtable(L, (int)n, 0);
  for (i = 0; i < n; i++) {
    df_txn_event(t->t, i, &ev);
    lcodec_push_event(L, &ev);
    lua_rawseti(L, -2, (int)i + 1);
  }
  return 1;
}

/* txn:write_batch(ops, n) -> true | nil, msg, code
 * ops[1..n]: an encoded item (a string from db:encode) to put, or a key
 * table to delete.  All of them go to the core in one call
 * (df_txn_write_batch): applied in items-key order, a later op on a key
 * after an earlier one, so the result is that of applying them in the
 * order given.  A key table must hold plain values (no __index): its
 * values are read with lua_getfield and kept alive by the table itself,
 * which ops keeps alive. */
static int l_txn_write_batch(lua_State *L) {
  ltxn *t = txn_arg(L, 1);
  ldb *d = txn_db(L, 1);
  lua_Integer n = luaL_checkinteger(L, 3), i;
  df_batch_op *ops;
  df_key *keys;
  int code;
  if (d == NULL) return ldb_closed_fail(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (n <= 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  /* userdata, so that a raise below frees them */
  ops = lua_newuserdata(L, (size_t)n * sizeof *ops);
  keys = lua_newuserdata(L, (size_t)n * sizeof *keys);
  for (i = 0; i < n; i++) {
    df_batch_op *op = &ops[i];
    memset(op, 0, sizeof *op);
    lua_rawgeti(L, 2, (int)(i + 1));
    if (lua_type(L, -1) == LUA_TSTRING) {
      op->item = lua_tolstring(L, -1, &op->len);
      lua_pop(L, 1); /* ops[i + 1] keeps the string */
    } else {
      if ((code = lcodec_read_key(L, lua_gettop(L), d->db, &keys[i])) != DF_OK)
        return lerror_misuse_pushed(L, code);
      op->key = &keys[i];
      lua_pop(L, 3); /* the table and its two values: ops keeps them */
    }
  }
  code = df_txn_write_batch(t->t, ops, (size_t)n, NULL);
  if (code != DF_OK) return lerror_core(L, code, df_txn_errmsg(t->t));
  lua_pushboolean(L, 1);
  return 1;
}

int ltxn_free(lua_State *L) {
  ltxn *t = luaL_checkudata(L, 1, LDF_TXN_MT);
  df_txn_free(t->t);
  t->t = NULL;
  t->finished = 1;
  return 0;
}

const luaL_Reg ltxn_db_methods[] = {
    {"read_txn", l_db_read_txn},
    {"write_txn", l_db_write_txn},
    {"write_txn_with_events", l_db_write_txn_with_events},
    {"purge_txn", l_db_purge_txn},
    {"purge_txn_with_events", l_db_purge_txn_with_events},
    {NULL, NULL}};

const luaL_Reg ltxn_methods[] = {{"get", l_txn_get},
                                 {"put", l_txn_put},
                                 {"put_return_old", l_txn_put_return_old},
                                 {"delete", l_txn_delete},
                                 {"delete_return_old", l_txn_delete_return_old},
                                 {"delete_expired", l_txn_delete_expired},
                                 {"update", l_txn_update},
                                 {"update_return_old", l_txn_update_return_old},
                                 {"condition_holds", l_txn_condition_holds},
                                 {"purge_expired", l_txn_purge_expired},
                                 {"write_batch", l_txn_write_batch},
                                 {"commit", l_txn_commit},
                                 {"events", l_txn_events},
                                 {"free", ltxn_free},
                                 {NULL, NULL}};
