"""The aiokafka engine of the reactive consumer (``kafka.consumer.engine: aiokafka``, the default):
:class:`~kafka_sidecar_handlers.reactive._client.ConsumerClient` over an ``AIOKafkaConsumer``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from itertools import starmap
from operator import attrgetter
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from kafka_sidecar.plugin import ConsumedRecord, KafkaConfig, consumer_kwargs
from kafka_sidecar_handlers.reactive._client import RebalanceListener
from kafka_sidecar_handlers.reactive._config import ReactiveConsumerConfig

POSITION_WAIT_S = 0.05
"""How long a position may take (right after assignment aiokafka may not know it yet)."""


def to_record(message: Any) -> ConsumedRecord:
    headers = message.headers
    return ConsumedRecord(  # positional: measurably cheaper per record than keywords
        message.topic,
        message.partition,
        message.offset,
        message.timestamp if message.timestamp is not None else -1,
        message.key,
        message.value,
        tuple((k, bytes(v) if v is not None else b"") for k, v in headers) if headers else (),
    )


_FIELDS = attrgetter("topic", "partition", "offset", "timestamp", "key", "value")
_HEADERS, _TIMESTAMP = attrgetter("headers"), attrgetter("timestamp")


def to_records(messages: list[Any]) -> list[ConsumedRecord]:
    """The client's records of one partition as consumed records. The common case (no headers,
    every timestamp set) is built by one ``map`` (no Python frame per record); the rest record by record."""
    if any(map(_HEADERS, messages)) or None in map(_TIMESTAMP, messages):
        return [to_record(m) for m in messages]
    return list(starmap(ConsumedRecord, map(_FIELDS, messages)))


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka wants an instance of its listener class: this one passes the calls on."""

    def __init__(self, listener: RebalanceListener) -> None:
        self._listener = listener

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._listener.on_partitions_revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._listener.on_partitions_assigned(list(assigned))


class AiokafkaClient:
    """A :class:`ConsumerClient` on aiokafka: everything runs on the event loop."""

    engine = "aiokafka"

    def __init__(self, consumer: AIOKafkaConsumer, fetch_max_records: int) -> None:
        self._consumer = consumer
        self._max_records = fetch_max_records

    def subscribe(self, topics: Sequence[str], pattern: str | None, listener: RebalanceListener) -> None:
        if pattern:
            self._consumer.subscribe(pattern=pattern, listener=_Listener(listener))
        else:
            self._consumer.subscribe(topics=list(topics), listener=_Listener(listener))

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def fetch(self, timeout_ms: int) -> dict[TopicPartition, list[ConsumedRecord]]:
        fetched = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=self._max_records)
        return {tp: to_records(messages) for tp, messages in fetched.items() if messages}

    async def position(self, tp: TopicPartition) -> int | None:
        try:
            return int(await asyncio.wait_for(self._consumer.position(tp), POSITION_WAIT_S))
        except (TimeoutError, KafkaError):
            return None  # no position yet (assignment in progress) or no longer assigned

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        await self._consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items()})

    def pause(self, tp: TopicPartition) -> None:
        self._consumer.pause(tp)

    def resume(self, tp: TopicPartition) -> None:
        self._consumer.resume(tp)

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        self._consumer.seek(tp, offset)

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        found: dict[TopicPartition, int] = await self._consumer.end_offsets(list(tps))
        return found

    async def beginning_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        found: dict[TopicPartition, int] = await self._consumer.beginning_offsets(list(tps))
        return found

    async def offsets_for_times(self, times: Mapping[TopicPartition, int]) -> dict[TopicPartition, int | None]:
        found = await self._consumer.offsets_for_times(dict(times))
        return {tp: (found[tp].offset if found.get(tp) is not None else None) for tp in times}

    async def committed(self, tp: TopicPartition) -> int | None:
        found = await self._consumer.committed(tp)
        return found if isinstance(found, int) and found >= 0 else None


def aiokafka_client(name: str, config: ReactiveConsumerConfig, kafka: KafkaConfig) -> AiokafkaClient:
    """The aiokafka client of reactive consumer ``name`` (in its group, not started)."""
    consumer = AIOKafkaConsumer(
        **consumer_kwargs(kafka, f"reactive-{name}"),
        group_id=config.group,
        auto_offset_reset=config.auto_offset_reset,
        isolation_level=config.isolation_level,
        session_timeout_ms=config.session_timeout_ms,
        heartbeat_interval_ms=config.heartbeat_interval_ms,
        max_partition_fetch_bytes=config.max_partition_fetch_bytes,
        max_poll_records=config.fetch_max_records,
    )
    return AiokafkaClient(consumer, config.fetch_max_records)
