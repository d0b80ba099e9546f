"""``GET .../records``: the long poll, and consumed records as JSON.

A poll answers as soon as one of these holds (REST Proxy v2 read semantics):

* the records gathered reach ``fetch.min.bytes`` (when it is positive);
* the next record would push the reply past ``max_bytes`` (as Confluent: a record larger than
  ``max_bytes`` is not returned, not even alone; ask again with a larger ``max_bytes``);
* the read time runs out: ``min(timeout, consumer.request.timeout.ms)``.

Bytes are counted as key plus value bytes as stored in Kafka. Records are decoded with the
instance's formats; a record that cannot be decoded ends the reply just before it. When it is the
first record of a reply, the poll fails with 422 naming its topic, partition and offset, and the
record stays first in line, so the client decides: seek past it (``POST .../positions`` with
``offset + 1``) or hand it to the dead-letter endpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from operator import attrgetter, is_not

import msgspec
from aiokafka import errors as kafka_errors

from kafka_sidecar.plugin import (
    RawJson,
    RecordUndecodable,
    Serde,
    base64_texts,
    is_json_text,
    json_dumps,
    json_texts,
)
from kafka_sidecar_handlers.active._buffer import PreparedReply, records_size
from kafka_sidecar_handlers.active._instance import ActiveInstance, Fetched, illegal_state, kafka_failure


@dataclass(frozen=True, slots=True)
class PollLimits:
    timeout_s: float
    max_bytes: int
    min_bytes: int
    """``<= 0``: no minimum; wait for the timeout or ``max_bytes``."""
    max_poll_records: int


class ReplyRecord(msgspec.Struct, frozen=True, gc=False):
    """One record of a ``GET .../records`` reply, fields in Confluent's order; written by msgspec in C.
    Not tracked by the cyclic GC (``gc=False``): nothing it holds can refer back to it."""

    topic: str
    key: object
    value: object
    partition: int
    offset: int
    timestamp: int
    headers: Mapping[str, str]


def headers_text(headers: Sequence[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Header bytes as UTF-8 text (bad bytes replaced, a null value is ``""``); a repeated name keeps its last value."""
    if not headers:
        return {}
    return {name: (value or b"").decode("utf-8", "replace") for name, value in headers}


async def gather(instance: ActiveInstance, limits: PollLimits) -> list[Fetched]:
    """Collect records for one reply (the caller holds the instance lock)."""
    if not instance.has_source():
        raise illegal_state("this instance is neither subscribed nor assigned; POST .../subscription first")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.timeout_s
    taken: list[Fetched] = []
    size = 0
    buffer = instance.buffer
    while True:
        size, full = buffer.take(taken, size, limits.max_bytes)
        if full or (limits.min_bytes > 0 and taken and size >= limits.min_bytes):
            return taken
        remaining = deadline - loop.time()
        if remaining <= 0:
            return taken
        try:
            if (deferred := instance.deferred_poll_error) is not None:
                instance.deferred_poll_error = None
                raise deferred
            batch = await instance.consumer.getmany(
                timeout_ms=int(remaining * 1000), max_records=limits.max_poll_records
            )
        except (kafka_errors.KafkaError, TimeoutError) as exc:
            buffer.put_back(taken)
            raise kafka_failure("polling Kafka failed", exc) from exc
        for messages in batch.values():
            buffer.append(messages)


def take_prepared(instance: ActiveInstance, limits: PollLimits) -> PreparedReply | None:
    """The reply :func:`prepare_next` made, when this poll would answer exactly that: every buffered record
    fits ``max_bytes`` and reaches ``fetch.min.bytes`` (so :func:`gather` would take them all and return at
    once), and all their partitions are still assigned. The buffer is then emptied (the caller holds the
    instance lock and hands the records out); otherwise nothing changes and the poll runs as usual."""
    prepared = instance.buffer.prepared
    if prepared is None or prepared.size > limits.max_bytes:
        return None
    if limits.min_bytes <= 0 or prepared.size < limits.min_bytes:
        return None
    owned = {(tp.topic, tp.partition) for tp in instance.assigned()}
    if not prepared.last_offsets.keys() <= owned:
        return None
    instance.buffer.clear()
    return prepared


async def prepare_next(instance: ActiveInstance, max_poll_records: int, key_format: str, value_format: str) -> None:
    """After a reply, while the client reads it: with nothing buffered, move what the consumer has already
    fetched into the buffer (no wait; the poll that would do it next is the same call) and write it as the
    next reply (:class:`PreparedReply`), when its formats need no serde. Runs under the instance lock;
    anything that changes the buffer (a poll taking part of it, seek, assign, a rebalance) forgets it."""
    async with instance.lock:
        if instance.closed or instance.buffer or not instance.has_source():
            return
        try:
            batch = await instance.consumer.getmany(timeout_ms=0, max_records=max_poll_records)
        except (kafka_errors.KafkaError, TimeoutError) as exc:
            instance.deferred_poll_error = exc  # aiokafka reports it once: the next poll answers it
            return
        for messages in batch.values():
            instance.buffer.append(messages)
        records = list(instance.buffer)
        rendered = _render_at_once(records, key_format, value_format) if records else None
        if rendered is not None:
            buffer = instance.buffer
            buffer.prepared = PreparedReply(records, records_size(records), json_dumps(rendered), buffer.last_offsets())


