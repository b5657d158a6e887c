// serve-rules.test.js -- finer points of DynamoDB's behaviour that SDK users
// and conformance suites check, through the AWS SDK for JavaScript v3:
// how ConsumedCapacity is shaped and what index writes cost, parentheses in
// key conditions, size() on strings, UpdateTable no-ops, and the errors of
// transactions and PartiQL statements.
"use strict";
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const D = require("@aws-sdk/client-dynamodb");
const { startServe, rejects } = require("./lib/serve");

let s;
const send = (cmd) => s.ddb.send(cmd);

before(async () => {
  s = await startServe();
  await send(new D.CreateTableCommand({ TableName: "rules", BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }, { AttributeName: "sk", AttributeType: "S" },
      { AttributeName: "g", AttributeType: "S" }, { AttributeName: "l", AttributeType: "S" },
      { AttributeName: "l2", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }, { AttributeName: "sk", KeyType: "RANGE" }],
    GlobalSecondaryIndexes: [{ IndexName: "gix", KeySchema: [{ AttributeName: "g", KeyType: "HASH" }],
      Projection: { ProjectionType: "INCLUDE", NonKeyAttributes: ["proj"] } }],
    LocalSecondaryIndexes: [{ IndexName: "lix", KeySchema: [{ AttributeName: "pk", KeyType: "HASH" },
      { AttributeName: "l", KeyType: "RANGE" }], Projection: { ProjectionType: "ALL" } },
    { IndexName: "lkeys", KeySchema: [{ AttributeName: "pk", KeyType: "HASH" },
      { AttributeName: "l2", KeyType: "RANGE" }], Projection: { ProjectionType: "KEYS_ONLY" } }] }));
});
after(async () => { if (s) await s.stop(); });

let n = 0;
const fresh = () => `item${n++}`;
const put = (Item, mode = "INDEXES") => send(new D.PutItemCommand({ TableName: "rules", Item,
  ReturnConsumedCapacity: mode }));
const arms = (cc) => ({
  total: cc.CapacityUnits,
  table: cc.Table && cc.Table.CapacityUnits,
  gsi: cc.GlobalSecondaryIndexes && cc.GlobalSecondaryIndexes.gix.CapacityUnits,
  lsi: cc.LocalSecondaryIndexes && cc.LocalSecondaryIndexes.lix.CapacityUnits,
});

test("ConsumedCapacity splits read and write units only for transactions", async () => {
  const pk = fresh();
  let r = await put({ pk: { S: pk }, sk: { S: "1" } }, "TOTAL");
  assert.deepEqual(r.ConsumedCapacity, { TableName: "rules", CapacityUnits: 1 });
  r = await send(new D.GetItemCommand({ TableName: "rules", Key: { pk: { S: pk }, sk: { S: "1" } },
    ReturnConsumedCapacity: "TOTAL" }));
  assert.deepEqual(r.ConsumedCapacity, { TableName: "rules", CapacityUnits: 0.5 });
  r = await send(new D.QueryCommand({ TableName: "rules", KeyConditionExpression: "pk = :p",
    ExpressionAttributeValues: { ":p": { S: pk } }, ConsistentRead: true, ReturnConsumedCapacity: "INDEXES" }));
  assert.deepEqual(r.ConsumedCapacity, { TableName: "rules", CapacityUnits: 1, Table: { CapacityUnits: 1 } });
  r = await send(new D.TransactWriteItemsCommand({ ReturnConsumedCapacity: "TOTAL", TransactItems: [
    { Put: { TableName: "rules", Item: { pk: { S: fresh() }, sk: { S: "1" } } } }] }));
  assert.deepEqual(r.ConsumedCapacity, [{ TableName: "rules", CapacityUnits: 2, WriteCapacityUnits: 2 }]);
});

