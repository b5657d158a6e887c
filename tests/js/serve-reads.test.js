// serve-reads.test.js -- Query and Scan of `dynafile serve` through the AWS
// SDK for JavaScript v3: key conditions, filters, Limit (items evaluated),
// pagination, ScanIndexForward, Select, indexes, parallel scans, the
// legacy KeyConditions/QueryFilter/ScanFilter, and their validation.
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
    TableName: "orders", BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }, { AttributeName: "sk", AttributeType: "N" },
      { AttributeName: "status", AttributeType: "S" }, { AttributeName: "alt", AttributeType: "N" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }, { AttributeName: "sk", KeyType: "RANGE" }],
    GlobalSecondaryIndexes: [{ IndexName: "by_status", KeySchema: [{ AttributeName: "status", KeyType: "HASH" },
      { AttributeName: "sk", KeyType: "RANGE" }], Projection: { ProjectionType: "KEYS_ONLY" } }],
    LocalSecondaryIndexes: [{ IndexName: "by_alt", KeySchema: [{ AttributeName: "pk", KeyType: "HASH" },
      { AttributeName: "alt", KeyType: "RANGE" }], Projection: { ProjectionType: "ALL" } }],
  }));
  const writes = [];
  for (let i = 1; i <= 20; i++) {
    writes.push({ PutRequest: { Item: { pk: { S: "c1" }, sk: { N: String(i) }, alt: { N: String(100 - i) },
      status: { S: i % 2 ? "open" : "done" }, total: { N: String(i * 10) } } } });
  }
  for (let i = 0; i < writes.length; i += 10) {
    await send(new D.BatchWriteItemCommand({ RequestItems: { orders: writes.slice(i, i + 10) } }));
  }
});
after(async () => { if (s) await s.stop(); });

const sks = (items) => items.map((i) => Number(i.sk.N));

test("Query with a key condition returns the partition in sort-key order", async () => {
  const r = await send(new D.QueryCommand({ TableName: "orders",
    KeyConditionExpression: "pk = :p AND sk BETWEEN :a AND :b",
    ExpressionAttributeValues: { ":p": { S: "c1" }, ":a": { N: "3" }, ":b": { N: "6" } } }));
  assert.deepEqual(sks(r.Items), [3, 4, 5, 6]);
  assert.equal(r.Count, 4);
  assert.equal(r.ScannedCount, 4);
  assert.equal(r.LastEvaluatedKey, undefined);
});

test("Query backwards, with Limit and pagination", async () => {
  const seen = [];
  let start;
  do {
    const r = await send(new D.QueryCommand({ TableName: "orders", KeyConditionExpression: "pk = :p",
      ExpressionAttributeValues: { ":p": { S: "c1" } }, ScanIndexForward: false, Limit: 7, ExclusiveStartKey: start }));
    assert.ok(r.Items.length <= 7);
    seen.push(...sks(r.Items));
    start = r.LastEvaluatedKey;
  } while (start);
  assert.deepEqual(seen, Array.from({ length: 20 }, (_, i) => 20 - i));
});

test("Limit counts items evaluated, before the filter", async () => {
  const r = await send(new D.QueryCommand({ TableName: "orders", KeyConditionExpression: "pk = :p",
    FilterExpression: "#s = :open", ExpressionAttributeNames: { "#s": "status" },
    ExpressionAttributeValues: { ":p": { S: "c1" }, ":open": { S: "open" } }, Limit: 4 }));
  assert.equal(r.ScannedCount, 4);
  assert.equal(r.Count, 2);
  assert.deepEqual(sks(r.Items), [1, 3]);
  assert.deepEqual(r.LastEvaluatedKey, { pk: { S: "c1" }, sk: { N: "4" } });
});

