// tests/js/lib/serve.js -- start `dynafile serve` for a test: a fresh data
// directory, a free 127.0.0.1 port, and AWS SDK clients pointed at it.
//
//   const { startServe, rejects } = require("./lib/serve");
//   const s = await startServe({ workers: 2 });   // s.endpoint, s.ddb, s.streams
//   ...
//   await s.stop();                               // SIGTERM, waits, removes the dir
//   await rejects(promise, "ValidationException", /message/);  // the error, checked
//
// The server runs from this checkout (bin/dynafile with lua5.4 and the
// LuaJIT module in build/luajit: `make LUA=luajit`).  DYNAFILE_ROOT
// overrides the checkout, DYNAFILE_SERVE_LUA the Lua that runs the command.
"use strict";
const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const http = require("node:http");
const { DynamoDBClient } = require("@aws-sdk/client-dynamodb");
const { DynamoDBStreamsClient } = require("@aws-sdk/client-dynamodb-streams");

const ROOT = process.env.DYNAFILE_ROOT || path.resolve(__dirname, "../../..");

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function get(url) {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on("error", () => resolve(0));
    req.setTimeout(1000, () => { req.destroy(); resolve(0); });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function clients(endpoint, credentials) {
  const config = {
    endpoint,
    region: "us-east-1",
    credentials: credentials || { accessKeyId: "AKIDTEST", secretAccessKey: "secret" },
    maxAttempts: 1,
  };
  return { ddb: new DynamoDBClient(config), streams: new DynamoDBStreamsClient(config) };
}

// Start a server.  opts: workers (default 2), dir (default a new temp dir,
// removed by stop), args (more command-line arguments), env.
async function startServe(opts = {}) {
  const dir = opts.dir || fs.mkdtempSync(path.join(os.tmpdir(), "dynafile-serve-"));
  const lua = process.env.DYNAFILE_SERVE_LUA || "lua5.4";
  let lastErr = "";
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const args = [path.join(ROOT, "bin/dynafile"), "serve", dir, "--port", String(port),
      "--workers", String(opts.workers || 2), ...(opts.args || [])];
    const env = {
      ...process.env,
      LUA_PATH: `${ROOT}/lua/?.lua;${ROOT}/lua/?/init.lua;;`,
      LUA_CPATH: `${ROOT}/build/${lua === "luajit" ? "luajit" : lua}/?.so;;`,
      ...(opts.env || {}),
    };
    // its own process group, so SIGINT can go to the whole group, as a
    // terminal's Ctrl-C does
    const proc = spawn(lua, args, { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let log = "";
    proc.stdout.on("data", (d) => { log += d; });
    proc.stderr.on("data", (d) => { log += d; });
    const exited = new Promise((resolve) => proc.on("exit", (code, sig) => resolve({ code, sig })));
    let done = false;
    exited.then(() => { done = true; });
    const endpoint = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 10000;
    while (!done && Date.now() < deadline) {
      if ((await get(endpoint + "/")) === 200) {
        const c = clients(endpoint, opts.credentials);
        return {
          endpoint, port, dir, proc, ...c,
          log: () => log,
          clients: (cred) => clients(endpoint, cred),
          // stop("SIGTERM") signals the `dynafile serve` process;
          // stop("SIGINT") its process group, like Ctrl-C in a terminal
          async stop(signal = "SIGTERM") {
            c.ddb.destroy();
            c.streams.destroy();
            if (!done) {
              if (signal === "SIGINT") process.kill(-proc.pid, signal);
              else proc.kill(signal);
            }
            const r = await exited;
            if (!opts.dir && !opts.keep) fs.rmSync(dir, { recursive: true, force: true });
            return r;
          },
        };
      }
      await sleep(20);
    }
    if (!done) proc.kill("SIGKILL");
    await exited;
    lastErr = log;
    if (!/Address already in use/.test(log)) break;
  }
  if (!opts.dir) fs.rmSync(dir, { recursive: true, force: true });
  throw new Error("dynafile serve did not start:\n" + lastErr);
}

// Await promise p and check that it is refused with the error named `name`
// and, when given, the message `message` (a string, or a RegExp to match);
// returns the error.
async function rejects(p, name, message) {
  let err;
  await assert.rejects(p, (e) => {
    assert.equal(e.name, name, `${e.name}: ${e.message}`);
    if (message instanceof RegExp) assert.match(e.message, message);
    else if (message !== undefined) assert.equal(e.message, message);
    err = e;
    return true;
  });
  return err;
}

module.exports = { startServe, freePort, ROOT, sleep, rejects };
