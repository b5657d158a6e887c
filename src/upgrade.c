/*
 * upgrade.c -- bring a database written in an older on-disk format to the
 * current one (DF_FORMAT_VERSION), in place, at open.
 *
 * Each step N-1 -> N is a function of its own, run in order inside one
 * write transaction with the new schema record, so an upgrade is all or
 * nothing: a crash or an error part-way leaves the database in its old
 * format, as it was, and the next writable open tries again.  Item bytes
 * (MessagePack) are never rewritten: a step re-derives what the format
 * changed from them.
 *
 * Format 1 -> 2: the key encoding of numbers (binary floating point ->
 * decimal), hashes of numeric partition values with it, and the derived
 * sub-databases.  Every item is moved to its new key (through the index
 * sub-database, emptied first, as scratch space, so no new key can land
 * on an old one not yet moved), then every index and the expiry entries
 * are rebuilt.  Two items whose old keys differed only as binary numbers
 * that are one decimal (the float 2^64 and the integer
 * 18446744073709552000) cannot both keep their keys: the upgrade then
 * fails, naming them, and changes nothing.
 *
 * Formats 2 and 3 -> 4: a float that is an integer of the int64 range
 * beyond 2^53 in magnitude (the float 2^60) was keyed by its shortest
 * decimal (1152921504606847000) and is now keyed by that integer
 * (1152921504606846976, the key of the integer 1 << 60), so that a key
 * is found whichever Lua wrote it (decimal.c).  The item bytes tell these
 * floats from integers (MessagePack float64 against int), so the step
 * reads every item: when no key attribute of any item (table or index
 * key) holds such a float, which is the rule, nothing is rewritten;
 * otherwise every item is re-keyed and the derived sub-databases rebuilt,
 * as from format 1.  Two items keyed apart before (the float 2^60 and the
 * integer 1 << 60, written by different Luas) are one key now: the
 * upgrade then fails, naming them, and changes nothing.
 *
 * Invariant: after a committed upgrade the database is exactly what the
 * current release would have written from the same items.
 */
#include <stdio.h>
#include <string.h>

#include "upgrade.h"
#include "txn.h"

typedef struct upgrade {
  df_env *env;
  int from;
  df_schema_owned next;
} upgrade;

static int failed(df_write *w, int code, const char *what) {
  if (code == DF_ERETRY) return code;
  return df__fmt(w->errmsg, sizeof w->errmsg, code, "%s: %s", what,
                 df_strerror(code));
}

/* Copy every entry of `from` into `to` (emptied first) and empty `from`. */
static int move_all(df_write *w, df_sub from, df_sub to) {
  df_kvcursor *c;
  df_bytes k, v;
  int code = df__kv_clear(&w->kv, to);
  if (code != DF_OK) return failed(w, code, "cannot clear scratch space");
  if ((code = df__kv_cursor(&w->kv, from, &c)) != DF_OK)
    return failed(w, code, "cannot read the items");
  for (code = df__kv_step(c, DF_KV_FIRST, &k, &v); code == DF_OK;
       code = df__kv_step(c, DF_KV_NEXT, &k, &v)) {
    code = df__kv_put(&w->kv, to, k.p, k.n, v.p, v.n);
    if (code != DF_OK) break;
  }
  df__kv_cursor_close(c);
  if (code != DF_ENOTFOUND) return failed(w, code, "cannot copy the items");
  code = df__kv_clear(&w->kv, from);
  return code == DF_OK ? DF_OK : failed(w, code, "cannot clear the items");
}

/* A key value for a message: a string quoted (cut short), a number in
 * full. */
static void describe(const df_value *v, char *buf, size_t cap) {
  df_dec d;
  if (v->type == DF_TSTR || v->type == DF_TBIN) {
    snprintf(buf, cap, "\"%.*s%s\"", (int)(v->n > 40 ? 40 : v->n), v->s,
             v->n > 40 ? "..." : "");
  } else if (df__dec_from_value(v, &d) == DF_OK) {
    df__dec_str(&d, buf, cap);
    if (v->type == DF_TFLOAT && cap > strlen(buf) + 9) strcat(buf, " (float)");
  } else {
    snprintf(buf, cap, "?");
  }
}

/* Move every item to the key this release gives it, then rebuild the
 * indexes and the expiry entries from the items. */
