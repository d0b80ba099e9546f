"""Reading a produce request: the Java sidecar's ProduceRequest and REST Proxy v2 bodies, one model.

The body is declared once, as msgspec structs (:class:`ProduceRequest`, :class:`ProduceRecordIn`):
msgspec checks and converts the parsed body in C, and the same declaration is the request schema of
the OpenAPI description (:func:`request_schema`), which the validation plugin enforces. Every problem
is a :class:`ValidationFailed` naming the field (``records[3].partition``), found before anything is sent.
"""

from __future__ import annotations

import difflib
import re
from operator import attrgetter
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from kafka_sidecar.plugin import PayloadTooLarge, SchemaRef, UnsupportedMediaType, ValidationFailed, v2_embedded_format

# Older clients send the format as its ordinal (BINARY, JSON, AVRO, JSONSCHEMA, PROTOBUF, STRING).
FORMAT_ORDINALS = ("binary", "json", "avro", "jsonschema", "protobuf", "string")
MAX_TIMESTAMP = 2**63 - 1
"""Kafka timestamps are signed 64-bit milliseconds."""

_HEADERS_SCHEMA = {
    "oneOf": [
        {"type": "object", "additionalProperties": {"type": "string"}, "description": "Header name -> text value."},
        {
            "type": "array",
            "description": "REST Proxy v3 style: base64 values.",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "value": {"type": ["string", "null"], "contentEncoding": "base64"},
                },
            },
        },
    ]
}
Text = Annotated[str, Meta(min_length=1)]
NonNegative = Annotated[int, Meta(ge=0)]
Format = (
    Annotated[str, Meta(min_length=1, description="A registered format name: " + ", ".join(FORMAT_ORDINALS) + ".")]
    | Annotated[int, Meta(ge=0, le=len(FORMAT_ORDINALS) - 1, description="Ordinal (older clients).")]
)
Headers = Annotated[Any, Meta(extra_json_schema=_HEADERS_SCHEMA)]
"""Read by :func:`parse_headers` (shared with the dead-letter route), which names the failing header."""


