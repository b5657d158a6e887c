/*
 * test_fork.c -- a handle carried into a forked child fails clearly.
 *
 * Lua has no fork, so this C test covers both sides: the C API (every call
 * on an inherited handle is DF_EFORKED, closing it does not disturb the
 * parent, and a database opened after the fork works) and, through an
 * embedded Lua state running the real Lua layer, the Lua-visible result
 * (`nil, message, "Forked"` from get_item, put_item, query_page and
 * batch_write; the iterators raise).  The child reports its checks to the
 * parent through a pipe, so they count in the summary line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "check.h"
#include "dynafile.h"
#include "internal.h"

int luaopen_dynafile_core(lua_State *L);

static char root[4096];

static void remove_tree(const char *path) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", path);
}

static df_key key_of(const char *pk, const char *sk) {
  df_key k;
  memset(&k, 0, sizeof k);
  k.pk.type = DF_TSTR;
  k.pk.s = pk;
  k.pk.n = strlen(pk);
  k.sk.type = DF_TSTR;
  k.sk.s = sk;
  k.sk.n = strlen(sk);
  return k;
}

static void item(df_buf *b, const char *pk, const char *sk) {
  df__buf_reset(b);
  df__mp_put_map(b, 2);
  df__mp_put_str(b, "PK", 2);
  df__mp_put_str(b, pk, strlen(pk));
  df__mp_put_str(b, "SK", 2);
  df__mp_put_str(b, sk, strlen(sk));
}

/* Run child() in a forked process; its check counts come back through a
 * pipe and are added to ours.  A child that dies counts as a failure. */
static void in_child(void (*child)(void *), void *arg) {
  int fds[2], status = 0;
  long counts[2] = {0, 0};
  pid_t pid;
  if (!CHECK(pipe(fds) == 0)) return;
  fflush(NULL);
  pid = fork();
  if (pid == 0) {
    close(fds[0]);
    check_passed_n = check_failed_n = 0;
    child(arg);
    counts[0] = check_passed_n;
    counts[1] = check_failed_n;
    if (write(fds[1], counts, sizeof counts) != (ssize_t)sizeof counts)
      _exit(3);
    _exit(0);
  }
  close(fds[1]);
  if (!CHECK(pid > 0)) {
    close(fds[0]);
    return;
  }
  CHECK(read(fds[0], counts, sizeof counts) == (ssize_t)sizeof counts);
  close(fds[0]);
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  check_passed_n += counts[0];
  check_failed_n += counts[1];
}

/* ------------------------------------------------------------- C API */

typedef struct fork_ctx {
  df_db *db;
  const char *path;
} fork_ctx;

static void c_child(void *arg) {
  fork_ctx *c = arg;
  df_key k = key_of("p", "s");
  const void *it;
  size_t len;
  df_txn *t = NULL;
  df_page *page = NULL;
  df_query q;
  df_buf b;
  df_db *fresh = NULL;
  df_open_options o;
  int found;

  df__buf_init(&b);
  item(&b, "p", "child");
  CHECK_EQ_INT(df_db_get(c->db, &k, 0, &it, &len), DF_EFORKED);
  CHECK(strstr(df_db_errmsg(c->db), "fork") != NULL);
  CHECK_EQ_INT(df_db_put(c->db, b.p, b.len, 0), DF_EFORKED);
  CHECK_EQ_INT(df_db_delete(c->db, &k, 0, &found), DF_EFORKED);
  CHECK_EQ_INT(df_txn_begin(c->db, DF_TXN_READ, 0, &t), DF_EFORKED);
  CHECK_EQ_INT(df_txn_begin(c->db, DF_TXN_WRITE, 0, &t), DF_EFORKED);
  CHECK_EQ_INT(df_page_new(&page), DF_OK);
  memset(&q, 0, sizeof q);
  CHECK_EQ_INT(df_query_page(c->db, &q, 10, 0, page), DF_EFORKED);
  df_page_free(page);
  df_db_close(c->db); /* must not touch the parent's environment */

  /* opened after the fork, the same database works in the child */
  memset(&o, 0, sizeof o);
  CHECK_EQ_INT(df_db_open(c->path, &o, &fresh), DF_OK);
  CHECK_EQ_INT(df_db_get(fresh, &k, 0, &it, &len), DF_OK);
  CHECK_EQ_INT(df_db_put(fresh, b.p, b.len, 0), DF_OK);
  df_db_close(fresh);
  df__buf_free(&b);
}

