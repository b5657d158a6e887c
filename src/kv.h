/*
 * kv.h -- the sub-databases as ordered byte maps inside one transaction
 * (kv.c): the only view of LMDB that the files above env.c have.  Not API.
 *
 * A df_kv names a live LMDB transaction and the environment's
 * sub-database handles.  It is made by env.c (read transactions) or txn.c
 * (the write transaction) and dies with that transaction, as do the bytes
 * every read returns: they point into the memory map, valid until the
 * next write in the transaction or its end, and are never written to.
 *
 * Every function returns DF_OK, DF_ENOTFOUND (no such key; the end of a
 * cursor's walk), or the DF_E* code of an LMDB failure (df__kv_code):
 * DF_ERETRY when the map is full (the transaction is then doomed and must
 * run again once the map has grown), DF_ECORRUPT, DF_EIO, DF_ENOMEM, ...
 * No function here dooms a transaction or writes a message: the caller
 * decides what a failure means.  A write that succeeds is also added to
 * kv->rec when there is one (the redo record of the transaction; a
 * failure to grow that record in memory is DF_ENOMEM, after the write).
 */
#ifndef DF_KV_H
#define DF_KV_H

#include "internal.h"

struct MDB_txn;
struct MDB_cursor;

/* The fixed set of sub-databases (adding an index never needs another). */
typedef enum df_sub {
  DF_SUB_META = 0, /* schema record, change-log settings (env.c) */
  DF_SUB_ITEMS,    /* the table: items key -> item bytes (txn.c) */
  DF_SUB_INDEX,    /* every GSI and LSI, prefixed by index id (index.c) */
  DF_SUB_EXPIRY,   /* enc(expire time) | items key (ttl.c) */
  DF_SUB_STREAM,   /* the change log: seq -> record (stream.c) */
  DF_SUB_COUNT
} df_sub;

typedef struct df_kv {
  struct MDB_txn *txn;
  const unsigned *dbi; /* DF_SUB_COUNT handles, owned by the environment */
  df_redo_rec *rec;    /* a write transaction's redo record: every write
                          that succeeds is added to it (commit.c logs it);
                          NULL for reads and for recovery's replay */
} df_kv;

/* Bytes read: borrowed from the map (see above). */
typedef struct df_bytes {
  const unsigned char *p;
  size_t n;
} df_bytes;

typedef struct MDB_cursor df_kvcursor;

/* Cursor moves for df__kv_step. */
enum {
  DF_KV_FIRST,
  DF_KV_LAST,
  DF_KV_NEXT,
  DF_KV_PREV,
  DF_KV_SEEK /* the first key >= *k (k is read, then overwritten) */
};

/* The DF_E* code of an LMDB return code (0 is DF_OK). */
int df__kv_code(int rc);

int df__kv_get(const df_kv *kv, df_sub sub, const void *k, size_t kn,
               df_bytes *v);
/* Insert or replace. */
int df__kv_put(const df_kv *kv, df_sub sub, const void *k, size_t kn,
               const void *v, size_t vn);
/* Append a record of vn bytes under a key greater than every key of
 * `sub`; *room receives the value's storage, to be filled before the
 * next write. */
int df__kv_append(const df_kv *kv, df_sub sub, const void *k, size_t kn,
                  size_t vn, void **room);
/* Delete; DF_ENOTFOUND when the key is absent. */
int df__kv_del(const df_kv *kv, df_sub sub, const void *k, size_t kn);
/* Number of entries. */
int df__kv_count(const df_kv *kv, df_sub sub, uint64_t *n);
/* Delete every entry. */
int df__kv_clear(const df_kv *kv, df_sub sub);

/* Cursors: closed with df__kv_cursor_close before the transaction ends. */
int df__kv_cursor(const df_kv *kv, df_sub sub, df_kvcursor **out);
/* Move (op: DF_KV_*) and read the entry there into *k and *v (either may
 * be NULL for FIRST/LAST/NEXT/PREV).  DF_ENOTFOUND past either end. */
int df__kv_step(df_kvcursor *c, int op, df_bytes *k, df_bytes *v);
/* Delete the entry under the cursor, a cursor of kv's sub-database sub. */
int df__kv_cursor_del(const df_kv *kv, df_sub sub, df_kvcursor *c);
void df__kv_cursor_close(df_kvcursor *c); /* NULL accepted */

#endif /* DF_KV_H */
