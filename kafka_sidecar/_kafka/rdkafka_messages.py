"""What a consumer on librdkafka (confluent-kafka) needs of its messages and names: messages as records,
grouped per partition, without a Python frame per record: every column is read by a C-level
``map(methodcaller(...))`` and the records are built by ``map(make, ...)``; only records with headers
take a per-record path.

``make`` is the record type a consumer wants, called with ``(topic, partition, offset, timestamp, key,
value[, headers])``: :class:`~kafka_sidecar.plugin.ConsumedRecord` for the reactive consumer, the active
consumer's own (aiokafka's field names) for it. Partitions are aiokafka's ``TopicPartition`` on the
sidecar's side (:func:`rd_partition` makes librdkafka's); topic patterns are anchored as aiokafka's are
(:func:`anchored_pattern`). Public in ``kafka_sidecar.plugin`` for a team's own librdkafka consumer."""

from __future__ import annotations

from collections.abc import Callable
from itertools import groupby
from operator import attrgetter, itemgetter, methodcaller
from typing import Any, TypeVar

from aiokafka import TopicPartition

_TOPIC, _PARTITION, _OFFSET = methodcaller("topic"), methodcaller("partition"), methodcaller("offset")
_KEY, _VALUE, _HEADERS = methodcaller("key"), methodcaller("value"), methodcaller("headers")
_TIMESTAMP, _SECOND = methodcaller("timestamp"), itemgetter(1)
_ERROR = methodcaller("error")
_PLACE = attrgetter("topic", "partition")
R = TypeVar("R")
RecordType = Callable[..., R]


def to_record(message: Any, make: RecordType[R]) -> R:
    """One message, headers included (values of None become b"")."""
    headers = message.headers()
    return make(
        message.topic(),
        message.partition(),
        message.offset(),
        message.timestamp()[1],  # -1 when the broker gave none (TIMESTAMP_NOT_AVAILABLE)
        message.key(),
        message.value(),
        tuple((k, v if v is not None else b"") for k, v in headers) if headers else (),
    )


def to_records(messages: list[Any], make: RecordType[R]) -> list[R]:
    """Records (not error events) as ``make`` records, in the order given."""
    if any(map(_HEADERS, messages)):
        return [to_record(m, make) for m in messages]
    return list(
        map(
            make,
            map(_TOPIC, messages),
            map(_PARTITION, messages),
            map(_OFFSET, messages),
            map(_SECOND, map(_TIMESTAMP, messages)),
            map(_KEY, messages),
            map(_VALUE, messages),
        )
    )


def split_errors(messages: list[Any]) -> tuple[list[Any], list[Any]]:
    """(records, error events) of one ``consume()``: librdkafka reports consumer errors as messages."""
    if not any(map(_ERROR, messages)):
        return messages, []
    return [m for m in messages if m.error() is None], [m.error() for m in messages if m.error() is not None]


def grouped_records(messages: list[Any], make: RecordType[R]) -> dict[TopicPartition, list[R]]:
    """The records of one ``consume()`` per partition, each partition's in offset order (librdkafka
    returns a partition's messages in order; runs of one partition are joined)."""
    grouped: dict[TopicPartition, list[R]] = {}
    for place, run in groupby(to_records(messages, make), _PLACE):
        found = grouped.get(place)
        if found is None:
            grouped[TopicPartition(*place)] = list(run)
        else:
            found.extend(run)
    return grouped


def rd_partition(tp: TopicPartition, offset: int | None = None) -> Any:
    """``tp`` (and an offset, or a timestamp for ``offsets_for_times``) as confluent-kafka's TopicPartition."""
    from confluent_kafka import TopicPartition as RdTopicPartition

    if offset is None:
        return RdTopicPartition(tp.topic, tp.partition)
    return RdTopicPartition(tp.topic, tp.partition, offset)


def anchored_pattern(pattern: str) -> str:
    """librdkafka takes a subscription starting with ``^`` as a regular expression; aiokafka matches a
    pattern at the start of a topic name, so an unanchored pattern is anchored there."""
    return pattern if pattern.startswith("^") else f"^({pattern})"
