/*
 * decimal.c -- exact decimal numbers, DynamoDB's N: parsing, printing,
 * comparison, addition, conversion from and to int64, uint64 and double,
 * and the order-preserving byte encoding of every number.
 *
 * The value of every number in dynafile is a decimal.  An integer is its
 * digits.  A double that is an integer in the int64 range [-2^63, 2^63)
 * is that integer, exactly: 2^60 as a double is 1152921504606846976, the
 * integer 1 << 60, as Lua has it (1 << 60 == 2^60), so a key written as
 * either is one key on every Lua (5.1 and LuaJIT have only the double).
 * Any other double is the shortest decimal that reads back as the same
 * double (at most 17 significant digits): 0.1 is 0.1, 2^64 is
 * 18446744073709552000.  Each double's value lies inside its own
 * rounding interval, and distinct doubles have disjoint ones, so this
 * keeps the order of doubles, and integers, doubles and decimals compare
 * consistently everywhere (filters, keys, sort order).
 *
 * Invariant: a df_dec is normalised -- no leading or trailing zero digit
 * (d[0] and d[n-1] are not 0), zero has sign 0 and n 0, an infinity has
 * inf 1 and n 0 -- so equal values have equal fields, and df__dec_enc
 * gives equal values equal bytes.
 *
 * The encoding (also the payload of a stored decimal, MessagePack ext
 * type 1, and the number part of keys): a tag byte
 *   0x10 -inf, 0x11 negative, 0x12 zero, 0x13 positive, 0x14 +inf,
 * then, for a finite non-zero value 0.d1d2..dn x 10^A, A + 0x8000 as two
 * bytes big-endian, then the digits as nibbles d+1 (1..10) closed by a 0
 * nibble (and a 0 pad nibble to fill the byte).  For a negative value every
 * byte after the tag is inverted.  So memcmp order is numeric order, and no
 * encoding is a prefix of another (keys may follow it).  At most
 * DF_NUM_ENC_MAX bytes.  Decoding accepts only canonical encodings.
 *
 * Nothing here allocates; every function writes only inside the buffers
 * it is given.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define EXP_BIAS 0x8000
#define EXP_CLAMP                                            \
  1000000000L /* written exponents beyond this: out of range \
               */

static void set_zero(df_dec *d) {
  memset(d, 0, sizeof *d);
}

/* Drop trailing zero digits into the exponent; zero when no digit is
 * left.  Leading zeros must already be gone. */
static void trim(df_dec *d) {
  while (d->n > 0 && d->d[d->n - 1] == 0) {
    d->n--;
    d->exp++;
  }
  if (d->n == 0) set_zero(d);
}

/* ------------------------------------------------------------ parsing */

int df__dec_parse(const char *s, size_t len, df_dec *out) {
  size_t i = 0;
  int sign = 1, any = 0, point = 0, too_many = 0;
  long frac = 0, dropped = 0, e = 0;
  set_zero(out);
  if (!s || len == 0) return DF_DEC_SYNTAX;
  if (s[0] == '+' || s[0] == '-') {
    sign = s[0] == '-' ? -1 : 1;
    i++;
  }
  for (; i < len; i++) {
    char c = s[i];
    if (c == '.') {
      if (point) return DF_DEC_SYNTAX;
      point = 1;
      continue;
    }
    if (c < '0' || c > '9') break;
    any = 1;
    if (point) frac++;
    if (out->n == 0 && c == '0') continue; /* a leading zero */
    if (out->n < DF_DEC_DIGITS) {
      out->d[out->n++] = (unsigned char)(c - '0');
    } else {
      if (c != '0') too_many = 1;
      dropped++;
    }
  }
  if (!any) return DF_DEC_SYNTAX;
  if (i < len) {
    int esign = 1, edigits = 0;
    if (s[i] != 'e' && s[i] != 'E') return DF_DEC_SYNTAX;
    i++;
    if (i < len && (s[i] == '+' || s[i] == '-')) {
      esign = s[i] == '-' ? -1 : 1;
      i++;
    }
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
      edigits = 1;
      if (e < EXP_CLAMP) e = e * 10 + (s[i] - '0');
    }
    if (!edigits || i < len) return DF_DEC_SYNTAX;
    e *= esign;
  }
  if (out->n == 0) {
    set_zero(out);
    return DF_DEC_OK;
  }
  if (too_many) return DF_DEC_PRECISION;
  e = e - frac + dropped;
  if (e > EXP_CLAMP) e = EXP_CLAMP;
  if (e < -EXP_CLAMP) e = -EXP_CLAMP;
  out->sign = sign;
  out->exp = (int)e;
  trim(out);
  return DF_DEC_OK;
}

