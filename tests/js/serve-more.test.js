// serve-more.test.js -- UpdateItem's document paths, UpdateTable's index
// lifecycle (a GSI added to a table with items, queried, removed), TTL
// expiry with its stream record, ConsumedCapacity with INDEXES and
// ItemCollectionMetrics, and `--auth` (Signature Version 4), through the
// AWS SDK for JavaScript v3.
"use strict";
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const D = require("@aws-sdk/client-dynamodb");
const S = require("@aws-sdk/client-dynamodb-streams");
const { startServe, sleep, rejects } = require("./lib/serve");

let s;
const send = (cmd) => s.ddb.send(cmd);
const get = async (t, key) => (await send(new D.GetItemCommand({ TableName: t, Key: key, ConsistentRead: true }))).Item;

before(async () => {
  s = await startServe();
  await send(new D.CreateTableCommand({ TableName: "docs", BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }] }));
});
after(async () => { if (s) await s.stop(); });

test("UpdateItem on document paths: nested maps, list positions, arithmetic, functions", async () => {
  await send(new D.PutItemCommand({ TableName: "docs", Item: { pk: { S: "d" },
    m: { M: { n: { N: "10" }, keep: { S: "k" } } }, l: { L: [{ S: "a" }, { S: "b" }, { S: "c" }] } } }));
  const up = (UpdateExpression, ExpressionAttributeValues, extra = {}) => send(new D.UpdateItemCommand({
    TableName: "docs", Key: { pk: { S: "d" } }, UpdateExpression, ExpressionAttributeValues, ...extra }));
  await up("SET m.n = m.n + :five, m.child = :c", { ":five": { N: "5" }, ":c": { S: "x" } });
  await up("SET l[5] = :z REMOVE l[0]", { ":z": { S: "z" } });
  await up("SET l = list_append(l, :more), fresh = if_not_exists(fresh, :f)",
    { ":more": { L: [{ S: "end" }] }, ":f": { N: "1" } });
  const item = await get("docs", { pk: { S: "d" } });
  assert.deepEqual(item.m.M, { n: { N: "15" }, keep: { S: "k" }, child: { S: "x" } });
  assert.deepEqual(item.l.L.map((v) => v.S), ["b", "c", "z", "end"]);
  assert.equal(item.fresh.N, "1");
  await rejects(send(new D.UpdateItemCommand({ TableName: "docs", Key: { pk: { S: "d" } },
    UpdateExpression: "SET #x.deep = :v", ExpressionAttributeNames: { "#x": "nothere" },
    ExpressionAttributeValues: { ":v": { S: "x" } } })), "ValidationException",
    "The document path provided in the update expression is invalid for update");
  const r = await up("SET m.n = :v", { ":v": { N: "1" } }, { ReturnValues: "UPDATED_NEW" });
  assert.deepEqual(Object.keys(r.Attributes), ["m"]);
});

