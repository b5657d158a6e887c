/*
 * dynafile.h -- the public C interface of dynafile, and its manual.
 *
 * dynafile is an embedded store with DynamoDB's data model on top of LMDB:
 * items (MessagePack maps) live in partitions chosen by a partition key,
 * sorted inside a partition by a sort key, reachable through secondary
 * indexes, with a change stream and TTL.  This header is the whole contract:
 * whatever it does not declare is not API.  It includes no Lua header; a C
 * host (a game engine, a tool) can use it directly.
 *
 * Conventions
 *  - Every fallible function returns int: 0 (DF_OK) on success or a negative
 *    DF_E* code.  Results come back through out-parameters.  The detailed
 *    message of the last failure lives in the handle that failed: the df_db
 *    for df_db_* and df_query_page calls and for df_txn_begin (read it with
 *    df_db_errmsg), the df_txn for every other df_txn_* call
 *    (df_txn_errmsg).  It stays valid until the next call on that handle
 *    (a df_db's message: the next call from the same thread).
 *    A NULL handle or out-parameter where one is required is DF_EINVAL with
 *    no message.
 *  - Out of memory is DF_ENOMEM, never an abort.  Every destructor accepts
 *    NULL.
 *  - "Borrowed" pointers point into memory owned by dynafile; each function
 *    says how long they stay valid.  Nothing returned needs free(): objects
 *    made by a df_*_new/open/begin/compile function are released by the
 *    matching df_*_free/close function, and nothing else is ever owned by
 *    the caller.  Input buffers (items, keys, expression sources) are
 *    copied or only read during the call: the caller may reuse them as
 *    soon as it returns.
 *  - Items are MessagePack maps (the public spec): strings are str or bin,
 *    integers stay integers, floats stay floats, nesting at most
 *    DF_MAX_DEPTH levels.
 *  - Threads: every function is safe to call from several threads at
 *    once, on one shared df_db handle or on one handle per thread
 *    (handles on one directory share one LMDB environment, and readers
 *    never wait for the writer).  What a call leaves for its caller --
 *    df_db_errmsg, df_db_get's item -- is kept per thread, so threads
 *    sharing a handle never see each other's.  The rules:
 *      . a df_txn, df_page and df_stream belong to the thread that made
 *        them and are used by one thread at a time;
 *      . at most one write transaction per thread per database (a second
 *        is DF_EBUSY, never a self-deadlock); a write waits for writers of
 *        other threads and processes;
 *      . growing the map waits for every transaction of the process to
 *        end, so a write made while the same thread holds a read df_txn
 *        cannot grow it (it would wait for itself): if the map is full,
 *        such a write fails with DF_EBUSY rather than hangs -- finish
 *        reads first;
 *      . df_db_close a handle only when no other thread is using it.
 *  - Processes: any number of processes may open one database at once;
 *    commits are serialised by LMDB's writer lock, readers use reader
 *    slots (see max_readers).  Open after fork, never before.  A handle
 *    carried into a forked child fails every call with DF_EFORKED.
 */
#ifndef DYNAFILE_H
#define DYNAFILE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DF_VERSION "0.1.0"
/* On-disk format version stored in the meta sub-database.  2: numbers in
 * keys as decimals, binary keys, long sort keys (prefix + hash).  3: the
 * redo log (redo.log beside data.mdb; a release before it must not write
 * there, since it would bypass the log; the data is as in format 2).  4:
 * a float that is an integer in the int64 range is keyed by that integer
 * (the float 2^60 and the integer 1 << 60 are one key; formats 2 and 3
 * keyed such a float beyond 2^53 by its shortest decimal).  A
 * database of an older format is upgraded in place, in one transaction,
 * by the first writable open (a read-only open of one is DF_EVERSION). */
#define DF_FORMAT_VERSION 4
/* Deepest nesting of maps and arrays an item may have. */
#define DF_MAX_DEPTH 32
/* The key attribute names of a new database whose creator names none
 * (the Lua layer's defaults; a C caller passes them in create_schema). */
#define DF_DEFAULT_PK "PK"
#define DF_DEFAULT_SK "SK"
/* Longest key value, in raw bytes, of a partition-key attribute (table or
 * GSI partition key).  Values whose encoding is longer than
 * DF_PK_INLINE_MAX are stored in keys as a 128-bit hash, collision checked
 * against the full value kept in the item. */
#define DF_PK_MAX 2048
#define DF_PK_INLINE_MAX 64
/* Longest sort-key value (table, GSI or LSI sort key), in raw bytes of a
 * string or binary (DynamoDB's limit); any number is a valid sort key. */
#define DF_SK_MAX 1024

/* Error codes: name, value, default message, and the stable code string
 * the Lua binding returns or raises with it (df_error_name; also the
 * codes of the DynamoDB-facing layers).
 *   DF_ENOMEM      an allocation failed; nothing was changed
 *   DF_EINVAL      a NULL or out-of-range argument, a finished transaction,
 *                  a bad option (raised in Lua)
 *   DF_EVALIDATION an item, key, schema or expression that is not valid:
 *                  malformed MessagePack, a key attribute missing, of the
 *                  wrong type or too long, nesting deeper than
 *                  DF_MAX_DEPTH, an expression that does not parse
 *                  (raised in Lua for items and keys)
 *   DF_ENOTFOUND   no such item or index (a normal outcome of a read; a
 *                  missing item is nil in Lua)
 *   DF_ECONDITION  a conditional write's condition was false.  The core
 *                  itself does not return it: a caller evaluates
 *                  conditions with df_expr_eval on the current item inside
 *                  its write transaction, as the Lua layer does.
 *   DF_EIO         an I/O error, or a transaction doomed by an earlier
 *                  failed write (rolled back)
 *   DF_ECORRUPT    not a dynafile directory (another program's files or
 *                  LMDB environment, a truncated data file), or malformed
 *                  stored bytes
 *   DF_EFORKED     a handle or transaction used in a forked child
 *   DF_ECLOSED     a handle whose open failed (raised in Lua)
 *   DF_EREADONLY   a write on a read-only handle or transaction, or a
 *                  read-only file system (raised in Lua for writes)
 *   DF_EBUSY       this thread holds a transaction the call would wait
 *                  for: the database's write transaction (a nested write
 *                  would deadlock), or a read transaction while a write
 *                  needs the map to grow (raised in Lua)
 *   DF_ERETRY      the map was full and has grown: run the whole
 *                  transaction again (the one-call forms and the Lua layer
 *                  do this by themselves)
 *   DF_EREADERS    every reader slot is in use
 *   DF_EVERSION    the data was written by a newer format
 *   DF_EDISKFULL   no space left on the device (or quota)
 *   DF_EACCESS     permission denied
 *   DF_ESCHEMA     the schema given differs from the stored one
 *   DF_ELIMIT      a filter's or condition's regular expression needed
 *                  more steps than its budget on one item (see
 *                  src/regex.c) */
