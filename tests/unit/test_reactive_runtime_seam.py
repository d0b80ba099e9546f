"""The reactive runtime through its consumer-factory seam: assignment, fetch, delivery, commit, stop.

The Kafka consumer is replaced by an in-memory one that plays a group coordinator's part (it calls the
rebalance listener on start) and a broker's (``getmany`` hands out queued records once); everything
else is the real runtime, real partition workers and the real offset tracker. The broker-backed
behaviour is covered in tests/integration/test_reactive_*.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
from aiokafka import TopicPartition

from kafka_sidecar._config.model import KafkaConfig
from kafka_sidecar._records import ConsumedRecord
from kafka_sidecar_handlers.reactive._client import RebalanceListener
from kafka_sidecar_handlers.reactive._config import ReactiveConsumerConfig
from kafka_sidecar_handlers.reactive._delivery import DeliveryStats
from kafka_sidecar_handlers.reactive._partition import BatchLimits, PartitionWorker
from kafka_sidecar_handlers.reactive._runtime import ConsumerRuntime

TP = TopicPartition("orders", 0)


class InMemoryConsumer:
    """A :class:`ConsumerClient` kept in memory (what the runtime uses of it)."""

    engine = "in-memory"

    def __init__(self, messages: list[ConsumedRecord], end: int | None = None) -> None:
        self.pending = messages
        self.end = end
        """Where the position lands once every message is handed out (past trailing control markers)."""
        self.fetch_position = messages[0].offset if messages else 0
        self.polls = 0
        self.listener: Any = None
        self.topics: list[str] = []
        self.commits: list[dict[TopicPartition, int]] = []
        self.commit_seen = asyncio.Event()
        self.stopped = False

    def subscribe(self, topics: Sequence[str], pattern: str | None, listener: RebalanceListener) -> None:
        self.topics, self.listener = list(topics), listener

    async def start(self) -> None:
        await self.listener.on_partitions_assigned([TP])

    async def fetch(self, timeout_ms: int) -> dict[TopicPartition, list[ConsumedRecord]]:
        self.polls += 1
        if not self.pending:
            await asyncio.sleep(timeout_ms / 1000)  # a broker's long poll with nothing new
            return {}
        batch, self.pending = self.pending, []
        self.fetch_position = self.end if self.end is not None else batch[-1].offset + 1
        return {TP: batch}

    async def position(self, tp: TopicPartition) -> int | None:
        return self.fetch_position

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))
        self.commit_seen.set()

    def pause(self, tp: TopicPartition) -> None: ...

    def resume(self, tp: TopicPartition) -> None: ...

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        raise NotImplementedError

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        raise NotImplementedError

    async def beginning_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        raise NotImplementedError

    async def offsets_for_times(self, times: Mapping[TopicPartition, int]) -> dict[TopicPartition, int | None]:
        raise NotImplementedError

    async def committed(self, tp: TopicPartition) -> int | None:
        raise NotImplementedError

    async def stop(self) -> None:
        self.stopped = True


def slow_six_runtime(consumer: InMemoryConsumer) -> tuple[ConsumerRuntime, asyncio.Event, list[int]]:
    """A runtime on ``consumer`` whose delivery holds the record at offset 6 until the event is set."""
    config = ReactiveConsumerConfig(group="g", backend_url="http://127.0.0.1:9", topics=("orders",))
    delivered: list[int] = []
    release_six = asyncio.Event()

    async def runner(
        batch: Sequence[ConsumedRecord], on_final: Callable[[Sequence[ConsumedRecord], str], None], stats: DeliveryStats
    ) -> None:
        for record in batch:
            if record.offset == 6:
                await release_six.wait()  # offset 6 is slow: nothing past 5 may be committed meanwhile
            delivered.append(record.offset)
            on_final([record], "success")

    def make_worker(topic: str, partition: int) -> PartitionWorker:
        return PartitionWorker(topic, partition, 1, BatchLimits(1, 1 << 20, 0.0), runner, runtime.on_change)

    runtime = ConsumerRuntime("orders", config, KafkaConfig(), make_worker, make_consumer=lambda _: consumer)
    return runtime, release_six, delivered


async def commits_reach(consumer: InMemoryConsumer, offset: int) -> None:
    while consumer.commits[-1] != {TP: offset}:
        await asyncio.wait_for(consumer.commit_seen.wait(), 10)
        consumer.commit_seen.clear()


@pytest.mark.asyncio
async def test_runtime_delivers_commits_contiguously_and_leaves_through_the_seam() -> None:
    consumer = InMemoryConsumer([ConsumedRecord("orders", 0, offset, 0, b"k", b"v") for offset in (5, 6, 7)])
    runtime, release_six, delivered = slow_six_runtime(consumer)
    runtime.start()
    try:
        await asyncio.wait_for(consumer.commit_seen.wait(), 10)
        assert consumer.topics == ["orders"]
        assert runtime.state == "running"
        assert consumer.commits == [{TP: 6}]  # 5 delivered; 6 still in flight
        consumer.commit_seen.clear()
        release_six.set()
        await commits_reach(consumer, 8)
    finally:
        release_six.set()
        await runtime.stop()
    assert delivered == [5, 6, 7]
    assert consumer.stopped
    assert runtime.state == "stopped"
    assert runtime.workers == {}


@pytest.mark.asyncio
async def test_the_commit_follows_the_position_past_markers_only_once_every_record_is_final() -> None:
    """Offsets 5 and 6 are records; 7 is a transaction's commit marker the client skips (position 8)."""
    consumer = InMemoryConsumer([ConsumedRecord("orders", 0, offset, 0, b"k", b"v") for offset in (5, 6)], end=8)
    runtime, release_six, delivered = slow_six_runtime(consumer)
    runtime.start()
    try:
        await asyncio.wait_for(consumer.commit_seen.wait(), 10)
        polls, deadline = consumer.polls, asyncio.get_running_loop().time() + 10
        while consumer.polls < polls + 3:  # a few idle polls, each reading the position (8)
            assert asyncio.get_running_loop().time() < deadline, "the fetch loop stopped polling"
            await asyncio.sleep(0.01)
        assert consumer.commits == [{TP: 6}]  # never past the record still owed a result, whatever the position
        consumer.commit_seen.clear()
        release_six.set()
        await commits_reach(consumer, 8)
        assert runtime.workers[TP].fetched_to == 8
    finally:
        release_six.set()
        await runtime.stop()
    assert delivered == [5, 6]