test("Select COUNT and the legacy KeyConditions/QueryFilter", async () => {
  const r = await send(new D.QueryCommand({ TableName: "orders", Select: "COUNT",
    KeyConditions: { pk: { ComparisonOperator: "EQ", AttributeValueList: [{ S: "c1" }] },
      sk: { ComparisonOperator: "GT", AttributeValueList: [{ N: "10" }] } },
    QueryFilter: { total: { ComparisonOperator: "GE", AttributeValueList: [{ N: "150" }] } } }));
  assert.equal(r.Items, undefined);
  assert.equal(r.ScannedCount, 10);
  assert.equal(r.Count, 6);
});

test("a GSI and an LSI answer queries in their own key order", async () => {
  let r = await send(new D.QueryCommand({ TableName: "orders", IndexName: "by_status",
    KeyConditionExpression: "#s = :d", ExpressionAttributeNames: { "#s": "status" },
    ExpressionAttributeValues: { ":d": { S: "done" } }, Limit: 3 }));
  assert.deepEqual(sks(r.Items), [2, 4, 6]);
  assert.deepEqual(Object.keys(r.Items[0]).sort(), ["pk", "sk", "status"]);
  assert.deepEqual(r.LastEvaluatedKey, { pk: { S: "c1" }, sk: { N: "6" }, status: { S: "done" } });
  r = await send(new D.QueryCommand({ TableName: "orders", IndexName: "by_alt",
    KeyConditionExpression: "pk = :p AND alt < :x",
    ExpressionAttributeValues: { ":p": { S: "c1" }, ":x": { N: "83" } } }));
  assert.deepEqual(sks(r.Items), [20, 19, 18]);
  await rejects(send(new D.QueryCommand({ TableName: "orders", IndexName: "by_status", ConsistentRead: true,
    KeyConditionExpression: "#s = :d", ExpressionAttributeNames: { "#s": "status" },
    ExpressionAttributeValues: { ":d": { S: "done" } } })), "ValidationException",
  "Consistent reads are not supported on global secondary indexes");
  await rejects(send(new D.QueryCommand({ TableName: "orders", IndexName: "nope",
    KeyConditionExpression: "pk = :p", ExpressionAttributeValues: { ":p": { S: "c1" } } })),
  "ValidationException", "The table does not have the specified index: nope");
});

test("Query validation follows DynamoDB", async () => {
  await rejects(send(new D.QueryCommand({ TableName: "orders" })), "ValidationException",
    "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.");
  await rejects(send(new D.QueryCommand({ TableName: "orders", KeyConditionExpression: "sk = :v",
    ExpressionAttributeValues: { ":v": { N: "1" } } })), "ValidationException",
  "Query condition missed key schema element: pk");
  await rejects(send(new D.QueryCommand({ TableName: "orders", KeyConditionExpression: "pk = :p",
    ExpressionAttributeValues: { ":p": { S: "c1" } }, Select: "SPECIFIC_ATTRIBUTES" })), "ValidationException",
  /Must specify the AttributesToGet or ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES/);
  await rejects(send(new D.QueryCommand({ TableName: "orders", KeyConditionExpression: "pk = :p",
    ExpressionAttributeValues: { ":p": { S: "c1" } }, Select: "ALL_PROJECTED_ATTRIBUTES" })), "ValidationException",
  /ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName/);
  await rejects(send(new D.QueryCommand({ TableName: "orders", KeyConditionExpression: "pk = :p",
    ExpressionAttributeValues: { ":p": { S: "c1" } }, ExclusiveStartKey: { pk: { S: "c2" }, sk: { N: "1" } } })),
  "ValidationException", "The provided starting key is outside query boundaries based on provided conditions");
});

test("Scan in segments covers every item once", async () => {
  const seen = [];
  for (let seg = 0; seg < 3; seg++) {
    let start;
    do {
      const r = await send(new D.ScanCommand({ TableName: "orders", Segment: seg, TotalSegments: 3,
        Limit: 5, ExclusiveStartKey: start }));
      seen.push(...sks(r.Items));
      start = r.LastEvaluatedKey;
    } while (start);
  }
  assert.deepEqual(seen.sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1));
  await rejects(send(new D.ScanCommand({ TableName: "orders", Segment: 3, TotalSegments: 3 })),
    "ValidationException",
    "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: 3 is not less than TotalSegments: 3");
});

