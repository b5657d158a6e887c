/*
 * itemjson.c -- stored items as DynamoDB JSON text, and their DynamoDB
 * sizes, straight from the item bytes.
 *
 * `dynafile serve` answers GetItem, Query and Scan with items in
 * DynamoDB's JSON ({"name":{"S":"x"},"n":{"N":"1.5"},...}).  Making a Lua
 * table of each item and writing its text from Lua cost most of such a
 * request's Lua time; this writes the text from the MessagePack bytes
 * (codec.c's format) in one pass, and adds up the item's size by
 * DynamoDB's rules on the way (the 1 MB page of Query and Scan, and the
 * capacity units reported, depend on it).
 *
 * What it writes is what the Lua path (serve/itemjson.lua, ddbjson.lua)
 * writes for the same item, up to JSON's freedom of text: the same
 * values, sets in their stored order (strings and binaries bytewise,
 * numbers numerically: ddbjson's order), numbers as DynamoDB's canonical
 * plain strings (decimal.c's df__dec_str, which gives the Lua path's
 * types.number_string digits), binaries as standard base64.  Attribute
 * order may differ: JSON objects are unordered.
 *
 * Where the Lua path does something other than write a plain value -- a
 * string or attribute name that is not valid UTF-8 (JSON cannot hold
 * it), a number outside DynamoDB's range (an error), nesting deeper than
 * ddbjson allows (an error) -- this returns DF_EVALIDATION and the caller
 * takes the Lua path, so those answers stay exactly as they were.
 *
 * Sizes (DynamoDB Developer Guide, "Item sizes and formats", as
 * serve/size.lua computes them): an attribute is its name's length plus
 * its value; a string or binary its length; a number one byte per pair of
 * decimal digits (pairs aligned on the decimal point) from the first
 * significant pair to the last, plus one, plus one when negative; a
 * boolean or null one byte; a list or map three bytes plus one per
 * element plus the elements (and a map's names); a set its elements.
 *
 * Invariant: reads only inside [p, p + len) (the codec's reader), recurses
 * at most DF_MAX_DEPTH levels, and on any failure leaves the buffer's
 * length as it found it.
 */
#include <string.h>

#include "internal.h"

/* ddbjson's deepest container: one at depth 31 below its attribute is an
 * error there (MAX_VALUE_DEPTH). */
#define JSON_MAX_DEPTH 31

/* What a byte needs inside a JSON string: 0 nothing, 1 an escape
 * (control characters, '"', '\\'), 2 a UTF-8 sequence to check. */
/* clang-format off */
static const unsigned char byte_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};
/* clang-format on */

/* Room for n more bytes (the buffer's own check inline: most calls
 * have it). */
static inline int room(df_buf *b, size_t n) {
  return n <= b->cap - b->len ? DF_OK : df__buf_reserve(b, n);
}

static inline int emit(df_buf *b, const void *s, size_t n) {
  if (room(b, n)) return DF_ENOMEM;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  return DF_OK;
}

static inline int emitc(df_buf *b, unsigned char c) {
  if (room(b, 1)) return DF_ENOMEM;
  b->p[b->len++] = c;
  return DF_OK;
}

/* A string literal, its length known at compile time. */
#define EMIT_LIT(b, lit) emit((b), (lit), sizeof(lit) - 1)

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 when
 * it is not one (overlong forms, surrogates, beyond U+10FFFF refused). */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c >= 0xc2 && c <= 0xdf) {
    if (n < 2 || (s[1] & 0xc0) != 0x80) return 0;
    return 2;
  }
  if (c >= 0xe0 && c <= 0xef) {
    unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    if (n < 3 || s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80) return 0;
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    if (n < 4 || s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80 ||
        (s[3] & 0xc0) != 0x80)
      return 0;
    return 4;
  }
  return 0;
}

