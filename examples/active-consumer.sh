#!/usr/bin/env bash
# A REST Proxy v2 active-consumer walkthrough with curl against a running sidecar.
#
#   kafka-sidecar run -c chains.yml          # in another terminal (the shipped chains.yml has the routes)
#   ./examples/active-consumer.sh [topic]
#
# SIDECAR (default http://127.0.0.1:8442) and GROUP (default walkthrough-<pid>) may be set.
# See docs/active-consumer.md for the semantics of every step.
set -euo pipefail

SIDECAR="${SIDECAR:-http://127.0.0.1:8442}"
TOPIC="${1:-walkthrough}"
GROUP="${GROUP:-walkthrough-$$}"
V2="Content-Type: application/vnd.kafka.v2+json"
BASE="$SIDECAR/consumers/$GROUP/instances/me"

step() { printf '\n== %s\n' "$*"; }

step "produce two JSON records (REST Proxy v2 produce)"
curl -sS -X POST "$SIDECAR/topics/$TOPIC" -H "Content-Type: application/vnd.kafka.json.v2+json" \
  --data '{"records":[{"key":"k1","value":{"n":1}},{"key":"k2","value":{"n":2}}]}'

step "create a consumer instance (auto-commit off: safe at-least-once)"
curl -sS -X POST "$SIDECAR/consumers/$GROUP" -H "$V2" \
  --data '{"name":"me","format":"json","auto.offset.reset":"earliest","auto.commit.enable":"false"}'

step "subscribe"
curl -sS -o /dev/null -w '%{http_code}\n' -X POST "$BASE/subscription" -H "$V2" --data "{\"topics\":[\"$TOPIC\"]}"

step "poll until records arrive (the first polls may be empty while the group forms)"
records='[]'
for _ in $(seq 1 20); do
  records=$(curl -sS "$BASE/records?timeout=1000" -H "Accept: application/vnd.kafka.json.v2+json")
  [ "$records" != "[]" ] && break
done
echo "$records"

step "commit everything returned so far (empty body), then read the committed offsets"
curl -sS -X POST "$BASE/offsets" -H "$V2"
echo
curl -sS "$BASE/offsets?partitions=$TOPIC:0" -H "$V2"
echo

step "hand one record back as a dead letter (lands in $TOPIC.dlq)"
curl -sS -X POST "$SIDECAR/consumers/deadLetter/active" -H "Content-Type: application/json" \
  --data "[{\"record\":{\"topic\":\"$TOPIC\",\"partition\":0,\"offset\":0,\"key\":\"k1\",\"value\":{\"n\":1}},\"stacktrace\":\"could not process\"}]"
echo

step "seek back to the beginning and read again"
curl -sS -o /dev/null -w '%{http_code}\n' -X POST "$BASE/positions/beginning" -H "$V2" --data '{}'
curl -sS "$BASE/records?timeout=1000" -H "Accept: application/vnd.kafka.json.v2+json"
echo

step "delete the instance (it leaves the group)"
curl -sS -o /dev/null -w '%{http_code}\n' -X DELETE "$BASE" -H "$V2"
