/*
 * codec.c -- MessagePack writing and reading, document paths (the one
 * parser of their grammar, and finding them in item bytes), and the
 * comparison of scalar values.
 *
 * Invariant: the reader never reads outside [p, end) and never allocates;
 * every malformed, truncated or too-deep input is DF_ECORRUPT, whatever
 * the bytes (it is fuzzed).  Nesting is walked iteratively with a fixed
 * stack of DF_MAX_DEPTH + 1 counters, so hostile input cannot overflow
 * the C stack.  The writer always uses the smallest integer encoding and
 * float64 for every float.
 *
 * Depth: a scalar has depth 0, a map or array of scalars depth 1, and so
 * on; an item (a map) of depth DF_MAX_DEPTH is accepted, one more level
 * is not.  A set counts as a scalar.
 *
 * DynamoDB's types in MessagePack (the on-disk format of item values):
 *   S    str                    BOOL  true / false
 *   N    int, uint or float64 when one of them holds the number exactly
 *        (a float by its value: see decimal.c), else ext type 1
 *        whose payload is the number's order-preserving encoding
 *        (decimal.c), at most DF_NUM_ENC_MAX bytes, never an infinity
 *   B    bin                    NULL  nil
 *   M    map (str keys)         L     array
 *   SS   ext type 2, NS ext type 3, BS ext type 4: the payload is one
 *        array of the set's elements (str, numbers as N above, bin),
 *        sorted (bytewise; numerically), distinct, at least one.
 * Ext types are written in the smallest form (fixext 1/2/4/8/16, ext
 * 8/16/32).  Any other ext type is malformed.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static int is_num(df_type t) {
  return t == DF_TINT || t == DF_TUINT || t == DF_TFLOAT || t == DF_TDECIMAL;
}

/* ------------------------------------------------------------- writer */

static int put_be(df_buf *b, unsigned char tag, uint64_t v, int nbytes) {
  unsigned char tmp[9];
  int i;
  tmp[0] = tag;
  for (i = 0; i < nbytes; i++)
    tmp[1 + i] = (unsigned char)(v >> (8 * (nbytes - 1 - i)));
  return df__buf_append(b, tmp, (size_t)nbytes + 1);
}

int df__mp_put_nil(df_buf *b) {
  return df__buf_putc(b, 0xc0);
}

int df__mp_put_bool(df_buf *b, int v) {
  return df__buf_putc(b, v ? 0xc3 : 0xc2);
}

int df__mp_put_uint(df_buf *b, uint64_t v) {
  if (v < 0x80) return df__buf_putc(b, (unsigned char)v);
  if (v <= 0xff) return put_be(b, 0xcc, v, 1);
  if (v <= 0xffff) return put_be(b, 0xcd, v, 2);
  if (v <= 0xffffffffu) return put_be(b, 0xce, v, 4);
  return put_be(b, 0xcf, v, 8);
}

int df__mp_put_int(df_buf *b, int64_t v) {
  if (v >= 0) return df__mp_put_uint(b, (uint64_t)v);
  if (v >= -32) return df__buf_putc(b, (unsigned char)(0xe0 | (v + 32)));
  if (v >= INT8_MIN) return put_be(b, 0xd0, (uint64_t)v, 1);
  if (v >= INT16_MIN) return put_be(b, 0xd1, (uint64_t)v, 2);
  if (v >= INT32_MIN) return put_be(b, 0xd2, (uint64_t)v, 4);
  return put_be(b, 0xd3, (uint64_t)v, 8);
}

int df__mp_put_float(df_buf *b, double v) {
  uint64_t bits;
  memcpy(&bits, &v, 8);
  return put_be(b, 0xcb, bits, 8);
}

/* Header of a str/bin of n bytes; fix is the fixstr base or 0 for bin. */
static int put_bytes(df_buf *b, int is_str, const void *s, size_t n) {
  int rc;
  if (n > 0xffffffffu) return DF_EINVAL;
  if (is_str && n < 32)
    rc = df__buf_putc(b, (unsigned char)(0xa0 | n));
  else if (n <= 0xff)
    rc = put_be(b, is_str ? 0xd9 : 0xc4, n, 1);
  else if (n <= 0xffff)
    rc = put_be(b, is_str ? 0xda : 0xc5, n, 2);
  else
    rc = put_be(b, is_str ? 0xdb : 0xc6, n, 4);
  if (rc) return rc;
  return df__buf_append(b, s, n);
}

int df__mp_put_str(df_buf *b, const char *s, size_t n) {
  return put_bytes(b, 1, s, n);
}

int df__mp_put_bin(df_buf *b, const void *s, size_t n) {
  return put_bytes(b, 0, s, n);
}

int df__mp_put_array(df_buf *b, uint32_t n) {
  if (n < 16) return df__buf_putc(b, (unsigned char)(0x90 | n));
  if (n <= 0xffff) return put_be(b, 0xdc, n, 2);
  return put_be(b, 0xdd, n, 4);
}

int df__mp_put_map(df_buf *b, uint32_t n) {
  if (n < 16) return df__buf_putc(b, (unsigned char)(0x80 | n));
  if (n <= 0xffff) return put_be(b, 0xde, n, 2);
  return put_be(b, 0xdf, n, 4);
}