#define DF_ERRORS(X)                                                           \
  X(OK, 0, "ok", "None")                                                       \
  X(ENOMEM, -1, "out of memory", "NoMemory")                                   \
  X(EINVAL, -2, "invalid argument", "InvalidArgument")                         \
  X(EVALIDATION, -3, "validation error", "ValidationError")                    \
  X(ENOTFOUND, -4, "not found", "NotFound")                                    \
  X(ECONDITION, -5, "conditional check failed", "ConditionalCheckFailed")      \
  X(EIO, -6, "I/O error", "IOError")                                           \
  X(ECORRUPT, -7, "database is corrupt or not a dynafile database", "Corrupt") \
  X(EFORKED, -8, "handle used in a forked child; open after fork", "Forked")   \
  X(ECLOSED, -9, "handle is closed", "Closed")                                 \
  X(EREADONLY, -10, "database is read-only", "ReadOnly")                       \
  X(EBUSY, -11, "this thread already holds the write transaction", "Busy")     \
  X(ERETRY, -12, "the map had to grow under a concurrent writer; retry",       \
    "Retry")                                                                   \
  X(EREADERS, -13, "no free reader slot (raise max_readers)", "ReadersFull")   \
  X(EVERSION, -14, "database format is newer than this library",               \
    "VersionMismatch")                                                         \
  X(EDISKFULL, -15, "no space left on device", "IOError")                      \
  X(EACCESS, -16, "permission denied", "IOError")                              \
  X(ESCHEMA, -17, "schema differs from the stored one", "ValidationError")     \
  X(ELIMIT, -18, "a regular expression needed more than its budget",           \
    "LimitExceeded")

typedef enum df_error {
#define DF__ENUM(name, value, msg, lua) DF_##name = value,
  DF_ERRORS(DF__ENUM)
#undef DF__ENUM
} df_error;

/* The default message of a code; a static string, never NULL ("unknown
 * error" for a code not listed above). */
const char *df_strerror(int code);
/* The code's symbolic name without the DF_ prefix ("ENOMEM"); a static
 * string, never NULL ("EUNKNOWN" for a code not listed above). */
const char *df_errname(int code);
/* The code's stable code string, the fourth column above ("NoMemory",
 * "ValidationError", "None" for DF_OK); a static string, never NULL
 * ("Error" for a code not listed above). */
const char *df_error_name(int code);

/* ---------------------------------------------------------------- values */

typedef enum df_type {
  DF_TNONE = 0, /* absent (no such attribute) */
  DF_TNIL,
  DF_TBOOL,
  DF_TINT,     /* i */
  DF_TUINT,    /* u: an unsigned integer above INT64_MAX */
  DF_TFLOAT,   /* f */
  DF_TSTR,     /* s, n: bytes, not NUL-terminated */
  DF_TBIN,     /* s, n */
  DF_TARRAY,   /* n: element count; s points at the first element */
  DF_TMAP,     /* n: pair count; s points at the first key */
  DF_TDECIMAL, /* a number no int64, uint64 or double holds exactly:
                  s, n are its encoding (see "Numbers" below) */
  DF_TSS,      /* string set: n elements (str), s points at the first */
  DF_TNS,      /* number set: n elements (numbers), s points at the first */
  DF_TBS,      /* binary set: n elements (bin), s points at the first */
  DF_TOTHER    /* given by a caller only: a value of its own language that no
                  item can hold (a Lua function), so that a key check can
                  name it: s, n name it with its article ("a function") */
} df_type;

/* A value, either given by the caller (key values) or read from item
 * bytes.  Strings are borrowed: from the caller, or from the bytes read. */
typedef struct df_value {
  df_type type;
  int64_t i; /* DF_TINT, and DF_TBOOL (0/1) */
  uint64_t u;
  double f;
  const char *s;
  size_t n;
} df_value;

/* A primary key: the partition-key value and, for tables with a sort key,
 * the sort-key value (sk.type == DF_TNONE otherwise).  Key values are
 * strings (DF_TSTR or DF_TBIN, compared bytewise) or numbers (DF_TINT,
 * DF_TUINT, DF_TFLOAT; integers and floats compare numerically together;
 * NaN refused).  Numbers sort before strings.  Limits: DF_PK_MAX bytes for
 * a partition-key string, DF_SK_MAX encoded bytes for a sort key. */
typedef struct df_key {
  df_value pk;
  df_value sk;
} df_key;

/* --------------------------------------------------------------- schema */

enum { DF_GSI = 1, DF_LSI = 2 };
enum { DF_PROJ_ALL = 0, DF_PROJ_KEYS = 1, DF_PROJ_INCLUDE = 2 };

typedef struct df_index_def {
  const char *name;
  int kind;                   /* DF_GSI or DF_LSI */
  const char *pk;             /* GSI partition-key attribute; NULL for LSI */
  const char *sk;             /* sort-key attribute; NULL: none (GSI only) */
  int projection;             /* DF_PROJ_* */
  const char *const *include; /* DF_PROJ_INCLUDE: attribute names */
  size_t n_include;
  unsigned id; /* assigned by dynafile (1..255); ignored on input */
} df_index_def;

typedef struct df_schema {
  const char *pk;       /* partition-key attribute name */
  const char *sk;       /* sort-key attribute name, NULL: pk-only table */
  const char *ttl_attr; /* TTL attribute (epoch seconds), NULL: none */
  const df_index_def *indexes;
  size_t n_indexes;
} df_schema;

