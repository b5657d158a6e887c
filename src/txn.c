/*
 * txn.c -- transactions and single-item operations: begin, commit, get,
 * put, delete, and the events a write transaction records for listeners.
 *
 * Invariants:
 *  - A write transaction changes the item, every index entry, the expiry
 *    entry and the change-log record of that item together, or nothing.
 *  - An item whose TTL attribute is below the transaction's `now` does not
 *    exist for readers; a write that meets one deletes it (recording a
 *    DELETE event marked expired) before going on.
 *  - At most one write transaction per thread per database: a second one
 *    is DF_EBUSY, never a self-deadlock on LMDB's writer lock.
 *  - Items keys are hash64(pk) | enc(pk) | enc(sk) (key.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "schema.h"
#include "store.h"

int df__env_grow_if_needed(df_env *e);

int df__txn_err(df_txn *t, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->errmsg, sizeof t->errmsg, fmt, ap);
  va_end(ap);
  return code;
}

const char *df_txn_errmsg(const df_txn *t) {
  return t ? t->errmsg : df_strerror(DF_ENOMEM);
}

/* ----------------------------------------------------------------- keys */

static const char *type_name(df_type t) {
  switch (t) {
    case DF_TNONE: return "nothing";
    case DF_TNIL: return "null";
    case DF_TBOOL: return "a boolean";
    case DF_TINT:
    case DF_TUINT:
    case DF_TFLOAT:
    case DF_TDECIMAL: return "a number";
    case DF_TSTR: return "a string";
    case DF_TBIN: return "binary";
    case DF_TARRAY: return "a list";
    case DF_TMAP: return "a map";
    case DF_TSS: return "a string set";
    case DF_TNS: return "a number set";
    case DF_TBS: return "a binary set";
  }
  return "?";
}

static int key_value_ok(const df_value *v, const char *attr, char *err,
                        size_t errlen) {
  switch (v->type) {
    case DF_TSTR:
    case DF_TBIN:
    case DF_TINT:
    case DF_TUINT:
      return DF_OK;
    case DF_TFLOAT:
      if (v->f != v->f) {
        snprintf(err, errlen, "key attribute %s must not be NaN", attr);
        return DF_EVALIDATION;
      }
      return DF_OK;
    case DF_TNONE:
      snprintf(err, errlen, "missing key attribute %s", attr);
      return DF_EVALIDATION;
    default:
      snprintf(err, errlen,
               "key attribute %s must be a string or a number, not %s", attr,
               type_name(v->type));
      return DF_EVALIDATION;
  }
}

int df__item_key(const df_schema *s, const df_key *key, unsigned char *out,
                 size_t *outlen, char *err, size_t errlen) {
  size_t n = 0, m = 0;
  uint64_t h;
  int code;
  if ((code = key_value_ok(&key->pk, s->pk, err, errlen)) != DF_OK) return code;
  if (key->pk.type == DF_TSTR && key->pk.n > DF_PK_MAX) {
    snprintf(err, errlen,
             "key attribute %s is too long (%zu bytes, at most %d)", s->pk,
             key->pk.n, DF_PK_MAX);
    return DF_EVALIDATION;
  }
  code = df__key_enc_partition(&key->pk, out + 8, &n, &h);
  if (code != DF_OK) {
    snprintf(err, errlen, "key attribute %s cannot be encoded", s->pk);
    return DF_EVALIDATION;
  }
  df__key_put_u64(out, h);
  n += 8;
  if (s->sk) {
    if ((code = key_value_ok(&key->sk, s->sk, err, errlen)) != DF_OK)
      return code;
    code = df__key_enc(&key->sk, out + n, DF_SK_MAX, &m);
    if (code != DF_OK) {
      snprintf(err, errlen,
               "key attribute %s is too long (at most %d bytes encoded: %d "
               "bytes of a string without NUL bytes)",
               s->sk, DF_SK_MAX, DF_SK_MAX - 3);
      return DF_EVALIDATION;
    }
    n += m;
  }
  *outlen = n;
  return DF_OK;
}