int df__mp_put_value(df_buf *b, const df_value *v) {
  switch (v->type) {
    case DF_TNIL:
      return df__mp_put_nil(b);
    case DF_TBOOL:
      return df__mp_put_bool(b, v->i != 0);
    case DF_TINT:
      return df__mp_put_int(b, v->i);
    case DF_TUINT:
      return df__mp_put_uint(b, v->u);
    case DF_TFLOAT:
      return df__mp_put_float(b, v->f);
    case DF_TSTR:
      return df__mp_put_str(b, v->s, v->n);
    case DF_TBIN:
      return df__mp_put_bin(b, v->s, v->n);
    default:
      return DF_EINVAL;
  }
}

int df__mp_put_ext(df_buf *b, int type, const void *p, size_t n) {
  int rc;
  unsigned char t = (unsigned char)(signed char)type;
  if (n > 0xffffffffu) return DF_EINVAL;
  switch (n) {
    case 1:
      rc = df__buf_putc(b, 0xd4);
      break;
    case 2:
      rc = df__buf_putc(b, 0xd5);
      break;
    case 4:
      rc = df__buf_putc(b, 0xd6);
      break;
    case 8:
      rc = df__buf_putc(b, 0xd7);
      break;
    case 16:
      rc = df__buf_putc(b, 0xd8);
      break;
    default:
      if (n <= 0xff)
        rc = put_be(b, 0xc7, n, 1);
      else if (n <= 0xffff)
        rc = put_be(b, 0xc8, n, 2);
      else
        rc = put_be(b, 0xc9, n, 4);
  }
  if (!rc) rc = df__buf_putc(b, t);
  if (!rc && n) rc = df__buf_append(b, p, n);
  return rc;
}

int df__mp_put_dec(df_buf *b, const df_dec *d) {
  int64_t i;
  uint64_t u;
  double f;
  unsigned char enc[DF_NUM_ENC_MAX];
  size_t n;
  if (d->inf) return df__mp_put_float(b, d->sign < 0 ? -HUGE_VAL : HUGE_VAL);
  if (df__dec_int64(d, &i)) return df__mp_put_int(b, i);
  if (df__dec_uint64(d, &u)) return df__mp_put_uint(b, u);
  /* a double's value has at most 17 digits: no strtod for longer ones */
  if (d->n <= 17 && df__dec_double(d, &f)) return df__mp_put_float(b, f);
  n = df__dec_enc(d, enc);
  if (n == 0) return DF_EINVAL;
  return df__mp_put_ext(b, DF_EXT_DECIMAL, enc, n);
}

/* An element of a set being finished: its value and its bytes. */
typedef struct set_elem {
  df_value v;
  size_t off, len;
} set_elem;

/* Stable merge sort of idx[0..n) by the values of e (tmp: n more). */
static void sort_elems(const set_elem *e, size_t *idx, size_t *tmp, size_t n) {
  size_t width, i;
  for (width = 1; width < n; width *= 2) {
    for (i = 0; i < n; i += 2 * width) {
      size_t lo = i, mid = i + width < n ? i + width : n;
      size_t hi = i + 2 * width < n ? i + 2 * width : n, a = lo, b = mid,
             k = lo;
      while (a < mid && b < hi)
        tmp[k++] =
            df__value_cmp(&e[idx[b]].v, &e[idx[a]].v) < 0 ? idx[b++] : idx[a++];
      while (a < mid) tmp[k++] = idx[a++];
      while (b < hi) tmp[k++] = idx[b++];
    }
    memcpy(idx, tmp, n * sizeof *idx);
  }
}

int df__mp_finish_set(df_buf *b, size_t start, df_type kind, size_t count,
                      const char **why) {
  set_elem *e = NULL;
  size_t *idx = NULL, i;
  const unsigned char *p, *end;
  df_buf pay;
  int rc = DF_OK, ext;
  const char *msg = NULL;
  ext = kind == DF_TSS ? DF_EXT_SS : kind == DF_TNS ? DF_EXT_NS : DF_EXT_BS;
  df__buf_init(&pay);
  if (b->failed) return DF_ENOMEM;
  if (count == 0 || (kind != DF_TSS && kind != DF_TNS && kind != DF_TBS)) {
    msg = "a set must hold at least one element";
    rc = DF_EVALIDATION;
    goto done;
  }
  e = df__malloc(count * sizeof *e);
  idx = df__malloc(2 * count * sizeof *idx);
  if (!e || !idx) {
    rc = DF_ENOMEM;
    goto done;
  }
  p = b->p + start;
  end = b->p + b->len;
  for (i = 0; i < count; i++) {
    const unsigned char *q = p;
    df_type t;
    if (df__mp_read(&p, end, &e[i].v) != 0) {
      msg = "malformed element";
      rc = DF_EVALIDATION;
      goto done;
    }
    t = e[i].v.type;
    if ((kind == DF_TSS && t != DF_TSTR) || (kind == DF_TBS && t != DF_TBIN) ||
        (kind == DF_TNS &&
         (!is_num(t) || (t == DF_TFLOAT && isnan(e[i].v.f))))) {
      msg = kind == DF_TSS   ? "a string set holds strings only"
            : kind == DF_TBS ? "a binary set holds binary values only"
                             : "a number set holds numbers only (not NaN)";
      rc = DF_EVALIDATION;
      goto done;
    }
    e[i].off = (size_t)(q - b->p);
    e[i].len = (size_t)(p - q);
    idx[i] = i;
  }
  if (p != end) {
    msg = "malformed element";
    rc = DF_EVALIDATION;
    goto done;
  }
  sort_elems(e, idx, idx + count, count);
  for (i = 1; i < count; i++)
    if (df__value_cmp(&e[idx[i - 1]].v, &e[idx[i]].v) == 0) {
      msg = "a set holds each value once (two elements are equal)";
      rc = DF_EVALIDATION;
      goto done;
    }
  df__mp_put_array(&pay, (uint32_t)count);
  for (i = 0; i < count; i++)
    df__buf_append(&pay, b->p + e[idx[i]].off, e[idx[i]].len);
  if (pay.failed || count > 0xffffffffu) {
    rc = DF_ENOMEM;
    goto done;
  }
  b->len = start;
  rc = df__mp_put_ext(b, ext, pay.p, pay.len);
done:
  if (why) *why = msg;
  df__free(e);
  df__free(idx);
  df__buf_free(&pay);
  return rc;
}