test("index writes cost what they change in the index, under TOTAL too", async () => {
  const base = () => ({ pk: { S: fresh() }, sk: { S: "1" } });
  let item = { ...base(), g: { S: "g1" }, proj: { S: "p" } };
  assert.deepEqual(arms((await put(item)).ConsumedCapacity), { total: 2, table: 1, gsi: 1, lsi: undefined });
  assert.equal((await put({ ...base(), g: { S: "g1" } }, "TOTAL")).ConsumedCapacity.CapacityUnits, 2);
  assert.deepEqual(arms((await put({ ...base(), extra: { S: "o" } })).ConsumedCapacity),
    { total: 1, table: 1, gsi: undefined, lsi: undefined });
  // an identical overwrite changes no index
  item = { ...base(), g: { S: "g4" }, l: { S: "L1" }, proj: { S: "p" } };
  assert.deepEqual(arms((await put(item)).ConsumedCapacity), { total: 3, table: 1, gsi: 1, lsi: 1 });
  assert.deepEqual(arms((await put(item)).ConsumedCapacity), { total: 1, table: 1, gsi: undefined, lsi: undefined });
  // updates: a non-projected attribute, a projected one, a key change, a key removal
  const seed = async () => {
    const k = base();
    await put({ ...k, g: { S: "g" }, l: { S: "L1" }, proj: { S: "p" }, extra: { S: "o" } });
    return k;
  };
  const update = async (UpdateExpression, ExpressionAttributeValues) => arms((await send(new D.UpdateItemCommand({
    TableName: "rules", Key: await seed(), UpdateExpression, ExpressionAttributeValues,
    ReturnConsumedCapacity: "INDEXES" }))).ConsumedCapacity);
  assert.deepEqual(await update("SET extra = :v", { ":v": { S: "o2" } }), { total: 2, table: 1, gsi: undefined, lsi: 1 });
  assert.deepEqual(await update("SET proj = :v", { ":v": { S: "p2" } }), { total: 3, table: 1, gsi: 1, lsi: 1 });
  assert.deepEqual(await update("SET g = :v", { ":v": { S: "moved" } }), { total: 4, table: 1, gsi: 2, lsi: 1 });
  assert.deepEqual(await update("REMOVE g"), { total: 3, table: 1, gsi: 1, lsi: 1 });
  assert.deepEqual(await update("SET l = :v", { ":v": { S: "L2" } }), { total: 3, table: 1, gsi: undefined, lsi: 2 });
});

test("a KeyConditionExpression may carry redundant parentheses; a filter may not", async () => {
  const pk = fresh();
  await put({ pk: { S: pk }, sk: { S: "3" }, data: { S: "c" } });
  const r = await send(new D.QueryCommand({ TableName: "rules",
    KeyConditionExpression: "((#pk = :pk)) AND ((#sk = :sk))", ExpressionAttributeNames: { "#pk": "pk", "#sk": "sk" },
    ExpressionAttributeValues: { ":pk": { S: pk }, ":sk": { S: "3" } } }));
  assert.equal(r.Items.length, 1);
  await rejects(send(new D.QueryCommand({ TableName: "rules", KeyConditionExpression: "pk = :pk",
    FilterExpression: "((sk = :sk))", ExpressionAttributeValues: { ":pk": { S: pk }, ":sk": { S: "3" } } })),
  "ValidationException", "Invalid FilterExpression: The expression has redundant parentheses;");
});

test("size() counts a string in UTF-16 code units", async () => {
  const pk = fresh();
  await put({ pk: { S: pk }, sk: { S: "1" }, s: { S: "\u00e9\u{1d11e}" } });
  const count = async (v) => (await send(new D.QueryCommand({ TableName: "rules", KeyConditionExpression: "pk = :pk",
    FilterExpression: "size(s) = :n", ExpressionAttributeValues: { ":pk": { S: pk }, ":n": { N: v } } }))).Items.length;
  assert.equal(await count("3"), 1);
  assert.equal(await count("6"), 0);
});

test("UpdateTable refuses a PROVISIONED table's unchanged throughput, BillingMode given or not", async () => {
  await send(new D.CreateTableCommand({ TableName: "prov", AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
    ProvisionedThroughput: { ReadCapacityUnits: 5, WriteCapacityUnits: 5 } }));
  for (const extra of [{}, { BillingMode: "PROVISIONED" }]) {
    await rejects(send(new D.UpdateTableCommand({ TableName: "prov", ...extra,
      ProvisionedThroughput: { ReadCapacityUnits: 5, WriteCapacityUnits: 5 } })), "ValidationException",
    /The provisioned throughput for the table will not change/);
  }
});

