#!/usr/bin/env bash
# Stream processor demo: a real Kafka broker, the example backend, and the sidecar running the quixstreams
# app in examples/streams (a supervised child process) whose results reach the backend through a
# read_committed reactive consumer. Everything binds 127.0.0.1 only.
#
#   examples/streams/demo.sh                  run, show orders in and counts out, keep running until Ctrl-C
#   examples/streams/demo.sh --smoke          the same, checked, then stop everything and exit 0/1
#   examples/streams/demo.sh --bootstrap H:P  use an already running broker
#
# Needs what scripts/demo.sh needs, plus a venv with quixstreams (.venv-streams, made here if missing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
SMOKE=0
BOOTSTRAP=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --bootstrap) BOOTSTRAP="${2:?--bootstrap needs HOST:PORT}"; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }
command -v curl >/dev/null || die "curl is required"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kafka-sidecar-streams-demo.XXXXXX")"
PIDS=()
OK=0
cleanup() {
  trap - EXIT INT TERM
  local pid i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do  # sidecar first (it stops the processor), broker last
    pid="${PIDS[$i]}"
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ $OK == 1 ]]; then rm -rf "$WORK"; else
    for log in "$WORK"/*.log; do [[ -f "$log" ]] && { printf '\n--- %s ---\n' "$log" >&2; tail -n 30 "$log" >&2; }; done
    echo "logs kept in $WORK" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_for() {  # wait_for WHAT SECONDS COMMAND...
  local what="$1" deadline=$((SECONDS + $2)); shift 2
  until "$@" >/dev/null 2>&1; do ((SECONDS < deadline)) || die "$what: not ready within the time"; sleep 0.2; done
}

say "Python environments (.venv for the sidecar, .venv-streams for quixstreams)"
[[ -x .venv/bin/kafka-sidecar ]] || { python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' -e ./testing; }
[[ -x .venv-streams/bin/python ]] || { python3 -m venv .venv-streams && .venv-streams/bin/pip install -q -e '.[streams]'; }
PY="$ROOT/.venv/bin/python"
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

if [[ -z "$BOOTSTRAP" ]]; then
  say "Apache Kafka broker"
  "$PY" -m kafka_sidecar_testing.broker_cli fetch >/dev/null
  "$PY" -m kafka_sidecar_testing.broker_cli run --port 0 >"$WORK/broker.log" 2>&1 &
  PIDS+=($!)
  wait_for "Kafka broker" 180 grep -q '^bootstrap=' "$WORK/broker.log"
  BOOTSTRAP="$(sed -n 's/^bootstrap=//p' "$WORK/broker.log" | head -n 1)"
fi
"$PY" - "$BOOTSTRAP" <<'PYEOF'
import asyncio, sys
from kafka_sidecar_testing.broker import create_topic
async def main() -> None:
    for topic in ("orders", "order-counts", "order-totals"):
        await create_topic(sys.argv[1], topic, partitions=2, exist_ok=True)
asyncio.run(main())
PYEOF
echo "bootstrap servers: $BOOTSTRAP; topics orders, order-counts, order-totals"

say "example backend"
BACKEND_PORT="$(free_port)"
"$PY" examples/backend/backend.py --port "$BACKEND_PORT" >"$WORK/backend.log" 2>&1 &
PIDS+=($!)
BACKEND="http://127.0.0.1:$BACKEND_PORT"
wait_for "backend" 30 curl -sf "$BACKEND/health"

say "kafka-sidecar with the stream processor (examples/streams/chains.yml)"
SIDECAR_PORT="$(free_port)"
SIDECAR="http://127.0.0.1:$SIDECAR_PORT"
export KAFKA_BOOTSTRAP_SERVERS="$BOOTSTRAP" SIDECAR_PORT BACKEND_URL="$BACKEND" STREAMS_STATE_DIR="$WORK/state"
.venv/bin/kafka-sidecar run -c examples/streams/chains.yml >"$WORK/sidecar.log" 2>&1 &
PIDS+=($!)
wait_for "sidecar ready (the processor running)" 120 curl -sf "$SIDECAR/health/ready"
curl -s "$SIDECAR/admin/processors/order-streams" | "$PY" -c \
  'import json, sys; s = json.load(sys.stdin); print("processor", s["name"], s["state"], "pid", s["pid"])'

say "orders in: POST /producers/orders"
RUN="$(date +%s%N)"
BODY="{\"records\":[$(for i in 1 2 3 4 5 6; do
  printf '%s{"key":"customer-%s","value":{"id":"%s-%s","amount":%s}}' "$([[ $i == 1 ]] || echo ,)" $((i % 2)) "$RUN" "$i" $((i * 10))
done)]}"
curl -sf -XPOST "$SIDECAR/producers/orders" -H 'content-type: application/json' -d "$BODY" >/dev/null || die "produce failed"
echo "$BODY"

say "counts out: what the backend received from order-counts"
"$PY" - "$BACKEND" "$RUN" <<'PYEOF'
import asyncio, json, sys
import httpx
backend, run = sys.argv[1:3]
async def main() -> None:
    async with httpx.AsyncClient(base_url=backend, timeout=10) as client, asyncio.timeout(90):
        while True:
            records = (await client.get("/records")).json()["records"]
            mine = [r for r in records if r["topic"] == "order-counts" and str(r["value"]["id"]).startswith(run)]
            if len({r["value"]["id"] for r in mine}) == 6:
                break
            await asyncio.sleep(0.3)
    for r in sorted(mine, key=lambda r: r["value"]["id"]):
        print(f"  {r['key']}: order {r['value']['id']} is number {r['value']['count']} "
              f"(topic {r['topic']} partition {r['partition']} offset {r['offset']})")
asyncio.run(main())
PYEOF
echo "round trip OK: HTTP -> Kafka -> quixstreams (exactly-once) -> Kafka -> reactive consumer -> backend"

OK=1
[[ $SMOKE == 1 ]] && exit 0
say "running; Ctrl-C stops everything. Try: curl -s $SIDECAR/admin/processors | python3 -m json.tool"
wait "${PIDS[-1]}"