/* ------------------------------------------------------------- database */

typedef struct df_db df_db;
typedef struct df_txn df_txn;
typedef struct df_page df_page;
typedef struct df_expr df_expr;

/* What a commit waits for.  Every commit appends one record to the redo
 * log (<dir>/redo.log) and then commits to LMDB without flushing it; the
 * modes differ only in when the log is flushed.  No mode loses anything
 * to a crash of the process, and no mode can corrupt the database on a
 * crash of the machine: recovery at the next open restores the last
 * checkpoint and replays the log (see src/commit.c). */
typedef enum df_sync {
  DF_SYNC_FULL = 0, /* the commit's record is flushed (one fdatasync)
                       before the commit returns: nothing acknowledged is
                       lost */
  DF_SYNC_NORMAL,   /* no flush per commit: a background thread flushes
                       the log at most flush_ms (100 ms) after a commit; an
                       OS crash may lose the commits of that window */
  DF_SYNC_OFF       /* no flush at all (but checkpoints): an OS crash may
                       lose the commits since the last checkpoint */
} df_sync;

typedef void (*df_progress_fn)(void *ud, const char *index, size_t done,
                               size_t total);

typedef struct df_open_options {
  const df_schema *schema;        /* NULL: use the stored schema.  Else it must
                                     agree with the stored one (keys, TTL
                                     attribute when both name one, indexes both
                                     name), and what it adds is applied before
                                     the open returns, in one write transaction:
                                     a TTL attribute where none is stored, new
                                     global indexes, built from the items (also
                                     while other handles of the process are
                                     open: they see them at once) */
  const df_schema *create_schema; /* used instead when schema is NULL and
                                     the database is new; both NULL and
                                     new: DF_EVALIDATION */
  df_sync sync;
  int readonly;            /* open without write access; writes: DF_EREADONLY */
  size_t map_size;         /* initial map size in bytes; 0: 1 MiB.  The map
                              grows by itself as the data grows (doubling, by
                              at most 1 GiB at a time); the data file is as
                              long as the map, its blocks allocated. */
  unsigned max_readers;    /* reader slots shared by every process that has
                              the database open; 0: DF_DEFAULT_MAX_READERS.
                              Sized in lock.mdb by the first opener while no
                              process has it open, which can raise it but
                              never lower it; other openers' value is
                              ignored.  df_db_stat tells the size in force. */
  df_progress_fn progress; /* optional: index backfill progress */
  void *progress_ud;
  /* The change log (see "change log" below).  stream = 0: keep the stored
   * setting (a new database has the log off).  stream = 1: store these
   * settings, for every process: retention by count (stream_keep records,
   * 0: no count limit) and by age (stream_keep_seconds, 0: no age limit);
   * both 0 turns the log off. */
  int stream;
  uint64_t stream_keep;
  double stream_keep_seconds;
  /* Written into the change-log records of this handle's commits, so a
   * reader can skip its own (df_stream_read's skip_origin).  0: a value
   * unique to this process and database (df_db_origin tells it). */
  uint64_t origin;
  /* Read-ahead when this process opens the database (its first handle of
   * the directory): up to `prefetch` bytes of the data file's pages in use
   * are handed to the kernel to read in the background, so a first pass
   * over a database that is not in the page cache does not wait for one
   * disk read per page (the map itself reads no further than the page
   * asked, which keeps random reads of a database larger than the memory
   * cheap).  Skipped when sampled pages show the file already cached.
   * 0: DF_PREFETCH_DEFAULT; DF_PREFETCH_NONE: none.  Never more than a
   * quarter of the physical memory. */
  size_t prefetch;
  /* The largest item this handle writes, in bytes as DynamoDB counts them
   * (attribute names and values: strings and binaries their bytes,
   * numbers about one byte per two digits, lists and maps 3 bytes plus
   * one per element); a larger one is DF_EVALIDATION ("Item size has
   * exceeded the maximum allowed size").  0: no limit.  DynamoDB's is
   * DF_DYNAMODB_MAX_ITEM_SIZE. */
  uint64_t max_item_size;
  /* The commit path (see df_sync).  flush_ms: with DF_SYNC_NORMAL the log
   * is flushed at most this long after a commit (0: 100; the first handle
   * to open the database in this process sets it).  checkpoint_bytes: a
   * checkpoint (which flushes the data file and lets the log start again)
   * comes once the log since the last one, or the pages written since,
   * reach this (0: 64 MiB), or 30 seconds after it; it bounds the log's
   * size, the time recovery takes, and how much the data file can grow
   * beyond its data (pages freed since the last checkpoint are reused
   * only after the next). */
  unsigned flush_ms;
  uint64_t checkpoint_bytes;
} df_open_options;

#define DF_PREFETCH_DEFAULT ((size_t)256 << 20)
#define DF_PREFETCH_NONE ((size_t)-1)

/* DynamoDB's item size limit, 400 KB, for df_open_options.max_item_size. */
#define DF_DYNAMODB_MAX_ITEM_SIZE (400 * 1024)

/* Reader slots when max_readers is 0: every read transaction of every
 * process takes one while it runs, and each handle keeps one for reuse.
 * 2046 fills a 128 KiB lock file and covers nginx with 64 workers, each
 * with several handles, overlapping with a reloading generation. */
#define DF_DEFAULT_MAX_READERS 2046