int df__item_key_of(const df_schema *s, const void *item, size_t len,
                    df_key *key, char *err, size_t errlen) {
  int r;
  memset(key, 0, sizeof *key);
  r = df__mp_map_find(item, len, s->pk, strlen(s->pk), &key->pk, NULL, NULL);
  if (r < 0) {
    snprintf(err, errlen, "item bytes are malformed");
    return DF_EVALIDATION;
  }
  if (s->sk) {
    r = df__mp_map_find(item, len, s->sk, strlen(s->sk), &key->sk, NULL, NULL);
    if (r < 0) {
      snprintf(err, errlen, "item bytes are malformed");
      return DF_EVALIDATION;
    }
  }
  if ((r = key_value_ok(&key->pk, s->pk, err, errlen)) != DF_OK) return r;
  if (s->sk && (r = key_value_ok(&key->sk, s->sk, err, errlen)) != DF_OK)
    return r;
  return DF_OK;
}

int df__item_expired(const df_schema *s, const void *item, size_t len,
                     double now) {
  df_value v;
  if (s->ttl_attr == NULL) return 0;
  if (df__mp_map_find(item, len, s->ttl_attr, strlen(s->ttl_attr), &v, NULL,
                      NULL) != 1)
    return 0;
  switch (v.type) {
    case DF_TINT: return (double)v.i < now;
    case DF_TUINT: return (double)v.u < now;
    case DF_TFLOAT: return v.f < now;
    default: return 0;
  }
}

/* ---------------------------------------------- long partition keys */

/* A partition-key value longer than DF_PK_INLINE_MAX is stored in keys as
 * a hash (key.c), its full value only in the item.  Two values whose hashes
 * collide would share a partition: a put checks that the partition holds
 * only its own value (partition_check), and reads check that an item found
 * under a hashed key really carries the value asked for (df__item_pk_is).
 * Whether a key is hashed shows in its first byte after the 8-byte hash. */
static int key_is_hashed(const unsigned char *k, size_t klen) {
  return klen > 8 && k[8] == DF_TAG_HASHED;
}

int df__item_pk_is(const df_schema *s, const void *item, size_t len,
                   const df_value *pk) {
  df_value v;
  if (df__mp_map_find(item, len, s->pk, strlen(s->pk), &v, NULL, NULL) != 1)
    return 0;
  if ((v.type != DF_TSTR && v.type != DF_TBIN) ||
      (pk->type != DF_TSTR && pk->type != DF_TBIN))
    return 0;
  return v.n == pk->n && (v.n == 0 || memcmp(v.s, pk->s, v.n) == 0);
}

/* Before a put under a hashed partition key: the first item already in
 * that partition (if any) must carry the same partition-key value; every
 * item of a partition passed this check, so one suffices. */
static int partition_check(df_txn *t, const unsigned char *k,
                           const df_value *pk) {
  MDB_cursor *c;
  MDB_val mk, mv;
  size_t plen = 8 + 17; /* hash64 | DF_TAG_HASHED + 16 hash bytes */
  int rc, code = DF_OK;
  rc = mdb_cursor_open(t->txn, t->env->dbi_items, &c);
  if (rc != 0)
    return df__txn_err(t, df__map_err(rc), "cannot open cursor: %s",
                       mdb_strerror(rc));
  mk.mv_data = (void *)k;
  mk.mv_size = plen;
  rc = mdb_cursor_get(c, &mk, &mv, MDB_SET_RANGE);
  if (rc == 0 && mk.mv_size >= plen && memcmp(mk.mv_data, k, plen) == 0 &&
      !df__item_pk_is(&t->env->schema.s, mv.mv_data, mv.mv_size, pk))
    code = df__txn_err(t, DF_EVALIDATION,
                       "key attribute %s: this %zu-byte value has the same "
                       "hash as another partition-key value already stored; "
                       "it cannot be stored (use a different value)",
                       t->env->schema.s.pk, pk->n);
  else if (rc != 0 && rc != MDB_NOTFOUND)
    code = df__txn_err(t, df__map_err(rc), "read failed: %s",
                       mdb_strerror(rc));
  mdb_cursor_close(c);
  return code;
}

/* ---------------------------------------------------------- transactions */

/* Forget that `thread` holds the write transaction.  Called after LMDB
 * released its writer lock, when another thread may already have taken
 * it and marked itself: only the mark of `thread` is cleared. */
static void writer_clear(df_env *e, pthread_t thread) {
  pthread_mutex_lock(&e->lock);
  if (e->has_writer && pthread_equal(e->writer, thread)) e->has_writer = 0;
  pthread_mutex_unlock(&e->lock);
}