test("Scan with a FilterExpression, a ProjectionExpression and the legacy ScanFilter", async () => {
  let r = await send(new D.ScanCommand({ TableName: "orders", FilterExpression: "#t > :t", ExpressionAttributeNames: { "#t": "total" },
    ProjectionExpression: "sk", ExpressionAttributeValues: { ":t": { N: "180" } } }));
  assert.deepEqual(sks(r.Items).sort((a, b) => a - b), [19, 20]);
  assert.deepEqual(Object.keys(r.Items[0]), ["sk"]);
  assert.equal(r.ScannedCount, 20);
  r = await send(new D.ScanCommand({ TableName: "orders",
    ScanFilter: { total: { ComparisonOperator: "BETWEEN", AttributeValueList: [{ N: "50" }, { N: "70" }] } } }));
  assert.deepEqual(sks(r.Items).sort((a, b) => a - b), [5, 6, 7]);
});

test("1 MB pages: a scan of large items stops after a megabyte and resumes", async () => {
  await send(new D.CreateTableCommand({ TableName: "bigitems", BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "id", AttributeType: "N" }],
    KeySchema: [{ AttributeName: "id", KeyType: "HASH" }] }));
  const v = "x".repeat(300 * 1024);
  for (let i = 0; i < 8; i++) {
    await send(new D.PutItemCommand({ TableName: "bigitems", Item: { id: { N: String(i) }, v: { S: v } } }));
  }
  const r = await send(new D.ScanCommand({ TableName: "bigitems" }));
  assert.ok(r.Items.length < 8 && r.Items.length >= 3, `first page held ${r.Items.length} items`);
  assert.ok(r.LastEvaluatedKey);
  let total = r.Items.length;
  let start = r.LastEvaluatedKey;
  while (start) {
    const n = await send(new D.ScanCommand({ TableName: "bigitems", ExclusiveStartKey: start }));
    total += n.Items.length;
    start = n.LastEvaluatedKey;
  }
  assert.equal(total, 8);
});

test("BatchGetItem and BatchWriteItem, with their limits", async () => {
  const r = await send(new D.BatchGetItemCommand({ RequestItems: { orders: {
    Keys: [{ pk: { S: "c1" }, sk: { N: "1" } }, { pk: { S: "c1" }, sk: { N: "99" } }],
    ProjectionExpression: "sk" } } }));
  assert.deepEqual(r.Responses.orders, [{ sk: { N: "1" } }]);
  assert.deepEqual(r.UnprocessedKeys, {});
  await rejects(send(new D.BatchGetItemCommand({ RequestItems: { orders: {
    Keys: [{ pk: { S: "c1" }, sk: { N: "1" } }, { pk: { S: "c1" }, sk: { N: "1" } }] } } })),
  "ValidationException", "Provided list of item keys contains duplicates");
  await rejects(send(new D.BatchWriteItemCommand({ RequestItems: {} })), "ValidationException",
    "The requestItems parameter is required for BatchWriteItem");
  const many = Array.from({ length: 26 }, (_, i) => ({ PutRequest: { Item: { pk: { S: "b" }, sk: { N: String(i) } } } }));
  await rejects(send(new D.BatchWriteItemCommand({ RequestItems: { orders: many } })), "ValidationException",
    /^1 validation error detected: Value '\{orders=\[.+\]\}' at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: \[Member must have length less than or equal to 25, Member must have length greater than or equal to 1\]$/s);
  await rejects(send(new D.BatchWriteItemCommand({ RequestItems: { orders: [
    { PutRequest: { Item: { pk: { S: "b" }, sk: { N: "1" } } } },
    { DeleteRequest: { Key: { pk: { S: "b" }, sk: { N: "1" } } } }] } })), "ValidationException",
  "Provided list of item keys contains duplicates");
  await rejects(send(new D.BatchGetItemCommand({ RequestItems: { missing_table: { Keys: [{ pk: { S: "x" } }] } } })),
    "ResourceNotFoundException", "Requested resource not found");
});
