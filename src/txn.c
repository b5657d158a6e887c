/*
 * txn.c -- transactions: begin, commit, abort; the single-item operations
 * get, put and delete; the TTL purge; the hook every change goes through
 * (indexes, expiry entries, events, the change log); and the one retry
 * loop for writes that meet a full map.
 *
 * Invariants:
 *  - A write transaction changes the item, every index entry, the expiry
 *    entry and the change-log record of that item together, or nothing:
 *    after_change runs the maintainers (write.h) for every change, inside
 *    the transaction.
 *  - A failure part-way through a change dooms the transaction (doom() is
 *    the one place that does): later operations fail and the commit rolls
 *    back.  A failure found before anything was written (a bad item or
 *    key) leaves it usable.
 *  - An item whose TTL attribute is below the transaction's `now` does not
 *    exist for readers; a write that meets one deletes it (recording a
 *    DELETE event marked expired) before going on.
 *  - At most one write transaction per thread per database (env.c's
 *    writer mark): a second one is DF_EBUSY, never a self-deadlock.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handle.h"
#include "ttl.h"
#include "txn.h"

/* A change recorded for listeners: offsets into t->events_buf. */
typedef struct df_change {
  int action, expired;
  size_t old_off, old_len, new_off, new_len; /* old_off SIZE_MAX: none */
  uint64_t seq;
} df_change;

struct df_txn {
  df_db *db;
  df_env *env;
  struct MDB_txn *txn;
  unsigned flags;
  pthread_t thread;           /* the thread that began it */
  int live;                   /* begun, not yet committed or aborted */
  int failed;                 /* doomed by a failure part-way: roll back */
  int map_full;               /* doomed by a full map: grow and run again */
  char doomed_by[DF_MSG_MAX]; /* the message of the failure that doomed it */
  df_write w; /* kv view, schema, now, errmsg, change-log state */
  df_buf old; /* copy of the replaced item for callers */
  df_buf events_buf;
  df_change *changes;
  size_t n_changes, cap_changes;
};

static int txn_err(df_txn *t, int code, const char *fmt, ...) DF__PRINTF(3, 4);
static int txn_err(df_txn *t, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->w.errmsg, sizeof t->w.errmsg, fmt, ap);
  va_end(ap);
  return code;
}

const char *df_txn_errmsg(const df_txn *t) {
  return t ? t->w.errmsg : df_strerror(DF_ENOMEM);
}

df_write *df__txn_write(df_txn *t) {
  return &t->w;
}

int df__txn_doom(df_txn *t, int code) {
  if (code == DF_ERETRY) {
    t->map_full = 1;
  } else if (!t->failed) {
    t->failed = 1;
    snprintf(t->doomed_by, sizeof t->doomed_by, "%s",
             t->w.errmsg[0] ? t->w.errmsg : df_strerror(code));
  }
  return code;
}

static int doom(df_txn *t, int code) {
  return df__txn_doom(t, code);
}

/* A failed write to the store: dooms the transaction. */
static int store_failed(df_txn *t, int code, const char *what) {
  if (code == DF_ERETRY)
    txn_err(t, code,
            "the database map is full; it grows at commit: run the "
            "transaction again");
  else
    txn_err(t, code, "%s failed: %s", what, df_strerror(code));
  return doom(t, code);
}

/* ----------------------------------------------- long partition keys */

/* Before a put under a hashed partition key: the first item already in
 * that partition (if any) must carry the same partition-key value; every
 * item of a partition passed this check, so one suffices (see item.c). */
