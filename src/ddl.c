/*
 * ddl.c -- schema changes: what an open's schema adds to the stored one
 * (a TTL attribute, new global indexes, built from the items), setting,
 * changing or clearing the TTL attribute, dropping an index, and the
 * change-log settings.
 *
 * Invariants:
 *  - Every change is one write transaction (through txn.c's retry loop):
 *    the new schema record, the entries it implies and the removal of the
 *    old ones commit together or not at all.
 *  - The change is computed inside the transaction from the schema as
 *    stored then (the transaction's begin refreshed it), so concurrent
 *    changes from other processes are never lost.
 *  - The schema in force changes only after the commit, through env.c's
 *    adopt, whose memory was reserved before committing.
 */
#include <stdio.h>
#include <string.h>

#include "ddl.h"
#include "txn.h"
#include "upgrade.h"

/* ------------------------------------------------------ open's schema */

typedef struct reconcile {
  df_env *env;
  const df_open_options *o;
  df_schema_owned next;
  int changed;
} reconcile;

static int reconcile_body(df_txn *t, void *ud) {
  reconcile *r = ud;
  df_write *w = df__txn_write(t);
  const df_schema *have = w->schema;
  df_schema_change ch;
  size_t i;
  int code;
  df__schema_free(&r->next);
  r->changed = 0;
  code = df__schema_merge(have, r->o->schema, &r->next, &ch, w->errmsg,
                          sizeof w->errmsg);
  if (code != DF_OK || !ch.changed) return code;
  w->schema = &r->next.s; /* the transaction writes with the new schema */
  code = df__env_schema_store(&w->kv, &r->next.s);
  if (code != DF_OK)
    df__fmt(w->errmsg, sizeof w->errmsg, code, "cannot store the schema: %s",
            df_strerror(code));
  if (code == DF_OK && ch.new_ttl) code = df__expiry_rebuild(w);
  /* Projected index entries carry the TTL value: rebuild them. */
  if (code == DF_OK && ch.new_ttl)
    code = df__index_rebuild_projected(w, ch.n_old);
  for (i = ch.n_old; code == DF_OK && i < r->next.s.n_indexes; i++)
    code =
        df__index_build(w, &r->next.idx[i], r->o->progress, r->o->progress_ud);
  if (code == DF_OK && df__env_schema_reserve(r->env) != DF_OK)
    code = df__fmt(w->errmsg, sizeof w->errmsg, DF_ENOMEM, "out of memory");
  if (code == DF_OK) {
    r->changed = 1;
    return DF_OK;
  }
  if (code != DF_ERETRY) {
    char why[DF_MSG_MAX];
    snprintf(why, sizeof why, "%s", w->errmsg);
    df__fmt(w->errmsg, sizeof w->errmsg, code,
            "cannot apply the schema change: %s", why);
  }
  return df__txn_doom(t, code);
}

/* Apply what the caller's schema adds to the stored one.  Another handle
 * of this process may have the database open: it sees the new schema as
 * soon as it is adopted, and its readers keep the old one's strings. */
static int open_schema(df_db *db, const df_open_options *o) {
  df_env *e = db->env;
  reconcile r;
  df_schema_owned probe;
  df_schema_change ch;
  char err[DF_MSG_MAX];
  int code;
  if (o->schema == NULL) return DF_OK;
  /* Most opens change nothing: find out without a write transaction. */
  code =
      df__schema_merge(&e->schema.s, o->schema, &probe, &ch, err, sizeof err);
  df__schema_free(&probe);
  if (code != DF_OK) return df__db_err(db, code, "%s", err);
  if (!ch.changed) return DF_OK;
  if (e->readonly)
    return df__db_err(db, DF_EREADONLY,
                      "the schema asks for changes (new TTL attribute or "
                      "index) but the database is opened read-only");
  memset(&r, 0, sizeof r);
  r.env = e;
  r.o = o;
  code = df__txn_run(db, DF_TXN_WRITE, 0, reconcile_body, &r);
  if (code == DF_OK && r.changed) df__env_schema_adopt(e, &r.next);
  df__schema_free(&r.next);
  return code;
}

/* ------------------------------------------------------------ change log */

typedef struct stream_settings {
  uint64_t keep;
  double secs;
} stream_settings;

static int stream_body(df_txn *t, void *ud) {
  stream_settings *s = ud;
  df_write *w = df__txn_write(t);
  int code = df__env_stream_settings_store(&w->kv, s->keep, s->secs);
  if (code == DF_OK) return DF_OK;
  df__fmt(w->errmsg, sizeof w->errmsg, code,
          "cannot store the change-log settings: %s", df_strerror(code));
  return df__txn_doom(t, code);
}

static int open_stream(df_db *db, const df_open_options *o) {
  df_kv kv;
  stream_settings want, have;
  int code;
  if (!o->stream) return DF_OK;
  if (!(o->stream_keep_seconds >= 0) || o->stream_keep_seconds > 1e15)
    return df__db_err(db, DF_EINVAL,
                      "stream keep_seconds must be a non-negative number");
  if ((code = df__db_read(db, &kv)) != DF_OK) return code;
  code = df__env_stream_settings(&kv, &have.keep, &have.secs);
  df__db_read_end(db, &kv);
  if (code != DF_OK)
    return df__db_err(db, code, "cannot read the change-log settings");
  want.keep = o->stream_keep;
  want.secs = o->stream_keep_seconds;
  if (have.keep == want.keep && have.secs == want.secs) return DF_OK;
  if (db->env->readonly)
    return df__db_err(db, DF_EREADONLY,
                      "cannot change the change-log settings of a database "
                      "opened read-only");
  return df__txn_run(db, DF_TXN_WRITE, 0, stream_body, &want);
}

