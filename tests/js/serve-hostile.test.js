// serve-hostile.test.js -- a corpus of malformed requests against every
// operation of `dynafile serve`: every member of a valid request of each
// operation is replaced in turn by each of ~40 hostile values (wrong
// types, nulls, empty and huge strings, NUL bytes, malformed
// AttributeValues, deep nesting, ...), and malformed HTTP bodies are sent
// raw (invalid JSON, wrong content types, unknown targets, oversized and
// deeply nested bodies).  Every answer must be one of DynamoDB's errors
// (or a success, for a mutation that is still a valid request) -- never an
// internal error or a dropped connection -- and afterwards the same
// workers are still serving, a table no request names is byte for byte as
// it was, and the attacked table passes `dynafile check`.
"use strict";
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const { spawnSync } = require("node:child_process");
const D = require("@aws-sdk/client-dynamodb");
const { startServe, ROOT } = require("./lib/serve");

let s;
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

function raw(body, headers = {}, method = "POST") {
  return new Promise((resolve) => {
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
    const req = http.request({ host: "127.0.0.1", port: s.port, path: "/", method, agent,
      headers: { "Content-Type": "application/x-amz-json-1.0", "Content-Length": buf.length,
        Authorization: "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00",
        ...headers } }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", (e) => resolve({ status: 0, body: String(e) }));
    req.end(buf);
  });
}
const call = (target, obj) => raw(JSON.stringify(obj), { "X-Amz-Target": target });

function children(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch { return []; }
}
const workers = () => children(children(s.proc.pid)[0]).sort();

const deep = (n, leaf) => { let v = leaf; for (let i = 0; i < n; i++) v = [v]; return v; };
const deepMap = (n) => { let v = { S: "x" }; for (let i = 0; i < n; i++) v = { M: { a: v } }; return v; };
const HOSTILE = [
  null, true, false, 0, -1, 1.5, 1e300, 2 ** 63, "", " ", "x", "\u0000", "é\u00ff", "a".repeat(70000),
  "TOTALLY_INVALID", [], [null], [{}], [[]], {}, { S: "x" }, { N: "1e400" }, { N: "abc" }, { N: "" },
  { B: "!!not base64" }, { SS: [] }, { SS: ["a", "a"] }, { NS: ["1", "x"] }, { NULL: false }, { BOOL: "yes" },
  { M: { a: {} } }, { L: [{ Q: 1 }] }, { S: "x", N: "1" }, { S: 5 }, deep(200, "x"), deepMap(40),
  { "": { S: "x" } }, { "#x": "y" }, { ":x": { S: "y" } }, "attribute_exists(", "SET #a = :a",
  Array.from({ length: 300 }, () => ({ PutRequest: { Item: { pk: { S: "z" } } } })),
];

const KEY = { pk: { S: "k1" }, sk: { N: "1" } };
const D_ = "DynamoDB_20120810.";
const S_ = "DynamoDBStreams_20120810.";
let streamArn, shardIterator;

function bases() {
  const t = "victim";
  return [
    [D_ + "CreateTable", { TableName: "made_by_corpus", AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "id", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST" }],
    [D_ + "DescribeTable", { TableName: t }],
    [D_ + "ListTables", { Limit: 5, ExclusiveStartTableName: "aaa" }],
    [D_ + "UpdateTable", { TableName: t, BillingMode: "PAY_PER_REQUEST" }],
    [D_ + "DeleteTable", { TableName: "no_such_table_at_all" }],
    [D_ + "DescribeTimeToLive", { TableName: t }],
    [D_ + "UpdateTimeToLive", { TableName: "no_such_table_at_all", TimeToLiveSpecification: { Enabled: true, AttributeName: "e" } }],
    [D_ + "ListTagsOfResource", { ResourceArn: "arn:aws:dynamodb:us-east-1:000000000000:table/victim" }],
    [D_ + "TagResource", { ResourceArn: "arn:aws:dynamodb:us-east-1:000000000000:table/victim", Tags: [{ Key: "k", Value: "v" }] }],
    [D_ + "UntagResource", { ResourceArn: "arn:aws:dynamodb:us-east-1:000000000000:table/victim", TagKeys: ["k"] }],
    [D_ + "DescribeEndpoints", {}],
    [D_ + "GetItem", { TableName: t, Key: KEY, ProjectionExpression: "#a, b", ExpressionAttributeNames: { "#a": "a" } }],
    [D_ + "PutItem", { TableName: t, Item: { ...KEY, a: { S: "v" }, l: { L: [{ N: "1" }] } },
      ConditionExpression: "attribute_exists(#nope) AND a = :v", ExpressionAttributeNames: { "#nope": "nope" },
      ExpressionAttributeValues: { ":v": { S: "v" } }, ReturnValues: "ALL_OLD" }],
    [D_ + "PutItem", { TableName: t, Item: { ...KEY }, Expected: { nope: { Exists: true, Value: { S: "x" } } } }],
    [D_ + "DeleteItem", { TableName: t, Key: KEY, ConditionExpression: "attribute_exists(nope)" }],
    [D_ + "UpdateItem", { TableName: t, Key: KEY, UpdateExpression: "SET a = :v", ConditionExpression: "attribute_exists(nope)",
      ExpressionAttributeValues: { ":v": { S: "x" } }, ReturnValues: "ALL_NEW" }],
    [D_ + "UpdateItem", { TableName: t, Key: KEY, AttributeUpdates: { a: { Action: "PUT", Value: { S: "x" } } },
      Expected: { nope: { Exists: true, Value: { S: "x" } } } }],
    [D_ + "Query", { TableName: t, KeyConditionExpression: "pk = :p AND sk > :s", FilterExpression: "a <> :a",
      ExpressionAttributeValues: { ":p": { S: "k1" }, ":s": { N: "0" }, ":a": { S: "z" } }, Limit: 3,
      ExclusiveStartKey: KEY, ScanIndexForward: false, Select: "ALL_ATTRIBUTES" }],
    [D_ + "Query", { TableName: t, IndexName: "by_g", KeyConditions: { g: { ComparisonOperator: "EQ", AttributeValueList: [{ S: "x" }] } },
      QueryFilter: { a: { ComparisonOperator: "BEGINS_WITH", AttributeValueList: [{ S: "v" }] } } }],
    [D_ + "Scan", { TableName: t, Segment: 0, TotalSegments: 2, ScanFilter: { a: { ComparisonOperator: "NOT_NULL" } },
      AttributesToGet: ["a"], Limit: 2 }],
    [D_ + "BatchGetItem", { RequestItems: { [t]: { Keys: [KEY], ProjectionExpression: "a" } } }],
    [D_ + "BatchWriteItem", { RequestItems: { [t]: [{ PutRequest: { Item: { pk: { S: "bw" }, sk: { N: "1" } } } },
      { DeleteRequest: { Key: { pk: { S: "bw" }, sk: { N: "2" } } } }] } }],
    [D_ + "TransactWriteItems", { TransactItems: [{ ConditionCheck: { TableName: t, Key: KEY,
      ConditionExpression: "attribute_exists(nope)" } }, { Put: { TableName: t, Item: { pk: { S: "tw" }, sk: { N: "1" } } } }],
      ClientRequestToken: "tok" }],
    [D_ + "TransactGetItems", { TransactItems: [{ Get: { TableName: t, Key: KEY, ProjectionExpression: "a" } }] }],
    [D_ + "ExecuteStatement", { Statement: "SELECT * FROM \"victim\" WHERE pk = ? AND sk = ?", Parameters: [{ S: "k1" }, { N: "1" }],
      Limit: 2 }],
    [D_ + "BatchExecuteStatement", { Statements: [{ Statement: "SELECT * FROM \"victim\" WHERE pk = 'k1' AND sk = 1" }] }],
    [D_ + "ExecuteTransaction", { TransactStatements: [{ Statement: "EXISTS(SELECT * FROM \"victim\" WHERE pk = 'nope' AND sk = 1)" }] }],
    [S_ + "ListStreams", { TableName: t, Limit: 2 }],
    [S_ + "DescribeStream", { StreamArn: streamArn }],
    [S_ + "GetShardIterator", { StreamArn: streamArn, ShardId: "shardId-00000000000000000001-00000000", ShardIteratorType: "LATEST" }],
    [S_ + "GetRecords", { ShardIterator: shardIterator, Limit: 2 }],
  ];
}

// Every path in a JSON value.
function paths(v, prefix = [], out = []) {
  out.push(prefix);
  if (v && typeof v === "object") {
    for (const k of Object.keys(v)) paths(v[k], [...prefix, Array.isArray(v) ? Number(k) : k], out);
  }
  return out;
}
function replaced(v, p, x) {
  if (p.length === 0) return x;
  const copy = Array.isArray(v) ? [...v] : { ...v };
  copy[p[0]] = replaced(v[p[0]], p.slice(1), x);
  return copy;
}

function scanAll(table) {
  return s.ddb.send(new D.ScanCommand({ TableName: table, ConsistentRead: true })).then((r) =>
    r.Items.map((i) => JSON.stringify(i)).sort());
}

before(async () => {
  s = await startServe({ workers: 2 });
  const mk = (name, extra = {}) => s.ddb.send(new D.CreateTableCommand({ TableName: name, BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }, { AttributeName: "sk", AttributeType: "N" },
      { AttributeName: "g", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }, { AttributeName: "sk", KeyType: "RANGE" }],
    GlobalSecondaryIndexes: [{ IndexName: "by_g", KeySchema: [{ AttributeName: "g", KeyType: "HASH" }], Projection: { ProjectionType: "ALL" } }],
    StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" }, ...extra }));
  await mk("victim");
  await mk("sentinel");
  for (let i = 0; i < 20; i++) {
    for (const t of ["victim", "sentinel"]) {
      await s.ddb.send(new D.PutItemCommand({ TableName: t, Item: { pk: { S: "k1" }, sk: { N: String(i) }, g: { S: "x" },
        a: { S: "v" + i }, m: { M: { n: { N: String(i) } } } } }));
    }
  }
  streamArn = (await s.ddb.send(new D.DescribeTableCommand({ TableName: "victim" }))).Table.LatestStreamArn;
  const r = await call(S_ + "GetShardIterator", { StreamArn: streamArn, ShardId: "shardId-00000000000000000001-00000000",
    ShardIteratorType: "TRIM_HORIZON" });
  shardIterator = JSON.parse(r.body).ShardIterator || "x";
});
after(async () => { agent.destroy(); if (s) await s.stop(); });

function acceptable(r) {
  if (r.status === 200) return true;
  if (r.status === 413) return true; // nginx refuses an oversized body
  if (r.status !== 400 && r.status !== 404) return false;
  if (r.status === 404) return /UnknownOperationException/.test(r.body);
  try {
    const b = JSON.parse(r.body);
    return typeof b.__type === "string" && !/InternalServerError/.test(b.__type);
  } catch { return false; }
}

test("every member of every operation, replaced by hostile values, gets DynamoDB's errors", async () => {
  const before = await scanAll("sentinel");
  const ws = workers();
  assert.equal(ws.length, 2);
  let sent = 0;
  const bad = [];
  for (const [target, body] of bases()) {
    for (const p of paths(body)) {
      const batch = HOSTILE.map((x) => call(target, replaced(body, p, x)).then((r) => {
        sent++;
        if (!acceptable(r)) bad.push(`${target} ${JSON.stringify(p)}: ${r.status} ${r.body.slice(0, 200)}`);
      }));
      await Promise.all(batch);
    }
  }
  const distinct = [...new Set(bad.map((b) => b.replace(/: (\d+) .*/, ": $1")))];
  assert.deepEqual(distinct.slice(0, 40), [], `${bad.length} bad answers of ${sent}: ${bad.slice(0, 5).join("\n")}`);
  assert.ok(sent > 3000, `sent ${sent}`);
  assert.deepEqual(workers(), ws, "no worker died");
  assert.deepEqual(await scanAll("sentinel"), before, "the table no request named is unchanged");
  console.log(`# ${sent} hostile requests answered`);
});

test("malformed HTTP requests get DynamoDB's errors and leave the workers serving", async () => {
  const ws = workers();
  const cases = [
    ["not JSON", "{bad json", { "X-Amz-Target": D_ + "ListTables" }, /SerializationException/],
    ["a JSON array", "[1,2]", { "X-Amz-Target": D_ + "ListTables" }, /SerializationException/],
    ["a JSON string", "\"x\"", { "X-Amz-Target": D_ + "ListTables" }, /SerializationException/],
    ["an empty body", "", { "X-Amz-Target": D_ + "ListTables" }, /SerializationException/],
    ["truncated JSON", "{\"TableName\": \"vic", { "X-Amz-Target": D_ + "DescribeTable" }, /SerializationException/],
    ["no target", "{}", {}, /UnknownOperationException/],
    ["an unknown operation", "{}", { "X-Amz-Target": D_ + "Explode" }, /UnknownOperationException/],
    ["an unknown API", "{}", { "X-Amz-Target": "Other_20120810.ListTables" }, /UnknownOperationException/],
    ["deep JSON nesting", "[".repeat(100000), { "X-Amz-Target": D_ + "ListTables" }, /SerializationException/],
    ["invalid UTF-8", Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), { "X-Amz-Target": D_ + "ListTables" }, /./],
    ["NaN", "{\"Limit\": NaN}", { "X-Amz-Target": D_ + "ListTables" }, /SerializationException/],
    ["a huge number", "{\"Limit\": 1e999}", { "X-Amz-Target": D_ + "ListTables" }, /Exception/],
  ];
  for (const [name, body, headers, re] of cases) {
    const r = await raw(body, headers);
    assert.ok(r.status === 400 || r.status === 404, `${name}: status ${r.status} ${r.body}`);
    assert.match(r.body, re, name);
  }
  const wrongType = await raw("{}", { "X-Amz-Target": D_ + "ListTables", "Content-Type": "text/plain" });
  assert.equal(wrongType.status, 404);
  const put = await raw("{}", { "X-Amz-Target": D_ + "ListTables" }, "PUT");
  assert.equal(put.status, 404);
  const big = await raw("{\"TableName\": \"" + "x".repeat(17 * 1024 * 1024) + "\"}", { "X-Amz-Target": D_ + "DescribeTable" });
  assert.equal(big.status, 413);
  assert.deepEqual(workers(), ws, "no worker died");
  const ok = await raw("{}", { "X-Amz-Target": D_ + "ListTables" });
  assert.equal(ok.status, 200);
});

test("the attacked table passes dynafile check", () => {
  const r = spawnSync("lua5.4", [path.join(ROOT, "bin/dynafile"), "check", path.join(s.dir, "victim")], {
    env: { ...process.env, LUA_PATH: `${ROOT}/lua/?.lua;${ROOT}/lua/?/init.lua;;`, LUA_CPATH: `${ROOT}/build/lua5.4/?.so;;` },
    encoding: "utf8" });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