/* Open (creating when missing: the directory with its parents, the LMDB
 * environment, the schema) the database in directory `path`.  `opts` may
 * be NULL (all defaults: an existing database with its stored schema).
 * Handles opened on one directory in one process share one LMDB
 * environment (reference-counted).  Open after fork, never before.
 * On success *out is a new handle, released with df_db_close.  On failure
 * *out is a handle in a failed state holding the message: read it with
 * df_db_errmsg, then release it with df_db_close (any other call on it
 * fails with DF_ECLOSED).  *out is NULL only when even that handle could
 * not be allocated (DF_ENOMEM; df_db_errmsg(NULL) then gives the default
 * message) or when `out` itself is NULL (DF_EINVAL).
 * Errors: DF_EINVAL (empty path, bad sync mode, path too long),
 * DF_ESCHEMA (the schema differs from the stored one in what an open
 * cannot change: the keys, an existing TTL attribute (df_db_set_ttl
 * changes it), an index's definition, a new LSI; the message names the
 * difference), DF_EVALIDATION (no schema given for a new database; bad
 * index definition), DF_EACCESS (no permission on the directory or its
 * files), DF_EIO (path is a file, cannot create the directory, ...),
 * DF_ECORRUPT (a directory holding other files and no database, another
 * program's LMDB environment, a truncated data file, a read-only open of a
 * directory holding no database), DF_EVERSION (written by a newer format),
 * DF_EREADONLY (the directory is already open read-only in this process
 * and a writable handle was asked for, or a read-only file system),
 * DF_EDISKFULL (no room to store a new schema), DF_EREADERS, DF_ENOMEM. */
int df_db_open(const char *path, const df_open_options *opts, df_db **out);

/* Close and free a handle (also one whose open failed); NULL is accepted.
 * The pointer is invalid afterwards.  The environment is closed when its
 * last handle in this process closes.  Closing a handle with live
 * transactions made from it is allowed: the handle refuses new calls at
 * once (DF_ECLOSED), the transactions stay usable (commit, free), and the
 * handle is released when the last of them is freed.  Pages (df_page) do
 * not belong to a handle and may
 * outlive it.  Borrowed pointers from this handle (errmsg, schema, id,
 * df_db_get's item) die with it.  In a forked child it frees the handle
 * without touching the parent's LMDB state. */
void df_db_close(df_db *db);

/* The message of the calling thread's last failure on this handle (empty
 * before any).  Borrowed; valid until the thread's next call on the
 * handle.  NULL gives the default message of DF_ENOMEM (a static string). */
const char *df_db_errmsg(const df_db *db);

/* The schema in force (stored or given).  Borrowed; valid until the
 * handle is closed.  NULL for NULL or a handle whose open failed. */
const df_schema *df_db_schema(const df_db *db);

/* A string identifying the database (its directory's device and inode),
 * equal for every handle on the same directory in this process.
 * Borrowed; valid until the handle is closed.  "" (static) for NULL or a
 * handle whose open failed. */
const char *df_db_id(const df_db *db);

/* Find an index by name: *id (optional, may be NULL) receives its number,
 * for df_query.index.  Errors: DF_ENOTFOUND when there is no index of that
 * name (df_db_errmsg: "no index named <name>"), DF_EINVAL for a NULL name
 * or a handle whose open failed (no message). */
int df_db_index_find(const df_db *db, const char *name, unsigned *id);

/* Check a primary key by the rule every call taking a key applies, without
 * reading anything: each key value present and a string, binary or number
 * (not NaN); a partition-key string of at most DF_PK_MAX bytes; a sort key
 * whose encoding fits DF_SK_MAX.  A caller turning its own language's
 * values into df_values passes those no item can hold as DF_TOTHER, so the
 * message names them.  Errors: DF_EVALIDATION with the message in
 * df_db_errmsg ("key attribute SK is too long (...)", "missing key
 * attribute PK", "key attribute PK must be a string or a number, not a
 * function"), DF_EINVAL (key NULL), DF_ECLOSED, DF_EFORKED. */
int df_db_key_check(df_db *db, const df_key *key);

/* Drop the secondary index `name`: delete its entries and remove it from
 * the stored schema, in one write transaction (all or nothing).  Another
 * process that has the database open stops maintaining the index at its
 * next write transaction.  Do not drop an index while other threads of
 * this process are querying it.
 * Errors: DF_ENOTFOUND (no such index), DF_EREADONLY, DF_EBUSY (this
 * thread holds a write transaction), DF_EDISKFULL, DF_EIO, DF_ENOMEM,
 * DF_ECLOSED, DF_EFORKED. */
int df_db_drop_index(df_db *db, const char *name);

/* Set, change (attr) or clear (NULL) the TTL attribute: in one write
 * transaction, store it in the schema, rebuild every expiry entry, and
 * rewrite the entries of indexes that carry the TTL value (those whose
 * projection is not "all").  An open may add a TTL attribute to a
 * database that has none, but never changes or clears one: this call does.
 * Another process that has the database open follows at its next write
 * transaction.  Nothing happens when attr is the attribute in force.
 * Errors: DF_EVALIDATION (an empty name), DF_EREADONLY, DF_EBUSY (this
 * thread holds a write transaction), DF_EDISKFULL, DF_EIO, DF_ENOMEM,
 * DF_ECLOSED, DF_EFORKED. */
int df_db_set_ttl(df_db *db, const char *attr);

/* Statistics for tools, read in one short read transaction. */
typedef struct df_stat {
  uint64_t items;         /* items in the table (expired ones included) */
  uint64_t index_entries; /* entries of every index together */
  uint64_t map_size;      /* current map size in bytes (grows by itself) */
  uint64_t used_bytes;    /* bytes of the map in use (pages up to the last
                             one used) */
  unsigned max_readers;   /* reader slots of the environment */
  unsigned readers_used;  /* reader slots used so far (LMDB's count) */
  uint64_t stream_first, stream_last; /* change-log sequence range; 0 when
                                         the log is empty or off */
  int format; /* the on-disk format (DF_FORMAT_VERSION once upgraded) */
} df_stat;
/* Fill *st.  Errors: DF_EINVAL (st NULL), DF_ECLOSED, DF_EFORKED,
 * DF_EREADERS, DF_EIO, DF_ENOMEM. */
int df_db_stat(df_db *db, df_stat *st);

/* What df_db_check found.  A healthy database has every field after
 * `expiry_entries` at zero. */
