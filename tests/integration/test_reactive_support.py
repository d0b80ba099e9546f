"""Helpers for the reactive consumer tests: a real HTTP backend, producing, reading topics, group offsets.

No tests here; the other ``test_reactive_*`` modules import from it. The backend itself is
:mod:`kafka_sidecar_testing.backend` (the fault run uses it too), re-exported here.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from starlette.responses import Response

from kafka_sidecar_testing.backend import Backend as Backend  # re-exported for the test_reactive_* modules
from kafka_sidecar_testing.backend import serving as serving
from kafka_sidecar_testing.backend import wait_for as wait_for


async def wait_until(condition: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Await ``condition`` until true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def produce(
    bootstrap: str,
    topic: str,
    values: list[bytes | None],
    *,
    partition: int | None = None,
    keys: list[bytes | None] | None = None,
    timestamp_ms: int | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic,
                value=value,
                key=keys[i] if keys else None,
                partition=partition if partition is not None else (i % _partitions(producer, topic)),
                timestamp_ms=timestamp_ms,
                headers=headers,
            )
            for i, value in enumerate(values)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _partitions(producer: AIOKafkaProducer, topic: str) -> int:
    parts = producer.client.cluster.partitions_for_topic(topic)
    return len(parts) if parts else 1


def json_values(count: int, start: int = 0) -> list[bytes | None]:
    return [json.dumps({"n": n}).encode() for n in range(start, start + count)]


async def committed(bootstrap: str, group: str) -> dict[int, int]:
    """Partition -> committed offset of ``group`` (every topic merged; tests use one topic)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


async def read_all(bootstrap: str, topic: str, expected: int, timeout: float = 20) -> list[Any]:
    """Read ``expected`` records of ``topic`` from the beginning (all partitions)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    found: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while len(found) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                found.extend(messages)
    finally:
        await consumer.stop()
    return found


def sidecar_yaml(topic: str, group: str, backend: Backend, **extra: Any) -> str:
    """A chains.yml with one reactive consumer ``orders`` reading ``topic``; ``extra`` overrides config."""
    config: dict[str, Any] = {
        "topics": [topic],
        "group": group,
        "backend_url": backend.url,
        "backend_path": "/deliver",
        "batch_max_records": 20,
        "batch_max_wait_ms": 5,
        "request_timeout_ms": 2000,
        "drain_timeout_ms": 3000,
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 500,
        "retry": {"max_attempts": 3, "initial_backoff_ms": 10, "max_backoff_ms": 50, "jitter": 0.1},
    }
    config.update(extra)
    config = {k: v for k, v in config.items() if v is not None}
    return (
        "kafka:\n  bootstrap_servers: ${KAFKA_BOOTSTRAP_SERVERS}\n"
        "  consumer:\n    engine: ${CONSUMER_ENGINE:aiokafka}\n"  # the consumer_engine fixture (conftest.py)
        "handlers:\n  orders-in:\n    use: reactive-consumer\n    config: " + json.dumps(config) + "\n"
        "consumers:\n  orders:\n    exec: [orders-in]\n"
    )


def statuses(body: dict[str, Any], decide: Callable[[dict[str, Any]], str]) -> Response:
    """A per-record status reply matched by partition+offset."""
    entries = [
        {"partition": r["partition"], "offset": r["offset"], "status": decide(r), "error": f"error for {r['offset']}"}
        for r in body["records"]
    ]
    return Response(json.dumps({"statuses": entries}), media_type="application/json")


def new_group() -> str:
    """A consumer group name no other test uses."""
    return f"g-{uuid.uuid4().hex[:8]}"


async def wait_committed(
    bootstrap: str, group: str, want: dict[int, int], timeout: float = 20, *, exact: bool = False
) -> None:
    """Wait until the group's committed offsets reach ``want`` (per partition; ``exact``: and nothing else)."""
    deadline = asyncio.get_running_loop().time() + timeout
    latest: dict[int, int] = {}
    while asyncio.get_running_loop().time() < deadline:
        latest = await committed(bootstrap, group)
        reached = latest == want if exact else all(latest.get(p) == end for p, end in want.items())
        if reached:
            return
        await asyncio.sleep(0.1)  # polling a condition with a deadline
    raise AssertionError(f"committed {latest}, wanted {want}")
