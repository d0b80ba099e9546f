#!/usr/bin/env bash
# kafka-sidecar demo: a real Apache Kafka broker, the example backend and the sidecar (with the
# shipped chains.yml), then a produce round trip over HTTP. Everything binds 127.0.0.1 only.
#
#   ./scripts/demo.sh                    run, show the round trip, keep running until Ctrl-C
#   ./scripts/demo.sh --smoke            run the round trip, check it, stop everything, exit 0/1
#   ./scripts/demo.sh --bootstrap H:P    use an already running broker instead of starting one
#   ./scripts/demo.sh --config FILE      another chains.yml (default: the shipped one)
#
# If the config declares a consumer named `demo` (enabled by DEMO_CONSUMER_ENABLED=true), the sidecar's
# reactive consumer delivers the records to the example backend; otherwise the script hands the batch
# read back from Kafka to the backend itself, in the same batch format.
#
# Needs: Python >= 3.11, curl, and for the broker JDK 17+ and Maven (the broker jars are downloaded
# from Maven Central once and cached in ~/.cache/kafka-sidecar).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SMOKE=0
BOOTSTRAP=""
CONFIG="chains.yml"
TOPIC="${DEMO_TOPIC:-demo}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --bootstrap) BOOTSTRAP="${2:?--bootstrap needs HOST:PORT}"; shift ;;
    --bootstrap=*) BOOTSTRAP="${1#*=}" ;;
    --config) CONFIG="${2:?--config needs a file}"; shift ;;
    --config=*) CONFIG="${1#*=}" ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

# shellcheck source=scripts/steps.sh
source "$ROOT/scripts/steps.sh"
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

command -v curl >/dev/null || die "curl is required"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kafka-sidecar-demo.XXXXXX")"
BROKER_PID="" BACKEND_PID="" SIDECAR_PID=""
OK=0