static void test_c_api(void) {
  char path[4200];
  df_schema s = {"PK", "SK", NULL, NULL, 0};
  df_open_options o;
  df_db *db = NULL;
  df_buf b;
  df_key k;
  const void *it;
  size_t len;
  fork_ctx c;

  snprintf(path, sizeof path, "%s/c", root);
  memset(&o, 0, sizeof o);
  o.schema = &s;
  if (!CHECK(df_db_open(path, &o, &db) == DF_OK)) return;
  df__buf_init(&b);
  item(&b, "p", "s");
  CHECK_EQ_INT(df_db_put(db, b.p, b.len, 0), DF_OK);
  k = key_of("p", "s");
  CHECK_EQ_INT(df_db_get(db, &k, 0, &it, &len), DF_OK); /* warm rtxn */

  c.db = db;
  c.path = path;
  in_child(c_child, &c);

  /* the parent's handle is unharmed, and sees the child's write */
  CHECK_EQ_INT(df_db_get(db, &k, 0, &it, &len), DF_OK);
  k = key_of("p", "child");
  CHECK_EQ_INT(df_db_get(db, &k, 0, &it, &len), DF_OK);
  item(&b, "p", "after");
  CHECK_EQ_INT(df_db_put(db, b.p, b.len, 0), DF_OK);
  df__buf_free(&b);
  df_db_close(db);
}

/* A read transaction the parent holds when it forks does not stop the
 * child's own databases from growing their maps (1 MiB at first). */
static void grow_child(void *arg) {
  const char *path = arg;
  df_schema s = {"PK", "SK", NULL, NULL, 0};
  df_open_options o;
  df_db *db = NULL;
  df_txn *t = NULL;
  df_buf b;
  static char big[300 * 1024];
  char sk[16];
  int i;
  memset(&o, 0, sizeof o);
  o.schema = &s;
  if (!CHECK(df_db_open(path, &o, &db) == DF_OK)) return;
  memset(big, 'x', sizeof big);
  df__buf_init(&b);
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_WRITE, 0, &t), DF_OK);
  for (i = 0; i < 10 && t; i++) { /* 3 MiB in one transaction */
    snprintf(sk, sizeof sk, "%d", i);
    df__buf_reset(&b);
    df__mp_put_map(&b, 3);
    df__mp_put_str(&b, "PK", 2);
    df__mp_put_str(&b, "big", 3);
    df__mp_put_str(&b, "SK", 2);
    df__mp_put_str(&b, sk, strlen(sk));
    df__mp_put_str(&b, "v", 1);
    df__mp_put_str(&b, big, sizeof big);
    CHECK_EQ_INT(df_txn_put(t, b.p, b.len, NULL, NULL), DF_OK);
  }
  if (t) CHECK_EQ_INT(df_txn_commit(t), DF_OK);
  df__buf_free(&b);
  df_db_close(db);
}

static void test_grow_after_fork(void) {
  char path[4200], other[4200];
  df_schema s = {"PK", "SK", NULL, NULL, 0};
  df_open_options o;
  df_db *db = NULL;
  df_txn *rt = NULL;
  snprintf(path, sizeof path, "%s/held", root);
  snprintf(other, sizeof other, "%s/grown", root);
  memset(&o, 0, sizeof o);
  o.schema = &s;
  if (!CHECK(df_db_open(path, &o, &db) == DF_OK)) return;
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_READ, 0, &rt), DF_OK);
  in_child(grow_child, other);
  if (rt) df_txn_free(rt);
  df_db_close(db);
}

/* ---------------------------------------------------------------- Lua */

/* Run `code` in L; a Lua error is a failed check.  Returns the number of
 * results left on the stack, or -1. */
static int run_lua(lua_State *L, const char *code, const char *what) {
  int top = lua_gettop(L);
  if (luaL_loadstring(L, code) != 0 || lua_pcall(L, 0, LUA_MULTRET, 0) != 0) {
    fprintf(stderr, "%s: %s\n", what, lua_tostring(L, -1));
    CHECK(!"Lua chunk failed");
    lua_settop(L, top);
    return -1;
  }
  return lua_gettop(L) - top;
}

/* The child's chunk returns one string per check: "ok" or what went
 * wrong. */