static int partition_check(df_txn *t, const unsigned char *k,
                           const df_value *pk) {
  df_kvcursor *c;
  df_bytes mk, mv;
  size_t plen = 8 + 17; /* hash64 | DF_TAG_HASHED + 16 hash bytes */
  int code;
  code = df__kv_cursor(&t->w.kv, DF_SUB_ITEMS, &c);
  if (code != DF_OK)
    return txn_err(t, code, "cannot open cursor: %s", df_strerror(code));
  mk.p = k;
  mk.n = plen;
  code = df__kv_step(c, DF_KV_SEEK, &mk, &mv);
  if (code == DF_OK && mk.n >= plen && memcmp(mk.p, k, plen) == 0 &&
      !df__item_pk_is(t->w.schema, mv.p, mv.n, pk))
    code = txn_err(t, DF_EVALIDATION,
                   "key attribute %s: this %zu-byte value has the same hash "
                   "as another partition-key value already stored; it "
                   "cannot be stored (use a different value)",
                   t->w.schema->pk, pk->n);
  else if (code == DF_ENOTFOUND || code == DF_OK)
    code = DF_OK;
  else
    code = txn_err(t, code, "read failed: %s", df_strerror(code));
  df__kv_cursor_close(c);
  return code;
}

/* ---------------------------------------------------------- transactions */

static int write_regrow(df_write *w);

int df_txn_begin(df_db *db, unsigned flags, double now, df_txn **out) {
  df_txn *t;
  df_env *e;
  df_redo_rec *rec = NULL;
  int code;
  int write = (flags & DF_TXN_WRITE) != 0;
  char err[DF_MSG_MAX];
  if (out == NULL) return DF_EINVAL;
  *out = NULL;
  if ((code = df__db_check(db)) != DF_OK) return code;
  e = db->env;
  if (write && e->readonly)
    return df__db_err(db, DF_EREADONLY, "the database is opened read-only");
  if (write && df__env_writer_held(e))
    return df__db_err(db, DF_EBUSY,
                      "the write transaction of this database is held by "
                      "this thread (a write from inside a transaction, an "
                      "update function or a condition?); write through the "
                      "transaction, or after it ends");
  t = df__malloc(sizeof *t);
  if (t == NULL) return df__db_err(db, DF_ENOMEM, "out of memory");
  memset(t, 0, sizeof *t);
  t->db = db;
  __atomic_add_fetch(&db->txns, 1, __ATOMIC_ACQ_REL);
  t->env = e;
  t->flags = flags;
  t->thread = pthread_self();
  t->w.now = now;
  t->w.origin = db->origin ? db->origin : e->origin;
  df__buf_init(&t->w.scratch);
  df__buf_init(&t->w.checked);
  df__buf_init(&t->old);
  df__buf_init(&t->events_buf);
  if (!write) {
    code = df__db_read(db, &t->w.kv);
    if (code != DF_OK) {
      __atomic_sub_fetch(&db->txns, 1, __ATOMIC_ACQ_REL);
      df__free(t);
      return code;
    }
    t->txn = t->w.kv.txn;
    t->w.schema = &e->schema.s;
    t->live = 1;
    *out = t;
    return DF_OK;
  }
  code = df__env_write_begin(e, &t->txn, &rec, err, sizeof err);
  if (code != DF_OK) {
    __atomic_sub_fetch(&db->txns, 1, __ATOMIC_ACQ_REL);
    df__free(t);
    return df__db_err(db, code, "%s", err);
  }
  df__env_kv(e, t->txn, &t->w.kv);
  t->w.kv.rec = rec; /* every write is logged (commit.c) */
  t->w.regrow = write_regrow;
  t->live = 1;
  /* Another process may have added or dropped an index: write with the
   * stored schema, so every index stays in step. */
  if ((code = df__env_schema_refresh(e, &t->w.kv)) != DF_OK) {
    df_txn_free(t);
    return df__db_err(db, code, "cannot read the stored schema: %s",
                      df_strerror(code));
  }
  t->w.schema = &e->schema.s;
  *out = t;
  return DF_OK;
}

/* End the LMDB side of a transaction (commit already done or abort).  A
 * read transaction goes back through the handle: it may be its reusable
 * one, which must be reset and kept, not aborted (freed). */
static int finish(df_txn *t, int grow) {
  int code = DF_OK;
  if (!t->live) return DF_OK;
  t->live = 0;
  if (!(t->flags & DF_TXN_WRITE))
    df__db_read_end(t->db, &t->w.kv);
  else
    code = df__env_write_abort(t->env, t->txn, t->thread, grow, t->w.errmsg,
                               sizeof t->w.errmsg);
  t->txn = NULL;
  return code;
}

