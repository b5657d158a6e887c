// serve-types.test.js -- DynamoDB's binary values, sets and exact decimal
// numbers: as keys (ordering, key conditions), as attributes (round trips,
// UpdateExpression ADD/DELETE and arithmetic, set functions in filters),
// and in a GSI.
//
// Every case runs against dynalite too, which checks the expectations
// themselves, and against `dynafile serve`.
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
    const p = spawn(process.execPath, [path.join(__dirname, "dynalite-server.js")],
      { stdio: ["ignore", "pipe", "inherit"] });
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

const B = (s) => ({ B: Buffer.from(s, "latin1") });
const bytes = (v) => Buffer.from(v.B).toString("latin1");
const sorted = (a) => [...a].sort();
// a set attribute's elements, order-free (DynamoDB keeps no order)
function setOf(v) {
  if (v.SS) return { SS: sorted(v.SS) };
  if (v.NS) return { NS: [...v.NS].sort((a, b) => Number(a) - Number(b)) };
  if (v.BS) return { BS: sorted(v.BS.map((x) => Buffer.from(x).toString("latin1"))) };
  return v;
}

// CreateTable, then wait until the table is ACTIVE (dynalite makes it
// ACTIVE a moment later even with createTableMs 0)
async function create(send, input) {
  await send(new D.CreateTableCommand(input));
  for (let i = 0; i < 200; i++) {
    const d = await send(new D.DescribeTableCommand({ TableName: input.TableName }));
    if (d.Table.TableStatus === "ACTIVE") return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${input.TableName} did not become ACTIVE`);
}

// Run `body(send, name)` against dynalite and against serve, each on its
// own table name.
function both(title, body) {
  test(`${title} [dynalite]`, async () => body((c) => dyn.send(c), "dyn"));
  test(`${title} [dynafile serve]`, async () => body((c) => serve.ddb.send(c), "srv"));
}

both("binary partition and sort keys: bytewise order, key conditions, exact bytes", async (send, tag) => {
  const T = `bin_${tag}`;
  await create(send, { TableName: T, BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "B" }, { AttributeName: "sk", AttributeType: "B" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }, { AttributeName: "sk", KeyType: "RANGE" }] });
  const sks = ["\x00", "\x00\x01", "a", "ab", "b", "\x7f", "\x80", "\xff", "\xff\x00"];
  for (const s of sks) {
    await send(new D.PutItemCommand({ TableName: T, Item: { pk: B("\x00p\xff"), sk: B(s), v: { S: s.length + "" } } }));
  }
  const g = await send(new D.GetItemCommand({ TableName: T, Key: { pk: B("\x00p\xff"), sk: B("\x80") } }));
  assert.equal(bytes(g.Item.sk), "\x80");
  assert.equal(bytes(g.Item.pk), "\x00p\xff");
  const q = await send(new D.QueryCommand({ TableName: T, KeyConditionExpression: "pk = :p",
    ExpressionAttributeValues: { ":p": B("\x00p\xff") } }));
  // unsigned bytewise order, a prefix first
  assert.deepEqual(q.Items.map((i) => bytes(i.sk)), sorted(sks).sort((a, b) =>
    Buffer.compare(Buffer.from(a, "latin1"), Buffer.from(b, "latin1"))));
  const back = await send(new D.QueryCommand({ TableName: T, ScanIndexForward: false,
    KeyConditionExpression: "pk = :p AND begins_with(sk, :x)",
    ExpressionAttributeValues: { ":p": B("\x00p\xff"), ":x": B("\x00") } }));
  assert.deepEqual(back.Items.map((i) => bytes(i.sk)), ["\x00\x01", "\x00"]);
  const range = await send(new D.QueryCommand({ TableName: T,
    KeyConditionExpression: "pk = :p AND sk BETWEEN :lo AND :hi",
    ExpressionAttributeValues: { ":p": B("\x00p\xff"), ":lo": B("a"), ":hi": B("\x80") } }));
  assert.deepEqual(range.Items.map((i) => bytes(i.sk)), ["a", "ab", "b", "\x7f", "\x80"]);
  // a string where the schema says B is the wrong type
  await assert.rejects(send(new D.GetItemCommand({ TableName: T, Key: { pk: { S: "x" }, sk: B("a") } })),
    (e) => e.name === "ValidationException" && /does not match the schema/.test(e.message));
});

both("number sort keys: numeric order across integers, fractions, exponents and 38 digits", async (send, tag) => {
  const T = `num_${tag}`;
  await create(send, { TableName: T, BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }, { AttributeName: "sk", AttributeType: "N" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }, { AttributeName: "sk", KeyType: "RANGE" }] });
  const written = ["-1E+10", "-1.5", "-0.000000000000000000001", "0", "0.1", "1", "1.00000000000000000001",
    "2", "1E2", "12345678901234567890123456789012345678", "9.9E+125"];
  for (const n of written) {
    await send(new D.PutItemCommand({ TableName: T, Item: { pk: { S: "p" }, sk: { N: n }, raw: { S: n } } }));
  }
  const q = await send(new D.QueryCommand({ TableName: T, KeyConditionExpression: "pk = :p",
    ExpressionAttributeValues: { ":p": { S: "p" } } }));
  assert.deepEqual(q.Items.map((i) => i.raw.S), written);
  // canonical digits: no exponent, no trailing zeros
  assert.deepEqual(q.Items.map((i) => i.sk.N), ["-10000000000", "-1.5", "-0.000000000000000000001", "0", "0.1",
    "1", "1.00000000000000000001", "2", "100",
    "12345678901234567890123456789012345678", "99" + "0".repeat(124)]);
  // the same number however written is the same key
  const g = await send(new D.GetItemCommand({ TableName: T, Key: { pk: { S: "p" }, sk: { N: "100.000" } } }));
  assert.equal(g.Item.raw.S, "1E2");
  const gt = await send(new D.QueryCommand({ TableName: T, KeyConditionExpression: "pk = :p AND sk > :x",
    ExpressionAttributeValues: { ":p": { S: "p" }, ":x": { N: "1.000000000000000000001" } } }));
  assert.deepEqual(gt.Items.map((i) => i.raw.S), ["1.00000000000000000001", "2", "1E2",
    "12345678901234567890123456789012345678", "9.9E+125"]);
});

both("exact decimal arithmetic in UpdateExpression and ADD", async (send, tag) => {
  const T = `dec_${tag}`;
  await create(send, { TableName: T, BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }] });
  await send(new D.PutItemCommand({ TableName: T, Item: { pk: { S: "a" }, n: { N: "0.1" },
    big: { N: "99999999999999999999999999999999999999" } } }));
  const u = await send(new D.UpdateItemCommand({ TableName: T, Key: { pk: { S: "a" } },
    UpdateExpression: "SET n = n + :d, m = :x - :y ADD c :one",
    ExpressionAttributeValues: { ":d": { N: "0.2" }, ":x": { N: "1" }, ":y": { N: "0.000000000000000000000000000000000001" },
      ":one": { N: "1" } },
    ReturnValues: "ALL_NEW" }));
  assert.equal(u.Attributes.n.N, "0.3");
  assert.equal(u.Attributes.m.N, "0.999999999999999999999999999999999999");
  assert.equal(u.Attributes.c.N, "1");
  // 38 nines and 1 make 1E38 (one significant digit); and a tenth more
  // would need 39 digits, which do not fit
  const b = await send(new D.UpdateItemCommand({ TableName: T, Key: { pk: { S: "a" } },
    UpdateExpression: "SET big = big + :one", ExpressionAttributeValues: { ":one": { N: "1" } },
    ReturnValues: "UPDATED_NEW" }));
  assert.equal(b.Attributes.big.N, "1" + "0".repeat(38));
  await send(new D.UpdateItemCommand({ TableName: T, Key: { pk: { S: "a" } },
    UpdateExpression: "SET big = :nines", ExpressionAttributeValues: { ":nines": { N: "9".repeat(38) } } }));
  // (dynalite takes it; DynamoDB says "Attempting to store more than 38
  // significant digits in a Number")
  if (tag !== "dyn") {
    await assert.rejects(send(new D.UpdateItemCommand({ TableName: T, Key: { pk: { S: "a" } },
      UpdateExpression: "SET big = big + :tenth", ExpressionAttributeValues: { ":tenth": { N: "0.1" } } })),
    (e) => e.name === "ValidationException" && /38 significant digits/.test(e.message));
  }
});

both("string, number and binary sets: round trip, ADD and DELETE, contains and size", async (send, tag) => {
  const T = `set_${tag}`;
  await create(send, { TableName: T, BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }] });
  const item = { pk: { S: "s" }, ss: { SS: ["b", "a", "c"] }, ns: { NS: ["10", "1.5", "-2"] },
    bs: { BS: [Buffer.from("y"), Buffer.from("x")] } };
  await send(new D.PutItemCommand({ TableName: T, Item: item }));
  let g = (await send(new D.GetItemCommand({ TableName: T, Key: { pk: { S: "s" } } }))).Item;
  assert.deepEqual(setOf(g.ss), { SS: ["a", "b", "c"] });
  assert.deepEqual(setOf(g.ns), { NS: ["-2", "1.5", "10"] });
  assert.deepEqual(setOf(g.bs), { BS: ["x", "y"] });
  await send(new D.UpdateItemCommand({ TableName: T, Key: { pk: { S: "s" } },
    UpdateExpression: "ADD ss :add, ns :n DELETE bs :del",
    ExpressionAttributeValues: { ":add": { SS: ["d", "a"] }, ":n": { NS: ["1.50", "3"] },
      ":del": { BS: [Buffer.from("x"), Buffer.from("zz")] } } }));
  g = (await send(new D.GetItemCommand({ TableName: T, Key: { pk: { S: "s" } } }))).Item;
  assert.deepEqual(setOf(g.ss), { SS: ["a", "b", "c", "d"] });
  assert.deepEqual(setOf(g.ns), { NS: ["-2", "1.5", "3", "10"] });
  assert.deepEqual(setOf(g.bs), { BS: ["y"] });
  // deleting every element removes the attribute
  await send(new D.UpdateItemCommand({ TableName: T, Key: { pk: { S: "s" } },
    UpdateExpression: "DELETE bs :all", ExpressionAttributeValues: { ":all": { BS: [Buffer.from("y")] } } }));
  g = (await send(new D.GetItemCommand({ TableName: T, Key: { pk: { S: "s" } } }))).Item;
  assert.equal(g.bs, undefined);
  // ADD to a missing attribute makes the set
  await send(new D.UpdateItemCommand({ TableName: T, Key: { pk: { S: "s" } },
    UpdateExpression: "ADD fresh :v", ExpressionAttributeValues: { ":v": { SS: ["only"] } } }));
  // set functions and comparisons
  const hit = async (expr, values) => (await send(new D.ScanCommand({ TableName: T, FilterExpression: expr,
    ExpressionAttributeValues: values }))).Count;
  assert.equal(await hit("contains(ss, :v)", { ":v": { S: "d" } }), 1);
  assert.equal(await hit("contains(ns, :v)", { ":v": { N: "3.0" } }), 1);
  assert.equal(await hit("contains(ss, :v)", { ":v": { S: "zz" } }), 0);
  assert.equal(await hit("size(ss) = :n", { ":n": { N: "4" } }), 1);
  assert.equal(await hit("ss = :same", { ":same": { SS: ["d", "c", "b", "a"] } }), 1);
  assert.equal(await hit("attribute_type(ns, :t)", { ":t": { S: "NS" } }), 1);
  assert.equal(await hit("attribute_type(fresh, :t)", { ":t": { S: "SS" } }), 1);
  // a type mismatch in ADD is refused
  await assert.rejects(send(new D.UpdateItemCommand({ TableName: T, Key: { pk: { S: "s" } },
    UpdateExpression: "ADD ss :v", ExpressionAttributeValues: { ":v": { NS: ["1"] } } })),
  (e) => e.name === "ValidationException");
});

both("a GSI keyed on a binary attribute", async (send, tag) => {
  const T = `gsib_${tag}`;
  await create(send, { TableName: T, BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }, { AttributeName: "g", AttributeType: "B" },
      { AttributeName: "n", AttributeType: "N" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
    GlobalSecondaryIndexes: [{ IndexName: "byg", Projection: { ProjectionType: "ALL" },
      KeySchema: [{ AttributeName: "g", KeyType: "HASH" }, { AttributeName: "n", KeyType: "RANGE" }] }] });
  for (let i = 0; i < 6; i++) {
    await send(new D.PutItemCommand({ TableName: T, Item: { pk: { S: "p" + i }, g: B(i % 2 ? "\xff" : "\x00"),
      n: { N: String(10 - i) + ".5" } } }));
  }
  const q = await send(new D.QueryCommand({ TableName: T, IndexName: "byg",
    KeyConditionExpression: "g = :g", ExpressionAttributeValues: { ":g": B("\xff") } }));
  assert.deepEqual(q.Items.map((i) => i.n.N), ["5.5", "7.5", "9.5"]);
  // an item whose index key has the wrong type is refused
  await assert.rejects(send(new D.PutItemCommand({ TableName: T, Item: { pk: { S: "bad" }, g: { S: "x" } } })),
    (e) => e.name === "ValidationException" && /Type mismatch for Index Key/.test(e.message));
});
