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
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import errors as kafka_errors

from kafka_sidecar.plugin import RawJson, RecordUndecodable, Serde, is_json_text
from kafka_sidecar_handlers.active._instance import ActiveInstance, Fetched, illegal_state, kafka_failure


@dataclass(frozen=True, slots=True)
class PollLimits:
    timeout_s: float
    max_bytes: int
    min_bytes: int
    """``<= 0``: no minimum; wait for the timeout or ``max_bytes``."""
    max_poll_records: int


def record_size(record: Fetched) -> int:
    return len(record.key or b"") + len(record.value or b"")


def headers_text(headers: Sequence[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Header bytes as UTF-8 text (bad bytes replaced, a null value is ``""``); a repeated name keeps its last value."""
    if not headers:
        return {}
    return {name: (value or b"").decode("utf-8", "replace") for name, value in headers}


def _take(instance: ActiveInstance, taken: list[Fetched], size: int, limits: PollLimits) -> tuple[int, bool]:
    """Move buffered records into ``taken`` while they fit; True when the reply is full."""
    buffer = instance.buffer
    while buffer:
        next_size = record_size(buffer[0])
        if size + next_size > limits.max_bytes:
            return size, True
        taken.append(buffer.popleft())
        size += next_size
        if size >= limits.max_bytes:
            return size, True
    return size, False


async def gather(instance: ActiveInstance, limits: PollLimits) -> list[Fetched]:
    """Collect records for one reply (the caller holds the instance lock)."""
    if not instance.has_source():
        raise illegal_state("this instance is neither subscribed nor assigned; POST .../subscription first")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.timeout_s
    taken: list[Fetched] = []
    size = 0
    while True:
        size, full = _take(instance, taken, size, limits)
        if full or (limits.min_bytes > 0 and taken and size >= limits.min_bytes):
            return taken
        remaining = deadline - loop.time()
        if remaining <= 0:
            return taken
        try:
            batch = await instance.consumer.getmany(
                timeout_ms=int(remaining * 1000), max_records=limits.max_poll_records
            )
        except (kafka_errors.KafkaError, TimeoutError) as exc:
            instance.buffer.extendleft(reversed(taken))
            raise kafka_failure("polling Kafka failed", exc) from exc
        for messages in batch.values():
            instance.buffer.extend(messages)


async def render(
    instance: ActiveInstance, records: Sequence[Fetched], key_serde: Serde, value_serde: Serde
) -> list[dict[str, object]]:
    """Decode ``records`` in order; stop before the first undecodable one and put the rest back."""
    rendered: list[dict[str, object]] = []
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
            instance.buffer.extendleft(reversed(records[index:]))
            if rendered:
                break
            raise RecordUndecodable(
                f"record {record.topic}:{record.partition}@{record.offset} cannot be decoded: {exc.detail}; "
                f"seek past it (offset {record.offset + 1}) or hand it to the dead-letter endpoint",
                field=exc.field,
                extra={"topic": record.topic, "partition": record.partition, "offset": record.offset},
            ) from exc
        rendered.append(
            {
                "topic": record.topic,
                "key": key,
                "value": value,
                "partition": record.partition,
                "offset": record.offset,
                "timestamp": record.timestamp,
                "headers": headers_text(record.headers),
            }
        )
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
    instance: ActiveInstance, records: Sequence[Fetched], rendered: list[dict[str, object]]
) -> tuple[list[Fetched], list[dict[str, object]]]:
    """Keep only records whose partition is still assigned (a rebalance may have run while decoding)."""
    owned = {(tp.topic, tp.partition) for tp in instance.assigned()}
    if {(r.topic, r.partition) for r in records} <= owned:
        return list(records), rendered  # the usual case: nothing was taken away
    kept = [(r, d) for r, d in zip(records, rendered, strict=False) if (r.topic, r.partition) in owned]
    return [r for r, _ in kept], [d for _, d in kept]