int df_txn_commit(df_txn *t) {
  int code;
  char err[DF_MSG_MAX];
  if (t == NULL) return DF_EINVAL;
  if (!t->live) return txn_err(t, DF_EINVAL, "transaction is finished");
  if (t->db->fork_gen != df__fork_generation()) {
    t->live = 0; /* never touch LMDB state inherited through fork */
    return txn_err(t, DF_EFORKED, "transaction used in a forked child");
  }
  if (!(t->flags & DF_TXN_WRITE)) {
    finish(t, 0);
    return DF_OK;
  }
  if (t->map_full) return finish(t, 1); /* DF_ERETRY, or DF_EBUSY */
  if (t->failed) {
    finish(t, 0);
    return txn_err(t, DF_EIO,
                   "rolled back: an earlier write in the transaction failed "
                   "part-way (%s)",
                   t->doomed_by);
  }
  t->live = 0;
  code = df__env_write_commit(t->env, t->txn, t->db->sync, t->thread, err,
                              sizeof err);
  t->txn = NULL;
  if (code != DF_OK) return txn_err(t, code, "%s", err);
  return DF_OK;
}

void df_txn_free(df_txn *t) {
  df_db *db;
  if (t == NULL) return;
  /* A write that met a full map told its caller to retry; a caller that
   * gives up on the transaction (rather than committing it) frees it, so
   * the map grows here too, or the retry would meet the same full map. */
  if (t->live && t->db->fork_gen == df__fork_generation())
    finish(t, t->map_full);
  df__buf_free(&t->w.scratch);
  df__buf_free(&t->w.checked);
  df__buf_free(&t->old);
  df__buf_free(&t->events_buf);
  df__free(t->changes);
  db = t->db;
  df__free(t);
  if (__atomic_sub_fetch(&db->txns, 1, __ATOMIC_ACQ_REL) == 0 &&
      db->close_pending)
    df__db_release(db);
}

static int check_live(df_txn *t, int write) {
  if (t == NULL) return DF_EINVAL;
  if (!t->live) return txn_err(t, DF_EINVAL, "transaction is finished");
  if (t->db->fork_gen != df__fork_generation())
    return txn_err(t, DF_EFORKED, "transaction used in a forked child");
  if (write && !(t->flags & DF_TXN_WRITE))
    return txn_err(t, DF_EREADONLY, "read transaction cannot write");
  if (t->map_full)
    return txn_err(t, DF_ERETRY, "the database map is full; retry");
  if (t->failed)
    return txn_err(t, DF_EIO,
                   "the transaction can only be rolled back: an earlier write "
                   "in it failed part-way (%s)",
                   t->doomed_by);
  return DF_OK;
}

/* ---------------------------------------------------------------- events */

/* Record one change: as an event for listeners (DF_TXN_EVENTS) and in
 * the change log (when it is on). */
static int record(df_txn *t, int action, int expired, const void *old,
                  size_t old_len, const void *new_item, size_t new_len,
                  int logged) {
  df_change local, *c = &local;
  int events = (t->flags & DF_TXN_EVENTS) != 0;
  int code;
  if (events && t->n_changes == t->cap_changes) {
    size_t cap = t->cap_changes ? t->cap_changes * 2 : 16;
    df_change *n = df__realloc(t->changes, cap * sizeof *n);
    if (n == NULL) return txn_err(t, DF_ENOMEM, "out of memory");
    t->changes = n;
    t->cap_changes = cap;
  }
  if (events) c = &t->changes[t->n_changes];
  memset(c, 0, sizeof *c);
  c->action = action;
  c->expired = expired;
  c->old_off = c->new_off = (size_t)-1;
  if (events && old) {
    c->old_off = t->events_buf.len;
    c->old_len = old_len;
    df__buf_append(&t->events_buf, old, old_len);
  }
  if (events && new_item) {
    c->new_off = t->events_buf.len;
    c->new_len = new_len;
    df__buf_append(&t->events_buf, new_item, new_len);
  }
  if (t->events_buf.failed) return txn_err(t, DF_ENOMEM, "out of memory");
  if (logged) {
    code = df__stream_append(&t->w, action, expired, old, old_len, new_item,
                             new_len, &c->seq);
    if (code != DF_OK) return code;
  }
  if (events) t->n_changes++;
  return DF_OK;
}