test("UpdateTable adds a GSI over existing items, answers queries on it, and removes it", async () => {
  await send(new D.CreateTableCommand({ TableName: "grow", BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }] }));
  for (let i = 0; i < 30; i++) {
    await send(new D.PutItemCommand({ TableName: "grow", Item: { pk: { S: "p" + i }, color: { S: i % 3 ? "red" : "blue" },
      n: { N: String(i) } } }));
  }
  const u = await send(new D.UpdateTableCommand({ TableName: "grow",
    AttributeDefinitions: [{ AttributeName: "color", AttributeType: "S" }, { AttributeName: "n", AttributeType: "N" }],
    GlobalSecondaryIndexUpdates: [{ Create: { IndexName: "by_color", KeySchema: [
      { AttributeName: "color", KeyType: "HASH" }, { AttributeName: "n", KeyType: "RANGE" }],
    Projection: { ProjectionType: "KEYS_ONLY" } } }] }));
  assert.equal(u.TableDescription.TableStatus, "UPDATING");
  const g = u.TableDescription.GlobalSecondaryIndexes.find((x) => x.IndexName === "by_color");
  assert.equal(g.IndexStatus, "CREATING");
  assert.equal(g.Backfilling, true);
  const d = (await send(new D.DescribeTableCommand({ TableName: "grow" }))).Table;
  assert.equal(d.TableStatus, "ACTIVE");
  assert.equal(d.GlobalSecondaryIndexes[0].IndexStatus, "ACTIVE");
  assert.equal(d.GlobalSecondaryIndexes[0].ItemCount, 30);
  const q = await send(new D.QueryCommand({ TableName: "grow", IndexName: "by_color",
    KeyConditionExpression: "color = :b", ExpressionAttributeValues: { ":b": { S: "blue" } } }));
  assert.deepEqual(q.Items.map((x) => Number(x.n.N)), [0, 3, 6, 9, 12, 15, 18, 21, 24, 27]);
  await rejects(send(new D.UpdateTableCommand({ TableName: "grow",
    AttributeDefinitions: [{ AttributeName: "color", AttributeType: "S" }],
    GlobalSecondaryIndexUpdates: [{ Create: { IndexName: "by_color", KeySchema: [
      { AttributeName: "color", KeyType: "HASH" }], Projection: { ProjectionType: "ALL" } } }] })),
  "ValidationException", /Attempting to create an index which already exists/);
  await send(new D.UpdateTableCommand({ TableName: "grow",
    GlobalSecondaryIndexUpdates: [{ Delete: { IndexName: "by_color" } }] }));
  const d2 = (await send(new D.DescribeTableCommand({ TableName: "grow" }))).Table;
  assert.equal(d2.GlobalSecondaryIndexes, undefined);
  await rejects(send(new D.QueryCommand({ TableName: "grow", IndexName: "by_color",
    KeyConditionExpression: "color = :b", ExpressionAttributeValues: { ":b": { S: "blue" } } })),
  "ValidationException", "The table does not have the specified index: by_color");
});

test("TTL: an expired item disappears and its deletion is a stream record by the service", async () => {
  await send(new D.CreateTableCommand({ TableName: "ttl_stream", BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
    StreamSpecification: { StreamEnabled: true, StreamViewType: "OLD_IMAGE" } }));
  await send(new D.UpdateTimeToLiveCommand({ TableName: "ttl_stream",
    TimeToLiveSpecification: { Enabled: true, AttributeName: "exp" } }));
  const now = Math.floor(Date.now() / 1000);
  await send(new D.PutItemCommand({ TableName: "ttl_stream", Item: { pk: { S: "old" }, exp: { N: String(now - 10) } } }));
  await send(new D.PutItemCommand({ TableName: "ttl_stream", Item: { pk: { S: "new" }, exp: { N: String(now + 3600) } } }));
  assert.equal(await get("ttl_stream", { pk: { S: "old" } }), undefined);
  assert.ok(await get("ttl_stream", { pk: { S: "new" } }));
  // a later write removes the expired item, with a stream record
  await send(new D.PutItemCommand({ TableName: "ttl_stream", Item: { pk: { S: "other" } } }));
  const arn = (await send(new D.DescribeTableCommand({ TableName: "ttl_stream" }))).Table.LatestStreamArn;
  const desc = (await s.streams.send(new S.DescribeStreamCommand({ StreamArn: arn }))).StreamDescription;
  const it = (await s.streams.send(new S.GetShardIteratorCommand({ StreamArn: arn,
    ShardId: desc.Shards[0].ShardId, ShardIteratorType: "TRIM_HORIZON" }))).ShardIterator;
  const recs = (await s.streams.send(new S.GetRecordsCommand({ ShardIterator: it }))).Records;
  const removal = recs.find((r) => r.eventName === "REMOVE");
  assert.ok(removal, JSON.stringify(recs.map((r) => r.eventName)));
  assert.deepEqual(removal.userIdentity, { PrincipalId: "dynamodb.amazonaws.com", Type: "Service" });
  assert.deepEqual(removal.dynamodb.OldImage.pk, { S: "old" });
});

