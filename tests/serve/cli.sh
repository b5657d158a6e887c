#!/usr/bin/env bash
# cli.sh -- `dynafile serve` driven by the AWS CLI (Debian's awscli), run
# by tests/serve.sh.  Starts a server on a free 127.0.0.1 port with a
# temporary data directory, then runs the CLI's dynamodb and
# dynamodbstreams commands against it, checking each answer with the
# CLI's own --query (JMESPath).  The last line is "N passed, N failed".
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $1${2:+: $2}"; }
finish() { echo "$PASS passed, $FAIL failed"; [ "$FAIL" -eq 0 ]; exit; }

AWS=/usr/bin/aws
[ -x "$AWS" ] || { bad "prerequisite: $AWS" "install the Debian package awscli"; finish; }
T=$(mktemp -d /tmp/dynafile-serve-cli.XXXXXX)
PID=""
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID"
    for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;"
export LUA_CPATH="$ROOT/build/lua5.4/?.so;;"
start() {
  for _ in 1 2 3 4 5; do
    # below the kernel's ephemeral range (32768-60999 by default): a
    # client connection of another test never holds it (nginx would log
    # an [emerg] bind() failure while it retried)
    PORT=$((20000 + RANDOM % 12000))
    lua5.4 "$ROOT/bin/dynafile" serve "$T/data" --port "$PORT" --workers 2 >"$T/serve.log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do
      curl -s -o /dev/null "http://127.0.0.1:$PORT/" && return 0
      kill -0 "$PID" 2>/dev/null || break
      sleep 0.05
    done
    kill "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
    grep -q "Address already in use" "$T/serve.log" || break
  done
  return 1
}
start || { bad "dynafile serve starts" "$(cat "$T/serve.log")"; finish; }
ok "dynafile serve starts on port $PORT"

export AWS_ACCESS_KEY_ID=AKIDCLITEST AWS_SECRET_ACCESS_KEY=secret AWS_DEFAULT_REGION=eu-west-1
export AWS_PAGER="" AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
ddb() { "$AWS" --endpoint-url "http://127.0.0.1:$PORT" dynamodb "$@"; }
streams() { "$AWS" --endpoint-url "http://127.0.0.1:$PORT" dynamodbstreams "$@"; }

# check NAME EXPECTED COMMAND...: the command's output (text, runs of white
# space read as one space) must equal EXPECTED
check() {
  local name=$1 want=$2 got
  shift 2
  got=$("$@" 2>&1 | tr -s ' \t\n' '   ' | sed 's/ *$//')
  if [ "$got" = "$want" ]; then ok "$name"; else bad "$name" "expected [$want], got [$got]"; fi
}
# fails NAME ERRORCODE COMMAND...: the command must fail with that error code
fails() {
  local name=$1 code=$2 got
  shift 2
  got=$("$@" 2>&1)
  if [ $? -ne 0 ] && printf '%s' "$got" | grep -q "($code)"; then ok "$name"; else bad "$name" "$got"; fi
}

check "create-table" "CREATING" ddb create-table --table-name music \
  --attribute-definitions AttributeName=artist,AttributeType=S AttributeName=song,AttributeType=S \
    AttributeName=year,AttributeType=N \
  --key-schema AttributeName=artist,KeyType=HASH AttributeName=song,KeyType=RANGE \
  --global-secondary-indexes 'IndexName=by_year,KeySchema=[{AttributeName=year,KeyType=HASH}],Projection={ProjectionType=ALL}' \
  --billing-mode PAY_PER_REQUEST \
  --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES \
  --tags Key=team,Value=a --query TableDescription.TableStatus --output text
check "wait table-exists" "" ddb wait table-exists --table-name music
check "describe-table" "ACTIVE arn:aws:dynamodb:eu-west-1:000000000000:table/music by_year" \
  ddb describe-table --table-name music \
  --query '[Table.TableStatus, Table.TableArn, Table.GlobalSecondaryIndexes[0].IndexName]' --output text
