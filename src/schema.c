/*
 * schema.c -- the schema as a record: validated deep copies, comparison,
 * the change an open asks for, and the MessagePack record stored under
 * "schema" in the `meta` sub-database (env.c stores and loads it).
 *
 * Invariant: a df_schema_owned keeps every string in one allocation
 * (`blob`), so it is freed with one call and copied without aliasing.
 * Index ids are assigned once, never reused while the index exists, and
 * are stored with the index, so an index keeps its key prefix forever.
 */
#include <stdio.h>
#include <string.h>

#include "schema.h"

/* Offsets of strings in the builder's buffer, fixed into pointers last. */
#define NONE ((size_t)-1)

typedef struct builder {
  df_buf b;
  size_t pk, sk, ttl;
  struct {
    size_t name, pk, sk;
    size_t inc[DF_MAX_INDEXES];
  } idx[DF_MAX_INDEXES];
  int kind[DF_MAX_INDEXES], proj[DF_MAX_INDEXES];
  unsigned id[DF_MAX_INDEXES];
  size_t n_inc[DF_MAX_INDEXES];
  size_t n;
} builder;

static size_t add_str(builder *bd, const char *s, size_t n) {
  size_t off = bd->b.len;
  if (s == NULL) return NONE;
  df__buf_append(&bd->b, s, n);
  df__buf_putc(&bd->b, 0);
  return off;
}

static const char *at(const builder *bd, const char *base, size_t off) {
  (void)bd;
  return off == NONE ? NULL : base + off;
}

static int finish(builder *bd, df_schema_owned *out) {
  size_t i, j, n_inc_total = 0;
  const char **incs;
  char *base;
  if (bd->b.failed) return DF_ENOMEM;
  for (i = 0; i < bd->n; i++) n_inc_total += bd->n_inc[i];
  /* The include pointer arrays live after the strings, aligned. */
  while (bd->b.len % sizeof(char *)) df__buf_putc(&bd->b, 0);
  {
    size_t arr_off = bd->b.len;
    if (df__buf_reserve(&bd->b, (n_inc_total + 1) * sizeof(char *)) != 0)
      return DF_ENOMEM;
    bd->b.len += (n_inc_total + 1) * sizeof(char *);
    base = (char *)bd->b.p;
    incs = (const char **)(void *)(base + arr_off);
  }
  memset(out, 0, sizeof *out);
  out->format = DF_FORMAT_VERSION;
  out->blob = (char *)bd->b.p;
  out->s.pk = at(bd, base, bd->pk);
  out->s.sk = at(bd, base, bd->sk);
  out->s.ttl_attr = at(bd, base, bd->ttl);
  out->s.indexes = out->idx;
  out->s.n_indexes = bd->n;
  for (i = 0; i < bd->n; i++) {
    df_index_def *d = &out->idx[i];
    d->name = at(bd, base, bd->idx[i].name);
    d->pk = at(bd, base, bd->idx[i].pk);
    d->sk = at(bd, base, bd->idx[i].sk);
    d->kind = bd->kind[i];
    d->projection = bd->proj[i];
    d->id = bd->id[i];
    d->include = incs;
    d->n_include = bd->n_inc[i];
    for (j = 0; j < bd->n_inc[i]; j++) *incs++ = base + bd->idx[i].inc[j];
  }
  bd->b.p = NULL; /* now owned by out->blob */
  return DF_OK;
}

void df__schema_move(df_schema_owned *dst, df_schema_owned *src) {
  *dst = *src;
  dst->s.indexes = dst->idx;
  memset(src, 0, sizeof *src);
}

void df__schema_free(df_schema_owned *s) {
  if (s == NULL) return;
  df__free(s->blob);
  memset(s, 0, sizeof *s);
}

static int bad(char *err, size_t errlen, const char *fmt, ...) DF__PRINTF(3, 4);
static int bad(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return DF_EVALIDATION;
}

