// serve-transact.test.js -- TransactWriteItems, TransactGetItems, DynamoDB
// Streams and PartiQL of `dynafile serve` through the AWS SDK for
// JavaScript v3.
"use strict";
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const D = require("@aws-sdk/client-dynamodb");
const S = require("@aws-sdk/client-dynamodb-streams");
const { startServe, rejects } = require("./lib/serve");

let s;
const send = (cmd) => s.ddb.send(cmd);
const get = async (t, key) => (await send(new D.GetItemCommand({ TableName: t, Key: key, ConsistentRead: true }))).Item;

before(async () => {
  s = await startServe();
  for (const name of ["t_a", "t_b"]) {
    await send(new D.CreateTableCommand({ TableName: name, BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
      StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" } }));
  }
});
after(async () => { if (s) await s.stop(); });

test("TransactWriteItems across two tables is all or nothing", async () => {
  await send(new D.PutItemCommand({ TableName: "t_a", Item: { pk: { S: "acct" }, bal: { N: "100" } } }));
  await send(new D.TransactWriteItemsCommand({ TransactItems: [
    { Put: { TableName: "t_a", Item: { pk: { S: "x1" }, v: { S: "a" } } } },
    { Put: { TableName: "t_b", Item: { pk: { S: "x1" }, v: { S: "b" } } } },
    { ConditionCheck: { TableName: "t_a", Key: { pk: { S: "acct" } }, ConditionExpression: "attribute_exists(pk)" } },
    { Delete: { TableName: "t_b", Key: { pk: { S: "none" } } } },
  ] }));
  assert.deepEqual(await get("t_a", { pk: { S: "x1" } }), { pk: { S: "x1" }, v: { S: "a" } });
  assert.deepEqual(await get("t_b", { pk: { S: "x1" } }), { pk: { S: "x1" }, v: { S: "b" } });
  const e = await rejects(send(new D.TransactWriteItemsCommand({ TransactItems: [
    { Put: { TableName: "t_a", Item: { pk: { S: "x2" } } } },
    { Put: { TableName: "t_b", Item: { pk: { S: "x1" }, v: { S: "changed" } },
      ConditionExpression: "attribute_not_exists(pk)", ReturnValuesOnConditionCheckFailure: "ALL_OLD" } },
  ] })), "TransactionCanceledException",
  "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed]");
  assert.deepEqual(e.CancellationReasons[0], { Code: "None" });
  assert.equal(e.CancellationReasons[1].Code, "ConditionalCheckFailed");
  assert.deepEqual(e.CancellationReasons[1].Item, { pk: { S: "x1" }, v: { S: "b" } });
  assert.equal(await get("t_a", { pk: { S: "x2" } }), undefined);
  assert.equal((await get("t_b", { pk: { S: "x1" } })).v.S, "b");
});

test("TransactWriteItems refuses two actions on one item", async () => {
  await rejects(send(new D.TransactWriteItemsCommand({ TransactItems: [
    { Put: { TableName: "t_a", Item: { pk: { S: "dup" } } } },
    { Delete: { TableName: "t_a", Key: { pk: { S: "dup" } } } },
  ] })), "ValidationException", "Transaction request cannot include multiple operations on one item");
});

test("ClientRequestToken makes a retried transaction idempotent", async () => {
  const req = { ClientRequestToken: "token-1", TransactItems: [
    { Put: { TableName: "t_a", Item: { pk: { S: "idem" }, n: { N: "1" } } } },
    { Put: { TableName: "t_b", Item: { pk: { S: "idem" }, n: { N: "1" } } } }] };
  await send(new D.TransactWriteItemsCommand(req));
  await send(new D.PutItemCommand({ TableName: "t_a", Item: { pk: { S: "idem" }, n: { N: "2" } } }));
  await send(new D.TransactWriteItemsCommand(req));
  assert.equal((await get("t_a", { pk: { S: "idem" } })).n.N, "2", "the retry did not run again");
  await rejects(send(new D.TransactWriteItemsCommand({ ...req, TransactItems: req.TransactItems.slice(0, 1) })),
    "IdempotentParameterMismatchException");
});

test("TransactGetItems reads several tables", async () => {
  const r = await send(new D.TransactGetItemsCommand({ TransactItems: [
    { Get: { TableName: "t_a", Key: { pk: { S: "x1" } } } },
    { Get: { TableName: "t_b", Key: { pk: { S: "x1" } }, ProjectionExpression: "v" } },
    { Get: { TableName: "t_b", Key: { pk: { S: "missing" } } } }] }));
  assert.deepEqual(r.Responses[0].Item, { pk: { S: "x1" }, v: { S: "a" } });
  assert.deepEqual(r.Responses[1].Item, { v: { S: "b" } });
  assert.equal(r.Responses[2].Item, undefined);
});

test("DynamoDB Streams: every change of a table, in order, with its images", async () => {
  await send(new D.CreateTableCommand({ TableName: "streamed", BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
    StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" } }));
  const arn = (await send(new D.DescribeTableCommand({ TableName: "streamed" }))).Table.LatestStreamArn;
  const list = await s.streams.send(new S.ListStreamsCommand({ TableName: "streamed" }));
  assert.deepEqual(list.Streams.map((x) => x.StreamArn), [arn]);
  const desc = (await s.streams.send(new S.DescribeStreamCommand({ StreamArn: arn }))).StreamDescription;
  assert.equal(desc.StreamStatus, "ENABLED");
  assert.equal(desc.StreamViewType, "NEW_AND_OLD_IMAGES");
  assert.equal(desc.Shards.length, 1);
  const it = (await s.streams.send(new S.GetShardIteratorCommand({ StreamArn: arn,
    ShardId: desc.Shards[0].ShardId, ShardIteratorType: "TRIM_HORIZON" }))).ShardIterator;
  for (let i = 0; i < 10; i++) {
    await send(new D.PutItemCommand({ TableName: "streamed", Item: { pk: { S: "k" + (i % 3) }, n: { N: String(i) } } }));
  }
  await send(new D.DeleteItemCommand({ TableName: "streamed", Key: { pk: { S: "k0" } } }));
  const recs = [];
  let iter = it;
  for (let round = 0; round < 20 && recs.length < 11; round++) {
    const r = await s.streams.send(new S.GetRecordsCommand({ ShardIterator: iter, Limit: 4 }));
    recs.push(...r.Records);
    iter = r.NextShardIterator;
  }
  assert.equal(recs.length, 11);
  assert.deepEqual(recs.map((r) => r.eventName), ["INSERT", "INSERT", "INSERT", "MODIFY", "MODIFY",
    "MODIFY", "MODIFY", "MODIFY", "MODIFY", "MODIFY", "REMOVE"]);
  const seqs = recs.map((r) => BigInt(r.dynamodb.SequenceNumber));
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1]);
  assert.deepEqual(recs[3].dynamodb.OldImage, { pk: { S: "k0" }, n: { N: "0" } });
  assert.deepEqual(recs[3].dynamodb.NewImage, { pk: { S: "k0" }, n: { N: "3" } });
  assert.deepEqual(recs[10].dynamodb.Keys, { pk: { S: "k0" } });
  assert.equal(recs[10].dynamodb.NewImage, undefined);
  const latest = (await s.streams.send(new S.GetShardIteratorCommand({ StreamArn: arn,
    ShardId: desc.Shards[0].ShardId, ShardIteratorType: "LATEST" }))).ShardIterator;
  const none = await s.streams.send(new S.GetRecordsCommand({ ShardIterator: latest }));
  assert.equal(none.Records.length, 0);
  const after = (await s.streams.send(new S.GetShardIteratorCommand({ StreamArn: arn,
    ShardId: desc.Shards[0].ShardId, ShardIteratorType: "AFTER_SEQUENCE_NUMBER",
    SequenceNumber: recs[8].dynamodb.SequenceNumber }))).ShardIterator;
  const tail = await s.streams.send(new S.GetRecordsCommand({ ShardIterator: after }));
  assert.deepEqual(tail.Records.map((r) => r.dynamodb.SequenceNumber),
    [recs[9].dynamodb.SequenceNumber, recs[10].dynamodb.SequenceNumber]);
});

test("stream view types: KEYS_ONLY carries only the keys", async () => {
  await send(new D.CreateTableCommand({ TableName: "keys_only", BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
    StreamSpecification: { StreamEnabled: true, StreamViewType: "KEYS_ONLY" } }));
  const arn = (await send(new D.DescribeTableCommand({ TableName: "keys_only" }))).Table.LatestStreamArn;
  const desc = (await s.streams.send(new S.DescribeStreamCommand({ StreamArn: arn }))).StreamDescription;
  await send(new D.PutItemCommand({ TableName: "keys_only", Item: { pk: { S: "a" }, v: { S: "x" } } }));
  const it = (await s.streams.send(new S.GetShardIteratorCommand({ StreamArn: arn,
    ShardId: desc.Shards[0].ShardId, ShardIteratorType: "TRIM_HORIZON" }))).ShardIterator;
  const r = await s.streams.send(new S.GetRecordsCommand({ ShardIterator: it }));
  assert.equal(r.Records.length, 1);
  assert.deepEqual(r.Records[0].dynamodb.Keys, { pk: { S: "a" } });
  assert.equal(r.Records[0].dynamodb.NewImage, undefined);
  assert.equal(r.Records[0].dynamodb.StreamViewType, "KEYS_ONLY");
});

test("PartiQL: INSERT, SELECT, UPDATE, DELETE with parameters", async () => {
  const x = (Statement, Parameters) => send(new D.ExecuteStatementCommand({ Statement, Parameters }));
  await x(`INSERT INTO "t_a" VALUE {'pk': 'pq1', 'n': 1, 'tags': <<'a', 'b'>>}`);
  const set = await x(`SELECT tags FROM "t_a" WHERE pk = 'pq1'`);
  assert.deepEqual(set.Items[0].tags.SS.sort(), ["a", "b"]);
  await x(`INSERT INTO "t_a" VALUE {'pk': ?, 'n': ?}`, [{ S: "pq2" }, { N: "2" }]);
  await rejects(x(`INSERT INTO "t_a" VALUE {'pk': 'pq2'}`), "DuplicateItemException");
  let r = await x(`SELECT * FROM "t_a" WHERE pk = ?`, [{ S: "pq2" }]);
  assert.deepEqual(r.Items, [{ pk: { S: "pq2" }, n: { N: "2" } }]);
  await x(`UPDATE "t_a" SET n = n + 5, m = 'x' WHERE pk = 'pq2'`);
  r = await x(`SELECT n, m FROM "t_a" WHERE pk = 'pq2'`);
  assert.deepEqual(r.Items, [{ n: { N: "7" }, m: { S: "x" } }]);
  await rejects(x(`UPDATE "t_a" SET n = 1 WHERE pk = 'nobody'`), "ConditionalCheckFailedException");
  await x(`DELETE FROM "t_a" WHERE pk = 'pq2'`);
  r = await x(`SELECT * FROM "t_a" WHERE pk = 'pq2'`);
  assert.deepEqual(r.Items, []);
  await rejects(x(`SELECTT * FROMM "t_a"`), "ValidationException");
  await rejects(x(`SELECT * FROM "no_such_table" WHERE pk = 'x'`), "ResourceNotFoundException");
  await rejects(x(`DELETE FROM "t_a" WHERE pk = 'x' RETURNING ALL NEW *`), "ValidationException",
    "Invalid returning clause: RETURNING ALL NEW *. Only RETURNING ALL OLD * is allowed in DELETE statements.");
});

test("PartiQL: BatchExecuteStatement and ExecuteTransaction", async () => {
  const b = await send(new D.BatchExecuteStatementCommand({ Statements: [
    { Statement: `INSERT INTO "t_b" VALUE {'pk': 'bx1'}` },
    { Statement: `INSERT INTO "t_b" VALUE {'pk': 'x1'}` },
  ] }));
  assert.equal(b.Responses[0].Error, undefined);
  assert.equal(b.Responses[1].Error.Code, "DuplicateItem");
  await send(new D.ExecuteTransactionCommand({ TransactStatements: [
    { Statement: `INSERT INTO "t_a" VALUE {'pk': 'et1'}` },
    { Statement: `UPDATE "t_b" SET v = 'et' WHERE pk = 'bx1'` },
  ] }));
  assert.equal((await get("t_b", { pk: { S: "bx1" } })).v.S, "et");
  await rejects(send(new D.ExecuteTransactionCommand({ TransactStatements: [
    { Statement: `INSERT INTO "t_a" VALUE {'pk': 'et2'}` },
    { Statement: `INSERT INTO "t_a" VALUE {'pk': 'et1'}` },
  ] })), "TransactionCanceledException");
  assert.equal(await get("t_a", { pk: { S: "et2" } }), undefined);
  await rejects(send(new D.ExecuteTransactionCommand({ TransactStatements: [
    { Statement: `UPDATE "t_a" SET data = 'v' WHERE pk = 'x' RETURNING ALL NEW *` }] })), "ValidationException",
  "Validation failed in TransactStatements[0]: RETURNING clause is not supported in ExecuteTransaction.");
});
