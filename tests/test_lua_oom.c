/*
 * test_lua_oom.c -- memory errors raised by the Lua interpreter inside the
 * binding and the Lua layer leak nothing and leave the database usable.
 *
 * busted cannot give a Lua state a failing allocator, so this test embeds
 * Lua 5.4 itself (lua_newstate with its own allocator), loads the binding
 * (linked in, through package.preload) and the Lua layer (lua/dynafile),
 * and for each snippet of Lua below and for n = 1, 2, 3, ...:
 *  - restores the database from a template and opens it in a new state;
 *  - makes the nth Lua allocation from now on, and every one after it,
 *    fail (Lua retries a failed allocation after an emergency collection,
 *    so failing just one would not raise), and runs the snippet in a
 *    protected call;
 *  - lets allocations succeed again and checks, in the same state and
 *    without a collection first, that the handle still writes and reads
 *    (no write transaction left held by the unwound call);
 *  - closes the state: every byte Lua allocated and every allocation of
 *    the core (the fault-injection build counts them) is freed;
 *  - reads the whole database back in a fresh state: it is as before the
 *    snippet or as after a complete run of it, never in between.
 * The loop for a snippet ends at the first n its run does not reach.
 * Run from the repository root (it loads the Lua layer from lua/).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "check.h"
#include "internal.h"

int luaopen_dynafile_core(lua_State *L);

static char dir[256], tmpl[256];
static long points_total;

/* ------------------------------------------------------------ allocator */

typedef struct heap {
  size_t bytes;   /* live bytes */
  long count;     /* allocations made since arming */
  long fail_from; /* 0: off; else fail allocation number fail_from and on */
  int fired;
} heap;

static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  heap *h = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    h->bytes -= old;
    free(ptr);
    return NULL;
  }
  if (h->fail_from > 0 && ++h->count >= h->fail_from) {
    h->fired = 1;
    return NULL;
  }
  ptr = realloc(ptr, nsize);
  if (ptr) h->bytes += nsize - old;
  return ptr;
}

/* ------------------------------------------------------------- files */

static int copy_file(const char *from, const char *to) {
  char buf[65536];
  int in = open(from, O_RDONLY), out;
  ssize_t n;
  if (in < 0) return -1;
  out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (out < 0) {
    close(in);
    return -1;
  }
  while ((n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)n) != n) n = -1;
  close(in);
  close(out);
  return n < 0 ? -1 : 0;
}

/* The template's files: the data file and its redo log belong together;
 * the lock files are rebuilt by the first opener. */
static void restore(void) {
  static const char *const files[] = {"data.mdb", "redo.log"};
  char a[300], b[300];
  size_t i;
  mkdir(dir, 0755);
  for (i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(a, sizeof a, "%s/%s", tmpl, files[i]);
    snprintf(b, sizeof b, "%s/%s", dir, files[i]);
    if (copy_file(a, b) != 0) {
      fprintf(stderr, "cannot copy %s\n", a);
      exit(2);
    }
  }
  snprintf(b, sizeof b, "%s/lock.mdb", dir);
  unlink(b);
  snprintf(b, sizeof b, "%s/redo.lock", dir);
  unlink(b);
}

/* ---------------------------------------------------------- Lua states */

static lua_State *new_state(heap *h) {
  lua_State *L;
  memset(h, 0, sizeof *h);
  L = lua_newstate(l_alloc, h);
  if (L == NULL) exit(2);
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_dynafile_core);
  lua_setfield(L, -2, "dynafile.core");
  lua_pop(L, 1);
  return L;
}

/* Run chunk `src` with DIR as a global; 0 or -1 (message on stderr when
 * `loud`).  [-0, +0, -] */
