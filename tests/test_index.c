/*
 * test_index.c -- the secondary indexes through the public C API: entry
 * layout, maintenance by put/delete/transactions, sparse items, the key
 * budget, index queries with paging over duplicates, backfill with its
 * progress callback, drop_index, the entry form of each projection, and
 * the entry keys each put works out for itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "handle.h"
#include "index.h"

static char dir[4200];

/* A fresh, not yet existing database path (df_db_open creates it). */
static void fresh_dir(void) {
  fx_fresh(dir, sizeof dir);
}

static void remove_dir(void) {
  fx_rm(dir);
}

/* An item {PK = pk, SK = sk, g = g (when non-NULL), r = r (when >= 0)}. */
static void item(df_buf *b, const char *pk, long sk, const char *g, long r) {
  fx_item(b, "PK", fx_str(pk), "SK", fx_int(sk), "g", g ? fx_str(g) : fx_none(),
          "r", r >= 0 ? fx_int(r) : fx_none(), FX_END);
}

static size_t progress_calls, progress_last_done, progress_total;
static void on_progress(void *ud, const char *index, size_t done,
                        size_t total) {
  (void)ud;
  if (strcmp(index, "late") != 0) return;
  progress_calls++;
  progress_last_done = done;
  progress_total = total;
}

/* Count the items of an index query (or scan, pk NULL), paging `per_page`
 * at a time through next_key. */
static size_t count_query(df_db *db, unsigned id, const df_value *pk,
                          size_t per_page, int reverse) {
  df_page *page;
  df_query q;
  df_buf next;
  size_t total = 0, i;
  const void *k;
  size_t kn;
  df__buf_init(&next);
  if (df_page_new(&page) != DF_OK) return 0;
  memset(&q, 0, sizeof q);
  q.index = id;
  q.has_pk = pk != NULL;
  if (pk) q.pk = *pk;
  q.reverse = reverse;
  for (;;) {
    if (df_query_page(db, &q, per_page, 0, page) != DF_OK) break;
    total += df_page_count(page);
    for (i = 0; i < df_page_count(page); i++) {
      const void *it;
      size_t n;
      df_page_item(page, i, &it, &n);
      if (n == 0) return 0; /* every entry yields an item */
    }
    df_page_next_key(page, &k, &kn);
    if (k == NULL) break;
    df__buf_reset(&next);
    df__buf_append(&next, k, kn);
    q.start_after = next.p;
    q.start_after_len = next.len;
  }
  df_page_free(page);
  df__buf_free(&next);
  return total;
}

static df_db *db;
static unsigned id_g, id_l;
static df_buf b;

/* A fresh database with a GSI by_g (g, r) and an LSI by_r (r, keys), 1,000
 * items sharing the GSI key "same", one item only in the LSI and one in
 * neither. */
static int setup(void) {
  df_index_def defs[2];
  df_schema s;
  df_open_options o;
  long i;
  int code;
  fresh_dir();
  memset(defs, 0, sizeof defs);
  defs[0].name = "by_g";
  defs[0].kind = DF_GSI;
  defs[0].pk = "g";
  defs[0].sk = "r";
  defs[1].name = "by_r";
  defs[1].kind = DF_LSI;
  defs[1].sk = "r";
  defs[1].projection = DF_PROJ_KEYS;
  memset(&s, 0, sizeof s);
  s.pk = "PK";
  s.sk = "SK";
  s.indexes = defs;
  s.n_indexes = 2;
  o = fx_options(&s, 0, DF_SYNC_OFF);
  if ((db = fx_open(dir, &o)) == NULL) {
    remove_dir();
    return 0;
  }
  CHECK_EQ_INT(df_db_index_find(db, "by_g", &id_g), DF_OK);
  CHECK_EQ_INT(df_db_index_find(db, "by_r", &id_l), DF_OK);
  CHECK(id_g >= 1 && id_l >= 1 && id_g != id_l);
  df__buf_init(&b);
  for (i = 0, code = DF_OK; i < 1000 && code == DF_OK; i++) {
    item(&b, i % 2 ? "odd" : "even", i, "same", 5);
    code = df_db_put(db, b.p, b.len, 0);
  }
  CHECK_EQ_INT(code, DF_OK);
  item(&b, "sparse", 1, NULL, 3); /* no g: only in the LSI */
  CHECK_EQ_INT(df_db_put(db, b.p, b.len, 0), DF_OK);
  item(&b, "sparse", 2, "x", -1); /* no r: in neither */
  CHECK_EQ_INT(df_db_put(db, b.p, b.len, 0), DF_OK);
  return 1;
}