typedef struct df_check_report {
  uint64_t items, index_entries, expiry_entries;
  uint64_t bad_items;      /* malformed, or stored under the wrong key */
  uint64_t missing_index;  /* index entries an item implies but absent */
  uint64_t stale_index;    /* index entries no item implies */
  uint64_t missing_expiry; /* expiry entries an item implies but absent */
  uint64_t stale_expiry;   /* expiry entries no item implies */
  /* What recovery did when this process opened the database (the first
   * process to open it after a crash recovers it; zeros otherwise): */
  int recovered;             /* 1: it had to be recovered */
  int meta_restored;         /* 1: LMDB's meta pages were put back as of
                                the last checkpoint (after a crash of the
                                machine, or of the last process) */
  uint64_t records_replayed; /* redo-log records applied since then */
  uint64_t replayed_bytes;
  double recovery_seconds;
  int log_created; /* 1: the database had no redo log (new, or
                      written by a release before it) and got one */
  /* The redo log now: */
  uint64_t checkpoint; /* the number of the checkpoint in force */
  uint64_t log_bytes;  /* bytes of records since it */
} df_check_report;

/* Verify every index and the expiry sub-database against the items, in
 * one read transaction (it visits everything: as long as a scan), and
 * report what recovery did at open.
 * Returns DF_OK with the findings in *r (the check itself succeeded; read
 * the counts), or the error of the read: DF_EINVAL (r NULL), DF_ECLOSED,
 * DF_EFORKED, DF_EREADERS, DF_EIO, DF_ENOMEM. */
int df_db_check(df_db *db, df_check_report *r);

/* ---------------------------------------------------------- transactions */

enum {
  DF_TXN_READ = 0,
  DF_TXN_WRITE = 1,
  /* Record one df_event per change, for listeners (write only). */
  DF_TXN_EVENTS = 2
};

/* Begin a transaction: flags DF_TXN_READ, or DF_TXN_WRITE optionally
 * with DF_TXN_EVENTS.  `now` is the current time in epoch seconds, used
 * for TTL: an item whose TTL attribute is below `now` is invisible.
 * A read transaction sees one consistent snapshot and never blocks or
 * waits for writers; keep it short, since LMDB cannot reuse pages freed
 * after its snapshot while it lives.  A write transaction takes the
 * database's single writer lock (waiting for writers in other threads and
 * processes) until df_txn_commit or df_txn_free.
 * On success *out is a new transaction: release it with df_txn_free (also
 * after a commit), before the handle is closed.  On failure *out is NULL
 * and the message is in df_db_errmsg(db).
 * Errors: DF_EINVAL (out NULL), DF_EBUSY (this thread already holds a
 * write transaction on this database), DF_EREADONLY (write on a read-only
 * handle), DF_EREADERS, DF_EFORKED, DF_ECLOSED, DF_EIO, DF_ENOMEM. */
int df_txn_begin(df_db *db, unsigned flags, double now, df_txn **out);

/* Commit.  Whatever the result, the transaction is finished afterwards
 * (the writer lock is released) and must still be freed with df_txn_free.
 * On success everything it wrote is durable as the handle's sync mode
 * promises, and its events stay readable until df_txn_free.  On failure
 * nothing it wrote was kept.  Committing a read transaction just ends it.
 * Errors: DF_ERETRY (the map was full and has grown: run the whole
 * transaction again from df_txn_begin), DF_EBUSY (the map was full and
 * cannot grow while this thread holds a read transaction of this
 * database, or a transaction of another one while the map stayed busy
 * for 5 seconds), DF_EIO (an
 * earlier operation of the transaction failed part-way, so it was rolled
 * back; or the commit's write failed), DF_EDISKFULL, DF_EACCESS,
 * DF_EFORKED, DF_EINVAL (NULL or already finished).
 * A df_txn_put/delete/purge failure found before anything was written (a
 * bad item or key) leaves the transaction usable; one that happens while
 * writing (out of memory, an LMDB error, a full map) dooms it: later
 * operations and the commit fail. */
int df_txn_commit(df_txn *txn);

/* Abort (when still live) and free; NULL accepted.  A write transaction
 * that met a full map grows it here, so that running it again can succeed.
 * Every pointer borrowed from the transaction (items, old items, events,
 * errmsg) dies here. */
void df_txn_free(df_txn *txn);

/* The message of the last failure in this transaction.  Borrowed; valid
 * until the next call on the transaction or its df_txn_free.  NULL gives
 * the default message of DF_ENOMEM. */
const char *df_txn_errmsg(const df_txn *txn);

/* Read the item with `key` (read or write transaction; a write
 * transaction sees its own writes).  *item and *len borrow the stored
 * bytes in the memory map: valid until the next write in this transaction
 * or its end (commit or free), never to be written to.  Expired items are
 * not found.  Errors: DF_ENOTFOUND (no item, or expired; no message),
 * DF_EVALIDATION (bad key: a missing, NaN or non-key value, too long),
 * DF_EINVAL (NULL or finished transaction), DF_EFORKED, DF_ERETRY (the
 * transaction is doomed by a full map), DF_EIO, DF_ECORRUPT. */
int df_txn_get(df_txn *txn, const df_key *key, const void **item, size_t *len);

/* Write an item (a MessagePack map holding the key attributes), replacing
 * the item with the same key, and update every index and the expiry
 * entry with it.  The bytes are copied: the caller keeps `item`.
 * When `old`/`old_len` are non-NULL they receive the replaced item (NULL
 * and 0 when there was none, or when it had expired: that one is deleted
 * first, with a DELETE event marked expired), borrowed until the next
 * call on the transaction.
 * Errors: DF_EVALIDATION (malformed MessagePack, not a map, nesting deeper
 * than DF_MAX_DEPTH, key attribute missing or of a wrong type, key too
 * long; nothing written), DF_EREADONLY (read transaction), DF_EINVAL,
 * DF_EFORKED, DF_ERETRY (the map is full: the transaction is doomed;
 * df_txn_commit or df_txn_free grows the map, then run the transaction
 * again), DF_EDISKFULL, DF_EIO, DF_ENOMEM. */
int df_txn_put(df_txn *txn, const void *item, size_t len, const void **old,
               size_t *old_len);

/* Delete an item, with its index and expiry entries.  *found (optional)
 * says whether it existed (an expired item counts as missing, though it is
 * removed too); `old` as for df_txn_put.  Deleting a missing item is not
 * an error and records no event.  Errors: as for df_txn_put, with
 * DF_EVALIDATION for a bad key. */
int df_txn_delete(df_txn *txn, const df_key *key, int *found, const void **old,
                  size_t *old_len);

