"""The producer terminal: ``POST /producers/{topic}`` and the REST Proxy v2 ``/topics/...`` routes.

The whole batch is validated and serialized before anything is sent; the reply comes only after the
broker has acknowledged or refused every record. Status at a glance: 200 every record acknowledged,
207 some were not (see each ``error_code``), 503 Kafka wrote none of them (safe to retry), 504 Kafka
acknowledged none in time and some may still be written (retry with the same ``Idempotency-Key``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter

from kafka_sidecar.plugin import (
    OUTGOING_HEADERS,
    PRODUCED,
    V2_MEDIA_TYPE,
    DeliveryReport,
    Exchange,
    HandlerSpec,
    NotFound,
    OutgoingRecord,
    Produced,
    Reply,
    Resources,
    SerializeContext,
    ValidationFailed,
    checked_topic_name,
    hookimpl,
    idempotency_key,
    parse_headers,
    raise_if_none_acknowledged,
    request_fingerprint,
)
from kafka_sidecar_handlers.producer._check import check_producer
from kafka_sidecar_handlers.producer._openapi import describe_produce
from kafka_sidecar_handlers.producer._request import ProduceRecordIn, media_format, parse_batch, utf8

CORRELATION_HEADER = "X-Correlation-Id"
TRACEABILITY_HEADER = "X-Traceability-Id"


@dataclass(frozen=True, slots=True)
class ProducerConfig:
    key_format: str = field(default="json", metadata={"doc": "Key format when the request names none."})
    value_format: str = field(default="json", metadata={"doc": "Value format when the request names none."})
    max_records: int = field(default=10000, metadata={"doc": "Most records in one request (more is 413)."})


class ProducerHandler:
    """Terminal handler; stateless across requests."""

    def __init__(self, config: ProducerConfig, resources: Resources) -> None:
        self._defaults = (config.key_format, config.value_format)
        self._max_records = config.max_records
        self._serdes = resources.serdes
        self._producer = resources.producer
        self._idempotency = resources.idempotency
        self._settle_s = resources.config.kafka.producer.idempotency_window_s

    async def __call__(self, exchange: Exchange) -> Reply:
        request = exchange.http()
        key = idempotency_key(request.headers)
        if key is None:
            return await self._produce(exchange, None)
        fingerprint = request_fingerprint(request.method, request.path, request.content_type, request.body)
        # With a key the produce may outlive this request, waiting for the broker's real answer for a retry.
        return await self._idempotency.run(
            key, fingerprint, lambda: self._produce(exchange, self._settle_s), self._producer.timeout_s + 1
        )

    async def _produce(self, exchange: Exchange, ack_timeout: float | None) -> Reply:
        request = exchange.http()
        topic = checked_topic_name(request.path_params.get("topic", ""), "topic")
        path_partition = _path_partition(request.path_params.get("partition"))
        embedded = media_format(request.content_type)
        batch = parse_batch(exchange.json_body(), embedded, self._defaults, self._max_records)
        key_serde = self._serdes.get(batch.key_format, field="keyFormat")
        value_serde = self._serdes.get(batch.value_format, field="valueFormat")
        key_serializer = await key_serde.serializer(SerializeContext(topic, "key", batch.key_schema))
        value_serializer = await value_serde.serializer(SerializeContext(topic, "value", batch.value_schema))
        shared_headers = exchange.stash.get(OUTGOING_HEADERS) or []
        outgoing = _outgoing(topic, batch.records, key_serializer.encode, value_serializer.encode, shared_headers,
                             path_partition)  # fmt: skip
        partitions = await self._producer.partitions_for(topic)
        _check_partitions(outgoing, partitions, path_partition)
        reports = await self._producer.send_batch(outgoing, ack_timeout=ack_timeout)
        produced = Produced(topic, tuple(outgoing), tuple(reports))
        exchange.stash[PRODUCED] = produced
        all_acknowledged = produced.acknowledged == len(reports)
        body = {
            "offsets": _offset_entries(reports, all_acknowledged),
            "key_schema_id": key_serializer.schema_id,
            "value_schema_id": value_serializer.schema_id,
        }
        raise_if_none_acknowledged(reports, "records", body)
        status = 200 if all_acknowledged else 207
        return Reply(status=status, body=body, media_type=V2_MEDIA_TYPE if batch.v2 else "application/json")


Encode = Callable[[object, str], bytes | None]
_KEY, _VALUE, _PARTITION = attrgetter("key"), attrgetter("value"), attrgetter("partition")
_TIMESTAMP = attrgetter("timestamp")
_OWN = attrgetter("headers", "correlation_id", "traceability_id")
_NONE_OWN = (None, None, None)


def _outgoing(
    topic: str,
    records: Sequence[ProduceRecordIn],
    key_encode: Encode,
    value_encode: Encode,
    shared_headers: Sequence[tuple[str, bytes]],
    path_partition: int | None,
) -> list[OutgoingRecord]:
    """The request's records, serialized. The common case (no per-record headers or ids, every record
    valid) runs column by column in C-level ``map`` calls, without a Python step per record; otherwise
    the records are built one by one, which names the first failing field (``records[3].value``)."""
    try:
        keys = list(map(key_encode, map(_KEY, records), repeat("records[].key")))
        values = list(map(value_encode, map(_VALUE, records), repeat("records[].value")))
    except (ValidationFailed, UnicodeEncodeError):
        return _outgoing_one_by_one(topic, records, key_encode, value_encode, shared_headers, path_partition)
    if (None, None) in zip(keys, values, strict=True) or list(map(_OWN, records)).count(_NONE_OWN) != len(records):
        encoded = list(zip(keys, values, strict=True))
        return _outgoing_one_by_one(topic, records, key_encode, value_encode, shared_headers, path_partition, encoded)
    partitions = repeat(path_partition) if path_partition is not None else map(_PARTITION, records)
    timestamps: Iterable[int | None] = map(_TIMESTAMP, records)
    if list(map(_TIMESTAMP, records)).count(None) != len(records):
        timestamps = [ts if ts is not None and ts > 0 else None for ts in map(_TIMESTAMP, records)]
    headers = repeat(tuple(shared_headers))  # one tuple shared by every record
    return list(map(OutgoingRecord, repeat(topic), keys, values, headers, partitions, timestamps))


def _outgoing_one_by_one(
    topic: str,
    records: Sequence[ProduceRecordIn],
    key_encode: Encode,
    value_encode: Encode,
    shared_headers: Sequence[tuple[str, bytes]],
    path_partition: int | None,
    encoded: Sequence[tuple[bytes | None, bytes | None]] | None = None,
) -> list[OutgoingRecord]:
    """Record by record, in order (key, value, headers): the first problem raised names its field."""
    outgoing = []
    for index, record in enumerate(records):
        where = f"records[{index}]"
        if encoded is None:
            key = _encoded(key_encode, record.key, f"{where}.key")
            value = _encoded(value_encode, record.value, f"{where}.value")
        else:
            key, value = encoded[index]
        if key is None and value is None:
            raise ValidationFailed("a record needs a key or a value", field=f"{where}.value")
        timestamp = record.timestamp
        outgoing.append(
            OutgoingRecord(
                topic,
                key,
                value,
                _headers(record, shared_headers, where),
                path_partition if path_partition is not None else record.partition,
                timestamp if timestamp is not None and timestamp > 0 else None,
            )
        )
    return outgoing


def _offset_entries(reports: Sequence[DeliveryReport], all_acknowledged: bool) -> list[dict[str, object]]:
    """The reply's ``offsets``; when every record was acknowledged (the usual case) one comprehension
    without a function call per record (measured 21 µs per 100 records with the reply's encoding,
    against 51 µs for ``map(dict, zip(...))`` in C)."""
    if all_acknowledged:
        return [
            {"partition": r.partition, "offset": r.offset, "timestamp": r.timestamp_ms, "error_code": None,
             "error": None}
            for r in reports
        ]  # fmt: skip
    return [_offset_entry(report) for report in reports]


def _path_partition(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit():
        raise ValidationFailed(f"partition must be a non-negative integer, got {raw!r}", field="partition")
    return int(raw)


def _check_partitions(records: Sequence[OutgoingRecord], partitions: set[int], path_partition: int | None) -> None:
    if path_partition is not None and path_partition not in partitions:
        raise NotFound(
            f"partition {path_partition} does not exist (topic has {len(partitions)})",
            field="partition",
            v2_error_code=40402,
        )
    named = set(map(_PARTITION, records))
    named.discard(None)
    if named <= partitions:
        return
    for index, record in enumerate(records):
        if record.partition is not None and record.partition not in partitions:
            raise ValidationFailed(
                f"partition {record.partition} does not exist (topic has {len(partitions)})",
                field=f"records[{index}].partition",
            )


def _encoded(encode: Encode, data: object, field: str) -> bytes | None:
    try:
        return encode(data, field)
    except UnicodeEncodeError as exc:
        raise ValidationFailed(f"not valid Unicode text (lone surrogate at {exc.start})", field=field) from exc


def _headers(record: ProduceRecordIn, shared: Sequence[tuple[str, bytes]], where: str) -> tuple[tuple[str, bytes], ...]:
    """Per-record id fields win over the record's own headers, which win over exchange-wide ones."""
    own_headers = parse_headers(record.headers, f"{where}.headers")
    if not own_headers and record.correlation_id is None and record.traceability_id is None:
        return tuple(shared)
    ids: list[tuple[str, bytes]] = []
    if record.correlation_id is not None:
        ids.append((CORRELATION_HEADER, utf8(record.correlation_id, f"{where}.correlationId")))
    if record.traceability_id is not None:
        ids.append((TRACEABILITY_HEADER, utf8(record.traceability_id, f"{where}.traceabilityId")))
    taken = {name.lower() for name, _ in ids}
    own = [(n, v) for n, v in own_headers if n.lower() not in taken]
    taken.update(name.lower() for name, _ in own)
    inherited = [(n, v) for n, v in shared if n.lower() not in taken]
    return (*own, *inherited, *ids)


def _offset_entry(report: DeliveryReport) -> dict[str, object]:
    return {
        "partition": report.partition,
        "offset": report.offset,
        "timestamp": report.timestamp_ms,
        "error_code": None if report.acknowledged else report.error_code,
        "error": report.error,
    }


@hookimpl
def kafka_sidecar_register_handlers(register: Callable[[HandlerSpec[ProducerConfig]], None]) -> None:
    register(
        HandlerSpec(
            name="producer",
            factory=ProducerHandler,
            config_type=ProducerConfig,
            kind="terminal",
            check=check_producer,
            description="Produce a batch of records to a topic and answer with per-record offsets.",
            describe=describe_produce,
        )
    )