static void teardown(void) {
  df_db_close(db);
  db = NULL;
  df__buf_free(&b);
  remove_dir();
}

static uint64_t entries(void) {
  df_stat st;
  if (df_db_stat(db, &st) != DF_OK) return (uint64_t)-1;
  return st.index_entries;
}

static void test_sparse_items_have_no_entry(void) {
  if (!setup()) return;
  CHECK_EQ_UINT(entries(), 2000 + 1);
  teardown();
}

static void test_entry_key_layout(void) {
  unsigned char k[DF_KEY_MAX], e[DF_KEY_MAX];
  size_t kn, m, en = 0, j;
  uint64_t h;
  df_value v = fx_str("same");
  const df_schema *sc;
  const df_index_def *d = NULL;
  if (!setup()) return;
  sc = df_db_schema(db);
  for (j = 0; j < sc->n_indexes; j++)
    if (sc->indexes[j].id == id_g) d = &sc->indexes[j];
  CHECK(d != NULL);
  if (d == NULL) {
    teardown();
    return;
  }
  /* id | hash64(gpk) | enc(gpk) | enc(gsk) | enc(pk) | enc(sk) */
  item(&b, "even", 4, "same", 5);
  CHECK_EQ_INT(df__index_entry_key(&db->env->schema.s, d, b.p, b.len, k, &kn),
               DF_OK);
  e[en++] = (unsigned char)id_g;
  df__key_enc_partition(&v, e + en + 8, &m, &h);
  df__key_put_u64(e + en, h);
  en += 8 + m;
  v = fx_int(5);
  df__key_enc(&v, e + en, DF_SK_MAX, &m);
  en += m;
  v = fx_str("even");
  df__key_enc_partition(&v, e + en, &m, NULL);
  en += m;
  v = fx_int(4);
  df__key_enc(&v, e + en, DF_SK_MAX, &m);
  en += m;
  CHECK_EQ_MEM(k, kn, e, en);
  item(&b, "even", 4, NULL, 5); /* no g: sparse */
  CHECK_EQ_INT(df__index_entry_key(&db->env->schema.s, d, b.p, b.len, k, &kn),
               DF_ENOTFOUND);
  teardown();
}

static void test_paging_over_duplicates(void) {
  df_value pk;
  if (!setup()) return;
  pk = fx_str("same");
  CHECK_EQ_UINT(count_query(db, id_g, &pk, 37, 0), 1000);
  CHECK_EQ_UINT(count_query(db, id_g, &pk, 41, 1), 1000);
  CHECK_EQ_UINT(count_query(db, id_g, NULL, 100, 0), 1000); /* scan */
  pk = fx_str("even");
  CHECK_EQ_UINT(count_query(db, id_l, &pk, 7, 0), 500);
  pk = fx_str("sparse");
  CHECK_EQ_UINT(count_query(db, id_l, &pk, 7, 0), 1);
  teardown();
}

