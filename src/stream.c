/*
 * stream.c -- the persisted change log (`stream` sub-database) and its
 * reader, the cross-process change feed.
 *
 * Keys are 8-byte big-endian sequence numbers; values are MessagePack
 * arrays [seq, time, origin, action, expired, old | nil, new | nil] whose
 * items are embedded as they are stored (so any MessagePack tool reads
 * them).  The settings live in the `meta` sub-database under "stream" as
 * a map {keep = records, keep_seconds = seconds} (env.c reads and writes
 * them), so every process agrees; each write transaction reads them once,
 * at its first change.  The writing half works on the write context of
 * write.h; the reading half (df_stream_read) on a handle's read
 * transaction.
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

#include "handle.h"
#include "write.h"

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

int df__stream_enabled(df_write *w) {
  if (w->stream_state == 0) {
    int code = df__env_stream_settings(&w->kv, &w->stream_keep,
                                       &w->stream_keep_seconds);
    if (code != DF_OK)
      return df__fmt(w->errmsg, sizeof w->errmsg, code,
                     "cannot read the change-log settings");
    w->stream_state = (w->stream_keep || w->stream_keep_seconds > 0) ? 1 : 2;
  }
  return w->stream_state == 1;
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
static int record_time(const df_bytes *v, double *out) {
  const unsigned char *p = v->p;
  uint64_t u;
  if (v->n < HEADER_LEN || p[0] != 0x97 || p[10] != 0xcb) return DF_ECORRUPT;
  u = df__key_get_u64(p + 11);
  memcpy(out, &u, 8);
  return DF_OK;
}

/* Remove the oldest records past the retention; `last` (just written) is
 * always kept. */
static int trim(df_write *w, uint64_t last, double now) {
  df_kvcursor *c;
  df_bytes k, v;
  int code, n;
  uint64_t keep = w->stream_keep;
  double secs = w->stream_keep_seconds;
  code = df__kv_cursor(&w->kv, DF_SUB_STREAM, &c);
  if (code != DF_OK) return code;
  for (n = 0; n < TRIM_MAX; n++) {
    uint64_t seq;
    double when;
    code = df__kv_step(c, DF_KV_FIRST, &k, &v);
    if (code == DF_ENOTFOUND) {
      code = DF_OK;
      break;
    }
    if (code != DF_OK) break;
    if (k.n != 8) {
      code = DF_ECORRUPT;
      break;
    }
    seq = df__key_get_u64(k.p);
    if (seq >= last) break;
    if (!(keep && last - seq >= keep)) {
      if (!(secs > 0) || record_time(&v, &when) != DF_OK ||
          !(when < now - secs))
        break;
    }
    code = df__kv_cursor_del(&w->kv, DF_SUB_STREAM, c);
    if (code != DF_OK) break;
  }
  df__kv_cursor_close(c);
  return code;
}

/* The sequence number of the next record: one past the last. */
static int next_seq(df_write *w) {
  df_kvcursor *c;
  df_bytes k;
  int code = df__kv_cursor(&w->kv, DF_SUB_STREAM, &c);
  if (code != DF_OK) return code;
  code = df__kv_step(c, DF_KV_LAST, &k, NULL);
  if (code == DF_OK && k.n != 8) code = DF_ECORRUPT;
  if (code == DF_OK) w->next_seq = df__key_get_u64(k.p) + 1;
  if (code == DF_ENOTFOUND) {
    w->next_seq = 1;
    code = DF_OK;
  }
  df__kv_cursor_close(c);
  return code;
}