size_t df_txn_event_count(const df_txn *t) {
  return t ? t->n_changes : 0;
}

int df_txn_event(const df_txn *t, size_t i, df_event *ev) {
  const df_change *c;
  if (t == NULL || ev == NULL || i >= t->n_changes) return DF_EINVAL;
  c = &t->changes[i];
  ev->action = c->action;
  ev->expired = c->expired;
  ev->seq = c->seq;
  ev->old = c->old_off == (size_t)-1 ? NULL : t->events_buf.p + c->old_off;
  ev->old_len = c->old_len;
  ev->new_item = c->new_off == (size_t)-1 ? NULL : t->events_buf.p + c->new_off;
  ev->new_len = c->new_len;
  return DF_OK;
}

/* Called for every change, after the item itself was written or
 * deleted: indexes, expiry, events and the change log.  Any failure dooms
 * the transaction (the item is already changed). */
static int after_change(df_txn *t, const unsigned char *k, size_t klen,
                        int action, int expired, const void *old,
                        size_t old_len, const void *new_item, size_t new_len) {
  int code;
  code = df__index_apply(&t->w, k, old, old_len, new_item, new_len);
  if (code == DF_OK)
    code = df__expiry_apply(&t->w, k, klen, old, old_len, new_item, new_len);
  if (code == DF_OK) {
    int logged = df__stream_enabled(&t->w);
    if (logged < 0)
      code = logged;
    else if (logged || (t->flags & DF_TXN_EVENTS))
      code =
          record(t, action, expired, old, old_len, new_item, new_len, logged);
  }
  return code == DF_OK ? DF_OK : doom(t, code);
}

/* Delete the item stored under k whose bytes are `old`, with its
 * derived entries and its event. */
static int remove_item(df_txn *t, const unsigned char *k, size_t klen,
                       const void *old, size_t old_len, int expired) {
  int code = df__kv_del(&t->w.kv, DF_SUB_ITEMS, k, klen);
  if (code != DF_OK) return store_failed(t, code, "delete");
  return after_change(t, k, klen, DF_EV_DELETE, expired, old, old_len, NULL, 0);
}

/* Look up the stored item under k; copies it into t->old when found
 * (the map's bytes may move at the next write).  Expired items are
 * removed (with their event) and reported absent. */
static int load_old(df_txn *t, const unsigned char *k, size_t klen,
                    const df_key *key, int *found, int *collides) {
  df_bytes v;
  int code;
  *found = 0;
  if (collides) *collides = 0;
  code = df__kv_get(&t->w.kv, DF_SUB_ITEMS, k, klen, &v);
  if (code == DF_ENOTFOUND) return DF_OK;
  if (code != DF_OK)
    return txn_err(t, code, "read failed: %s", df_strerror(code));
  if (!df__item_key_is(t->w.schema, k, klen, v.p, v.n, key)) {
    if (collides) *collides = 1;
    return DF_OK; /* another value's item under a colliding hash */
  }
  df__buf_reset(&t->old);
  if (df__buf_append(&t->old, v.p, v.n) != 0)
    return txn_err(t, DF_ENOMEM, "out of memory");
  if (df__item_expired(t->w.schema, t->old.p, t->old.len, t->w.now))
    return remove_item(t, k, klen, t->old.p, t->old.len, 1);
  *found = 1;
  return DF_OK;
}

static int build_key(df_txn *t, const df_key *key, unsigned char *k,
                     size_t *klen) {
  return df__item_key(t->w.schema, key, k, klen, t->w.errmsg,
                      sizeof t->w.errmsg);
}