/* Delete an item that the caller's own TTL rule found expired: as
 * df_txn_delete (same errors), but the DELETE event is marked expired. */
int df_txn_delete_expired(df_txn *txn, const df_key *key, int *found);

/* One operation of df_txn_write_batch: a put of `item` (MessagePack, len
 * bytes), or a delete of `key` when item is NULL. */
typedef struct df_batch_op {
  const void *item;
  size_t len;
  const df_key *key;
} df_batch_op;

/* Apply n puts and deletes in one call, as df_txn_put and df_txn_delete
 * would, in the order of their items keys (B+tree order: each page is
 * visited once), a later op on one key after an earlier one -- so the
 * result is that of applying them in the order given.  Events, when
 * recorded, come in that applying order.  On failure *failed_at
 * (optional) is the index of the op that failed, and the transaction is
 * as df_txn_put/df_txn_delete leave it (a bad item or key found before
 * anything is written: usable, nothing of the batch applied).
 * Errors: those of df_txn_put and df_txn_delete; DF_EINVAL (ops NULL
 * with n > 0); DF_ENOMEM. */
int df_txn_write_batch(df_txn *txn, const df_batch_op *ops, size_t n,
                       size_t *failed_at);

/* Delete items whose TTL attribute is below the transaction's `now`, at
 * most `limit` (0: all), oldest expiry first, visiting only expired
 * entries.  *count (optional) receives how many were deleted; each gives a
 * DELETE event marked expired.  Without a TTL attribute in the schema it
 * deletes nothing and returns DF_OK.  Errors: DF_EINVAL (NULL or finished
 * transaction), DF_EREADONLY (read transaction), DF_ECORRUPT (a malformed
 * expiry entry), and those of a write as for df_txn_put. */
int df_txn_purge_expired(df_txn *txn, size_t limit, size_t *count);

/* Extract the primary key of an item's bytes into *key (strings borrowed
 * from `item`: valid as long as the caller keeps `item`).  Lengths are not
 * checked here.  Errors: DF_EVALIDATION (malformed bytes, a key attribute
 * missing or of a wrong type), DF_ECLOSED, DF_EFORKED, DF_EINVAL. */
int df_db_item_key(df_db *db, const void *item, size_t len, df_key *key);

/* How many times a write that meets a full map is run again, the map
 * grown each time, before it gives up with DF_EIO: by the one-call forms,
 * schema changes at open, df_db_drop_index, and the Lua layer's writes. */
#define DF_GROW_RETRIES 32

/* One-call forms, each its own transaction (the write forms retry by
 * themselves after the map grows, so they never return DF_ERETRY; after
 * DF_GROW_RETRIES growths in a row they give up with DF_EIO).  The message is
 * in df_db_errmsg(db).  df_db_get copies the item into memory the handle keeps
 * for the calling thread: *item is borrowed until that thread's next call on
 * `db` (or its close).  df_db_get also fails DF_ENOMEM when that memory cannot
 * be had. df_db_put copies `item`.  df_db_delete's *found is optional. Deleting
 * a missing item is not an error.  The write forms also delete up to eight
 * expired items (as df_txn_purge_expired).  They record no events.  Errors
 * as for df_txn_get/put/delete, plus those of df_txn_begin (including DF_EBUSY
 * when this thread holds a write transaction) and df_txn_commit. */
int df_db_get(df_db *db, const df_key *key, double now, const void **item,
              size_t *len);
int df_db_put(df_db *db, const void *item, size_t len, double now);
int df_db_delete(df_db *db, const df_key *key, double now, int *found);

/* ---------------------------------------------------------------- events */

enum { DF_EV_PUT = 1, DF_EV_DELETE = 2 };

typedef struct df_event {
  int action;      /* DF_EV_PUT or DF_EV_DELETE */
  int expired;     /* 1 when TTL removed the item */
  const void *old; /* previous item bytes or NULL */
  size_t old_len;
  const void *new_item; /* new item bytes or NULL */
  size_t new_len;
  uint64_t seq; /* change-log sequence number, 0 when not logged */
} df_event;

/* Number of events recorded by a DF_TXN_EVENTS transaction (0 for NULL
 * or without the flag): one per change, in the order made, including the
 * expired items a write removed on its way.  Read them after a successful
 * df_txn_commit; they describe nothing if the commit failed. */
size_t df_txn_event_count(const df_txn *txn);
/* Fill *ev with event i (0-based).  Its old/new_item pointers are borrowed
 * until df_txn_free (a later write in the same transaction may move them:
 * read events after the commit).  Errors: DF_EINVAL (NULL, or i out of
 * range). */
int df_txn_event(const df_txn *txn, size_t i, df_event *ev);

/* ------------------------------------------------------------ change log */

/* When the change log is on (df_open_options.stream), every change is also
 * written, in the same transaction, as a record of the `stream`
 * sub-database: sequence numbers increase by one per change in commit
 * order across every process, and records past the retention (count or
 * age) are trimmed by the writes that follow, oldest first; the newest
 * record is always kept.  Record values are MessagePack arrays
 * [seq, time, origin, action, expired, old item | nil, new item | nil].
 * In-process events (df_txn_event) carry the same seq. */

/* A retention for callers that want the log on without choosing one
 * (the Lua binding's `stream = true`). */
#define DF_STREAM_KEEP_DEFAULT 10000

typedef struct df_stream df_stream;

typedef struct df_stream_record {
  df_event event;  /* action, expired, old/new item bytes, seq */
  double time;     /* commit time, epoch seconds (the transaction's `now`
                      when it was given, else the wall clock) */
  uint64_t origin; /* the origin of the handle that wrote it */
} df_stream_record;

/* A batch of records: create once, reuse for every read. */
int df_stream_new(df_stream **out);
void df_stream_free(df_stream *s);

/* Read, in one read transaction, the records with seq > `after` in order:
 * at most `max` of them (0: 256) into `s`, leaving out those whose origin
 * is `skip_origin` (0: none).  Continue with df_stream_next(s) as `after`.
 * Errors: DF_EREADERS, DF_EFORKED, DF_ECLOSED, DF_ECORRUPT (a malformed
 * record), DF_ENOMEM. */
