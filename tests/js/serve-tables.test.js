// serve-tables.test.js -- the table operations of `dynafile serve` through
// the AWS SDK for JavaScript v3: CreateTable, DescribeTable, ListTables,
// UpdateTable, DeleteTable, tags, TTL, DescribeEndpoints, DescribeLimits.
"use strict";
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const D = require("@aws-sdk/client-dynamodb");
const { startServe, rejects } = require("./lib/serve");

let s;
before(async () => { s = await startServe(); });
after(async () => { if (s) await s.stop(); });

const send = (cmd) => s.ddb.send(cmd);

const simple = (name, extra = {}) => new D.CreateTableCommand({
  TableName: name,
  AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
  KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
  BillingMode: "PAY_PER_REQUEST",
  ...extra,
});

test("CreateTable answers CREATING, then the table is ACTIVE and usable", async () => {
  const r = await send(simple("users"));
  const d = r.TableDescription;
  assert.equal(d.TableName, "users");
  assert.equal(d.TableStatus, "CREATING");
  assert.equal(d.TableArn, "arn:aws:dynamodb:us-east-1:000000000000:table/users");
  assert.match(d.TableId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.deepEqual(d.KeySchema, [{ AttributeName: "id", KeyType: "HASH" }]);
  assert.equal(d.BillingModeSummary.BillingMode, "PAY_PER_REQUEST");
  assert.ok(d.CreationDateTime instanceof Date);
  const t = (await send(new D.DescribeTableCommand({ TableName: "users" }))).Table;
  assert.equal(t.TableStatus, "ACTIVE");
  assert.equal(t.ItemCount, 0);
  await D.waitUntilTableExists({ client: s.ddb, maxWaitTime: 30 }, { TableName: "users" });
  await send(new D.PutItemCommand({ TableName: "users", Item: { id: { S: "u1" }, n: { N: "42" } } }));
  const g = await send(new D.GetItemCommand({ TableName: "users", Key: { id: { S: "u1" } } }));
  assert.deepEqual(g.Item, { id: { S: "u1" }, n: { N: "42" } });
});

test("CreateTable of an existing table is ResourceInUseException", async () => {
  await send(simple("dup_table"));
  await rejects(send(simple("dup_table")), "ResourceInUseException", "Table already exists: dup_table");
});

test("CreateTable checks names, key schemas and billing as DynamoDB does", async () => {
  await rejects(send(simple("ab")), "ValidationException",
    "1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 3");
  await rejects(send(simple("bad name!")), "ValidationException",
    "1 validation error detected: Value 'bad name!' at 'tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+");
  await rejects(send(new D.CreateTableCommand({
    TableName: "nokey", AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "other", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST",
  })), "ValidationException",
  "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [other], AttributeDefinitions: [id]");
  await rejects(send(new D.CreateTableCommand({
    TableName: "unused_defs", BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }, { AttributeName: "x", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
  })), "ValidationException",
  "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions");
  await rejects(send(new D.CreateTableCommand({
    TableName: "bad_type", BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "id", AttributeType: "BOOL" }],
    KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
  })), "ValidationException",
  "1 validation error detected: Value 'BOOL' at 'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]");
  await rejects(send(new D.CreateTableCommand({
    TableName: "no_throughput",
    AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
  })), "ValidationException", "No provisioned throughput specified for the table");
  await rejects(send(new D.CreateTableCommand({
    TableName: "range_first", BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "id", KeyType: "RANGE" }],
  })), "ValidationException", "Invalid KeySchema: The first KeySchemaElement is not a HASH key type");
  const names = (await send(new D.ListTablesCommand({}))).TableNames;
  for (const n of ["ab", "nokey", "unused_defs", "bad_type", "no_throughput", "range_first"]) {
    assert.ok(!names.includes(n), `${n} was not created`);
  }
});

test("ListTables pages in name order", async () => {
  for (const n of ["list_a", "list_b", "list_c"]) await send(simple(n));
  const all = [];
  let start;
  do {
    const r = await send(new D.ListTablesCommand({ Limit: 2, ExclusiveStartTableName: start }));
    assert.ok(r.TableNames.length <= 2);
    all.push(...r.TableNames);
    start = r.LastEvaluatedTableName;
  } while (start);
  assert.deepEqual(all, [...all].sort());
  for (const n of ["list_a", "list_b", "list_c"]) assert.ok(all.includes(n));
  await rejects(send(new D.ListTablesCommand({ Limit: 101 })), "ValidationException",
    "1 validation error detected: Value '101' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 100");
});

test("DeleteTable returns the short description and removes the table", async () => {
  await send(simple("to_delete"));
  const d = (await send(new D.DeleteTableCommand({ TableName: "to_delete" }))).TableDescription;
  assert.equal(d.TableStatus, "DELETING");
  assert.equal(d.TableName, "to_delete");
  assert.equal(d.KeySchema, undefined);
  assert.equal(d.AttributeDefinitions, undefined);
  await rejects(send(new D.DescribeTableCommand({ TableName: "to_delete" })), "ResourceNotFoundException");
  await rejects(send(new D.DeleteTableCommand({ TableName: "to_delete" })), "ResourceNotFoundException");
  await rejects(send(new D.GetItemCommand({ TableName: "to_delete", Key: { id: { S: "x" } } })),
    "ResourceNotFoundException", "Requested resource not found");
  // the name can be used again, for a fresh table
  await send(simple("to_delete"));
  const g = await send(new D.GetItemCommand({ TableName: "to_delete", Key: { id: { S: "x" } } }));
  assert.equal(g.Item, undefined);
});

