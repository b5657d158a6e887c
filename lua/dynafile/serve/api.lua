--- dynafile.serve.api: the request shape of every operation served.
--
-- Built from DynamoDB's API reference (2012-08-10) with the shape
-- constructors of shape.lua: member types, required members, lengths,
-- ranges, patterns and enums.  `M.DynamoDB` and `M.Streams` map an
-- operation name (the part of X-Amz-Target after the dot) to its shape.
--
-- Invariant: a member absent here is ignored by the server, as DynamoDB
-- ignores members it does not know; a member present here has been type
-- checked before an operation sees it.
-- @module dynafile.serve.api

local S = require "dynafile.serve.shape"

local string, integer, long, boolean = S.string, S.integer, S.long, S.boolean
local list, map, struct, value, item = S.list, S.map, S.struct, S.value, S.item

local M = {}

local NAME = S.NAME_PATTERN
local NAME_TEXT = S.NAME_PATTERN_TEXT

-- Table names.  Item operations take 1 to 255 characters, the table
-- operations 3 to 255; both also take a table ARN (tables.table_name).
-- The table operations report a missing name with "The parameter
-- 'TableName' is required ..." (`present`), the others as any missing
-- member.
local function table_name(required, min)
  return string { required = required, len_min = min or 1, len_max = 255, pattern = NAME,
    pattern_text = NAME_TEXT, arn_ok = true }
end
-- The TableName of an item write: an empty one is reported alone.
local function write_table_name()
  local s = table_name(true)
  s.stop_when_empty = true
  return s
end
local function control_table_name()
  local s = table_name(true, 3)
  s.present = "TableName"
  return s
end
local function index_name(required)
  return string { required = required, len_min = 3, len_max = 255, pattern = NAME,
    pattern_text = NAME_TEXT }
end

local RETURN_CONSUMED = string { enum = { "INDEXES", "TOTAL", "NONE" } }
local RETURN_METRICS = string { enum = { "SIZE", "NONE" } }
local RETURN_VALUES = string { enum = { "ALL_NEW", "UPDATED_OLD", "ALL_OLD", "NONE",
  "UPDATED_NEW" } }
local RETURN_ON_FAILURE = string { enum = { "ALL_OLD", "NONE" } }
local CONDITIONAL_OPERATOR = string { enum = { "OR", "AND" } }
local SELECT = string { enum = { "SPECIFIC_ATTRIBUTES", "COUNT", "ALL_ATTRIBUTES",
  "ALL_PROJECTED_ATTRIBUTES" } }
local COMPARISON = string { required = true, enum = { "IN", "NULL", "BETWEEN", "LT",
  "NOT_CONTAINS", "EQ", "GT", "NOT_NULL", "NE", "LE", "BEGINS_WITH", "GE", "CONTAINS" } }

local function names() return map(string(), nil, "String") end
local function values() return map(value()) end
local function attributes_to_get() return list(string { len_min = 1, len_max = 65535 },
  { len_min = 1 }) end
local function expression() return string() end

local CONDITION = struct("Condition", {
  { "AttributeValueList", list(value()) },
  { "ComparisonOperator", COMPARISON },
})
local function conditions() return map(CONDITION, nil, "Condition") end

local EXPECTED = map(struct("ExpectedAttributeValue", {
  { "Value", value() },
  { "Exists", boolean() },
  { "ComparisonOperator", string { enum = COMPARISON.enum } },
  { "AttributeValueList", list(value()) },
}), nil, "ExpectedAttributeValue")

local KEY_SCHEMA = list(struct("KeySchemaElement", {
  { "AttributeName", string { required = true, len_min = 1, len_max = 255 } },
  { "KeyType", string { required = true, enum = { "HASH", "RANGE" } } },
}), { len_min = 1, len_max = 2 })

local ATTRIBUTE_DEFINITIONS = list(struct("AttributeDefinition", {
  { "AttributeName", string { required = true, len_min = 1, len_max = 255 } },
  { "AttributeType", string { required = true, enum = { "B", "N", "S" } } },
}))

local PROJECTION = struct("Projection", {
  { "ProjectionType", string { enum = { "ALL", "INCLUDE", "KEYS_ONLY" } } },
  { "NonKeyAttributes", list(string { len_min = 1, len_max = 255 }, { len_min = 1,
    len_max = 20 }) },
})

local function throughput(required)
  return struct("ProvisionedThroughput", {
    { "ReadCapacityUnits", long { required = true, min = 1 } },
    { "WriteCapacityUnits", long { required = true, min = 1 } },
  }, { required = required })