test("TTL disabled, then enabled on another attribute: the description follows", async () => {
  await send(new D.CreateTableCommand({ TableName: "ttl_switch", BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }] }));
  const ttl = (enabled, name) => send(new D.UpdateTimeToLiveCommand({ TableName: "ttl_switch",
    TimeToLiveSpecification: { Enabled: enabled, AttributeName: name } }));
  const status = async () => (await send(new D.DescribeTimeToLiveCommand({ TableName: "ttl_switch" })))
    .TimeToLiveDescription;
  await ttl(true, "a");
  assert.deepEqual(await status(), { TimeToLiveStatus: "ENABLED", AttributeName: "a" });
  await rejects(ttl(false, "b"), "ValidationException", /different AttributeName/);
  await ttl(false, "a");
  assert.equal((await status()).TimeToLiveStatus, "DISABLED");
  // DynamoDB allows another attribute once TTL is disabled; items then
  // expire by the new one (db:set_ttl): the past `b` hides its item, a
  // past `a` no longer does
  const past = { N: String(Math.floor(Date.now() / 1000) - 3600) };
  const future = { N: String(Math.floor(Date.now() / 1000) + 3600) };
  await send(new D.PutItemCommand({ TableName: "ttl_switch", Item: { pk: { S: "old_a" }, a: past, b: future } }));
  await send(new D.PutItemCommand({ TableName: "ttl_switch", Item: { pk: { S: "old_b" }, a: future, b: past } }));
  await ttl(true, "b");
  assert.deepEqual(await status(), { TimeToLiveStatus: "ENABLED", AttributeName: "b" });
  const get = async (pk) => (await send(new D.GetItemCommand({ TableName: "ttl_switch",
    Key: { pk: { S: pk } } }))).Item;
  assert.ok(await get("old_a"), "an item whose old TTL attribute is past stays");
  assert.equal(await get("old_b"), undefined, "an item whose new TTL attribute is past expires");
});

test("ReturnConsumedCapacity INDEXES and ReturnItemCollectionMetrics on a table with an LSI", async () => {
  await send(new D.CreateTableCommand({ TableName: "capidx", BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }, { AttributeName: "sk", AttributeType: "S" },
      { AttributeName: "g", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }, { AttributeName: "sk", KeyType: "RANGE" }],
    GlobalSecondaryIndexes: [{ IndexName: "gsi1", KeySchema: [{ AttributeName: "g", KeyType: "HASH" }],
      Projection: { ProjectionType: "ALL" } }],
    LocalSecondaryIndexes: [{ IndexName: "lsi1", KeySchema: [{ AttributeName: "pk", KeyType: "HASH" },
      { AttributeName: "g", KeyType: "RANGE" }], Projection: { ProjectionType: "ALL" } }] }));
  const r = await send(new D.PutItemCommand({ TableName: "capidx",
    Item: { pk: { S: "a" }, sk: { S: "1" }, g: { S: "x" } },
    ReturnConsumedCapacity: "INDEXES", ReturnItemCollectionMetrics: "SIZE" }));
  assert.equal(r.ConsumedCapacity.TableName, "capidx");
  assert.equal(r.ConsumedCapacity.Table.CapacityUnits, 1);
  assert.equal(r.ConsumedCapacity.GlobalSecondaryIndexes.gsi1.CapacityUnits, 1);
  assert.equal(r.ConsumedCapacity.LocalSecondaryIndexes.lsi1.CapacityUnits, 1);
  assert.equal(r.ConsumedCapacity.CapacityUnits, 3);
  assert.deepEqual(r.ItemCollectionMetrics.ItemCollectionKey, { pk: { S: "a" } });
  assert.equal(r.ItemCollectionMetrics.SizeEstimateRangeGB.length, 2);
});

test("--auth: signed requests pass, unsigned, unknown and badly signed ones are refused", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dynafile-auth-"));
  const keys = path.join(dir, "keys");
  fs.writeFileSync(keys, "# test keys\nAKIDGOOD secretgood\n");
  const a = await startServe({ args: ["--auth", keys], credentials: { accessKeyId: "AKIDGOOD", secretAccessKey: "secretgood" } });
  try {
    const ok = await a.ddb.send(new D.ListTablesCommand({}));
    assert.deepEqual(ok.TableNames, []);
    const bad = a.clients({ accessKeyId: "AKIDGOOD", secretAccessKey: "wrong" }).ddb;
    await rejects(bad.send(new D.ListTablesCommand({})), "InvalidSignatureException",
      /The request signature we calculated does not match the signature you provided/);
    const unknown = a.clients({ accessKeyId: "AKIDNOBODY", secretAccessKey: "x" }).ddb;
    await rejects(unknown.send(new D.ListTablesCommand({})), "UnrecognizedClientException",
      "The security token included in the request is invalid.");
    const res = await fetch(a.endpoint + "/", { method: "POST", body: "{}",
      headers: { "X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0" } });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /MissingAuthenticationTokenException/);
  } finally {
    await a.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