test("TransactWriteItems: a key of the wrong type cancels its action; an empty index key refuses the request", async () => {
  const cancelled = async (item, message) => {
    const e = await rejects(send(new D.TransactWriteItemsCommand({ TransactItems: [item] })),
      "TransactionCanceledException",
      "Transaction cancelled, please refer cancellation reasons for specific reasons [ValidationError]");
    assert.deepEqual(e.CancellationReasons, [{ Code: "ValidationError", Message: message }]);
  };
  await cancelled({ Put: { TableName: "rules", Item: { pk: { N: "5" }, sk: { S: "1" } } } },
    "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N");
  await cancelled({ Put: { TableName: "rules", Item: { pk: { S: "a" }, sk: { S: "1" }, g: { L: [] } } } },
    "One or more parameter values were invalid: Type mismatch for Index Key g Expected: S Actual: L IndexName: gix");
  await cancelled({ Update: { TableName: "rules", Key: { pk: { S: "a" }, sk: { S: "1" } }, UpdateExpression: "SET g = :v",
    ExpressionAttributeValues: { ":v": { L: [{ S: "x" }] } } } },
  "One or more parameter values were invalid: Type mismatch for Index Key g Expected: S Actual: L IndexName: gix");
  await cancelled({ Delete: { TableName: "rules", Key: { pk: { N: "5" }, sk: { S: "1" } } } },
    "The provided key element does not match the schema");
  await rejects(send(new D.TransactWriteItemsCommand({ TransactItems: [{ Update: { TableName: "rules",
    Key: { pk: { S: "a" }, sk: { S: "1" } }, UpdateExpression: "SET g = :v", ExpressionAttributeValues: { ":v": { S: "" } } } }] })),
  "ValidationException", "One or more parameter values are not valid. The update expression attempted to update a "
    + "secondary index key to a value that is not supported. The AttributeValue for a key attribute cannot contain "
    + "an empty string value.");
  assert.equal((await send(new D.GetItemCommand({ TableName: "rules", Key: { pk: { S: "a" }, sk: { S: "1" } } }))).Item,
    undefined, "nothing was written");
  const e = await rejects(send(new D.TransactGetItemsCommand({ TransactItems: [{ Get: { TableName: "rules", Key: {} } }] })),
    "TransactionCanceledException");
  assert.equal(e.CancellationReasons[0].Code, "ValidationError");
  await rejects(send(new D.TransactGetItemsCommand({ TransactItems: [1, 2].map(() => ({ Get: { TableName: "rules",
    Key: { pk: { S: "a" }, sk: { S: "1" } } } })) })), "ValidationException",
  "Transaction request cannot include multiple operations on one item");
});

test("a number costs one byte per base-100 digit, plus one, plus one when negative (the 400 KB limit to the byte)", async () => {
  const MAX = 409600;
  // pk "n<i>" (2 + 2 or 3 bytes), "n" + the number, "p" + padding
  const cases = [["0", 1], ["1", 2], ["100", 2], ["123", 3], ["1.5", 3], ["100.5", 4], ["3.14159", 5],
    ["0.0000001", 2], ["1E125", 2], ["-42", 3], ["-0", 1]];
  for (const [i, [lit, cost]] of cases.entries()) {
    const key = { pk: { S: `n${i}` }, sk: { S: "1" } };
    const fixed = 2 + key.pk.S.length + 2 + 1 + 1 + cost + 1;
    const item = (total) => ({ ...key, n: { N: lit }, p: { S: "x".repeat(total - fixed) } });
    await send(new D.PutItemCommand({ TableName: "rules", Item: item(MAX) }));
    await rejects(send(new D.PutItemCommand({ TableName: "rules", Item: item(MAX + 1) })), "ValidationException",
      "Item size has exceeded the maximum allowed size");
  }
});