int df__dec_range(const df_dec *d) {
  long adjusted;
  if (d->inf) return DF_DEC_OVERFLOW;
  if (d->sign == 0) return DF_DEC_OK;
  if (d->n > DF_DEC_MAX_DIGITS) return DF_DEC_PRECISION;
  adjusted = (long)d->exp + d->n - 1;
  if (adjusted > DF_DEC_MAX_EXP) return DF_DEC_OVERFLOW;
  if (adjusted < DF_DEC_MIN_EXP) return DF_DEC_UNDERFLOW;
  return DF_DEC_OK;
}

const char *df__dec_msg(int reason) {
  switch (reason) {
    case DF_DEC_OK:
      return "ok";
    case DF_DEC_SYNTAX:
      return "The parameter cannot be converted to a numeric value";
    case DF_DEC_PRECISION:
      return "Attempting to store more than 38 significant digits in a "
             "Number";
    case DF_DEC_OVERFLOW:
      return "Number overflow. Attempting to store a number with magnitude "
             "larger than supported range";
    case DF_DEC_UNDERFLOW:
      return "Number underflow. Attempting to store a number with magnitude "
             "smaller than supported range";
    case DF_DEC_NAN:
      return "NaN is not a number";
    default:
      return "not a number";
  }
}

/* -------------------------------------------------------- conversions */

void df__dec_from_uint(uint64_t u, df_dec *out) {
  unsigned char tmp[20];
  int k = 0, i;
  set_zero(out);
  if (u == 0) return;
  while (u) {
    tmp[k++] = (unsigned char)(u % 10);
    u /= 10;
  }
  out->sign = 1;
  for (i = 0; i < k; i++) out->d[i] = tmp[k - 1 - i];
  out->n = k;
  trim(out);
}

void df__dec_from_int(int64_t i, df_dec *out) {
  if (i >= 0) {
    df__dec_from_uint((uint64_t)i, out);
  } else {
    df__dec_from_uint(0 - (uint64_t)i, out);
    out->sign = -1;
  }
}

#define TWO63 9223372036854775808.0

int df__dec_from_double(double f, df_dec *out) {
  char buf[40];
  int p;
  set_zero(out);
  if (isnan(f)) return DF_DEC_NAN;
  if (isinf(f)) {
    out->inf = 1;
    out->sign = f < 0 ? -1 : 1;
    return DF_DEC_OK;
  }
  if (f == 0) return DF_DEC_OK; /* -0 too */
  if (f == floor(f) && f >= -TWO63 && f < TWO63) {
    df__dec_from_int((int64_t)f, out);
    return DF_DEC_OK;
  }
  for (p = 15; p <= 17; p++) {
    snprintf(buf, sizeof buf, "%.*e", p - 1, f);
    if (p == 17 || strtod(buf, NULL) == f) break;
  }
  return df__dec_parse(buf, strlen(buf), out);
}

