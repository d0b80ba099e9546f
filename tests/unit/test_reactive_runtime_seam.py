"""The reactive runtime through its consumer-factory seam: assignment, fetch, delivery, commit, stop.

The Kafka consumer is replaced by an in-memory one that plays a group coordinator's part (it calls the
rebalance listener on start) and a broker's (``getmany`` hands out queued records once); everything
else is the real runtime, real partition workers and the real offset tracker. The broker-backed
behaviour is covered in tests/integration/test_reactive_*.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import TopicPartition

from kafka_sidecar._config.model import KafkaConfig
from kafka_sidecar._records import ConsumedRecord
from kafka_sidecar_handlers.reactive._config import ReactiveConsumerConfig
from kafka_sidecar_handlers.reactive._delivery import DeliveryStats
from kafka_sidecar_handlers.reactive._partition import BatchLimits, PartitionWorker
from kafka_sidecar_handlers.reactive._runtime import ConsumerRuntime

TP = TopicPartition("orders", 0)


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int = 0
    headers: tuple[tuple[str, bytes], ...] = ()


class InMemoryConsumer:
    """What ConsumerRuntime uses of AIOKafkaConsumer, kept in memory."""

    def __init__(self, messages: list[Message]) -> None:
        self.pending = messages
        self.listener: Any = None
        self.topics: list[str] = []
        self.commits: list[dict[TopicPartition, int]] = []
        self.committed = asyncio.Event()
        self.stopped = False

    def subscribe(self, topics: list[str] | None = None, pattern: str | None = None, listener: Any = None) -> None:
        self.topics, self.listener = list(topics or ()), listener

    async def start(self) -> None:
        await self.listener.on_partitions_assigned([TP])

    async def getmany(self, timeout_ms: int) -> dict[TopicPartition, list[Message]]:
        if not self.pending:
            await asyncio.sleep(timeout_ms / 1000)  # a broker's long poll with nothing new
            return {}
        batch, self.pending = self.pending, []
        return {TP: batch}

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        self.commits.append({tp: meta.offset for tp, meta in offsets.items()})
        self.committed.set()

    def pause(self, *tps: TopicPartition) -> None: ...

    def resume(self, *tps: TopicPartition) -> None: ...

    async def stop(self) -> None:
        self.stopped = True


@pytest.mark.asyncio
async def test_runtime_delivers_commits_contiguously_and_leaves_through_the_seam() -> None:
    config = ReactiveConsumerConfig(group="g", backend_url="http://127.0.0.1:9", topics=("orders",))
    consumer = InMemoryConsumer([Message("orders", 0, offset, b"k", b"v") for offset in (5, 6, 7)])
    delivered: list[int] = []
    release_six = asyncio.Event()

    async def runner(
        batch: Sequence[ConsumedRecord], on_final: Callable[[ConsumedRecord, str], None], stats: DeliveryStats
    ) -> None:
        for record in batch:
            if record.offset == 6:
                await release_six.wait()  # offset 6 is slow: nothing past 5 may be committed meanwhile
            delivered.append(record.offset)
            on_final(record, "success")

    def make_worker(topic: str, partition: int) -> PartitionWorker:
        return PartitionWorker(topic, partition, 1, BatchLimits(1, 1 << 20, 0.0), runner, runtime.on_change)

    runtime = ConsumerRuntime("orders", config, KafkaConfig(), make_worker, make_consumer=lambda _: consumer)
    runtime.start()
    try:
        await asyncio.wait_for(consumer.committed.wait(), 10)
        assert consumer.topics == ["orders"]
        assert runtime.state == "running"
        assert consumer.commits == [{TP: 6}]  # 5 delivered; 6 still in flight
        consumer.committed.clear()
        release_six.set()
        while consumer.commits[-1] != {TP: 8}:
            await asyncio.wait_for(consumer.committed.wait(), 10)
            consumer.committed.clear()
    finally:
        release_six.set()
        await runtime.stop()
    assert delivered == [5, 6, 7]
    assert consumer.stopped
    assert runtime.state == "stopped"
    assert runtime.workers == {}