/* ------------------------------------------------------------- reader */

static uint64_t get_be(const unsigned char *p, int nbytes) {
  uint64_t v = 0;
  int i;
  for (i = 0; i < nbytes; i++) v = (v << 8) | p[i];
  return v;
}

/* Read an nbytes big-endian length/value after the tag byte at *p. */
static int take_be(const unsigned char **p, const unsigned char *end,
                   int nbytes, uint64_t *out) {
  if (end - *p < 1 + nbytes) return DF_ECORRUPT;
  *out = get_be(*p + 1, nbytes);
  *p += 1 + nbytes;
  return 0;
}

static int take_bytes(const unsigned char **p, const unsigned char *end,
                      uint64_t n, df_value *v) {
  if ((uint64_t)(end - *p) < n) return DF_ECORRUPT;
  v->s = (const char *)*p;
  v->n = (size_t)n;
  *p += n;
  return 0;
}

/* A container header: every element takes at least one byte, so a count
 * larger than the remaining bytes is corrupt (this also bounds the work
 * done on hostile counts). */
static int take_container(const unsigned char **p, const unsigned char *end,
                          df_type t, uint64_t n, df_value *v) {
  uint64_t room = (uint64_t)(end - *p);
  if (t == DF_TMAP ? n > room / 2 : n > room) return DF_ECORRUPT;
  v->type = t;
  v->n = (size_t)n;
  v->s = (const char *)*p;
  return 0;
}

/* An ext value: the type byte at *p, then n payload bytes.  Only the
 * types of the data model are known (see the top of this file); a set's
 * payload must hold one array, whose elements are checked by
 * df__mp_validate, not here. */
static int take_ext(const unsigned char **p, const unsigned char *end,
                    uint64_t n, df_value *v) {
  const unsigned char *pay, *pend;
  signed char type;
  if (end - *p < 1 || (uint64_t)(end - *p - 1) < n) return DF_ECORRUPT;
  type = (signed char)**p;
  pay = *p + 1;
  pend = pay + n;
  switch (type) {
    case DF_EXT_DECIMAL: {
      df_dec d;
      size_t used;
      /* only DynamoDB numbers are stored (38 digits, exponents -130 to
       * +125: every writer checks it), so any other is corrupt data */
      if (df__dec_dec(pay, (size_t)n, &d, &used) != DF_OK || used != n ||
          d.inf || d.sign == 0 || df__dec_range(&d) != DF_DEC_OK)
        return DF_ECORRUPT;
      v->type = DF_TDECIMAL;
      v->s = (const char *)pay;
      v->n = (size_t)n;
      break;
    }
    case DF_EXT_SS:
    case DF_EXT_NS:
    case DF_EXT_BS: {
      const unsigned char *q = pay;
      df_value a;
      if (df__mp_read(&q, pend, &a) != 0 || a.type != DF_TARRAY)
        return DF_ECORRUPT;
      v->type = type == DF_EXT_SS   ? DF_TSS
                : type == DF_EXT_NS ? DF_TNS
                                    : DF_TBS;
      v->n = a.n;
      v->s = a.s;
      v->u = (uint64_t)(pend - q); /* the elements' bytes */
      break;
    }
    default:
      return DF_ECORRUPT;
  }
  *p = pend;
  return 0;
}