int df__dec_int64(const df_dec *d, int64_t *out) {
  uint64_t u;
  if (d->sign == 0 && !d->inf) {
    *out = 0;
    return 1;
  }
  if (d->sign > 0) {
    if (!df__dec_uint64(d, &u) || u > (uint64_t)INT64_MAX) return 0;
    *out = (int64_t)u;
    return 1;
  }
  {
    df_dec pos = *d;
    pos.sign = 1;
    if (!df__dec_uint64(&pos, &u) || u > (uint64_t)INT64_MAX + 1) return 0;
    *out = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
    return 1;
  }
}

int df__dec_uint64(const df_dec *d, uint64_t *out) {
  uint64_t u = 0;
  int i;
  if (d->inf || d->sign < 0 || d->exp < 0) return 0;
  if (d->sign == 0) {
    *out = 0;
    return 1;
  }
  if (d->n + d->exp > 20) return 0;
  for (i = 0; i < d->n + d->exp; i++) {
    unsigned digit = i < d->n ? d->d[i] : 0;
    if (u > (UINT64_MAX - digit) / 10) return 0;
    u = u * 10 + digit;
  }
  *out = u;
  return 1;
}

int df__dec_double(const df_dec *d, double *out) {
  char buf[DF_DEC_DIGITS + 24];
  df_dec back;
  int i, k = 0;
  if (d->inf) {
    *out = d->sign < 0 ? -HUGE_VAL : HUGE_VAL;
    return 1;
  }
  if (d->sign == 0) {
    *out = 0.0;
    return 1;
  }
  if (d->sign < 0) buf[k++] = '-';
  for (i = 0; i < d->n; i++) buf[k++] = (char)('0' + d->d[i]);
  snprintf(buf + k, sizeof buf - (size_t)k, "e%d", d->exp);
  *out = strtod(buf, NULL);
  if (isinf(*out) || *out == 0) return 0;
  /* a double's value has at most 17 digits, or 19 as an int64 */
  if (d->n > 19) return 0;
  if (df__dec_from_double(*out, &back) != DF_DEC_OK) return 0;
  return df__dec_cmp(&back, d) == 0;
}

int df__dec_from_value(const df_value *v, df_dec *out) {
  size_t used;
  switch (v->type) {
    case DF_TINT:
      df__dec_from_int(v->i, out);
      return DF_OK;
    case DF_TUINT:
      df__dec_from_uint(v->u, out);
      return DF_OK;
    case DF_TFLOAT:
      return df__dec_from_double(v->f, out) == DF_DEC_OK ? DF_OK
                                                         : DF_EVALIDATION;
    case DF_TDECIMAL:
      if (df__dec_dec((const unsigned char *)v->s, v->n, out, &used) != DF_OK ||
          used != v->n)
        return DF_ECORRUPT;
      return DF_OK;
    default:
      set_zero(out);
      return DF_EVALIDATION;
  }
}

/* ----------------------------------------------------------- printing */

/* Append c at buf[k] when there is room (one byte kept for the NUL). */
static void put(char *buf, size_t cap, size_t k, char c) {
  if (k + 1 < cap) buf[k] = c;
}

size_t df__dec_str(const df_dec *d, char *buf, size_t cap) {
  size_t k = 0;
  long i, n = d->n, e = d->exp;
  if (d->inf) {
    const char *s = d->sign < 0 ? "-inf" : "inf";
    for (; s[k]; k++) put(buf, cap, k, s[k]);
  } else if (d->sign == 0) {
    put(buf, cap, k++, '0');
  } else {
    if (d->sign < 0) put(buf, cap, k++, '-');
    if (e >= 0) {
      for (i = 0; i < n; i++) put(buf, cap, k++, (char)('0' + d->d[i]));
      for (i = 0; i < e; i++) put(buf, cap, k++, '0');
    } else if (-e < n) {
      for (i = 0; i < n; i++) {
        if (i == n + e) put(buf, cap, k++, '.');
        put(buf, cap, k++, (char)('0' + d->d[i]));
      }
    } else {
      put(buf, cap, k++, '0');
      put(buf, cap, k++, '.');
      for (i = 0; i < -e - n; i++) put(buf, cap, k++, '0');
      for (i = 0; i < n; i++) put(buf, cap, k++, (char)('0' + d->d[i]));
    }
  }
  if (cap) buf[k < cap ? k : cap - 1] = '\0';
  return k;
}