stop_pid() {  # stop_pid NAME PID SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL
  local name="$1" pid="$2" seconds="$3" i
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < seconds * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  echo "$name did not stop within $seconds s; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  trap - EXIT INT TERM
  [[ -n "$SIDECAR_PID$BACKEND_PID$BROKER_PID" ]] && step "stopping sidecar, backend and broker"
  stop_pid sidecar "$SIDECAR_PID" 30
  stop_pid backend "$BACKEND_PID" 10
  stop_pid broker "$BROKER_PID" 60   # the broker wrapper itself waits up to 30 s for the JVM
  if [[ $OK == 1 ]]; then
    rm -rf "$WORK"
  else
    for log in "$WORK"/*.log; do
      [[ -f "$log" ]] || continue
      printf '\n--- last lines of %s ---\n' "$log" >&2
      tail -n 25 "$log" >&2
    done
    echo "logs kept in $WORK" >&2
  fi
  step_summary
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for DESCRIPTION SECONDS PID COMMAND...: poll COMMAND until it succeeds, the PID dies or time runs out
wait_for() {
  local what="$1" seconds="$2" pid="$3"; shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then die "$what: the process exited"; fi
    ((SECONDS < deadline)) || die "$what: not ready within ${seconds}s"
    sleep 0.2
  done
}

free_port() {  # free_port PREFERRED: PREFERRED if it is free on 127.0.0.1, else any free port
  "$PY" - "${1:-0}" <<'EOF'
import socket, sys
for port in (int(sys.argv[1]), 0):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(s.getsockname()[1])
        break
EOF
}

# ---------------------------------------------------------------------------------------------
step "Python environment (.venv)"
if [[ ! -x .venv/bin/python ]]; then
  BASE_PY="$(command -v python3.11 || command -v python3 || true)"
  [[ -n "$BASE_PY" ]] && "$BASE_PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "Python >= 3.11 is required (python3.11 or python3 on PATH)"
  "$BASE_PY" -m venv .venv
fi
PY="$ROOT/.venv/bin/python"
STAMP=".venv/.kafka-sidecar-installed"
WANT="$(cat pyproject.toml testing/pyproject.toml | sha256sum | cut -d' ' -f1)"
if [[ ! -x .venv/bin/kafka-sidecar || "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]]; then
  echo "installing kafka-sidecar (editable, with test extras) and its test harness (testing/) into .venv: about 70 packages from PyPI"
  echo "(~300 MB installed on a first run; pip's cache makes later runs fast; output in $WORK/pip.log)"
  quietly "$WORK/pip-self.log" "$PY" -m pip install --disable-pip-version-check --upgrade pip
  quietly "$WORK/pip.log" "$PY" -m pip install --disable-pip-version-check -e '.[test]' -e ./testing
  echo "$WANT" > "$STAMP"
  echo "pip: $(pip_downloads "$WORK/pip.log"); .venv is $(size_of .venv)"
else
  echo "up to date: $ROOT/.venv"
fi

# ---------------------------------------------------------------------------------------------
if [[ -z "$BOOTSTRAP" ]]; then
  step "Apache Kafka broker (KRaft, single node, 127.0.0.1)"
  CACHE="${KAFKA_SIDECAR_CACHE:-$HOME/.cache/kafka-sidecar}"
  if ! compgen -G "$CACHE/kafka-*/libs" >/dev/null; then
    echo "downloading the Kafka broker jars once (~45 MB, Maven Central) into $CACHE"
  fi
  LIBS="$("$PY" -m kafka_sidecar_testing.broker_cli fetch)" || die "could not fetch the Kafka broker jars (see above)"
  echo "broker jars: $LIBS ($(size_of "$LIBS"))"
  echo "starting the broker (log: $WORK/broker.log) ..."
  "$PY" -m kafka_sidecar_testing.broker_cli run --port 0 >"$WORK/broker.log" 2>&1 &
  BROKER_PID=$!
  wait_for "Kafka broker" 180 "$BROKER_PID" grep -q '^bootstrap=' "$WORK/broker.log"
  BOOTSTRAP="$(sed -n 's/^bootstrap=//p' "$WORK/broker.log" | head -n 1)"
fi
echo "bootstrap servers: $BOOTSTRAP"

"$PY" - "$BOOTSTRAP" "$TOPIC" <<'EOF'
import asyncio, sys
from kafka_sidecar_testing.broker import create_topic
asyncio.run(create_topic(sys.argv[1], sys.argv[2], partitions=3, exist_ok=True))
print(f"topic {sys.argv[2]!r} ready (3 partitions)")
EOF

# ---------------------------------------------------------------------------------------------
step "example backend (examples/backend)"
if [[ $SMOKE == 1 ]]; then BACKEND_PORT="$(free_port 0)"; else BACKEND_PORT="$(free_port "${BACKEND_PORT:-8080}")"; fi
BACKEND="http://127.0.0.1:$BACKEND_PORT"
"$PY" examples/backend/backend.py --port "$BACKEND_PORT" >"$WORK/backend.log" 2>&1 &
BACKEND_PID=$!
wait_for "example backend" 30 "$BACKEND_PID" curl -sf "$BACKEND/health"
echo "backend: $BACKEND (GET /health, POST /kafka/records, GET /records)"

# ---------------------------------------------------------------------------------------------
step "kafka-sidecar ($CONFIG)"
if [[ $SMOKE == 1 ]]; then SIDECAR_PORT="$(free_port 0)"; else SIDECAR_PORT="$(free_port "${SIDECAR_PORT:-8442}")"; fi
SIDECAR="http://127.0.0.1:$SIDECAR_PORT"
RUN_ID="$(date +%s)-$$"
export KAFKA_BOOTSTRAP_SERVERS="$BOOTSTRAP" SIDECAR_PORT BACKEND_URL="$BACKEND" DEMO_TOPIC="$TOPIC" \
       DEMO_CONSUMER_ENABLED=true DEMO_CONSUMER_GROUP="kafka-sidecar-demo-$RUN_ID"
CHECK="$(.venv/bin/kafka-sidecar check "$CONFIG" 2>&1 || true)"
CONSUMER=0
if grep -q '^  consumer demo ' <<<"$CHECK"; then CONSUMER=1; fi
.venv/bin/kafka-sidecar run -c "$CONFIG" >"$WORK/sidecar.log" 2>&1 &
SIDECAR_PID=$!
wait_for "kafka-sidecar /health/ready" 60 "$SIDECAR_PID" curl -sf "$SIDECAR/health/ready"
echo "sidecar: $SIDECAR — ready: $(curl -s "$SIDECAR/health/ready")"

# ---------------------------------------------------------------------------------------------
step "produce over HTTP: POST /producers/$TOPIC"
BODY='{"records":[
  {"key":"order-1","value":{"item":"book","qty":1},"headers":{"demo-run":"'"$RUN_ID"'"}},
  {"key":"order-2","value":{"item":"pen","qty":3},"headers":{"demo-run":"'"$RUN_ID"'"}}]}'
echo "curl -s -XPOST $SIDECAR/producers/$TOPIC -H 'content-type: application/json' -d '$(tr -d '\n' <<<"$BODY")'"
RESPONSE="$(curl -s -w '\n%{http_code}' -XPOST "$SIDECAR/producers/$TOPIC" -H 'content-type: application/json' -d "$BODY")"
STATUS="${RESPONSE##*$'\n'}"
echo "HTTP $STATUS  ${RESPONSE%$'\n'*}"
[[ "$STATUS" == 200 ]] || die "the produce request failed"

if [[ $CONSUMER == 1 ]]; then
  step "read back from Kafka (plain aiokafka consumer); the sidecar's reactive consumer delivers to the backend"
