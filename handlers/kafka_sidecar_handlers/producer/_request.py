"""Reading a produce request: the Java sidecar's ProduceRequest and REST Proxy v2 bodies, one model.

Every problem is a :class:`ValidationFailed` naming the field (``records[3].partition``), found
before anything is sent.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kafka_sidecar.plugin import PayloadTooLarge, SchemaRef, UnsupportedMediaType, ValidationFailed, parse_headers

V2_PREFIX = "application/vnd.kafka."
V2_SUFFIX = ".v2+json"
# Older clients send the format as its ordinal (BINARY, JSON, AVRO, JSONSCHEMA, PROTOBUF, STRING).
FORMAT_ORDINALS = ("binary", "json", "avro", "jsonschema", "protobuf", "string")

RECORD_FIELDS = frozenset({"key", "value", "partition", "headers", "timestamp", "correlationId", "traceabilityId"})
REQUEST_FIELDS = frozenset(
    {
        "records", "keyFormat", "valueFormat",
        "keySchema", "valueSchema", "keySchemaId", "valueSchemaId",
        "keySchemaVersion", "valueSchemaVersion", "keySchemaSubject", "valueSchemaSubject",
        "keySubjectNameStrategy", "valueSubjectNameStrategy",
        "key_schema", "value_schema", "key_schema_id", "value_schema_id",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ProduceRecordIn:
    key: object
    value: object
    partition: int | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int | None
    correlation_id: str | None
    traceability_id: str | None


@dataclass(frozen=True, slots=True)
class ProduceBatch:
    key_format: str
    value_format: str
    key_schema: SchemaRef
    value_schema: SchemaRef
    records: tuple[ProduceRecordIn, ...]
    v2: bool
    """True when the caller used a REST Proxy v2 media type (the reply uses one too)."""


def media_format(content_type: str) -> str | None:
    """``application/vnd.kafka.avro.v2+json`` -> ``avro``; ``application/json`` or empty -> None."""
    if content_type in ("", "application/json"):
        return None
    if content_type.startswith(V2_PREFIX) and content_type.endswith(V2_SUFFIX):
        middle = content_type[len(V2_PREFIX) : -len(V2_SUFFIX)]
        return middle or "json"
    if content_type == "application/vnd.kafka+json":
        return None
    raise UnsupportedMediaType(
        f"content type {content_type!r} is not accepted; use application/json or "
        "application/vnd.kafka.<format>.v2+json",
        field="Content-Type",
        v2_error_code=41501,
    )


def parse_batch(body: object, embedded: str | None, defaults: tuple[str, str], max_records: int) -> ProduceBatch:
    """``embedded`` is the format named by the content type (see :func:`media_format`), if any."""
    if not isinstance(body, dict):
        raise ValidationFailed("request body must be a JSON object with a 'records' list", field="body")
    _reject_unknown(body, REQUEST_FIELDS, "")
    key_format = _format(body, "keyFormat", embedded or defaults[0])
    value_format = _format(body, "valueFormat", embedded or defaults[1])
    if embedded is not None:
        for name, fmt in (("keyFormat", key_format), ("valueFormat", value_format)):
            if name in body and fmt != embedded:
                raise ValidationFailed(f"{name} {fmt!r} contradicts the content type's format {embedded!r}", field=name)
    records = body.get("records")
    if not isinstance(records, list) or not records:
        raise ValidationFailed("'records' must be a non-empty list", field="records")
    if len(records) > max_records:
        raise PayloadTooLarge(f"at most {max_records} records per request, got {len(records)}", field="records")
    return ProduceBatch(
        key_format,
        value_format,
        _schema_ref(body, "key"),
        _schema_ref(body, "value"),
        tuple(_record(item, index) for index, item in enumerate(records)),
        v2=embedded is not None,
    )


def _reject_unknown(data: Mapping[str, Any], known: frozenset[str], prefix: str) -> None:
    for name in data:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValidationFailed(f"unknown field {name!r}{hint}", field=f"{prefix}{name}")


def _format(body: Mapping[str, Any], name: str, default: str) -> str:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(FORMAT_ORDINALS):
        return FORMAT_ORDINALS[value]
    if isinstance(value, str) and value.strip():
        return value.strip().lower()
    raise ValidationFailed(f"must be a format name such as 'json' or 'avro', got {value!r}", field=name)


def _int_field(body: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        raise ValidationFailed(f"must be a non-negative integer, got {value!r}", field=name)
    return None


def _str_field(body: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, str) and value:
            return value
        raise ValidationFailed(f"must be a non-empty string, got {value!r}", field=name)
    return None


def _schema_ref(body: Mapping[str, Any], role: str) -> SchemaRef:
    ref = SchemaRef(
        schema=_str_field(body, f"{role}Schema", f"{role}_schema"),
        schema_id=_int_field(body, f"{role}SchemaId", f"{role}_schema_id"),
        version=_int_field(body, f"{role}SchemaVersion"),
        subject=_str_field(body, f"{role}SchemaSubject"),
        subject_strategy=_str_field(body, f"{role}SubjectNameStrategy"),
    )
    if ref.schema_id is not None and (ref.version is not None or ref.schema is not None):
        other = f"{role}SchemaVersion" if ref.version is not None else f"{role}Schema"
        raise ValidationFailed(
            f"{role}SchemaId cannot be combined with {other}: give one way to find the schema",
            field=f"{role}SchemaId",
        )
    return ref


def _record(item: object, index: int) -> ProduceRecordIn:
    where = f"records[{index}]"
    if not isinstance(item, dict):
        raise ValidationFailed("each record must be a JSON object", field=where)
    _reject_unknown(item, RECORD_FIELDS, f"{where}.")
    partition = item.get("partition")
    if partition is not None and (not isinstance(partition, int) or isinstance(partition, bool) or partition < 0):
        raise ValidationFailed(f"must be a non-negative integer, got {partition!r}", field=f"{where}.partition")
    timestamp = item.get("timestamp")
    if timestamp is not None and (not isinstance(timestamp, int) or isinstance(timestamp, bool)):
        raise ValidationFailed(f"must be epoch milliseconds, got {timestamp!r}", field=f"{where}.timestamp")
    return ProduceRecordIn(
        key=item.get("key"),
        value=item.get("value"),
        partition=partition,
        headers=parse_headers(item.get("headers"), f"{where}.headers"),
        timestamp_ms=timestamp if timestamp is not None and timestamp > 0 else None,
        correlation_id=_id(item, "correlationId", where),
        traceability_id=_id(item, "traceabilityId", where),
    )


def _id(item: Mapping[str, Any], name: str, where: str) -> str | None:
    value = item.get(name)
    if value is None or (isinstance(value, str) and value):
        return value
    raise ValidationFailed(f"must be a non-empty string, got {value!r}", field=f"{where}.{name}")