test("Deletion protection refuses DeleteTable until it is turned off", async () => {
  await send(simple("protected", { DeletionProtectionEnabled: true }));
  await rejects(send(new D.DeleteTableCommand({ TableName: "protected" })), "ValidationException",
    /protected against deletion/);
  await send(new D.UpdateTableCommand({ TableName: "protected", DeletionProtectionEnabled: false }));
  await send(new D.DeleteTableCommand({ TableName: "protected" }));
});

test("Tags: TagResource, ListTagsOfResource, UntagResource", async () => {
  const arn = (await send(simple("tagged", { Tags: [{ Key: "a", Value: "1" }] }))).TableDescription.TableArn;
  await send(new D.TagResourceCommand({ ResourceArn: arn, Tags: [{ Key: "b", Value: "2" }] }));
  let tags = (await send(new D.ListTagsOfResourceCommand({ ResourceArn: arn }))).Tags;
  assert.deepEqual(tags, [{ Key: "a", Value: "1" }, { Key: "b", Value: "2" }]);
  await send(new D.UntagResourceCommand({ ResourceArn: arn, TagKeys: ["a"] }));
  tags = (await send(new D.ListTagsOfResourceCommand({ ResourceArn: arn }))).Tags;
  assert.deepEqual(tags, [{ Key: "b", Value: "2" }]);
  await rejects(send(new D.ListTagsOfResourceCommand({
    ResourceArn: "arn:aws:dynamodb:us-east-1:000000000000:table/no_such_table",
  })), "ResourceNotFoundException");
});

test("TTL: UpdateTimeToLive and DescribeTimeToLive", async () => {
  await send(simple("ttl_table"));
  let d = await send(new D.DescribeTimeToLiveCommand({ TableName: "ttl_table" }));
  assert.deepEqual(d.TimeToLiveDescription, { TimeToLiveStatus: "DISABLED" });
  const u = await send(new D.UpdateTimeToLiveCommand({
    TableName: "ttl_table", TimeToLiveSpecification: { Enabled: true, AttributeName: "expires" },
  }));
  assert.deepEqual(u.TimeToLiveSpecification, { Enabled: true, AttributeName: "expires" });
  d = await send(new D.DescribeTimeToLiveCommand({ TableName: "ttl_table" }));
  assert.deepEqual(d.TimeToLiveDescription, { TimeToLiveStatus: "ENABLED", AttributeName: "expires" });
  await rejects(send(new D.UpdateTimeToLiveCommand({
    TableName: "ttl_table", TimeToLiveSpecification: { Enabled: true, AttributeName: "expires" },
  })), "ValidationException", "TimeToLive is already enabled");
});

test("DescribeEndpoints and DescribeLimits answer", async () => {
  const e = await send(new D.DescribeEndpointsCommand({}));
  assert.equal(e.Endpoints.length, 1);
  assert.equal(e.Endpoints[0].Address, `127.0.0.1:${s.port}`);
  const l = await send(new D.DescribeLimitsCommand({}));
  assert.ok(l.TableMaxReadCapacityUnits > 0);
});

test("UpdateTable changes throughput, billing mode and streams", async () => {
  await send(new D.CreateTableCommand({
    TableName: "prov", AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
    KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
    ProvisionedThroughput: { ReadCapacityUnits: 5, WriteCapacityUnits: 5 },
  }));
  let d = (await send(new D.UpdateTableCommand({ TableName: "prov",
    ProvisionedThroughput: { ReadCapacityUnits: 10, WriteCapacityUnits: 5 } }))).TableDescription;
  assert.equal(d.ProvisionedThroughput.ReadCapacityUnits, 10);
  await rejects(send(new D.UpdateTableCommand({ TableName: "prov",
    ProvisionedThroughput: { ReadCapacityUnits: 10, WriteCapacityUnits: 5 } })), "ValidationException",
  /The provisioned throughput for the table will not change/);
  d = (await send(new D.UpdateTableCommand({ TableName: "prov", BillingMode: "PAY_PER_REQUEST" }))).TableDescription;
  assert.equal(d.BillingModeSummary.BillingMode, "PAY_PER_REQUEST");
  d = (await send(new D.UpdateTableCommand({ TableName: "prov",
    StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" } }))).TableDescription;
  assert.equal(d.StreamSpecification.StreamViewType, "NEW_AND_OLD_IMAGES");
  assert.match(d.LatestStreamArn, /^arn:aws:dynamodb:us-east-1:000000000000:table\/prov\/stream\/\d{4}-/);
  await rejects(send(new D.UpdateTableCommand({ TableName: "prov" })), "ValidationException",
    /At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled/);
  await rejects(send(new D.UpdateTableCommand({ TableName: "no_such_table", BillingMode: "PAY_PER_REQUEST" })),
    "ResourceNotFoundException");
});