int df__mp_read(const unsigned char **pp, const unsigned char *end,
                df_value *v) {
  const unsigned char *p = *pp;
  uint64_t x = 0;
  unsigned c;
  int rc = 0;

  memset(v, 0, sizeof *v);
  if (!p || p >= end) return DF_ECORRUPT;
  c = *p;
  if (c <= 0x7f) {
    v->type = DF_TINT;
    v->i = (int64_t)c;
    *pp = p + 1;
    return 0;
  }
  if (c >= 0xe0) {
    v->type = DF_TINT;
    v->i = (int64_t)c - 256;
    *pp = p + 1;
    return 0;
  }
  if (c <= 0x8f || (c >= 0x90 && c <= 0x9f)) {
    p++;
    rc = take_container(&p, end, c <= 0x8f ? DF_TMAP : DF_TARRAY, c & 0x0f, v);
    if (!rc) *pp = p;
    return rc;
  }
  if (c <= 0xbf) { /* fixstr */
    p++;
    v->type = DF_TSTR;
    rc = take_bytes(&p, end, c & 0x1f, v);
    if (!rc) *pp = p;
    return rc;
  }
  switch (c) {
    case 0xc0:
      v->type = DF_TNIL;
      p++;
      break;
    case 0xc2:
    case 0xc3:
      v->type = DF_TBOOL;
      v->i = c == 0xc3;
      p++;
      break;
    case 0xc4:
    case 0xc5:
    case 0xc6:
    case 0xd9:
    case 0xda:
    case 0xdb: {
      int nb = c == 0xc4 || c == 0xd9 ? 1 : c == 0xc5 || c == 0xda ? 2 : 4;
      v->type = c <= 0xc6 ? DF_TBIN : DF_TSTR;
      rc = take_be(&p, end, nb, &x);
      if (!rc) rc = take_bytes(&p, end, x, v);
      break;
    }
    case 0xca: {
      float f;
      uint32_t u32;
      rc = take_be(&p, end, 4, &x);
      if (rc) break;
      u32 = (uint32_t)x;
      memcpy(&f, &u32, 4);
      v->type = DF_TFLOAT;
      v->f = (double)f;
      break;
    }
    case 0xcb:
      rc = take_be(&p, end, 8, &x);
      if (rc) break;
      memcpy(&v->f, &x, 8);
      v->type = DF_TFLOAT;
      break;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
      rc = take_be(&p, end, 1 << (c - 0xcc), &x);
      if (rc) break;
      if (x > (uint64_t)INT64_MAX) {
        v->type = DF_TUINT;
        v->u = x;
      } else {
        v->type = DF_TINT;
        v->i = (int64_t)x;
      }
      break;
    case 0xd0:
      rc = take_be(&p, end, 1, &x);
      v->type = DF_TINT;
      v->i = (int8_t)(uint8_t)x;
      break;
    case 0xd1:
      rc = take_be(&p, end, 2, &x);
      v->type = DF_TINT;
      v->i = (int16_t)(uint16_t)x;
      break;
    case 0xd2:
      rc = take_be(&p, end, 4, &x);
      v->type = DF_TINT;
      v->i = (int32_t)(uint32_t)x;
      break;
    case 0xd3:
      rc = take_be(&p, end, 8, &x);
      v->type = DF_TINT;
      v->i = (int64_t)x;
      break;
    case 0xdc:
    case 0xdd:
      rc = take_be(&p, end, c == 0xdc ? 2 : 4, &x);
      if (!rc) rc = take_container(&p, end, DF_TARRAY, x, v);
      break;
    case 0xde:
    case 0xdf:
      rc = take_be(&p, end, c == 0xde ? 2 : 4, &x);
      if (!rc) rc = take_container(&p, end, DF_TMAP, x, v);
      break;
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
      p++;
      rc = take_ext(&p, end, (uint64_t)1 << (c - 0xd4), v);
      break;
    case 0xc7:
    case 0xc8:
    case 0xc9:
      rc = take_be(&p, end, c == 0xc7 ? 1 : c == 0xc8 ? 2 : 4, &x);
      if (!rc) rc = take_ext(&p, end, x, v);
      break;
    default: /* 0xc1 (never used) */
      rc = DF_ECORRUPT;
      break;
  }
  if (rc) {
    memset(v, 0, sizeof *v);
    return DF_ECORRUPT;
  }
  *pp = p;
  return 0;
}

/* Bytes taken by the scalar value at p, or 0 when p holds a container or
 * a malformed or truncated value (callers then take the general path,
 * which reports it).  The fast way over the values a search skips. */
static inline size_t scalar_size(const unsigned char *p,
                                 const unsigned char *end) {
  size_t room = (size_t)(end - p);
  uint64_t n;
  unsigned c;
  if (room == 0) return 0;
  c = p[0];
  if (c <= 0x7f || c >= 0xe0) return 1;
  if ((c & 0xe0) == 0xa0) {
    n = 1 + (uint64_t)(c & 0x1f);
  } else if (c == 0xd9) { /* str 8: the usual longer string */
    if (room < 2) return 0;
    n = 2 + (uint64_t)p[1];
  } else {
    switch (c) {
      case 0xc0:
      case 0xc2:
      case 0xc3:
        return 1;
      case 0xcc:
      case 0xd0:
        n = 2;
        break;
      case 0xcd:
      case 0xd1:
        n = 3;
        break;
      case 0xca:
      case 0xce:
      case 0xd2:
        n = 5;
        break;
      case 0xcb:
      case 0xcf:
      case 0xd3:
        n = 9;
        break;
      case 0xc4:
      case 0xd9:
        if (room < 2) return 0;
        n = 2 + (uint64_t)p[1];
        break;
      case 0xc5:
      case 0xda:
        if (room < 3) return 0;
        n = 3 + ((uint64_t)p[1] << 8 | p[2]);
        break;
      case 0xc6:
      case 0xdb:
        if (room < 5) return 0;
        n = 5 + ((uint64_t)p[1] << 24 | (uint64_t)p[2] << 16 |
                 (uint64_t)p[3] << 8 | p[4]);
        break;
      default:
        return 0; /* containers, 0xc1, ext types */
    }
  }
  return n <= room ? (size_t)n : 0;
}

/* The elements of a set read by df__mp_read: of the set's kind, sorted,
 * distinct, at least one, filling the payload exactly.  0 or
 * DF_ECORRUPT. */