/* Whether any of the 8 bytes at s is above 127, a control character,
 * '"' or '\\'.  Once no byte is above 127, subtracting 0x20 from each
 * byte (or 1 from each byte of w xor '"', of w xor '\\') sets a byte's
 * high bit exactly when it is below 0x20 (is '"', is '\\'); no byte
 * borrows from the next unless one already answered yes. */
static inline int word_needs_care(const unsigned char *s) {
  const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
  uint64_t w;
  memcpy(&w, s, 8);
  if (w & high) return 1;
  return (((w - ones * 0x20) | ((w ^ (ones * '"')) - ones) |
           ((w ^ (ones * '\\')) - ones)) &
          high) != 0;
}

/* Append s as a JSON string, quotes included.  DF_EVALIDATION when s is
 * not valid UTF-8. */
static int put_string(df_buf *b, const unsigned char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t i = 0, run = 0;
  if (room(b, n + 2)) return DF_ENOMEM;
  b->p[b->len++] = '"';
  for (;;) {
    unsigned char k = 0;
    size_t u;
    /* eight plain bytes at a time, then byte by byte */
    while (i + 8 <= n && !word_needs_care(s + i)) i += 8;
    while (i < n && (k = byte_class[s[i]]) == 0) i++;
    if (i == n) break;
    if (k == 2) {
      if ((u = utf8_len(s + i, n - i)) == 0) return DF_EVALIDATION;
      i += u;
      continue;
    }
    /* an escape: flush the run before it */
    if (emit(b, s + run, i - run)) return DF_ENOMEM;
    {
      unsigned char c = s[i];
      char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      size_t elen = 6;
      if (c == '"' || c == '\\') {
        e[1] = (char)c;
        elen = 2;
      } else if (c == '\n') {
        e[1] = 'n';
        elen = 2;
      } else if (c == '\t') {
        e[1] = 't';
        elen = 2;
      } else if (c == '\r') {
        e[1] = 'r';
        elen = 2;
      }
      if (emit(b, e, elen)) return DF_ENOMEM;
    }
    run = ++i;
  }
  if (room(b, n - run + 1)) return DF_ENOMEM;
  memcpy(b->p + b->len, s + run, n - run);
  b->len += n - run;
  b->p[b->len++] = '"';
  return DF_OK;
}

