/*
 * schema.h -- the schema of a database as a record (schema.c): validated
 * deep copies, comparison, the change an open asks for, and the
 * MessagePack form stored in the `meta` sub-database.  Pure: no LMDB, no
 * environment.  Not API.
 */
#ifndef DF_SCHEMA_H
#define DF_SCHEMA_H

#include "internal.h"

#define DF_MAX_INDEXES 64

/* A parsed schema, owned: all strings live in one allocation (`blob`). */
typedef struct df_schema_owned {
  df_schema s;
  df_index_def idx[DF_MAX_INDEXES];
  char *blob;
  int format; /* the on-disk format of the record read (decode), else
                 DF_FORMAT_VERSION */
} df_schema_owned;

void df__schema_free(df_schema_owned *s);
/* Move a schema: *dst takes over src's strings (src is left empty).  Use it
 * instead of struct assignment, which would leave dst->s.indexes pointing
 * into src. */
void df__schema_move(df_schema_owned *dst, df_schema_owned *src);
/* Deep-copy and validate a caller's schema (assigning index ids 1..n). */
int df__schema_copy(const df_schema *in, df_schema_owned *out, char *err,
                    size_t errlen);
int df__schema_encode(const df_schema *s, df_buf *b);
int df__schema_decode(const void *p, size_t n, df_schema_owned *out, char *err,
                      size_t errlen);
/* What an open's schema changes in the stored one. */
typedef struct df_schema_change {
  int changed;  /* 0: nothing to do (`next` is left empty) */
  int new_ttl;  /* a TTL attribute was added */
  size_t n_old; /* next's indexes [0, n_old) existed; the rest are new */
} df_schema_change;

/* The stored schema `have` with what `want` adds to it (a TTL attribute
 * where there was none, new GSIs, which get fresh ids), into `next`.
 * Errors: DF_ESCHEMA (other keys, another TTL attribute, an index defined
 * differently, a new LSI), DF_EVALIDATION (too many indexes, a bad
 * definition), DF_ENOMEM; the message in err. */
int df__schema_merge(const df_schema *have, const df_schema *want,
                     df_schema_owned *next, df_schema_change *change, char *err,
                     size_t errlen);
#endif