static int check_set(const df_value *set) {
  const unsigned char *p = (const unsigned char *)set->s, *end = p + set->u;
  df_value prev, x;
  size_t i;
  if (set->n == 0) return DF_ECORRUPT;
  for (i = 0; i < set->n; i++) {
    if (df__mp_read(&p, end, &x) != 0) return DF_ECORRUPT;
    switch (set->type) {
      case DF_TSS:
        if (x.type != DF_TSTR) return DF_ECORRUPT;
        break;
      case DF_TBS:
        if (x.type != DF_TBIN) return DF_ECORRUPT;
        break;
      default:
        if (!is_num(x.type) || (x.type == DF_TFLOAT && isnan(x.f)))
          return DF_ECORRUPT;
        break;
    }
    if (i > 0 && df__value_cmp(&prev, &x) != -1) return DF_ECORRUPT;
    prev = x;
  }
  return p == end ? 0 : DF_ECORRUPT;
}

/* Is the float (0xca or 0xcb, whole) at p NaN? */
static int nan_at(const unsigned char *p) {
  if (p[0] == 0xcb) {
    uint64_t x = get_be(p + 1, 8);
    return (x & 0x7ff0000000000000ull) == 0x7ff0000000000000ull &&
           (x & 0x000fffffffffffffull) != 0;
  }
  return p[0] == 0xca && (get_be(p + 1, 4) & 0x7f800000u) == 0x7f800000u &&
         (get_be(p + 1, 4) & 0x007fffffu) != 0;
}

/* Skip one whole value with at most max_depth nested container levels;
 * check 1: also the elements of every set (df__mp_validate); check 2:
 * also refuse NaN, with DF_EVALIDATION (df__mp_validate_item).  stack[d]
 * counts the values still to read at level d. */
static int walk(const unsigned char **pp, const unsigned char *end,
                int max_depth, int check) {
  uint64_t stack[DF_MAX_DEPTH + 1];
  const unsigned char *p = *pp;
  int depth = 0;
  df_value v;
  size_t n;

  if (max_depth < 0) max_depth = 0;
  if (max_depth > DF_MAX_DEPTH) max_depth = DF_MAX_DEPTH;
  stack[0] = 1;
  for (;;) {
    while (stack[depth] == 0) {
      if (depth == 0) {
        *pp = p;
        return 0;
      }
      depth--;
    }
    n = scalar_size(p, end);
    if (n) {
      if (check == 2 && (p[0] == 0xcb || p[0] == 0xca) && nan_at(p))
        return DF_EVALIDATION;
      p += n;
      stack[depth]--;
      continue;
    }
    if (p < end && (*p & 0xe0) == 0x80) {
      /* fixmap or fixarray: the usual nested value, read here as
       * df__mp_read would (the count checked against the bytes left) */
      uint64_t count = *p & 0x0f;
      int is_map = *p < 0x90;
      p++;
      if (count > (is_map ? (uint64_t)(end - p) / 2 : (uint64_t)(end - p)))
        return DF_ECORRUPT;
      stack[depth]--;
      if (depth >= max_depth) return DF_ECORRUPT;
      depth++;
      stack[depth] = is_map ? 2 * count : count;
      continue;
    }
    if (df__mp_read(&p, end, &v)) return DF_ECORRUPT;
    stack[depth]--;
    if (check && (v.type == DF_TSS || v.type == DF_TNS || v.type == DF_TBS) &&
        check_set(&v))
      return DF_ECORRUPT;
    if (v.type == DF_TARRAY || v.type == DF_TMAP) {
      if (depth >= max_depth) return DF_ECORRUPT;
      depth++;
      stack[depth] = v.type == DF_TMAP ? 2 * (uint64_t)v.n : (uint64_t)v.n;
    }
  }
}

/* df__mp_skip, inlined into the searches below.  A small list or map of
 * scalars (a fixarray or fixmap: tags, a nested record) is stepped over
 * here; anything else -- deeper nesting, ext types, malformed bytes -- is
 * left to walk, which decides exactly as for any other value. */
static inline int skip(const unsigned char **pp, const unsigned char *end) {
  const unsigned char *p = *pp;
  size_t n;
  if (p == NULL) return walk(pp, end, DF_MAX_DEPTH, 0);
  n = scalar_size(p, end);
  if (n) {
    *pp = p + n;
    return 0;
  }
  if (p < end && (*p & 0xe0) == 0x80) {
    unsigned left = (*p & 0x0f) * (*p < 0x90 ? 2u : 1u);
    const unsigned char *q = p + 1;
    while (left > 0 && (n = scalar_size(q, end)) != 0) {
      q += n;
      left--;
    }
    if (left == 0) {
      *pp = q;
      return 0;
    }
  }
  return walk(pp, end, DF_MAX_DEPTH, 0);
}

int df__mp_skip(const unsigned char **p, const unsigned char *end) {
  return skip(p, end);
}

int df__mp_validate(const void *p, size_t len, int max_depth) {
  const unsigned char *q = p, *end;
  if (!p || len == 0) return DF_ECORRUPT;
  end = q + len;
  if (walk(&q, end, max_depth, 1)) return DF_ECORRUPT;
  return q == end ? 0 : DF_ECORRUPT;
}

int df__mp_validate_item(const void *p, size_t len) {
  const unsigned char *q = p, *end;
  int rc;
  if (!p || len == 0) return DF_ECORRUPT;
  end = q + len;
  rc = walk(&q, end, DF_MAX_DEPTH, 2);
  if (rc == DF_EVALIDATION) return rc;
  if (rc) return DF_ECORRUPT;
  return q == end ? 0 : DF_ECORRUPT;
}