int df_txn_begin(df_db *db, unsigned flags, double now, df_txn **out) {
  df_txn *t;
  df_env *e;
  int code, rc, tries;
  int write = (flags & DF_TXN_WRITE) != 0;
  if (out == NULL) return DF_EINVAL;
  *out = NULL;
  if ((code = df__db_check(db)) != DF_OK) return code;
  e = db->env;
  if (write && e->readonly)
    return df__db_err(db, DF_EREADONLY, "database is opened read-only");
  if (write) {
    pthread_mutex_lock(&e->lock);
    if (e->has_writer && pthread_equal(e->writer, pthread_self())) {
      pthread_mutex_unlock(&e->lock);
      return df__db_err(db, DF_EBUSY,
                        "this thread already holds the database's write "
                        "transaction (a write from inside a transaction, "
                        "an update function or a condition?)");
    }
    pthread_mutex_unlock(&e->lock);
  }
  t = df__malloc(sizeof *t);
  if (t == NULL) return df__db_err(db, DF_ENOMEM, "out of memory");
  memset(t, 0, sizeof *t);
  t->db = db;
  __atomic_add_fetch(&db->txns, 1, __ATOMIC_ACQ_REL);
  t->env = e;
  t->flags = flags;
  t->thread = pthread_self();
  t->now = now;
  df__buf_init(&t->old);
  df__buf_init(&t->scratch);
  df__buf_init(&t->events_buf);
  if (!write) {
    code = df__read_begin(db, &t->txn);
    if (code != DF_OK) {
      __atomic_sub_fetch(&db->txns, 1, __ATOMIC_ACQ_REL);
      df__free(t);
      return code;
    }
    t->live = 1;
    *out = t;
    return DF_OK;
  }
  for (tries = 0;; tries++) {
    df__env_grow_if_needed(e);
    df__map_lock_shared(e);
    rc = mdb_txn_begin(e->env, NULL, 0, &t->txn);
    if (rc == 0) break;
    df__map_unlock_shared(e);
    if (rc == MDB_MAP_RESIZED && tries < 3) {
      df__env_refresh_map(e);
      continue;
    }
    __atomic_sub_fetch(&db->txns, 1, __ATOMIC_ACQ_REL);
    df__free(t);
    return df__db_err(db, df__map_err(rc),
                      "cannot begin write transaction: %s", mdb_strerror(rc));
  }
  pthread_mutex_lock(&e->lock);
  e->writer = pthread_self();
  e->has_writer = 1;
  pthread_mutex_unlock(&e->lock);
  t->live = 1;
  /* Another process may have added or dropped an index: write with the
   * stored schema, so every index stays in step. */
  if ((code = df__schema_refresh(t->txn, e)) != DF_OK) {
    df_txn_free(t);
    return df__db_err(db, code, "cannot read the stored schema: %s",
                      df_strerror(code));
  }
  *out = t;
  return DF_OK;
}

/* End the LMDB side of a transaction (commit already done or abort).  A
 * read transaction goes back through df__read_end: it may be the handle's
 * reusable one, which must be reset and kept, not aborted (freed). */
static void finish(df_txn *t, int abort_it) {
  if (!t->live) return;
  t->live = 0;
  if (!(t->flags & DF_TXN_WRITE)) {
    df__read_end(t->db, t->txn); /* releases map_lock */
    t->txn = NULL;
    return;
  }
  if (abort_it) mdb_txn_abort(t->txn);
  t->txn = NULL;
  writer_clear(t->env, t->thread);
  df__map_unlock_shared(t->env);
}

/* After MDB_MAP_FULL: abort, grow the map, and tell the caller to retry. */
static int map_full(df_txn *t) {
  finish(t, 1);
  df__env_grow(t->env);
  return df__txn_err(t, DF_ERETRY,
                     "the database map was full and has grown; run the "
                     "transaction again");
}

/* The environment's sync flags are shared by every handle; set them to
 * this handle's mode under the writer lock, and only when they differ
 * (LMDB's flag word is read by other threads' transactions). */
