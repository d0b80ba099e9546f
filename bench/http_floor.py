"""The HTTP delivery floor of the consumer paths: what moving the same bodies over HTTP costs with nothing
else to do (no Kafka, no records, no chain). The suite runs it next to the sidecar to show the limit of
the consumer goals by measurement (docs/benchmarks.md, "Consumer limits").

    python bench/http_floor.py serve PORT BODY_FILE          # active floor: every request answered with BODY
    python bench/http_floor.py push URL BODY_FILE REQUESTS   # reactive floor: POST BODY REQUESTS times

* ``serve``: a minimal ASGI app on Hypercorn (the sidecar's default server engine) that answers every
  request with the pre-built body of a real ``GET .../records`` reply of the sidecar (same size, same
  record count), driven by the suite's own load generator; CPU from ``/proc`` of this process.
* ``push``: an ``httpx.AsyncClient`` (the reactive consumer's client) posting the pre-built body of a real
  500-record batch of the sidecar to the suite's instant-ack backend, one at a time as a partition lane
  does; prints ``{"cpu_seconds": ..., "seconds": ..., "requests": ...}`` over all but the first request.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from consuming import serve_constant


async def push(url: str, body: bytes, requests: int) -> dict[str, float]:
    import httpx

    headers = {"content-type": "application/json", "user-agent": "kafka-sidecar-reactive"}
    async with httpx.AsyncClient(timeout=30) as client:
        (await client.post(url, content=body, headers=headers)).raise_for_status()  # connection set-up excluded
        began, cpu = time.perf_counter(), time.process_time()
        for _ in range(requests):
            (await client.post(url, content=body, headers=headers)).raise_for_status()
        return {
            "cpu_seconds": time.process_time() - cpu,
            "seconds": time.perf_counter() - began,
            "requests": float(requests),
        }


def main(argv: list[str]) -> int:
    mode = argv[0]
    if mode == "serve":
        serve_constant(int(argv[1]), Path(argv[2]).read_bytes(), b"application/vnd.kafka.v2+json")
        return 0
    if mode == "push":
        print(json.dumps(asyncio.run(push(argv[1], Path(argv[2]).read_bytes(), int(argv[3])))))
        return 0
    raise SystemExit(__doc__)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
