// serve-diff.test.js -- differential tests: the same request sequences go to
// `dynafile serve` and to dynalite (an independent DynamoDB emulator, npm),
// and their answers are compared, leaving out what legitimately differs
// (times, ARNs and ids, capacity figures, sizes).  Where dynalite is known
// to differ from DynamoDB itself, the case says so and what DynamoDB does.
"use strict";
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const path = require("node:path");
const D = require("@aws-sdk/client-dynamodb");
const { startServe } = require("./lib/serve");

let serve, dyn, dynProc;

function startDynalite() {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(__dirname, "dynalite-server.js")], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/^(\d+) (\d+)\n/);
      if (m) resolve({ proc: p, port: Number(m[1]) });
    });
    p.on("exit", (code) => reject(new Error("dynalite exited " + code)));
  });
}

before(async () => {
  serve = await startServe({ workers: 2 });
  const d = await startDynalite();
  dynProc = d.proc;
  dyn = new D.DynamoDBClient({ endpoint: `http://127.0.0.1:${d.port}`, region: "us-east-1",
    credentials: { accessKeyId: "AKID", secretAccessKey: "secret" }, maxAttempts: 1 });
});
after(async () => {
  if (serve) await serve.stop();
  if (dyn) dyn.destroy();
  if (dynProc) dynProc.kill("SIGTERM");
});

const VOLATILE = new Set(["$metadata", "CreationDateTime", "TableArn", "TableId", "IndexArn", "LatestStreamArn",
  "LatestStreamLabel", "LastUpdateToPayPerRequestDateTime", "ConsumedCapacity", "TableSizeBytes",
  "IndexSizeBytes", "LastIncreaseDateTime", "LastDecreaseDateTime", "DeletionProtectionEnabled",
  "WarmThroughput", "TableClassSummary"]);

function normalise(v) {
  if (Array.isArray(v)) return v.map(normalise);
  if (v instanceof Uint8Array) return Buffer.from(v).toString("base64");
  if (v && typeof v === "object" && !(v instanceof Date)) {
    const out = {};
    for (const k of Object.keys(v).sort()) {
      if (!VOLATILE.has(k) && v[k] !== undefined) out[k] = normalise(v[k]);
    }
    return out;
  }
  return v;
}

async function outcome(client, Cmd, input) {
  try {
    return { ok: normalise(await client.send(new Cmd(JSON.parse(JSON.stringify(input))))) };
  } catch (e) {
    return { error: e.name, message: e.message };
  }
}

// run(Cmd, input, opts): send to both and compare.  opts.ignoreMessage:
// compare error names only; opts.sortItems: compare Items as multisets
// (scan order is the hash order of each store); opts.fix(res): adjust both.
async function run(Cmd, input, opts = {}) {
  const a = await outcome(serve.ddb, Cmd, input);
  const b = await outcome(dyn, Cmd, input);
  for (const r of [a, b]) {
    if (opts.ignoreMessage && r.error) delete r.message;
    if (opts.sortItems && r.ok && r.ok.Items) r.ok.Items.sort((x, y) => JSON.stringify(x) < JSON.stringify(y) ? -1 : 1);
    if (opts.fix) opts.fix(r);
  }
  assert.deepEqual(a, b, `${Cmd.name} ${JSON.stringify(input).slice(0, 300)}`);
  return a;
}

const table = (name, extra = {}) => ({ TableName: name, BillingMode: "PAY_PER_REQUEST",
  AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }, { AttributeName: "sk", AttributeType: "N" }],
  KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }, { AttributeName: "sk", KeyType: "RANGE" }], ...extra });

// dynalite answers CreateTable with CREATING and its table stays CREATING
// until a timer of createTableMs (0 here) fires -- later on a loaded
// machine; both then describe ACTIVE.
async function dynaliteActive(name) {
  for (let i = 0; i < 200; i++) {
    const d = await dyn.send(new D.DescribeTableCommand({ TableName: name }));
    if (d.Table.TableStatus === "ACTIVE") return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`dynalite's table ${name} never became ACTIVE`);
}

