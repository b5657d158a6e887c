/*
 * stream.c -- the persisted change log (`stream` sub-database) and its
 * reader, the cross-process change feed.
 *
 * Keys are 8-byte big-endian sequence numbers; values are MessagePack
 * arrays [seq, time, origin, action, expired, old | nil, new | nil] whose
 * items are embedded as they are stored (so any MessagePack tool reads
 * them).  The settings live in the `meta` sub-database under "stream" as
 * a map {keep = records, keep_seconds = seconds}, so every process
 * agrees; each write transaction reads them once, at its first change.
 *
 * Invariants:
 *  - A record is written in the same write transaction as the change it
 *    describes; LMDB's single writer makes seq order commit order across
 *    every process.
 *  - Sequence numbers are consecutive: next = last + 1, and trimming only
 *    removes the oldest records and never the newest, so the log is never
 *    emptied once written and a seq is never reused.
 *  - Trimming happens in the writing transaction, at most TRIM_MAX
 *    records per change, so a write never does unbounded work.
 */
#include <string.h>
#include <time.h>

#include "store.h"

#define META_KEY "stream"
#define TRIM_MAX 1024
#define READ_DEFAULT 256
/* fixarray(7), seq (0xcf + 8), time (0xcb + 8), origin (0xcf + 8),
 * action (fixint), expired (bool) */
#define HEADER_LEN 30

struct df_stream {
  df_buf data; /* record bytes back to back */
  size_t *off; /* count + 1 offsets */
  size_t cap_off;
  size_t count;
  uint64_t next, first, last;
};

/* ------------------------------------------------------------ settings */

static int settings_decode(const void *p, size_t n, uint64_t *keep,
                           double *secs) {
  df_value v;
  int r;
  *keep = 0;
  *secs = 0;
  r = df__mp_map_find(p, n, "keep", 4, &v, NULL, NULL);
  if (r < 0) return DF_ECORRUPT;
  if (r == 1) {
    if (v.type == DF_TINT && v.i >= 0)
      *keep = (uint64_t)v.i;
    else if (v.type == DF_TUINT)
      *keep = v.u;
    else
      return DF_ECORRUPT;
  }
  r = df__mp_map_find(p, n, "keep_seconds", 12, &v, NULL, NULL);
  if (r < 0) return DF_ECORRUPT;
  if (r == 1) {
    if (v.type == DF_TFLOAT && v.f >= 0)
      *secs = v.f;
    else if (v.type == DF_TINT && v.i >= 0)
      *secs = (double)v.i;
    else
      return DF_ECORRUPT;
  }
  return DF_OK;
}

/* The stored settings: 0, or DF_ECORRUPT / an LMDB failure code. */
static int settings_read(MDB_txn *txn, df_env *e, uint64_t *keep,
                         double *secs) {
  MDB_val k, v;
  int rc;
  k.mv_data = (void *)META_KEY;
  k.mv_size = sizeof META_KEY - 1;
  rc = mdb_get(txn, e->dbi_meta, &k, &v);
  if (rc == MDB_NOTFOUND) {
    *keep = 0;
    *secs = 0;
    return DF_OK;
  }
  if (rc != 0) return df__map_err(rc);
  return settings_decode(v.mv_data, v.mv_size, keep, secs);
}

int df__stream_enabled(df_txn *t) {
  if (t->stream_state == 0) {
    int code =
        settings_read(t->txn, t->env, &t->stream_keep, &t->stream_keep_seconds);
    if (code != DF_OK) {
      t->failed = 1;
      return df__txn_err(t, code, "cannot read the change-log settings");
    }
    t->stream_state = (t->stream_keep || t->stream_keep_seconds > 0) ? 1 : 2;
  }
  return t->stream_state == 1;
}