int df_stream_read(df_db *db, uint64_t after, size_t max, uint64_t skip_origin,
                   df_stream *s);
size_t df_stream_count(const df_stream *s);
/* Record i; its item bytes are borrowed until `s` is reused or freed.
 * DF_EINVAL when i is out of range. */
int df_stream_record_get(const df_stream *s, size_t i, df_stream_record *rec);
/* The seq to read after next time: the last record examined, skipped or
 * not (`after` itself when there was none). */
uint64_t df_stream_next(const df_stream *s);
/* The oldest and newest seq in the log when it was read (0, 0: empty).
 * A reader whose `after` + 1 < *first has missed *first - after - 1
 * records, trimmed before it read them. */
void df_stream_bounds(const df_stream *s, uint64_t *first, uint64_t *last);
/* The origin written by this handle's commits. */
uint64_t df_db_origin(const df_db *db);

/* --------------------------------------------------------------- queries */

/* How a sort-key bound compares. */
enum {
  DF_COND_NONE = 0,
  DF_COND_EQ,
  DF_COND_LT,
  DF_COND_LE,
  DF_COND_GT,
  DF_COND_GE,
  DF_COND_BETWEEN,    /* lo <= sk <= hi */
  DF_COND_BEGINS_WITH /* string prefix */
};

typedef struct df_query {
  unsigned index; /* 0: the table; else an index id */
  int has_pk;     /* 1: query the partition `pk`; 0: scan */
  df_value pk;
  int cond;        /* DF_COND_* on the sort key */
  df_value lo, hi; /* operands: lo for one-operand conditions */
  int has_start;   /* seed's starts_with: start at sort key `start`
                      inclusive, in the direction of travel */
  df_value start;
  int reverse;             /* descending sort-key order */
  const void *start_after; /* MessagePack map holding the key attributes
                              (table and index) to resume after; NULL */
  size_t start_after_len;
  unsigned segment, segments; /* scan segment k (0-based) of n; n=0: all */
  const df_expr *filter;      /* evaluated on stored bytes; NULL: none */
  size_t limit;               /* stop after this many matches (0: none) */
  double now;                 /* TTL reference time */
} df_query;

/* A page: a bounded batch of matching items copied out of one short read
 * transaction.  Create once, reuse for every page.  A page belongs to no
 * handle: it owns its copies and may be used with any handle and outlive
 * them.  df_page_new errors: DF_EINVAL (out NULL), DF_ENOMEM. */
int df_page_new(df_page **out);
/* Free a page and everything borrowed from it; NULL accepted. */
void df_page_free(df_page *page);

/* Read the next page of `q` into `page` (its previous content is
 * dropped): at most `max_items` matching items (0: 100; q->limit lowers
 * it), examining at most `max_examined` entries (0: no bound).  Expired
 * items and items failing q->filter are skipped but count as examined.
 * Pass the page's next key back as q->start_after to continue; a page may
 * be empty while a next key exists.  The query and its buffers are only
 * read during the call.
 * Errors (message in df_db_errmsg): DF_EINVAL (NULL q or page, segment
 * out of range), DF_EVALIDATION (bad key values or start_after bytes),
 * DF_ENOTFOUND (unknown index id), DF_ECORRUPT (a stored item is
 * malformed), DF_EREADERS, DF_EFORKED, DF_ECLOSED, DF_EIO, DF_ENOMEM. */
int df_query_page(df_db *db, const df_query *q, size_t max_items,
                  size_t max_examined, df_page *page);

size_t df_page_count(const df_page *page);
/* Item i of the page (projected for index queries); borrowed until the
 * page is reused or freed. */
void df_page_item(const df_page *page, size_t i, const void **item,
                  size_t *len);
/* The resume point after the last examined entry: a MessagePack map of the
 * key attributes (borrowed), or NULL when the range is exhausted. */
void df_page_next_key(const df_page *page, const void **key, size_t *len);
/* How many entries the page examined (items visited in the B+tree). */
size_t df_page_examined(const df_page *page);

/* ----------------------------------------------------------- expressions */

/* Compile a filter/condition expression (the language is described at
 * the top of src/expr.c and in the README).  On success *out is a new
 * expression, freed with df_expr_free; it owns copies of everything it
 * needs (`src` may be freed at once) and, being read-only once compiled,
 * may be shared by threads.  On failure *out is NULL and, when err is
 * non-NULL and errlen > 0, a NUL-terminated message ("filter: <what> at
 * column N") is written into err.
 * Errors: DF_EVALIDATION (syntax error, empty or too long expression, a
 * refused regular expression), DF_EINVAL (out NULL, or src NULL with
 * len > 0), DF_ENOMEM. */
int df_expr_compile(const char *src, size_t len, df_expr **out, char *err,
                    size_t errlen);
/* Evaluate against an item's MessagePack bytes (NULL/0: no item, every
 * attribute missing).  Never allocates (except what regexec may do
 * inside libc).  Returns 1 (true), 0 (false), DF_ECORRUPT for malformed
 * bytes met on the way, or DF_EINVAL for a NULL expression. */
int df_expr_eval(const df_expr *e, const void *item, size_t len);
/* Free a compiled expression; NULL accepted. */
void df_expr_free(df_expr *e);

/* ------------------------------------------------ DynamoDB expressions */

/* DynamoDB's expression language (ConditionExpression, FilterExpression,
 * KeyConditionExpression, ProjectionExpression, UpdateExpression), with
 * its placeholders, reserved words, limits and error messages; described
 * at the top of src/ddbexpr.c.  Errors are DF_EVALIDATION with DynamoDB's
 * message in err ("Invalid FilterExpression: Syntax error; token: ...").
 *
 * The names and values of one request come first, as a df_ddb_args made
 * from two MessagePack maps: ExpressionAttributeNames ({"#n": "name"}) and
 * ExpressionAttributeValues ({":v": value}); either may be NULL/0 (absent).
 * Every expression of the request is then compiled against it; each marks
 * the placeholders it uses, and df_ddb_args_check_unused reports the ones
 * no expression used, as DynamoDB does.  Compiled objects copy what they
 * need: the args may be freed before them.  An args object is used by one
 * thread at a time (compiling marks it). */
