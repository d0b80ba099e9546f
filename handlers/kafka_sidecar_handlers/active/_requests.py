"""Reading active-consumer requests: REST Proxy v2 bodies and the Java sidecar's spellings, one model.

Every problem is a :class:`ValidationFailed` naming the field (``offsets[2].partition``), raised
before the consumer is touched. Creation settings that are wrong carry the v2 code 42204
("invalid consumer configuration").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from kafka_sidecar.plugin import (
    V2_MEDIA_TYPE,
    NotAcceptable,
    UnsupportedMediaType,
    ValidationFailed,
    checked_topic_name,
    v2_embedded_format,
    v2_media_type,
)

V2_INVALID_CONSUMER_CONFIG = 42204
V2_FORMAT_MISMATCH = 40601
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INSTANCE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
OffsetReset = Literal["earliest", "latest", "none"]
_RESETS: Mapping[str, OffsetReset] = {
    "earliest": "earliest", "smallest": "earliest", "latest": "latest", "largest": "latest", "none": "none",
}  # fmt: skip

CREATE_FIELDS: Mapping[str, str] = {
    # accepted spelling -> canonical setting
    "name": "name", "id": "name",
    "format": "format", "keyFormat": "key_format", "valueFormat": "value_format",
    "auto.offset.reset": "auto_offset_reset", "autoOffsetReset": "auto_offset_reset",
    "auto.commit.enable": "auto_commit_enable", "autoCommitEnable": "auto_commit_enable",
    "fetch.min.bytes": "fetch_min_bytes", "responseMinBytes": "fetch_min_bytes",
    "consumer.request.timeout.ms": "request_timeout_ms", "requestWaitMs": "request_timeout_ms",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CreateDefaults:
    format: str
    auto_offset_reset: OffsetReset
    auto_commit_enable: bool
    fetch_min_bytes: int
    request_timeout_ms: int


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """What ``POST /consumers/{group}`` asked for, defaults filled in."""

    name: str | None
    key_format: str
    value_format: str
    auto_offset_reset: OffsetReset
    auto_commit_enable: bool
    fetch_min_bytes: int
    """``-1``: wait for ``timeout`` or ``max_bytes`` (Confluent); ``n > 0``: answer once ``n`` bytes are in."""
    request_timeout_ms: int


@dataclass(frozen=True, slots=True)
class Partition:
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class PartitionOffset:
    topic: str
    partition: int
    offset: int
    metadata: str | None = None


@dataclass(frozen=True, slots=True)
class PartitionTimestamp:
    topic: str
    partition: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class Subscription:
    topics: tuple[str, ...]
    pattern: str | None


def as_object(body: object, *, allow_empty: bool = False) -> Mapping[str, Any]:
    if body is None and allow_empty:
        return {}
    if not isinstance(body, dict):
        raise ValidationFailed("request body must be a JSON object", field="body")
    return body


def _reject_unknown(body: Mapping[str, Any], known: frozenset[str] | Mapping[str, str], where: str = "") -> None:
    for name in body:
        if name not in known:
            raise ValidationFailed(f"unknown field {name!r}; known: {', '.join(sorted(known))}", field=f"{where}{name}")


def parse_create(body: object, defaults: CreateDefaults, known_formats: frozenset[str]) -> CreateRequest:
    data = as_object(body, allow_empty=True)
    _reject_unknown(data, CREATE_FIELDS)
    given: dict[str, tuple[str, object]] = {}
    for spelling, value in data.items():
        setting = CREATE_FIELDS[spelling]
        if value is None:
            continue
        if setting in given:
            raise ValidationFailed(
                f"{spelling!r} and {given[setting][0]!r} set the same thing; give one", field=spelling
            )
        given[setting] = (spelling, value)

    def get(setting: str) -> tuple[str, object] | None:
        return given.get(setting)

    name = _create_name(get("name"))
    fmt = _create_format(get("format"), defaults.format, known_formats)
    key_format = _create_format(get("key_format"), fmt, known_formats)
    value_format = _create_format(get("value_format"), fmt, known_formats)
    return CreateRequest(
        name=name,
        key_format=key_format,
        value_format=value_format,
        auto_offset_reset=_create_reset(get("auto_offset_reset"), defaults.auto_offset_reset),
        auto_commit_enable=_create_bool(get("auto_commit_enable"), defaults.auto_commit_enable),
        fetch_min_bytes=_create_int(get("fetch_min_bytes"), defaults.fetch_min_bytes, minimum=-1),
        request_timeout_ms=_create_int(get("request_timeout_ms"), defaults.request_timeout_ms, minimum=0),
    )


def _invalid(message: str, field: str) -> ValidationFailed:
    return ValidationFailed(message, field=field, v2_error_code=V2_INVALID_CONSUMER_CONFIG)


def _create_name(given: tuple[str, object] | None) -> str | None:
    if given is None:
        return None
    spelling, value = given
    if not isinstance(value, str) or not _INSTANCE_NAME.match(value):
        raise _invalid(f"must be 1-200 characters of letters, digits, '.', '_' or '-', got {value!r}", spelling)
    return value


def _create_format(given: tuple[str, object] | None, default: str, known: frozenset[str]) -> str:
    if given is None:
        return default
    spelling, value = given
    if not isinstance(value, str) or value.strip().lower() not in known:
        raise _invalid(f"unknown format {value!r}; known formats: {', '.join(sorted(known))}", spelling)
    return value.strip().lower()


def _create_reset(given: tuple[str, object] | None, default: OffsetReset) -> OffsetReset:
    if given is None:
        return default
    spelling, value = given
    reset = _RESETS.get(value.strip().lower()) if isinstance(value, str) else None
    if reset is None:
        raise _invalid(f"must be 'earliest', 'latest' or 'none', got {value!r}", spelling)
    return reset


def _create_bool(given: tuple[str, object] | None, default: bool) -> bool:
    if given is None:
        return default
    spelling, value = given
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _invalid(f"must be true or false, got {value!r}", spelling)


def _create_int(given: tuple[str, object] | None, default: int, *, minimum: int) -> int:
    if given is None:
        return default
    spelling, value = given
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value.strip())
    if number is None or number < minimum:
        raise _invalid(f"must be an integer >= {minimum}, got {value!r}", spelling)
    return number


def topic_name(value: object, field: str) -> str:
    return checked_topic_name(value, field)


def _non_negative(value: object, field: str, what: str = "a non-negative integer") -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValidationFailed(f"must be {what}, got {value!r}", field=field)


def parse_subscription(body: object) -> Subscription:
    data = as_object(body)
    _reject_unknown(data, frozenset({"topics", "topic_pattern"}))
    topics, pattern = data.get("topics"), data.get("topic_pattern")
    if (topics is None) == (pattern is None):
        raise ValidationFailed("give exactly one of 'topics' (a list) or 'topic_pattern' (a regex)", field="topics")
    if pattern is not None:
        if not isinstance(pattern, str) or not pattern:
            raise ValidationFailed("must be a non-empty regular expression", field="topic_pattern")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValidationFailed(f"is not a valid regular expression: {exc}", field="topic_pattern") from exc
        return Subscription((), pattern)
    if not isinstance(topics, list) or not topics:
        raise ValidationFailed("must be a non-empty list of topic names", field="topics")
    names = tuple(topic_name(topic, f"topics[{i}]") for i, topic in enumerate(topics))
    return Subscription(tuple(dict.fromkeys(names)), None)


def _entries(data: Mapping[str, Any], name: str, *, required: bool) -> list[Mapping[str, Any]]:
    raw = data.get(name)
    if raw is None:
        if required:
            raise ValidationFailed(f"'{name}' is required: a list of objects", field=name)
        return []
    if not isinstance(raw, list) or (required and not raw):
        raise ValidationFailed("must be a non-empty list of objects", field=name)
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ValidationFailed("must be an object", field=f"{name}[{index}]")
    return raw


def _partition(item: Mapping[str, Any], where: str, extra: frozenset[str] = frozenset()) -> Partition:
    _reject_unknown(item, frozenset({"topic", "partition"}) | extra, f"{where}.")
    return Partition(
        topic_name(item.get("topic"), f"{where}.topic"),
        _non_negative(item.get("partition"), f"{where}.partition"),
    )


def parse_partitions(body: object, *, required: bool) -> tuple[Partition, ...]:
    """``{"partitions": [{topic, partition}]}``; with ``required=False`` an empty body means "all"."""
    data = as_object(body, allow_empty=not required)
    _reject_unknown(data, frozenset({"partitions"}))
    items = _entries(data, "partitions", required=required)
    return tuple(dict.fromkeys(_partition(item, f"partitions[{i}]") for i, item in enumerate(items)))


def partitions_from_query(query: Mapping[str, str]) -> tuple[Partition, ...]:
    """``?partitions=orders:0,orders:1`` (or ``?topic=orders&partition=0``) for ``GET .../offsets``."""
    found: list[Partition] = []
    raw = query.get("partitions")
    if raw:
        for index, part in enumerate(raw.split(",")):
            topic, sep, number = part.strip().rpartition(":")
            if not sep or not number.isdigit():
                raise ValidationFailed(f"entry {index} {part!r} is not 'topic:partition'", field="partitions")
            found.append(Partition(topic_name(topic, "partitions"), int(number)))
    if "topic" in query:
        number = query.get("partition", "")
        if not number.isdigit():
            raise ValidationFailed(f"must be a non-negative integer, got {number!r}", field="partition")
        found.append(Partition(topic_name(query["topic"], "topic"), int(number)))
    return tuple(dict.fromkeys(found))


def _metadata(item: Mapping[str, Any], where: str) -> str | None:
    value = item.get("metadata")
    if value is None or isinstance(value, str):
        return value
    raise ValidationFailed(f"must be a string, got {value!r}", field=f"{where}.metadata")


def parse_offsets(body: object, *, required: bool) -> tuple[PartitionOffset, ...]:
    """``{"offsets": [{topic, partition, offset, metadata?}]}`` (commit, or seek by offset)."""
    data = as_object(body, allow_empty=not required)
    _reject_unknown(data, frozenset({"offsets"}))
    out = []
    for index, item in enumerate(_entries(data, "offsets", required=required)):
        where = f"offsets[{index}]"
        tp = _partition(item, where, frozenset({"offset", "metadata"}))
        offset = _non_negative(item.get("offset"), f"{where}.offset")
        out.append(PartitionOffset(tp.topic, tp.partition, offset, _metadata(item, where)))
    return tuple(out)


def parse_seek(body: object) -> tuple[tuple[PartitionOffset, ...], tuple[PartitionTimestamp, ...]]:
    """``POST .../positions``: ``offsets`` and/or ``timestamps``; at least one entry in all."""
    data = as_object(body)
    _reject_unknown(data, frozenset({"offsets", "timestamps"}))
    offsets = parse_offsets({"offsets": data["offsets"]}, required=False) if data.get("offsets") is not None else ()
    stamps = []
    for index, item in enumerate(_entries(data, "timestamps", required=False)):
        where = f"timestamps[{index}]"
        tp = _partition(item, where, frozenset({"timestamp", "metadata"}))
        stamp = timestamp_ms(item.get("timestamp"), f"{where}.timestamp")
        _metadata(item, where)
        stamps.append(PartitionTimestamp(tp.topic, tp.partition, stamp))
    if not offsets and not stamps:
        raise ValidationFailed("give a non-empty 'offsets' or 'timestamps' list", field="offsets")
    return offsets, tuple(stamps)


def timestamp_ms(value: object, field: str) -> int:
    """Epoch milliseconds, or an ISO-8601 instant as Confluent's clients send (``2026-12-01T18:39:15.890Z``)."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            moment = None
        if moment is not None:
            if moment.tzinfo is None:
                raise ValidationFailed(f"ISO-8601 timestamp {value!r} needs a zone (Z or +hh:mm)", field=field)
            millis = (moment - _EPOCH) // timedelta(milliseconds=1)
            if millis >= 0:
                return millis
    return _non_negative(value, field, "epoch milliseconds or an ISO-8601 instant such as 2026-12-01T18:39:15.890Z")