static void test_delete_and_rollback(void) {
  df_key key;
  df_txn *t;
  df_value pk;
  int found = 0;
  if (!setup()) return;
  memset(&key, 0, sizeof key);
  key.pk = fx_str("even");
  key.sk = fx_int(0);
  CHECK_EQ_INT(df_db_delete(db, &key, 0, &found), DF_OK);
  CHECK(found);
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_WRITE, 0, &t), DF_OK);
  item(&b, "new", 1, "same", 1);
  CHECK_EQ_INT(df_txn_put(t, b.p, b.len, NULL, NULL), DF_OK);
  key.pk = fx_str("odd");
  key.sk = fx_int(1);
  CHECK_EQ_INT(df_txn_delete(t, &key, NULL, NULL, NULL), DF_OK);
  df_txn_free(t); /* aborted */
  CHECK_EQ_UINT(entries(), 1998 + 1);
  pk = fx_str("same");
  CHECK_EQ_UINT(count_query(db, id_g, &pk, 100, 0), 999);
  teardown();
}

/* Index keys hold every key value DynamoDB allows (a GSI sort key of 1024
 * bytes); one byte more fails the write, naming the attribute and the
 * index, and nothing is written. */
static void test_key_budget(void) {
  static char big[1026];
  if (!setup()) return;
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = 0;
  df__buf_reset(&b);
  df__mp_put_map(&b, 4);
  df__mp_put_str(&b, "PK", 2);
  df__mp_put_str(&b, "k", 1);
  df__mp_put_str(&b, "SK", 2);
  df__mp_put_int(&b, 1);
  df__mp_put_str(&b, "g", 1);
  df__mp_put_str(&b, "x", 1);
  df__mp_put_str(&b, "r", 1);
  df__mp_put_str(&b, big, strlen(big));
  CHECK_EQ_INT(df_db_put(db, b.p, b.len, 0), DF_EVALIDATION);
  CHECK(strstr(df_db_errmsg(db), "attribute r") != NULL);
  CHECK(strstr(df_db_errmsg(db), "index by_g") != NULL);
  CHECK_EQ_UINT(entries(), 2001);
  df__buf_reset(&b);
  df__mp_put_map(&b, 4);
  df__mp_put_str(&b, "PK", 2);
  df__mp_put_str(&b, "k", 1);
  df__mp_put_str(&b, "SK", 2);
  df__mp_put_int(&b, 1);
  df__mp_put_str(&b, "g", 1);
  df__mp_put_str(&b, "x", 1);
  df__mp_put_str(&b, "r", 1);
  df__mp_put_str(&b, big, 1024);
  CHECK_EQ_INT(df_db_put(db, b.p, b.len, 0), DF_OK);
  CHECK_EQ_UINT(entries(), 2003); /* by_g and by_r */
  teardown();
}

/* A put works out its item's entry keys when it checks them and writes
 * those: each put of a transaction gets its own, also when the bytes are
 * rewritten in place between puts (same buffer, same length), after a put
 * refused by that check, and in a batch of puts of one key. */
