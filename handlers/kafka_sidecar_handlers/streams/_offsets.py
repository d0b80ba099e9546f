"""A processor's consumer group seen from outside: lag per partition, offset reset, internal topics.

The processor's group id is its ``application_id``. Lag is the broker's view (end offset minus the
committed offset, as the group tools show it). A reset commits new offsets for the group with the
group empty (the processor stopped), which is what Kafka's reset tools do through the admin API.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CoordinatorLoadInProgressError, GroupCoordinatorNotAvailableError, NotCoordinatorError
from aiokafka.structs import OffsetAndMetadata

from kafka_sidecar.plugin import Conflict, KafkaConfig, ValidationFailed, admin_kwargs, consumer_kwargs


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    end_offset: int | None

    @property
    def lag(self) -> int | None:
        if self.end_offset is None:
            return None
        return self.end_offset - self.committed if self.committed is not None else None

    def as_dict(self) -> dict[str, object]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "committed": self.committed,
            "end_offset": self.end_offset,
            "lag": self.lag,
        }


T = TypeVar("T")
COORDINATOR_WAIT_S = 10.0


async def _retrying(call: Callable[[], Awaitable[T]]) -> T:
    """``call()``, retried while the group's coordinator is still being elected (a group's first use)."""
    deadline = time.monotonic() + COORDINATOR_WAIT_S
    while True:
        try:
            return await call()
        except (GroupCoordinatorNotAvailableError, CoordinatorLoadInProgressError, NotCoordinatorError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def _clients(
    kafka: KafkaConfig, group: str | None = None
) -> AsyncIterator[tuple[AIOKafkaAdminClient, AIOKafkaConsumer]]:
    admin = AIOKafkaAdminClient(**admin_kwargs(kafka, "processor-admin"))
    consumer = AIOKafkaConsumer(
        **consumer_kwargs(kafka, "processor-offsets"), group_id=group, isolation_level="read_committed"
    )
    await admin.start()
    try:
        await consumer.start()
        try:
            yield admin, consumer
        finally:
            await consumer.stop()
    finally:
        await admin.close()


async def _partitions(admin: AIOKafkaAdminClient, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of ``topics`` (a missing topic has none)."""
    names = list(topics)
    if not names:
        return []
    found: list[TopicPartition] = []
    for topic in await admin.describe_topics(names):
        if topic.get("error_code", 0) == 0:
            found.extend(TopicPartition(topic["topic"], p["partition"]) for p in topic.get("partitions", ()))
    return found


async def group_lag(kafka: KafkaConfig, group: str, topics: Iterable[str]) -> list[PartitionLag]:
    """Committed offset, end offset and lag of every partition the group committed or ``topics`` has."""
    async with _clients(kafka) as (admin, consumer):
        committed: dict[TopicPartition, OffsetAndMetadata] = await _retrying(
            lambda: admin.list_consumer_group_offsets(group)
        )
        wanted = set(committed) | set(await _partitions(admin, topics))
        ends: dict[TopicPartition, int] = await consumer.end_offsets(list(wanted)) if wanted else {}
    out = []
    for tp in sorted(wanted):
        meta = committed.get(tp)
        offset = meta.offset if meta is not None and meta.offset >= 0 else None
        out.append(PartitionLag(tp.topic, tp.partition, offset, ends.get(tp)))
    return out


async def reset_group(
    kafka: KafkaConfig, group: str, topics: Iterable[str], timestamp_ms: int | None
) -> dict[TopicPartition, int]:
    """Commit the beginning (or the first offset at ``timestamp_ms``) for every partition of the group."""
    async with _clients(kafka, group) as (admin, consumer):
        descriptions = await _retrying(lambda: admin.describe_consumer_groups([group]))
        members = _members(descriptions)
        if members:
            raise Conflict(f"group {group!r} still has {members} member(s); stop every instance before a reset")
        committed = await _retrying(lambda: admin.list_consumer_group_offsets(group))
        partitions = sorted(set(committed) | set(await _partitions(admin, topics)))
        if not partitions:
            raise ValidationFailed(f"group {group!r} has no committed offsets and no input_topics are configured")
        consumer.assign(partitions)
        targets: dict[TopicPartition, int] = await consumer.beginning_offsets(partitions)
        if timestamp_ms is not None:
            found = await consumer.offsets_for_times(dict.fromkeys(partitions, timestamp_ms))
            ends = await consumer.end_offsets(partitions)
            targets = {tp: (found[tp].offset if found.get(tp) is not None else ends[tp]) for tp in partitions}
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in targets.items()})
    return targets


async def delete_internal_topics(kafka: KafkaConfig, group: str) -> list[str]:
    """Delete the changelog/repartition topics quixstreams or Kafka Streams made for ``group``."""
    async with _clients(kafka) as (admin, _):
        topics = [t for t in await admin.list_topics() if is_internal_topic(t, group)]
        if topics:
            await admin.delete_topics(topics)
    return sorted(topics)


def is_internal_topic(topic: str, group: str) -> bool:
    quix = topic.startswith((f"changelog__{group}--", f"repartition__{group}--"))
    kstreams = topic.startswith(f"{group}-") and topic.endswith(("-changelog", "-repartition"))
    return quix or kstreams


def _members(descriptions: list[object]) -> int:
    """Member count from aiokafka's DescribeGroups responses."""
    count = 0
    for response in descriptions:
        for group in response.to_object().get("groups", []):  # type: ignore[attr-defined]
            count += len(group.get("members", []))
    return count
