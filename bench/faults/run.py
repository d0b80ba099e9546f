"""The long fault suite: broker SIGKILL + restart on the same data dir during produce and reactive delivery.

    .venv/bin/python bench/faults/run.py                      # 3 rounds of 4 kills over 40 s each
    .venv/bin/python bench/faults/run.py --rounds 1 --kills 2 --traffic 20

Prints one JSON line per round and a total; exits 1 when any record was lost or stuck. The figures go
into docs/reliability.md. A short variant runs in CI: tests/integration/test_faults.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

from kafka_sidecar_testing.broker import KafkaBroker, ensure_kafka_runtime
from kafka_sidecar_testing.faults import FaultPlan, run_faults


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kills", type=int, default=4, help="broker SIGKILLs per round")
    parser.add_argument("--traffic", type=float, default=40.0, help="seconds of traffic per round")
    parser.add_argument("--down", type=float, default=2.0, help="seconds the broker stays dead")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=10)
    args = parser.parse_args()
    plan = FaultPlan(kills=args.kills, traffic_s=args.traffic, down_s=args.down, clients=args.clients, batch=args.batch)
    failed = False
    totals: dict[str, int] = {}
    for number in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory(prefix="kafka-sidecar-faults-") as work:
            broker = KafkaBroker(ensure_kafka_runtime(), Path(work) / "broker")
            broker.start()
            try:
                report = asyncio.run(run_faults(broker, Path(work), plan))
            finally:
                broker.stop()
        summary = report.summary()
        print(json.dumps({"round": number, **summary}), flush=True)
        failed |= report.lost > 0 or report.stuck > 0 or report.undelivered > 0
        for name in ("kills", "sent", "acked", "lost", "duplicated", "stuck", "delivered", "undelivered",
                     "redelivered"):  # fmt: skip
            totals[name] = totals.get(name, 0) + int(getattr(report, name))
    print(json.dumps({"total": totals}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
