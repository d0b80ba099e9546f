"""``POST /consumers/deadLetter/active``: the backend hands back records it could not process.

The body is the Java sidecar's array of results (``[{record: {...}, stacktrace, correlationId, ...}]``)
or ``{"records": [...]}`` whose items are such results or bare records with an ``error``. Each record
is written by the shared :class:`~kafka_sidecar._deadletter.DeadLetterWriter` (the same code the
reactive consumer uses) to ``<topic><suffix>`` with its key, value and headers plus the error
headers. Key and value are turned back into bytes with the record's ``format`` (per item, else the
request's ``format``, else the handler's ``dead_letter_format``): for ``binary`` and ``string`` that
is byte-exact; ``json`` is re-encoded compactly. The reply lists, in order, where each one landed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kafka_sidecar.plugin import (
    ConsumedRecord,
    DeadLetter,
    DeadLetterWriter,
    DeliveryReport,
    SerdeRegistry,
    SerializeContext,
    ValidationFailed,
    dead_letter_topic,
    parse_headers,
    raise_if_none_acknowledged,
)
from kafka_sidecar_handlers.active._requests import topic_name

RESULT_FIELDS = frozenset(
    {"record", "processed", "stacktrace", "error", "correlationId", "traceabilityId", "key", "timestamp", "format"}
)
RECORD_FIELDS = frozenset({"topic", "partition", "offset", "key", "value", "headers", "timestamp", "error", "format"})
ID_HEADERS = (("correlationId", "X-Correlation-Id"), ("traceabilityId", "X-Traceability-Id"))
DEFAULT_ERROR = "rejected by the backend (no error given)"


@dataclass(frozen=True, slots=True)
class DeadLetterRequest:
    items: tuple[tuple[Mapping[str, Any], Mapping[str, Any]], ...]
    """Pairs of (result, record); for a bare record both are the same object."""
    format: str | None
    array: bool


def parse_request(body: object, query: Mapping[str, str], max_records: int) -> DeadLetterRequest:
    fmt = query.get("format")
    array = isinstance(body, list)
    if isinstance(body, dict):
        unknown = set(body) - {"records", "format"}
        if unknown:
            name = sorted(unknown)[0]
            raise ValidationFailed(f"unknown field {name!r}; give 'records' (and optionally 'format')", field=name)
        fmt = body.get("format", fmt)
        items = body.get("records")
        prefix = "records"
    else:
        items, prefix = body, "body"
    if not isinstance(items, list) or not items:
        raise ValidationFailed("give a non-empty JSON array of records (or {'records': [...]})", field=prefix)
    if len(items) > max_records:
        raise ValidationFailed(f"at most {max_records} records per request, got {len(items)}", field=prefix)
    if fmt is not None and not isinstance(fmt, str):
        raise ValidationFailed(f"must be a format name, got {fmt!r}", field="format")
    pairs = []
    for index, item in enumerate(items):
        where = f"{prefix}[{index}]" if prefix == "records" else f"[{index}]"
        if not isinstance(item, dict):
            raise ValidationFailed("must be an object", field=where)
        if "record" in item:
            _reject(item, RESULT_FIELDS, where)
            record = item["record"]
            if not isinstance(record, dict):
                raise ValidationFailed("must be an object", field=f"{where}.record")
            _reject(record, RECORD_FIELDS, f"{where}.record")
        else:
            _reject(item, RECORD_FIELDS, where)
            record = item
        pairs.append((item, record))
    return DeadLetterRequest(tuple(pairs), fmt, array)


def _reject(data: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    for name in data:
        if name not in known:
            raise ValidationFailed(
                f"unknown field {name!r}; known: {', '.join(sorted(known))}", field=f"{where}.{name}"
            )


def _int(data: Mapping[str, Any], name: str, where: str, *, required: bool) -> int | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValidationFailed(f"must be a non-negative integer, got {value!r}", field=f"{where}.{name}")


def _text(data: Mapping[str, Any], name: str, where: str) -> str | None:
    value = data.get(name)
    if value is None or isinstance(value, str):
        return value
    raise ValidationFailed(f"must be a string, got {value!r}", field=f"{where}.{name}")


async def build_letters(
    request: DeadLetterRequest, serdes: SerdeRegistry, default_format: str, suffix: str, consumer: str
) -> list[DeadLetter]:
    letters = []
    for index, (result, record) in enumerate(request.items):
        where = f"[{index}]" if request.array else f"records[{index}]"
        rwhere = f"{where}.record" if result is not record else where
        topic = topic_name(record.get("topic"), f"{rwhere}.topic")
        fmt, fmt_field = _format(record, rwhere, result, where, request.format, default_format)
        serde = serdes.get(fmt, field=fmt_field)
        target = dead_letter_topic(topic, suffix)
        key_ser = await serde.serializer(SerializeContext(target, "key"))
        value_ser = await serde.serializer(SerializeContext(target, "value"))
        headers = list(parse_headers(record.get("headers"), f"{rwhere}.headers"))
        present = {name.lower() for name, _ in headers}
        for field_name, header in ID_HEADERS:
            value = _text(result, field_name, where)
            if value and header.lower() not in present:
                headers.append((header, value.encode("utf-8")))
        error = _text(result, "stacktrace", where) or _text(result, "error", where) or _text(record, "error", rwhere)
        consumed = ConsumedRecord(
            topic=topic,
            partition=_int(record, "partition", rwhere, required=True) or 0,
            offset=_int(record, "offset", rwhere, required=True) or 0,
            timestamp_ms=_int(record, "timestamp", rwhere, required=False) or 0,
            key=key_ser.encode(record.get("key"), f"{rwhere}.key"),
            value=value_ser.encode(record.get("value"), f"{rwhere}.value"),
            headers=tuple(headers),
        )
        letters.append(DeadLetter(consumed, error or DEFAULT_ERROR, consumer=consumer))
    return letters


def _format(
    record: Mapping[str, Any], rwhere: str, result: Mapping[str, Any], where: str, given: str | None, default: str
) -> tuple[str, str]:
    """The format for one item and the field it came from (for error messages)."""
    for data, spot in ((record, rwhere), (result, where)):
        value = _text(data, "format", spot)
        if value:
            return value, f"{spot}.format"
    return (given, "format") if given else (default, "dead_letter_format")


def landing(letter: DeadLetter, report: DeliveryReport, suffix: str) -> dict[str, object]:
    source = letter.record
    return {
        "topic": dead_letter_topic(source.topic, suffix),
        "partition": report.partition,
        "partitionId": report.partition,
        "offset": report.offset,
        "timestamp": report.timestamp_ms,
        "source": {"topic": source.topic, "partition": source.partition, "offset": source.offset},
        "error_code": None if report.acknowledged else report.error_code,
        "error": report.error,
    }


async def write(
    writer: DeadLetterWriter, letters: list[DeadLetter], suffix: str
) -> tuple[int, list[dict[str, object]]]:
    """Write and report: 200 all stored, 207 some not, 503 (raised) when Kafka stored none of them."""
    reports = await writer.write(letters, suffix)
    landed = [landing(letter, report, suffix) for letter, report in zip(letters, reports, strict=True)]
    raise_if_none_acknowledged(reports, "dead letters", {"dead_letters": landed})
    stored = sum(1 for report in reports if report.acknowledged)
    return (200 if stored == len(reports) else 207), landed
