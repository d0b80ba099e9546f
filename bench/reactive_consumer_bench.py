"""Reactive consumer throughput vs a raw aiokafka consumer, on the same topic in the same run.

    .venv/bin/python bench/reactive_consumer_bench.py [--bootstrap HOST:PORT] [--records 60000]

Without ``--bootstrap`` (or ``$KAFKA_SIDECAR_BOOTSTRAP``) a local test broker is started. The topic
gets ``--partitions`` partitions of ``--records`` JSON records of about 1 KiB. Then:

1. raw: an ``AIOKafkaConsumer`` (no group) reads every record from the beginning; records/s.
2. sidecar: a reactive consumer (batch 500) delivers every record to a backend in another process
   that acknowledges at once (HTTP 200, no body); records/s from the first delivery to the last commit.

Prints both rates and their ratio. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from kafka_sidecar._sidecar import Sidecar
from kafka_sidecar_testing.broker import create_topic
from kafka_sidecar_testing.net import free_port as _free_port


def _backend_process(port: int) -> None:
    """An HTTP backend that acknowledges every batch at once (raw ASGI, hypercorn)."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    asyncio.run(serve(app, config))  # type: ignore[arg-type]


async def _produce(bootstrap: str, topic: str, records: int, partitions: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024, acks=1)
    await producer.start()
    try:
        pad = "x" * 1000
        pending = []
        for n in range(records):
            value = json.dumps({"n": n, "pad": pad}).encode()
            pending.append(await producer.send(topic, value=value, partition=n % partitions))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def _raw_rate(bootstrap: str, topic: str, records: int, partitions: int) -> float:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, max_poll_records=500)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        started = time.perf_counter()
        while seen < records:
            batch = await consumer.getmany(timeout_ms=1000, max_records=500)
            seen += sum(len(messages) for messages in batch.values())
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def _sidecar_rate(bootstrap: str, topic: str, records: int, backend_port: int, value_format: str) -> float:
    group = f"bench-{uuid.uuid4().hex[:8]}"
    config = {
        "topics": [topic], "group": group, "backend_url": f"http://127.0.0.1:{backend_port}",
        "batch_max_records": 500, "batch_max_bytes": 8 * 1024 * 1024, "batch_max_wait_ms": 20,
        "max_buffered_records": 5000, "value_format": value_format,
    }  # fmt: skip
    text = (
        f"kafka:\n  bootstrap_servers: {bootstrap}\n"
        f"handlers:\n  in:\n    use: reactive-consumer\n    config: {json.dumps(config)}\n"
        "consumers:\n  bench:\n    exec: [in]\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chains.yml"
        path.write_text(text, encoding="utf-8")
        sidecar = Sidecar.from_file(path)
        source: Any = sidecar.consumers[0].source
        await sidecar.start()
        try:
            first: float | None = None
            first_count = 0
            while True:
                runtime = source.runtime
                workers = list(runtime.workers.values()) if runtime is not None else []
                delivered = sum(w.stats.delivered for w in workers)
                if first is None and delivered > 0:
                    first = time.perf_counter()
                    first_count = delivered
                if delivered >= records and all(w.last_committed == w.fetched_to for w in workers):
                    assert first is not None
                    return float((delivered - first_count) / (time.perf_counter() - first))
                await asyncio.sleep(0.01)
        finally:
            await sidecar.stop()


async def _main(args: argparse.Namespace) -> None:
    bootstrap = args.bootstrap or os.environ.get("KAFKA_SIDECAR_BOOTSTRAP")
    broker = None
    if not bootstrap:
        from kafka_sidecar_testing import broker as harness

        broker = harness.KafkaBroker(harness.ensure_kafka_runtime())
        broker.start(timeout=120)
        bootstrap = broker.bootstrap_servers
    port = _free_port()
    backend = multiprocessing.Process(target=_backend_process, args=(port,), daemon=True)
    backend.start()
    try:
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        await create_topic(bootstrap, topic, args.partitions)
        began = time.perf_counter()
        await _produce(bootstrap, topic, args.records, args.partitions)
        print(f"produced {args.records} x ~1 KiB records to {args.partitions} partitions "
              f"in {time.perf_counter() - began:.1f}s")  # fmt: skip
        raw = await _raw_rate(bootstrap, topic, args.records, args.partitions)
        print(f"raw aiokafka consumer read:      {raw:>10,.0f} records/s")
        reactive = await _sidecar_rate(bootstrap, topic, args.records, port, args.format)
        print(f"reactive consumer delivered:     {reactive:>10,.0f} records/s  (batch 500, format {args.format})")
        print(f"ratio reactive / raw:            {reactive / raw:>10.2f}")
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        await admin.delete_topics([topic])
        await admin.close()
    finally:
        backend.terminate()
        backend.join(5)
        if broker is not None:
            broker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--records", type=int, default=60000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--format", default="json", help="value_format of the reactive consumer (json, binary, ...)")
    asyncio.run(_main(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
