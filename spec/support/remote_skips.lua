-- spec/support/remote_skips.lua: what tests/remote_specs.sh does not run
-- against the DynamoDB backend, and why.  Every entry names its reason:
-- NotSupported (the backend refuses it, saying why), a documented
-- difference (the README's table), or a known gap of the server (dynalite
-- implements part of DynamoDB's API).  `servers` lists the servers an
-- entry applies to (default: all).
local BY_WRITES = "documented difference: expired items are deleted by DynamoDB or "
  .. "purge_expired, not by later writes"
local ONE_TYPE = "documented difference: DynamoDB key attributes have one type (and refuse "
  .. "empty strings)"
local REGEX = "NotSupported: regular expressions (=~) have no DynamoDB form"
local ONE_NUMBER = "documented difference: DynamoDB has one number type (1.0 reads back as 1)"
local NO_TRANSACT = "known gap of dynalite: no TransactWriteItems"
local NO_ADD_GSI = "known gap of dynalite: UpdateTable does not add global indexes"
local OTHER_PROCESS = "opens the directory from other processes, which this helper does not map "
  .. "to the table"
local IDX_TYPE = "dynalite writes an index key attribute of another type; dynafile serve "
  .. "refuses it with DynamoDB's message (Expected: the index's declared type), which the "
  .. "backend's put_item returns as nil, message where a local database raises"
local SERVER_HIDES = "known gap of dynafile serve: it hides expired items from Scan itself "
  .. "(DynamoDB returns them until it deletes them), so purge_expired finds none to delete"
local PROGRESS = "NotSupported: open's progress option (DynamoDB backfills indexes itself)"

local skips = {
  -- whole files
  files = {
    ["spec/core_spec.lua"] = "the C core's module (dynafile.core), not the public API",
    ["spec/view_spec.lua"] = "documented difference: the DynamoDB backend gives a Lua filter "
      .. "the decoded item (a table, read the same way), not a view of stored bytes",
    ["spec/hostile_files_spec.lua"] = "damaged LMDB files: a local database's storage",
    ["spec/hostile_input_spec.lua"] = "compares a local database's sub-databases byte for byte",
    ["spec/processes_spec.lua"] = "processes sharing a local database's LMDB environment",
    ["spec/readers_spec.lua"] = "LMDB reader slots",
    ["spec/stream_spec.lua"] = "NotSupported: the change log (poll_stream) is a local database's",
    ["spec/readonly_handle_spec.lua"] = "a read-only and a writable handle sharing one LMDB "
      .. "environment",
    ["spec/cli_spec.lua"] = "the command line on local database directories",
    ["spec/types_spec.lua"] = "opens no database (value types only)",
    ["spec/ddbjson_spec.lua"] = "opens no database (value conversion only)",
    ["spec/item_json_spec.lua"] = "the local binding's stored item bytes written as DynamoDB "
      .. "JSON (dynafile serve's read path, db:_get_item_json and the page calls), which the "
      .. "DynamoDB backend has no use for",
    ["spec/copy_spec.lua"] = "already runs against dynalite",
    ["spec/remote_spec.lua"] = "already runs against dynalite",
    ["spec/remote_fault_spec.lua"] = "already runs against dynalite",
    ["spec/remote_sigv4_spec.lua"] = "opens no database",
    ["spec/long_bound_spec.lua"] = "the local key encoding's limit on sort-key bounds "
      .. "(DF_SK_MAX)",
    ["spec/long_keys_spec.lua"] = "the local key encoding of long sort keys (a prefix and a "
      .. "hash, ordered by the items) and db:check(); DynamoDB's 1,024-byte sort keys: "
      .. "spec/keys_spec.lua's \"keys of strings\"",
    ["spec/upgrade_spec.lua"] = "the on-disk formats of a local database (tests/fixtures/v1)",
    ["spec/max_item_size_spec.lua"] = "limits other than DynamoDB's 400 KB (the backend takes "
      .. "only max_item_size = 409600: spec/remote_spec.lua)",
    ["spec/decimal_c_spec.lua"] = "the binding's C constructors of numbers, against "
      .. "types.lua's Lua code (its storage part is stored_types_spec's on the backend)",
    ["spec/regex_spec.lua"] = "NotSupported: regular expressions (=~) have no DynamoDB form; "
      .. "and items over 400 KB (documented difference)",
    ["spec/errors_spec.lua"] = "the local codec's and key encoding's own messages (cycles, "
      .. "nesting deeper than 32, tables it cannot encode, 1,024-byte sort keys) and db._c; the "
      .. "DynamoDB backend names the function and the attribute in its own words",
    ["spec/write_purge_spec.lua"] = "drives the local write transaction (db._c)",
    ["spec/open_spec.lua"] = "directories, meta.json, the LMDB environment, the map and sync "
      .. "modes of a local database",
    ["spec/commit_spec.lua"] = "a local database's commit path: the redo log, recovery, the "
      .. "map, mdb_copy",
    ["spec/commit_upgrade_spec.lua"] = "local database files written by an earlier release",
    ["spec/transaction_spec.lua"] = { reason = "known gap of dynalite: no TransactWriteItems",
      servers = { dynalite = true } },
    ["spec/set_ttl_spec.lua"] = { reason = "known gap of dynalite: no UpdateTimeToLive",
      servers = { dynalite = true } },
    ["spec/prefetch_spec.lua"] = "the read-ahead of a local database's data file (the "
      .. "DynamoDB backend refuses the option as local-only)",
    ["spec/function_names_spec.lua"] = "the local layers' messages: items, keys and index "
      .. "values judged by the binding and the core in their words (the backend judges them by "
      .. "DynamoDB's rules, in DynamoDB's words)",
  },
  -- the key types each spec file writes (DynamoDB: one type per key
  -- attribute; a local database takes strings and numbers alike)
  -- (most specs use numeric sort keys: SK = "N" unless a file is listed)
  default_types = { SK = "N" },
  types = {
    ["spec/items_spec.lua"] = { SK = "S" },
    ["spec/query_spec.lua"] = { SK = "S" },
    ["spec/lsi_spec.lua"] = { score = "N" },
    ["spec/index_spec.lua"] = { n = "N", s = "N" },
    ["spec/ttl_projection_spec.lua"] = { GS = "N", L = "N" },
    ["spec/page_spec.lua"] = { rank = "N" },
    ["spec/backfill_spec.lua"] = { SK = "N", rank = "N" },
    ["spec/number_keys_spec.lua"] = { PK = "N", SK = "N", g = "N", gs = "N", n = "N" },
  },
  -- ... and by the name of a describe block (for the tables opened inside
  -- it), where one file uses one attribute with two types
  describe_types = {
    ["query on numeric sort keys"] = { SK = "N", group = "S", name = "S" },
    ["keys of strings"] = { SK = "S" },
    ["keys of numbers as partition keys"] = { PK = "N", SK = "S" },
  },
  -- describe blocks left out, by their full names (outer blocks first):
  -- every test inside is skipped
  describes = {
    { name = "number keys beyond 2^53 written by an older release",
      reason = "the on-disk formats of a local database (tests/fixtures/v1, v3)" },
    { name = "a database written by one Lua", reason = OTHER_PROCESS },
    { name = "query on one sort key attribute holding numbers and strings", reason = ONE_TYPE },
    { name = "filter strings on a sort key holding numbers and strings", reason = ONE_TYPE },
  },
  -- single tests, by their full name
  tests = {
    { name = "transact_write_items takes binary key values, and names one item by its bytes",
      reason = ONE_TYPE },
    { name = "db:set_ttl sets a first TTL attribute: expired items vanish from reads and indexes",
      reason = SERVER_HIDES, servers = { serve = true } },
    { name = "db:set_ttl holds for the other handles of the process and for a reopen",
      reason = SERVER_HIDES, servers = { serve = true } },
    { name = "DynamoDB expressions as conditions works in transact_write_items",
      reason = NO_TRANSACT, servers = { dynalite = true } },
    { name = "updates in DynamoDB's syntax works in transactions and transact_write_items",
      reason = NO_TRANSACT, servers = { dynalite = true } },
    { name = "updates in DynamoDB's syntax adds to numbers, removes list elements and creates the "
      .. "item", reason = "known gap of dynalite: REMOVE of several list positions removes the "
      .. "wrong ones", servers = { dynalite = true } },
    { name = "updates in either syntax keeps the exact bytes of every attribute it does not name",
      reason = "the stored bytes of a local database (db._c)" },
    { name = "building a new global index at open gives the same index over 10,000 items as "
      .. "writing them one by one", reason = NO_ADD_GSI, servers = { dynalite = true } },
    { name = "building a new global index at open reports progress to the progress function, "
      .. "ending at the item count", reason = PROGRESS },
    { name = "building a new global index at open re-raises an error of the progress function "
      .. "after the open has finished", reason = PROGRESS },
    { name = "building a new global index at open grows the map when the new index does not fit "
      .. "in it", reason = "the map of a local database (its size, its growth)" },
    { name = "building a new global index at open leaves the database as it was when an item "
      .. "cannot enter the new index", reason = "DynamoDB builds a new index "
      .. "in the background and leaves out an item it cannot hold (the local open refuses the "
      .. "index, naming the item's attribute)" },
    { name = "a global secondary index drops an index: entries deleted, definition gone, queries "
      .. "refused", reason = "known gap of dynalite: UpdateTable does not delete global indexes",
      servers = { dynalite = true } },
    { name = "a global secondary index orders items with equal index keys by the table key",
      reason = "documented difference: DynamoDB returns items with equal index keys in no "
        .. "defined order" },
    { name = "a global secondary index is maintained by transactions and transact_write_items",
      reason = NO_TRANSACT, servers = { dynalite = true } },
    { name = "a global secondary index is left untouched by a transaction that fails",
      reason = NO_TRANSACT, servers = { dynalite = true } },
    { name = "a global secondary index refuses a write whose index sort key cannot fit, naming "
      .. "attribute and index", reason = "a 1,025-byte string in an "
      .. "index key attribute this file's tables declare numeric" },
    { name = "a global secondary index builds a new index under a dropped one's name from the "
      .. "items", reason = NO_ADD_GSI, servers = { dynalite = true } },
    { name = "a global secondary index is kept in step when another process adds and drops "
      .. "indexes", reason = OTHER_PROCESS },
    { name = "keys only a local database holds orders infinities and numbers past DynamoDB's "
      .. "range with the others", reason = "documented difference: DynamoDB numbers have no "
      .. "infinities and magnitudes from 1E-130 to below 1E+126" },
    { name = "keys only a local database holds gives integer and float keys back with their "
      .. "subtype on Lua 5.3+", reason = ONE_NUMBER },
    { name = "keys only a local database holds orders strings of any bytes, the empty string "
      .. "first", reason = "documented difference: DynamoDB key strings are UTF-8 and not empty" },
    { name = "keys only a local database holds puts every number before every string",
      reason = ONE_TYPE },
    { name = "keys only a local database holds accepts empty strings as partition and sort keys",
      reason = "documented difference: DynamoDB refuses empty strings as key values" },
    { name = "filter strings matches regular expressions with anchors, classes and the i flag",
      reason = REGEX },
    { name = "filter strings tests membership of booleans with in [...]",
      reason = "known gap of dynalite: IN never matches the boolean false",
      servers = { dynalite = true } },
    { name = "an item keeps strings of any bytes, including NUL and invalid UTF-8",
      reason = "documented difference: DynamoDB strings are UTF-8 (other bytes: dynafile.binary)" },
    { name = "an item keeps numbers, and integers apart from floats on Lua 5.3+",
      reason = "documented difference: DynamoDB has one number type (1.0 reads back as 1)" },
    { name = "an item keeps 1 and 1.0 apart on Lua 5.3+",
      reason = "documented difference: DynamoDB has one number type (1.0 reads back as 1)" },
    { name = "an item keeps NaN as an attribute value",
      reason = "documented difference: DynamoDB numbers cannot be NaN" },
    { name = "a batch writer commits a batch larger than the map once the map has grown, one "
      .. "event per put", reason = "documented difference: stat().items is DynamoDB's ItemCount, "
      .. "refreshed about every six hours" },
    { name = "a batch writer writes a flush in one call in the stored keys' order, a later op "
      .. "on a key winning", reason = "a local database's write order (its stored keys, one "
      .. "call into the C core); DynamoDB's BatchWriteItem has no defined order" },
    { name = "a batch writer raises when a key too long is queued, keeping the rest of the "
      .. "queue", reason = "documented difference: a string sort key in a numeric key "
      .. "attribute, and DynamoDB's 1,024-byte sort keys" },
    { name = "a batch writer raises at flush, writing nothing, when a queued index value is "
      .. "too long", reason = "opens an index with a key of 3,000 bytes in a string attribute "
      .. "(DynamoDB: 2,048)" },
    { name = "batch_get_item works inside a transaction, reading the committed state",
      reason = "known gap of dynalite: no TransactWriteItems", servers = { dynalite = true } },
    { name = "batch_get_item holds no read transaction while a TTL function runs: a coroutine "
      .. "may yield in it", reason = "documented difference: a 3 MB item (DynamoDB: 400 KB)" },
    { name = "update_item with a table of changes removes list positions as numbered in the old "
      .. "item, whatever their order", reason = "known gap of dynalite: REMOVE of several list "
      .. "positions removes the wrong ones", servers = { dynalite = true } },
    { name = "update_item with a table of changes refuses an integer sum that does not fit, "
      .. "leaving the item as it was", reason = "documented difference: DynamoDB numbers have 38 "
      .. "digits (no 64-bit overflow)" },
    { name = "update_item with a table of changes refuses to add to a string or a number to a list",
      reason = "documented difference: the ValidationError carries DynamoDB's message" },
    { name = "a stream listener hears every write path: conditions, updates, batches and "
      .. "transactions", reason = "known gap of dynalite: no TransactWriteItems",
      servers = { dynalite = true } },
    { name = "a stream listener hears nothing of failed, canceled or empty writes",
      reason = "documented difference: a batch writer's delete of a missing item is heard "
        .. "(BatchWriteItem does not say whether the item existed)" },
    { name = "a transaction commits everything once, even when the map must grow on the way",
      reason = "documented difference: a transaction holds at most 100 items (4,000 here)" },
    { name = "a stream listener may write inside a transaction of its own",
      reason = "known gap of dynalite: no TransactWriteItems", servers = { dynalite = true } },
    { name = "TTL as an attribute checks the TTL in C, without turning expired items into tables",
      reason = "the local reader's statistics (items decoded in C)" },
    { name = "TTL as an attribute is deleted by later write paths, with events",
      reason = BY_WRITES },
    { name = "TTL as an attribute is deleted by write paths that take the fast path (no listener)",
      reason = BY_WRITES },
    { name = "TTL as an attribute is purged by the batch writer, update_item,"
      .. " delete_item and transactions",
      reason = BY_WRITES },
    { name = "TTL as an attribute treats an expired item as absent when it is overwritten",
      reason = BY_WRITES },
    { name = "TTL as a function is deleted when a write path meets it",
      reason = BY_WRITES },
    { name = "TTL as an attribute is kept in the stored schema",
      reason = "known gap of dynalite: no UpdateTimeToLive, so the table keeps no TTL",
      servers = { dynalite = true } },
    { name = "TTL as an attribute uses os.time without a clock",
      reason = "known gap of dynalite: no UpdateTimeToLive, so the table keeps no TTL",
      servers = { dynalite = true } },
    { name = "TTL as an attribute never expires an item whose TTL is more than five years past, "
      .. "as DynamoDB", reason = "dynafile serve expires items by its own clock, the spec by a "
      .. "simulated one; dynalite keeps no TTL for the reopened table (no UpdateTimeToLive); "
      .. "spec/remote_spec.lua checks the rule on the backend" },
    { name = "a global secondary index refuses a write whose index key attribute is of a type no "
      .. "key has, as DynamoDB", reason = IDX_TYPE },
    { name = "a local secondary index refuses items whose sort attribute is of a type no key has",
      reason = IDX_TYPE },
    { name = "stored DynamoDB types refuses empty sets and sets of the wrong kind, writing nothing",
      reason = "documented difference: the ValidationError carries DynamoDB's message" },
    { name = "stored DynamoDB types takes binary values and decimals as key values",
      reason = ONE_TYPE },
    { name = "stored DynamoDB types is read, updated and deleted by every other Lua",
      reason = OTHER_PROCESS },
    { name = "scan segments scans each segment from its own process, all at once",
      reason = "opens the directory from other processes, which this helper does not map to "
        .. "the table" },
  },
}

-- listener_errors_spec's first test of each kind writes through
-- db:transaction (TransactWriteItems)
for _, what in ipairs({ "a string", "nil", "a table", "an object whose __tostring raises",
  "an object whose __tostring raises such an object",
  "an object whose __tostring returns a number", "a coroutine" }) do
  skips.tests[#skips.tests + 1] = {
    name = "a stream listener that raises " .. what
      .. " leaves the write's result and every later delivery intact",
    reason = NO_TRANSACT, servers = { dynalite = true } }
end

return skips
