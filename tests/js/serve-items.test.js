// serve-items.test.js -- PutItem, GetItem, DeleteItem and UpdateItem of
// `dynafile serve` through the AWS SDK for JavaScript v3: conditions,
// ReturnValues, projections, the legacy parameters, DynamoDB's validation
// messages and ConsumedCapacity.
"use strict";
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const D = require("@aws-sdk/client-dynamodb");
const { startServe, rejects } = require("./lib/serve");

let s;
const send = (cmd) => s.ddb.send(cmd);

before(async () => {
  s = await startServe();
  await send(new D.CreateTableCommand({
    TableName: "items", BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
  }));
  await send(new D.CreateTableCommand({
    TableName: "comp", BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" },
      { AttributeName: "sk", AttributeType: "N" }, { AttributeName: "g", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }, { AttributeName: "sk", KeyType: "RANGE" }],
    GlobalSecondaryIndexes: [{ IndexName: "by_g", KeySchema: [{ AttributeName: "g", KeyType: "HASH" }],
      Projection: { ProjectionType: "ALL" } }],
  }));
});
after(async () => { if (s) await s.stop(); });

test("PutItem and GetItem keep every value as it was sent", async () => {
  const item = {
    pk: { S: "all-types" }, s: { S: "héllo" }, n: { N: "9007199254740991" }, big: { N: "-1E+20" },
    f: { N: "-0.000123" }, t: { BOOL: true }, z: { NULL: true },
    l: { L: [{ S: "a" }, { N: "1" }, { L: [] }, { M: {} }] }, m: { M: { a: { S: "b" }, e: { L: [] } } },
  };
  await send(new D.PutItemCommand({ TableName: "items", Item: item }));
  const g = await send(new D.GetItemCommand({ TableName: "items", Key: { pk: { S: "all-types" } } }));
  // numbers come back in DynamoDB's canonical form
  assert.deepEqual(g.Item, { ...item, big: { N: "-100000000000000000000" } });
});

test("decimals beyond a double, binaries and sets are stored with their types", async () => {
  for (const v of [{ N: "12345678901234567890123456789012345678" }, { B: Buffer.from("bytes") },
    { SS: ["a", "b"] }, { NS: ["1", "2"] }, { BS: [Buffer.from("x"), Buffer.from("y")] }]) {
    await send(new D.PutItemCommand({ TableName: "items", Item: { pk: { S: "exact" }, v } }));
    const g = await send(new D.GetItemCommand({ TableName: "items", Key: { pk: { S: "exact" } } }));
    const bytes = (b) => new Uint8Array(Buffer.from(b));
    const want = v.B ? { B: bytes(v.B) } : v.BS ? { BS: v.BS.map(bytes) } : v;
    assert.deepEqual(g.Item.v, want, "a stored value comes back unchanged");
  }
});

test("integers beyond 2^53 are kept exactly -- in items, keys and expression values", async () => {
  // nginx's LuaJIT decodes them to int64 values, which the binding stores
  // as they are: each comes back digit for digit, in keys as in values.
  const big = ["9223372036854775807", "-9223372036854775808", "4611686018427387904",
    "9007199254740993"];
  for (const n of big) {
    await send(new D.PutItemCommand({ TableName: "comp",
      Item: { pk: { S: "big" }, sk: { N: n }, g: { S: "x" }, m: { M: { l: { L: [{ N: n }] } } } } }));
    const got = await send(new D.GetItemCommand({ TableName: "comp",
      Key: { pk: { S: "big" }, sk: { N: n } } }));
    assert.deepEqual(got.Item.sk, { N: n });
    assert.deepEqual(got.Item.m, { M: { l: { L: [{ N: n }] } } });
    const q = await send(new D.QueryCommand({ TableName: "comp",
      KeyConditionExpression: "pk = :p AND sk = :n",
      ExpressionAttributeValues: { ":p": { S: "big" }, ":n": { N: n } } }));
    assert.equal(q.Count, 1, `the key ${n} is found by its exact value`);
    const u = await send(new D.UpdateItemCommand({ TableName: "comp",
      Key: { pk: { S: "big" }, sk: { N: "1" } }, UpdateExpression: "SET v = :n",
      ExpressionAttributeValues: { ":n": { N: n } }, ReturnValues: "UPDATED_NEW" }));
    assert.deepEqual(u.Attributes, { v: { N: n } });
  }
  // the keys sort as numbers: -2^63 first, 2^63-1 last
  const all = await send(new D.QueryCommand({ TableName: "comp",
    KeyConditionExpression: "pk = :p", ExpressionAttributeValues: { ":p": { S: "big" } } }));
  assert.deepEqual(all.Items.map((it) => it.sk.N), ["-9223372036854775808", "1",
    "9007199254740993", "4611686018427387904", "9223372036854775807"]);
});

