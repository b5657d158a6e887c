// serve-process.test.js -- `dynafile serve` as a process: it starts fast,
// stops cleanly on SIGINT and SIGTERM, refuses a second server on one
// data directory, keeps its tables across restarts, and loses no
// acknowledged write when workers are killed with SIGKILL under load
// (nginx restarts them; the other workers keep answering).
"use strict";
const { test } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const D = require("@aws-sdk/client-dynamodb");
const { startServe, sleep } = require("./lib/serve");

function children(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/)
      .filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
const master = (s) => children(s.proc.pid)[0];
const workers = (s) => children(master(s));

test("starts (first request answered) well under a second, and stops on SIGTERM and SIGINT", async () => {
  const t0 = Date.now();
  const s = await startServe({ workers: 2 });
  const ms = Date.now() - t0;
  assert.ok(ms < 1500, `started in ${ms} ms`);
  assert.equal(workers(s).length, 2);
  const m = master(s);
  const r = await s.stop("SIGTERM");
  assert.ok(r.code === 0 || r.sig === "SIGTERM", JSON.stringify(r));
  // nginx follows its launcher out (the kernel signals it when the parent exits)
  // (it is not our child: gone, or a zombie left for init to reap)
  const gone = () => {
    try { return /^State:\s+Z/m.test(fs.readFileSync(`/proc/${m}/status`, "utf8")); } catch { return true; }
  };
  let stopped = false;
  for (let i = 0; i < 60 && !stopped; i++) {
    await sleep(50);
    stopped = gone();
  }
  assert.ok(stopped, "nginx stopped");
  const s2 = await startServe({ workers: 1 });
  const r2 = await s2.stop("SIGINT");
  assert.ok(r2.code === 0 || r2.sig === "SIGINT", JSON.stringify(r2));
});

test("a missing nginx or Lua module is named with the Debian packages to install", () => {
  const { spawnSync } = require("node:child_process");
  const { ROOT } = require("./lib/serve");
  const run = (env) => spawnSync("lua5.4", [path.join(ROOT, "bin/dynafile"), "serve", "/tmp/never-made", "--port", "1"], {
    encoding: "utf8",
    env: { ...process.env, LUA_PATH: `${ROOT}/lua/?.lua;${ROOT}/lua/?/init.lua;;`, LUA_CPATH: `${ROOT}/build/lua5.4/?.so;;`,
      ...env } });
  let r = run({ DYNAFILE_NGINX: "/nonexistent/nginx" });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /nginx is not installed: install the Debian packages nginx-light and libnginx-mod-http-lua/);
  r = run({ DYNAFILE_NGINX_MODULES: "/nonexistent" });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /nginx's Lua module is not installed: install the Debian package libnginx-mod-http-lua/);
});

test("a second server on the same data directory is refused; data survives a restart", async () => {
  const s = await startServe({ workers: 1, keep: true });
  await s.ddb.send(new D.CreateTableCommand({ TableName: "kept", BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "id", KeyType: "HASH" }] }));
  await s.ddb.send(new D.PutItemCommand({ TableName: "kept", Item: { id: { S: "a" }, v: { N: "1" } } }));
  await assert.rejects(startServe({ workers: 1, dir: s.dir }),
    /another dynafile serve is using .*\(its nginx master: pid \d+\)/);
  // nginx's reload (SIGHUP to its master) is refused; the workers go on
  const master = Number(fs.readFileSync(path.join(s.dir, "@serve/lock"), "utf8"));
  process.kill(master, "SIGHUP");
  for (let i = 0; i < 100 && !/cannot reload/.test(s.log()); i++) await sleep(50);
  assert.match(s.log(), /nginx cannot reload its configuration under dynafile serve/);
  const g0 = await s.ddb.send(new D.GetItemCommand({ TableName: "kept", Key: { id: { S: "a" } } }));
  assert.deepEqual(g0.Item, { id: { S: "a" }, v: { N: "1" } });
  await s.stop();
  const s2 = await startServe({ workers: 1, dir: s.dir });
  try {
    const g = await s2.ddb.send(new D.GetItemCommand({ TableName: "kept", Key: { id: { S: "a" } } }));
    assert.deepEqual(g.Item, { id: { S: "a" }, v: { N: "1" } });
  } finally {
    await s2.stop();
    fs.rmSync(s.dir, { recursive: true, force: true });
  }
});

