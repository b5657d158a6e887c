/*
 * db.c -- opening and closing databases: the process-wide environment
 * registry, the stored schema, meta.json, fork detection and map growth.
 *
 * Invariants:
 *  - The registry (a list guarded by `registry_lock`) is the only global
 *    mutable state of the core.  It holds one df_env per (device, inode,
 *    fork generation): two opens of one directory share one MDB_env, which
 *    LMDB requires (one environment per file per process).
 *  - A fork bumps `fork_gen` in the child; handles and environments of an
 *    older generation are never used again (every call fails DF_EFORKED)
 *    and never closed in the child, since LMDB state does not survive fork.
 *  - The schema stored in the `meta` sub-database is the truth; meta.json is
 *    a human-readable copy rewritten whenever the schema is written.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "schema.h"
#include "store.h"

#define DEFAULT_MAP_SIZE ((size_t)64 << 20)
#define GROW_STEP_MAX ((size_t)4 << 30)

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static df_env *registry;
static volatile unsigned long fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void) {
  fork_gen++;
  /* The child inherits the registry mutex in whatever state the parent's
   * threads had it; start it afresh.  Parent entries stay in the list but
   * never match the new generation. */
  pthread_mutex_init(&registry_lock, NULL);
}

static void install_atfork(void) {
  pthread_atfork(NULL, NULL, on_fork_child);
}

unsigned long df__fork_generation(void) { return fork_gen; }

int df__db_err(df_db *db, int code, const char *fmt, ...) {
  va_list ap;
  df_slot *s = df__slot(db);
  if (s == NULL) return code; /* no memory for the message: code only */
  va_start(ap, fmt);
  vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
  va_end(ap);
  return code;
}

int df__map_err(int rc) {
  switch (rc) {
    case 0:
      return DF_OK;
    case ENOMEM:
      return DF_ENOMEM;
    case EACCES:
    case EPERM:
      return DF_EACCESS;
    case ENOSPC:
    case EDQUOT:
      return DF_EDISKFULL;
    case EROFS:
      return DF_EREADONLY;
    case MDB_INVALID:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INCOMPATIBLE:
    case MDB_BAD_DBI:
      return DF_ECORRUPT;
    case MDB_VERSION_MISMATCH:
      return DF_EVERSION;
    case MDB_READERS_FULL:
      return DF_EREADERS;
    case MDB_MAP_FULL:
    case MDB_MAP_RESIZED:
      return DF_ERETRY;
    default:
      return DF_EIO;
  }
}

int df__db_check(df_db *db) {
  if (db == NULL) return DF_EINVAL;
  if (db->closed || db->env == NULL)
    return df__db_err(db, DF_ECLOSED, "database handle is closed");
  if (db->fork_gen != fork_gen)
    return df__db_err(db, DF_EFORKED,
                      "database handle used in a forked child process; "
                      "open the database after fork");
  return DF_OK;
}

const char *df_db_errmsg(const df_db *db) {
  df_slot *s;
  if (db == NULL) return df_strerror(DF_ENOMEM);
  if (db->fork_gen != fork_gen)
    return "database handle used in a forked child process; open the "
           "database after fork";
  s = df__slot((df_db *)db); /* the slot list is mutable, not the handle */
  return s ? s->errmsg : df_strerror(DF_ENOMEM);
}

const df_schema *df_db_schema(const df_db *db) {
  return (db && db->env) ? &db->env->schema.s : NULL;
}

const char *df_db_id(const df_db *db) {
  return (db && db->env) ? db->env->id : "";
}

int df_db_index_find(const df_db *db, const char *name, unsigned *id) {
  const df_schema *s = df_db_schema(db);
  size_t i;
  if (s == NULL || name == NULL) return DF_EINVAL;
  for (i = 0; i < s->n_indexes; i++) {
    if (strcmp(s->indexes[i].name, name) == 0) {
      if (id) *id = s->indexes[i].id;
      return DF_OK;
    }
  }
  return DF_ENOTFOUND;
}

