"""Reactive consumer and transactions: ``isolation_level`` decides whether aborted records reach the backend."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from test_reactive_support import (
    Backend,
    end_offsets,
    new_group,
    serving,
    sidecar_yaml,
    wait_committed,
    wait_for,
    wait_until,
)

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
    kafka_bootstrap: str,
    consumer_engine: str,
    topic_factory: Any,
    tmp_path: Path,
    isolation: str | None,
    expected: list[int],
) -> None:
    topic = await topic_factory.create(partitions=1)
    await _committed_aborted_committed(kafka_bootstrap, topic)
    group = new_group()
    backend = Backend()
    config = sidecar_yaml(topic, group, backend, isolation_level=isolation)
    async with (
        serving(backend),
        running_sidecar(
            config, tmp_path, env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "CONSUMER_ENGINE": consumer_engine}
        ) as rs,
    ):
        # One partition, delivered in order: once the last record (n=2) has arrived, n=1 had its chance before it.
        await wait_for(lambda: any(r["value"]["n"] == 2 for r in backend.records()), 30, "the last record")
        # The log ends with a commit marker (offset 5, after the records at 0, 2 and 4 and the markers at 1
        # and 3): everything is delivered, so the commit reaches the log end and the lag is 0.
        ends = await end_offsets(kafka_bootstrap, topic, 1)
        assert ends == {0: 6}
        assert max(int(r["offset"]) for r in backend.records()) == 4
        await wait_committed(kafka_bootstrap, group, ends)

        async def reported() -> tuple[int, int, int]:
            (partition,) = (await rs.client.get("/admin/consumers/reactive/orders")).json()["partitions"]
            return partition["committed"], partition["end_offset"], partition["lag"]

        await wait_until(lambda: _equals(reported(), (6, 6, 0)), 10, "the control API to report lag 0")
    assert [record["value"]["n"] for record in backend.records()] == expected


async def _equals(value: Awaitable[object], want: object) -> bool:
    return await value == want
