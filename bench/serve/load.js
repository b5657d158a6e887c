// bench/serve/load.js -- create the bench table on a DynamoDB endpoint and
// load PARTITIONS partitions of 10 items (make bench-serve).
//   node bench/serve/load.js ENDPOINT TABLE PARTITIONS
"use strict";
const path = require("node:path");
const D = require(path.join(__dirname, "../../tests/js/node_modules/@aws-sdk/client-dynamodb"));

async function main() {
  const [endpoint, table, parts] = process.argv.slice(2);
  const ddb = new D.DynamoDBClient({ endpoint, region: "us-east-1",
    credentials: { accessKeyId: "AKIDBENCH", secretAccessKey: "secret" } });
  await ddb.send(new D.CreateTableCommand({ TableName: table, BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }, { AttributeName: "sk", AttributeType: "N" }],
    KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }, { AttributeName: "sk", KeyType: "RANGE" }] }));
  await D.waitUntilTableExists({ client: ddb, maxWaitTime: 60 }, { TableName: table });
  const n = Number(parts);
  const pending = [];
  for (let p = 1; p <= n; p++) {
    const reqs = [];
    for (let s = 1; s <= 10; s++) {
      reqs.push({ PutRequest: { Item: { pk: { S: "p" + p }, sk: { N: String(s) },
        v: { S: "x".repeat(64) }, n: { N: String(p * 10 + s) } } } });
    }
    pending.push(ddb.send(new D.BatchWriteItemCommand({ RequestItems: { [table]: reqs } })));
    if (pending.length >= 16) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  ddb.destroy();
}
main().catch((e) => { console.error(e); process.exit(1); });
