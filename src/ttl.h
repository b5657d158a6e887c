/*
 * ttl.h -- the expiry entry an item implies (ttl.c), for the checker.  The
 * write side is declared in write.h.  Not API.
 */
#ifndef DF_TTL_H
#define DF_TTL_H

#include "internal.h"

/* Longest expiry entry key: an encoded number, then an items key. */
#define DF_EXPIRY_KEY_MAX (DF_KEY_MAX + DF_NUM_ENC_MAX)

/* The expiry entry key of an item stored under items key k: 1 with the
 * key in out (DF_EXPIRY_KEY_MAX bytes), 0 when the item has none (no TTL
 * number, NaN, or no room). */
int df__expiry_key(const df_schema *s, const void *item, size_t len,
                   const unsigned char *k, size_t klen, unsigned char *out,
                   size_t *outlen);
#endif