static int set_sync_flags(df_txn *t) {
  MDB_env *env = t->env->env;
  unsigned all = MDB_NOSYNC | MDB_NOMETASYNC, want = 0, have = 0;
  if (t->db->sync == DF_SYNC_NORMAL) want = MDB_NOMETASYNC;
  if (t->db->sync == DF_SYNC_OFF) want = MDB_NOSYNC;
  if (mdb_env_get_flags(env, &have) != 0) return -1;
  if ((have & all) == want) return 0;
  if ((have & all & ~want) && mdb_env_set_flags(env, have & all & ~want, 0))
    return -1;
  if (want && mdb_env_set_flags(env, want, 1) != 0) return -1;
  return 0;
}

/* The error of a failed commit.  LMDB reports a write cut short by a
 * full disk as EIO (a short pwrite), and a file-size limit as EFBIG: name
 * the likely cause from the space left on the device and the process's
 * RLIMIT_FSIZE, so the message says what went wrong. */
static int commit_failed(df_txn *t, int rc) {
  struct statvfs vfs;
  struct rlimit rl;
  struct stat st;
  char data[PATH_MAX];
  if (rc != EIO && rc != ENOSPC && rc != EDQUOT && rc != EFBIG)
    return df__txn_err(t, df__map_err(rc), "commit failed: %s",
                       mdb_strerror(rc));
  if (statvfs(t->env->path, &vfs) == 0 &&
      (uint64_t)vfs.f_bavail * vfs.f_frsize < ((uint64_t)1 << 20))
    return df__txn_err(t, DF_EDISKFULL,
                       "commit failed: no space left on the device of %s "
                       "(%llu bytes free); nothing was written",
                       t->env->path,
                       (unsigned long long)vfs.f_bavail * vfs.f_frsize);
  snprintf(data, sizeof data, "%s/data.mdb", t->env->path);
  if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      stat(data, &st) == 0 &&
      (uint64_t)st.st_size + ((uint64_t)1 << 20) > (uint64_t)rl.rlim_cur)
    return df__txn_err(t, DF_EDISKFULL,
                       "commit failed: %s reached the process's file-size "
                       "limit (%llu bytes, ulimit -f); nothing was written",
                       data, (unsigned long long)rl.rlim_cur);
  return df__txn_err(t, rc == ENOSPC || rc == EDQUOT ? DF_EDISKFULL : DF_EIO,
                     "commit failed: %s; nothing was written",
                     mdb_strerror(rc));
}

int df_txn_commit(df_txn *t) {
  int rc;
  if (t == NULL) return DF_EINVAL;
  if (!t->live) return df__txn_err(t, DF_EINVAL, "transaction is finished");
  if (t->db->fork_gen != df__fork_generation()) {
    t->live = 0; /* never touch LMDB state inherited through fork */
    return df__txn_err(t, DF_EFORKED, "transaction used in a forked child");
  }
  if (!(t->flags & DF_TXN_WRITE)) {
    finish(t, 1);
    return DF_OK;
  }
  if (t->map_full) return map_full(t);
  if (t->failed) {
    finish(t, 1);
    return df__txn_err(t, DF_EIO, "transaction failed earlier; rolled back");
  }
  set_sync_flags(t);
  rc = mdb_txn_commit(t->txn);
  t->txn = NULL;
  if (rc == MDB_MAP_FULL) {
    t->live = 0;
    writer_clear(t->env, t->thread);
    df__map_unlock_shared(t->env);
    df__env_grow(t->env);
    return df__txn_err(t, DF_ERETRY,
                       "the database map was full and has grown; run the "
                       "transaction again");
  }
  finish(t, 0);
  if (rc != 0)
    return commit_failed(t, rc);
  return DF_OK;
}

void df_txn_free(df_txn *t) {
  if (t == NULL) return;
  if (t->live) {
    if (t->db->fork_gen == df__fork_generation()) {
      /* A write that met MDB_MAP_FULL told its caller to retry; a caller
       * that gives up on the transaction (rather than committing it) frees
       * it, so the map grows here too, or the retry would meet the same
       * full map. */
      int grow = t->map_full;
      finish(t, 1);
      if (grow) df__env_grow(t->env);
    }
  }
  df__buf_free(&t->old);
  df__buf_free(&t->scratch);
  df__buf_free(&t->events_buf);
  df__free(t->changes);
  {
    df_db *db = t->db;
    df__free(t);
    if (__atomic_sub_fetch(&db->txns, 1, __ATOMIC_ACQ_REL) == 0 &&
        db->close_pending)
      df__db_release(db);
  }
}

