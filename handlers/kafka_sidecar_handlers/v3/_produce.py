"""Confluent REST Proxy v3 produce: the record shape, a stream of records in one body, and ``records:batch``.

A record: ``{"partition_id"?, "headers"?: [{"name", "value": base64}], "key"?: DATA, "value"?: DATA,
"timestamp"?: ISO-8601 or epoch ms}``, where DATA is ``{"type"?: BINARY|JSON|STRING|AVRO|JSONSCHEMA|PROTOBUF,
"data", "schema_id"?, "schema_version"?, "subject"?, "subject_name_strategy"?, "schema"?}``. A key or
value with schema fields and no ``type`` is AVRO unless the schema says otherwise (the schema-registry
plugin resolves it); with neither, JSON.

The body of ``.../records`` is one record or several concatenated (whitespace between them allowed):
the streaming mode. Every record is parsed and encoded before anything is sent; each gets one result,
in order, once the broker has answered it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from kafka_sidecar.plugin import (
    ERROR_KAFKA_RETRIABLE,
    DeliveryReport,
    OutgoingRecord,
    SchemaRef,
    SerdeRegistry,
    SerializeContext,
    ValidationFailed,
    parse_headers,
)

TYPES = ("BINARY", "JSON", "STRING", "AVRO", "JSONSCHEMA", "PROTOBUF")
RECORD_FIELDS = frozenset({"partition_id", "headers", "key", "value", "timestamp"})
DATA_FIELDS = frozenset({"type", "data", "schema_id", "schema_version", "subject", "subject_name_strategy", "schema"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class DataIn:
    type: str
    data: object
    schema: SchemaRef
    present: bool


@dataclass(frozen=True, slots=True)
class RecordIn:
    partition: int | None
    headers: tuple[tuple[str, bytes], ...]
    key: DataIn
    value: DataIn
    timestamp_ms: int | None


def _timestamp(raw: object, field: str) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    if isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw.strip())
        except ValueError:
            moment = None
        if moment is not None:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return (moment - _EPOCH) // timedelta(milliseconds=1)
    raise ValidationFailed(f"must be an ISO-8601 instant or epoch milliseconds, got {raw!r}", field=field)


def _optional_int(data: Mapping[str, Any], name: str, where: str) -> int | None:
    value = data.get(name)
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    raise ValidationFailed(f"must be a non-negative integer, got {value!r}", field=f"{where}.{name}")


def _optional_str(data: Mapping[str, Any], name: str, where: str) -> str | None:
    value = data.get(name)
    if value is None or (isinstance(value, str) and value):
        return value
    raise ValidationFailed(f"must be a non-empty string, got {value!r}", field=f"{where}.{name}")


def _data(raw: object, where: str) -> DataIn:
    if raw is None:
        return DataIn("JSON", None, SchemaRef(), present=False)
    if not isinstance(raw, dict):
        raise ValidationFailed("must be an object with 'type' and 'data'", field=where)
    for name in raw:
        if name not in DATA_FIELDS:
            raise ValidationFailed(
                f"unknown field {name!r}; known: {', '.join(sorted(DATA_FIELDS))}", field=f"{where}.{name}"
            )
    schema = SchemaRef(
        schema=_optional_str(raw, "schema", where),
        schema_id=_optional_int(raw, "schema_id", where),
        version=_optional_int(raw, "schema_version", where),
        subject=_optional_str(raw, "subject", where),
        subject_strategy=_optional_str(raw, "subject_name_strategy", where),
    )
    kind = raw.get("type")
    if kind is None:
        kind = "AVRO" if schema.given else "JSON"
    if not isinstance(kind, str) or kind.upper() not in TYPES:
        raise ValidationFailed(f"must be one of {', '.join(TYPES)}, got {kind!r}", field=f"{where}.type")
    kind = kind.upper()
    if kind in ("BINARY", "JSON", "STRING") and schema.given:
        raise ValidationFailed(f"type {kind} takes no schema; use AVRO, JSONSCHEMA or PROTOBUF", field=f"{where}.type")
    return DataIn(kind, raw.get("data"), schema, present=True)


def parse_record(raw: object, where: str) -> RecordIn:
    if not isinstance(raw, dict):
        raise ValidationFailed("each record must be a JSON object", field=where or "body")
    prefix = f"{where}." if where else ""
    for name in raw:
        if name not in RECORD_FIELDS:
            raise ValidationFailed(
                f"unknown field {name!r}; known: {', '.join(sorted(RECORD_FIELDS))}", field=f"{prefix}{name}"
            )
    partition = _optional_int(raw, "partition_id", where or "record")
    return RecordIn(
        partition=partition,
        headers=parse_headers(raw.get("headers"), f"{prefix}headers"),
        key=_data(raw.get("key"), f"{prefix}key"),
        value=_data(raw.get("value"), f"{prefix}value"),
        timestamp_ms=_timestamp(raw.get("timestamp"), f"{prefix}timestamp"),
    )


class Encoder:
    """Records of one topic as bytes; a serializer is looked up once per (role, type, schema) and kept."""

    def __init__(self, topic: str, serdes: SerdeRegistry) -> None:
        self._topic = topic
        self._serdes = serdes
        self._serializers: dict[tuple[str, str, SchemaRef], Any] = {}

    async def _bytes(self, data: DataIn, role: Literal["key", "value"], where: str) -> bytes | None:
        if not data.present or data.data is None:
            return None
        prefix = f"{where}." if where else ""
        cache_key = (role, data.type, data.schema)
        serializer = self._serializers.get(cache_key)
        if serializer is None:
            serde = self._serdes.get(data.type.lower(), field=f"{prefix}{role}.type")
            serializer = await serde.serializer(SerializeContext(self._topic, role, data.schema))
            self._serializers[cache_key] = serializer
        value: bytes | None = serializer.encode(data.data, f"{prefix}{role}.data")
        return value

    def schema_ids(self, record: RecordIn) -> tuple[int | None, int | None]:
        """The registry ids of the schemas the record's key and value were encoded with (after :meth:`encode`)."""
        found = []
        for role, data in (("key", record.key), ("value", record.value)):
            serializer = self._serializers.get((role, data.type, data.schema)) if data.present else None
            found.append(getattr(serializer, "schema_id", None))
        return found[0], found[1]

    async def encode(self, record: RecordIn, where: str) -> OutgoingRecord:
        return OutgoingRecord(
            topic=self._topic,
            key=await self._bytes(record.key, "key", where),
            value=await self._bytes(record.value, "value", where),
            headers=record.headers,
            partition=record.partition,
            timestamp_ms=record.timestamp_ms,
        )