end

local ON_DEMAND = struct("OnDemandThroughput", {
  { "MaxReadRequestUnits", long() },
  { "MaxWriteRequestUnits", long() },
})

local WARM = struct("WarmThroughput", {
  { "ReadUnitsPerSecond", long { min = 1 } },
  { "WriteUnitsPerSecond", long { min = 1 } },
})

local STREAM_SPEC = struct("StreamSpecification", {
  { "StreamEnabled", boolean { required = true } },
  { "StreamViewType", string { enum = { "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES",
    "KEYS_ONLY" } } },
})

local SSE_SPEC = struct("SSESpecification", {
  { "Enabled", boolean() },
  { "SSEType", string { enum = { "AES256", "KMS" } } },
  { "KMSMasterKeyId", string() },
})

local TAG = struct("Tag", {
  { "Key", string { required = true, len_min = 1, len_max = 128 } },
  { "Value", string { required = true, len_min = 0, len_max = 256 } },
})

local TABLE_CLASS = string { enum = { "STANDARD", "STANDARD_INFREQUENT_ACCESS" } }
local BILLING = string { enum = { "PROVISIONED", "PAY_PER_REQUEST" } }

local GSI = struct("GlobalSecondaryIndex", {
  { "IndexName", index_name(true) },
  { "KeySchema", S.list(KEY_SCHEMA.member, { required = true, len_min = 1, len_max = 2 }) },
  { "Projection", struct("Projection", PROJECTION.fields, { required = true }) },
  { "ProvisionedThroughput", throughput(false) },
  { "OnDemandThroughput", ON_DEMAND },
  { "WarmThroughput", WARM },
})

local LSI = struct("LocalSecondaryIndex", {
  { "IndexName", index_name(true) },
  { "KeySchema", S.list(KEY_SCHEMA.member, { required = true, len_min = 1, len_max = 2 }) },
  { "Projection", struct("Projection", PROJECTION.fields, { required = true }) },
})

-- ------------------------------------------------------------ control plane

local D = {}
M.DynamoDB = D

D.CreateTable = struct("CreateTableInput", {
  { "AttributeDefinitions", S.list(ATTRIBUTE_DEFINITIONS.member, { required = true }) },
  { "TableName", control_table_name() },
  { "KeySchema", S.list(KEY_SCHEMA.member, { required = true, len_min = 1, len_max = 2 }) },
  { "LocalSecondaryIndexes", list(LSI) },
  { "GlobalSecondaryIndexes", list(GSI) },
  { "BillingMode", BILLING },
  { "ProvisionedThroughput", throughput(false) },
  { "StreamSpecification", STREAM_SPEC },
  { "SSESpecification", SSE_SPEC },
  { "Tags", list(TAG) },
  { "TableClass", TABLE_CLASS },
  { "DeletionProtectionEnabled", boolean() },
  { "ResourcePolicy", string() },
  { "OnDemandThroughput", ON_DEMAND },
  { "WarmThroughput", WARM },
})

D.DeleteTable = struct("DeleteTableInput", { { "TableName", control_table_name() } })
D.DescribeTable = struct("DescribeTableInput", { { "TableName", control_table_name() } })
D.DescribeTimeToLive = struct("DescribeTimeToLiveInput", { { "TableName", control_table_name() } })
D.DescribeEndpoints = struct("DescribeEndpointsRequest", {})
D.DescribeLimits = struct("DescribeLimitsInput", {})
D.DescribeContinuousBackups = struct("DescribeContinuousBackupsInput", {
  { "TableName", table_name(true) },
})
D.UpdateContinuousBackups = struct("UpdateContinuousBackupsInput", {
  { "TableName", table_name(true) },
  { "PointInTimeRecoverySpecification", struct("PointInTimeRecoverySpecification", {
    { "PointInTimeRecoveryEnabled", boolean { required = true } },
    { "RecoveryPeriodInDays", integer { min = 1, max = 35 } },
  }, { required = true }) },
})

D.ListTables = struct("ListTablesInput", {
  { "ExclusiveStartTableName", string { len_min = 3, len_max = 255, pattern = NAME,
    pattern_text = NAME_TEXT } },
  { "Limit", integer { min = 1, max = 100 } },
})