/* ------------------------------------------------------------ map size */

/* How many shared holds of any map_lock this thread has.  Growing the map
 * needs the lock exclusive; a thread that still holds it shared (a read
 * transaction open while it writes, e.g. from a TTL function) must not
 * wait for itself. */
static __thread unsigned shared_holds;

void df__map_lock_shared(df_env *e) {
  pthread_rwlock_rdlock(&e->map_lock);
  shared_holds++;
}

void df__map_unlock_shared(df_env *e) {
  shared_holds--;
  pthread_rwlock_unlock(&e->map_lock);
}

static size_t page_size(df_env *e) {
  MDB_stat st;
  if (mdb_env_stat(e->env, &st) != 0 || st.ms_psize == 0) return 4096;
  return st.ms_psize;
}

/* Grow the map by its size (at most GROW_STEP_MAX); with `if_needed`,
 * only when the data still fills more than 3/4 of it once the lock is
 * held (several threads may have seen the need at once). */
static int grow(df_env *e, int if_needed) {
  MDB_envinfo info;
  size_t step, want;
  int rc;
  if (shared_holds > 0) return DF_EBUSY; /* would wait for ourselves */
  pthread_rwlock_wrlock(&e->map_lock);
  rc = mdb_env_info(e->env, &info);
  if (rc == 0 && (!if_needed || (size_t)(info.me_last_pgno + 1) *
                                        page_size(e) >
                                    info.me_mapsize / 4 * 3)) {
    step = info.me_mapsize < GROW_STEP_MAX ? info.me_mapsize : GROW_STEP_MAX;
    want = info.me_mapsize + step;
    rc = mdb_env_set_mapsize(e->env, want);
  }
  pthread_rwlock_unlock(&e->map_lock);
  return df__map_err(rc);
}

int df__env_grow(df_env *e) { return grow(e, 0); }

int df__env_refresh_map(df_env *e) {
  int rc;
  if (shared_holds > 0) return DF_EBUSY;
  pthread_rwlock_wrlock(&e->map_lock);
  rc = mdb_env_set_mapsize(e->env, 0);
  pthread_rwlock_unlock(&e->map_lock);
  return df__map_err(rc);
}

/* Grow ahead of need when the last committed page is past 3/4 of the map:
 * most transactions then never meet MDB_MAP_FULL. */
int df__env_grow_if_needed(df_env *e);
int df__env_grow_if_needed(df_env *e) {
  MDB_envinfo info;
  int full;
  if (e->readonly) return DF_OK;
  /* mdb_env_info and mdb_env_stat read the meta pages inside the map,
   * which another thread's growth may be moving: hold map_lock. */
  df__map_lock_shared(e);
  full = mdb_env_info(e->env, &info) == 0 &&
         (size_t)(info.me_last_pgno + 1) * page_size(e) >
             info.me_mapsize / 4 * 3;
  df__map_unlock_shared(e);
  return full ? grow(e, 1) : DF_OK;
}

/* Read transactions reuse one reset MDB_txn per handle when it is free,
 * which saves LMDB's allocation and reader-slot search on every get.
 * Whoever wins the exchange of rtxn_busy owns db->rtxn until it stores 0
 * again; db->rtxn is only changed by that owner. */