static int check_live(df_txn *t, int write) {
  if (t == NULL) return DF_EINVAL;
  if (!t->live) return df__txn_err(t, DF_EINVAL, "transaction is finished");
  if (t->db->fork_gen != df__fork_generation())
    return df__txn_err(t, DF_EFORKED, "transaction used in a forked child");
  if (write && !(t->flags & DF_TXN_WRITE))
    return df__txn_err(t, DF_EREADONLY, "read transaction cannot write");
  if (t->map_full)
    return df__txn_err(t, DF_ERETRY, "the database map is full; retry");
  return DF_OK;
}

/* An LMDB write failure dooms the transaction. */
static int write_failed(df_txn *t, int rc, const char *what) {
  if (rc == MDB_MAP_FULL) {
    t->map_full = 1;
    return df__txn_err(t, DF_ERETRY,
                       "the database map is full; it grows at commit: run "
                       "the transaction again");
  }
  t->failed = 1;
  return df__txn_err(t, df__map_err(rc), "%s failed: %s", what,
                     mdb_strerror(rc));
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
    if (n == NULL) return DF_ENOMEM;
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
  if (t->events_buf.failed) return DF_ENOMEM;
  if (logged) {
    code = df__stream_append(t, c, old, old_len, new_item, new_len);
    if (code != DF_OK) return code;
  }
  if (events) t->n_changes++;
  return DF_OK;
}

size_t df_txn_event_count(const df_txn *t) { return t ? t->n_changes : 0; }

int df_txn_event(const df_txn *t, size_t i, df_event *ev) {
  const df_change *c;
  if (t == NULL || ev == NULL || i >= t->n_changes) return DF_EINVAL;
  c = &t->changes[i];
  ev->action = c->action;
  ev->expired = c->expired;
  ev->seq = c->seq;
  ev->old = c->old_off == (size_t)-1 ? NULL : t->events_buf.p + c->old_off;
  ev->old_len = c->old_len;
  ev->new_item =
      c->new_off == (size_t)-1 ? NULL : t->events_buf.p + c->new_off;
  ev->new_len = c->new_len;
  return DF_OK;
}

/* Called for every change: indexes, expiry, events/change log. */
static int after_change(df_txn *t, const unsigned char *k, size_t klen,
                        int action, int expired, const void *old,
                        size_t old_len, const void *new_item,
                        size_t new_len) {
  int code;
  code = df__index_apply(t, k, klen, old, old_len, new_item, new_len);
  if (code == DF_OK)
    code = df__expiry_apply(t, k, klen, old, old_len, new_item, new_len);
  if (code == DF_OK) {
    int logged = df__stream_enabled(t);
    if (logged < 0)
      code = logged;
    else if (logged || (t->flags & DF_TXN_EVENTS))
      code = record(t, action, expired, old, old_len, new_item, new_len,
                    logged);
  }
  if (code != DF_OK && !t->map_full) {
    t->failed = 1;
    if (code == DF_ENOMEM) df__txn_err(t, code, "out of memory");
  }
  return code;
}

int df__txn_remove(df_txn *t, const unsigned char *k, size_t klen,
                   const void *old, size_t old_len, int expired) {
  MDB_val key;
  int rc;
  key.mv_data = (void *)k;
  key.mv_size = klen;
  rc = mdb_del(t->txn, t->env->dbi_items, &key, NULL);
  if (rc != 0) return write_failed(t, rc, "delete");
  return after_change(t, k, klen, DF_EV_DELETE, expired, old, old_len, NULL,
                      0);
}

/* Look up the stored item under k; copies it into t->old when found
 * (LMDB's pointer dies at the next write).  Expired items are removed
 * (with their event) and reported absent. */
