#!/usr/bin/env node
// serve-server.js -- start `dynafile serve` from this checkout on a free
// 127.0.0.1 port for tests and benchmarks, and print "PORT PID" on stdout
// once it answers (PID: the `dynafile serve` process).  Like
// dynalite-server.js it runs until it gets SIGTERM/SIGINT or its parent
// process exits, then stops the server and removes the data directory it
// made.
//
//   node tests/js/serve-server.js [--workers N] [--dir DIR] [-- SERVE-ARGS...]
//
// Without --dir the tables live in a new temporary directory.  SERVE-ARGS
// go to `dynafile serve` (e.g. -- --sync off --auth FILE).  Needs the
// LuaJIT build of the module (make LUA=luajit; make test builds it).
"use strict";
const { startServe } = require("./lib/serve");

const args = process.argv.slice(2);
const opts = { args: [] };
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--workers") opts.workers = Number(args[++i]);
  else if (args[i] === "--dir") opts.dir = args[++i];
  else if (args[i] === "--") { opts.args = args.slice(i + 1); break; }
  else {
    process.stderr.write(`serve-server: unknown argument ${args[i]}\n`);
    process.exit(2);
  }
}

startServe(opts).then((s) => {
  process.stdout.write(`${s.port} ${s.proc.pid}\n`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    s.stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  s.proc.on("exit", () => { if (!stopping) process.exit(1); });
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) stop();
  }, 500);
}, (e) => {
  process.stderr.write(`serve-server: ${e.message}\n`);
  process.exit(1);
});