check "list-tables" "music" ddb list-tables --query 'TableNames' --output text
check "put-item" "" ddb put-item --table-name music --item \
  '{"artist":{"S":"Ada"},"song":{"S":"One"},"year":{"N":"1990"},"plays":{"N":"5"}}'
check "put-item with a condition that fails" "" bash -c "! $AWS --endpoint-url http://127.0.0.1:$PORT dynamodb put-item --table-name music --item '{\"artist\":{\"S\":\"Ada\"},\"song\":{\"S\":\"One\"}}' --condition-expression 'attribute_not_exists(artist)' >/dev/null 2>&1"
check "get-item" "1990 5" ddb get-item --table-name music --key '{"artist":{"S":"Ada"},"song":{"S":"One"}}' \
  --query '[Item.year.N, Item.plays.N]' --output text
check "get-item --projection-expression" "5" ddb get-item --table-name music \
  --key '{"artist":{"S":"Ada"},"song":{"S":"One"}}' --projection-expression plays --query 'Item.plays.N' --output text
check "update-item with AttributeUpdates" "6" ddb update-item --table-name music \
  --key '{"artist":{"S":"Ada"},"song":{"S":"One"}}' --attribute-updates '{"plays":{"Value":{"N":"1"},"Action":"ADD"}}' \
  --return-values UPDATED_NEW --query 'Attributes.plays.N' --output text
for i in 2 3 4; do
  ddb put-item --table-name music --item "{\"artist\":{\"S\":\"Ada\"},\"song\":{\"S\":\"S$i\"},\"year\":{\"N\":\"199$i\"}}" >/dev/null
done
check "query --key-conditions" "3" ddb query --table-name music \
  --key-conditions '{"artist":{"ComparisonOperator":"EQ","AttributeValueList":[{"S":"Ada"}]},"song":{"ComparisonOperator":"BEGINS_WITH","AttributeValueList":[{"S":"S"}]}}' \
  --query Count --output text
check "query an index" "S3" ddb query --table-name music --index-name by_year \
  --key-conditions '{"year":{"ComparisonOperator":"EQ","AttributeValueList":[{"N":"1993"}]}}' \
  --query 'Items[0].song.S' --output text
check "query --max-items pages through" "One S2 S3 S4" ddb query --table-name music --page-size 1 \
  --key-conditions '{"artist":{"ComparisonOperator":"EQ","AttributeValueList":[{"S":"Ada"}]}}' \
  --query 'Items[].song.S' --output text
check "scan --select COUNT" "4" ddb scan --table-name music --select COUNT --query Count --output text
check "scan in segments" "4" bash -c "n=0; for s in 0 1 2; do c=\$($AWS --endpoint-url http://127.0.0.1:$PORT dynamodb scan --table-name music --segment \$s --total-segments 3 --query Count --output text); n=\$((n + c)); done; echo \$n"
check "scan --scan-filter" "S4" ddb scan --table-name music \
  --scan-filter '{"year":{"ComparisonOperator":"GT","AttributeValueList":[{"N":"1993"}]}}' --query 'Items[].song.S' --output text
check "batch-write-item" "0" ddb batch-write-item --request-items \
  '{"music":[{"PutRequest":{"Item":{"artist":{"S":"Bo"},"song":{"S":"X"}}}},{"DeleteRequest":{"Key":{"artist":{"S":"Ada"},"song":{"S":"S4"}}}}]}' \
  --query 'length(UnprocessedItems)' --output text
check "batch-get-item" "X" ddb batch-get-item --request-items \
  '{"music":{"Keys":[{"artist":{"S":"Bo"},"song":{"S":"X"}},{"artist":{"S":"Ada"},"song":{"S":"S4"}}]}}' \
  --query 'Responses.music[].song.S' --output text
check "transact-write-items" "" ddb transact-write-items --transact-items \
  '[{"Put":{"TableName":"music","Item":{"artist":{"S":"Cy"},"song":{"S":"T"}}}},{"Delete":{"TableName":"music","Key":{"artist":{"S":"Bo"},"song":{"S":"X"}}}}]'
