/*
 * schema.h -- the schema of a database: its copy, comparison, and its
 * MessagePack form in the `meta` sub-database (schema.c).  Not API.
 */
#ifndef DF_SCHEMA_H
#define DF_SCHEMA_H

#include "store.h"

void df__schema_free(df_schema_owned *s);
/* Move a schema: *dst takes over src's strings (src is left empty).  Use it
 * instead of struct assignment, which would leave dst->s.indexes pointing
 * into src. */
void df__schema_move(df_schema_owned *dst, df_schema_owned *src);
/* Deep-copy and validate a caller's schema (assigning index ids 1..n). */
int df__schema_copy(const df_schema *in, df_schema_owned *out, char *err,
                    size_t errlen);
int df__schema_encode(const df_schema *s, df_buf *b);
int df__schema_decode(const void *p, size_t n, df_schema_owned *out,
                      char *err, size_t errlen);
/* DF_OK when `want` agrees with the schema in force `have` (pk, sk, ttl,
 * and every index `want` names has the same definition), else DF_ESCHEMA
 * with the difference in err. */
int df__schema_same(const df_schema *have, const df_schema *want, char *err,
                    size_t errlen);
/* At open with a stored schema: check the caller's schema against it and
 * apply allowed changes inside `txn` (a new TTL attribute, new GSIs, which
 * are backfilled).  *changed says whether the stored schema was rewritten. */
int df__schema_reconcile(df_db *db, MDB_txn *txn, df_env *e,
                         const df_open_options *o, int *changed, char *err,
                         size_t errlen);
/* Store e->schema (or s) in meta inside txn. */
int df__schema_store(MDB_txn *txn, df_env *e);
int df__schema_put(MDB_txn *txn, df_env *e, const df_schema *s);
/* Make `next` the schema in force (after its record was committed); the
 * old strings stay allocated until the environment closes.  Call
 * df__schema_reserve first (before committing): adopting then cannot
 * fail for want of memory. */
int df__schema_reserve(df_env *e);
void df__schema_adopt(df_env *e, df_schema_owned *next);
void df__schema_retired_free(df_env *e);
/* Inside a write transaction: adopt the stored schema when another
 * process changed it since this one read it. */
int df__schema_refresh(MDB_txn *txn, df_env *e);
#endif