static void test_entry_keys_per_put(void) {
  static char big[1030];
  df_txn *t;
  df_buf b2;
  df_batch_op ops[2];
  df_value pk;
  const void *at;
  if (!setup()) return;
  df__buf_init(&b2);
  CHECK_EQ_INT(df_txn_begin(db, DF_TXN_WRITE, 0, &t), DF_OK);
  item(&b, "even", 0, "aaaa", 1); /* was g = "same" */
  at = b.p;
  CHECK_EQ_INT(df_txn_put(t, b.p, b.len, NULL, NULL), DF_OK);
  item(&b, "even", 0, "bbbb", 1);
  CHECK(b.p == at); /* the same bytes' place */
  CHECK_EQ_INT(df_txn_put(t, b.p, b.len, NULL, NULL), DF_OK);
  /* refused by the check of by_g's sort key (too long), nothing written */
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = 0;
  fx_item(&b2, "PK", fx_str("even"), "SK", fx_int(2), "g", fx_str("cccc"), "r",
          fx_str(big), FX_END);
  CHECK_EQ_INT(df_txn_put(t, b2.p, b2.len, NULL, NULL), DF_EVALIDATION);
  item(&b, "even", 2, "dddd", 1); /* was g = "same" */
  CHECK_EQ_INT(df_txn_put(t, b.p, b.len, NULL, NULL), DF_OK);
  /* a batch: two puts of one key, the later one stays */
  item(&b2, "odd", 1, "eeee", 1);
  item(&b, "odd", 1, "ffff", 1);
  memset(ops, 0, sizeof ops);
  ops[0].item = b2.p;
  ops[0].len = b2.len;
  ops[1].item = b.p;
  ops[1].len = b.len;
  CHECK_EQ_INT(df_txn_write_batch(t, ops, 2, NULL), DF_OK);
  CHECK_EQ_INT(df_txn_commit(t), DF_OK);
  df_txn_free(t);
  pk = fx_str("aaaa");
  CHECK_EQ_UINT(count_query(db, id_g, &pk, 10, 0), 0);
  pk = fx_str("bbbb");
  CHECK_EQ_UINT(count_query(db, id_g, &pk, 10, 0), 1);
  pk = fx_str("cccc");
  CHECK_EQ_UINT(count_query(db, id_g, &pk, 10, 0), 0);
  pk = fx_str("dddd");
  CHECK_EQ_UINT(count_query(db, id_g, &pk, 10, 0), 1);
  pk = fx_str("eeee");
  CHECK_EQ_UINT(count_query(db, id_g, &pk, 10, 0), 0);
  pk = fx_str("ffff");
  CHECK_EQ_UINT(count_query(db, id_g, &pk, 10, 0), 1);
  pk = fx_str("same");
  CHECK_EQ_UINT(count_query(db, id_g, &pk, 100, 0), 997);
  CHECK_EQ_UINT(entries(), 2001);
  df__buf_free(&b2);
  teardown();
}

static void test_drop_and_backfill_with_progress(void) {
  df_index_def late;
  df_schema s;
  df_open_options o;
  df_check_report r;
  df_value pk;
  int code;
  if (!setup()) return;
  CHECK_EQ_INT(df_db_drop_index(db, "by_g"), DF_OK);
  CHECK_EQ_INT(df_db_index_find(db, "by_g", NULL), DF_ENOTFOUND);
  CHECK_EQ_INT(df_db_drop_index(db, "by_g"), DF_ENOTFOUND);
  CHECK_EQ_UINT(entries(), 1001);
  df_db_close(db);
  /* a new GSI at reopen is built from the items, with progress */
  memset(&late, 0, sizeof late);
  late.name = "late";
  late.kind = DF_GSI;
  late.pk = "g";
  late.projection = DF_PROJ_KEYS;
  memset(&s, 0, sizeof s);
  s.indexes = &late;
  s.n_indexes = 1;
  memset(&o, 0, sizeof o);
  o.schema = &s;
  o.progress = on_progress;
  code = df_db_open(dir, &o, &db);
  CHECK_EQ_INT(code, DF_OK);
  CHECK(progress_calls >= 2);
  CHECK_EQ_UINT(progress_total, 1002);
  CHECK_EQ_UINT(progress_last_done, 1002);
  CHECK_EQ_INT(df_db_index_find(db, "late", &id_g), DF_OK);
  CHECK_EQ_INT(df_db_index_find(db, "by_r", NULL), DF_OK);
  pk = fx_str("same");
  CHECK_EQ_UINT(count_query(db, id_g, &pk, 64, 0), 1000);
  CHECK_EQ_INT(df_db_check(db, &r), DF_OK);
  CHECK_EQ_UINT(r.missing_index + r.stale_index, 0);
  teardown();
}

int main(void) {
  if (!fx_root_make("test-index")) return 1;
  RUN_TEST(test_sparse_items_have_no_entry);
  RUN_TEST(test_entry_key_layout);
  RUN_TEST(test_paging_over_duplicates);
  RUN_TEST(test_delete_and_rollback);
  RUN_TEST(test_key_budget);
  RUN_TEST(test_entry_keys_per_put);
  RUN_TEST(test_drop_and_backfill_with_progress);
  fx_root_remove();
  return check_done("test_index");
}
