/*
 * ddl.h -- schema changes (ddl.c), for db.c's open.  df_db_drop_index and
 * df_db_set_ttl are public.  Not API.
 */
#ifndef DF_DDL_H
#define DF_DDL_H

#include "handle.h"

/* At open, once the handle has its environment: check the caller's schema
 * (o->schema) against the stored one and apply what it adds (a TTL
 * attribute, new GSIs, which are built from the items), then store the
 * change-log settings o->stream asks for.  The message of a failure is in
 * df_db_errmsg(db). */
int df__ddl_open(df_db *db, const df_open_options *o);
#endif