/* ------------------------------------------------- a full map, in place */

/* Where a write operation started: the transaction's redo record, its
 * events and its change-log numbering.  When the operation meets a full
 * map, the transaction is rebuilt as of that point in a bigger map (the
 * writer lock kept, so nothing else comes in between: env.c), and the
 * operation runs again -- the caller and its code (a Lua transaction
 * function, an update function) never see it and never run twice. */
typedef struct op_mark {
  uint32_t n_ops;
  size_t rec_len, n_changes, events_len;
  uint64_t next_seq;
} op_mark;

static void mark_take(const df_txn *t, op_mark *m) {
  const df_redo_rec *r = t->w.kv.rec;
  m->n_ops = r ? r->n_ops : 0;
  m->rec_len = r ? r->buf.len : 0;
  m->n_changes = t->n_changes;
  m->events_len = t->events_buf.len;
  m->next_seq = t->w.next_seq;
}

/* The operation since m met a full map (the transaction is doomed with
 * DF_ERETRY): grow, rebuild, and say whether to run it again (DF_OK) or
 * why the map could not grow (the transaction stays doomed). */
static int regrow(df_txn *t, const op_mark *m) {
  int code;
  if (t == NULL || !t->live || !t->map_full || !(t->flags & DF_TXN_WRITE) ||
      t->w.kv.rec == NULL)
    return DF_ERETRY;
  code = df__env_write_regrow(t->env, &t->txn, m->n_ops, m->rec_len,
                              t->w.errmsg, sizeof t->w.errmsg);
  if (code != DF_OK) {
    /* gone, with the map lock: the abort at the end must not touch it */
    t->txn = NULL;
    t->map_full = 0;
    df__txn_doom(t, code);
    return code;
  }
  t->w.kv.txn = t->txn;
  t->n_changes = m->n_changes;
  t->events_buf.len = m->events_len;
  t->events_buf.failed = 0;
  t->w.next_seq = m->next_seq;
  t->map_full = 0;
  return DF_OK;
}

/* df_write's regrow: rebuild the transaction as it is now. */
static int write_regrow(df_write *w) {
  df_txn *t = (df_txn *)(void *)((char *)w - offsetof(df_txn, w));
  op_mark m;
  mark_take(t, &m);
  t->map_full = 1;
  return regrow(t, &m);
}

int df_txn_get(df_txn *t, const df_key *key, const void **item, size_t *len) {
  unsigned char k[DF_KEY_MAX];
  size_t klen;
  df_bytes v;
  int code;
  if ((code = check_live(t, 0)) != DF_OK) return code;
  if ((code = build_key(t, key, k, &klen)) != DF_OK) return code;
  code = df__kv_get(&t->w.kv, DF_SUB_ITEMS, k, klen, &v);
  if (code == DF_ENOTFOUND) return DF_ENOTFOUND;
  if (code != DF_OK)
    return txn_err(t, code, "read failed: %s", df_strerror(code));
  if (df__item_expired(t->w.schema, v.p, v.n, t->w.now)) return DF_ENOTFOUND;
  if (!df__item_key_is(t->w.schema, k, klen, v.p, v.n, key))
    return DF_ENOTFOUND;
  *item = v.p;
  *len = v.n;
  return DF_OK;
}

/* One put.  given: the item's key values and items key as the caller
 * already worked them out from the same bytes (a batch: it sorts by them),
 * or NULL. */
typedef struct given_key {
  df_key key;
  const unsigned char *k;
  size_t klen;
} given_key;