int df__read_begin(df_db *db, MDB_txn **txn) {
  df_env *e = db->env;
  int rc = 0, tries;
  for (tries = 0; tries < 3; tries++) {
    df__map_lock_shared(e);
    if (__atomic_exchange_n(&db->rtxn_busy, 1, __ATOMIC_ACQUIRE) == 0) {
      MDB_txn *cached = __atomic_load_n(&db->rtxn, __ATOMIC_RELAXED);
      if (cached) {
        rc = mdb_txn_renew(cached);
        if (rc == 0) {
          *txn = cached;
          return DF_OK;
        }
        mdb_txn_abort(cached);
        __atomic_store_n(&db->rtxn, NULL, __ATOMIC_RELAXED);
      }
      __atomic_store_n(&db->rtxn_busy, 0, __ATOMIC_RELEASE);
    }
    rc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, txn);
    if (rc == 0) return DF_OK;
    df__map_unlock_shared(e);
    if (rc == MDB_MAP_RESIZED) {
      df__env_refresh_map(e);
    } else if (rc == MDB_READERS_FULL) {
      int dead = 0;
      mdb_reader_check(e->env, &dead);
      if (dead == 0) break;
    } else {
      break;
    }
  }
  if (rc == MDB_READERS_FULL)
    return df__db_err(db, DF_EREADERS,
                      "no free reader slot: every one of the database's "
                      "reader slots is in use (raise max_readers)");
  return df__db_err(db, df__map_err(rc), "cannot begin read transaction: %s",
                    mdb_strerror(rc));
}

void df__read_end(df_db *db, MDB_txn *txn) {
  /* Only the owner of rtxn_busy can hold the cached transaction, and it
   * does not change while it holds it: this comparison is stable. */
  if (txn == __atomic_load_n(&db->rtxn, __ATOMIC_RELAXED)) {
    mdb_txn_reset(txn);
    __atomic_store_n(&db->rtxn_busy, 0, __ATOMIC_RELEASE);
  } else if (__atomic_exchange_n(&db->rtxn_busy, 1, __ATOMIC_ACQUIRE) == 0) {
    if (__atomic_load_n(&db->rtxn, __ATOMIC_RELAXED) == NULL) {
      mdb_txn_reset(txn);
      __atomic_store_n(&db->rtxn, txn, __ATOMIC_RELAXED);
    } else {
      mdb_txn_abort(txn);
    }
    __atomic_store_n(&db->rtxn_busy, 0, __ATOMIC_RELEASE);
  } else {
    mdb_txn_abort(txn);
  }
  df__map_unlock_shared(db->env);
}

/* ------------------------------------------------------------ meta.json */

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

void df__meta_json_write(df_env *e) {
  char tmp[PATH_MAX], dst[PATH_MAX];
  const df_schema *s = &e->schema.s;
  static const char *proj[] = {"all", "keys", "include"};
  FILE *f;
  size_t i, j;
  if (snprintf(tmp, sizeof tmp, "%s/meta.json.tmp", e->path) >= (int)sizeof tmp)
    return;
  snprintf(dst, sizeof dst, "%s/meta.json", e->path);
  f = fopen(tmp, "w");
  if (f == NULL) return; /* a copy for humans; the truth is in meta */
  fprintf(f, "{\n  \"format\": %d,\n  \"pk\": ", DF_FORMAT_VERSION);
  json_str(f, s->pk);
  fputs(",\n  \"sk\": ", f);
  if (s->sk) json_str(f, s->sk); else fputs("null", f);
  fputs(",\n  \"ttl\": ", f);
  if (s->ttl_attr) json_str(f, s->ttl_attr); else fputs("null", f);
  fputs(",\n  \"indexes\": [", f);
  for (i = 0; i < s->n_indexes; i++) {
    const df_index_def *d = &s->indexes[i];
    fputs(i ? ",\n    {" : "\n    {", f);
    fputs("\"name\": ", f);
    json_str(f, d->name);
    fprintf(f, ", \"id\": %u, \"kind\": \"%s\", \"pk\": ", d->id,
            d->kind == DF_GSI ? "gsi" : "lsi");
    if (d->pk) json_str(f, d->pk); else fputs("null", f);
    fputs(", \"sk\": ", f);
    if (d->sk) json_str(f, d->sk); else fputs("null", f);
    fprintf(f, ", \"projection\": \"%s\"", proj[d->projection]);
    if (d->projection == DF_PROJ_INCLUDE) {
      fputs(", \"include\": [", f);
      for (j = 0; j < d->n_include; j++) {
        if (j) fputs(", ", f);
        json_str(f, d->include[j]);
      }
      fputc(']', f);
    }
    fputc('}', f);
  }
  fputs(s->n_indexes ? "\n  ]\n}\n" : "]\n}\n", f);
  if (fclose(f) == 0) rename(tmp, dst);
  else unlink(tmp);
}