int df__stream_configure(df_db *db, const df_open_options *o) {
  MDB_txn *rtxn;
  uint64_t keep;
  double secs;
  int code, tries;
  df_buf b;
  if (!o->stream) return DF_OK;
  if (!(o->stream_keep_seconds >= 0) || o->stream_keep_seconds > 1e15)
    return df__db_err(db, DF_EINVAL,
                      "stream keep_seconds must be a non-negative number");
  if ((code = df__read_begin(db, &rtxn)) != DF_OK) return code;
  code = settings_read(rtxn, db->env, &keep, &secs);
  df__read_end(db, rtxn);
  if (code != DF_OK)
    return df__db_err(db, code, "cannot read the change-log settings");
  if (keep == o->stream_keep && secs == o->stream_keep_seconds) return DF_OK;
  if (db->env->readonly)
    return df__db_err(db, DF_EREADONLY,
                      "cannot change the change-log settings of a database "
                      "opened read-only");
  df__buf_init(&b);
  df__mp_put_map(&b, 2);
  df__mp_put_str(&b, "keep", 4);
  df__mp_put_uint(&b, o->stream_keep);
  df__mp_put_str(&b, "keep_seconds", 12);
  df__mp_put_float(&b, o->stream_keep_seconds);
  if (b.failed) {
    df__buf_free(&b);
    return df__db_err(db, DF_ENOMEM, "out of memory");
  }
  for (tries = 0; tries < 8; tries++) {
    df_txn *t;
    MDB_val k, v;
    int rc;
    code = df_txn_begin(db, DF_TXN_WRITE, 0, &t);
    if (code != DF_OK) break;
    k.mv_data = (void *)META_KEY;
    k.mv_size = sizeof META_KEY - 1;
    v.mv_data = b.p;
    v.mv_size = b.len;
    rc = mdb_put(t->txn, db->env->dbi_meta, &k, &v, 0);
    if (rc == MDB_MAP_FULL)
      t->map_full = 1;
    else if (rc != 0)
      t->failed = 1;
    code = df_txn_commit(t);
    if (code != DF_OK && code != DF_ERETRY)
      df__db_err(db, code, "cannot store the change-log settings: %s",
                 rc ? mdb_strerror(rc) : df_txn_errmsg(t));
    df_txn_free(t);
    if (code != DF_ERETRY) break;
  }
  df__buf_free(&b);
  return code;
}

/* ------------------------------------------------------------- writing */

static double wall_clock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void put_u64(unsigned char *p, unsigned char tag, uint64_t v) {
  p[0] = tag;
  df__key_put_u64(p + 1, v);
}

static void put_f64(unsigned char *p, double f) {
  uint64_t u;
  memcpy(&u, &f, 8);
  put_u64(p, 0xcb, u);
}

/* The commit time of the record at v (HEADER_LEN fixed layout). */
static int record_time(const MDB_val *v, double *out) {
  const unsigned char *p = v->mv_data;
  uint64_t u;
  if (v->mv_size < HEADER_LEN || p[0] != 0x97 || p[10] != 0xcb)
    return DF_ECORRUPT;
  u = df__key_get_u64(p + 11);
  memcpy(out, &u, 8);
  return DF_OK;
}

/* Remove the oldest records past the retention; `last` (just written) is
 * always kept. */
static int trim(df_txn *t, uint64_t last, double now) {
  MDB_cursor *c;
  MDB_val k, v;
  int rc, n;
  uint64_t keep = t->stream_keep;
  double secs = t->stream_keep_seconds;
  rc = mdb_cursor_open(t->txn, t->env->dbi_stream, &c);
  if (rc != 0) return rc;
  for (n = 0; n < TRIM_MAX; n++) {
    uint64_t seq;
    double when;
    rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    if (rc == MDB_NOTFOUND) {
      rc = 0;
      break;
    }
    if (rc != 0) break;
    if (k.mv_size != 8) {
      rc = MDB_CORRUPTED;
      break;
    }
    seq = df__key_get_u64(k.mv_data);
    if (seq >= last) break;
    if (!(keep && last - seq >= keep)) {
      if (!(secs > 0) || record_time(&v, &when) != DF_OK ||
          !(when < now - secs))
        break;
    }
    rc = mdb_cursor_del(c, 0);
    if (rc != 0) break;
  }
  mdb_cursor_close(c);
  return rc;
}