class ProduceRecordIn(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One record of a produce request."""

    key: Annotated[Any, Meta(description="Key in the key format (JSON value, base64 for binary).")] = None
    value: Annotated[Any, Meta(description="Value in the value format (JSON value, base64 for binary).")] = None
    partition: NonNegative | None = None
    headers: Headers = None
    timestamp: Annotated[int, Meta(description="Epoch milliseconds.")] | None = None
    """At most :data:`MAX_TIMESTAMP` (checked by :func:`parse_batch`, not in the schema: a schema bound
    there would make schema-driven generators send timestamps the broker refuses)."""
    correlation_id: Annotated[str, Meta(min_length=1, description="X-Correlation-Id of this record.")] | None = (
        msgspec.field(default=None, name="correlationId")
    )
    traceability_id: Annotated[str, Meta(min_length=1, description="X-Traceability-Id of this record.")] | None = (
        msgspec.field(default=None, name="traceabilityId")
    )


class ProduceRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The body of ``POST /producers/{topic}`` and the REST Proxy v2 produce routes."""

    records: Annotated[list[ProduceRecordIn], Meta(min_length=1)]
    keyFormat: Format | None = None
    valueFormat: Format | None = None
    keySchema: Text | None = None
    valueSchema: Text | None = None
    keySchemaId: NonNegative | None = None
    valueSchemaId: NonNegative | None = None
    keySchemaVersion: NonNegative | None = None
    valueSchemaVersion: NonNegative | None = None
    keySchemaSubject: Text | None = None
    valueSchemaSubject: Text | None = None
    keySubjectNameStrategy: Text | None = None
    valueSubjectNameStrategy: Text | None = None
    key_schema: Text | None = None
    value_schema: Text | None = None
    key_schema_id: NonNegative | None = None
    value_schema_id: NonNegative | None = None


def request_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of :class:`ProduceRequest` for the OpenAPI description, self-contained:
    msgspec's ``$defs`` are inlined, and its ``anyOf`` of branches of distinct types is the ``oneOf`` it
    means (exactly one branch can match), as in the rest of the description."""
    generated: dict[str, Any] = msgspec.json.schema(ProduceRequest)
    inlined: dict[str, Any] = _inline(generated, generated.get("$defs", {}))
    return inlined


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _inline(defs[ref.removeprefix("#/$defs/")], defs)
    out = {key: _inline(value, defs) for key, value in node.items() if key not in ("$defs", "title")}
    branches = out.get("anyOf")
    if isinstance(branches, list):
        kinds = [branch.get("type") for branch in branches if isinstance(branch, dict)]
        if len(kinds) == len(branches) and None not in kinds and len(set(map(str, kinds))) == len(kinds):
            out["oneOf"] = out.pop("anyOf")
    return out


class ProduceBatch(msgspec.Struct, frozen=True):
    """A parsed produce request, once per request: a frozen ``msgspec.Struct``, built in C (a frozen
    dataclass's generated ``__init__`` cost about 5 µs per request with the CPU caches cold)."""

    key_format: str
    value_format: str
    key_schema: SchemaRef
    value_schema: SchemaRef
    records: list[ProduceRecordIn]
    v2: bool
    """True when the caller used a REST Proxy v2 media type (the reply uses one too)."""


def media_format(content_type: str) -> str | None:
    """``application/vnd.kafka.avro.v2+json`` -> ``avro``; ``application/json`` or empty -> None."""
    if content_type in ("", "application/json"):
        return None
    embedded = v2_embedded_format(content_type)
    if embedded is not None:
        return embedded or "json"
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
    if isinstance(body, dict) and isinstance(body.get("records"), list) and len(body["records"]) > max_records:
        raise PayloadTooLarge(f"at most {max_records} records per request, got {len(body['records'])}", field="records")
    try:
        request = msgspec.convert(body, ProduceRequest)
    except msgspec.ValidationError as exc:
        raise _validation_failed(str(exc)) from exc
    for index, record in enumerate(request.records):
        if record.timestamp is not None and not -MAX_TIMESTAMP - 1 <= record.timestamp <= MAX_TIMESTAMP:
            raise ValidationFailed(
                f"must be epoch milliseconds within 64 bits, got {record.timestamp}",
                field=f"records[{index}].timestamp",
            )
    key_format = _format(request.keyFormat, embedded or defaults[0], "keyFormat")
    value_format = _format(request.valueFormat, embedded or defaults[1], "valueFormat")
    if embedded is not None:
        for name, given, fmt in (("keyFormat", request.keyFormat, key_format),
                                 ("valueFormat", request.valueFormat, value_format)):  # fmt: skip
            if given is not None and fmt != embedded:
                raise ValidationFailed(f"{name} {fmt!r} contradicts the content type's format {embedded!r}", field=name)
    return ProduceBatch(
        key_format,
        value_format,
        _schema_ref(request, "key"),
        _schema_ref(request, "value"),
        request.records,
        v2=embedded is not None,
    )


_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]*)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]*)`$")
_FIELDS = {
    "": frozenset(ProduceRequest.__struct_encode_fields__),
    "record": frozenset(ProduceRecordIn.__struct_encode_fields__),
}


def _validation_failed(text: str) -> ValidationFailed:
    """msgspec's ``Expected `int` >= 0 - at `$.records[0].partition``` as a problem naming ``records[0].partition``."""
    match = _AT.match(text)
    message, path = (match["message"], match["path"] or "") if match else (text, "")
    field = path.lstrip(".")
    if (unknown := _UNKNOWN.match(message)) is not None:
        name = unknown["name"]
        known = _FIELDS["record" if field else ""]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return ValidationFailed(f"unknown field {name!r}{hint}", field=f"{field}.{name}" if field else name)
    if (missing := _MISSING.match(message)) is not None:
        return ValidationFailed(f"'{missing['name']}' is required", field=missing["name"])
    if not field:
        return ValidationFailed("request body must be a JSON object with a 'records' list", field="body")
    return ValidationFailed(message, field=field)


def _format(value: str | int | None, default: str, name: str) -> str:
    if value is None:
        return default
    if isinstance(value, int):
        return FORMAT_ORDINALS[value]
    if value.strip():
        return value.strip().lower()
    raise ValidationFailed(f"must be a format name such as 'json' or 'avro', got {value!r}", field=name)


_NO_SCHEMA = SchemaRef()
_SCHEMA_FIELDS = {
    role: attrgetter(f"{role}Schema", f"{role}_schema", f"{role}SchemaId", f"{role}_schema_id",
                     f"{role}SchemaVersion", f"{role}SchemaSubject", f"{role}SubjectNameStrategy")
    for role in ("key", "value")
}  # fmt: skip
"""Every schema field of a role, read in one C call (the REST Proxy spelling first where there are two)."""


def _schema_ref(request: ProduceRequest, role: str) -> SchemaRef:
    given = _SCHEMA_FIELDS[role](request)
    if given.count(None) == len(given):
        return _NO_SCHEMA  # most requests give none: one shared (frozen) reference, nothing built
    schema, snake_schema, schema_id, snake_schema_id, version, subject, strategy = given
    ref = SchemaRef(
        schema=schema if schema is not None else snake_schema,
        schema_id=schema_id if schema_id is not None else snake_schema_id,
        version=version,
        subject=subject,
        subject_strategy=strategy,
    )
    if ref.schema_id is not None and (ref.version is not None or ref.schema is not None):
        other = f"{role}SchemaVersion" if ref.version is not None else f"{role}Schema"
        raise ValidationFailed(
            f"{role}SchemaId cannot be combined with {other}: give one way to find the schema",
            field=f"{role}SchemaId",
        )
    return ref


def utf8(text: str, field: str) -> bytes:
    """``text`` as UTF-8; a lone surrogate (valid in JSON escapes, not in UTF-8) is a 422 naming ``field``."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationFailed(f"not valid Unicode text (lone surrogate at {exc.start})", field=field) from exc