static int check_def(const df_index_def *d, const df_schema *in, size_t i,
                     char *err, size_t errlen) {
  size_t j;
  if (d->name == NULL || d->name[0] == '\0')
    return bad(err, errlen, "every index definition needs a name");
  for (j = 0; j < i; j++)
    if (strcmp(in->indexes[j].name, d->name) == 0)
      return bad(err, errlen, "index %s is defined twice", d->name);
  if (d->kind == DF_GSI) {
    if (d->pk == NULL || d->pk[0] == '\0')
      return bad(err, errlen, "global index %s needs a pk attribute", d->name);
  } else if (d->kind == DF_LSI) {
    if (d->sk == NULL || d->sk[0] == '\0')
      return bad(err, errlen, "local index %s needs an sk attribute", d->name);
    if (in->sk == NULL)
      return bad(err, errlen, "local index %s needs a table with a sort key",
                 d->name);
  } else {
    return bad(err, errlen, "index %s has an unknown kind", d->name);
  }
  if (d->sk && d->sk[0] == '\0')
    return bad(err, errlen, "index %s: sk must be a non-empty name", d->name);
  if (d->projection < DF_PROJ_ALL || d->projection > DF_PROJ_INCLUDE)
    return bad(err, errlen, "index %s has an unknown projection", d->name);
  for (j = 0; d->projection == DF_PROJ_INCLUDE && j < d->n_include; j++)
    if (d->include[j] == NULL || d->include[j][0] == '\0')
      return bad(err, errlen, "index %s: projection names must be non-empty",
                 d->name);
  if (d->projection == DF_PROJ_INCLUDE && d->n_include > DF_MAX_INDEXES)
    return bad(err, errlen, "index %s: too many projected attributes", d->name);
  return DF_OK;
}

int df__schema_copy(const df_schema *in, df_schema_owned *out, char *err,
                    size_t errlen) {
  builder bd;
  size_t i, j;
  unsigned next_id = 1;
  int code;
  if (in->pk == NULL || in->pk[0] == '\0')
    return bad(err, errlen, "pk must be a non-empty attribute name");
  if (in->sk && in->sk[0] == '\0')
    return bad(err, errlen, "sk must be a non-empty attribute name or false");
  if (in->sk && strcmp(in->sk, in->pk) == 0)
    return bad(err, errlen, "sk must differ from pk (%s)", in->pk);
  if (in->ttl_attr && in->ttl_attr[0] == '\0')
    return bad(err, errlen, "ttl must be a non-empty attribute name");
  if (in->n_indexes > DF_MAX_INDEXES)
    return bad(err, errlen, "too many indexes (at most %d)", DF_MAX_INDEXES);
  for (i = 0; i < in->n_indexes; i++) {
    code = check_def(&in->indexes[i], in, i, err, errlen);
    if (code != DF_OK) return code;
    if (in->indexes[i].id >= next_id) next_id = in->indexes[i].id + 1;
  }
  memset(&bd, 0, sizeof bd);
  df__buf_init(&bd.b);
  bd.pk = add_str(&bd, in->pk, strlen(in->pk));
  bd.sk = in->sk ? add_str(&bd, in->sk, strlen(in->sk)) : NONE;
  bd.ttl =
      in->ttl_attr ? add_str(&bd, in->ttl_attr, strlen(in->ttl_attr)) : NONE;
  bd.n = in->n_indexes;
  for (i = 0; i < in->n_indexes; i++) {
    const df_index_def *d = &in->indexes[i];
    bd.idx[i].name = add_str(&bd, d->name, strlen(d->name));
    bd.idx[i].pk = d->pk ? add_str(&bd, d->pk, strlen(d->pk)) : NONE;
    bd.idx[i].sk = d->sk ? add_str(&bd, d->sk, strlen(d->sk)) : NONE;
    bd.kind[i] = d->kind;
    bd.proj[i] = d->projection;
    bd.id[i] = d->id ? d->id : next_id++;
    if (bd.id[i] > 255) {
      df__buf_free(&bd.b);
      return bad(err, errlen, "no free index id for %s", d->name);
    }
    bd.n_inc[i] = d->projection == DF_PROJ_INCLUDE ? d->n_include : 0;
    for (j = 0; j < bd.n_inc[i]; j++)
      bd.idx[i].inc[j] = add_str(&bd, d->include[j], strlen(d->include[j]));
  }
  code = finish(&bd, out);
  df__buf_free(&bd.b);
  return code;
}