/* Fill the outputs for a value found at [vs, end). */
static int found(const unsigned char *vs, const unsigned char *end, df_value *v,
                 const unsigned char **vstart, const unsigned char **vend) {
  const unsigned char *q = vs, *e = vs;
  df_value tmp;
  if (!v) v = &tmp;
  if (df__mp_read(&q, end, v)) return DF_ECORRUPT;
  if (vend && skip(&e, end)) return DF_ECORRUPT;
  if (vstart) *vstart = vs;
  if (vend) *vend = e;
  return 1;
}

/* Search the map whose header is at [p, end). */
static int map_find(const unsigned char *p, const unsigned char *end,
                    const char *name, size_t name_len, df_value *v,
                    const unsigned char **vstart, const unsigned char **vend) {
  df_value m, k;
  size_t i;
  if (p < end && (*p & 0xf0) == 0x80) { /* fixmap: the usual item */
    m.n = *p++ & 0x0f;
  } else {
    if (df__mp_read(&p, end, &m)) return DF_ECORRUPT;
    if (m.type != DF_TMAP) return 0;
  }
  for (i = 0; i < m.n; i++) {
    const unsigned char *ks = p;
    if (p < end && (*p & 0xe0) == 0xa0) { /* fixstr key: the usual case */
      size_t kn = *p & 0x1f;
      if ((size_t)(end - p) - 1 < kn) return DF_ECORRUPT;
      p += 1 + kn;
      if (kn == name_len && (kn == 0 || memcmp(ks + 1, name, kn) == 0))
        return found(p, end, v, vstart, vend);
      if (skip(&p, end)) return DF_ECORRUPT;
      continue;
    }
    if (df__mp_read(&p, end, &k)) return DF_ECORRUPT;
    if (k.type == DF_TARRAY || k.type == DF_TMAP) {
      p = ks;
      if (skip(&p, end)) return DF_ECORRUPT;
    } else if ((k.type == DF_TSTR || k.type == DF_TBIN) && k.n == name_len &&
               (name_len == 0 || memcmp(k.s, name, name_len) == 0)) {
      return found(p, end, v, vstart, vend);
    }
    if (skip(&p, end)) return DF_ECORRUPT;
  }
  return 0;
}

int df__mp_map_find(const void *map, size_t len, const char *name,
                    size_t name_len, df_value *v, const unsigned char **vstart,
                    const unsigned char **vend) {
  const unsigned char *p = map;
  if (!map || len == 0) return 0;
  return map_find(p, p + len, name, name_len, v, vstart, vend);
}

/* --------------------------------------------------------------- paths */