static int run(lua_State *L, const char *src, int loud) {
  int rc = luaL_loadstring(L, src);
  if (rc == LUA_OK) rc = lua_pcall(L, 0, 0, 0);
  if (rc != LUA_OK) {
    if (loud) fprintf(stderr, "  lua: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  return 0;
}

static const char *prelude =
    "package.path = 'lua/?.lua;lua/?/init.lua'\n"
    "dynafile = require 'dynafile'\n"
    /* the modules dynafile.db loads at their first use: the snippets'
     * calls are under test, not the compiling of the library */
    "require 'dynafile.batch'\n"
    "require 'dynafile.reader'\n"
    "db = assert(dynafile.open(DIR))\n"
    "function key(pk, sk) return { PK = pk, SK = sk } end\n";

/* The contents of the database, rendered deterministically.  Returns a
 * malloc'd string. */
static char *render_db(void) {
  heap h;
  lua_State *L = new_state(&h);
  char *out = NULL;
  lua_pushstring(L, dir);
  lua_setglobal(L, "DIR");
  if (run(L, prelude, 1) == 0 &&
      run(L,
          "local function r(v, o)\n"
          "  if type(v) ~= 'table' then o[#o+1] = type(v)..':'..tostring(v) "
          "return end\n"
          "  local ks = {} for k in pairs(v) do ks[#ks+1] = k end\n"
          "  table.sort(ks, function(a, b) return tostring(a) < tostring(b) "
          "end)\n"
          "  o[#o+1] = '{' for _, k in ipairs(ks) do r(k, o) o[#o+1] = '=' "
          "r(v[k], o) end o[#o+1] = '}'\n"
          "end\n"
          "local o = {}\n"
          "for it in db:scan() do r(it, o) end\n"
          "o[#o+1] = '|gsi:' for it in db:scan { index = 'by_g' } do r(it, o) "
          "end\n"
          "local c = db:check() o[#o+1] = '|check:' .. tostring(c and c.ok)\n"
          "RENDERED = table.concat(o, ' ')\n"
          "db:close()\n",
          1) == 0) {
    lua_getglobal(L, "RENDERED");
    out = strdup(lua_tostring(L, -1));
  }
  lua_close(L);
  return out;
}

/* ------------------------------------------------------------ snippets */

typedef struct snippet {
  const char *name;
  const char *code; /* runs with globals dynafile, db, key, DIR */
} snippet;

static const snippet snippets[] = {
    {"open and close", "local d = assert(dynafile.open(DIR)) d:close()"},
    {"put_item",
     "assert(db:put_item { PK = 'n', SK = 1, v = 2, list = { 1, 2, 'x' }, "
     "map = { a = { b = 'c' } }, g = 'g1', t = 4102444800 })"},
    {"get_item", "assert(db:get_item(key('p1', 3)))"},
    {"delete_item", "assert(db:delete_item(key('p1', 3)))"},
    {"update_item",
     "assert(db:update_item(key('p1', 4), { set = { ['m.x'] = 1, v = 'new' }, "
     "add = { n = 5 }, remove = { 'w' } }))"},
    {"update_item (function)",
     "assert(db:update_item(key('p1', 5), function(old) old.v = 'f' return old "
     "end))"},
    {"put_item (condition)",
     "assert(db:put_item({ PK = 'p1', SK = 19, v = 'c' }, { condition = "
     "'exists(v)' }))"},
    {"query (filter, limit)",
     "local n = 0 for _ in db:query('p1', { filter = 'n >= 2', limit = 5 }) do "
     "n = n + 1 end assert(n == 5)"},
    {"scan and scan_page",
     "local n = 0 for _ in db:scan() do n = n + 1 end assert(n == 30)\n"
     "local items, nk = db:scan_page { limit = 7 }\n"
     "local more = db:scan_page { limit = 7, start_after = nk } assert(#more "
     "== 7)"},
    {"query (index)",
     "local n = 0 for _ in db:query('g1', { index = 'by_g' }) do n = n + 1 end "
     "assert(n > 0)"},
    {"batch_get_item",
     "local r = db:batch_get_item { key('p1', 1), key('p1', 3), key('zz', 1) } "
     "assert(r[1] and r[2] and r[3] == false)"},
    {"batch_write",
     "assert(db:batch_write(function(w) for i = 1, 10 do "
     "w:put_item { PK = 'b', SK = i, g = 'g2' } end w:delete_item(key('p1', "
     "1)) "
     "end))"},
    {"transaction",
     "assert(db:transaction(function(tx)\n"
     "  local it = tx:get_item(key('p1', 3)) it.v = 'tx'\n"
     "  tx:put_item(it) tx:delete_item(key('p1', 7))\n"
     "  tx:condition_check(key('p1', 9), 'exists(n)')\n"
     "  tx:update_item(key('p1', 11), { add = { n = 1 } })\n"
     "  return true end))"},
    {"transact_write_items",
     "assert(db:transact_write_items { { put = { PK = 'w', SK = 1 } }, "
     "{ delete = key('p1', 13) }, { update = key('p1', 15), changes = { set = "
     "{ "
     "v = 1 } } }, { check = key('p1', 17), condition = 'exists(PK)' } })"},
    {"listener",
     "local seen = 0 local h = db:add_stream_listener(function(ev) seen = seen "
     "+ 1 end)\n"
     "assert(db:put_item { PK = 'l', SK = 1 }) db:remove_stream_listener(h) "
     "assert(seen == 1)"},
    {"purge_expired", "assert(db:purge_expired() >= 0)"},
    {"stat, schema, check",
     "assert(db:stat()) assert(db:schema()) assert(db:check().ok)"},
};

static const char *usable =
    "assert(db:put_item { PK = 'usable', SK = 1 })\n"
    "assert(db:get_item(key('usable', 1)))\n"
    "assert(db:delete_item(key('usable', 1)))\n";

static void run_snippet(const snippet *sn, const char *pre) {
  char *post;
  long n, points = 0, errors = 0;
  heap h;
  lua_State *L;

  /* a complete run, for the state after it */
  restore();
  L = new_state(&h);
  lua_pushstring(L, dir);
  lua_setglobal(L, "DIR");
  if (!CHECK(run(L, prelude, 1) == 0 && run(L, sn->code, 1) == 0)) {
    fprintf(stderr, "  %s does not run without faults\n", sn->name);
    lua_close(L);
    return;
  }
  lua_close(L);
  post = render_db();
  if (!CHECK(post != NULL)) return;

  for (n = 1; n < 200000; n++) {
    int rc, fired;
    char *now;
    restore();
    L = new_state(&h);
    lua_pushstring(L, dir);
    lua_setglobal(L, "DIR");
    if (run(L, prelude, 1) != 0) {
      CHECK(0);
      lua_close(L);
      break;
    }
    /* load the snippet before arming: compiling is not under test */
    if (luaL_loadstring(L, sn->code) != LUA_OK) {
      CHECK(0);
      lua_close(L);
      break;
    }
    h.count = 0;
    h.fired = 0;
    h.fail_from = n;
    rc = lua_pcall(L, 0, 0, 0);
    h.fail_from = 0;
    fired = h.fired;
    if (rc != LUA_OK) {
      errors++;
      lua_pop(L, 1);
    }
    if (!fired) {
      CHECK(rc == LUA_OK);
      lua_close(L);
      break;
    }
    points++;
    /* the same state, no collection first: the handle still works */
    if (!CHECK(run(L, usable, 1) == 0))
      fprintf(stderr, "  %s, allocation %ld: handle unusable after the error\n",
              sn->name, n);
    lua_close(L);
    if (!CHECK(h.bytes == 0))
      fprintf(stderr, "  %s, allocation %ld: %zu Lua bytes not freed\n",
              sn->name, n, h.bytes);
    if (!CHECK(df__test_alloc_live() == 0)) {
      fprintf(stderr, "  %s, allocation %ld: %ld core allocations leaked\n",
              sn->name, n, df__test_alloc_live());
      break;
    }
    now = render_db();
    if (!CHECK(now && (strcmp(now, pre) == 0 || strcmp(now, post) == 0)))
      fprintf(stderr, "  %s, allocation %ld: the database is half changed\n",
              sn->name, n);
    free(now);
  }
  free(post);
  printf("%-24s %5ld allocation points failed (%ld raised)\n", sn->name, points,
         errors);
  points_total += points;
}

int main(void) {
  const char *tmp = getenv("TMPDIR");
  char cmd[600], *pre;
  size_t i;
  heap h;
  lua_State *L;

  if (!tmp || !*tmp) tmp = "/tmp";
  snprintf(dir, sizeof dir, "%s/dynafile-luaoom-%ld", tmp, (long)getpid());
  snprintf(tmpl, sizeof tmpl, "%s/dynafile-luaoom-tmpl-%ld", tmp,
           (long)getpid());

  /* the template: 30 items, a GSI, a TTL attribute */
  L = new_state(&h);
  lua_pushstring(L, tmpl);
  lua_setglobal(L, "DIR");
  if (run(L,
          "package.path = 'lua/?.lua;lua/?/init.lua'\n"
          "local dynafile = require 'dynafile'\n"
          "local db = assert(dynafile.open(DIR, { pk = 'PK', sk = 'SK', ttl = "
          "'t', "
          "sync = 'off', gsi = { by_g = { pk = 'g', sk = 'SK' } } }))\n"
          "for i = 1, 30 do assert(db:put_item { PK = 'p' .. (i % 2), SK = i, "
          "n = i, v = 'x', w = 1, g = 'g' .. (i % 3), t = 4102444800 }) end\n"
          "db:close()\n",
          1) != 0) {
    fprintf(stderr,
            "cannot make the template (run from the repository root)\n");
    return 2;
  }
  lua_close(L);
  restore();
  pre = render_db();
  if (!pre) return 2;

  for (i = 0; i < sizeof snippets / sizeof snippets[0]; i++) {
    long before = check_failed_n;
    run_snippet(&snippets[i], pre);
    if (check_failed_n == before) {
      check_tests_passed++;
    } else {
      check_tests_failed++;
      fprintf(stderr, "test %s failed\n", snippets[i].name);
    }
  }
  free(pre);
  printf("%ld Lua allocation points failed in all\n", points_total);
  snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", dir, tmpl);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
  return check_done("test_lua_oom");
}
