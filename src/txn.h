/*
 * txn.h -- what txn.c offers the files above it (ddl.c, db.c) beyond the
 * public df_txn_* calls.  Not API.
 */
#ifndef DF_TXN_H
#define DF_TXN_H

#include "write.h"

/* The write context of a live write transaction: for schema changes
 * (ddl.c), which build and clear index and expiry entries inside it. */
df_write *df__txn_write(df_txn *t);

/* Doom a live write transaction with the failure (code, and the message
 * already in the write context): it can only be rolled back.  Returns
 * code. */
int df__txn_doom(df_txn *t, int code);

/* The one retry loop of the core: begin a write transaction of `db`
 * (flags as for df_txn_begin, DF_TXN_WRITE implied), run body(t, ud),
 * commit when it returns DF_OK; when the map was full (DF_ERETRY from the
 * body or the commit) the map has grown, and the whole is run again, at
 * most DF_GROW_RETRIES times.  Returns the result, with the message of a
 * failure in df_db_errmsg(db). */
int df__txn_run(df_db *db, unsigned flags, double now,
                int (*body)(df_txn *t, void *ud), void *ud);
#endif