def iso(millis: int | None) -> str | None:
    if millis is None or millis < 0:
        return None
    moment = _EPOCH + timedelta(milliseconds=millis)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def result(
    cluster_id: str,
    topic: str,
    record: RecordIn,
    sent: OutgoingRecord,
    report: DeliveryReport,
    schema_ids: tuple[int | None, int | None] = (None, None),
) -> dict[str, object]:
    """Confluent's ProduceResponse for an acknowledged record, or ``{error_code, message}``."""
    if not report.acknowledged:
        status = 503 if report.error_code == ERROR_KAFKA_RETRIABLE else report.error_code // 100
        return {"error_code": status, "message": report.error or "not acknowledged"}
    body: dict[str, object] = {
        "error_code": 200,
        "cluster_id": cluster_id,
        "topic_name": topic,
        "partition_id": report.partition,
        "offset": report.offset,
        "timestamp": iso(report.timestamp_ms),
    }
    for role, data, raw, schema_id in (
        ("key", record.key, sent.key, schema_ids[0]),
        ("value", record.value, sent.value, schema_ids[1]),
    ):
        if raw is None:
            continue
        described: dict[str, object] = {"type": data.type, "size": len(raw)}
        if schema_id is not None:
            described["schema_id"] = schema_id
        if data.schema.subject is not None:
            described["subject"] = data.schema.subject
        if data.schema.version is not None:
            described["schema_version"] = data.schema.version
        body[role] = described
    return body