_topic = attrgetter("topic")
_key = attrgetter("key")
_value = attrgetter("value")
_partition = attrgetter("partition")
_offset = attrgetter("offset")
_timestamp = attrgetter("timestamp")
_headers = attrgetter("headers")
_present = partial(is_not, None)
_NO_HEADERS: Mapping[str, str] = {}


async def render(
    instance: ActiveInstance, records: Sequence[Fetched], key_serde: Serde, value_serde: Serde
) -> list[ReplyRecord]:
    """Decode ``records`` in order; stop before the first undecodable one and put the rest back.

    ``binary`` and ``json`` keys and values are handled a whole reply at a time, in C (see
    :func:`_column`); a reply where that does not hold (other formats, a json text that needs the serde's
    word) is decoded record by record."""
    rendered = _render_at_once(records, key_serde.name, value_serde.name)
    if rendered is None:
        return await _render_one_by_one(instance, records, key_serde, value_serde)
    return rendered


def _render_at_once(records: Sequence[Fetched], key_format: str, value_format: str) -> list[ReplyRecord] | None:
    """The reply records of ``records`` without the serdes (see :func:`_column`); None when that does not hold."""
    keys = _column(records, _key, key_format)
    values = _column(records, _value, value_format) if keys is not None else None
    if keys is None or values is None:
        return None
    all_headers = list(map(_headers, records))
    texts = map(headers_text, all_headers) if any(all_headers) else repeat(_NO_HEADERS)
    return list(
        map(
            ReplyRecord,
            map(_topic, records),
            keys,
            values,
            map(_partition, records),
            map(_offset, records),
            map(_timestamp, records),
            texts,
        )
    )


def _column(
    records: Sequence[Fetched], field: Callable[[Fetched], bytes | None], serde_name: str
) -> list[object] | None:
    """The keys (or values) of ``records`` for the reply, when the format allows it without the serde:
    ``binary`` as base64 text written in C (pybase64 when installed, else by the reply encoder); ``json``
    texts checked in C and spliced as they are; tombstones as None. None otherwise."""
    column: list[object] = list(map(field, records))
    if serde_name not in ("binary", "json"):
        return None
    present: list[bytes] = list(filter(_present, column))  # type: ignore[arg-type]
    if not present:
        return column
    if serde_name == "binary":
        written = base64_texts(present) if len(present) == len(column) else None
        return column if written is None else list(written)
    texts = json_texts(present)
    if texts is None:
        return None
    if len(present) == len(column):
        return list(texts)
    spliced = iter(texts)
    return [None if data is None else next(spliced) for data in column]


async def _render_one_by_one(
    instance: ActiveInstance, records: Sequence[Fetched], key_serde: Serde, value_serde: Serde
) -> list[ReplyRecord]:
    rendered: list[ReplyRecord] = []
    key_format, value_format = key_serde.name, value_serde.name
    for index, record in enumerate(records):
        try:
            key = _at_once(record.key, key_format)
            if key is _DECODE:
                key = await key_serde.decode(record.key, record.topic, "key")
            value = _at_once(record.value, value_format)
            if value is _DECODE:
                value = await value_serde.decode(record.value, record.topic, "value")
        except RecordUndecodable as exc:
            instance.buffer.put_back(records[index:])
            if rendered:
                break
            raise RecordUndecodable(
                f"record {record.topic}:{record.partition}@{record.offset} cannot be decoded: {exc.detail}; "
                f"seek past it (offset {record.offset + 1}) or hand it to the dead-letter endpoint",
                field=exc.field,
                extra={"topic": record.topic, "partition": record.partition, "offset": record.offset},
            ) from exc
        rendered.append(
            ReplyRecord(
                record.topic, key, value, record.partition, record.offset, record.timestamp,
                headers_text(record.headers),
            )
        )  # fmt: skip
    return rendered


_DECODE = object()
"""What :func:`_at_once` returns when the serde has to decode."""


def _at_once(data: bytes | None, serde_name: str) -> object:
    """A key or value for the reply without the serde, when that is safe: ``binary`` as the bytes themselves
    (the reply encoder writes base64 text in C); ``json`` text checked in C and spliced as it is, never
    decoded and re-encoded, and a ``json`` tombstone as None. ``_DECODE`` otherwise (NaN, a BOM,
    invalid JSON, other formats): the serde decides."""
    if serde_name == "binary":
        return data
    if serde_name == "json":
        if data is None:
            return None
        if is_json_text(data):
            return RawJson(data)
    return _DECODE


def owned_pairs(
    instance: ActiveInstance, records: Sequence[Fetched], rendered: list[ReplyRecord]
) -> tuple[Sequence[Fetched], list[ReplyRecord]]:
    """Keep only records whose partition is still assigned (a rebalance may have run while decoding)."""
    owned = {(tp.topic, tp.partition) for tp in instance.assigned()}
    if {(r.topic, r.partition) for r in records} <= owned:
        return records, rendered  # the usual case: nothing was taken away
    kept = [(r, d) for r, d in zip(records, rendered, strict=False) if (r.topic, r.partition) in owned]
    return [r for r, _ in kept], [d for _, d in kept]