int df__stream_append(df_txn *t, df_change *c, const void *old, size_t old_len,
                      const void *new_item, size_t new_len) {
  MDB_val k, v;
  unsigned char key[8], *p;
  uint64_t origin;
  double now;
  int rc;
  if (t->next_seq == 0) {
    MDB_cursor *cur;
    rc = mdb_cursor_open(t->txn, t->env->dbi_stream, &cur);
    if (rc == 0) {
      rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
      if (rc == 0 && k.mv_size != 8) rc = MDB_CORRUPTED;
      if (rc == 0) t->next_seq = df__key_get_u64(k.mv_data) + 1;
      if (rc == MDB_NOTFOUND) {
        t->next_seq = 1;
        rc = 0;
      }
      mdb_cursor_close(cur);
    }
    if (rc != 0) goto failed;
  }
  now = t->now > 0 ? t->now : wall_clock();
  origin = t->db->origin ? t->db->origin : t->env->origin;
  df__key_put_u64(key, t->next_seq);
  k.mv_data = key;
  k.mv_size = 8;
  v.mv_data = NULL;
  v.mv_size = HEADER_LEN + (old ? old_len : 1) + (new_item ? new_len : 1);
  rc = mdb_put(t->txn, t->env->dbi_stream, &k, &v, MDB_APPEND | MDB_RESERVE);
  if (rc != 0) goto failed;
  p = v.mv_data;
  p[0] = 0x97;
  put_u64(p + 1, 0xcf, t->next_seq);
  put_f64(p + 10, now);
  put_u64(p + 19, 0xcf, origin);
  p[28] = (unsigned char)c->action;
  p[29] = c->expired ? 0xc3 : 0xc2;
  p += HEADER_LEN;
  if (old) {
    memcpy(p, old, old_len);
    p += old_len;
  } else {
    *p++ = 0xc0;
  }
  if (new_item)
    memcpy(p, new_item, new_len);
  else
    *p = 0xc0;
  c->seq = t->next_seq;
  rc = trim(t, t->next_seq, now);
  if (rc != 0) goto failed;
  t->next_seq++;
  return DF_OK;
failed:
  if (rc == MDB_MAP_FULL) {
    t->map_full = 1;
    return df__txn_err(t, DF_ERETRY,
                       "the database map is full; it grows at commit: run "
                       "the transaction again");
  }
  t->failed = 1;
  return df__txn_err(t, df__map_err(rc), "change log: %s", mdb_strerror(rc));
}

/* ------------------------------------------------------------- reading */

int df_stream_new(df_stream **out) {
  df_stream *s;
  if (out == NULL) return DF_EINVAL;
  *out = s = df__malloc(sizeof *s);
  if (s == NULL) return DF_ENOMEM;
  memset(s, 0, sizeof *s);
  df__buf_init(&s->data);
  return DF_OK;
}

void df_stream_free(df_stream *s) {
  if (s == NULL) return;
  df__buf_free(&s->data);
  df__free(s->off);
  df__free(s);
}

size_t df_stream_count(const df_stream *s) {
  return s ? s->count : 0;
}

uint64_t df_stream_next(const df_stream *s) {
  return s ? s->next : 0;
}

void df_stream_bounds(const df_stream *s, uint64_t *first, uint64_t *last) {
  if (first) *first = s ? s->first : 0;
  if (last) *last = s ? s->last : 0;
}

uint64_t df_db_origin(const df_db *db) {
  if (db == NULL || db->env == NULL) return 0;
  return db->origin ? db->origin : db->env->origin;
}

/* Check a record's layout; *origin receives its origin. */
static int record_check(const MDB_val *k, const MDB_val *v, uint64_t *origin) {
  const unsigned char *p = v->mv_data, *end = p + v->mv_size;
  if (k->mv_size != 8 || v->mv_size < HEADER_LEN + 2 || p[0] != 0x97 ||
      p[1] != 0xcf || df__key_get_u64(p + 2) != df__key_get_u64(k->mv_data) ||
      p[10] != 0xcb || p[19] != 0xcf ||
      (p[28] != DF_EV_PUT && p[28] != DF_EV_DELETE) ||
      (p[29] != 0xc2 && p[29] != 0xc3))
    return DF_ECORRUPT;
  *origin = df__key_get_u64(p + 20);
  p += HEADER_LEN;
  if (df__mp_skip(&p, end) != 0 || df__mp_skip(&p, end) != 0 || p != end)
    return DF_ECORRUPT;
  return DF_OK;
}