int df__stream_append(df_write *w, int action, int expired, const void *old,
                      size_t old_len, const void *new_item, size_t new_len,
                      uint64_t *seq) {
  unsigned char key[8], *p;
  void *room;
  double now;
  int code = DF_OK;
  if (w->next_seq == 0 && (code = next_seq(w)) != DF_OK) goto failed;
  now = w->now > 0 ? w->now : wall_clock();
  df__key_put_u64(key, w->next_seq);
  code = df__kv_append(
      &w->kv, DF_SUB_STREAM, key, 8,
      HEADER_LEN + (old ? old_len : 1) + (new_item ? new_len : 1), &room);
  if (code != DF_OK) goto failed;
  p = room;
  p[0] = 0x97;
  put_u64(p + 1, 0xcf, w->next_seq);
  put_f64(p + 10, now);
  put_u64(p + 19, 0xcf, w->origin);
  p[28] = (unsigned char)action;
  p[29] = expired ? 0xc3 : 0xc2;
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
  *seq = w->next_seq;
  code = trim(w, w->next_seq, now);
  if (code != DF_OK) goto failed;
  w->next_seq++;
  return DF_OK;
failed:
  if (code == DF_ERETRY)
    return df__fmt(w->errmsg, sizeof w->errmsg, code,
                   "the database map is full; it grows at commit: run the "
                   "transaction again");
  return df__fmt(w->errmsg, sizeof w->errmsg, code, "change log: %s",
                 df_strerror(code));
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
static int record_check(const df_bytes *k, const df_bytes *v,
                        uint64_t *origin) {
  const unsigned char *p = v->p, *end = p + v->n;
  if (k->n != 8 || v->n < HEADER_LEN + 2 || p[0] != 0x97 || p[1] != 0xcf ||
      df__key_get_u64(p + 2) != df__key_get_u64(k->p) || p[10] != 0xcb ||
      p[19] != 0xcf || (p[28] != DF_EV_PUT && p[28] != DF_EV_DELETE) ||
      (p[29] != 0xc2 && p[29] != 0xc3))
    return DF_ECORRUPT;
  *origin = df__key_get_u64(p + 20);
  p += HEADER_LEN;
  if (df__mp_skip(&p, end) != 0 || df__mp_skip(&p, end) != 0 || p != end)
    return DF_ECORRUPT;
  return DF_OK;
}

static int add(df_stream *s, const df_bytes *v) {
  if (s->count + 2 > s->cap_off) {
    size_t cap = s->cap_off ? s->cap_off * 2 : 64;
    size_t *n = df__realloc(s->off, cap * sizeof *n);
    if (n == NULL) return DF_ENOMEM;
    s->off = n;
    s->cap_off = cap;
  }
  if (s->count == 0) s->off[0] = 0;
  if (df__buf_append(&s->data, v->p, v->n) != 0) return DF_ENOMEM;
  s->count++;
  s->off[s->count] = s->data.len;
  return DF_OK;
}

int df_stream_read(df_db *db, uint64_t after, size_t max, uint64_t skip_origin,
                   df_stream *s) {
  df_kv kv;
  df_kvcursor *c = NULL;
  df_bytes k, v;
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
  if ((code = df__db_read(db, &kv)) != DF_OK) return code;
  rc = df__kv_cursor(&kv, DF_SUB_STREAM, &c);
  if (rc == DF_OK) {
    rc = df__kv_step(c, DF_KV_LAST, &k, &v);
    if (rc == DF_OK && k.n == 8) s->last = df__key_get_u64(k.p);
    if (rc == DF_OK) rc = df__kv_step(c, DF_KV_FIRST, &k, &v);
    if (rc == DF_OK && k.n == 8) s->first = df__key_get_u64(k.p);
    if (rc == DF_OK && after < s->last) {
      df__key_put_u64(key, after + 1);
      k.p = key;
      k.n = 8;
      rc = df__kv_step(c, DF_KV_SEEK, &k, &v);
      /* examine a bounded number of skipped records too */
      while (rc == DF_OK && s->count < max && examined < max * 4) {
        uint64_t origin;
        code = record_check(&k, &v, &origin);
        if (code != DF_OK) break;
        examined++;
        if (origin != skip_origin || skip_origin == 0) {
          code = add(s, &v);
          if (code != DF_OK) break;
        }
        s->next = df__key_get_u64(k.p);
        rc = df__kv_step(c, DF_KV_NEXT, &k, &v);
      }
    }
    if (rc == DF_ENOTFOUND) rc = DF_OK;
    df__kv_cursor_close(c);
  }
  df__db_read_end(db, &kv);
  if (code == DF_ECORRUPT)
    return df__db_err(db, code, "change log: malformed record");
  if (code != DF_OK) return df__db_err(db, code, "out of memory");
  if (rc != DF_OK)
    return df__db_err(db, rc, "cannot read the change log: %s",
                      df_strerror(rc));
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