/* ------------------------------------------------------------- opening */

static int mkdirs(const char *path) {
  char buf[PATH_MAX];
  size_t n = strlen(path), i;
  if (n == 0 || n >= sizeof buf) return ENAMETOOLONG;
  memcpy(buf, path, n + 1);
  for (i = 1; i <= n; i++) {
    if (buf[i] == '/' || buf[i] == '\0') {
      char c = buf[i];
      buf[i] = '\0';
      if (mkdir(buf, 0755) != 0 && errno != EEXIST) return errno;
      buf[i] = c;
    }
  }
  return 0;
}

/* A directory is ours to initialise when it has no data.mdb and holds
 * nothing but what dynafile itself writes. */
static int dir_is_foreign(const char *path) {
  DIR *d = opendir(path);
  struct dirent *de;
  int foreign = 0;
  if (d == NULL) return 0;
  while ((de = readdir(d)) != NULL) {
    const char *n = de->d_name;
    if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
        strcmp(n, "lock.mdb") == 0 || strcmp(n, "data.mdb") == 0 ||
        strncmp(n, "meta.json", 9) == 0)
      continue;
    foreign = 1;
    break;
  }
  closedir(d);
  return foreign;
}

static void env_destroy(df_env *e) {
  if (e == NULL) return;
  if (e->env) mdb_env_close(e->env);
  pthread_mutex_destroy(&e->lock);
  pthread_rwlock_destroy(&e->map_lock);
  df__schema_free(&e->schema);
  df__schema_retired_free(e);
  df__free(e->path);
  df__free(e);
}