/* ------------------------------------------------------------ encoding */

static void put_kv_str(df_buf *b, const char *k, const char *v) {
  df__mp_put_str(b, k, strlen(k));
  if (v)
    df__mp_put_str(b, v, strlen(v));
  else
    df__mp_put_nil(b);
}

int df__schema_encode(const df_schema *s, df_buf *b) {
  size_t i, j;
  df__mp_put_map(b, 5);
  df__mp_put_str(b, "format", 6);
  df__mp_put_int(b, DF_FORMAT_VERSION);
  put_kv_str(b, "pk", s->pk);
  put_kv_str(b, "sk", s->sk);
  put_kv_str(b, "ttl", s->ttl_attr);
  df__mp_put_str(b, "indexes", 7);
  df__mp_put_array(b, (uint32_t)s->n_indexes);
  for (i = 0; i < s->n_indexes; i++) {
    const df_index_def *d = &s->indexes[i];
    df__mp_put_map(b, 7);
    put_kv_str(b, "name", d->name);
    df__mp_put_str(b, "id", 2);
    df__mp_put_int(b, d->id);
    df__mp_put_str(b, "kind", 4);
    df__mp_put_int(b, d->kind);
    put_kv_str(b, "pk", d->pk);
    put_kv_str(b, "sk", d->sk);
    df__mp_put_str(b, "projection", 10);
    df__mp_put_int(b, d->projection);
    df__mp_put_str(b, "include", 7);
    df__mp_put_array(b, (uint32_t)d->n_include);
    for (j = 0; j < d->n_include; j++)
      df__mp_put_str(b, d->include[j], strlen(d->include[j]));
  }
  return b->failed ? DF_ENOMEM : DF_OK;
}

static int key_is(const df_value *k, const char *s) {
  size_t n = strlen(s);
  return k->type == DF_TSTR && k->n == n && memcmp(k->s, s, n) == 0;
}

static int read_opt_str(const unsigned char **p, const unsigned char *end,
                        builder *bd, size_t *off) {
  df_value v;
  if (df__mp_read(p, end, &v) != 0) return DF_ECORRUPT;
  if (v.type == DF_TNIL) {
    *off = NONE;
    return DF_OK;
  }
  if (v.type != DF_TSTR || v.n == 0 || memchr(v.s, 0, v.n)) return DF_ECORRUPT;
  *off = add_str(bd, v.s, v.n);
  return DF_OK;
}

static int read_int(const unsigned char **p, const unsigned char *end,
                    int64_t *out) {
  df_value v;
  if (df__mp_read(p, end, &v) != 0 || v.type != DF_TINT) return DF_ECORRUPT;
  *out = v.i;
  return DF_OK;
}

