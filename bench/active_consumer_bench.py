"""Records/s through ``GET .../records`` versus a raw aiokafka consumer on the same topic, same run.

Usage::

    python bench/active_consumer_bench.py [--records 200000] [--size 100] [--partitions 4]

Uses ``$KAFKA_SIDECAR_BOOTSTRAP`` when set, else starts a local broker with
``kafka_sidecar_testing.broker``. The sidecar runs as a separate process (``kafka-sidecar run``)
on a free loopback port and is read over real HTTP/1.1 with one keep-alive connection, the way a
backend would. Both readers start from the beginning of the topic in a fresh group, and their time
includes joining the group. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from kafka_sidecar_testing import broker as harness
from kafka_sidecar_testing.net import free_port

CONFIG = """\
server: {{host: 127.0.0.1, port: {port}}}
kafka: {{bootstrap_servers: "{bootstrap}"}}
handlers:
  active: {{use: active-consumer, config: {{request_timeout_ms: 2000, max_poll_records: 2000}}}}
paths:
  - {{path: "/consumers/{{group}}", method: POST, exec: [active]}}
  - {{path: "/consumers/{{group}}/instances/{{instance}}", method: DELETE, exec: [active]}}
  - {{path: "/consumers/{{group}}/instances/{{instance}}/subscription", method: POST, exec: [active]}}
  - {{path: "/consumers/{{group}}/instances/{{instance}}/records", method: GET, exec: [active]}}
"""


@contextlib.contextmanager
def bootstrap_servers() -> Iterator[str]:
    external = os.environ.get("KAFKA_SIDECAR_BOOTSTRAP", "").strip()
    if external:
        yield external
        return
    with harness.KafkaBroker(harness.ensure_kafka_runtime(harness.DEFAULT_KAFKA_VERSION)) as broker:
        yield broker.bootstrap_servers


async def fill(bootstrap: str, topic: str, partitions: int, count: int, size: int) -> None:
    await harness.create_topic(bootstrap, topic, partitions)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        value = b'"' + b"x" * (size - 2) + b'"'
        futures = [await producer.send(topic, value=value, key=str(n).encode()) for n in range(count)]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def raw_rate(bootstrap: str, topic: str, count: int) -> float:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"raw-{uuid.uuid4().hex}", auto_offset_reset="earliest",
        enable_auto_commit=False, max_poll_records=2000,
    )  # fmt: skip
    started = time.perf_counter()
    await consumer.start()
    seen = 0
    try:
        while seen < count:
            for messages in (await consumer.getmany(timeout_ms=1000)).values():
                seen += len(messages)
    finally:
        elapsed = time.perf_counter() - started
        await consumer.stop()
    return seen / elapsed


async def sidecar_rate(base_url: str, topic: str, count: int, fmt: str) -> float:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        group = f"bench-{uuid.uuid4().hex}"
        started = time.perf_counter()
        created = await client.post(f"/consumers/{group}", json={"format": fmt, "auto.offset.reset": "earliest"})
        created.raise_for_status()
        base = f"/consumers/{group}/instances/{created.json()['instance_id']}"
        (await client.post(f"{base}/subscription", json={"topics": [topic]})).raise_for_status()
        seen = 0
        while seen < count:
            reply = await client.get(f"{base}/records", params={"timeout": 1000, "max_bytes": 8 * 1024 * 1024})
            reply.raise_for_status()
            seen += len(reply.json())
        elapsed = time.perf_counter() - started
        await client.delete(base)
    return seen / elapsed


async def wait_http(url: str, process: subprocess.Popen[bytes], deadline_s: float = 30) -> None:
    end = time.monotonic() + deadline_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < end:
            if process.poll() is not None:
                raise RuntimeError("the sidecar exited during start-up")
            with contextlib.suppress(httpx.HTTPError):
                await client.get(url)
                return
            await asyncio.sleep(0.2)
    raise RuntimeError("the sidecar did not start listening")


async def main(args: argparse.Namespace) -> None:
    with bootstrap_servers() as bootstrap, tempfile.TemporaryDirectory() as work:
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        print(f"filling {topic}: {args.records} records x {args.size} B over {args.partitions} partitions")
        await fill(bootstrap, topic, args.partitions, args.records, args.size)
        port = free_port()
        config = Path(work) / "chains.yml"
        config.write_text(CONFIG.format(port=port, bootstrap=bootstrap), encoding="utf-8")
        command = [sys.executable, "-m", "kafka_sidecar", "run", "-c", str(config), "--log-level", "WARNING"]
        process = subprocess.Popen(command)  # noqa: ASYNC220 - started once, before anything is measured
        try:
            await wait_http(f"http://127.0.0.1:{port}/consumers/none/instances/none/records", process)
            raw = await raw_rate(bootstrap, topic, args.records)
            results = {fmt: await sidecar_rate(f"http://127.0.0.1:{port}", topic, args.records, fmt)
                       for fmt in ("binary", "json")}  # fmt: skip
        finally:
            process.terminate()
            process.wait(30)
    print(f"raw aiokafka consumer:           {raw:12,.0f} records/s")
    for fmt, rate in results.items():
        print(f"GET records ({fmt:6}, HTTP/1.1): {rate:12,.0f} records/s   ratio {rate / raw:.2f}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=100, help="value bytes per record")
    parser.add_argument("--partitions", type=int, default=4)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