test("request checks DynamoDB reports alone: an empty TableName of a write, UpdateItem's first bad enum, a Scan's Limit", async () => {
  for (const Cmd of [D.PutItemCommand, D.DeleteItemCommand, D.UpdateItemCommand]) {
    await rejects(send(new Cmd({ TableName: "", Item: {}, Key: {}, ReturnValues: "INVALID" })), "ValidationException",
      "1 validation error detected: Value '' at 'tableName' failed to satisfy constraint: Member must have length "
        + "greater than or equal to 1");
  }
  const e = await rejects(send(new D.UpdateItemCommand({ TableName: "rules", Key: { pk: { S: "a" } },
    ReturnValues: "INVALID", ReturnConsumedCapacity: "INVALID" })), "ValidationException");
  assert.match(e.message, /^1 validation error detected: .*enum value set/);
  const p = await rejects(send(new D.PutItemCommand({ TableName: "rules", Item: { pk: { S: "a" } },
    ReturnValues: "INVALID", ReturnConsumedCapacity: "INVALID" })), "ValidationException");
  assert.match(p.message, /^2 validation errors detected/);
  await rejects(send(new D.ScanCommand({ TableName: "rules", Limit: 0 })), "ValidationException",
    "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater "
      + "than or equal to 1");
  await rejects(send(new D.QueryCommand({ TableName: "rules", Limit: 0, KeyConditionExpression: "pk = :p",
    ExpressionAttributeValues: { ":p": { S: "a" } } })), "ValidationException",
  "1 validation error detected: Value at 'Limit' failed to satisfy constraint: Member must have value greater than "
    + "or equal to 1");
});

test("PartiQL: an ordering comparison with a value that has no order is refused before the table is looked up", async () => {
  for (const op of ["<", ">="]) {
    await rejects(send(new D.ExecuteStatementCommand({ Statement: `SELECT pk FROM "rules" WHERE pk = ? AND v ${op} ?`,
      Parameters: [{ S: "a" }, { BOOL: true }] })), "ValidationException",
    `Incorrect operand type for operator or function; operator or function: ${op}, operand type: BOOL`);
  }
  await rejects(send(new D.ExecuteStatementCommand({ Statement: 'SELECT pk FROM "nosuchtable" WHERE pk = ? AND v BETWEEN ? AND ?',
    Parameters: [{ S: "a" }, { L: [] }, { S: "z" }] })), "ValidationException",
  "Incorrect operand type for operator or function; operator or function: BETWEEN, operand type: L");
});