static int decode_index(const unsigned char **p, const unsigned char *end,
                        builder *bd, size_t i) {
  df_value m, k, arr;
  size_t f, j;
  int64_t n;
  if (df__mp_read(p, end, &m) != 0 || m.type != DF_TMAP) return DF_ECORRUPT;
  bd->idx[i].name = bd->idx[i].pk = bd->idx[i].sk = NONE;
  for (f = 0; f < m.n; f++) {
    if (df__mp_read(p, end, &k) != 0) return DF_ECORRUPT;
    if (key_is(&k, "name")) {
      if (read_opt_str(p, end, bd, &bd->idx[i].name)) return DF_ECORRUPT;
    } else if (key_is(&k, "pk")) {
      if (read_opt_str(p, end, bd, &bd->idx[i].pk)) return DF_ECORRUPT;
    } else if (key_is(&k, "sk")) {
      if (read_opt_str(p, end, bd, &bd->idx[i].sk)) return DF_ECORRUPT;
    } else if (key_is(&k, "id")) {
      if (read_int(p, end, &n) || n < 1 || n > 255) return DF_ECORRUPT;
      bd->id[i] = (unsigned)n;
    } else if (key_is(&k, "kind")) {
      if (read_int(p, end, &n) || (n != DF_GSI && n != DF_LSI))
        return DF_ECORRUPT;
      bd->kind[i] = (int)n;
    } else if (key_is(&k, "projection")) {
      if (read_int(p, end, &n) || n < DF_PROJ_ALL || n > DF_PROJ_INCLUDE)
        return DF_ECORRUPT;
      bd->proj[i] = (int)n;
    } else if (key_is(&k, "include")) {
      if (df__mp_read(p, end, &arr) != 0 || arr.type != DF_TARRAY ||
          arr.n > DF_MAX_INDEXES)
        return DF_ECORRUPT;
      bd->n_inc[i] = arr.n;
      for (j = 0; j < arr.n; j++)
        if (read_opt_str(p, end, bd, &bd->idx[i].inc[j]) ||
            bd->idx[i].inc[j] == NONE)
          return DF_ECORRUPT;
    } else if (df__mp_skip(p, end) != 0) {
      return DF_ECORRUPT;
    }
  }
  if (bd->idx[i].name == NONE || bd->id[i] == 0 || bd->kind[i] == 0)
    return DF_ECORRUPT;
  return DF_OK;
}

int df__schema_decode(const void *data, size_t len, df_schema_owned *out,
                      char *err, size_t errlen) {
  const unsigned char *p = data, *end = p + len;
  df_value m, k, arr;
  builder bd;
  size_t f, i;
  int64_t format = 0;
  int code = DF_ECORRUPT;
  memset(&bd, 0, sizeof bd);
  df__buf_init(&bd.b);
  bd.pk = bd.sk = bd.ttl = NONE;
  if (df__mp_read(&p, end, &m) != 0 || m.type != DF_TMAP) goto fail;
  for (f = 0; f < m.n; f++) {
    if (df__mp_read(&p, end, &k) != 0) goto fail;
    if (key_is(&k, "format")) {
      if (read_int(&p, end, &format)) goto fail;
    } else if (key_is(&k, "pk")) {
      if (read_opt_str(&p, end, &bd, &bd.pk)) goto fail;
    } else if (key_is(&k, "sk")) {
      if (read_opt_str(&p, end, &bd, &bd.sk)) goto fail;
    } else if (key_is(&k, "ttl")) {
      if (read_opt_str(&p, end, &bd, &bd.ttl)) goto fail;
    } else if (key_is(&k, "indexes")) {
      if (df__mp_read(&p, end, &arr) != 0 || arr.type != DF_TARRAY ||
          arr.n > DF_MAX_INDEXES)
        goto fail;
      bd.n = arr.n;
      for (i = 0; i < arr.n; i++)
        if (decode_index(&p, end, &bd, i) != DF_OK) goto fail;
    } else if (df__mp_skip(&p, end) != 0) {
      goto fail;
    }
  }
  if (format > DF_FORMAT_VERSION) {
    snprintf(err, errlen,
             "format version %lld is newer than this library's (%d); "
             "upgrade dynafile",
             (long long)format, DF_FORMAT_VERSION);
    df__buf_free(&bd.b);
    return DF_EVERSION;
  }
  if (format < 1 || bd.pk == NONE) goto fail;
  code = finish(&bd, out);
  out->format = (int)format;
  df__buf_free(&bd.b);
  if (code != DF_OK) snprintf(err, errlen, "out of memory");
  return code;
fail:
  df__buf_free(&bd.b);
  snprintf(err, errlen, "the stored schema record is corrupt");
  return DF_ECORRUPT;
}

/* ---------------------------------------------------------- comparison */

static int str_eq(const char *a, const char *b) {
  if (a == NULL || b == NULL) return a == b;
  return strcmp(a, b) == 0;
}

static const char *or_none(const char *s) {
  return s ? s : "(none)";
}