def query_int(query: Mapping[str, str], *names: str) -> int | None:
    for name in names:
        raw = query.get(name)
        if raw is None or raw == "":
            continue
        if not raw.strip().isdigit():
            raise ValidationFailed(f"must be a non-negative integer, got {raw!r}", field=name)
        return int(raw.strip())
    return None


REQUEST_MEDIA_TYPES = frozenset(
    {
        *(v2_media_type(fmt) for fmt in ("json", "binary", "avro", "jsonschema", "protobuf")),
        V2_MEDIA_TYPE,
        "application/json",
    }
)
"""Confluent accepts every v2 media type as the Content-Type of every consumer route."""
V2_UNSUPPORTED_MEDIA_TYPE = 41501


def check_content_type(content_type: str, body: bytes) -> None:
    """A body must come as one of :data:`REQUEST_MEDIA_TYPES` (none given: JSON); else 415."""
    if body.strip() and content_type and content_type not in REQUEST_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"content type {content_type!r} is not accepted here; use one of: {', '.join(sorted(REQUEST_MEDIA_TYPES))}",
            field="Content-Type",
            v2_error_code=V2_UNSUPPORTED_MEDIA_TYPE,
        )


def response_media_type(accept: str, formats: tuple[str, str]) -> str:
    """The media type of a records reply; a v2 type naming another format is a 406 (v2 code 40601).

    ``*/*`` (or no ``Accept``) answers the instance's embedded type, as Confluent does
    (``application/vnd.kafka.binary.v2+json`` for a binary instance; the value format when key and
    value differ); ``application/json`` is answered as such.
    """
    wanted = [part.split(";", 1)[0].strip().lower() for part in accept.split(",") if part.strip()]
    embedded_type = v2_media_type(formats[1])
    if not wanted:
        return embedded_type
    for media in wanted:
        if media in ("*/*", "application/*"):
            return embedded_type
        embedded = v2_embedded_format(media)
        if embedded is not None:
            if embedded in ("", *formats):
                return media
            raise NotAcceptable(
                f"Accept asks for {embedded!r} records but this consumer instance decodes "
                f"{'/'.join(dict.fromkeys(formats))}; the format is chosen when the instance is created",
                field="Accept",
                v2_error_code=V2_FORMAT_MISMATCH,
            )
        if media == V2_MEDIA_TYPE:
            return media
    return "application/json"