fails "transact-write-items cancelled" "TransactionCanceledException" ddb transact-write-items --transact-items \
  '[{"ConditionCheck":{"TableName":"music","Key":{"artist":{"S":"Zed"},"song":{"S":"Q"}},"ConditionExpression":"attribute_exists(artist)"}}]'
check "transact-get-items" "T" ddb transact-get-items --transact-items \
  '[{"Get":{"TableName":"music","Key":{"artist":{"S":"Cy"},"song":{"S":"T"}}}}]' --query 'Responses[0].Item.song.S' --output text
check "delete-item --return-values ALL_OLD" "T" ddb delete-item --table-name music \
  --key '{"artist":{"S":"Cy"},"song":{"S":"T"}}' --return-values ALL_OLD --query 'Attributes.song.S' --output text
check "execute-statement" "One" ddb execute-statement \
  --statement "SELECT song FROM \"music\" WHERE artist = 'Ada' AND song = 'One'" --query 'Items[0].song.S' --output text
check "update-time-to-live" "True" ddb update-time-to-live --table-name music \
  --time-to-live-specification Enabled=true,AttributeName=expires --query TimeToLiveSpecification.Enabled --output text
check "describe-time-to-live" "ENABLED" ddb describe-time-to-live --table-name music \
  --query TimeToLiveDescription.TimeToLiveStatus --output text
ARN=$(ddb describe-table --table-name music --query Table.TableArn --output text)
check "tag-resource" "" ddb tag-resource --resource-arn "$ARN" --tags Key=env,Value=test
check "list-tags-of-resource" "env team" ddb list-tags-of-resource --resource-arn "$ARN" --query 'Tags[].Key' --output text
check "untag-resource" "" ddb untag-resource --resource-arn "$ARN" --tag-keys env
check "update-table (throughput)" "PROVISIONED 7" ddb update-table --table-name music --billing-mode PROVISIONED \
  --provisioned-throughput ReadCapacityUnits=7,WriteCapacityUnits=7 \
  --global-secondary-index-updates '[{"Update":{"IndexName":"by_year","ProvisionedThroughput":{"ReadCapacityUnits":1,"WriteCapacityUnits":1}}}]' \
  --query '[TableDescription.BillingModeSummary.BillingMode, TableDescription.ProvisionedThroughput.ReadCapacityUnits]' --output text
SARN=$(ddb describe-table --table-name music --query Table.LatestStreamArn --output text)
check "dynamodbstreams list-streams" "$SARN" streams list-streams --table-name music --query 'Streams[0].StreamArn' --output text
SHARD=$(streams describe-stream --stream-arn "$SARN" --query 'StreamDescription.Shards[0].ShardId' --output text)
IT=$(streams get-shard-iterator --stream-arn "$SARN" --shard-id "$SHARD" --shard-iterator-type TRIM_HORIZON \
  --query ShardIterator --output text)
check "dynamodbstreams get-records" "INSERT" streams get-records --shard-iterator "$IT" --limit 1 \
  --query 'Records[0].eventName' --output text
check "describe-endpoints" "127.0.0.1:$PORT" ddb describe-endpoints --query 'Endpoints[0].Address' --output text
fails "get-item on a missing table" "ResourceNotFoundException" ddb get-item --table-name nothere --key '{"a":{"S":"b"}}'
fails "put-item with a wrong key type" "ValidationException" ddb put-item --table-name music \
  --item '{"artist":{"N":"1"},"song":{"S":"x"}}'
check "delete-table" "DELETING" ddb delete-table --table-name music --query TableDescription.TableStatus --output text
check "wait table-not-exists" "" ddb wait table-not-exists --table-name music

kill -TERM "$PID"
for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PID" 2>/dev/null; then bad "SIGTERM stops the server"; else ok "SIGTERM stops the server"; PID=""; fi
if grep -E '\[(alert|crit|emerg|error)\]' "$T/serve.log" >"$T/err"; then
  bad "the server log holds no errors" "$(head -c 2000 "$T/err")"
else
  ok "the server log holds no errors"
fi
finish
