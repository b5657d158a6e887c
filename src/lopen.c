/*
 * lopen.c -- opening a database from Lua: the options table of core.open
 * read into df_open_options, and the threaded opener that reports the
 * progress of an index build.
 *
 * Invariant: the strings an open reads borrow from the options table,
 * which stays referenced (on the stack, or from the registry while the
 * helper thread runs) until df_db_open has returned.  The options were
 * checked by the Lua layer (lua/dynafile/init.lua); this file only reads
 * them.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lbinding.h"

/* What df_db_open needs, read from the options table of core.open.  The
 * strings borrow from that table, which must stay alive (referenced) as
 * long as the open runs. */
typedef struct open_args {
  df_open_options o;
  df_schema s, create;
  df_index_def defs[LDF_MAX_INDEXES];
  const char *incs[LDF_MAX_INDEXES][LDF_MAX_INDEXES];
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
  luaL_getmetatable(L, LDF_DB_MT);
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

/* Read opts (pk, sk, ttl, sync, readonly, map_size, max_readers, prefetch,
 * stream, indexes = {{name=, kind="gsi"|"lsi", pk=, sk=, projection="all"|
 * "keys"|{...}}}) at stack index `t` into *a.  The Lua layer checked their
 * types.  Key names: pk alone means sk "SK", sk alone (a name, or false:
 * no sort key) means pk "PK"; neither keeps the stored keys, or gives PK
 * and SK to a new database.  Returns DF_OK, or DF_EINVAL with the reason
 * pushed.  [-0, +(0|1), m] */
static int read_open_args(lua_State *L, int t, open_args *a) {
  int pk_given, sk_given;
  size_t i, n_idx = 0;
  memset(a, 0, sizeof *a);
  luaL_checktype(L, t, LUA_TTABLE);
  luaL_checkstack(L, 12, "dynafile.open");
  lua_getfield(L, t, "pk");
  pk_given = lua_isstring(L, -1);
  if (pk_given) a->s.pk = lua_tostring(L, -1);
  lua_getfield(L, t, "sk");
  sk_given =
      lua_isstring(L, -1) || (lua_isboolean(L, -1) && !lua_toboolean(L, -1));
  if (lua_isstring(L, -1)) a->s.sk = lua_tostring(L, -1);
  if (pk_given || sk_given) {
    if (!pk_given) a->s.pk = DF_DEFAULT_PK;
    if (!sk_given) a->s.sk = DF_DEFAULT_SK;
  }
  lua_getfield(L, t, "ttl");
  if (lua_isstring(L, -1)) a->s.ttl_attr = lua_tostring(L, -1);
  lua_getfield(L, t, "sync");
  if (lua_isstring(L, -1)) {
    const char *m = lua_tostring(L, -1);
    if (strcmp(m, "normal") == 0)
      a->o.sync = DF_SYNC_NORMAL;
    else if (strcmp(m, "off") == 0)
      a->o.sync = DF_SYNC_OFF;
    else
      a->o.sync = DF_SYNC_FULL;
  }
  lua_getfield(L, t, "readonly");
  a->o.readonly = lua_toboolean(L, -1);
  lua_getfield(L, t, "map_size");
  if (lua_isnumber(L, -1)) a->o.map_size = (size_t)lua_tonumber(L, -1);
  lua_getfield(L, t, "max_readers");
  if (lua_isnumber(L, -1)) a->o.max_readers = (unsigned)lua_tonumber(L, -1);
  /* prefetch: false (no read-ahead) or a number of bytes; nil: the
   * default bound */
  lua_getfield(L, t, "prefetch");
  if (lua_isboolean(L, -1) && !lua_toboolean(L, -1))
    a->o.prefetch = DF_PREFETCH_NONE;
  else if (lua_isnumber(L, -1))
    a->o.prefetch = (size_t)lua_tonumber(L, -1);
  /* the commit path: the "normal" flush window, the checkpoint interval */
  lua_getfield(L, t, "flush_ms");
  if (lua_isnumber(L, -1)) a->o.flush_ms = (unsigned)lua_tonumber(L, -1);
  lua_getfield(L, t, "checkpoint_bytes");
  if (lua_isnumber(L, -1))
    a->o.checkpoint_bytes = (uint64_t)lua_tonumber(L, -1);
  lua_getfield(L, t, "max_item_size");
  if (lua_isnumber(L, -1)) a->o.max_item_size = (uint64_t)lua_tonumber(L, -1);
  lua_pop(L, 11); /* the strings stay referenced by the options table */
  read_stream_args(L, t, &a->o);
  lua_getfield(L, t, "indexes");
  if (lua_istable(L, -1)) {
    int ti = lua_gettop(L);
    n_idx = lua_rawlen(L, ti);
    if (n_idx > LDF_MAX_INDEXES) {
      lua_pop(L, 1);
      lua_pushfstring(L, "too many indexes (%d, at most %d)", (int)n_idx,
                      LDF_MAX_INDEXES);
      return DF_EINVAL;
    }
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
        if (m > LDF_MAX_INDEXES) {
          lua_settop(L, ti - 1);
          lua_pushfstring(L, "index %s: projection too long (at most %d names)",
                          x->name ? x->name : "?", LDF_MAX_INDEXES);
          return DF_EINVAL;
        }
        x->projection = DF_PROJ_INCLUDE;
        for (j = 0; j < m; j++) {
          lua_rawgeti(L, pt, (int)j + 1);
          a->incs[i][j] = lua_tostring(L, -1);
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
  a->create = a->s;
  if (a->create.pk == NULL) {
    a->create.pk = DF_DEFAULT_PK;
    a->create.sk = DF_DEFAULT_SK;
  }
  if (a->s.pk || a->s.ttl_attr || a->s.n_indexes) a->o.schema = &a->s;
  a->o.create_schema = &a->create;
  return DF_OK;
}

/* A new, empty handle userdata.  [-0, +1, e] */
static ldb *new_ldb(lua_State *L) {
  ldb *d = lua_newuserdata(L, sizeof *d);
  memset(d, 0, sizeof *d);
  d->tag = &ldb_tag;
  df__buf_init(&d->buf);
  luaL_setmetatable(L, LDF_DB_MT);
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
    return lerror_fail(L, code, msg);
  }
  d->db = db;
  if (df_page_new(&d->page) != DF_OK) {
    lua_pop(L, 1); /* its __gc closes db */
    return lerror_fail(L, DF_ENOMEM, "out of memory");
  }
  return 1;
}

/* The path argument at idx; NULL when it holds a NUL byte, which C would
 * cut it short at.  [-0, +0, v] */
static const char *path_arg(lua_State *L, int idx) {
  size_t n;
  const char *path = luaL_checklstring(L, idx, &n);
  return strlen(path) == n ? path : NULL;
}

/* [-0, +3, m] */
static int path_fail(lua_State *L) {
  return lerror_misuse(L, DF_EINVAL, "path must not contain NUL bytes");
}

/* core.open(path, opts) -> db | nil, msg, code ("InvalidArgument": the
 * path or the options cannot be used) */
static int l_open(lua_State *L) {
  const char *path = path_arg(L, 1);
  open_args *a;
  df_db *db = NULL;
  ldb *d;
  int code;
  if (path == NULL) return path_fail(L);
  /* a scratch userdata: too big for the C stack, freed by the GC */
  a = lua_newuserdata(L, sizeof *a);
  if ((code = read_open_args(L, 2, a)) != DF_OK)
    return lerror_misuse_pushed(L, code);
  d = new_ldb(L);
  d->readonly = a->o.readonly;
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

#define OPENER_QUEUE (LDF_MAX_INDEXES + 2)

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

int lopen_opener_gc(lua_State *L) {
  lopener *op = luaL_checkudata(L, 1, LDF_OPENER_MT);
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
  const char *path = path_arg(L, 1);
  lopener *op;
  size_t n;
  int code;
  if (path == NULL) return path_fail(L);
  n = strlen(path) + 1;
  luaL_checktype(L, 2, LUA_TTABLE);
  op = lua_newuserdata(L, sizeof *op);
  memset(op, 0, sizeof *op);
  op->opts_ref = LUA_NOREF;
  luaL_setmetatable(L, LDF_OPENER_MT);
  if ((code = read_open_args(L, 2, &op->a)) != DF_OK)
    return lerror_misuse_pushed(L, code);
  op->a.o.progress = on_progress;
  op->a.o.progress_ud = op;
  lua_pushvalue(L, 2);
  op->opts_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  op->path = malloc(n);
  if (op->path == NULL) return lerror_fail(L, DF_ENOMEM, "out of memory");
  memcpy(op->path, path, n);
  pthread_mutex_init(&op->mu, NULL);
  pthread_cond_init(&op->cv, NULL);
  op->inited = 1;
  if (pthread_create(&op->thread, NULL, open_thread, op) != 0)
    return lerror_fail(L, DF_EIO, "cannot start a thread for the open");
  op->started = 1;
  return 1;
}

/* opener:wait() -> false, index, done, total  (a progress report)
 *               | db | nil, msg, code         (the open finished) */
static int l_opener_wait(lua_State *L) {
  lopener *op = luaL_checkudata(L, 1, LDF_OPENER_MT);
  ldb *d;
  int code;
  if (!op->started || op->joined)
    return lerror_raise(L, "dynafile.core: the open has finished");
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
  d->readonly = op->a.o.readonly;
  opener_join(op);
  code = op->code;
  {
    df_db *db = op->db;
    op->db = NULL;
    return finish_open(L, d, code, db);
  }
}

const luaL_Reg lopen_funcs[] = {
    {"open", l_open}, {"open_start", l_open_start}, {NULL, NULL}};
const luaL_Reg lopen_opener_methods[] = {{"wait", l_opener_wait}, {NULL, NULL}};