static int is_plain_start(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_plain(int c, int mode) {
  if (mode == DF_PATH_EMBEDDED)
    return is_plain_start(c) || (c >= '0' && c <= '9');
  return c != '.' && c != '[' && c != ']' && c != '`';
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* The parser's state: where it is, where quoted names go, and the error. */
typedef struct path_scan {
  const char *s;
  size_t n, pos;
  char *names; /* decoded quoted names, or NULL: quoted names are borrowed */
  size_t names_len;
  df_path *out;
  char *err;
  size_t errlen, err_at;
} path_scan;

static int path_fail(path_scan *ps, size_t at, const char *fmt, ...)
    DF__PRINTF(3, 4);
static int path_fail(path_scan *ps, size_t at, const char *fmt, ...) {
  va_list ap;
  ps->err_at = at;
  if (ps->err && ps->errlen) {
    va_start(ap, fmt);
    vsnprintf(ps->err, ps->errlen, fmt, ap);
    va_end(ap);
  }
  return DF_EVALIDATION;
}

static int add_seg(path_scan *ps, const char *name, size_t len,
                   uint32_t index) {
  df_path *out = ps->out;
  if (out->n >= DF_MAX_DEPTH) /* said at the start of the path */
    return path_fail(ps, 0, "path longer than %d segments", DF_MAX_DEPTH);
  out->seg[out->n].name = name;
  out->seg[out->n].len = len;
  out->seg[out->n].index = index;
  out->n++;
  return DF_OK;
}

/* A `quoted` name at ps->pos (the opening backtick). */
static int scan_quoted(path_scan *ps) {
  const char *s = ps->s;
  size_t open = ps->pos, pos = open + 1, k = 0;
  char *dst = ps->names ? ps->names + ps->names_len : NULL;
  for (;;) {
    int c;
    if (pos >= ps->n) return path_fail(ps, open, "unterminated name");
    c = (unsigned char)s[pos];
    if (c == '`') break;
    if (c == '\\') {
      int h1, h2;
      if (dst == NULL)
        return path_fail(ps, pos,
                         "escapes in a quoted name are not allowed "
                         "here");
      if (pos + 1 >= ps->n) return path_fail(ps, open, "unterminated name");
      switch (s[pos + 1]) {
        case 'n':
          c = '\n';
          break;
        case 't':
          c = '\t';
          break;
        case 'r':
          c = '\r';
          break;
        case '0':
          c = '\0';
          break;
        case '\\':
          c = '\\';
          break;
        case '"':
          c = '"';
          break;
        case '\'':
          c = '\'';
          break;
        case '`':
          c = '`';
          break;
        case 'x':
          h1 = pos + 2 < ps->n ? hexval((unsigned char)s[pos + 2]) : -1;
          h2 = pos + 3 < ps->n ? hexval((unsigned char)s[pos + 3]) : -1;
          if (h1 < 0 || h2 < 0)
            return path_fail(ps, pos, "bad \\x escape (two hex digits)");
          c = h1 * 16 + h2;
          pos += 2;
          break;
        default: {
          unsigned char e = (unsigned char)s[pos + 1];
          if (e >= 0x20 && e < 0x7f)
            return path_fail(ps, pos, "invalid escape '\\%c'", e);
          return path_fail(ps, pos, "invalid escape '\\\\x%02x'", e);
        }
      }
      pos += 2;
    } else {
      pos++;
    }
    if (dst) dst[k] = (char)c;
    k++;
  }
  ps->pos = pos + 1;
  if (dst) {
    ps->names_len += k;
    return add_seg(ps, dst, k, 0);
  }
  return add_seg(ps, s + open + 1, k, 0);
}

/* A name at ps->pos: quoted, or a run of plain characters. */
static int scan_name(path_scan *ps, int mode) {
  size_t st = ps->pos;
  if (st < ps->n && ps->s[st] == '`') return scan_quoted(ps);
  if (st < ps->n &&
      (mode == DF_PATH_WHOLE ? is_plain((unsigned char)ps->s[st], mode)
                             : is_plain_start((unsigned char)ps->s[st]))) {
    while (ps->pos < ps->n && is_plain((unsigned char)ps->s[ps->pos], mode))
      ps->pos++;
    return add_seg(ps, ps->s + st, ps->pos - st, 0);
  }
  if (st == 0) return path_fail(ps, 0, "expected a name");
  return path_fail(ps, st, "expected a name after '.'"); /* where it goes */
}

int df__path_scan(const char *s, size_t n, int mode, char *names, df_path *out,
                  size_t *used, char *err, size_t errlen, size_t *err_at) {
  path_scan ps;
  int rc;
  memset(&ps, 0, sizeof ps);
  ps.s = s;
  ps.n = s ? n : 0;
  ps.names = names;
  ps.out = out;
  ps.err = err;
  ps.errlen = errlen;
  out->n = 0;
  if (ps.n == 0) {
    rc = path_fail(&ps, 0, "empty path");
    goto done;
  }
  if ((rc = scan_name(&ps, mode)) != DF_OK) goto done;
  while (ps.pos < ps.n) {
    size_t at = ps.pos;
    char c = s[at];
    if (c == '.') {
      ps.pos++;
      if ((rc = scan_name(&ps, mode)) != DF_OK) goto done;
    } else if (c == '[') {
      uint64_t v = 0;
      size_t d = ++ps.pos;
      while (ps.pos < ps.n && s[ps.pos] >= '0' && s[ps.pos] <= '9') {
        v = v * 10 + (uint64_t)(s[ps.pos] - '0');
        if (v > DF_PATH_INDEX_MAX) {
          rc = path_fail(&ps, d, "list index too large (at most %d)",
                         DF_PATH_INDEX_MAX);
          goto done;
        }
        ps.pos++;
      }
      if (ps.pos == d || ps.pos >= ps.n || s[ps.pos] != ']') {
        rc = path_fail(&ps, at, "expected a list index");
        goto done;
      }
      ps.pos++;
      if ((rc = add_seg(&ps, NULL, 0, (uint32_t)v)) != DF_OK) goto done;
    } else if (mode == DF_PATH_EMBEDDED) {
      break; /* the path ends here */
    } else {
      rc = c >= 0x20 && c < 0x7f
               ? path_fail(&ps, at, "unexpected '%c'", c)
               : path_fail(&ps, at, "unexpected byte 0x%02x", (unsigned char)c);
      goto done;
    }
  }
  rc = DF_OK;
done:
  if (used) *used = ps.pos;
  if (err_at) *err_at = ps.err_at;
  return rc;
}

int df__path_parse(const char *s, size_t n, df_path *out) {
  return df__path_scan(s, n, DF_PATH_WHOLE, NULL, out, NULL, NULL, 0, NULL);
}

int df__mp_path_find(const void *item, size_t len, const df_path *path,
                     df_value *v, const unsigned char **vstart,
                     const unsigned char **vend) {
  const unsigned char *p = item, *end;
  size_t k;
  if (!item || len == 0) return 0;
  end = p + len;
  for (k = 0; k < path->n; k++) {
    const df_path_seg *sg = &path->seg[k];
    const unsigned char *s = NULL, *e = NULL;
    int rc;
    if (sg->name) {
      rc = map_find(p, end, sg->name, sg->len, NULL, &s, &e);
    } else {
      df_value a;
      uint32_t j;
      const unsigned char *q = p;
      if (df__mp_read(&q, end, &a)) return DF_ECORRUPT;
      if (a.type != DF_TARRAY || sg->index >= a.n) return 0;
      for (j = 0; j < sg->index; j++)
        if (df__mp_skip(&q, end)) return DF_ECORRUPT;
      rc = found(q, end, NULL, &s, &e);
    }
    if (rc <= 0) return rc;
    p = s;
    end = e;
  }
  return found(p, end, v, vstart, vend);
}

/* ---------------------------------------------------------- comparison */

#define TWO63 9223372036854775808.0
#define TWO64 18446744073709551616.0

static int sign3(int c) {
  return c < 0 ? -1 : c > 0;
}

/* Exact comparison of an unsigned integer with a double. */
static int cmp_u64_f(uint64_t u, double f) {
  double t;
  uint64_t tu;
  if (isnan(f)) return 2;
  if (f < 0) return 1;
  if (f >= TWO64) return -1;
  t = floor(f);
  tu = (uint64_t)t;
  if (u < tu) return -1;
  if (u > tu) return 1;
  return f > t ? -1 : 0;
}

/* Exact comparison of a signed integer with a double. */
static int cmp_i64_f(int64_t i, double f) {
  double t;
  int64_t ti;
  if (i >= 0) return cmp_u64_f((uint64_t)i, f);
  if (isnan(f)) return 2;
  if (f >= 0) return -1;
  if (f < -TWO63) return 1;
  t = ceil(f); /* in [-2^63, 0] */
  ti = (int64_t)t;
  if (i < ti) return -1;
  if (i > ti) return 1;
  return f < t ? 1 : 0;
}

static int cmp_i64_u64(int64_t i, uint64_t u) {
  if (i < 0) return -1;
  return (uint64_t)i < u ? -1 : (uint64_t)i > u;
}

/* Compare as decimals (the rule for every number; see decimal.c). */
static int cmp_dec(const df_value *a, const df_value *b) {
  df_dec x, y;
  if (df__dec_from_value(a, &x) != DF_OK || df__dec_from_value(b, &y) != DF_OK)
    return 2;
  return df__dec_cmp(&x, &y);
}

#define TWO53 9007199254740992.0

/* A double's value is df__dec_from_double's.  Below 2^53 in magnitude
 * that value and the double's exact binary value stand in the same order
 * to every integer (integers there are doubles themselves), so the exact
 * comparison gives the answer; beyond, the decimal decides. */
static int cmp_int_float(const df_value *iv, double f) {
  if (isnan(f)) return 2;
  if (fabs(f) >= TWO53 && !isinf(f)) {
    df_value fv;
    memset(&fv, 0, sizeof fv);
    fv.type = DF_TFLOAT;
    fv.f = f;
    return cmp_dec(iv, &fv);
  }
  return iv->type == DF_TINT ? cmp_i64_f(iv->i, f) : cmp_u64_f(iv->u, f);
}

static int cmp_num(const df_value *a, const df_value *b) {
  if (a->type == DF_TFLOAT && b->type == DF_TFLOAT) {
    if (isnan(a->f) || isnan(b->f)) return 2;
    return a->f < b->f ? -1 : a->f > b->f;
  }
  if (a->type == DF_TDECIMAL || b->type == DF_TDECIMAL) return cmp_dec(a, b);
  if (a->type == DF_TFLOAT) {
    int c = cmp_int_float(b, a->f);
    return c == 2 ? 2 : -c;
  }
  if (b->type == DF_TFLOAT) return cmp_int_float(a, b->f);
  if (a->type == DF_TINT && b->type == DF_TINT)
    return a->i < b->i ? -1 : a->i > b->i;
  if (a->type == DF_TUINT && b->type == DF_TUINT)
    return a->u < b->u ? -1 : a->u > b->u;
  if (a->type == DF_TINT) return cmp_i64_u64(a->i, b->u);
  return -cmp_i64_u64(b->i, a->u);
}

static int is_set(df_type t) {
  return t == DF_TSS || t == DF_TNS || t == DF_TBS;
}

/* Two sets of one kind: 0 when they hold the same elements, else 2.
 * Stored sets are sorted and distinct, so element i meets element i. */
static int cmp_set(const df_value *a, const df_value *b) {
  const unsigned char *p = (const unsigned char *)a->s, *pe = p + a->u;
  const unsigned char *q = (const unsigned char *)b->s, *qe = q + b->u;
  size_t i;
  if (a->n != b->n) return 2;
  for (i = 0; i < a->n; i++) {
    df_value x, y;
    if (df__mp_read(&p, pe, &x) || df__mp_read(&q, qe, &y) ||
        df__value_cmp(&x, &y) != 0)
      return 2;
  }
  return 0;
}

int df__mp_set_contains(const df_value *set, const df_value *x) {
  const unsigned char *p = (const unsigned char *)set->s, *end = p + set->u;
  size_t i;
  if (!is_set(set->type)) return 0;
  for (i = 0; i < set->n; i++) {
    df_value e;
    int c;
    if (df__mp_read(&p, end, &e)) return DF_ECORRUPT;
    c = df__value_cmp(&e, x);
    if (c == 0) return 1;
    if (c == 1) return 0; /* sorted: x is not further on */
  }
  return 0;
}

/* Strings compare with strings, binaries with binaries (DynamoDB's S and B
 * are different types). */
int df__value_cmp(const df_value *a, const df_value *b) {
  if (is_num(a->type) && is_num(b->type)) return cmp_num(a, b);
  if ((a->type == DF_TSTR && b->type == DF_TSTR) ||
      (a->type == DF_TBIN && b->type == DF_TBIN)) {
    size_t m = a->n < b->n ? a->n : b->n;
    int c = m ? memcmp(a->s, b->s, m) : 0;
    if (c) return sign3(c);
    return a->n < b->n ? -1 : a->n > b->n;
  }
  if (a->type == DF_TBOOL && b->type == DF_TBOOL) {
    int x = a->i != 0, y = b->i != 0;
    return x < y ? -1 : x > y;
  }
  if (a->type == DF_TNIL && b->type == DF_TNIL) return 0;
  if (is_set(a->type) && a->type == b->type) return cmp_set(a, b);
  return 2;
}