/* --------------------------------------------------------- comparison */

int df__dec_cmp(const df_dec *a, const df_dec *b) {
  int mag = 0;
  if (a->sign != b->sign) return a->sign < b->sign ? -1 : 1;
  if (a->sign == 0) return 0;
  if (a->inf || b->inf) {
    mag = a->inf == b->inf ? 0 : a->inf ? 1 : -1;
  } else {
    long aa = (long)a->exp + a->n, ab = (long)b->exp + b->n;
    if (aa != ab) {
      mag = aa < ab ? -1 : 1;
    } else {
      int i, m = a->n < b->n ? a->n : b->n;
      for (i = 0; i < m && !mag; i++)
        if (a->d[i] != b->d[i]) mag = a->d[i] < b->d[i] ? -1 : 1;
      if (!mag) mag = a->n < b->n ? -1 : a->n > b->n;
    }
  }
  return a->sign * mag;
}

/* ------------------------------------------------------------ encoding */

size_t df__dec_enc(const df_dec *d, unsigned char *out) {
  long adjusted;
  size_t k, j;
  int i;
  if (d->inf) {
    out[0] = d->sign < 0 ? DF_TAG_NUM_NEGINF : DF_TAG_NUM_POSINF;
    return 1;
  }
  if (d->sign == 0) {
    out[0] = DF_TAG_NUM_ZERO;
    return 1;
  }
  adjusted = (long)d->exp + d->n;
  if (adjusted < -(EXP_BIAS - 1) || adjusted > EXP_BIAS - 1 || d->n < 1 ||
      d->n > DF_DEC_DIGITS)
    return 0;
  out[0] = d->sign < 0 ? DF_TAG_NUM_NEG : DF_TAG_NUM_POS;
  out[1] = (unsigned char)((unsigned long)(adjusted + EXP_BIAS) >> 8);
  out[2] = (unsigned char)(adjusted + EXP_BIAS);
  k = 3;
  for (i = 0; i <= d->n; i += 2) {
    unsigned hi = i < d->n ? d->d[i] + 1u : 0;
    unsigned lo = i + 1 < d->n ? d->d[i + 1] + 1u : 0;
    out[k++] = (unsigned char)(hi << 4 | lo);
  }
  if (d->sign < 0)
    for (j = 1; j < k; j++) out[j] = (unsigned char)~out[j];
  return k;
}

int df__dec_dec(const unsigned char *p, size_t avail, df_dec *out,
                size_t *used) {
  unsigned char inv;
  long adjusted;
  size_t k;
  set_zero(out);
  if (!p || avail < 1) return DF_ECORRUPT;
  switch (p[0]) {
    case DF_TAG_NUM_NEGINF:
    case DF_TAG_NUM_POSINF:
      out->inf = 1;
      out->sign = p[0] == DF_TAG_NUM_NEGINF ? -1 : 1;
      *used = 1;
      return DF_OK;
    case DF_TAG_NUM_ZERO:
      *used = 1;
      return DF_OK;
    case DF_TAG_NUM_NEG:
    case DF_TAG_NUM_POS:
      break;
    default:
      return DF_ECORRUPT;
  }
  inv = p[0] == DF_TAG_NUM_NEG ? 0xff : 0x00;
  if (avail < 4) return DF_ECORRUPT;
  adjusted = (long)(((unsigned)(p[1] ^ inv) << 8) | (p[2] ^ inv)) - EXP_BIAS;
  for (k = 3;; k++) {
    unsigned b, nib[2];
    int h;
    if (k >= avail) goto corrupt;
    b = p[k] ^ inv;
    nib[0] = b >> 4;
    nib[1] = b & 0x0f;
    for (h = 0; h < 2; h++) {
      if (nib[h] == 0) { /* the end: a 0 pad nibble may follow */
        if (h == 0 && nib[1] != 0) goto corrupt;
        goto done;
      }
      if (nib[h] > 10 || out->n >= DF_DEC_DIGITS) goto corrupt;
      out->d[out->n++] = (unsigned char)(nib[h] - 1);
    }
  }
done:
  if (out->n == 0 || out->d[0] == 0 || out->d[out->n - 1] == 0 ||
      adjusted <= -EXP_BIAS)
    goto corrupt;
  out->sign = p[0] == DF_TAG_NUM_NEG ? -1 : 1;
  out->exp = (int)(adjusted - out->n);
  *used = k + 1;
  return DF_OK;
corrupt:
  set_zero(out);
  return DF_ECORRUPT;
}

