/*
 * upgrade.h -- bringing a database of an older on-disk format to this
 * release's (upgrade.c), for ddl.c's open.  Not API.
 */
#ifndef DF_UPGRADE_H
#define DF_UPGRADE_H

#include "handle.h"

/* At open, bring a database of an older on-disk format to
 * DF_FORMAT_VERSION in one write transaction (DF_EVERSION for a read-only
 * handle).  The message of a failure is in df_db_errmsg(db). */
int df__upgrade_open(df_db *db);

#endif