/* Open the sub-databases and load or store the schema. */
static int env_load(df_db *db, df_env *e, const df_open_options *o) {
  MDB_txn *txn = NULL;
  MDB_val k, v;
  unsigned dflags = e->readonly ? 0 : MDB_CREATE;
  int rc, code = DF_OK;
  char err[DF_MSG_MAX];
  df_schema_owned stored;
  int have_stored = 0, fresh = 0, tries = 0;

again:
  memset(&stored, 0, sizeof stored);
  rc = mdb_txn_begin(e->env, NULL, e->readonly ? MDB_RDONLY : 0, &txn);
  if (rc != 0)
    return df__db_err(db, df__map_err(rc), "cannot open database: %s",
                      mdb_strerror(rc));
  rc = mdb_dbi_open(txn, DF_DBI_META, 0, &e->dbi_meta);
  if (rc == MDB_NOTFOUND) {
    /* No meta: a fresh environment, unless LMDB's main database already
     * holds something (an environment written by another program). */
    MDB_stat st;
    MDB_dbi main;
    if (mdb_dbi_open(txn, NULL, 0, &main) == 0 &&
        mdb_stat(txn, main, &st) == 0 && st.ms_entries > 0) {
      code = df__db_err(db, DF_ECORRUPT,
                        "%s is an LMDB environment of another program, not "
                        "a dynafile database",
                        e->path);
      goto out;
    }
    if (e->readonly) {
      code = df__db_err(db, DF_ECORRUPT,
                        "%s holds no dynafile database (opened read-only, "
                        "so none was created)",
                        e->path);
      goto out;
    }
    rc = mdb_dbi_open(txn, DF_DBI_META, MDB_CREATE, &e->dbi_meta);
    fresh = 1;
  }
  if (rc == 0) rc = mdb_dbi_open(txn, DF_DBI_ITEMS, dflags, &e->dbi_items);
  if (rc == 0) rc = mdb_dbi_open(txn, DF_DBI_INDEX, dflags, &e->dbi_index);
  if (rc == 0) rc = mdb_dbi_open(txn, DF_DBI_EXPIRY, dflags, &e->dbi_expiry);
  if (rc == 0) rc = mdb_dbi_open(txn, DF_DBI_STREAM, dflags, &e->dbi_stream);
  if (rc != 0) {
    code = df__db_err(db, rc == MDB_NOTFOUND ? DF_ECORRUPT : df__map_err(rc),
                      "cannot open the sub-databases of %s: %s", e->path,
                      mdb_strerror(rc));
    goto out;
  }
  k.mv_data = (void *)"schema";
  k.mv_size = 6;
  rc = mdb_get(txn, e->dbi_meta, &k, &v);
  if (rc == 0) {
    code = df__schema_decode(v.mv_data, v.mv_size, &stored, err, sizeof err);
    if (code != DF_OK) {
      df__db_err(db, code, "%s: stored schema: %s", e->path, err);
      goto out;
    }
    have_stored = 1;
  } else if (rc == MDB_NOTFOUND && !fresh) {
    /* dynafile writes meta and its schema record in one transaction: a
     * meta without one belongs to another program (nothing is written) */
    code = df__db_err(db, DF_ECORRUPT,
                      "%s is an LMDB environment of another program (its "
                      "meta sub-database holds no dynafile schema)",
                      e->path);
    goto out;
  } else if (rc != MDB_NOTFOUND) {
    code = df__db_err(db, df__map_err(rc), "cannot read schema: %s",
                      mdb_strerror(rc));
    goto out;
  }

  if (!have_stored) {
    df_buf b;
    /* A schema without keys (only a TTL or indexes) takes the keys of
     * create_schema, which the caller fills with its defaults. */
    const df_schema *want =
        o->schema && (o->schema->pk || !o->create_schema) ? o->schema
                                                          : o->create_schema;
    if (want == NULL) {
      code = df__db_err(db, DF_EVALIDATION,
                        "%s: new database needs a schema (at least pk)",
                        e->path);
      goto out;
    }
    code = df__schema_copy(want, &e->schema, err, sizeof err);
    if (code != DF_OK) {
      df__db_err(db, code, "%s", err);
      goto out;
    }
    df__buf_init(&b);
    code = df__schema_encode(&e->schema.s, &b);
    if (code == DF_OK) {
      v.mv_data = b.p;
      v.mv_size = b.len;
      rc = mdb_put(txn, e->dbi_meta, &k, &v, 0);
      code = df__map_err(rc);
    }
    df__buf_free(&b);
    if (code != DF_OK) {
      df__db_err(db, code, "cannot store schema");
      goto out;
    }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0) {
      code = df__db_err(db, df__map_err(rc), "cannot store schema: %s",
                        mdb_strerror(rc));
      goto out;
    }
    df__meta_json_write(e);
    goto out;
  }

  /* A stored schema: adopt it, checking what the caller asked for. */
  df__schema_move(&e->schema, &stored);
  if (o->schema) {
    int changed = 0;
    code = df__schema_reconcile(db, txn, e, o, &changed, err, sizeof err);
    if (code == DF_ERETRY && tries < 32) {
      /* A backfill filled the map: start over with a bigger one. */
      mdb_txn_abort(txn);
      txn = NULL;
      df__schema_free(&e->schema);
      df__env_grow(e);
      tries++;
      goto again;
    }
    if (code != DF_OK) {
      df__db_err(db, code, "%s", err);
      goto out;
    }
    if (changed) {
      rc = mdb_txn_commit(txn);
      txn = NULL;
      if (rc != 0) {
        code = df__db_err(db, df__map_err(rc), "cannot store schema: %s",
                          mdb_strerror(rc));
        goto out;
      }
      df__meta_json_write(e);
      goto out;
    }
  }
  rc = mdb_txn_commit(txn); /* keeps the dbi handles */
  txn = NULL;
  if (rc != 0)
    code = df__db_err(db, df__map_err(rc), "cannot open database: %s",
                      mdb_strerror(rc));