static int load_old(df_txn *t, const unsigned char *k, size_t klen,
                    const df_value *pk, int *found) {
  MDB_val key, val;
  int rc, code;
  key.mv_data = (void *)k;
  key.mv_size = klen;
  *found = 0;
  rc = mdb_get(t->txn, t->env->dbi_items, &key, &val);
  if (rc == MDB_NOTFOUND) return DF_OK;
  if (rc != 0) return df__txn_err(t, df__map_err(rc), "read failed: %s",
                                  mdb_strerror(rc));
  if (key_is_hashed(k, klen) &&
      !df__item_pk_is(&t->env->schema.s, val.mv_data, val.mv_size, pk))
    return DF_OK; /* another value's item under a colliding hash */
  df__buf_reset(&t->old);
  if (df__buf_append(&t->old, val.mv_data, val.mv_size) != 0)
    return df__txn_err(t, DF_ENOMEM, "out of memory");
  if (df__item_expired(&t->env->schema.s, t->old.p, t->old.len, t->now)) {
    code = df__txn_remove(t, k, klen, t->old.p, t->old.len, 1);
    return code;
  }
  *found = 1;
  return DF_OK;
}

static int build_key(df_txn *t, const df_key *key, unsigned char *k,
                     size_t *klen) {
  return df__item_key(&t->env->schema.s, key, k, klen, t->errmsg,
                      sizeof t->errmsg);
}

int df_txn_get(df_txn *t, const df_key *key, const void **item, size_t *len) {
  unsigned char k[DF_KEY_MAX];
  size_t klen;
  MDB_val mk, mv;
  int code, rc;
  if ((code = check_live(t, 0)) != DF_OK) return code;
  if ((code = build_key(t, key, k, &klen)) != DF_OK) return code;
  mk.mv_data = k;
  mk.mv_size = klen;
  rc = mdb_get(t->txn, t->env->dbi_items, &mk, &mv);
  if (rc == MDB_NOTFOUND) return DF_ENOTFOUND;
  if (rc != 0)
    return df__txn_err(t, df__map_err(rc), "read failed: %s",
                       mdb_strerror(rc));
  if (df__item_expired(&t->env->schema.s, mv.mv_data, mv.mv_size, t->now))
    return DF_ENOTFOUND;
  if (key_is_hashed(k, klen) &&
      !df__item_pk_is(&t->env->schema.s, mv.mv_data, mv.mv_size, &key->pk))
    return DF_ENOTFOUND;
  *item = mv.mv_data;
  *len = mv.mv_size;
  return DF_OK;
}

int df_txn_put(df_txn *t, const void *item, size_t len, const void **old,
               size_t *old_len) {
  unsigned char k[DF_KEY_MAX];
  size_t klen;
  df_key key;
  MDB_val mk, mv;
  int code, rc, found;
  const unsigned char *p = item;
  if (old) *old = NULL;
  if (old_len) *old_len = 0;
  if ((code = check_live(t, 1)) != DF_OK) return code;
  if (item == NULL || len == 0 || df__mp_validate(item, len, DF_MAX_DEPTH) != 0)
    return df__txn_err(t, DF_EVALIDATION,
                       "item is not well-formed MessagePack (or nests deeper "
                       "than %d levels)",
                       DF_MAX_DEPTH);
  if (!((p[0] & 0xf0) == 0x80 || p[0] == 0xde || p[0] == 0xdf))
    return df__txn_err(t, DF_EVALIDATION, "item must be a map");
  code = df__item_key_of(&t->env->schema.s, item, len, &key, t->errmsg,
                         sizeof t->errmsg);
  if (code != DF_OK) return code;
  if ((code = build_key(t, &key, k, &klen)) != DF_OK) return code;
  if (key_is_hashed(k, klen) &&
      (code = partition_check(t, k, &key.pk)) != DF_OK)
    return code;
  if ((code = load_old(t, k, klen, &key.pk, &found)) != DF_OK) return code;
  mk.mv_data = k;
  mk.mv_size = klen;
  mv.mv_data = (void *)item;
  mv.mv_size = len;
  rc = mdb_put(t->txn, t->env->dbi_items, &mk, &mv, 0);
  if (rc != 0) return write_failed(t, rc, "put");
  code = after_change(t, k, klen, DF_EV_PUT, 0, found ? t->old.p : NULL,
                      found ? t->old.len : 0, item, len);
  if (code != DF_OK) return code;
  if (found && old) {
    *old = t->old.p;
    if (old_len) *old_len = t->old.len;
  }
  return DF_OK;
}

