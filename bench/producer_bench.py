"""Producer benchmark: ``POST /producers/{topic}`` on a real sidecar process vs a raw aiokafka producer.

For each batch size (default 1 and 100 records of 1 KiB) and ``--clients`` concurrent clients, each
scenario runs for ``--duration`` seconds after a ``--warmup``:

* ``sidecar``: every client holds one keep-alive HTTP/1.1 connection to a ``kafka-sidecar run``
  process (the shipped ``chains.yml`` by default) and posts one batch at a time; a request counts
  when the answer is 200 (every record acknowledged by the broker).
* ``aiokafka``: in this process, one ``AIOKafkaProducer`` with exactly the producer settings the
  sidecar uses (from the same config file); every client sends one batch's records and awaits all
  of their acks before the next batch — the same semantics as one HTTP request.

Latency is per batch (request in, every ack out). Run from the repo root::

    .venv/bin/python bench/producer_bench.py                      # starts its own broker
    .venv/bin/python bench/producer_bench.py --duration 5 --clients 4 --batches 1,100
    KAFKA_SIDECAR_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python bench/producer_bench.py
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from aiokafka import AIOKafkaProducer

# bench/ is a folder of scripts, not a package: run as `python bench/producer_bench.py`, this folder is on sys.path.
from common import (
    REPO,
    HttpConnection,
    Result,
    SidecarProcess,
    kafka_bootstrap,
    load_average,
    machine_line,
    make_result,
    new_topic,
    open_connection,
    payload,
    sidecar_process,
)

from kafka_sidecar import build_blueprint
from kafka_sidecar._kafka.options import producer_kwargs

Record = tuple[str, str]
OneBatch = Callable[[], Awaitable[bool]]


def make_records(batch: int, size: int) -> list[Record]:
    return [(f"key-{i}", payload(size, i)) for i in range(batch)]


async def drive(
    clients: int, seconds: float, make_client: Callable[[], Awaitable[OneBatch]]
) -> tuple[float, list[float], int]:
    """Run ``clients`` loops of ``one batch`` calls for ``seconds``; return elapsed, latencies (ms), errors."""
    latencies: list[float] = []
    errors = 0
    began = time.perf_counter()
    deadline = began + seconds

    async def loop() -> None:
        nonlocal errors
        send = await make_client()
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            ok = await send()
            if ok:
                latencies.append((time.perf_counter() - start) * 1000)
            else:
                errors += 1

    await asyncio.gather(*(loop() for _ in range(clients)))
    return time.perf_counter() - began, latencies, errors


async def sidecar_scenario(
    sidecar: SidecarProcess, topic: str, records: Sequence[Record], clients: int, seconds: float, warmup: float
) -> Result:
    body = json.dumps(
        {"keyFormat": "string", "valueFormat": "string", "records": [{"key": k, "value": v} for k, v in records]}
    ).encode()
    path = f"/producers/{topic}"
    failures: list[str] = []
    connections: list[HttpConnection] = []

    async def make_client() -> OneBatch:
        conn = await open_connection(sidecar.base_url)
        connections.append(conn)

        async def send() -> bool:
            status, answer = await conn.request("POST", path, body)
            if status != 200 and len(failures) < 3:
                failures.append(f"HTTP {status}: {answer[:300]!r}")
            return status == 200

        return send

    try:
        await drive(clients, warmup, make_client)
        cpu_before = sidecar.cpu_seconds()
        elapsed, latencies, errors = await drive(clients, seconds, make_client)
        cpu = sidecar.cpu_seconds() - cpu_before
    finally:
        for conn in connections:
            await conn.close()
    for failure in failures:
        print(f"  sidecar error: {failure}", file=sys.stderr)
    return make_result("sidecar HTTP", len(records), clients, elapsed, latencies, errors, cpu)


async def raw_scenario(
    kafka_kwargs: dict[str, object], topic: str, records: Sequence[Record], clients: int, seconds: float, warmup: float
) -> Result:
    encoded = [(k.encode(), v.encode()) for k, v in records]
    producer = AIOKafkaProducer(**kafka_kwargs)
    await producer.start()
    try:

        async def make_client() -> OneBatch:
            async def send() -> bool:
                futures = [await producer.send(topic, value=v, key=k) for k, v in encoded]
                outcomes = await asyncio.gather(*futures, return_exceptions=True)
                return not any(isinstance(o, BaseException) for o in outcomes)

            return send

        await drive(clients, warmup, make_client)
        cpu_before = time.process_time()
        elapsed, latencies, errors = await drive(clients, seconds, make_client)
        cpu = time.process_time() - cpu_before
    finally:
        await producer.stop()
    return make_result("raw aiokafka", len(records), clients, elapsed, latencies, errors, cpu)


def table(results: Sequence[Result]) -> str:
    lines = [
        "| scenario | batch | clients | records/s | requests/s | p50 ms | p99 ms | CPU ms/batch | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.batch} | {r.clients} | {r.records_per_s:,.0f} | {r.requests / r.seconds:,.0f} "
            f"| {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.cpu_ms_per_batch:.2f} | {r.errors} |"
        )
    return "\n".join(lines)


def ratios(results: Sequence[Result]) -> str:
    lines = []
    by_batch: dict[int, dict[str, Result]] = {}
    for r in results:
        by_batch.setdefault(r.batch, {})[r.name] = r
    for batch, pair in sorted(by_batch.items()):
        side, raw = pair.get("sidecar HTTP"), pair.get("raw aiokafka")
        if side is None or raw is None or raw.records_per_s == 0:
            continue
        lines.append(
            f"batch {batch}: sidecar/raw throughput = {side.records_per_s / raw.records_per_s:.2f}x, "
            f"p50 latency = {side.p50_ms / raw.p50_ms:.2f}x, p99 latency = {side.p99_ms / raw.p99_ms:.2f}x, "
            f"CPU per batch = {side.cpu_ms_per_batch / raw.cpu_ms_per_batch:.2f}x"
        )
    return "\n".join(lines)


async def run_all(args: argparse.Namespace, bootstrap: str, sidecar: SidecarProcess) -> list[Result]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SIDECAR_PORT": "0"}
    kafka_kwargs = producer_kwargs(build_blueprint(args.config, env=env).config.kafka, "bench")
    results: list[Result] = []
    for batch in args.batches:
        records = make_records(batch, args.record_size)
        topic = await new_topic(bootstrap, f"http-b{batch}", args.partitions)
        print(f"[batch {batch}] sidecar HTTP, {args.clients} clients, {args.duration}s ...", flush=True)
        results.append(await sidecar_scenario(sidecar, topic, records, args.clients, args.duration, args.warmup))
        topic = await new_topic(bootstrap, f"raw-b{batch}", args.partitions)
        print(f"[batch {batch}] raw aiokafka, {args.clients} clients, {args.duration}s ...", flush=True)
        results.append(await raw_scenario(kafka_kwargs, topic, records, args.clients, args.duration, args.warmup))
    return results


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, default=REPO / "chains.yml", help="sidecar config (default: shipped)")
    parser.add_argument(
        "--bootstrap", default=None, help="use this broker (default: $KAFKA_SIDECAR_BOOTSTRAP or start one)"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario (default: %(default)s)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each scenario")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default: %(default)s)")
    parser.add_argument(
        "--batches", type=lambda s: [int(x) for x in s.split(",")], default=[1, 100], help="batch sizes, e.g. 1,100"
    )
    parser.add_argument("--record-size", type=int, default=1024, help="value bytes per record (default: 1 KiB)")
    parser.add_argument("--partitions", type=int, default=3, help="partitions of each bench topic")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"machine: {machine_line()}")
    print(f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC · load average before: {load_average()}")
    with (
        kafka_bootstrap(args.bootstrap) as bootstrap,
        tempfile.TemporaryDirectory(prefix="kafka-sidecar-bench-") as tmp,
    ):
        print(f"broker: {bootstrap} · config: {args.config}")
        with sidecar_process(args.config, bootstrap, Path(tmp)) as sidecar:
            print(f"sidecar: {sidecar.base_url} (kafka-sidecar run, separate process)")
            results = asyncio.run(run_all(args, bootstrap, sidecar))
    print()
    print(table(results))
    print()
    print(ratios(results))
    print(f"load average after: {load_average()}")
    return 1 if any(r.errors or not r.requests for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