test("tables: create, describe, list, delete", async () => {
  await run(D.CreateTableCommand, table("diff_a"));
  await dynaliteActive("diff_a");
  await run(D.DescribeTableCommand, { TableName: "diff_a" });
  await run(D.CreateTableCommand, table("diff_a"), { ignoreMessage: true });
  await run(D.CreateTableCommand, table("diff_gsi", {
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }, { AttributeName: "sk", AttributeType: "N" },
      { AttributeName: "g", AttributeType: "S" }],
    GlobalSecondaryIndexes: [{ IndexName: "by_g", KeySchema: [{ AttributeName: "g", KeyType: "HASH" },
      { AttributeName: "sk", KeyType: "RANGE" }], Projection: { ProjectionType: "INCLUDE", NonKeyAttributes: ["x"] } }],
    LocalSecondaryIndexes: [{ IndexName: "by_g_local", KeySchema: [{ AttributeName: "pk", KeyType: "HASH" },
      { AttributeName: "g", KeyType: "RANGE" }], Projection: { ProjectionType: "KEYS_ONLY" } }],
  }));
  await dynaliteActive("diff_gsi");
  // dynalite shows the GSIs of a new table CREATING for a moment after the
  // table is ACTIVE; DynamoDB creates them with the table (CreateTable
  // documentation: the table and its indexes become ACTIVE together).
  await run(D.DescribeTableCommand, { TableName: "diff_gsi" }, {
    fix: (r) => { for (const g of (r.ok && r.ok.Table.GlobalSecondaryIndexes) || []) delete g.IndexStatus; },
  });
  await run(D.ListTablesCommand, { Limit: 1 });
  await run(D.ListTablesCommand, { ExclusiveStartTableName: "diff_a" });
  await run(D.DescribeTableCommand, { TableName: "diff_missing" });
  // validation
  for (const bad of [
    table("diff_bad1", { KeySchema: [{ AttributeName: "pk", KeyType: "RANGE" }] }),
    table("diff_bad2", { KeySchema: [{ AttributeName: "nope", KeyType: "HASH" }] }),
    table("diff_bad3", { BillingMode: "PROVISIONED" }),
    table("diff_bad4", { ProvisionedThroughput: { ReadCapacityUnits: 1, WriteCapacityUnits: 1 } }),
    table("diff_bad5", { LocalSecondaryIndexes: [] }),
    table("diff_bad6", { GlobalSecondaryIndexes: [{ IndexName: "x1", KeySchema: [{ AttributeName: "sk", KeyType: "HASH" }],
      Projection: { ProjectionType: "ALL", NonKeyAttributes: ["a"] } }] }),
  ]) {
    await run(D.CreateTableCommand, bad);
  }
  await run(D.DeleteTableCommand, { TableName: "diff_gsi" }, {
    // DynamoDB and dynafile serve answer DeleteTable with the short
    // description (no KeySchema, AttributeDefinitions or indexes, see
    // DynamoDB's API reference, DeleteTable response); dynalite returns the
    // whole description.
    fix: (r) => {
      if (r.ok) {
        for (const k of ["KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "LocalSecondaryIndexes",
          "CreationDateTime", "ItemCount"]) delete r.ok.TableDescription[k];
      }
    },
  });
});

test("items: put, get, update, delete with legacy parameters and expressions", async () => {
  const t = "diff_a";
  await run(D.PutItemCommand, { TableName: t, Item: { pk: { S: "a" }, sk: { N: "1" }, v: { S: "x" }, n: { N: "10" },
    l: { L: [{ S: "a" }, { N: "2" }] }, m: { M: { k: { BOOL: true }, z: { NULL: true } } } } });
  await run(D.GetItemCommand, { TableName: t, Key: { pk: { S: "a" }, sk: { N: "1" } } });
  await run(D.GetItemCommand, { TableName: t, Key: { pk: { S: "a" }, sk: { N: "1" } }, AttributesToGet: ["v", "n"] });
  await run(D.GetItemCommand, { TableName: t, Key: { pk: { S: "a" }, sk: { N: "1" } }, ProjectionExpression: "l[1], m.k" });
  await run(D.GetItemCommand, { TableName: t, Key: { pk: { S: "a" } } });
  await run(D.GetItemCommand, { TableName: t, Key: { pk: { N: "1" }, sk: { N: "1" } } });
  await run(D.PutItemCommand, { TableName: t, Item: { pk: { S: "a" }, sk: { N: "1" } }, Expected: { v: { Value: { S: "y" } } } });
  await run(D.PutItemCommand, { TableName: t, Item: { pk: { S: "a" }, sk: { N: "1" }, v: { S: "x2" }, n: { N: "10" } },
    Expected: { v: { Value: { S: "x" } } }, ReturnValues: "ALL_OLD" });
  await run(D.PutItemCommand, { TableName: t, Item: { pk: { S: "b" }, sk: { N: "1" } }, ConditionExpression: "attribute_exists(pk)" });
  await run(D.UpdateItemCommand, { TableName: t, Key: { pk: { S: "a" }, sk: { N: "1" } },
    AttributeUpdates: { n: { Action: "ADD", Value: { N: "5" } }, v: { Action: "DELETE" } }, ReturnValues: "ALL_NEW" });
  await run(D.UpdateItemCommand, { TableName: t, Key: { pk: { S: "a" }, sk: { N: "1" } },
    AttributeUpdates: { sk: { Action: "PUT", Value: { N: "2" } } } });
  await run(D.DeleteItemCommand, { TableName: t, Key: { pk: { S: "a" }, sk: { N: "1" } },
    Expected: { n: { ComparisonOperator: "GT", AttributeValueList: [{ N: "100" }] } } });
  await run(D.DeleteItemCommand, { TableName: t, Key: { pk: { S: "a" }, sk: { N: "1" } }, ReturnValues: "ALL_OLD" });
  await run(D.GetItemCommand, { TableName: t, Key: { pk: { S: "a" }, sk: { N: "1" } } });
  // value validation
  for (const item of [{ pk: { S: "a" }, sk: { N: "1" }, x: { SS: [] } }, { pk: { S: "a" }, sk: { N: "1" }, x: {} },
    { pk: { S: "a" }, sk: { N: "1e400" } }, { pk: { S: "a" }, sk: { N: "abc" } }, { pk: { S: "" }, sk: { N: "1" } },
    { pk: { S: "a" } }, { pk: { S: "a" }, sk: { S: "1" } }]) {
    await run(D.PutItemCommand, { TableName: t, Item: item });
  }
});