static int delete_item(df_txn *t, const df_key *key, int *found,
                       const void **old, size_t *old_len, int expired) {
  unsigned char k[DF_KEY_MAX];
  size_t klen;
  int code, have;
  if (found) *found = 0;
  if (old) *old = NULL;
  if (old_len) *old_len = 0;
  if ((code = check_live(t, 1)) != DF_OK) return code;
  if ((code = build_key(t, key, k, &klen)) != DF_OK) return code;
  if ((code = load_old(t, k, klen, &key->pk, &have)) != DF_OK) return code;
  if (!have) return DF_OK;
  code = df__txn_remove(t, k, klen, t->old.p, t->old.len, expired);
  if (code != DF_OK) return code;
  if (found) *found = 1;
  if (old) {
    *old = t->old.p;
    if (old_len) *old_len = t->old.len;
  }
  return DF_OK;
}

int df_txn_delete(df_txn *t, const df_key *key, int *found, const void **old,
                  size_t *old_len) {
  return delete_item(t, key, found, old, old_len, 0);
}

int df_txn_delete_expired(df_txn *t, const df_key *key, int *found) {
  return delete_item(t, key, found, NULL, NULL, 1);
}

/* ------------------------------------------------------- one-call forms */

int df_db_get(df_db *db, const df_key *key, double now, const void **item,
              size_t *len) {
  unsigned char k[DF_KEY_MAX];
  size_t klen;
  MDB_txn *txn;
  MDB_val mk, mv;
  int code, rc;
  df_slot *slot;
  char err[DF_MSG_MAX];
  if ((code = df__db_check(db)) != DF_OK) return code;
  code = df__item_key(&db->env->schema.s, key, k, &klen, err, sizeof err);
  if (code != DF_OK) return df__db_err(db, code, "%s", err);
  /* the copy goes to the calling thread's buffer: a shared handle's
   * other threads never overwrite it */
  if ((slot = df__slot(db)) == NULL) return DF_ENOMEM;
  if ((code = df__read_begin(db, &txn)) != DF_OK) return code;
  mk.mv_data = k;
  mk.mv_size = klen;
  rc = mdb_get(txn, db->env->dbi_items, &mk, &mv);
  if (rc == 0 &&
      (df__item_expired(&db->env->schema.s, mv.mv_data, mv.mv_size, now) ||
       (key_is_hashed(k, klen) &&
        !df__item_pk_is(&db->env->schema.s, mv.mv_data, mv.mv_size,
                        &key->pk))))
    rc = MDB_NOTFOUND;
  if (rc == 0) {
    df__buf_reset(&slot->got);
    if (df__buf_append(&slot->got, mv.mv_data, mv.mv_size) != 0) rc = ENOMEM;
  }
  df__read_end(db, txn);
  if (rc == MDB_NOTFOUND) return DF_ENOTFOUND;
  if (rc != 0)
    return df__db_err(db, df__map_err(rc), "read failed: %s",
                      mdb_strerror(rc));
  *item = slot->got.p;
  *len = slot->got.len;
  return DF_OK;
}

/* Run one single-item write, retrying after map growth. */
static int one_write(df_db *db, const void *item, size_t len,
                     const df_key *key, double now, int *found) {
  df_txn *t;
  int code, tries;
  for (tries = 0; tries < 8; tries++) {
    code = df_txn_begin(db, DF_TXN_WRITE, now, &t);
    if (code != DF_OK) return code;
    /* every write path also deletes a few expired items (ttl.c) */
    code = df_txn_purge_expired(t, 8, NULL);
    if (code == DF_OK && item)
      code = df_txn_put(t, item, len, NULL, NULL);
    else if (code == DF_OK)
      code = df_txn_delete(t, key, found, NULL, NULL);
    if (code == DF_OK || code == DF_ERETRY) {
      int c2 = df_txn_commit(t);
      if (code == DF_OK) code = c2;
    }
    if (code != DF_OK && code != DF_ERETRY)
      df__db_err(db, code, "%s", t->errmsg);
    df_txn_free(t);
    if (code != DF_ERETRY) return code;
  }
  return df__db_err(db, DF_EIO, "the map kept filling up; giving up");
}

int df_db_put(df_db *db, const void *item, size_t len, double now) {
  if (item == NULL) return df__db_err(db, DF_EINVAL, "item is NULL");
  return one_write(db, item, len, NULL, now, NULL);
}

int df_db_delete(df_db *db, const df_key *key, double now, int *found) {
  int f = 0, code = one_write(db, NULL, 0, key, now, &f);
  if (found) *found = f;
  return code;
}