D.UpdateTable = struct("UpdateTableInput", {
  { "AttributeDefinitions", ATTRIBUTE_DEFINITIONS },
  { "TableName", control_table_name() },
  { "BillingMode", BILLING },
  { "ProvisionedThroughput", throughput(false) },
  { "GlobalSecondaryIndexUpdates", list(struct("GlobalSecondaryIndexUpdate", {
    { "Update", struct("UpdateGlobalSecondaryIndexAction", {
      { "IndexName", index_name(true) },
      { "ProvisionedThroughput", throughput(false) },
      { "OnDemandThroughput", ON_DEMAND },
      { "WarmThroughput", WARM },
    }) },
    { "Create", struct("CreateGlobalSecondaryIndexAction", {
      { "IndexName", index_name(true) },
      { "KeySchema", S.list(KEY_SCHEMA.member, { required = true, len_min = 1, len_max = 2 }) },
      { "Projection", struct("Projection", PROJECTION.fields, { required = true }) },
      { "ProvisionedThroughput", throughput(false) },
      { "OnDemandThroughput", ON_DEMAND },
      { "WarmThroughput", WARM },
    }) },
    { "Delete", struct("DeleteGlobalSecondaryIndexAction", {
      { "IndexName", index_name(true) },
    }) },
  })) },
  { "StreamSpecification", STREAM_SPEC },
  { "SSESpecification", SSE_SPEC },
  { "ReplicaUpdates", list(struct("ReplicationGroupUpdate", {})) },
  { "TableClass", TABLE_CLASS },
  { "DeletionProtectionEnabled", boolean() },
  { "OnDemandThroughput", ON_DEMAND },
  { "WarmThroughput", WARM },
  { "MultiRegionConsistency", string { enum = { "EVENTUAL", "STRONG" } } },
})

D.UpdateTimeToLive = struct("UpdateTimeToLiveInput", {
  { "TableName", table_name(true) },
  { "TimeToLiveSpecification", struct("TimeToLiveSpecification", {
    { "Enabled", boolean { required = true } },
    { "AttributeName", string { required = true, len_min = 1, len_max = 255 } },
  }, { required = true }) },
})

local RESOURCE_ARN = string { required = true, len_min = 1, len_max = 1283 }

D.TagResource = struct("TagResourceInput", {
  { "ResourceArn", RESOURCE_ARN },
  { "Tags", S.list(TAG, { required = true }) },
})
D.UntagResource = struct("UntagResourceInput", {
  { "ResourceArn", RESOURCE_ARN },
  { "TagKeys", S.list(string { len_min = 1, len_max = 128 }, { required = true }) },
})
D.ListTagsOfResource = struct("ListTagsOfResourceInput", {
  { "ResourceArn", RESOURCE_ARN },
  { "NextToken", string() },
})

-- ------------------------------------------------------------ items

D.GetItem = struct("GetItemInput", {
  { "TableName", table_name(true) },
  { "Key", item { required = true } },
  { "AttributesToGet", attributes_to_get() },
  { "ConsistentRead", boolean() },
  { "ReturnConsumedCapacity", RETURN_CONSUMED },
  { "ProjectionExpression", expression() },
  { "ExpressionAttributeNames", names() },
})

D.PutItem = struct("PutItemInput", {
  { "TableName", write_table_name() },
  { "Item", item { required = true } },
  { "Expected", EXPECTED },
  { "ReturnValues", RETURN_VALUES },
  { "ReturnConsumedCapacity", RETURN_CONSUMED },
  { "ReturnItemCollectionMetrics", RETURN_METRICS },
  { "ConditionalOperator", CONDITIONAL_OPERATOR },
  { "ConditionExpression", expression() },
  { "ExpressionAttributeNames", names() },
  { "ExpressionAttributeValues", values() },
  { "ReturnValuesOnConditionCheckFailure", RETURN_ON_FAILURE },
})

D.DeleteItem = struct("DeleteItemInput", {
  { "TableName", write_table_name() },
  { "Key", item { required = true } },
  { "Expected", EXPECTED },
  { "ConditionalOperator", CONDITIONAL_OPERATOR },
  { "ReturnValues", RETURN_VALUES },
  { "ReturnConsumedCapacity", RETURN_CONSUMED },
  { "ReturnItemCollectionMetrics", RETURN_METRICS },
  { "ConditionExpression", expression() },
  { "ExpressionAttributeNames", names() },
  { "ExpressionAttributeValues", values() },
  { "ReturnValuesOnConditionCheckFailure", RETURN_ON_FAILURE },
})