test("queries and scans: key conditions, Limit, pages, filters, Select", async () => {
  const t = "diff_a";
  for (let i = 1; i <= 12; i++) {
    await run(D.PutItemCommand, { TableName: t, Item: { pk: { S: "q" }, sk: { N: String(i) }, odd: { BOOL: i % 2 === 1 } } });
  }
  const kc = (op, ...vals) => ({ pk: { ComparisonOperator: "EQ", AttributeValueList: [{ S: "q" }] },
    sk: { ComparisonOperator: op, AttributeValueList: vals.map((v) => ({ N: String(v) })) } });
  await run(D.QueryCommand, { TableName: t, KeyConditions: kc("BETWEEN", 3, 7) });
  await run(D.QueryCommand, { TableName: t, KeyConditions: kc("GE", 10), ScanIndexForward: false });
  await run(D.QueryCommand, { TableName: t, KeyConditions: kc("GT", 0), Limit: 5 });
  await run(D.QueryCommand, { TableName: t, KeyConditions: kc("GT", 0), Limit: 5,
    ExclusiveStartKey: { pk: { S: "q" }, sk: { N: "5" } } });
  await run(D.QueryCommand, { TableName: t, KeyConditions: kc("LT", 100), Limit: 12 });
  // dynalite refuses EQ on a BOOL value ("ComparisonOperator EQ is not
  // valid for BOOL AttributeValue type"); DynamoDB's API reference
  // (Condition, ComparisonOperator) says "EQ is supported for all data
  // types, including lists and maps", so dynafile serve accepts it.
  const eqBool = { TableName: t, KeyConditions: kc("LT", 100), Select: "COUNT",
    QueryFilter: { odd: { ComparisonOperator: "EQ", AttributeValueList: [{ BOOL: true }] } } };
  assert.deepEqual((await outcome(serve.ddb, D.QueryCommand, eqBool)).ok, { Count: 6, ScannedCount: 12 });
  assert.equal((await outcome(dyn, D.QueryCommand, eqBool)).error, "ValidationException");
  await run(D.QueryCommand, { TableName: t, KeyConditions: kc("GT", 0), Limit: 4,
    QueryFilter: { odd: { ComparisonOperator: "NE", AttributeValueList: [{ N: "1" }] } } });
  await run(D.QueryCommand, { TableName: t, KeyConditionExpression: "pk = :p AND sk <= :s",
    ExpressionAttributeValues: { ":p": { S: "q" }, ":s": { N: "3" } } });
  await run(D.QueryCommand, { TableName: t, KeyConditions: { sk: { ComparisonOperator: "EQ", AttributeValueList: [{ N: "1" }] } } });
  await run(D.QueryCommand, { TableName: t });
  await run(D.ScanCommand, { TableName: t, ScanFilter: { sk: { ComparisonOperator: "IN", AttributeValueList: [{ N: "2" }, { N: "11" }] } } },
    { sortItems: true });
  await run(D.ScanCommand, { TableName: t, Select: "COUNT" });
  await run(D.ScanCommand, { TableName: t, Segment: 1 });
  await run(D.ScanCommand, { TableName: t, Segment: 4, TotalSegments: 4 });
});

