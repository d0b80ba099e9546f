"""Helpers for the stream-processor tests: keyed producing, admin status polling, backend results.

No tests here; the ``test_streams_*`` modules import from it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

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
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last status: {json.dumps(shown)}")


def unique_results(records: list[dict[str, Any]]) -> dict[tuple[str, int, int], dict[str, Any]]:
    """Backend records de-duplicated on (topic, partition, offset), as the docs tell a backend to do."""
    return {(r["topic"], r["partition"], r["offset"]): r for r in records}
