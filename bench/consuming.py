"""Shared pieces of the consumer benchmarks: filling a topic, reading it raw, watching deliveries, an
instant-ack backend, and an in-process sidecar with one consumer.

Used by ``suite.py`` (active and reactive scenarios), ``reactive_consumer_bench.py`` and
``ksqldb_push_bench.py``, so each measures its window the same way: **the window starts at the first
records seen** (group join, metadata and connection set-up excluded) and those first records are not
counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from kafka_sidecar._sidecar import Sidecar
from kafka_sidecar_testing.net import free_port

IN_FLIGHT = 5000
"""Records a fill sends before waiting for their acknowledgements."""


async def fill_topic(
    bootstrap: str,
    topic: str,
    count: int,
    value_of: Callable[[int], bytes],
    *,
    partitions: int = 1,
    key_of: Callable[[int], bytes | None] | None = None,
) -> None:
    """Write ``count`` records ``value_of(n)`` (keys ``key_of(n)``) round-robin over ``partitions``."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024, acks=1)
    await producer.start()
    try:
        pending = []
        for n in range(count):
            key = key_of(n) if key_of is not None else None
            pending.append(await producer.send(topic, key=key, value=value_of(n), partition=n % partitions))
            if len(pending) >= IN_FLIGHT:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


@dataclass(frozen=True, slots=True)
class Window:
    """Records counted over a measured window, its wall seconds and the CPU seconds of the measured process."""

    records: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_record(self) -> float:
        return self.cpu_seconds * 1e6 / self.records if self.records else float("nan")


async def read_raw(
    bootstrap: str,
    topic: str,
    partitions: int,
    count: int,
    *,
    on_value: Callable[[bytes | None], object] | None = None,
    timeout: float = 180.0,
) -> Window:
    """A raw ``AIOKafkaConsumer`` (no group, batches of 500) reading ``count`` records from the beginning;
    CPU is this process's. ``on_value``: per-record work to add (e.g. decoding, to compare with a path that
    decodes)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, max_poll_records=500)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = first = 0
        began = cpu = 0.0
        deadline = time.monotonic() + timeout
        while first + seen < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {first + seen} of {count} records in {timeout}s")
            batch = await consumer.getmany(timeout_ms=1000, max_records=500)
            got = 0
            for messages in batch.values():
                got += len(messages)
                if on_value is not None:
                    for message in messages:
                        on_value(message.value)
            if got and not first:
                began, cpu, first = time.perf_counter(), time.process_time(), got
                continue
            seen += got
        return Window(seen, time.perf_counter() - began, time.process_time() - cpu)
    finally:
        await consumer.stop()


async def watch(
    delivered: Callable[[], int],
    target: int,
    *,
    cpu: Callable[[], float] = time.process_time,
    done: Callable[[], bool] | None = None,
    timeout: float = 180.0,
    interval: float = 0.01,
) -> Window:
    """Poll ``delivered()`` until it reaches ``target`` (and ``done()`` holds, e.g. everything committed);
    the window runs from the first poll that saw records, whose records are not counted. ``cpu``: CPU
    seconds of the system under test (this process by default)."""
    deadline = time.monotonic() + timeout
    first: tuple[float, float, int] | None = None
    while True:
        count = delivered()
        if first is None and count > 0:
            first = (time.perf_counter(), cpu(), count)
        if first is not None and count >= target and (done is None or done()):
            return Window(count - first[2], time.perf_counter() - first[0], cpu() - first[1])
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} of {target} records delivered after {timeout}s")
        await asyncio.sleep(interval)


def serve_constant(port: int, body: bytes = b"", content_type: bytes | None = None) -> None:
    """A minimal ASGI app on Hypercorn answering every request with 200 and ``body`` (blocks; run it in a
    process of its own)."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    headers = [(b"content-length", str(len(body)).encode())]
    if content_type is not None:
        headers.append((b"content-type", content_type))

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
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    asyncio.run(serve(app, config))  # type: ignore[arg-type]


def ack_backend_process(port: int) -> None:
    """An HTTP backend that acknowledges every batch at once (200, no body), for
    ``multiprocessing.Process(target=ack_backend_process, args=(port,))``."""
    serve_constant(port)


@contextlib.contextmanager
def ack_backend() -> Iterator[int]:
    """:func:`ack_backend_process` in a process of its own on a free loopback port, until the block exits."""
    port = free_port()
    backend = multiprocessing.Process(target=ack_backend_process, args=(port,), daemon=True)
    backend.start()
    try:
        yield port
    finally:
        backend.terminate()
        backend.join(5)


DELIVERY_500 = {
    "batch_max_records": 500, "batch_max_bytes": 8 * 1024 * 1024, "batch_max_wait_ms": 20,
    "max_buffered_records": 5000,
}  # fmt: skip
"""The delivery settings of every consumer bench: batches of 500 to an instant-ack backend."""


@contextlib.asynccontextmanager
async def in_process_consumer(
    bootstrap: str, use: str, config: Mapping[str, object], *, engine: str = "aiokafka"
) -> AsyncIterator[Any]:
    """A started sidecar in this process with one consumer (handler type ``use`` with ``config``, Kafka
    client ``engine``: ``kafka.consumer.engine``); yields the consumer's source (its handler instance),
    stopped when the block exits."""
    text = (
        f"kafka:\n  bootstrap_servers: {bootstrap}\n  consumer:\n    engine: {engine}\n"
        f"handlers:\n  source:\n    use: {use}\n    config: {json.dumps(config)}\n"
        "consumers:\n  bench:\n    exec: [source]\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chains.yml"
        path.write_text(text, encoding="utf-8")
        sidecar = Sidecar.from_file(path)
        await sidecar.start()
        try:
            yield sidecar.consumers[0].source
        finally:
            await sidecar.stop()