int df__ddl_open(df_db *db, const df_open_options *o) {
  int code = df__upgrade_open(db);
  if (code == DF_OK) code = open_schema(db, o);
  if (code == DF_OK) code = open_stream(db, o);
  return code;
}

/* ------------------------------------------------------------ drop index */

typedef struct drop {
  df_env *env;
  const char *name;
  df_schema_owned next;
} drop;

static int drop_body(df_txn *t, void *ud) {
  drop *d = ud;
  df_write *w = df__txn_write(t);
  df_schema copy = *w->schema; /* current: the begin refreshed it */
  df_index_def defs[DF_MAX_INDEXES];
  size_t i, n;
  unsigned id = 0;
  int code;
  df__schema_free(&d->next);
  for (i = n = 0; i < copy.n_indexes; i++) {
    if (strcmp(copy.indexes[i].name, d->name) == 0)
      id = copy.indexes[i].id;
    else
      defs[n++] = copy.indexes[i];
  }
  if (id == 0)
    return df__fmt(w->errmsg, sizeof w->errmsg, DF_ENOTFOUND,
                   "no index named %s", d->name);
  copy.indexes = defs;
  copy.n_indexes = n;
  code = df__index_clear(w, id);
  if (code == DF_OK)
    code = df__schema_copy(&copy, &d->next, w->errmsg, sizeof w->errmsg);
  if (code == DF_OK) {
    code = df__env_schema_store(&w->kv, &d->next.s);
    if (code != DF_OK)
      df__fmt(w->errmsg, sizeof w->errmsg, code, "%s", df_strerror(code));
  }
  /* adopting the new schema after the commit must not fail */
  if (code == DF_OK && df__env_schema_reserve(d->env) != DF_OK)
    code = df__fmt(w->errmsg, sizeof w->errmsg, DF_ENOMEM, "out of memory");
  if (code == DF_OK) return DF_OK;
  if (code != DF_ERETRY) {
    char why[DF_MSG_MAX];
    snprintf(why, sizeof why, "%s", w->errmsg);
    df__fmt(w->errmsg, sizeof w->errmsg, code, "cannot drop index %s: %s",
            d->name, why);
  }
  return df__txn_doom(t, code);
}

int df_db_drop_index(df_db *db, const char *name) {
  drop d;
  int code;
  if ((code = df__db_check(db)) != DF_OK) return code;
  if (name == NULL) return df__db_err(db, DF_EINVAL, "index name is NULL");
  memset(&d, 0, sizeof d);
  d.env = db->env;
  d.name = name;
  code = df__txn_run(db, DF_TXN_WRITE, 0, drop_body, &d);
  if (code == DF_OK) df__env_schema_adopt(db->env, &d.next);
  df__schema_free(&d.next);
  return code;
}

/* ------------------------------------------------------------ set TTL */

typedef struct set_ttl {
  df_env *env;
  const char *attr;
  df_schema_owned next;
  int changed;
} set_ttl;

static int set_ttl_body(df_txn *t, void *ud) {
  set_ttl *st = ud;
  df_write *w = df__txn_write(t);
  df_schema copy = *w->schema; /* current: the begin refreshed it */
  int code;
  df__schema_free(&st->next);
  st->changed = 0;
  if ((copy.ttl_attr == NULL && st->attr == NULL) ||
      (copy.ttl_attr && st->attr && strcmp(copy.ttl_attr, st->attr) == 0))
    return DF_OK;
  copy.ttl_attr = st->attr;
  code = df__schema_copy(&copy, &st->next, w->errmsg, sizeof w->errmsg);
  if (code != DF_OK) return code;
  w->schema = &st->next.s;
  code = df__env_schema_store(&w->kv, &st->next.s);
  if (code != DF_OK)
    df__fmt(w->errmsg, sizeof w->errmsg, code, "cannot store the schema: %s",
            df_strerror(code));
  /* every expiry entry, and index entries carrying the TTL value */
  if (code == DF_OK) code = df__expiry_rebuild(w);
  if (code == DF_OK)
    code = df__index_rebuild_projected(w, st->next.s.n_indexes);
  if (code == DF_OK && df__env_schema_reserve(st->env) != DF_OK)
    code = df__fmt(w->errmsg, sizeof w->errmsg, DF_ENOMEM, "out of memory");
  if (code == DF_OK) {
    st->changed = 1;
    return DF_OK;
  }
  return df__txn_doom(t, code);
}

int df_db_set_ttl(df_db *db, const char *attr) {
  set_ttl st;
  int code;
  if ((code = df__db_check(db)) != DF_OK) return code;
  if (attr && attr[0] == '\0')
    return df__db_err(db, DF_EVALIDATION,
                      "ttl must be a non-empty attribute name");
  memset(&st, 0, sizeof st);
  st.env = db->env;
  st.attr = attr;
  code = df__txn_run(db, DF_TXN_WRITE, 0, set_ttl_body, &st);
  if (code == DF_OK && st.changed) df__env_schema_adopt(db->env, &st.next);
  df__schema_free(&st.next);
  return code;
}