/* ---------------------------------------------------------- arithmetic */

/* Largest span of digit positions worked on: two operands whose digits
 * lie further apart than this give a sum of more than DF_DEC_DIGITS
 * digits whatever they are. */
#define SPAN_MAX (2 * DF_DEC_DIGITS + 4)

int df__dec_add(const df_dec *a, const df_dec *b0, int negate_b, df_dec *out) {
  df_dec b = *b0;
  unsigned char x[SPAN_MAX + 1], y[SPAN_MAX + 1], r[SPAN_MAX + 1];
  long lo, hi, span, i;
  int sign, top;
  if (negate_b) b.sign = -b.sign;
  if (a->inf || b.inf) return DF_DEC_OVERFLOW;
  if (b.sign == 0) {
    *out = *a;
    return DF_DEC_OK;
  }
  if (a->sign == 0) {
    *out = b;
    return DF_DEC_OK;
  }
  lo = a->exp < b.exp ? a->exp : b.exp;
  hi = (long)a->exp + a->n > (long)b.exp + b.n ? (long)a->exp + a->n
                                               : (long)b.exp + b.n;
  span = hi - lo;
  if (span > SPAN_MAX) return DF_DEC_PRECISION;
  /* little-endian digit arrays aligned at 10^lo */
  memset(x, 0, sizeof x);
  memset(y, 0, sizeof y);
  for (i = 0; i < a->n; i++) x[a->exp - lo + (a->n - 1 - i)] = a->d[i];
  for (i = 0; i < b.n; i++) y[b.exp - lo + (b.n - 1 - i)] = b.d[i];
  if (a->sign == b.sign) {
    int carry = 0;
    sign = a->sign;
    for (i = 0; i <= span; i++) {
      int s = x[i] + y[i] + carry;
      r[i] = (unsigned char)(s % 10);
      carry = s / 10;
    }
  } else {
    df_dec pa = *a, pb = b;
    const unsigned char *big = x, *small = y;
    int borrow = 0, c;
    pa.sign = pb.sign = 1;
    c = df__dec_cmp(&pa, &pb);
    if (c == 0) {
      set_zero(out);
      return DF_DEC_OK;
    }
    sign = c > 0 ? a->sign : b.sign;
    if (c < 0) {
      big = y;
      small = x;
    }
    for (i = 0; i <= span; i++) {
      int s = big[i] - small[i] - borrow;
      borrow = s < 0;
      r[i] = (unsigned char)(s + (borrow ? 10 : 0));
    }
  }
  top = (int)span;
  while (top > 0 && r[top] == 0) top--;
  {
    int low = 0, n;
    while (low < top && r[low] == 0) low++;
    n = top - low + 1;
    if (n > DF_DEC_DIGITS) return DF_DEC_PRECISION;
    set_zero(out);
    out->sign = sign;
    out->n = n;
    out->exp = (int)(lo + low);
    for (i = 0; i < n; i++) out->d[i] = r[top - i];
  }
  return DF_DEC_OK;
}