else
  step "read back from Kafka (plain aiokafka consumer) and hand the batch to the example backend"
fi
"$PY" - "$BOOTSTRAP" "$TOPIC" "$RUN_ID" "$BACKEND" "$RESPONSE" "$CONSUMER" <<'EOF'
import asyncio, base64, json, sys
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

bootstrap, topic, run_id, backend, response, by_sidecar = sys.argv[1:7]
acked = json.loads(response.rsplit("\n", 1)[0])["offsets"]
want = {(o["partition"], o["offset"]) for o in acked}

async def delivered_by_sidecar(found) -> int:
    want = {(m.partition, m.offset) for m in found}
    async with httpx.AsyncClient(base_url=backend, timeout=10) as client, asyncio.timeout(60):
        while True:
            kept = (await client.get("/records")).json()["records"]
            got = [r for r in kept if r["topic"] == topic and (r["partition"], r["offset"]) in want]
            if len(got) == len(want):
                break
            await asyncio.sleep(0.2)
    for r in got:
        print(f"  backend got: consumer={r['consumer']} partition={r['partition']} offset={r['offset']} "
              f"key={r['key']} value={json.dumps(r['value'])} headers={r['headers']}")
    return 0

async def main() -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    found = []
    try:
        consumer.assign([TopicPartition(topic, p) for p in sorted({p for p, _ in want})])
        async with asyncio.timeout(30):
            while len(found) < len(want):
                for messages in (await consumer.getmany(timeout_ms=500)).values():
                    found += [m for m in messages if (m.partition, m.offset) in want]
    finally:
        await consumer.stop()
    for m in found:
        headers = {k: v.decode() for k, v in m.headers}
        print(f"  partition={m.partition} offset={m.offset} key={m.key.decode()} value={m.value.decode()} headers={headers}")
        if headers.get("demo-run") != run_id:
            print("record does not carry this run's header", file=sys.stderr)
            return 1
    if by_sidecar == "1":
        return await delivered_by_sidecar(found)
    # The reactive consumer's batch contract, delivered here by hand so the backend's side is visible.
    batch = {"consumer": "demo", "records": [
        {"topic": m.topic, "partition": m.partition, "offset": m.offset, "timestamp": m.timestamp,
         "key": json.loads(m.key), "value": json.loads(m.value),
         "headers": {k: v.decode() for k, v in m.headers}} for m in found]}
    answer = httpx.post(f"{backend}/kafka/records", json=batch, timeout=10)
    print(f"backend POST /kafka/records -> HTTP {answer.status_code} {answer.text}")
    ok = answer.status_code == 200 and all(r["status"] == "SUCCESS" for r in answer.json()["results"])
    return 0 if ok else 1

sys.exit(asyncio.run(main()))
EOF
if [[ $CONSUMER == 1 ]]; then
  echo "round trip OK: HTTP -> sidecar -> Kafka -> sidecar reactive consumer -> backend"
else
  echo "round trip OK: HTTP -> sidecar -> Kafka -> consumer -> backend"
fi

if [[ $SMOKE == 1 ]]; then
  OK=1
  exit 0
fi

# ---------------------------------------------------------------------------------------------
step_summary
say "running — try these (Ctrl-C stops everything)"
cat <<EOF
  # produce (Java sidecar shape) and Confluent REST Proxy v2 shape
  curl -s -XPOST $SIDECAR/producers/$TOPIC -H 'content-type: application/json' \\
       -d '{"records":[{"key":"k","value":{"hello":"kafka"}}]}'
  curl -s -XPOST $SIDECAR/topics/$TOPIC -H 'content-type: application/vnd.kafka.json.v2+json' \\
       -d '{"records":[{"value":{"via":"rest-proxy-v2"}}]}'
  # a bad record is refused as a whole, with a problem body naming the field
  curl -s -XPOST $SIDECAR/producers/$TOPIC -H 'content-type: application/json' -d '{"records":[{"value":1,"partition":99}]}'
  # what is running
  curl -s $SIDECAR/admin/chains
  curl -s $SIDECAR/admin/config
  # the admin console in a browser: $SIDECAR/admin/ui
  curl -s $BACKEND/records
  .venv/bin/kafka-sidecar handlers
  # logs: $WORK/{broker,sidecar,backend}.log    bootstrap: $BOOTSTRAP
  # the whole test suite (lint, types, tests against a real broker): see README.md
EOF
OK=1
# Wait until Ctrl-C (the INT trap exits, the EXIT trap stops everything) or a component dies.
while kill -0 "$SIDECAR_PID" 2>/dev/null && kill -0 "$BACKEND_PID" 2>/dev/null \
      && { [[ -z "$BROKER_PID" ]] || kill -0 "$BROKER_PID" 2>/dev/null; }; do
  sleep 1
done
OK=0
die "a component stopped unexpectedly"