test("a transaction of 3.5 MB commits (its intent grows the catalog inside the table's transaction)", async () => {
  const TransactItems = Array.from({ length: 10 }, (_, i) => ({ Put: { TableName: "rules",
    Item: { pk: { S: "big" }, sk: { S: String(i) }, payload: { S: "x".repeat(350000) } } } }));
  await send(new D.TransactWriteItemsCommand({ TransactItems, ClientRequestToken: "big-transaction-1" }));
  let count = 0, pages = 0, ExclusiveStartKey;
  do { // 1 MB pages: 3 items of 350 KB each
    const r = await send(new D.QueryCommand({ TableName: "rules", KeyConditionExpression: "pk = :p",
      ExpressionAttributeValues: { ":p": { S: "big" } }, Select: "COUNT", ExclusiveStartKey }));
    count += r.Count;
    pages += 1;
    ExclusiveStartKey = r.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  assert.equal(count, 10);
  assert.equal(pages, 4);
  const tooBig = Array.from({ length: 12 }, (_, i) => ({ Put: { TableName: "rules",
    Item: { pk: { S: "too-big" }, sk: { S: String(i) }, payload: { S: "x".repeat(350000) } } } }));
  await rejects(send(new D.TransactWriteItemsCommand({ TransactItems: tooBig })), "ValidationException",
    "Transaction request cannot be larger than 4 MB");
});

test("a replay under the same ClientRequestToken is charged as a transactional read", async () => {
  const req = { ClientRequestToken: "replay-1", ReturnConsumedCapacity: "TOTAL",
    TransactItems: [{ Put: { TableName: "rules", Item: { pk: { S: "replay" }, sk: { S: "1" } } } }] };
  const first = await send(new D.TransactWriteItemsCommand(req));
  assert.deepEqual(first.ConsumedCapacity, [{ TableName: "rules", CapacityUnits: 2, WriteCapacityUnits: 2 }]);
  const again = await send(new D.TransactWriteItemsCommand(req));
  assert.deepEqual(again.ConsumedCapacity, [{ TableName: "rules", CapacityUnits: 2, ReadCapacityUnits: 2 }]);
});

test("BatchExecuteStatement: members' capacity summed, a failed member that ran names its table", async () => {
  await send(new D.PutItemCommand({ TableName: "rules", Item: { pk: { S: "bx" }, sk: { S: "1" }, val: { S: "here" } } }));
  const r = await send(new D.BatchExecuteStatementCommand({ ReturnConsumedCapacity: "TOTAL", Statements: [
    { Statement: 'SELECT * FROM "rules" WHERE pk = ? AND sk = ?', Parameters: [{ S: "bx" }, { S: "1" }] },
    { Statement: 'SELECT * FROM "rules" WHERE pk = ? AND sk = ?', Parameters: [{ S: "bx" }, { S: "1" }], ConsistentRead: true },
    { Statement: 'SELECT * FROM "rules" WHERE val = ?', Parameters: [{ S: "here" }] },
    { Statement: 'SLECT * FROM "rules"' }] }));
  assert.deepEqual(r.ConsumedCapacity, [{ TableName: "rules", CapacityUnits: 1.5 }]);
  assert.equal(r.Responses[2].Error.Code, "ValidationError");
  assert.equal(r.Responses[2].Error.Message,
    "Select statements within BatchExecuteStatement must specify the primary key in the where clause");
  assert.equal(r.Responses[2].TableName, undefined);
  assert.equal(r.Responses[3].Error.Message, "Statement wasn't well formed, can't be processed: Expected data manipulation");
  const w = await send(new D.BatchExecuteStatementCommand({ Statements: [
    { Statement: 'UPDATE "rules" SET t = 1 WHERE pk = ? AND sk = ? AND val = ?', Parameters: [{ S: "bx" }, { S: "1" }, { S: "no" }] },
    { Statement: 'INSERT INTO "rules" VALUE {\'pk\': ?, \'sk\': ?}', Parameters: [{ S: "bx" }, { S: "1" }] }] }));
  assert.deepEqual(w.Responses.map((x) => [x.Error.Code, x.TableName]),
    [["ConditionalCheckFailed", "rules"], ["DuplicateItem", "rules"]]);
});

test("a transacted Update past 400 KB cancels with the update wording", async () => {
  const e = await rejects(send(new D.TransactWriteItemsCommand({ TransactItems: [{ Update: { TableName: "rules",
    Key: { pk: { S: "upd-big" }, sk: { S: "1" } }, UpdateExpression: "SET payload = :p",
    ExpressionAttributeValues: { ":p": { S: "x".repeat(409600) } } } }] })), "TransactionCanceledException");
  assert.equal(e.CancellationReasons[0].Code, "ValidationError");
  assert.match(e.CancellationReasons[0].Message, /^Item size to update has exceeded the maximum allowed size/);
});

test("PartiQL on an index: a keyed read may not filter on what the index does not project; writes refuse the qualifier", async () => {
  await send(new D.PutItemCommand({ TableName: "rules", Item: { pk: { S: "pq" }, sk: { S: "1" }, g: { S: "gq" },
    proj: { S: "p" }, hidden: { S: "h" } } }));
  await rejects(send(new D.ExecuteStatementCommand({ Statement: `SELECT pk FROM "rules"."gix" WHERE g = 'gq' AND hidden = 'h'` })),
    "ValidationException",
    "One or more parameter values were invalid: Secondary index gix does not project one or more filter attributes: [hidden]");
  await rejects(send(new D.ExecuteStatementCommand({ Statement: `SELECT pk FROM "rules"."gix" WHERE g IN ['gq', 'x'] AND NOT hidden = 'h'` })),
    "ValidationException", /does not project one or more filter attributes: \[hidden\]/);
  let r = await send(new D.ExecuteStatementCommand({ Statement: `SELECT pk FROM "rules"."gix" WHERE g = 'gq' AND proj = 'p'` }));
  assert.equal(r.Items.length, 1);
  r = await send(new D.ExecuteStatementCommand({ Statement: `SELECT pk FROM "rules"."gix" WHERE hidden = 'h'` }));
  assert.equal(r.Items.length, 0, "unkeyed: a scan of the index, where the attribute is absent");
  await rejects(send(new D.ExecuteStatementCommand({ Statement: `INSERT INTO "rules"."gix" VALUE {'pk': 'x', 'sk': 'y'}` })),
    "ValidationException", /FROM clause may only contain a single table name/);
  await rejects(send(new D.ExecuteStatementCommand({ Statement: `UPDATE "rules"."gix" SET v = 1 WHERE pk = 'pq' AND sk = '1'` })),
    "ValidationException", "This operation is not supported on an index");
});

test("PartiQL: a local index reaches back to the table for what it does not project; a NextToken keeps to its index", async () => {
  for (const sk of ["1", "2"]) {
    await send(new D.PutItemCommand({ TableName: "rules", Item: { pk: { S: "lr" }, sk: { S: sk }, l2: { S: `L${sk}` },
      hidden: { S: `h${sk}` } } }));
  }
  const r = await send(new D.ExecuteStatementCommand({ Statement: `SELECT hidden FROM "rules"."lkeys" WHERE pk = 'lr'`,
    ReturnConsumedCapacity: "INDEXES" }));
  await rejects(send(new D.ExecuteStatementCommand({ Statement: `SELECT hidden FROM "rules"."gix" WHERE g = 'x'` })),
    "ValidationException", "One or more parameter values were invalid: Global secondary index gix does not project [hidden]");
  assert.deepEqual(r.Items.map((i) => i.hidden.S), ["h1", "h2"]);
  assert.ok(r.ConsumedCapacity.Table.CapacityUnits > 0, "the table arm carries the reach-back");
  const page = await send(new D.ExecuteStatementCommand({ Statement: `SELECT * FROM "rules"."lkeys" WHERE pk = 'lr'`, Limit: 1 }));
  assert.ok(page.NextToken);
  await rejects(send(new D.ExecuteStatementCommand({ Statement: `SELECT * FROM "rules" WHERE pk = 'lr'`,
    NextToken: page.NextToken })), "ValidationException", "Invalid NextToken");
  const next = await send(new D.ExecuteStatementCommand({ Statement: `SELECT * FROM "rules"."lkeys" WHERE pk = 'lr'`,
    Limit: 1, NextToken: page.NextToken }));
  assert.equal(next.Items.length, 1);
});

test("UpdateItem weighs what it writes (plus 3, plus 19 per SET) against 400 KB; PartiQL weighs the finished item", async () => {
  const key = (sk) => ({ pk: { S: "w" }, sk: { S: sk } });
  for (const sk of ["1", "2", "3"]) await send(new D.PutItemCommand({ TableName: "rules", Item: key(sk) }));
  const set = (sk, n) => send(new D.UpdateItemCommand({ TableName: "rules", Key: key(sk), UpdateExpression: "SET b = :v",
    ExpressionAttributeValues: { ":v": { S: "x".repeat(n) } } }));
  await set("1", 409600 - 3 - 19 - 1); // the statement weighs exactly 400 KB
  await rejects(set("2", 409600 - 3 - 19 - 1 + 1), "ValidationException",
    "Item size to update has exceeded the maximum allowed size");
  await send(new D.ExecuteStatementCommand({ Statement: `UPDATE "rules" SET b = ? WHERE pk = 'w' AND sk = '3'`,
    Parameters: [{ S: "x".repeat(409600 - 3 - 19 - 1 + 1) }] }));
  const got = await send(new D.GetItemCommand({ TableName: "rules", Key: key("3") }));
  assert.equal(got.Item.b.S.length, 409600 - 22);
  // through a list index a SET weighs one byte more: "d" + the list (3 + 1 + the string) + 3 + 20
  for (const sk of ["4", "5"]) {
    await send(new D.PutItemCommand({ TableName: "rules", Item: { ...key(sk), d: { L: [{ S: "x" }] } } }));
  }
  const setAt = (sk, n) => send(new D.UpdateItemCommand({ TableName: "rules", Key: key(sk), UpdateExpression: "SET d[0] = :v",
    ExpressionAttributeValues: { ":v": { S: "x".repeat(n) } } }));
  await setAt("4", 409600 - 1 - 4 - 23);
  await rejects(setAt("5", 409600 - 1 - 4 - 23 + 1), "ValidationException",
    "Item size to update has exceeded the maximum allowed size");
});
