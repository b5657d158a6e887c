/*
 * c_example.c -- dynafile from C, with nothing but src/dynafile.h.
 *
 * A game engine or a tool can use the core without Lua: this program opens
 * (creating) a database, writes a few items in one transaction, reads one
 * back by key and queries a partition in pages.  Items are MessagePack maps;
 * the few lines of encoder below are enough for flat items (any MessagePack
 * library would do).  Run by `make test`; exits non-zero on any failure.
 *
 *   cc -Isrc examples/c_example.c build/lua5.4/libdynafile.a -llmdb -lpthread
 * -lm
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynafile.h"

/* ---------------------------------------------- a minimal MessagePack writer
 */

typedef struct mp {
  unsigned char buf[512];
  size_t len;
} mp;

static void mp_byte(mp *m, unsigned char c) {
  if (m->len < sizeof m->buf) m->buf[m->len++] = c;
}

static void mp_map(mp *m, unsigned n) {
  mp_byte(m, (unsigned char)(0x80 | n));
}

static void mp_str(mp *m, const char *s) {
  size_t n = strlen(s); /* short strings only (< 32 bytes) */
  mp_byte(m, (unsigned char)(0xa0 | n));
  while (*s) mp_byte(m, (unsigned char)*s++);
}

static void mp_uint(mp *m, unsigned v) { /* 0 .. 65535 */
  mp_byte(m, 0xcd);
  mp_byte(m, (unsigned char)(v >> 8));
  mp_byte(m, (unsigned char)v);
}

/* The unsigned integer attribute `name` of a flat item written above. */
static long item_uint(const unsigned char *p, size_t len, const char *name) {
  size_t i = 1, n = strlen(name);
  unsigned pairs = p[0] & 0x0f;
  while (pairs-- > 0 && i < len) {
    size_t klen = p[i] & 0x1f;
    int match = klen == n && memcmp(p + i + 1, name, n) == 0;
    i += 1 + klen;
    if (p[i] == 0xcd) {
      if (match) return (long)((p[i + 1] << 8) | p[i + 2]);
      i += 3;
    } else {
      i += 1 + (p[i] & 0x1f); /* a short string value */
    }
  }
  return -1;
}

static df_value str_value(const char *s) {
  df_value v;
  memset(&v, 0, sizeof v);
  v.type = DF_TSTR;
  v.s = s;
  v.n = strlen(s);
  return v;
}

static int fail(const char *what, const char *msg) {
  fprintf(stderr, "c_example: %s: %s\n", what, msg);
  return 1;
}

int main(void) {
  char dir[] = "/tmp/dynafile-c-example.XXXXXX";
  char path[64];
  df_schema schema = {"PK", "SK", NULL, NULL, 0};
  df_open_options opts;
  df_db *db = NULL;
  df_txn *txn = NULL;
  df_page *page = NULL;
  df_query q;
  df_key key;
  const void *item;
  size_t len, total = 0;
  unsigned i;
  long score_sum = 0;
  int rc;

  if (mkdtemp(dir) == NULL) return fail("mkdtemp", "cannot make a directory");
  snprintf(path, sizeof path, "%s/db", dir);

  /* Open, creating the database with its schema. */
  memset(&opts, 0, sizeof opts);
  opts.schema = &schema;
  rc = df_db_open(path, &opts, &db);
  if (rc != DF_OK) {
    fail("open", df_db_errmsg(db));
    df_db_close(db);
    return 1;
  }

  /* Write 250 items in one transaction: all of them or none. */
  rc = df_txn_begin(db, DF_TXN_WRITE, 0, &txn);
  for (i = 0; i < 250 && rc == DF_OK; i++) {
    mp m;
    char pk[16], sk[16];
    snprintf(pk, sizeof pk, "player#%u", i % 5);
    snprintf(sk, sizeof sk, "level#%03u", i);
    m.len = 0;
    mp_map(&m, 3);
    mp_str(&m, "PK");
    mp_str(&m, pk);
    mp_str(&m, "SK");
    mp_str(&m, sk);
    mp_str(&m, "score");
    mp_uint(&m, i * 10);
    rc = df_txn_put(txn, m.buf, m.len, NULL, NULL);
  }
  if (rc == DF_OK) rc = df_txn_commit(txn);
  if (rc != DF_OK) return fail("write", df_txn_errmsg(txn));
  df_txn_free(txn);

  /* Read one item by its key.  The bytes are borrowed until the next call
   * on db. */
  memset(&key, 0, sizeof key);
  key.pk = str_value("player#2");
  key.sk = str_value("level#007");
  rc = df_db_get(db, &key, 0, &item, &len);
  if (rc != DF_OK) return fail("get", df_db_errmsg(db));
  printf("player#2 level#007: score %ld\n", item_uint(item, len, "score"));
  if (item_uint(item, len, "score") != 70) return fail("get", "wrong score");

  /* Query one partition in pages of 20, resuming after each page's last
   * key, in sort-key order. */
  memset(&q, 0, sizeof q);
  q.has_pk = 1;
  q.pk = str_value("player#3");
  if (df_page_new(&page) != DF_OK) return fail("page", "out of memory");
  for (;;) {
    const void *next;
    size_t next_len;
    static unsigned char resume[256];
    rc = df_query_page(db, &q, 20, 0, page);
    if (rc != DF_OK) return fail("query", df_db_errmsg(db));
    for (i = 0; i < df_page_count(page); i++) {
      df_page_item(page, i, &item, &len);
      score_sum += item_uint(item, len, "score");
      total++;
    }
    df_page_next_key(page, &next, &next_len);
    if (next == NULL) break;
    if (next_len > sizeof resume) return fail("query", "resume key too long");
    memcpy(resume, next, next_len); /* the page is reused by the next call */
    q.start_after = resume;
    q.start_after_len = next_len;
  }
  df_page_free(page);
  printf("player#3: %zu levels, total score %ld\n", total, score_sum);
  if (total != 50 || score_sum != 62750) return fail("query", "wrong totals");

  df_db_close(db);
  snprintf(path, sizeof path, "rm -rf '%s'", dir);
  if (system(path) != 0) return fail("cleanup", dir);
  printf("c_example: ok\n");
  return 0;
}