D.UpdateItem = struct("UpdateItemInput", {
  { "TableName", write_table_name() },
  { "Key", item { required = true } },
  { "AttributeUpdates", map(struct("AttributeValueUpdate", {
    { "Value", value() },
    { "Action", string { enum = { "ADD", "PUT", "DELETE" } } },
  }), nil, "AttributeValueUpdate") },
  { "Expected", EXPECTED },
  { "ConditionalOperator", CONDITIONAL_OPERATOR },
  { "ReturnValues", RETURN_VALUES },
  { "ReturnConsumedCapacity", RETURN_CONSUMED },
  { "ReturnItemCollectionMetrics", RETURN_METRICS },
  { "UpdateExpression", expression() },
  { "ConditionExpression", expression() },
  { "ExpressionAttributeNames", names() },
  { "ExpressionAttributeValues", values() },
  { "ReturnValuesOnConditionCheckFailure", RETURN_ON_FAILURE },
})
-- DynamoDB reports only the first of UpdateItem's enum members it refuses
D.UpdateItem.first_enum_only = true

-- ------------------------------------------------------------ reads

D.Query = struct("QueryInput", {
  { "TableName", table_name(true) },
  { "IndexName", index_name(false) },
  { "Select", SELECT },
  { "AttributesToGet", attributes_to_get() },
  { "Limit", integer { min = 1, display = "Limit", hide_value = true } },
  { "ConsistentRead", boolean() },
  { "KeyConditions", conditions() },
  { "QueryFilter", conditions() },
  { "ConditionalOperator", CONDITIONAL_OPERATOR },
  { "ScanIndexForward", boolean() },
  { "ExclusiveStartKey", item() },
  { "ReturnConsumedCapacity", RETURN_CONSUMED },
  { "ProjectionExpression", expression() },
  { "FilterExpression", expression() },
  { "KeyConditionExpression", expression() },
  { "ExpressionAttributeNames", names() },
  { "ExpressionAttributeValues", values() },
})

D.Scan = struct("ScanInput", {
  { "TableName", table_name(true) },
  { "IndexName", index_name(false) },
  { "AttributesToGet", attributes_to_get() },
  -- DynamoDB words a Scan's Limit as most members ("Value '0' at 'limit'"),
  -- a Query's without the value and capitalised
  { "Limit", integer { min = 1 } },
  { "Select", SELECT },
  { "ScanFilter", conditions() },
  { "ConditionalOperator", CONDITIONAL_OPERATOR },
  { "ExclusiveStartKey", item() },
  { "ReturnConsumedCapacity", RETURN_CONSUMED },
  { "TotalSegments", integer { min = 1, max = 1000000 } },
  { "Segment", integer { min = 0, max = 999999 } },
  { "ProjectionExpression", expression() },
  { "FilterExpression", expression() },
  { "ExpressionAttributeNames", names() },
  { "ExpressionAttributeValues", values() },
  { "ConsistentRead", boolean() },
})

-- ------------------------------------------------------------ batches
-- (the counts of keys and requests are checked by batch.lua, which words
-- them as DynamoDB does)

D.BatchGetItem = struct("BatchGetItemInput", {
  { "RequestItems", map(struct("KeysAndAttributes", {
    { "Keys", list(item(), { required = true }) },
    { "AttributesToGet", attributes_to_get() },
    { "ConsistentRead", boolean() },
    { "ProjectionExpression", expression() },
    { "ExpressionAttributeNames", names() },
  }), { required = true }, "KeysAndAttributes") },
  { "ReturnConsumedCapacity", RETURN_CONSUMED },
})
D.BatchGetItem.fields[1][2].key = { len_min = 1, len_max = 1024 }

D.BatchWriteItem = struct("BatchWriteItemInput", {
  { "RequestItems", map(list(struct("WriteRequest", {
    { "PutRequest", struct("PutRequest", { { "Item", item { required = true } } }) },
    { "DeleteRequest", struct("DeleteRequest", { { "Key", item { required = true } } }) },
  })), { required = true }, "WriteRequest") },
  { "ReturnConsumedCapacity", RETURN_CONSUMED },
  { "ReturnItemCollectionMetrics", RETURN_METRICS },
})
D.BatchWriteItem.fields[1][2].key = { len_min = 1, len_max = 1024 }

-- ------------------------------------------------------------ transactions