test("workers killed with SIGKILL under load lose no acknowledged write", async () => {
  const s = await startServe({ workers: 4 });
  try {
    await s.ddb.send(new D.CreateTableCommand({ TableName: "load", BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "id", KeyType: "HASH" }] }));
    const acked = new Map();
    let failures = 0;
    let stop = false;
    // 8 clients, each with its own connections, writing distinct keys
    const clients = Array.from({ length: 8 }, () => s.clients().ddb);
    const writers = clients.map(async (c, w) => {
      for (let i = 0; !stop; i++) {
        const id = `w${w}-${i}`;
        try {
          await c.send(new D.PutItemCommand({ TableName: "load", Item: { id: { S: id }, n: { N: String(i) } } }));
          acked.set(id, String(i));
        } catch {
          failures++; // a request in flight on a killed worker: not acknowledged
        }
      }
    });
    const killed = [];
    const deadline = Date.now() + 4000;
    while (Date.now() < deadline) {
      await sleep(250);
      const ws = workers(s);
      if (ws.length > 0) {
        const victim = ws[Math.floor(Math.random() * ws.length)];
        try { process.kill(victim, "SIGKILL"); killed.push(victim); } catch { /* already gone */ }
      }
    }
    stop = true;
    await Promise.all(writers);
    for (const c of clients) c.destroy();
    assert.ok(killed.length >= 10, `killed ${killed.length} workers`);
    assert.ok(acked.size > 100, `only ${acked.size} writes were acknowledged`);
    // nginx restarted the workers
    let ws = [];
    for (let i = 0; i < 50 && ws.length !== 4; i++) {
      await sleep(100);
      ws = workers(s);
    }
    assert.equal(ws.length, 4, "nginx runs 4 workers again");
    for (const k of killed) assert.ok(!ws.includes(k));
    // every acknowledged write is there, read back through every worker
    const ids = [...acked.keys()];
    for (let i = 0; i < ids.length; i += 100) {
      const keys = ids.slice(i, i + 100).map((id) => ({ id: { S: id } }));
      const r = await s.ddb.send(new D.BatchGetItemCommand({ RequestItems: { load: { Keys: keys } } }));
      const got = new Map(r.Responses.load.map((it) => [it.id.S, it.n.N]));
      for (const k of keys) assert.equal(got.get(k.id.S), acked.get(k.id.S), `acknowledged write ${k.id.S}`);
    }
    console.log(`# ${acked.size} acknowledged writes checked, ${failures} requests failed in flight, `
      + `${killed.length} workers killed`);
  } finally {
    await s.stop();
  }
});

test("concurrent PutItems (grouped into shared commits in a worker) are each answered after their write", async () => {
  // One worker, many connections: the worker groups the PutItems it has in
  // hand into one transaction (lua/dynafile/serve/group.lua).  Every
  // answered PutItem must be readable at once, through another client, and
  // a refused one in the crowd gets its own error without hurting the others.
  const s = await startServe({ workers: 1 });
  try {
    await s.ddb.send(new D.CreateTableCommand({ TableName: "grp", BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }, { AttributeName: "g", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      GlobalSecondaryIndexes: [{ IndexName: "by_g", KeySchema: [{ AttributeName: "g", KeyType: "HASH" }],
        Projection: { ProjectionType: "KEYS_ONLY" } }] }));
    const writers = Array.from({ length: 16 }, () => s.clients().ddb);
    const reader = s.clients().ddb;
    let refused = 0;
    await Promise.all(writers.map(async (c, w) => {
      for (let i = 0; i < 40; i++) {
        const id = `c${w}-${i}`;
        if (i % 10 === 7) {
          // a GSI key of the wrong type: ValidationException, nothing written
          await assert.rejects(c.send(new D.PutItemCommand({ TableName: "grp",
            Item: { id: { S: id }, g: { N: "1" } } })), (e) => e.name === "ValidationException");
          refused++;
          continue;
        }
        await c.send(new D.PutItemCommand({ TableName: "grp", Item: { id: { S: id }, g: { S: `g${w}` }, n: { N: String(i) } } }));
        const got = await reader.send(new D.GetItemCommand({ TableName: "grp", Key: { id: { S: id } },
          ConsistentRead: true }));
        assert.deepEqual(got.Item && got.Item.n, { N: String(i) }, `${id} readable once answered`);
      }
    }));
    const scan = await s.ddb.send(new D.ScanCommand({ TableName: "grp", Select: "COUNT" }));
    assert.equal(scan.Count, 16 * 40 - refused);
    const q = await s.ddb.send(new D.QueryCommand({ TableName: "grp", IndexName: "by_g",
      KeyConditionExpression: "g = :g", ExpressionAttributeValues: { ":g": { S: "g3" } } }));
    assert.equal(q.Count, 40 - 4);
    for (const c of [...writers, reader]) c.destroy();
  } finally {
    await s.stop();
  }
});