static const char child_chunk[] =
    "local results = {}\n"
    "local function expect_forked(what, ok, msg, code)\n"
    "  if ok == nil and code == 'Forked' and type(msg) == 'string' and\n"
    "     msg:find('fork') then\n"
    "    results[#results + 1] = 'ok'\n"
    "  else\n"
    "    results[#results + 1] = what .. ': got ' .. tostring(ok) ..\n"
    "      ', ' .. tostring(msg) .. ', ' .. tostring(code)\n"
    "  end\n"
    "end\n"
    "expect_forked('get_item', db:get_item{PK = 'p', SK = 's'})\n"
    "expect_forked('put_item', db:put_item{PK = 'p', SK = 'x'})\n"
    "expect_forked('delete_item', db:delete_item{PK = 'p', SK = 's'})\n"
    "expect_forked('query_page', db:query_page('p'))\n"
    "expect_forked('scan_page', db:scan_page())\n"
    "expect_forked('batch_write', db:batch_write(function(w)\n"
    "  w:put_item{PK = 'p', SK = 'y'} end))\n"
    "local ok, err = pcall(function() for _ in db:query('p') do end end)\n"
    "results[#results + 1] = (not ok and tostring(err):find('fork')) and\n"
    "  'ok' or ('query iterator: ' .. tostring(err))\n"
    "db:close()\n"
    "local db2 = dynafile.open(path)\n"
    "local item = db2 and db2:get_item{PK = 'p', SK = 's'}\n"
    "results[#results + 1] = (item and item.n == 1) and 'ok' or\n"
    "  'reopened in the child: ' .. tostring(item)\n"
    "db2:close()\n"
    "return (table.unpack or unpack)(results)\n";

static void lua_child(void *arg) {
  lua_State *L = arg;
  int n = run_lua(L, child_chunk, "child"), i;
  for (i = -n; i < 0 && n > 0; i++) {
    const char *r = lua_tostring(L, i);
    if (!CHECK(r && strcmp(r, "ok") == 0))
      fprintf(stderr, "  %s\n", r ? r : "(not a string)");
  }
  CHECK_EQ_INT(n, 8);
}

static void test_lua(void) {
  char setup[8400];
  lua_State *L = luaL_newstate();
  if (!CHECK(L != NULL)) return;
  luaL_openlibs(L);
  /* the Lua layer from the source tree, the binding linked in */
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_dynafile_core);
  lua_setfield(L, -2, "dynafile.core");
  lua_pop(L, 1);
  lua_pushstring(L, "./lua/?.lua;./lua/?/init.lua");
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
  snprintf(setup, sizeof setup,
           "dynafile = require 'dynafile'\n"
           "path = '%s/lua'\n"
           "db = assert(dynafile.open(path, {pk = 'PK', sk = 'SK'}))\n"
           "assert(db:put_item{PK = 'p', SK = 's', n = 1})\n"
           "assert(assert(db:get_item{PK = 'p', SK = 's'}).n == 1)\n",
           root);
  if (run_lua(L, setup, "setup") < 0) {
    lua_close(L);
    return;
  }
  in_child(lua_child, L);
  /* the parent goes on as before */
  CHECK(run_lua(L,
                "assert(db:put_item{PK = 'p', SK = 'after', n = 2})\n"
                "local n = 0\n"
                "for _ in db:query('p') do n = n + 1 end\n"
                "assert(n == 2, 'items in p: ' .. n)\n"
                "db:close()\n",
                "parent") == 0);
  lua_close(L);
}

/* Forks while this process's flusher thread keeps waking (a 1 ms flush
 * window, "normal" commits in between): each child allocates and exits.
 * A fork waits until the flusher is parked (commit.c), so no child starts
 * with a lock the flusher held mid-call -- under AddressSanitizer an
 * allocator lock, which hung a child before (a child stuck longer than
 * its alarm counts as a failure here). */
static void test_fork_with_flusher(void) {
  char path[4200];
  df_schema s = {"PK", "SK", NULL, NULL, 0};
  df_open_options o;
  df_db *db = NULL;
  df_buf b;
  int i, ok = 0;
  snprintf(path, sizeof path, "%s/flusher", root);
  memset(&o, 0, sizeof o);
  o.schema = &s;
  o.sync = DF_SYNC_NORMAL;
  o.flush_ms = 1;
  if (!CHECK(df_db_open(path, &o, &db) == DF_OK)) return;
  df__buf_init(&b);
  for (i = 0; i < 60; i++) {
    char sk[32];
    pid_t pid;
    int status = 0;
    snprintf(sk, sizeof sk, "s%d", i);
    item(&b, "p", sk);
    if (!CHECK(df_db_put(db, b.p, b.len, 0) == DF_OK)) break;
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
      int j;
      alarm(20);
      for (j = 0; j < 2000; j++) free(malloc((size_t)(16 + j % 700)));
      _exit(0);
    }
    if (!CHECK(pid > 0)) break;
    if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
        WEXITSTATUS(status) == 0)
      ok++;
  }
  CHECK_EQ_INT(ok, 60);
  df__buf_free(&b);
  df_db_close(db);
}

int main(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(root, sizeof root, "%s/dynafile-test-fork.XXXXXX",
           tmp && tmp[0] ? tmp : "/tmp");
  if (mkdtemp(root) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  RUN_TEST(test_c_api);
  RUN_TEST(test_grow_after_fork);
  RUN_TEST(test_lua);
  RUN_TEST(test_fork_with_flusher);
  remove_tree(root);
  return check_done("test_fork");
}
