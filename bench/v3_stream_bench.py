"""REST Proxy v3 streaming produce: records/s and sidecar CPU per record, one connection.

Usage::

    python bench/v3_stream_bench.py [--records 100000] [--size 100] [--per-chunk 500] [--config chains.yml]

Uses ``$KAFKA_SIDECAR_BOOTSTRAP`` when set, else starts a local broker. The sidecar runs as a
separate ``kafka-sidecar run`` process; the bench streams ``--records`` JSON records (``STRING``
values of ``--size`` bytes), ``--per-chunk`` records per HTTP chunk, on one chunked HTTP/1.1
request, and reads every result line. It reports wall time, records/s, and the sidecar process's
CPU microseconds per record (the stable figure). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from common import REPO, kafka_bootstrap, new_topic, payload, sidecar_process


async def stream(base_url: str, topic: str, records: int, size: int, per_chunk: int) -> tuple[float, int]:
    async with httpx.AsyncClient(base_url=base_url, timeout=300) as client:
        cluster_id = (await client.get("/v3/clusters")).json()["data"][0]["cluster_id"]
        value = payload(size)

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, records, per_chunk):
                yield b"".join(
                    json.dumps(
                        {"key": {"type": "STRING", "data": f"k{i}"}, "value": {"type": "STRING", "data": value}}
                    ).encode()
                    + b"\n"
                    for i in range(start, min(start + per_chunk, records))
                )

        started = time.perf_counter()
        acked = 0
        async with client.stream(
            "POST", f"/v3/clusters/{cluster_id}/topics/{topic}/records", content=chunks(),
            headers={"content-type": "application/json"},
        ) as response:  # fmt: skip
            async for line in response.aiter_lines():
                if line and json.loads(line)["error_code"] == 200:
                    acked += 1
        return time.perf_counter() - started, acked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--per-chunk", type=int, default=500)
    parser.add_argument("--config", type=Path, default=REPO / "chains.yml")
    args = parser.parse_args()
    with kafka_bootstrap() as bootstrap, tempfile.TemporaryDirectory() as tmp:
        topic = asyncio.run(new_topic(bootstrap, "v3stream", 3))
        with sidecar_process(args.config, bootstrap, Path(tmp)) as sidecar:
            cpu_before, client_before = sidecar.cpu_seconds(), time.process_time()
            seconds, acked = asyncio.run(stream(sidecar.base_url, topic, args.records, args.size, args.per_chunk))
            cpu, client_cpu = sidecar.cpu_seconds() - cpu_before, time.process_time() - client_before
    print(f"config {args.config.name}: {args.records} records of {args.size} B, {args.per_chunk} per chunk")
    print(f"acknowledged {acked}/{args.records} in {seconds:.2f} s = {acked / seconds:,.0f} records/s")
    print(
        f"sidecar CPU {cpu:.2f} s = {cpu / max(acked, 1) * 1e6:.1f} us per record (bench client CPU {client_cpu:.2f} s)"
    )


if __name__ == "__main__":
    main()