static const df_index_def *find_def(const df_schema *s, const char *name) {
  size_t i;
  for (i = 0; i < s->n_indexes; i++)
    if (strcmp(s->indexes[i].name, name) == 0) return &s->indexes[i];
  return NULL;
}

static int def_same(const df_index_def *a, const df_index_def *b) {
  size_t j;
  if (a->kind != b->kind || !str_eq(a->pk, b->pk) || !str_eq(a->sk, b->sk) ||
      a->projection != b->projection)
    return 0;
  if (a->projection != DF_PROJ_INCLUDE) return 1;
  if (a->n_include != b->n_include) return 0;
  for (j = 0; j < a->n_include; j++)
    if (!str_eq(a->include[j], b->include[j])) return 0;
  return 1;
}

/* What `want` asks of `have`: the same keys, the same TTL attribute when
 * both name one, and the same definition of every index both name. */
static int compare(const df_schema *have, const df_schema *want, char *err,
                   size_t errlen) {
  size_t i;
  if (want->pk == NULL) goto ttl; /* keys not given: keep the stored */
  if (!str_eq(have->pk, want->pk)) {
    snprintf(err, errlen,
             "schema mismatch: the database's partition key is %s, not %s",
             or_none(have->pk), or_none(want->pk));
    return DF_ESCHEMA;
  }
  if (!str_eq(have->sk, want->sk)) {
    snprintf(err, errlen,
             "schema mismatch: the database's sort key is %s, not %s",
             or_none(have->sk), or_none(want->sk));
    return DF_ESCHEMA;
  }
ttl:
  if (have->ttl_attr && want->ttl_attr &&
      !str_eq(have->ttl_attr, want->ttl_attr)) {
    snprintf(err, errlen,
             "schema mismatch: the database's TTL attribute is %s, not %s "
             "(an open never changes it: set_ttl does)",
             have->ttl_attr, want->ttl_attr);
    return DF_ESCHEMA;
  }
  for (i = 0; i < want->n_indexes; i++) {
    const df_index_def *w = &want->indexes[i];
    const df_index_def *h = w->name ? find_def(have, w->name) : NULL;
    if (h && !def_same(h, w)) {
      snprintf(err, errlen,
               "index %s is defined differently in the database; an index "
               "cannot change in place (drop it and add it under a new name)",
               w->name);
      return DF_ESCHEMA;
    }
  }
  return DF_OK;
}

int df__schema_merge(const df_schema *have, const df_schema *want,
                     df_schema_owned *next, df_schema_change *change, char *err,
                     size_t errlen) {
  df_schema merged;
  df_index_def defs[DF_MAX_INDEXES];
  size_t i, n = 0;
  int code;
  memset(change, 0, sizeof *change);
  memset(next, 0, sizeof *next);
  code = compare(have, want, err, errlen);
  if (code != DF_OK) return code;
  change->new_ttl = want->ttl_attr && !have->ttl_attr;
  for (i = 0; i < have->n_indexes; i++) defs[n++] = have->indexes[i];
  for (i = 0; i < want->n_indexes; i++) {
    if (find_def(have, want->indexes[i].name)) continue;
    if (want->indexes[i].kind == DF_LSI) {
      snprintf(err, errlen,
               "local index %s can only be defined when the database is "
               "created",
               want->indexes[i].name);
      return DF_ESCHEMA;
    }
    if (n == DF_MAX_INDEXES) {
      snprintf(err, errlen, "too many indexes (at most %d)", DF_MAX_INDEXES);
      return DF_EVALIDATION;
    }
    defs[n] = want->indexes[i];
    defs[n].id = 0;
    n++;
  }
  change->n_old = have->n_indexes;
  if (!change->new_ttl && n == have->n_indexes) return DF_OK;
  merged = *have;
  if (change->new_ttl) merged.ttl_attr = want->ttl_attr;
  merged.indexes = defs;
  merged.n_indexes = n;
  /* New indexes get fresh ids above every id in use. */
  code = df__schema_copy(&merged, next, err, errlen);
  if (code != DF_OK) return code;
  change->changed = 1;
  return DF_OK;
}
