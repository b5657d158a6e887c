/*
 * index.h -- reading secondary-index entries (index.c): what queries and
 * the checker need.  The write side (keeping entries in step, building,
 * clearing) is declared in write.h.  Not API.
 */
#ifndef DF_INDEX_H
#define DF_INDEX_H

#include "kv.h"

/* The index key of an item (or of a map holding just the key attributes)
 * for index `def` of schema s, into out (DF_KEY_MAX bytes): DF_ENOTFOUND
 * when the item is not in the index (sparse), DF_EVALIDATION when a value
 * cannot be a key, DF_ECORRUPT for malformed bytes. */
int df__index_entry_key(const df_schema *s, const df_index_def *def,
                        const void *item, size_t len, unsigned char *out,
                        size_t *n);
/* The (projected) item of index entry (k, v) read through kv: a pointer
 * into the map, valid until the transaction ends.  *hidden: the item
 * expired at `now` (the entry still counts as examined).  DF_ECORRUPT: a
 * malformed entry. */
int df__index_entry_item(const df_kv *kv, const df_index_def *def,
                         const df_bytes *k, const df_bytes *v, double now,
                         const void **item, size_t *len, int *hidden);
#endif