static int put_once(df_txn *t, const void *item, size_t len,
                    const given_key *given, const void **old, size_t *old_len) {
  unsigned char kbuf[DF_KEY_MAX];
  const unsigned char *k = kbuf;
  size_t klen;
  df_key key;
  int code, found, collides;
  const unsigned char *p = item;
  if (old) *old = NULL;
  if (old_len) *old_len = 0;
  if ((code = check_live(t, 1)) != DF_OK) return code;
  if (item == NULL || len == 0)
    code = DF_ECORRUPT;
  else
    code = df__mp_validate_item(item, len);
  if (code == DF_EVALIDATION) { /* a NaN: name the key if it is one */
    if (df__item_key_of(t->w.schema, item, len, &key, t->w.errmsg,
                        sizeof t->w.errmsg) == DF_OK &&
        build_key(t, &key, kbuf, &klen) == DF_OK)
      txn_err(t, DF_EVALIDATION, "item: NaN is not a number it can hold");
    return DF_EVALIDATION;
  }
  if (code != DF_OK)
    return txn_err(t, DF_EVALIDATION,
                   "item is not well-formed MessagePack (or nests deeper "
                   "than %d levels, or holds a malformed set or decimal)",
                   DF_MAX_DEPTH);
  if (!((p[0] & 0xf0) == 0x80 || p[0] == 0xde || p[0] == 0xdf))
    return txn_err(t, DF_EVALIDATION, "item must be a map");
  if (given) {
    key = given->key;
    k = given->k;
    klen = given->klen;
  } else {
    code = df__item_key_of(t->w.schema, item, len, &key, t->w.errmsg,
                           sizeof t->w.errmsg);
    if (code != DF_OK) return code;
    if ((code = build_key(t, &key, kbuf, &klen)) != DF_OK) return code;
  }
  if (t->db->max_item_size) {
    uint64_t size;
    if (df__item_size(item, len, &size) != DF_OK || size > t->db->max_item_size)
      return txn_err(t, DF_EVALIDATION,
                     "Item size has exceeded the maximum allowed size (%llu "
                     "bytes as DynamoDB counts them; this handle allows %llu)",
                     (unsigned long long)size,
                     (unsigned long long)t->db->max_item_size);
  }
  if (df__item_key_hashed(k, klen) &&
      (code = partition_check(t, k, &key.pk)) != DF_OK)
    return code;
  /* every index can hold the item: checked before anything is written,
   * so a refused item leaves the transaction as it was */
  if ((code = df__index_check(&t->w, &key, item, len)) != DF_OK) return code;
  if ((code = load_old(t, k, klen, &key, &found, &collides)) != DF_OK)
    return code;
  if (collides) /* a long sort value under another one's prefix and hash */
    return txn_err(t, DF_EVALIDATION,
                   "key attribute %s: this %zu-byte value has the same "
                   "prefix and hash as another sort-key value already stored "
                   "in its partition; it cannot be stored (use a different "
                   "value)",
                   t->w.schema->sk, key.sk.n);
  code = df__kv_put(&t->w.kv, DF_SUB_ITEMS, k, klen, item, len);
  if (code != DF_OK) return store_failed(t, code, "put");
  code = after_change(t, k, klen, DF_EV_PUT, 0, found ? t->old.p : NULL,
                      found ? t->old.len : 0, item, len);
  if (code != DF_OK) return code;
  if (found && old) {
    *old = t->old.p;
    if (old_len) *old_len = t->old.len;
  }
  return DF_OK;
}

static int put_given(df_txn *t, const void *item, size_t len,
                     const given_key *given, const void **old,
                     size_t *old_len) {
  op_mark m = {0, 0, 0, 0, 0};
  int code, tries, grown;
  for (tries = 0;; tries++) {
    if (t) mark_take(t, &m);
    code = put_once(t, item, len, given, old, old_len);
    if (code != DF_ERETRY || tries >= DF_GROW_RETRIES) return code;
    if ((grown = regrow(t, &m)) != DF_OK)
      return grown == DF_ERETRY ? code : grown;
  }
}

int df_txn_put(df_txn *t, const void *item, size_t len, const void **old,
               size_t *old_len) {
  return put_given(t, item, len, NULL, old, old_len);
}