/* Append the standard base64 (padded) of s, quotes included. */
static int put_base64(df_buf *b, const unsigned char *s, size_t n) {
  static const char abc[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i, k;
  unsigned char *o;
  if (room(b, (n + 2) / 3 * 4 + 2)) return DF_ENOMEM;
  o = b->p + b->len;
  k = 0;
  o[k++] = '"';
  for (i = 0; i + 2 < n; i += 3) {
    unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
    o[k++] = (unsigned char)abc[v >> 18];
    o[k++] = (unsigned char)abc[(v >> 12) & 63];
    o[k++] = (unsigned char)abc[(v >> 6) & 63];
    o[k++] = (unsigned char)abc[v & 63];
  }
  if (i < n) {
    unsigned v =
        (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0);
    o[k++] = (unsigned char)abc[v >> 18];
    o[k++] = (unsigned char)abc[(v >> 12) & 63];
    o[k++] = i + 1 < n ? (unsigned char)abc[(v >> 6) & 63] : '=';
    o[k++] = '=';
  }
  o[k++] = '"';
  b->len += k;
  return DF_OK;
}

/* floor(x / 2) for any int. */
static long half_down(long x) {
  return x >= 0 ? x / 2 : -((-x + 1) / 2);
}

/* DynamoDB's size of a non-zero number whose significant digits lie at
 * places 10^first down to 10^last (see the top). */
static size_t digits_size(long first, long last, int negative) {
  return (size_t)(half_down(first) - half_down(last) + 2 + (negative != 0));
}

/* DynamoDB's size of a number. */
static size_t number_size(const df_dec *d) {
  if (d->sign == 0) return 1;
  return digits_size((long)d->n - 1 + d->exp, d->exp, d->sign < 0);
}

/* Append a number's canonical string, quotes included; DF_EVALIDATION
 * for one DynamoDB cannot hold. */
static int put_number(df_buf *b, const df_value *v, size_t *size) {
  df_dec d;
  char s[DF_DEC_STR_MAX];
  size_t n;
  int code;
  if (v->type == DF_TINT) {
    /* the common case, without the decimal: digits from the right */
    char t[24];
    size_t k = sizeof t, zeros = 0;
    uint64_t u = v->i < 0 ? 0 - (uint64_t)v->i : (uint64_t)v->i;
    t[--k] = '"';
    if (u == 0) {
      t[--k] = '0';
      *size += 1;
    } else {
      int seen = 0;
      while (u) {
        unsigned dgt = (unsigned)(u % 10);
        if (dgt) seen = 1;
        if (!seen) zeros++;
        t[--k] = (char)('0' + dgt);
        u /= 10;
      }
      /* digits at places (sizeof t - 2 - k) - 1 down to 0; significant
       * down to `zeros` */
      *size += digits_size((long)(sizeof t - 2 - k), (long)zeros, v->i < 0);
      if (v->i < 0) t[--k] = '-';
    }
    t[--k] = '"';
    return emit(b, t + k, sizeof t - k);
  }
  code = df__dec_from_value(v, &d);
  if (code != DF_OK) return code;
  if (d.inf || df__dec_range(&d) != DF_DEC_OK) return DF_EVALIDATION;
  n = df__dec_str(&d, s, sizeof s);
  if (n >= sizeof s) return DF_EVALIDATION;
  *size += number_size(&d);
  if (emitc(b, '"') || emit(b, s, n) || emitc(b, '"')) return DF_ENOMEM;
  return DF_OK;
}

static int is_number(df_type t) {
  return t == DF_TINT || t == DF_TUINT || t == DF_TFLOAT || t == DF_TDECIMAL;
}

/* Append a set's elements as a JSON array. */
static int put_set(df_buf *b, const df_value *set, size_t *size) {
  const unsigned char *p = (const unsigned char *)set->s;
  const unsigned char *end = p + set->u;
  size_t i;
  int code;
  if (emitc(b, '[')) return DF_ENOMEM;
  for (i = 0; i < set->n; i++) {
    df_value e;
    if (i && emitc(b, ',')) return DF_ENOMEM;
    if ((code = df__mp_read(&p, end, &e)) != DF_OK) return code;
    if (set->type == DF_TSS && e.type == DF_TSTR) {
      code = put_string(b, (const unsigned char *)e.s, e.n);
      *size += e.n;
    } else if (set->type == DF_TBS && e.type == DF_TBIN) {
      code = put_base64(b, (const unsigned char *)e.s, e.n);
      *size += e.n;
    } else if (set->type == DF_TNS && is_number(e.type)) {
      code = put_number(b, &e, size);
    } else {
      code = DF_ECORRUPT;
    }
    if (code != DF_OK) return code;
  }
  return emitc(b, ']') ? DF_ENOMEM : DF_OK;
}

static int put_value(df_buf *b, const unsigned char **pp,
                     const unsigned char *end, int depth, size_t *size);

/* The members of a map (names and values) or the elements of a list
 * whose header v was read; *pp moves past them. */
static int put_members(df_buf *b, const df_value *v, const unsigned char **pp,
                       const unsigned char *end, int depth, size_t *size) {
  size_t i;
  int code, is_map = v->type == DF_TMAP;
  if (depth >= JSON_MAX_DEPTH) return DF_EVALIDATION;
  *size += 3;
  if (is_map ? EMIT_LIT(b, "{\"M\":{") : EMIT_LIT(b, "{\"L\":["))
    return DF_ENOMEM;
  for (i = 0; i < v->n; i++) {
    if (i && emitc(b, ',')) return DF_ENOMEM;
    if (is_map) {
      df_value k;
      if ((code = df__mp_read(pp, end, &k)) != DF_OK) return code;
      if (k.type != DF_TSTR) return DF_ECORRUPT;
      if ((code = put_string(b, (const unsigned char *)k.s, k.n)) != DF_OK)
        return code;
      if (emitc(b, ':')) return DF_ENOMEM;
      *size += k.n;
    }
    *size += 1;
    if ((code = put_value(b, pp, end, depth + 1, size)) != DF_OK) return code;
  }
  return emit(b, is_map ? "}}" : "]}", 2);
}

/* Append the AttributeValue of the value at *pp, nested `depth` levels
 * below its attribute; *pp moves past it. */
static int put_value(df_buf *b, const unsigned char **pp,
                     const unsigned char *end, int depth, size_t *size) {
  df_value v;
  int code;
  if (depth > DF_MAX_DEPTH) return DF_ECORRUPT;
  if ((code = df__mp_read(pp, end, &v)) != DF_OK) return code;
  switch (v.type) {
    case DF_TSTR:
      *size += v.n;
      if (EMIT_LIT(b, "{\"S\":")) return DF_ENOMEM;
      code = put_string(b, (const unsigned char *)v.s, v.n);
      break;
    case DF_TBIN:
      *size += v.n;
      if (EMIT_LIT(b, "{\"B\":")) return DF_ENOMEM;
      code = put_base64(b, (const unsigned char *)v.s, v.n);
      break;
    case DF_TINT:
    case DF_TUINT:
    case DF_TFLOAT:
    case DF_TDECIMAL:
      if (EMIT_LIT(b, "{\"N\":")) return DF_ENOMEM;
      code = put_number(b, &v, size);
      break;
    case DF_TBOOL:
      *size += 1;
      return v.i ? EMIT_LIT(b, "{\"BOOL\":true}")
                 : EMIT_LIT(b, "{\"BOOL\":false}");
    case DF_TNIL:
      *size += 1;
      return EMIT_LIT(b, "{\"NULL\":true}");
    case DF_TSS:
    case DF_TNS:
    case DF_TBS:
      if (emit(b,
               v.type == DF_TSS   ? "{\"SS\":"
               : v.type == DF_TNS ? "{\"NS\":"
                                  : "{\"BS\":",
               6))
        return DF_ENOMEM;
      code = put_set(b, &v, size);
      break;
    case DF_TMAP:
    case DF_TARRAY:
      return put_members(b, &v, pp, end, depth, size);
    default:
      return DF_ECORRUPT;
  }
  if (code != DF_OK) return code;
  return emitc(b, '}') ? DF_ENOMEM : DF_OK;
}

int df__item_json(const void *item, size_t len, df_buf *b, size_t *size) {
  const unsigned char *p = (const unsigned char *)item, *end = p + len;
  size_t start = b->len, total = 0, i;
  df_value m;
  int code = df__mp_read(&p, end, &m);
  if (code == DF_OK && m.type != DF_TMAP) code = DF_ECORRUPT;
  if (code == DF_OK && emitc(b, '{')) code = DF_ENOMEM;
  for (i = 0; code == DF_OK && i < m.n; i++) {
    df_value k;
    if (i && emitc(b, ',')) {
      code = DF_ENOMEM;
      break;
    }
    if ((code = df__mp_read(&p, end, &k)) != DF_OK) break;
    if (k.type != DF_TSTR) {
      code = DF_ECORRUPT;
      break;
    }
    total += k.n;
    if ((code = put_string(b, (const unsigned char *)k.s, k.n)) != DF_OK) break;
    if (emitc(b, ':')) {
      code = DF_ENOMEM;
      break;
    }
    code = put_value(b, &p, end, 0, &total);
  }
  if (code == DF_OK && p != end) code = DF_ECORRUPT;
  if (code == DF_OK && emitc(b, '}')) code = DF_ENOMEM;
  if (code == DF_OK && b->failed) code = DF_ENOMEM;
  if (code != DF_OK) {
    b->len = start < b->len ? start : b->len;
    b->failed = 0;
    return code;
  }
  *size = total;
  return DF_OK;
}