out:
  if (txn) mdb_txn_abort(txn);
  df__schema_free(&stored);
  return code;
}

/* A data file shorter than the last page its meta page names was cut
 * (a torn copy, a copy onto a full disk): LMDB would map the missing pages
 * and the first read of one would kill the process with SIGBUS. */
static int check_file_length(df_db *db, df_env *e, const char *data_path) {
  MDB_envinfo info;
  struct stat fst;
  uint64_t need;
  if (mdb_env_info(e->env, &info) != 0 || stat(data_path, &fst) != 0)
    return DF_OK; /* nothing to compare; LMDB reports its own errors */
  need = ((uint64_t)info.me_last_pgno + 1) * page_size(e);
  if ((uint64_t)fst.st_size >= need) return DF_OK;
  return df__db_err(db, DF_ECORRUPT,
                    "%s is truncated: %lld bytes, but its last page ends at "
                    "byte %llu; not a database",
                    data_path, (long long)fst.st_size,
                    (unsigned long long)need);
}

/* A change-log origin unique to this process and environment: the
 * process id, the time and addresses, mixed (never 0). */
static uint64_t new_origin(const df_env *e) {
  struct timespec ts;
  uint64_t parts[4];
  uint64_t h;
  clock_gettime(CLOCK_REALTIME, &ts);
  parts[0] = (uint64_t)getpid();
  parts[1] = (uint64_t)ts.tv_sec;
  parts[2] = (uint64_t)ts.tv_nsec;
  parts[3] = (uint64_t)(uintptr_t)e;
  h = df__hash64(parts, sizeof parts, 0x6f726967696eull);
  return h ? h : 1;
}

static int env_open(df_db *db, const char *path, struct stat *st,
                    const df_open_options *o, df_env **out) {
  df_env *e;
  int rc, code;
  char data_path[PATH_MAX];
  struct stat dst;
  unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;

  if (snprintf(data_path, sizeof data_path, "%s/data.mdb", path) >=
      (int)sizeof data_path)
    return df__db_err(db, DF_EINVAL, "path too long: %s", path);
  if (stat(data_path, &dst) != 0) {
    if (o->readonly)
      return df__db_err(db, DF_ECORRUPT,
                        "%s holds no dynafile database (opened read-only)",
                        path);
    if (dir_is_foreign(path))
      return df__db_err(db, DF_ECORRUPT,
                        "%s is not empty and holds no dynafile database; "
                        "refusing to create one among other files",
                        path);
  } else if (dst.st_size == 0 || (size_t)dst.st_size < 2 * 4096) {
    /* LMDB would silently initialise an empty file: a torn or truncated
     * data file is not a new database. */
    return df__db_err(db, DF_ECORRUPT,
                      "%s is truncated (%lld bytes); not a database", data_path,
                      (long long)dst.st_size);
  }

  e = df__malloc(sizeof *e);
  if (e == NULL) return df__db_err(db, DF_ENOMEM, "out of memory");
  memset(e, 0, sizeof *e);
  pthread_mutex_init(&e->lock, NULL);
  pthread_rwlock_init(&e->map_lock, NULL);
  e->dev = st->st_dev;
  e->ino = st->st_ino;
  e->fork_gen = fork_gen;
  e->refs = 1;
  e->readonly = o->readonly;
  e->path = df__strdup(path);
  snprintf(e->id, sizeof e->id, "%llx:%llx", (unsigned long long)e->dev,
           (unsigned long long)e->ino);
  e->origin = new_origin(e);
  if (e->path == NULL) {
    env_destroy(e);
    return df__db_err(db, DF_ENOMEM, "out of memory");
  }
  rc = mdb_env_create(&e->env);
  if (rc == 0) rc = mdb_env_set_maxdbs(e->env, 8);
  if (rc == 0)
    rc = mdb_env_set_maxreaders(
        e->env, o->max_readers ? o->max_readers : DF_DEFAULT_MAX_READERS);
  if (rc == 0)
    rc = mdb_env_set_mapsize(e->env,
                             o->map_size ? o->map_size : DEFAULT_MAP_SIZE);
  if (rc != 0) {
    env_destroy(e);
    return df__db_err(db, df__map_err(rc), "cannot create environment: %s",
                      mdb_strerror(rc));
  }
  if (o->readonly) flags |= MDB_RDONLY;
  rc = mdb_env_open(e->env, path, flags, 0644);
  if (rc != 0) {
    code = df__map_err(rc);
    if (rc == EINVAL || rc == ENOENT) code = DF_ECORRUPT;
    df__db_err(db, code, "cannot open %s: %s", path, mdb_strerror(rc));
    env_destroy(e);
    return code;
  }
  if ((code = check_file_length(db, e, data_path)) != DF_OK) {
    env_destroy(e);
    return code;
  }
  {
    int dead = 0;
    mdb_reader_check(e->env, &dead); /* reclaim slots of killed processes */
  }
  code = env_load(db, e, o);
  if (code != DF_OK) {
    env_destroy(e);
    return code;
  }
  *out = e;
  return DF_OK;
}