-- An action of TransactWriteItems: its own members (`fields`), then the
-- members every action has, the condition required only for
-- ConditionCheck.
local function transact_part(java, fields, condition_required)
  fields[#fields + 1] = { "TableName", table_name(true) }
  fields[#fields + 1] = { "ConditionExpression", string { required = condition_required } }
  fields[#fields + 1] = { "ExpressionAttributeNames", names() }
  fields[#fields + 1] = { "ExpressionAttributeValues", values() }
  fields[#fields + 1] = { "ReturnValuesOnConditionCheckFailure", RETURN_ON_FAILURE }
  return struct(java, fields)
end

D.TransactWriteItems = struct("TransactWriteItemsInput", {
  { "TransactItems", list(struct("TransactWriteItem", {
    { "ConditionCheck", transact_part("ConditionCheck", {
      { "Key", item { required = true } },
    }, true) },
    { "Put", transact_part("Put", {
      { "Item", item { required = true } },
    }) },
    { "Delete", transact_part("Delete", {
      { "Key", item { required = true } },
    }) },
    { "Update", transact_part("Update", {
      { "Key", item { required = true } },
      { "UpdateExpression", string { required = true } },
    }) },
  }), { required = true, len_min = 1, len_max = 100 }) },
  { "ReturnConsumedCapacity", RETURN_CONSUMED },
  { "ReturnItemCollectionMetrics", RETURN_METRICS },
  { "ClientRequestToken", string { len_min = 1, len_max = 36 } },
})

D.TransactGetItems = struct("TransactGetItemsInput", {
  { "TransactItems", list(struct("TransactGetItem", {
    { "Get", struct("Get", {
      { "Key", item { required = true } },
      { "TableName", table_name(true) },
      { "ProjectionExpression", string() },
      { "ExpressionAttributeNames", names() },
    }, { required = true }) },
  }), { required = true, len_min = 1, len_max = 100 }) },
  { "ReturnConsumedCapacity", RETURN_CONSUMED },
})

-- ------------------------------------------------------------ PartiQL

local PARAMETERS = list(value(), { len_min = 1 })
local STATEMENT = string { required = true, len_min = 1, len_max = 8192 }

D.ExecuteStatement = struct("ExecuteStatementInput", {
  { "Statement", STATEMENT },
  { "Parameters", PARAMETERS },
  { "ConsistentRead", boolean() },
  { "NextToken", string { len_min = 1, len_max = 32768 } },
  { "ReturnConsumedCapacity", RETURN_CONSUMED },
  { "Limit", integer { min = 1, display = "Limit", hide_value = true } },
  { "ReturnValuesOnConditionCheckFailure", RETURN_ON_FAILURE },
})

D.BatchExecuteStatement = struct("BatchExecuteStatementInput", {
  { "Statements", list(struct("BatchStatementRequest", {
    { "Statement", STATEMENT },
    { "Parameters", PARAMETERS },
    { "ConsistentRead", boolean() },
    { "ReturnValuesOnConditionCheckFailure", RETURN_ON_FAILURE },
  }), { required = true, len_min = 1, len_max = 25 }) },
  { "ReturnConsumedCapacity", RETURN_CONSUMED },
})

D.ExecuteTransaction = struct("ExecuteTransactionInput", {
  { "TransactStatements", list(struct("ParameterizedStatement", {
    { "Statement", STATEMENT },
    { "Parameters", PARAMETERS },
    { "ReturnValuesOnConditionCheckFailure", RETURN_ON_FAILURE },
  }), { required = true, len_min = 1, len_max = 100 }) },
  { "ClientRequestToken", string { len_min = 1, len_max = 36 } },
  { "ReturnConsumedCapacity", RETURN_CONSUMED },
})

-- ------------------------------------------------------------ streams

local STREAM_ARN = string { required = true, len_min = 37, len_max = 1024 }
local Streams = {}
M.Streams = Streams

Streams.ListStreams = struct("ListStreamsInput", {
  { "TableName", string { len_min = 3, len_max = 255, pattern = NAME, pattern_text = NAME_TEXT } },
  { "Limit", integer { min = 1, max = 100 } },
  { "ExclusiveStartStreamArn", string { len_min = 37, len_max = 1024 } },
})
Streams.DescribeStream = struct("DescribeStreamInput", {
  { "StreamArn", STREAM_ARN },
  { "Limit", integer { min = 1, max = 100 } },
  { "ExclusiveStartShardId", string { len_min = 28, len_max = 65 } },
})
Streams.GetShardIterator = struct("GetShardIteratorInput", {
  { "StreamArn", STREAM_ARN },
  { "ShardId", string { required = true, len_min = 28, len_max = 65 } },
  { "ShardIteratorType", string { required = true, enum = { "TRIM_HORIZON", "LATEST",
    "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER" } } },
  { "SequenceNumber", string { len_min = 21, len_max = 40 } },
})
Streams.GetRecords = struct("GetRecordsInput", {
  { "ShardIterator", string { required = true, len_min = 1, len_max = 2048 } },
  { "Limit", integer { min = 1, max = 1000 } },
})

return M