typedef struct df_ddb_args df_ddb_args;
enum {
  DF_DDB_CONDITION = 1,
  DF_DDB_FILTER = 2,
  DF_DDB_KEY_CONDITION = 3,
  DF_DDB_UPDATE = 4,
  DF_DDB_PROJECTION = 5
};
/* Errors: DF_EVALIDATION (not maps, an invalid key, an empty map, an
 * empty name), DF_EINVAL, DF_ENOMEM. */
int df_ddb_args_new(const void *names, size_t names_len, const void *values,
                    size_t values_len, df_ddb_args **out, char *err,
                    size_t errlen);
void df_ddb_args_free(df_ddb_args *a);
/* DF_EVALIDATION ("Value provided in ExpressionAttributeNames unused in
 * expressions: keys: {#x}") when a placeholder was used by no expression
 * compiled so far, else 0. */
int df_ddb_args_check_unused(const df_ddb_args *a, char *err, size_t errlen);

/* Compile a condition (kind DF_DDB_CONDITION, DF_DDB_FILTER or
 * DF_DDB_KEY_CONDITION, which only changes the messages) into a df_expr
 * evaluated by df_expr_eval like any other.  a may be NULL (no names or
 * values).  Errors: DF_EVALIDATION, DF_EINVAL, DF_ENOMEM. */
int df_ddb_condition(df_ddb_args *a, int kind, const char *src, size_t len,
                     df_expr **out, char *err, size_t errlen);

/* A KeyConditionExpression decomposed for df_query: the partition-key
 * value and at most one condition on the sort key.  Values are borrowed
 * from the df_ddb_args (valid until it is freed). */
typedef struct df_key_condition {
  df_value pk;
  int cond; /* DF_COND_*, DF_COND_NONE without a sort-key condition */
  df_value lo, hi;
} df_key_condition;
/* pk, sk: the key attribute names of the table or index queried (sk NULL
 * without a sort key).  Errors: DF_EVALIDATION with DynamoDB's messages
 * ("Query condition missed key schema element: PK", "Invalid operator
 * used in KeyConditionExpression: OR", ...), DF_EINVAL, DF_ENOMEM. */
int df_ddb_key_condition(df_ddb_args *a, const char *src, size_t len,
                         const char *pk, const char *sk, df_key_condition *out,
                         char *err, size_t errlen);

/* A ProjectionExpression: which document paths of an item to return. */
typedef struct df_projection df_projection;
int df_ddb_projection(df_ddb_args *a, const char *src, size_t len,
                      df_projection **out, char *err, size_t errlen);
/* The projected item: a MessagePack map holding only the projected paths
 * (nested maps and lists keep their shape; list elements keep their order
 * and close up).  *out is borrowed until the next call on the projection
 * or its free, so one thread at a time.  Errors: DF_ECORRUPT (malformed
 * item bytes), DF_EINVAL, DF_ENOMEM. */
int df_projection_apply(df_projection *p, const void *item, size_t len,
                        const void **out, size_t *out_len);
size_t df_projection_count(const df_projection *p);
void df_projection_free(df_projection *p);

/* --------------------------------------------------------------- updates */

/* An update program: DynamoDB's UpdateExpression (df_ddb_update) or
 * dynafile's table of changes (df_update_new + df_update_add), applied to
 * an item's stored bytes by df_update_apply; semantics at the top of
 * src/update.c.  Attributes the update does not name keep their exact
 * bytes.  A program is used by one thread at a time (apply writes into
 * its own buffer). */
typedef struct df_update df_update;
enum { DF_UPD_SET = 1, DF_UPD_REMOVE = 2, DF_UPD_ADD = 3, DF_UPD_DELETE = 4 };

/* Compile an UpdateExpression.  Errors: DF_EVALIDATION with DynamoDB's
 * message, DF_EINVAL, DF_ENOMEM. */
int df_ddb_update(df_ddb_args *a, const char *src, size_t len, df_update **out,
                  char *err, size_t errlen);
/* An empty table-form program (missing maps on a SET path are created;
 * ADD and DELETE of a list act as set union and difference). */
int df_update_new(df_update **out);
/* Add one change: action DF_UPD_*, a document path ("a.b[2]", names may
 * be `backtick quoted`), and for all but DF_UPD_REMOVE one MessagePack
 * value.  where (optional) prefixes the messages of this change.  Both
 * are copied.  Errors: DF_EVALIDATION (malformed path or value),
 * DF_EINVAL, DF_ENOMEM. */
int df_update_add(df_update *u, int action, const char *path, size_t path_len,
                  const void *value, size_t value_len, const char *where,
                  char *err, size_t errlen);
/* Apply to `old` (NULL/0: no item; the new item starts from `key`, a
 * MessagePack map of the key attributes) and return the new item in *out
 * (borrowed until the next apply on u or its free).  key_names: the key
 * attributes, which no change may name.  Errors: DF_EVALIDATION (the
 * changes do not fit the item -- a path through a value of another type,
 * ADD to a string, an integer overflow -- or name a key attribute; the
 * message in err), DF_ECORRUPT (malformed stored bytes), DF_EINVAL,
 * DF_ENOMEM. */
int df_update_apply(df_update *u, const void *old, size_t old_len,
                    const void *key, size_t key_len,
                    const char *const *key_names, size_t n_keys,
                    const void **out, size_t *out_len, char *err,
                    size_t errlen);
/* The number of actions of a program (0 for NULL). */
size_t df_update_count(const df_update *u);
/* The top-level attribute action i changes (for DynamoDB's ReturnValues
 * UPDATED_OLD / UPDATED_NEW): *name (borrowed from u) and *len.
 * DF_EINVAL when i is out of range. */
int df_update_target(const df_update *u, size_t i, const char **name,
                     size_t *len);
void df_update_free(df_update *u);

/* ---------------------------------------------------------------- testing */

/* Make the Nth allocation from now fail (1 = the next one), 0 to stop.
 * Only in builds with -DDF_FAULT_INJECTION; elsewhere a no-op returning
 * DF_EINVAL.  Returns 0. */
int df_test_fail_alloc(long nth);

#ifdef __cplusplus
}
#endif
#endif /* DYNAFILE_H */
