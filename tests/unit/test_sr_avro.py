"""Avro JSON mapping: validation paths, logical types, unions (wrapped and stripped), references."""

from __future__ import annotations

import json
from typing import Any

import fastavro
import pytest

from kafka_sidecar._errors import ValidationFailed
from kafka_sidecar_plugins.schema_registry._avro import AvroFormat, ParsedAvro
from kafka_sidecar_plugins.schema_registry._client import RegisteredSchema
from kafka_sidecar_plugins.schema_registry._config import SchemaRegistryConfig

ORDER: dict[str, Any] = {
    "type": "record",
    "name": "Order",
    "namespace": "com.example",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "blob", "type": "bytes"},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}},
        {
            "name": "lines",
            "type": {
                "type": "array",
                "items": {"type": "record", "name": "Line", "fields": [{"name": "qty", "type": "int"}]},
            },
        },
        {"name": "extra", "type": ["null", "Line", {"type": "map", "values": "double"}], "default": None},
    ],
}
VALUE = {
    "id": 7,
    "note": "rush",
    "amount": "12.34",
    "at": "2024-05-01T10:00:00+00:00",
    "day": "2024-05-01",
    "ref": "6f1c2f6e-1d3b-4a7e-9f55-0a6d4a1f6c11",
    "blob": "AAEC",
    "kind": "B",
    "lines": [{"qty": 1}, {"qty": 2}],
    "extra": {"com.example.Line": {"qty": 3}},
}


def parsed(schema: object, strip: bool = False) -> ParsedAvro:
    config = SchemaRegistryConfig(strip_avro_unions=strip)
    return AvroFormat().parse(RegisteredSchema(json.dumps(schema)), {}, config)


def test_roundtrip_with_logical_types_and_wrapped_unions() -> None:
    fmt = AvroFormat()
    schema = parsed(ORDER)
    body = fmt.encode(schema, VALUE, "records[0].value")
    out = fmt.decode(schema, memoryview(body))
    assert out == {**VALUE, "note": {"string": "rush"}}


def test_stripped_unions_give_plain_values() -> None:
    fmt = AvroFormat()
    schema = parsed(ORDER, strip=True)
    out = fmt.decode(schema, memoryview(fmt.encode(schema, VALUE, "v")))
    assert out == {**VALUE, "extra": {"qty": 3}}


def test_body_is_plain_schemaless_avro() -> None:
    schema = parsed(ORDER)
    body = AvroFormat().encode(schema, {**VALUE, "extra": {"map": {"x": 1.5}}}, "v")
    import io

    decoded: Any = fastavro.schemaless_reader(io.BytesIO(body), fastavro.parse_schema(ORDER), None)
    assert decoded["extra"] == {"x": 1.5}
    assert decoded["id"] == 7


def test_defaults_fill_missing_optional_fields() -> None:
    fmt = AvroFormat()
    schema = parsed(ORDER)
    value = {k: v for k, v in VALUE.items() if k not in ("note", "extra")}
    decoded: Any = fmt.decode(schema, memoryview(fmt.encode(schema, value, "v")))
    assert decoded["note"] is None


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"id": "7"}, ".id"),
        ({"id": 2**63}, ".id"),
        ({"kind": "C"}, ".kind"),
        ({"lines": [{"qty": 1}, {"qty": "x"}]}, ".lines[1].qty"),
        ({"lines": [{"qty": 1, "colour": "red"}]}, ".lines[0].colour"),
        ({"blob": "%%%"}, ".blob"),
        ({"at": "yesterday"}, ".at"),
        ({"ref": "not-a-uuid"}, ".ref"),
        ({"extra": {"map": {"x": "y"}}}, ".extra.map['x']"),
        ({"note": 5}, ".note"),
    ],
)
def test_mismatch_names_the_path_inside_the_value(change: dict[str, object], path: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        AvroFormat().encode(parsed(ORDER), {**VALUE, **change}, "records[3].value")
    assert caught.value.field == f"records[3].value{path}"


def test_missing_required_field() -> None:
    value = {k: v for k, v in VALUE.items() if k != "id"}
    with pytest.raises(ValidationFailed) as caught:
        AvroFormat().encode(parsed(ORDER), value, "records[0].value")
    assert caught.value.field == "records[0].value.id"


def test_references_resolve_named_types() -> None:
    line = {"type": "record", "name": "Line", "namespace": "com.example", "fields": [{"name": "qty", "type": "int"}]}
    outer = {"type": "record", "name": "Wrap", "namespace": "com.example", "fields": [{"name": "l", "type": "Line"}]}
    fmt = AvroFormat()
    schema = fmt.parse(
        RegisteredSchema(json.dumps(outer), references=()),
        {"com.example.Line": RegisteredSchema(json.dumps(line))},
        SchemaRegistryConfig(),
    )
    assert fmt.record_name(schema) == "com.example.Wrap"
    assert fmt.decode(schema, memoryview(fmt.encode(schema, {"l": {"qty": 4}}, "v"))) == {"l": {"qty": 4}}


def test_invalid_schema_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"(?i)unknown|not"):
        AvroFormat().parse(
            RegisteredSchema('{"type": "record", "name": "X", "fields": [{"name": "a", "type": "nope"}]}'),
            {},
            SchemaRegistryConfig(),
        )


def test_trailing_bytes_are_rejected() -> None:
    schema = parsed({"type": "record", "name": "S", "fields": [{"name": "a", "type": "int"}]})
    body = AvroFormat().encode(schema, {"a": 1}, "v")
    with pytest.raises(ValueError, match="left over"):
        AvroFormat().decode(schema, memoryview(body + b"\x00"))
