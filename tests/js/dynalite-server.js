#!/usr/bin/env node
// dynalite-server.js -- start dynalite (an in-memory DynamoDB API server)
// on a free 127.0.0.1 port for tests, and print "PORT PID" on stdout once
// it listens.  It runs until it gets SIGTERM/SIGINT or its parent process
// exits, so a test that dies cannot leave it behind.
//
//   node tests/js/dynalite-server.js [--port N]   (default: any free port)
//
// Tables are created and deleted at once (createTableMs = deleteTableMs =
// updateTableMs = 0), as dynafile serve does.
"use strict";
const dynalite = require("dynalite");

const args = process.argv.slice(2);
let port = 0;
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--port") port = Number(args[++i]);
  else {
    process.stderr.write(`dynalite-server: unknown argument ${args[i]}\n`);
    process.exit(2);
  }
}

const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`${server.address().port} ${process.pid}\n`);
});
server.on("error", (e) => {
  process.stderr.write(`dynalite-server: ${e.message}\n`);
  process.exit(1);
});
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) stop();
}, 500).unref();