static int delete_once(df_txn *t, const df_key *key, int *found,
                       const void **old, size_t *old_len, int expired) {
  unsigned char k[DF_KEY_MAX];
  size_t klen;
  int code, have;
  if (found) *found = 0;
  if (old) *old = NULL;
  if (old_len) *old_len = 0;
  if ((code = check_live(t, 1)) != DF_OK) return code;
  if ((code = build_key(t, key, k, &klen)) != DF_OK) return code;
  if ((code = load_old(t, k, klen, key, &have, NULL)) != DF_OK) return code;
  if (!have) return DF_OK;
  code = remove_item(t, k, klen, t->old.p, t->old.len, expired);
  if (code != DF_OK) return code;
  if (found) *found = 1;
  if (old) {
    *old = t->old.p;
    if (old_len) *old_len = t->old.len;
  }
  return DF_OK;
}

static int delete_item(df_txn *t, const df_key *key, int *found,
                       const void **old, size_t *old_len, int expired) {
  op_mark m = {0, 0, 0, 0, 0};
  int code, tries, grown;
  for (tries = 0;; tries++) {
    if (t) mark_take(t, &m);
    code = delete_once(t, key, found, old, old_len, expired);
    if (code != DF_ERETRY || tries >= DF_GROW_RETRIES) return code;
    if ((grown = regrow(t, &m)) != DF_OK)
      return grown == DF_ERETRY ? code : grown;
  }
}

int df_txn_delete(df_txn *t, const df_key *key, int *found, const void **old,
                  size_t *old_len) {
  return delete_item(t, key, found, old, old_len, 0);
}

int df_txn_delete_expired(df_txn *t, const df_key *key, int *found) {
  return delete_item(t, key, found, NULL, NULL, 1);
}

/* ------------------------------------------------------------- batches */

typedef struct batch_key {
  const unsigned char *p; /* the items key (in the keys buffer) */
  size_t at, len;
  size_t index; /* the op's place in the batch */
  df_key key;   /* a put's key values (its put takes them as given) */
} batch_key;

static int batch_cmp(const void *pa, const void *pb) {
  const batch_key *a = pa, *b = pb;
  size_t n = a->len < b->len ? a->len : b->len;
  int c = memcmp(a->p, b->p, n);
  if (c != 0) return c;
  if (a->len != b->len) return a->len < b->len ? -1 : 1;
  return a->index < b->index ? -1 : a->index > b->index; /* stable */
}

int df_txn_write_batch(df_txn *t, const df_batch_op *ops, size_t n,
                       size_t *failed_at) {
  batch_key *order = NULL;
  df_buf keys;
  size_t i;
  int code;
  if (failed_at) *failed_at = 0;
  if ((code = check_live(t, 1)) != DF_OK) return code;
  if (n == 0) return DF_OK;
  if (ops == NULL) return txn_err(t, DF_EINVAL, "ops is NULL");
  df__buf_init(&keys);
  order = df__malloc(n * sizeof *order);
  if (order == NULL) return txn_err(t, DF_ENOMEM, "out of memory");
  /* every key first: a bad one refuses the batch before anything is
   * written */
  for (i = 0; i < n; i++) {
    unsigned char k[DF_KEY_MAX];
    size_t klen;
    const df_key *kp = ops[i].key;
    if (ops[i].item) {
      code = df__item_key_of(t->w.schema, ops[i].item, ops[i].len,
                             &order[i].key, t->w.errmsg, sizeof t->w.errmsg);
      if (code != DF_OK) goto fail;
      kp = &order[i].key;
    } else if (kp == NULL) {
      code = txn_err(t, DF_EINVAL, "op %zu has neither an item nor a key", i);
      goto fail;
    }
    if ((code = build_key(t, kp, k, &klen)) != DF_OK) goto fail;
    order[i].at = keys.len;
    order[i].len = klen;
    order[i].index = i;
    if (df__buf_append(&keys, k, klen) != 0) {
      code = txn_err(t, DF_ENOMEM, "out of memory");
      goto fail;
    }
  }
  for (i = 0; i < n; i++) order[i].p = keys.p + order[i].at;
  qsort(order, n, sizeof *order, batch_cmp);
  for (i = 0; i < n; i++) {
    const df_batch_op *op = &ops[order[i].index];
    if (op->item) {
      given_key g;
      g.key = order[i].key;
      g.k = order[i].p;
      g.klen = order[i].len;
      code = put_given(t, op->item, op->len, &g, NULL, NULL);
    } else {
      code = df_txn_delete(t, op->key, NULL, NULL, NULL);
    }
    if (code != DF_OK) {
      i = order[i].index;
      goto fail;
    }
  }
  df__free(order);
  df__buf_free(&keys);
  return DF_OK;
fail:
  if (failed_at) *failed_at = i;
  df__free(order);
  df__buf_free(&keys);
  return code;
}

