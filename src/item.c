/*
 * item.c -- what the schema says about an item's bytes: its primary key
 * and items-table key, whether it belongs to a (long, hashed) partition
 * value, its TTL value and whether it has expired, and projections of its
 * attributes.  Pure: no LMDB, no handles.
 *
 * Invariants:
 *  - Items keys are hash64(pk) | enc(pk) | enc(sk) (key.c: a long partition
 *    value hashed, a long sort value as prefix + hash), built only by
 *    df__item_key, which applies the one key rule (df__key_check) first.
 *  - An item is expired at `now` when its TTL attribute holds a number
 *    below `now` but not more than DF_TTL_MAX_AGE seconds below it (as
 *    DynamoDB, which leaves items whose time is over five years past: 0,
 *    a common "never", does not expire); NaN never expires.  Nothing else
 *    decides expiry in C (df__ttl_expired).
 */
#include <string.h>

#include "internal.h"

#define KEY_ATTR "key attribute "

int df__item_key(const df_schema *s, const df_key *key, unsigned char *out,
                 size_t *outlen, char *err, size_t errlen) {
  size_t n = 0, m = 0;
  uint64_t h;
  int code;
  code =
      df__key_check(&key->pk, KEY_ATTR, s->pk, DF_KEY_PARTITION, err, errlen);
  if (code != DF_OK) return code;
  if (df__key_enc_partition(&key->pk, out + 8, &n, &h) != DF_OK)
    return df__fmt(err, errlen, DF_EVALIDATION,
                   "key attribute %s cannot be encoded", s->pk);
  df__key_put_u64(out, h);
  n += 8;
  if (s->sk) {
    code = df__key_check(&key->sk, KEY_ATTR, s->sk, DF_KEY_SORT, err, errlen);
    if (code != DF_OK) return code;
    if (df__key_enc_sort(&key->sk, out + n, &m, NULL) != DF_OK)
      return df__fmt(err, errlen, DF_EVALIDATION,
                     "key attribute %s cannot be encoded", s->sk);
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
  if (r >= 0 && s->sk)
    r = df__mp_map_find(item, len, s->sk, strlen(s->sk), &key->sk, NULL, NULL);
  if (r < 0)
    return df__fmt(err, errlen, DF_EVALIDATION, "item bytes are malformed");
  /* the type rule only: lengths are checked when the key is built */
  r = df__key_check(&key->pk, KEY_ATTR, s->pk, DF_KEY_ANY, err, errlen);
  if (r == DF_OK && s->sk)
    r = df__key_check(&key->sk, KEY_ATTR, s->sk, DF_KEY_ANY, err, errlen);
  return r;
}

/* A partition-key value longer than DF_PK_INLINE_MAX is stored in keys as
 * a hash (key.c), its full value only in the item.  Two values whose
 * hashes collide would share a partition: a put checks that the partition
 * holds only its own value (txn.c), and reads check that an item found
 * under a hashed key really carries the value asked for (this function).
 * Whether a key is hashed shows in its first byte after the 8-byte hash. */
int df__item_key_hashed(const unsigned char *k, size_t klen) {
  return klen > 8 && k[8] == DF_TAG_HASHED;
}

/* Does attribute `name` of the item hold exactly the string or binary v? */
static int attr_is(const void *item, size_t len, const char *name,
                   const df_value *v) {
  df_value x;
  if (df__mp_map_find(item, len, name, strlen(name), &x, NULL, NULL) != 1)
    return 0;
  if (x.type != v->type || (x.type != DF_TSTR && x.type != DF_TBIN)) return 0;
  return x.n == v->n && (x.n == 0 || memcmp(x.s, v->s, x.n) == 0);
}

int df__item_pk_is(const df_schema *s, const void *item, size_t len,
                   const df_value *pk) {
  return attr_is(item, len, s->pk, pk);
}

/* Whether key value v may be too long to be kept whole in a key (a
 * hashed partition value, a long sort value), with limit its encoding's
 * room: strings and binaries whose encoding -- at most 2n + 3 bytes, with
 * every byte escaped -- may not fit. */
static int may_be_cut(const df_value *v, size_t limit) {
  return (v->type == DF_TSTR || v->type == DF_TBIN) && 2 * v->n + 3 > limit;
}

int df__item_key_is(const df_schema *s, const unsigned char *k, size_t klen,
                    const void *item, size_t len, const df_key *key) {
  const unsigned char *p = k + 8, *end = k + klen;
  size_t m;
  int is_long;
  if (klen <= 8) return 1;
  /* the usual key: every value whole in the key bytes, which matched */
  if (!may_be_cut(&key->pk, DF_PK_INLINE_MAX) &&
      (!s->sk || !may_be_cut(&key->sk, DF_SK_PREFIX)))
    return 1;
  if (p[0] == DF_TAG_HASHED && !attr_is(item, len, s->pk, &key->pk)) return 0;
  if (!s->sk || (m = df__key_part_len(p, end, NULL)) == 0) return 1;
  p += m;
  if (df__key_part_len(p, end, &is_long) && is_long &&
      !attr_is(item, len, s->sk, &key->sk))
    return 0;
  return 1;
}

int df__item_ttl(const df_schema *s, const void *item, size_t len, df_value *v,
                 double *when) {
  df_value tmp;
  if (v == NULL) v = &tmp;
  if (item == NULL || s->ttl_attr == NULL) return 0;
  if (df__mp_map_find(item, len, s->ttl_attr, strlen(s->ttl_attr), v, NULL,
                      NULL) != 1)
    return 0;
  switch (v->type) {
    case DF_TINT:
      if (when) *when = (double)v->i;
      return 1;
    case DF_TUINT:
      if (when) *when = (double)v->u;
      return 1;
    case DF_TFLOAT:
      if (when) *when = v->f;
      return 1;
    case DF_TDECIMAL: {
      df_dec d;
      double f = 0;
      if (df__dec_from_value(v, &d) != DF_OK) return 0;
      df__dec_double(&d, &f);
      if (when) *when = f;
      return 1;
    }
    default:
      return 0;
  }
}

int df__ttl_expired(double when, double now) {
  return when < now && when >= now - DF_TTL_MAX_AGE;
}

int df__item_expired(const df_schema *s, const void *item, size_t len,
                     double now) {
  double when;
  return df__item_ttl(s, item, len, NULL, &when) && df__ttl_expired(when, now);
}

/* floor(e / 2) for any sign of e. */
static long floor_half(long e) {
  return e >= 0 ? e / 2 : -((1 - e) / 2);
}

/* DynamoDB's size of the number v, as DynamoDB charges it: one byte per
 * base-100 digit (a pair of decimal digits aligned on the decimal point;
 * a digit of place value 10^e is in pair floor(e / 2)) from the first
 * pair holding a significant digit to the last, plus one, plus one when
 * negative.  So 1 costs 2, 123 costs 3, 100.5 costs 4 and -42 costs 3;
 * zero costs 1. */
static uint64_t number_size(const df_value *v) {
  df_dec d;
  long first, last;
  if (df__dec_from_value(v, &d) != DF_OK) return 2;
  if (d.n == 0) return 1;
  last = (long)d.exp;
  first = last + d.n - 1;
  return (uint64_t)(floor_half(first) - floor_half(last) + 2 +
                    (d.sign < 0 ? 1 : 0));
}

/* The size of the value at *p (advanced past it), by DynamoDB's rules:
 * strings and binaries their bytes, numbers as above, booleans and null
 * 1, lists and maps 3 plus their elements (map keys included) plus 1 per
 * element, sets the sum of their elements.  DF_ECORRUPT for bad bytes. */
static int value_size(const unsigned char **p, const unsigned char *end,
                      int depth, uint64_t *out) {
  df_value v;
  uint64_t sum = 0, part;
  size_t i;
  if (depth > DF_MAX_DEPTH + 1 || df__mp_read(p, end, &v) != 0)
    return DF_ECORRUPT;
  switch (v.type) {
    case DF_TSTR:
    case DF_TBIN:
      *out = v.n;
      return DF_OK;
    case DF_TINT:
    case DF_TUINT:
    case DF_TFLOAT:
    case DF_TDECIMAL:
      *out = number_size(&v);
      return DF_OK;
    case DF_TSS:
    case DF_TNS:
    case DF_TBS: {
      const unsigned char *q = (const unsigned char *)v.s, *qe = q + v.u;
      for (i = 0; i < v.n; i++) {
        if (value_size(&q, qe, depth + 1, &part) != DF_OK) return DF_ECORRUPT;
        sum += part;
      }
      *out = sum;
      return DF_OK;
    }
    case DF_TARRAY:
    case DF_TMAP:
      for (i = 0; i < (v.type == DF_TMAP ? 2 * v.n : v.n); i++) {
        if (value_size(p, end, depth + 1, &part) != DF_OK) return DF_ECORRUPT;
        sum += part;
      }
      *out = 3 + sum + v.n;
      return DF_OK;
    default:
      *out = 1;
      return DF_OK;
  }
}

int df__item_size(const void *item, size_t len, uint64_t *size) {
  const unsigned char *p = item, *end;
  df_value m;
  uint64_t sum = 0, part;
  size_t i;
  *size = 0;
  if (!item) return DF_ECORRUPT;
  end = p + len;
  if (df__mp_read(&p, end, &m) != 0 || m.type != DF_TMAP) return DF_ECORRUPT;
  for (i = 0; i < 2 * m.n; i++) {
    if (value_size(&p, end, 1, &part) != DF_OK) return DF_ECORRUPT;
    sum += part;
  }
  *size = sum;
  return DF_OK;
}

/* ------------------------------------------------- keeping stored bytes */

static int is_number(df_type t) {
  return t == DF_TINT || t == DF_TUINT || t == DF_TFLOAT || t == DF_TDECIMAL;
}

/* Are two scalar values (or sets) the same DynamoDB value? */
static int same_value(const df_value *a, const df_value *b) {
  if (is_number(a->type) != is_number(b->type)) return 0;
  if (!is_number(a->type) && a->type != b->type) return 0;
  if (a->type == DF_TNIL) return 1;
  return df__value_cmp(a, b) == 0;
}

/* Append to out the new value at [ns, ne), keeping the bytes of the old
 * value at [os, oe) wherever the two are the same value: the whole old
 * value when they are equal, else, for two maps, key by key, and for two
 * lists of one length, element by element.  *same: the result is the old
 * value's bytes.  DF_OK, DF_ECORRUPT or DF_ENOMEM. */
static int keep(df_buf *out, const unsigned char *os, const unsigned char *oe,
                const unsigned char *ns, const unsigned char *ne, int depth,
                int *same) {
  const unsigned char *op = os, *np = ns;
  df_value ov, nv;
  size_t start = out->len, i;
  int all = 1, code;
  *same = 0;
  if (depth > DF_MAX_DEPTH + 1 || df__mp_read(&op, oe, &ov) != 0 ||
      df__mp_read(&np, ne, &nv) != 0)
    return DF_ECORRUPT;
  if (nv.type == DF_TMAP && ov.type == DF_TMAP) {
    df__mp_put_map(out, (uint32_t)nv.n);
    for (i = 0; i < nv.n; i++) {
      const unsigned char *ks = np, *vs, *ve, *ovs, *ove;
      df_value k;
      int r, s;
      if (df__mp_read(&np, ne, &k) != 0 ||
          (k.type != DF_TSTR && k.type != DF_TBIN))
        return DF_ECORRUPT;
      vs = ve = np;
      if (df__mp_skip(&ve, ne) != 0) return DF_ECORRUPT;
      np = ve;
      df__buf_append(out, ks, (size_t)(vs - ks));
      r = df__mp_map_find(os, (size_t)(oe - os), k.s, k.n, NULL, &ovs, &ove);
      if (r < 0) return DF_ECORRUPT;
      if (r == 0) {
        df__buf_append(out, vs, (size_t)(ve - vs));
        all = 0;
        continue;
      }
      if ((code = keep(out, ovs, ove, vs, ve, depth + 1, &s)) != DF_OK)
        return code;
      all = all && s;
    }
    if (all && nv.n == ov.n) goto old; /* every key kept: the old map */
    return out->failed ? DF_ENOMEM : DF_OK;
  }
  if (nv.type == DF_TARRAY && ov.type == DF_TARRAY && nv.n == ov.n) {
    df__mp_put_array(out, (uint32_t)nv.n);
    for (i = 0; i < nv.n; i++) {
      const unsigned char *a = op, *b = np;
      int s;
      if (df__mp_skip(&op, oe) != 0 || df__mp_skip(&np, ne) != 0)
        return DF_ECORRUPT;
      if ((code = keep(out, a, op, b, np, depth + 1, &s)) != DF_OK) return code;
      all = all && s;
    }
    if (all) goto old;
    return out->failed ? DF_ENOMEM : DF_OK;
  }
  if (nv.type != DF_TMAP && nv.type != DF_TARRAY && ov.type != DF_TMAP &&
      ov.type != DF_TARRAY && same_value(&ov, &nv))
    goto old;
  np = ns;
  if (df__mp_skip(&np, ne) != 0) return DF_ECORRUPT;
  df__buf_append(out, ns, (size_t)(np - ns));
  return out->failed ? DF_ENOMEM : DF_OK;
old:
  out->len = start;
  op = os;
  if (df__mp_skip(&op, oe) != 0) return DF_ECORRUPT;
  df__buf_append(out, os, (size_t)(op - os));
  *same = 1;
  return out->failed ? DF_ENOMEM : DF_OK;
}

int df__item_keep_bytes(const void *old, size_t old_len, const void *new_item,
                        size_t new_len, df_buf *out) {
  int same;
  const unsigned char *o = old, *n = new_item;
  df__buf_reset(out);
  if (old == NULL || old_len == 0) {
    df__buf_append(out, new_item, new_len);
    return out->failed ? DF_ENOMEM : DF_OK;
  }
  return keep(out, o, o + old_len, n, n + new_len, 0, &same);
}

int df__item_project(df_buf *b, const char *const *names, size_t n,
                     const void *item, size_t len) {
  size_t i, j, head = b->len;
  uint32_t count = 0;
  df__buf_append(b, "\xdf\0\0\0\0", 5); /* map32, count fixed below */
  for (i = 0; i < n; i++) {
    const unsigned char *vs, *ve;
    df_value v;
    int dup = 0;
    if (names[i] == NULL) continue;
    for (j = 0; j < i && !dup; j++)
      dup = names[j] && strcmp(names[j], names[i]) == 0;
    if (dup || df__mp_map_find(item, len, names[i], strlen(names[i]), &v, &vs,
                               &ve) != 1)
      continue;
    df__mp_put_str(b, names[i], strlen(names[i]));
    df__buf_append(b, vs, (size_t)(ve - vs));
    count++;
  }
  if (b->failed) return DF_ENOMEM;
  b->p[head + 1] = (unsigned char)(count >> 24);
  b->p[head + 2] = (unsigned char)(count >> 16);
  b->p[head + 3] = (unsigned char)(count >> 8);
  b->p[head + 4] = (unsigned char)count;
  return DF_OK;
}
