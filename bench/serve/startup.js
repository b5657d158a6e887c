// bench/serve/startup.js -- how long `dynafile serve` takes from launch to
// its first answered request (make bench-serve).  Starts it RUNS times on
// a fresh data directory, each time polling ListTables every millisecond
// until it answers, and prints "STARTUP median_ms min_ms max_ms".
//   node bench/serve/startup.js ROOT PORT [RUNS]
"use strict";
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const os = require("node:os");
const path = require("node:path");

const [root, port, runs = "5"] = process.argv.slice(2);

function ask() {
  return new Promise((resolve) => {
    const req = http.request({ host: "127.0.0.1", port, path: "/", method: "POST",
      headers: { "X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0" } },
    (res) => { res.resume(); res.on("end", () => resolve(res.statusCode === 200)); });
    req.on("error", () => resolve(false));
    req.end("{}");
  });
}

async function once() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dynafile-startup-"));
  const t0 = process.hrtime.bigint();
  const p = spawn("lua5.4", [path.join(root, "bin/dynafile"), "serve", dir, "--port", port], {
    env: { ...process.env, LUA_PATH: `${root}/lua/?.lua;${root}/lua/?/init.lua;;`,
      LUA_CPATH: `${root}/build/lua5.4/?.so;;` }, stdio: "ignore" });
  let ms = null;
  for (let i = 0; i < 10000; i++) {
    if (await ask()) {
      ms = Number(process.hrtime.bigint() - t0) / 1e6;
      break;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  p.kill("SIGTERM");
  await new Promise((r) => p.on("exit", r));
  await new Promise((r) => setTimeout(r, 300));
  fs.rmSync(dir, { recursive: true, force: true });
  return ms;
}

(async () => {
  const times = [];
  for (let i = 0; i < Number(runs); i++) {
    const t = await once();
    if (t === null) { console.error("dynafile serve did not answer"); process.exit(1); }
    times.push(t);
  }
  times.sort((a, b) => a - b);
  console.log(`STARTUP ${times[Math.floor(times.length / 2)].toFixed(1)} ${times[0].toFixed(1)} `
    + `${times[times.length - 1].toFixed(1)}`);
})();