/* ----------------------------------------------------------------- purge */

static int purge_once(df_txn *t, size_t limit, size_t *count) {
  unsigned char entry[DF_EXPIRY_KEY_MAX], key[DF_KEY_MAX];
  size_t done = 0, elen, at, klen;
  df_bytes v;
  int code;
  if (count) *count = 0;
  if (t == NULL || !t->live) return DF_EINVAL;
  if (!(t->flags & DF_TXN_WRITE))
    return txn_err(t, DF_EREADONLY, "purge needs a write transaction");
  if ((code = check_live(t, 1)) != DF_OK) return code;
  if (t->w.schema->ttl_attr == NULL) return DF_OK;
  while (limit == 0 || done < limit) {
    code = df__expiry_first_due(&t->w, t->w.now, entry, &elen, &at);
    if (code == 0) break;
    if (code < 0) return code == DF_ERETRY ? doom(t, code) : code;
    klen = elen - at;
    memcpy(key, entry + at, klen);
    code = df__kv_get(&t->w.kv, DF_SUB_ITEMS, key, klen, &v);
    if (code != DF_OK && code != DF_ENOTFOUND)
      return txn_err(t, code, "purge failed: %s", df_strerror(code));
    if (code == DF_OK && df__item_expired(t->w.schema, v.p, v.n, t->w.now)) {
      df__buf_reset(&t->old);
      if (df__buf_append(&t->old, v.p, v.n) != 0)
        return txn_err(t, DF_ENOMEM, "out of memory");
      code = remove_item(t, key, klen, t->old.p, t->old.len, 1);
      if (code != DF_OK) return code;
      done++;
    } else {
      /* A stale entry (cannot happen while writes go through here, but
       * never loop on one). */
      code = df__expiry_drop(&t->w, entry, elen);
      if (code != DF_OK) return doom(t, code);
    }
  }
  if (count) *count = done;
  return DF_OK;
}

int df_txn_purge_expired(df_txn *t, size_t limit, size_t *count) {
  op_mark m = {0, 0, 0, 0, 0};
  int code, tries, grown;
  for (tries = 0;; tries++) {
    if (t && t->live) mark_take(t, &m);
    code = purge_once(t, limit, count);
    if (code != DF_ERETRY || tries >= DF_GROW_RETRIES) return code;
    if ((grown = regrow(t, &m)) != DF_OK)
      return grown == DF_ERETRY ? code : grown;
  }
}

/* ------------------------------------------------------------ retrying */

int df__txn_run(df_db *db, unsigned flags, double now,
                int (*body)(df_txn *t, void *ud), void *ud) {
  df_txn *t;
  int code, tries;
  for (tries = 0; tries <= DF_GROW_RETRIES; tries++) {
    code = df_txn_begin(db, flags | DF_TXN_WRITE, now, &t);
    if (code != DF_OK) return code;
    code = body(t, ud);
    if (code == DF_ERETRY) doom(t, code); /* whoever met the full map */
    /* the commit of a transaction that met a full map grows the map
     * (DF_ERETRY), or says why it cannot (DF_EBUSY) */
    if (code == DF_OK || code == DF_ERETRY) code = df_txn_commit(t);
    if (code != DF_OK && code != DF_ERETRY)
      df__db_err(db, code, "%s", t->w.errmsg);
    df_txn_free(t);
    if (code != DF_ERETRY) return code;
  }
  return df__db_err(db, DF_EIO,
                    "the map kept filling up (grown %d times); giving up",
                    DF_GROW_RETRIES);
}
