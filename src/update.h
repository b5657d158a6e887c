/*
 * update.h -- the builder of update programs (update.c), shared with the
 * DynamoDB front end (ddbexpr.c) that compiles UpdateExpressions into
 * them.  Not API.
 */
#ifndef DF_UPDATE_H
#define DF_UPDATE_H

#include "internal.h"

/* SET value kinds */
enum {
  DF__UV_CONST,         /* bytes: one encoded value */
  DF__UV_PATH,          /* the value at path in the old item */
  DF__UV_IF_NOT_EXISTS, /* path, else value b */
  DF__UV_LIST_APPEND,   /* a, b */
  DF__UV_PLUS,          /* a + b */
  DF__UV_MINUS          /* a - b */
};

/* A new empty program; table_form selects the table form's semantics
 * (missing maps created, lists as sets for ADD/DELETE, its messages). */
int df__update_alloc(int table_form, df_update **out);
/* Keep a copy of n bytes for the program's lifetime; NULL: no memory. */
void *df__update_keep(df_update *u, const void *p, size_t n);
/* Add a path (segments copied; their names must outlive u: point them
 * into memory kept with df__update_keep). */
int df__update_path(df_update *u, const df_path_seg *segs, size_t n,
                    uint32_t *out);
int df__update_val(df_update *u, int kind, uint32_t a, uint32_t b,
                   uint32_t path, const void *bytes, size_t len, uint32_t *out);
/* An action: kind DF_UPD_*, a path, a value (NONE for REMOVE), and a
 * message prefix kept by the caller with df__update_keep (or NULL). */
int df__update_act(df_update *u, int kind, uint32_t path, uint32_t val,
                   char *where);

#endif /* DF_UPDATE_H */
