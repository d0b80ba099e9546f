"""Reactive consumer and transactions: ``isolation_level`` decides whether aborted records reach the backend."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from test_reactive_support import Backend, new_group, serving, sidecar_yaml, wait_committed, wait_for

from kafka_sidecar.testing import running_sidecar

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]


async def _committed_aborted_committed(bootstrap: str, topic: str) -> None:
    """Writes ``{"n": 0}`` committed, ``{"n": 1}`` in an aborted transaction, then ``{"n": 2}`` committed."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"tx-{uuid.uuid4().hex}")
    await producer.start()
    try:
        for n, commit in ((0, True), (1, False), (2, True)):
            await producer.begin_transaction()
            await producer.send_and_wait(topic, f'{{"n": {n}}}'.encode(), partition=0)
            if commit:
                await producer.commit_transaction()
            else:
                await producer.abort_transaction()
    finally:
        await producer.stop()


@pytest.mark.parametrize(
    ("isolation", "expected"),
    [(None, [0, 2]), ("read_committed", [0, 2]), ("read_uncommitted", [0, 1, 2])],
    ids=["default", "read_committed", "read_uncommitted"],
)
async def test_aborted_records_reach_the_backend_only_when_reading_uncommitted(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path, isolation: str | None, expected: list[int]
) -> None:
    topic = await topic_factory.create(partitions=1)
    await _committed_aborted_committed(kafka_bootstrap, topic)
    group = new_group()
    backend = Backend()
    config = sidecar_yaml(topic, group, backend, isolation_level=isolation)
    async with serving(backend), running_sidecar(config, tmp_path, env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}):
        # One partition, delivered in order: once the last record (n=2) has arrived, n=1 had its chance before it.
        await wait_for(lambda: any(r["value"]["n"] == 2 for r in backend.records()), 30, "the last record")
        await wait_committed(kafka_bootstrap, group, {0: _offset_of_last_record(backend)})
    assert [record["value"]["n"] for record in backend.records()] == expected


def _offset_of_last_record(backend: Backend) -> int:
    """The commit that covers the last delivered record (commit markers have offsets of their own)."""
    return max(int(record["offset"]) for record in backend.records()) + 1