test("index keys over DynamoDB's sizes are a ValidationException on every write path, nothing written", async () => {
  // DynamoDB: "Size limit exceeded for Index Key <attr> Actual Size: <n>
  // bytes Max Size: <2048|1024> bytes IndexName: <index>".  Some of these
  // are refused by serve's own checks, some by the storage engine (an index
  // sort key over 1024 bytes inside an update): both must be a 400, never
  // an InternalServerError.  (Not in serve-diff: dynalite does not check
  // index key sizes -- its issue #35 quotes DynamoDB's message.)
  await send(new D.CreateTableCommand({
    TableName: "ixsize", BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" },
      { AttributeName: "h", AttributeType: "S" }, { AttributeName: "r", AttributeType: "B" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
    GlobalSecondaryIndexes: [{ IndexName: "by_hr", KeySchema: [{ AttributeName: "h", KeyType: "HASH" },
      { AttributeName: "r", KeyType: "RANGE" }], Projection: { ProjectionType: "KEYS_ONLY" } }],
  }));
  const longR = new Uint8Array(1025).fill(97);
  const longH = "h".repeat(2049);
  const INVALID = "One or more parameter values were invalid: ";
  const rMsg = `${INVALID}Size limit exceeded for Index Key r Actual Size: 1025 bytes Max Size: 1024 bytes IndexName: by_hr`;
  const hMsg = `${INVALID}Size limit exceeded for Index Key h Actual Size: 2049 bytes Max Size: 2048 bytes IndexName: by_hr`;
  await rejects(send(new D.PutItemCommand({ TableName: "ixsize",
    Item: { pk: { S: "p1" }, h: { S: "x" }, r: { B: longR } } })), "ValidationException", rMsg);
  await rejects(send(new D.PutItemCommand({ TableName: "ixsize",
    Item: { pk: { S: "p1" }, h: { S: longH } } })), "ValidationException", hMsg);
  await rejects(send(new D.BatchWriteItemCommand({ RequestItems: { ixsize: [
    { PutRequest: { Item: { pk: { S: "p2" }, h: { S: "x" }, r: { B: longR } } } }] } })),
  "ValidationException", rMsg);
  await rejects(send(new D.TransactWriteItemsCommand({ TransactItems: [
    { Put: { TableName: "ixsize", Item: { pk: { S: "p3" }, h: { S: "x" }, r: { B: longR } } } }] })),
  "ValidationException", rMsg);
  for (const [values, msg] of [[{ ":h": { S: "x" }, ":r": { B: longR } }, rMsg],
    [{ ":h": { S: longH }, ":r": { B: new Uint8Array([1]) } }, hMsg]]) {
    await rejects(send(new D.UpdateItemCommand({ TableName: "ixsize", Key: { pk: { S: "p4" } },
      UpdateExpression: "SET h = :h, r = :r", ExpressionAttributeValues: values })),
    "ValidationException", msg);
    await rejects(send(new D.UpdateItemCommand({ TableName: "ixsize", Key: { pk: { S: "p4" } },
      AttributeUpdates: { h: { Value: values[":h"] }, r: { Value: values[":r"] } } })),
    "ValidationException", msg);
    await assert.rejects(send(new D.TransactWriteItemsCommand({ TransactItems: [
      { Update: { TableName: "ixsize", Key: { pk: { S: "p5" } }, UpdateExpression: "SET h = :h, r = :r",
        ExpressionAttributeValues: values } }] })), (e) => {
      assert.equal(e.name, "TransactionCanceledException", `${e.name}: ${e.message}`);
      assert.deepEqual(e.CancellationReasons, [{ Code: "ValidationError", Message: msg }]);
      return true;
    });
  }
  await rejects(send(new D.ExecuteStatementCommand({
    Statement: "INSERT INTO ixsize VALUE {'pk': 'p6', 'h': 'x', 'r': ?}",
    Parameters: [{ B: longR }] })), "ValidationException", rMsg);
  await rejects(send(new D.ScanCommand({ TableName: "ixsize", IndexName: "by_hr",
    ExclusiveStartKey: { pk: { S: "p1" }, h: { S: "x" }, r: { B: longR } } })),
  "ValidationException", `The provided starting key is invalid: ${INVALID}Aggregated size of all range keys has exceeded the size limit of 1024 bytes`);
  // at the limits, every path writes
  const okR = new Uint8Array(1024).fill(98);
  await send(new D.PutItemCommand({ TableName: "ixsize",
    Item: { pk: { S: "ok1" }, h: { S: "h".repeat(2048) }, r: { B: okR } } }));
  await send(new D.UpdateItemCommand({ TableName: "ixsize", Key: { pk: { S: "ok2" } },
    UpdateExpression: "SET h = :h, r = :r", ExpressionAttributeValues: { ":h": { S: "x" }, ":r": { B: okR } } }));
  const scan = await send(new D.ScanCommand({ TableName: "ixsize" }));
  assert.deepEqual(scan.Items.map((it) => it.pk.S).sort(), ["ok1", "ok2"], "no refused write left anything");
  const q = await send(new D.QueryCommand({ TableName: "ixsize", IndexName: "by_hr",
    KeyConditionExpression: "h = :h", ExpressionAttributeValues: { ":h": { S: "x" } } }));
  assert.deepEqual(q.Items.map((it) => it.pk.S), ["ok2"]);
});

test("{NULL: false} is accepted and stored as {NULL: true}, as DynamoDB does since 2026", async () => {
  await send(new D.PutItemCommand({ TableName: "items",
    Item: { pk: { S: "null-false" }, a: { NULL: false }, m: { M: { b: { NULL: false } } }, l: { L: [{ NULL: false }] } } }));
  const g = await send(new D.GetItemCommand({ TableName: "items", Key: { pk: { S: "null-false" } } }));
  assert.deepEqual(g.Item, { pk: { S: "null-false" }, a: { NULL: true }, m: { M: { b: { NULL: true } } },
    l: { L: [{ NULL: true }] } });
  const u = await send(new D.UpdateItemCommand({ TableName: "items", Key: { pk: { S: "null-false" } },
    UpdateExpression: "SET c = :n", ExpressionAttributeValues: { ":n": { NULL: false } }, ReturnValues: "UPDATED_NEW" }));
  assert.deepEqual(u.Attributes, { c: { NULL: true } });
  // the other malformed values are still refused
  await rejects(send(new D.PutItemCommand({ TableName: "items", Item: { pk: { S: "null-false" }, a: { NULL: false }, b: { SS: [] } } })),
    "ValidationException", "One or more parameter values were invalid: An string set  may not be empty");
});

test("GetItem of a missing item has no Item", async () => {
  const g = await send(new D.GetItemCommand({ TableName: "items", Key: { pk: { S: "nothing" } } }));
  assert.equal(g.Item, undefined);
});

test("keys are checked against the key schema", async () => {
  await rejects(send(new D.GetItemCommand({ TableName: "items", Key: { pk: { N: "1" } } })),
    "ValidationException", "The provided key element does not match the schema");
  await rejects(send(new D.GetItemCommand({ TableName: "items", Key: { pk: { S: "a" }, x: { S: "b" } } })),
    "ValidationException", "The provided key element does not match the schema");
  await rejects(send(new D.PutItemCommand({ TableName: "items", Item: { x: { S: "a" } } })),
    "ValidationException", "One or more parameter values were invalid: Missing the key pk in the item");
  await rejects(send(new D.PutItemCommand({ TableName: "items", Item: { pk: { N: "1" } } })),
    "ValidationException", "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N");
  await rejects(send(new D.PutItemCommand({ TableName: "items", Item: { pk: { S: "" } } })),
    "ValidationException",
    "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: pk");
  await rejects(send(new D.PutItemCommand({ TableName: "comp",
    Item: { pk: { S: "a" }, sk: { N: "1" }, g: { N: "5" } } })), "ValidationException",
  "One or more parameter values were invalid: Type mismatch for Index Key g Expected: S Actual: N IndexName: by_g");
  await rejects(send(new D.PutItemCommand({ TableName: "no_table", Item: { pk: { S: "a" } } })),
    "ResourceNotFoundException", "Requested resource not found");
});

test("items over 400 KB are refused, items just under are kept", async () => {
  const big = "x".repeat(400 * 1024);
  await rejects(send(new D.PutItemCommand({ TableName: "items", Item: { pk: { S: "big" }, v: { S: big } } })),
    "ValidationException", "Item size has exceeded the maximum allowed size");
  const fits = "x".repeat(400 * 1024 - 10);
  await send(new D.PutItemCommand({ TableName: "items", Item: { pk: { S: "big" }, v: { S: fits } } }));
  const g = await send(new D.GetItemCommand({ TableName: "items", Key: { pk: { S: "big" } } }));
  assert.equal(g.Item.v.S.length, fits.length);
});

test("updates that grow an item over 400 KB are refused and change nothing", async () => {
  const half = "y".repeat(200 * 1024);
  await send(new D.PutItemCommand({ TableName: "items", Item: { pk: { S: "grow" }, a: { S: half } } }));
  await rejects(send(new D.UpdateItemCommand({ TableName: "items", Key: { pk: { S: "grow" } },
    UpdateExpression: "SET b = :v, c = :v", ExpressionAttributeValues: { ":v": { S: half } } })),
  "ValidationException", "Item size to update has exceeded the maximum allowed size");
  await rejects(send(new D.UpdateItemCommand({ TableName: "items", Key: { pk: { S: "grow" } },
    AttributeUpdates: { b: { Action: "PUT", Value: { S: half } }, c: { Action: "PUT", Value: { S: half } } } })),
  "ValidationException", "Item size to update has exceeded the maximum allowed size");
  const g = await send(new D.GetItemCommand({ TableName: "items", Key: { pk: { S: "grow" } } }));
  assert.deepEqual(Object.keys(g.Item).sort(), ["a", "pk"]);
  await send(new D.UpdateItemCommand({ TableName: "items", Key: { pk: { S: "grow" } },
    UpdateExpression: "SET b = :v", ExpressionAttributeValues: { ":v": { S: "small" } } }));
});

test("ConditionExpression guards PutItem; ALL_OLD comes back on failure when asked", async () => {
  await send(new D.PutItemCommand({ TableName: "items", Item: { pk: { S: "c1" }, v: { N: "1" } },
    ConditionExpression: "attribute_not_exists(pk)" }));
  await rejects(send(new D.PutItemCommand({ TableName: "items", Item: { pk: { S: "c1" }, v: { N: "2" } },
    ConditionExpression: "attribute_not_exists(pk)" })), "ConditionalCheckFailedException",
  "The conditional request failed");
  await assert.rejects(send(new D.PutItemCommand({ TableName: "items", Item: { pk: { S: "c1" }, v: { N: "3" } },
    ConditionExpression: "v = :two", ExpressionAttributeValues: { ":two": { N: "2" } },
    ReturnValuesOnConditionCheckFailure: "ALL_OLD" })), (e) => {
    assert.equal(e.name, "ConditionalCheckFailedException");
    assert.deepEqual(e.Item, { pk: { S: "c1" }, v: { N: "1" } });
    return true;
  });
  const r = await send(new D.PutItemCommand({ TableName: "items", Item: { pk: { S: "c1" }, v: { N: "9" } },
    ConditionExpression: "v = :one", ExpressionAttributeValues: { ":one": { N: "1" } }, ReturnValues: "ALL_OLD" }));
  assert.deepEqual(r.Attributes, { pk: { S: "c1" }, v: { N: "1" } });
  await rejects(send(new D.PutItemCommand({ TableName: "items", Item: { pk: { S: "c1" } }, ReturnValues: "ALL_NEW" })),
    "ValidationException", "ReturnValues can only be ALL_OLD or NONE");
});

test("Expected (legacy) guards writes as DynamoDB's old API did", async () => {
  await send(new D.PutItemCommand({ TableName: "items", Item: { pk: { S: "e1" }, v: { N: "1" } } }));
  await rejects(send(new D.PutItemCommand({ TableName: "items", Item: { pk: { S: "e1" } },
    Expected: { pk: { Exists: false } } })), "ConditionalCheckFailedException");
  await send(new D.PutItemCommand({ TableName: "items", Item: { pk: { S: "e1" }, v: { N: "2" } },
    Expected: { v: { Value: { N: "1" } } } }));
  await send(new D.DeleteItemCommand({ TableName: "items", Key: { pk: { S: "e1" } },
    Expected: { v: { ComparisonOperator: "GE", AttributeValueList: [{ N: "2" }] } } }));
  await rejects(send(new D.PutItemCommand({ TableName: "items", Item: { pk: { S: "e1" } },
    Expected: { pk: { Exists: false } }, ConditionExpression: "attribute_not_exists(pk)" })),
  "ValidationException",
  "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {Expected} Expression parameters: {ConditionExpression}");
});

test("UpdateItem with SET, REMOVE, ADD and every ReturnValues", async () => {
  await send(new D.PutItemCommand({ TableName: "items", Item: { pk: { S: "u1" }, a: { N: "1" }, b: { S: "x" } } }));
  let r = await send(new D.UpdateItemCommand({ TableName: "items", Key: { pk: { S: "u1" } },
    UpdateExpression: "SET a = a + :one, c = :c REMOVE b", ExpressionAttributeValues: { ":one": { N: "1" }, ":c": { S: "new" } },
    ReturnValues: "ALL_NEW" }));
  assert.deepEqual(r.Attributes, { pk: { S: "u1" }, a: { N: "2" }, c: { S: "new" } });
  r = await send(new D.UpdateItemCommand({ TableName: "items", Key: { pk: { S: "u1" } },
    UpdateExpression: "ADD a :five", ExpressionAttributeValues: { ":five": { N: "5" } }, ReturnValues: "UPDATED_OLD" }));
  assert.deepEqual(r.Attributes, { a: { N: "2" } });
  r = await send(new D.UpdateItemCommand({ TableName: "items", Key: { pk: { S: "u1" } },
    UpdateExpression: "SET d = :d", ExpressionAttributeValues: { ":d": { N: "4" } }, ReturnValues: "UPDATED_NEW" }));
  assert.deepEqual(r.Attributes, { d: { N: "4" } });
  r = await send(new D.UpdateItemCommand({ TableName: "items", Key: { pk: { S: "u1" } },
    UpdateExpression: "SET d = :d", ExpressionAttributeValues: { ":d": { N: "5" } }, ReturnValues: "ALL_OLD" }));
  assert.deepEqual(r.Attributes, { pk: { S: "u1" }, a: { N: "7" }, c: { S: "new" }, d: { N: "4" } });
});

test("UpdateItem creates a missing item and refuses to change key attributes", async () => {
  const r = await send(new D.UpdateItemCommand({ TableName: "items", Key: { pk: { S: "u2" } },
    UpdateExpression: "SET v = :v", ExpressionAttributeValues: { ":v": { S: "made" } }, ReturnValues: "ALL_NEW" }));
  assert.deepEqual(r.Attributes, { pk: { S: "u2" }, v: { S: "made" } });
  await rejects(send(new D.UpdateItemCommand({ TableName: "items", Key: { pk: { S: "u2" } },
    UpdateExpression: "SET pk = :v", ExpressionAttributeValues: { ":v": { S: "other" } } })),
  "ValidationException", /Cannot update attribute pk. This attribute is part of the key/);
});

test("AttributeUpdates (legacy) PUT, ADD and DELETE", async () => {
  await send(new D.UpdateItemCommand({ TableName: "items", Key: { pk: { S: "au" } },
    AttributeUpdates: { n: { Action: "ADD", Value: { N: "3" } }, s: { Action: "PUT", Value: { S: "v" } } } }));
  await send(new D.UpdateItemCommand({ TableName: "items", Key: { pk: { S: "au" } },
    AttributeUpdates: { n: { Action: "ADD", Value: { N: "-1.5" } }, s: { Action: "DELETE" } } }));
  const g = await send(new D.GetItemCommand({ TableName: "items", Key: { pk: { S: "au" } } }));
  assert.deepEqual(g.Item, { pk: { S: "au" }, n: { N: "1.5" } });
});

test("DeleteItem with a condition and ALL_OLD", async () => {
  await send(new D.PutItemCommand({ TableName: "items", Item: { pk: { S: "d1" }, v: { N: "1" } } }));
  await rejects(send(new D.DeleteItemCommand({ TableName: "items", Key: { pk: { S: "d1" } },
    ConditionExpression: "v = :two", ExpressionAttributeValues: { ":two": { N: "2" } } })),
  "ConditionalCheckFailedException");
  const r = await send(new D.DeleteItemCommand({ TableName: "items", Key: { pk: { S: "d1" } }, ReturnValues: "ALL_OLD" }));
  assert.deepEqual(r.Attributes, { pk: { S: "d1" }, v: { N: "1" } });
  const again = await send(new D.DeleteItemCommand({ TableName: "items", Key: { pk: { S: "d1" } }, ReturnValues: "ALL_OLD" }));
  assert.equal(again.Attributes, undefined);
});

test("ProjectionExpression and AttributesToGet", async () => {
  await send(new D.PutItemCommand({ TableName: "items", Item: { pk: { S: "p1" }, a: { N: "1" },
    m: { M: { x: { S: "1" }, y: { S: "2" } } }, l: { L: [{ S: "a" }, { S: "b" }, { S: "c" }] } } }));
  let g = await send(new D.GetItemCommand({ TableName: "items", Key: { pk: { S: "p1" } },
    ProjectionExpression: "a, m.y, l[1]" }));
  assert.deepEqual(g.Item, { a: { N: "1" }, m: { M: { y: { S: "2" } } }, l: { L: [{ S: "b" }] } });
  g = await send(new D.GetItemCommand({ TableName: "items", Key: { pk: { S: "p1" } }, AttributesToGet: ["a", "nope"] }));
  assert.deepEqual(g.Item, { a: { N: "1" } });
});

test("expression placeholders are checked as DynamoDB does", async () => {
  await rejects(send(new D.GetItemCommand({ TableName: "items", Key: { pk: { S: "p1" } },
    ProjectionExpression: "a", ExpressionAttributeNames: { "#unused": "x" } })), "ValidationException",
  "Value provided in ExpressionAttributeNames unused in expressions: keys: {#unused}");
  await rejects(send(new D.PutItemCommand({ TableName: "items", Item: { pk: { S: "p2" } },
    ExpressionAttributeValues: { ":v": { S: "x" } } })), "ValidationException",
  /ExpressionAttributeValues can only be specified when using expressions/);
});

test("ReturnConsumedCapacity reports DynamoDB's units", async () => {
  let r = await send(new D.PutItemCommand({ TableName: "items", Item: { pk: { S: "cap" }, v: { S: "x".repeat(1500) } },
    ReturnConsumedCapacity: "TOTAL" }));
  assert.equal(r.ConsumedCapacity.TableName, "items");
  assert.equal(r.ConsumedCapacity.CapacityUnits, 2);
  r = await send(new D.GetItemCommand({ TableName: "items", Key: { pk: { S: "cap" } }, ReturnConsumedCapacity: "TOTAL" }));
  assert.equal(r.ConsumedCapacity.CapacityUnits, 0.5);
  r = await send(new D.GetItemCommand({ TableName: "items", Key: { pk: { S: "cap" } }, ConsistentRead: true,
    ReturnConsumedCapacity: "TOTAL" }));
  assert.equal(r.ConsumedCapacity.CapacityUnits, 1);
});