static int options_check(df_db *db, const df_open_options *o) {
  if (o->sync != DF_SYNC_FULL && o->sync != DF_SYNC_NORMAL &&
      o->sync != DF_SYNC_OFF)
    return df__db_err(db, DF_EINVAL, "invalid sync mode %d", (int)o->sync);
  return DF_OK;
}

static void release_env(df_db *db);

int df_db_open(const char *path, const df_open_options *opts, df_db **out) {
  df_db *db;
  df_open_options defaults;
  struct stat st;
  df_env *e;
  int code, rc;
  char err[DF_MSG_MAX];

  if (out == NULL) return DF_EINVAL;
  *out = NULL;
  pthread_once(&atfork_once, install_atfork);
  db = df__malloc(sizeof *db);
  if (db == NULL) return DF_ENOMEM;
  memset(db, 0, sizeof *db);
  df__slots_init(db);
  db->fork_gen = fork_gen;
  *out = db;
  if (opts == NULL) {
    memset(&defaults, 0, sizeof defaults);
    opts = &defaults;
  }
  if (path == NULL || path[0] == '\0')
    return df__db_err(db, DF_EINVAL, "path must be a non-empty string");
  if ((code = options_check(db, opts)) != DF_OK) return code;
  db->sync = opts->sync;

  if (!opts->readonly && (rc = mkdirs(path)) != 0)
    return df__db_err(db, rc == EACCES || rc == EPERM ? DF_EACCESS : DF_EIO,
                      "cannot create directory %s: %s", path, strerror(rc));
  if (stat(path, &st) != 0)
    return df__db_err(db, errno == EACCES ? DF_EACCESS : DF_EIO,
                      "cannot open %s: %s", path, strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return df__db_err(db, DF_EIO, "%s is not a directory", path);
  if (access(path, opts->readonly ? (R_OK | X_OK) : (R_OK | W_OK | X_OK)) != 0)
    return df__db_err(db, DF_EACCESS, "cannot open %s: %s", path,
                      strerror(errno));

  pthread_mutex_lock(&registry_lock);
  for (e = registry; e; e = e->next)
    if (e->dev == st.st_dev && e->ino == st.st_ino && e->fork_gen == fork_gen)
      break;
  if (e) {
    if (e->readonly && !opts->readonly) {
      pthread_mutex_unlock(&registry_lock);
      return df__db_err(db, DF_EREADONLY,
                        "%s is already open read-only in this process", path);
    }
    if (opts->schema) {
      code = df__schema_same(&e->schema.s, opts->schema, err, sizeof err);
      if (code != DF_OK) {
        pthread_mutex_unlock(&registry_lock);
        return df__db_err(db, code, "%s", err);
      }
    }
    e->refs++;
  } else {
    code = env_open(db, path, &st, opts, &e);
    if (code != DF_OK) {
      pthread_mutex_unlock(&registry_lock);
      return code;
    }
    e->next = registry;
    registry = e;
  }
  pthread_mutex_unlock(&registry_lock);
  db->env = e;
  db->origin = opts->origin ? opts->origin : e->origin;
  code = df__stream_configure(db, opts);
  if (code != DF_OK) release_env(db);
  return code;
}

/* Drop the handle's reference to its environment (closing it with the
 * last one), unless the handle was carried through fork. */
static void release_env(df_db *db) {
  df_env *e = db->env, **pp;
  if (e && db->fork_gen == fork_gen) {
    if (db->rtxn) mdb_txn_abort(db->rtxn);
    pthread_mutex_lock(&registry_lock);
    if (--e->refs == 0) {
      for (pp = &registry; *pp; pp = &(*pp)->next)
        if (*pp == e) {
          *pp = e->next;
          break;
        }
      env_destroy(e);
    }
    pthread_mutex_unlock(&registry_lock);
  }
  db->env = NULL;
  db->rtxn = NULL;
}

/* Release the handle for good: its environment reference and memory. */
void df__db_release(df_db *db) {
  release_env(db);
  db->closed = 1;
  if (db->fork_gen == fork_gen) df__slots_free(db);
  df__free(db);
}

/* A handle closed while transactions made from it are still live stays
 * allocated (refusing new calls) until the last of them is freed. */
void df_db_close(df_db *db) {
  if (db == NULL) return;
  if (__atomic_load_n(&db->txns, __ATOMIC_ACQUIRE) > 0) {
    db->closed = 1;
    db->close_pending = 1;
    return;
  }
  df__db_release(db);
}

int df_db_stat(df_db *db, df_stat *out) {
  MDB_txn *txn;
  MDB_stat st;
  MDB_envinfo info;
  MDB_cursor *c;
  MDB_val k, v;
  int code;
  if (out == NULL) return DF_EINVAL;
  if ((code = df__db_check(db)) != DF_OK) return code;
  memset(out, 0, sizeof *out);
  if ((code = df__read_begin(db, &txn)) != DF_OK) return code;
  if (mdb_stat(txn, db->env->dbi_items, &st) == 0) out->items = st.ms_entries;
  if (mdb_stat(txn, db->env->dbi_index, &st) == 0)
    out->index_entries = st.ms_entries;
  if (mdb_env_info(db->env->env, &info) == 0) {
    out->map_size = info.me_mapsize;
    out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * page_size(db->env);
    out->max_readers = info.me_maxreaders;
    out->readers_used = info.me_numreaders;
  }
  if (mdb_cursor_open(txn, db->env->dbi_stream, &c) == 0) {
    if (mdb_cursor_get(c, &k, &v, MDB_FIRST) == 0 && k.mv_size == 8)
      out->stream_first = df__key_get_u64(k.mv_data);
    if (mdb_cursor_get(c, &k, &v, MDB_LAST) == 0 && k.mv_size == 8)
      out->stream_last = df__key_get_u64(k.mv_data);
    mdb_cursor_close(c);
  }
  df__read_end(db, txn);
  return DF_OK;
}

int df_db_item_key(df_db *db, const void *item, size_t len, df_key *key) {
  int code;
  char err[DF_MSG_MAX];
  if ((code = df__db_check(db)) != DF_OK) return code;
  code = df__item_key_of(&db->env->schema.s, item, len, key, err, sizeof err);
  if (code != DF_OK) df__db_err(db, code, "%s", err);
  return code;
}
