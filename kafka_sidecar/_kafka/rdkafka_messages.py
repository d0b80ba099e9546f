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

import functools
import logging
import time
from collections.abc import Callable
from itertools import groupby
from operator import itemgetter
from typing import Any, NamedTuple, TypeVar

from aiokafka import TopicPartition

_SECOND = itemgetter(1)
R = TypeVar("R")
RecordType = Callable[..., R]


class _Fields(NamedTuple):
    """confluent-kafka's ``Message`` accessors, unbound: ``map(Message.value, messages)`` calls the C method
    directly (0.03 µs per message measured), where ``map(methodcaller("value"), ...)`` looks it up and binds
    it per message first (0.15 µs)."""

    topic: Callable[[Any], Any]
    partition: Callable[[Any], Any]
    offset: Callable[[Any], Any]
    timestamp: Callable[[Any], Any]
    key: Callable[[Any], Any]
    value: Callable[[Any], Any]
    headers: Callable[[Any], Any]
    error: Callable[[Any], Any]


@functools.cache
def _fields() -> _Fields:
    """Imported on first use: confluent-kafka is the optional ``librdkafka`` extra."""
    from confluent_kafka import Message

    return _Fields(
        Message.topic, Message.partition, Message.offset, Message.timestamp, Message.key, Message.value,
        Message.headers, Message.error,
    )  # fmt: skip


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
    fields = _fields()
    return _records(messages, make, list(map(fields.topic, messages)), list(map(fields.partition, messages)))


def _records(messages: list[Any], make: RecordType[R], topics: list[str], partitions: list[int]) -> list[R]:
    fields = _fields()
    if any(map(fields.headers, messages)):
        return [to_record(m, make) for m in messages]
    return list(
        map(
            make,
            topics,
            partitions,
            map(fields.offset, messages),
            map(_SECOND, map(fields.timestamp, messages)),
            map(fields.key, messages),
            map(fields.value, messages),
        )
    )


def split_errors(messages: list[Any]) -> tuple[list[Any], list[Any]]:
    """(records, error events) of one ``consume()``: librdkafka reports consumer errors as messages."""
    if not any(map(_fields().error, messages)):
        return messages, []
    return [m for m in messages if m.error() is None], [m.error() for m in messages if m.error() is not None]


def grouped_records(messages: list[Any], make: RecordType[R]) -> dict[TopicPartition, list[R]]:
    """The records of one ``consume()`` per partition, each partition's in offset order (librdkafka
    returns a partition's messages in order; runs of one partition are joined). Runs are found by
    comparing the ``(topic, partition)`` pairs in C (``groupby`` without a key function), and cut as slices."""
    fields = _fields()
    topics, partitions = list(map(fields.topic, messages)), list(map(fields.partition, messages))
    records = _records(messages, make, topics, partitions)
    grouped: dict[TopicPartition, list[R]] = {}
    start = 0
    for place, run in groupby(zip(topics, partitions, strict=True)):
        end = start + len(list(run))
        found = grouped.get(place)
        if found is None:
            grouped[TopicPartition(*place)] = records[start:end]
        else:
            found.extend(records[start:end])
        start = end
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


class RdKafkaErrorLog:
    """librdkafka's errors (its ``error_cb``, and the error events ``consume()`` returns) as warnings on
    ``logger``, each error code at most once per ``interval_s``: a broker that is down repeats them several
    times a second. The repeats left out are counted, and the next line of that code says how many."""

    def __init__(
        self, logger: logging.Logger, what: str, interval_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._logger = logger
        self._what = what
        self._interval_s = interval_s
        self._clock = clock
        self._logged: dict[int, float] = {}
        self._left_out: dict[int, int] = {}

    def __call__(self, error: Any) -> None:
        code, now = error.code(), self._clock()
        if now - self._logged.get(code, float("-inf")) < self._interval_s:
            self._left_out[code] = self._left_out.get(code, 0) + 1
            return
        self._logged[code] = now
        repeats = self._left_out.pop(code, 0)
        since = f" ({repeats} more since the last such line)" if repeats else ""
        self._logger.warning("%s: librdkafka: %s: %s%s", self._what, error.name(), error.str(), since)