static int add(df_stream *s, const MDB_val *v) {
  if (s->count + 2 > s->cap_off) {
    size_t cap = s->cap_off ? s->cap_off * 2 : 64;
    size_t *n = df__realloc(s->off, cap * sizeof *n);
    if (n == NULL) return DF_ENOMEM;
    s->off = n;
    s->cap_off = cap;
  }
  if (s->count == 0) s->off[0] = 0;
  if (df__buf_append(&s->data, v->mv_data, v->mv_size) != 0) return DF_ENOMEM;
  s->count++;
  s->off[s->count] = s->data.len;
  return DF_OK;
}

int df_stream_read(df_db *db, uint64_t after, size_t max, uint64_t skip_origin,
                   df_stream *s) {
  MDB_txn *txn;
  MDB_cursor *c = NULL;
  MDB_val k, v;
  unsigned char key[8];
  int code, rc;
  size_t examined = 0;
  if (s == NULL) return DF_EINVAL;
  if ((code = df__db_check(db)) != DF_OK) return code;
  if (max == 0) max = READ_DEFAULT;
  df__buf_reset(&s->data);
  s->count = 0;
  s->next = after;
  s->first = s->last = 0;
  if ((code = df__read_begin(db, &txn)) != DF_OK) return code;
  rc = mdb_cursor_open(txn, db->env->dbi_stream, &c);
  if (rc == 0) {
    rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == 8) s->last = df__key_get_u64(k.mv_data);
    if (rc == 0) rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    if (rc == 0 && k.mv_size == 8) s->first = df__key_get_u64(k.mv_data);
    if (rc == 0 && after < s->last) {
      df__key_put_u64(key, after + 1);
      k.mv_data = key;
      k.mv_size = 8;
      rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
      /* examine a bounded number of skipped records too */
      while (rc == 0 && s->count < max && examined < max * 4) {
        uint64_t origin;
        code = record_check(&k, &v, &origin);
        if (code != DF_OK) break;
        examined++;
        if (origin != skip_origin || skip_origin == 0) {
          code = add(s, &v);
          if (code != DF_OK) break;
        }
        s->next = df__key_get_u64(k.mv_data);
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
      }
    }
    if (rc == MDB_NOTFOUND) rc = 0;
    mdb_cursor_close(c);
  }
  df__read_end(db, txn);
  if (code == DF_ECORRUPT)
    return df__db_err(db, code, "change log: malformed record");
  if (code != DF_OK) return df__db_err(db, code, "out of memory");
  if (rc != 0)
    return df__db_err(db, df__map_err(rc), "cannot read the change log: %s",
                      mdb_strerror(rc));
  return DF_OK;
}

int df_stream_record_get(const df_stream *s, size_t i, df_stream_record *rec) {
  const unsigned char *p, *end, *q;
  uint64_t u;
  if (s == NULL || rec == NULL || i >= s->count) return DF_EINVAL;
  p = s->data.p + s->off[i];
  end = s->data.p + s->off[i + 1];
  memset(rec, 0, sizeof *rec);
  rec->event.seq = df__key_get_u64(p + 2);
  u = df__key_get_u64(p + 11);
  memcpy(&rec->time, &u, 8);
  rec->origin = df__key_get_u64(p + 20);
  rec->event.action = p[28];
  rec->event.expired = p[29] == 0xc3;
  p += HEADER_LEN;
  q = p;
  if (df__mp_skip(&q, end) != 0) return DF_ECORRUPT; /* checked at read */
  if (*p != 0xc0) {
    rec->event.old = p;
    rec->event.old_len = (size_t)(q - p);
  }
  p = q;
  if (*p != 0xc0) {
    rec->event.new_item = p;
    rec->event.new_len = (size_t)(end - p);
  }
  return DF_OK;
}
