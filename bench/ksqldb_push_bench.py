"""ksqlDB consumer push mode against the ksqlDB test server, next to raw reading of the same topic.

    .venv/bin/python bench/ksqldb_push_bench.py [--bootstrap HOST:PORT] [--rows 20000]

Without ``--bootstrap`` (or ``$KAFKA_SIDECAR_BOOTSTRAP``) a local test broker is started. A one-partition
topic gets ``--rows`` small JSON rows (``{"ID": ..., "N": ..., "NOTE": ...}``). Then, in this order:

1. raw: an ``AIOKafkaConsumer`` (no group) reads every record; rows/s.
2. test server alone: a plain httpx h2c client reads the push query ``SELECT ID, N, NOTE FROM S EMIT CHANGES``
   (earliest) from the ksqlDB test server, in its own process; rows/s (the ceiling for the sidecar).
3. sidecar: a ``ksqldb-consumer`` in push mode (in this process) delivers every row to a backend in another
   process that acknowledges at once; rows/s from the first delivery to the last, and the CPU seconds this
   process spent per row (the stable figure: the test server and the backend run elsewhere).

Not part of the test suite. The test server is not ksqlDB: its rates say nothing about ksqlDB's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import uuid

import httpx
from common import kafka_bootstrap
from consuming import DELIVERY_500, ack_backend, fill_topic, in_process_consumer, read_raw, watch

from kafka_sidecar_testing.broker import create_topic
from kafka_sidecar_testing.ksqldb import wait_listening
from kafka_sidecar_testing.net import free_port


def _decode(value: bytes | None) -> object:
    return json.loads(value) if value is not None else None


async def _server_rate(url: str, stream: str, rows: int) -> float:
    body = {"sql": f"SELECT ID, N, NOTE FROM {stream} EMIT CHANGES;", "properties": {"auto.offset.reset": "earliest"}}
    async with (
        httpx.AsyncClient(http1=False, http2=True, timeout=60) as client,
        client.stream("POST", f"{url}/query-stream", json=body) as response,
    ):
        lines = response.aiter_lines()
        header = json.loads(await anext(lines))
        seen = 0
        started = time.perf_counter()
        async for line in lines:
            json.loads(line)
            seen += 1
            if seen >= rows:
                break
        elapsed = time.perf_counter() - started
        await client.post(f"{url}/close-query", json={"queryId": header["queryId"]})
    return seen / elapsed


async def _sidecar_rate(bootstrap: str, url: str, stream: str, rows: int, backend_port: int) -> tuple[float, float]:
    delivery = {"group": f"bench-{uuid.uuid4().hex[:8]}", "backend_url": f"http://127.0.0.1:{backend_port}",
                **DELIVERY_500}  # fmt: skip
    consumer = {"server": url, "mode": "push", "query": f"SELECT ID, N, NOTE FROM {stream} EMIT CHANGES;",
                "properties": {"auto.offset.reset": "earliest"}, "delivery": delivery}  # fmt: skip
    async with in_process_consumer(bootstrap, "ksqldb-consumer", consumer) as source:

        def delivered() -> int:
            push = source.push
            return sum(w.stats.delivered for w in push.workers.values()) if push is not None else 0

        window = await watch(delivered, rows)
    return window.rate, window.cpu_seconds / window.records


async def _main(args: argparse.Namespace) -> None:
    with kafka_bootstrap(args.bootstrap) as bootstrap, ack_backend() as backend_port:
        await _compare(args, bootstrap, backend_port)


async def _compare(args: argparse.Namespace, bootstrap: str, backend_port: int) -> None:
    server_port = free_port()
    command = [sys.executable, "-m", "kafka_sidecar_testing.ksqldb", "--bootstrap", bootstrap]
    command += ["--port", str(server_port), "--framing", args.framing]
    server = subprocess.Popen(command)  # noqa: ASYNC220 (started once, before anything is measured)
    url = f"http://127.0.0.1:{server_port}"
    try:
        wait_listening(server_port, 20)
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        stream = f"BENCH_{uuid.uuid4().hex[:8]}".upper()
        await create_topic(bootstrap, topic, 1)
        await fill_topic(
            bootstrap,
            topic,
            args.rows,
            lambda n: json.dumps({"N": n, "NOTE": f"row {n} of the benchmark"}).encode(),
            key_of=lambda n: f"k{n % 100}".encode(),
        )
        async with httpx.AsyncClient(timeout=30) as client:
            ddl = (f"CREATE STREAM {stream} (ID STRING KEY, N BIGINT, NOTE STRING) "
                   f"WITH (KAFKA_TOPIC='{topic}', VALUE_FORMAT='JSON');")  # fmt: skip
            (await client.post(f"{url}/ksql", json={"ksql": ddl})).raise_for_status()
        raw = (await read_raw(bootstrap, topic, 1, args.rows, on_value=_decode)).rate  # decoding as a row costs
        print(f"raw aiokafka read of the topic:       {raw:>10,.0f} rows/s")
        ceiling = await _server_rate(url, stream, args.rows)
        print(f"test server push query, plain client: {ceiling:>10,.0f} rows/s  (framing {args.framing})")
        rate, cpu = await _sidecar_rate(bootstrap, url, stream, args.rows, backend_port)
        print(
            f"sidecar push mode delivered:          {rate:>10,.0f} rows/s  ({cpu * 1e6:.1f} us CPU per row, batch 500)"
        )
        print(f"ratio sidecar / raw:                  {rate / raw:>10.2f}")
    finally:
        server.terminate()
        server.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--framing", choices=["row", "coalesced", "split"], default="coalesced")
    asyncio.run(_main(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