static int rekey_all(df_write *w) {
  const df_schema *s = w->schema;
  df_kvcursor *c;
  df_bytes k, v, there;
  df_key key;
  unsigned char nk[DF_KEY_MAX];
  size_t nkn, i;
  char err[DF_MSG_MAX];
  int code;
  if ((code = move_all(w, DF_SUB_ITEMS, DF_SUB_INDEX)) != DF_OK) return code;
  if ((code = df__kv_cursor(&w->kv, DF_SUB_INDEX, &c)) != DF_OK)
    return failed(w, code, "cannot read the items");
  for (code = df__kv_step(c, DF_KV_FIRST, &k, &v); code == DF_OK;
       code = df__kv_step(c, DF_KV_NEXT, &k, &v)) {
    code = df__item_key_of(s, v.p, v.n, &key, err, sizeof err);
    if (code == DF_OK) code = df__item_key(s, &key, nk, &nkn, err, sizeof err);
    if (code != DF_OK) {
      df__fmt(w->errmsg, sizeof w->errmsg, DF_ECORRUPT,
              "a stored item has no valid key (%s)", err);
      code = DF_ECORRUPT;
      break;
    }
    if (df__kv_get(&w->kv, DF_SUB_ITEMS, nk, nkn, &there) == DF_OK) {
      df_key other;
      char a[64], b[64], c2[64], d2[64];
      df__item_key_of(s, there.p, there.n, &other, err, sizeof err);
      describe(&key.pk, a, sizeof a);
      describe(&other.pk, b, sizeof b);
      describe(&key.sk, c2, sizeof c2);
      describe(&other.sk, d2, sizeof d2);
      df__fmt(w->errmsg, sizeof w->errmsg, DF_EVALIDATION,
              "the items with keys (%s, %s) and (%s, %s) are one key now: "
              "numbers compare as decimals (a float by the integer it is in "
              "the int64 range, else by its shortest decimal), and these are "
              "equal; delete or re-key one of them with the release that "
              "wrote the database",
              a, s->sk ? c2 : "-", b, s->sk ? d2 : "-");
      code = DF_EVALIDATION;
      break;
    }
    code = df__kv_put(&w->kv, DF_SUB_ITEMS, nk, nkn, v.p, v.n);
    if (code != DF_OK) break;
  }
  df__kv_cursor_close(c);
  if (code != DF_ENOTFOUND)
    return code == DF_ECORRUPT || code == DF_EVALIDATION
               ? code
               : failed(w, code, "cannot move the items");
  /* the derived sub-databases, from the items under their new keys */
  if ((code = df__kv_clear(&w->kv, DF_SUB_INDEX)) != DF_OK)
    return failed(w, code, "cannot clear the indexes");
  for (i = 0; i < s->n_indexes; i++)
    if ((code = df__index_build(w, &s->indexes[i], NULL, NULL)) != DF_OK)
      return code;
  return df__expiry_rebuild(w);
}

#define TWO53 9007199254740992.0
#define TWO63 9223372036854775808.0

/* Does the attribute `name` of the item hold a float that formats 2 and
 * 3 keyed by its shortest decimal and format 4 by its integer? */
static int rekeyed_float(const df_bytes *item, const char *name) {
  df_value v;
  if (!name || df__mp_map_find(item->p, item->n, name, strlen(name), &v, NULL,
                               NULL) != 1)
    return 0;
  /* every double of that magnitude is an integer */
  return v.type == DF_TFLOAT &&
         ((v.f >= TWO53 && v.f < TWO63) || (v.f <= -TWO53 && v.f >= -TWO63));
}

static int v3_to_v4(df_write *w) {
  const df_schema *s = w->schema;
  df_kvcursor *c;
  df_bytes k, v;
  size_t i;
  int code, found = 0;
  if ((code = df__kv_cursor(&w->kv, DF_SUB_ITEMS, &c)) != DF_OK)
    return failed(w, code, "cannot read the items");
  for (code = df__kv_step(c, DF_KV_FIRST, &k, &v); code == DF_OK && !found;
       code = df__kv_step(c, DF_KV_NEXT, &k, &v)) {
    found = rekeyed_float(&v, s->pk) || rekeyed_float(&v, s->sk);
    for (i = 0; i < s->n_indexes && !found; i++)
      found = rekeyed_float(&v, s->indexes[i].pk) ||
              rekeyed_float(&v, s->indexes[i].sk);
  }
  df__kv_cursor_close(c);
  if (found) return rekey_all(w);
  return code == DF_ENOTFOUND ? DF_OK
                              : failed(w, code, "cannot read the items");
}

static int upgrade_body(df_txn *t, void *ud) {
  upgrade *u = ud;
  df_write *w = df__txn_write(t);
  int code;
  char err[DF_MSG_MAX];
  df__schema_free(&u->next);
  /* the format as stored now: another process may have upgraded */
  code = df__env_schema_load(&w->kv, &u->next, err, sizeof err);
  if (code != DF_OK) {
    df__fmt(w->errmsg, sizeof w->errmsg, code, "%s", err);
    return df__txn_doom(t, code);
  }
  u->from = u->next.format;
  if (u->from >= DF_FORMAT_VERSION) return DF_OK;
  code = DF_OK;
  if (u->from < 2)
    code = rekey_all(w); /* format 1 -> 2, and so to 4 */
  else if (u->from < 4)
    code = v3_to_v4(w);
  if (code == DF_OK) {
    u->next.format = DF_FORMAT_VERSION;
    code = df__env_schema_store(&w->kv, &u->next.s);
    if (code != DF_OK) failed(w, code, "cannot store the schema");
  }
  if (code == DF_OK && df__env_schema_reserve(u->env) != DF_OK)
    code = df__fmt(w->errmsg, sizeof w->errmsg, DF_ENOMEM, "out of memory");
  if (code == DF_OK) return DF_OK;
  if (code != DF_ERETRY) {
    char why[DF_MSG_MAX];
    snprintf(why, sizeof why, "%s", w->errmsg);
    df__fmt(w->errmsg, sizeof w->errmsg, code,
            "cannot upgrade the database from format %d to %d: %s", u->from,
            DF_FORMAT_VERSION, why);
  }
  return df__txn_doom(t, code);
}

int df__upgrade_open(df_db *db) {
  df_env *e = db->env;
  upgrade u;
  int code;
  if (e->schema.format >= DF_FORMAT_VERSION) return DF_OK;
  if (e->readonly)
    return df__db_err(db, DF_EVERSION,
                      "the database was written by an older dynafile (format "
                      "%d; this release reads format %d): open it once "
                      "without readonly to upgrade it",
                      e->schema.format, DF_FORMAT_VERSION);
  memset(&u, 0, sizeof u);
  u.env = e;
  code = df__txn_run(db, DF_TXN_WRITE, 0, upgrade_body, &u);
  if (code == DF_OK && u.next.blob) df__env_schema_adopt(e, &u.next);
  df__schema_free(&u.next);
  return code;
}
