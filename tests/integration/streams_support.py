"""Helpers for the stream-processor tests: keyed producing, admin status polling, backend results.

No tests here; the ``test_streams_*`` modules import from it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_APP = REPO / "examples" / "streams" / "order_streams.py"
STREAMS_PYTHON_ENV = "KAFKA_SIDECAR_STREAMS_PYTHON"


def streams_python() -> str:
    """The interpreter of the quixstreams venv (``.venv-streams``, made by scripts/test.sh).

    quixstreams pins confluent-kafka below the test extra's, so it lives in a venv of its own: exactly the
    documented ``python:`` option. Missing: a failure in CI, a skip elsewhere.
    """
    path = Path(os.environ.get(STREAMS_PYTHON_ENV) or REPO / ".venv-streams" / "bin" / "python")
    if not path.is_file():
        message = f"no quixstreams interpreter at {path} (see scripts/test.sh: .venv-streams with '.[streams]')"
        if os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no", "off"}:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return str(path)


async def produce_keyed(
    bootstrap: str, topic: str, items: Sequence[tuple[str, dict[str, Any], int | None]], *, transactional: bool = False
) -> None:
    """Send ``(key, json value, timestamp_ms)`` items with the default (key-hash) partitioner and wait for acks."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, enable_idempotence=True)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, json.dumps(value).encode(), key=key.encode(), timestamp_ms=ts)
            for key, value, ts in items
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def abort_one(bootstrap: str, topic: str, key: str, value: dict[str, Any]) -> None:
    """Write one record in a transaction and abort it (read_committed readers must never see it)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"abort-{time.monotonic_ns()}")
    await producer.start()
    try:
        await producer.begin_transaction()
        await producer.send_and_wait(topic, json.dumps(value).encode(), key=key.encode())
        await producer.abort_transaction()
    finally:
        await producer.stop()


async def status(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await client.get(f"/admin/processors/{name}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_status(
    client: httpx.AsyncClient, name: str, condition: Callable[[dict[str, Any]], bool], timeout: float, what: str
) -> dict[str, Any]:
    """Poll the status route until ``condition`` holds; fail naming ``what`` and the last status."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = await status(client, name)
        if condition(last):
            return last
        await asyncio.sleep(0.2)
    shown = {k: v for k, v in last.items() if k != "last_lines"}
    output = "\n".join(line["text"] for line in (last.get("last_lines") or [])[-40:])
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what}; last status: {json.dumps(shown)}\nlast output:\n{output}"
    )


async def wait_until(condition: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Await ``condition()`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.3)


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in Prometheus text (labels in any order), or None when absent."""
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        if series.startswith(name + "{") and series.endswith("}"):
            found = dict(pair.split("=", 1) for pair in series[len(name) + 1 : -1].split(","))
            if {k: v.strip('"') for k, v in found.items()} == labels:
                return float(value)
    return None


def unique_results(records: list[dict[str, Any]]) -> dict[tuple[str, int, int], dict[str, Any]]:
    """Backend records de-duplicated on (topic, partition, offset), as the docs tell a backend to do."""
    return {(r["topic"], r["partition"], r["offset"]): r for r in records}


TOPOLOGY_SOURCE = REPO / "examples" / "streams" / "kafka-streams"


def order_counts_yaml(classpath: str, app_id: str, state_dir: Path, orders: str, counts: str, *extra: str) -> str:
    """The ``handlers:`` and ``consumers:`` of a sidecar config running the example Kafka Streams topology
    (``example.OrderCounts``, see :func:`ensure_topology_classpath`) as the ``runtime: command`` processor
    ``counts``; each of ``extra`` is one more line of its config (``key: value``)."""
    from kafka_sidecar_testing.kafka_runtime import find_java

    lines = [
        "runtime: command",
        f'command: ["{find_java()}", "-Xmx256m", "-cp", "{classpath}", example.OrderCounts, "{{properties}}"]',
        f"application_id: {app_id}",
        f'state_dir: "{state_dir}"',
        'ready_pattern: "-> RUNNING"',
        "commit_interval_ms: 200",
        f"input_topics: [{orders}]",
        f"output_topics: [{counts}]",
        "expose: false",
        f"env: {{ORDERS_TOPIC: {orders}, COUNTS_TOPIC: {counts}}}",
        "restart: {initial_backoff_ms: 200}",
        *extra,
    ]
    config = "".join(f"      {line}\n" for line in lines)
    handler = f"handlers:\n  counts:\n    use: stream-processor\n    config:\n{config}"
    return handler + "consumers:\n  counts: {exec: [counts]}\n"


def ensure_topology_classpath(kafka_version: str) -> str:
    """Build the example Kafka Streams topology with Maven once per version and source; return its classpath.

    The build runs in a copy under the harness cache (``~/.cache/kafka-sidecar``), keyed by a digest of the
    sources, so the repository stays clean and a changed topology is rebuilt.
    """
    from kafka_sidecar_testing.kafka_runtime import default_cache_dir, find_maven
    from kafka_sidecar_testing.net import exclusive_lock

    sources = sorted(p for p in TOPOLOGY_SOURCE.rglob("*") if p.is_file() and "target" not in p.parts)
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]
    cache = default_cache_dir()
    build = cache / f"kstreams-order-counts-{kafka_version}-{digest}"
    classpath = f"{build / 'target' / 'order-counts.jar'}:{build / 'target' / 'dependency'}/*"
    marker = build / ".complete"
    if marker.is_file():
        return classpath
    mvn = find_maven()
    if mvn is None:
        pytest.skip("Maven is needed once to build the Kafka Streams topology")
    with exclusive_lock(cache / ".kstreams-order-counts.lock"):
        if marker.is_file():
            return classpath
        shutil.rmtree(build, ignore_errors=True)
        shutil.copytree(TOPOLOGY_SOURCE, build, ignore=shutil.ignore_patterns("target"))
        command = [mvn, "-B", "-q", "-Dstyle.color=never", f"-Dkafka.version={kafka_version}", "package",
                   "dependency:copy-dependencies", "-DincludeScope=runtime"]  # fmt: skip
        result = subprocess.run(command, cwd=build, capture_output=True, text=True, timeout=900, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"building the topology failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        marker.write_text("ok\n", encoding="utf-8")
    return classpath


async def read_topic(bootstrap: str, topic: str, partitions: int) -> list[tuple[str, dict[str, Any]]]:
    """Every committed record of ``topic`` up to its current end, as (key, JSON value), in offset order."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: list[tuple[int, int, str, dict[str, Any]]] = []
        deadline = time.monotonic() + 20
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]] and time.monotonic() < deadline:
            for tp, messages in (await consumer.getmany(timeout_ms=200)).items():
                found.extend((tp.partition, m.offset, m.key.decode(), json.loads(m.value)) for m in messages)
    finally:
        await consumer.stop()
    return [(key, value) for _, _, key, value in sorted(found)]