test("batches", async () => {
  const t = "diff_a";
  await run(D.BatchWriteItemCommand, { RequestItems: { [t]: [
    { PutRequest: { Item: { pk: { S: "bw" }, sk: { N: "1" } } } },
    { PutRequest: { Item: { pk: { S: "bw" }, sk: { N: "2" }, v: { S: "z" } } } }] } });
  await run(D.BatchGetItemCommand, { RequestItems: { [t]: { Keys: [{ pk: { S: "bw" }, sk: { N: "1" } },
    { pk: { S: "bw" }, sk: { N: "2" } }, { pk: { S: "bw" }, sk: { N: "3" } }] } } }, {
    fix: (r) => { if (r.ok) r.ok.Responses[t].sort((x, y) => x.sk.N < y.sk.N ? -1 : 1); },
  });
  await run(D.BatchGetItemCommand, { RequestItems: { [t]: { Keys: [{ pk: { S: "bw" }, sk: { N: "1" } },
    { pk: { S: "bw" }, sk: { N: "1" } }] } } });
  await run(D.BatchWriteItemCommand, { RequestItems: { [t]: [
    { DeleteRequest: { Key: { pk: { S: "bw" }, sk: { N: "1" } } } },
    { DeleteRequest: { Key: { pk: { S: "bw" }, sk: { N: "1" } } } }] } });
  await run(D.BatchWriteItemCommand, { RequestItems: { diff_none: [{ DeleteRequest: { Key: { pk: { S: "x" } } } }] } });
});

test("limits: key sizes, 400 KB items, number range and digits -- the same errors", async () => {
  // Each of these a store could refuse late (dynafile's engine has its own
  // rules); serve must answer DynamoDB's 400 with DynamoDB's words on every
  // write path, as dynalite does.
  const t = "diff_lim";
  const def = { TableName: t, BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }, { AttributeName: "sk", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }, { AttributeName: "sk", KeyType: "RANGE" }] };
  await outcome(serve.ddb, D.CreateTableCommand, def);
  await outcome(dyn, D.CreateTableCommand, def);
  await dynaliteActive(t);
  const nest = (n) => { let v = { S: "x" }; for (let i = 0; i < n; i++) v = { M: { a: v } }; return v; };
  const bad = [
    { pk: { S: "h".repeat(2049) }, sk: { S: "a" } },
    { pk: { S: "a" }, sk: { S: "r".repeat(1025) } },
    { pk: { S: "a" }, sk: { S: "big" }, v: { S: "x".repeat(400 * 1024) } },
    { pk: { S: "a" }, sk: { S: "n" }, v: { N: "1e126" } },
    { pk: { S: "a" }, sk: { S: "n" }, v: { N: "1e-131" } },
    { pk: { S: "a" }, sk: { S: "n" }, v: { N: "123456789012345678901234567890123456789" } },
    // (an attribute nested 32 levels below itself is past DynamoDB's 32
    // levels with the item -- "Nesting Levels have exceeded supported
    // limits" -- but dynalite does not check nesting: serve-items tests it)
  ];
  for (const item of bad) {
    await run(D.PutItemCommand, { TableName: t, Item: item });
    await run(D.BatchWriteItemCommand, { RequestItems: { [t]: [{ PutRequest: { Item: item } }] } });
  }
  // at the limits they are written
  const good = [
    { pk: { S: "h".repeat(2048) }, sk: { S: "a" } },
    { pk: { S: "a" }, sk: { S: "r".repeat(1024) } },
    { pk: { S: "a" }, sk: { S: "n" }, v: { N: "9.9999999999999999999999999999999999999E+125" }, w: { N: "1E-130" } },
    { pk: { S: "a" }, sk: { S: "d" }, v: nest(31) },
  ];
  for (const item of good) {
    await run(D.PutItemCommand, { TableName: t, Item: item });
    await run(D.GetItemCommand, { TableName: t, Key: { pk: item.pk, sk: item.sk } });
  }
  // keys over the limits in reads and deletes
  for (const Key of [{ pk: { S: "h".repeat(2049) }, sk: { S: "a" } }, { pk: { S: "a" }, sk: { S: "r".repeat(1025) } }]) {
    await run(D.GetItemCommand, { TableName: t, Key });
    await run(D.DeleteItemCommand, { TableName: t, Key });
  }
  // an update that would pass 400 KB (arithmetic past DynamoDB's number
  // range is not compared: dynalite stores the result unchecked)
  await run(D.UpdateItemCommand, { TableName: t, Key: { pk: { S: "a" }, sk: { S: "u" } },
    UpdateExpression: "SET a = :x, b = :x", ExpressionAttributeValues: { ":x": { S: "y".repeat(250 * 1024) } } });
  await run(D.GetItemCommand, { TableName: t, Key: { pk: { S: "a" }, sk: { S: "n" } } });
});
