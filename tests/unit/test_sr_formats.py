"""JSON Schema and Protobuf formats without a registry: validation paths, references, message indexes."""

from __future__ import annotations

import base64
import json

import pytest

from kafka_sidecar._errors import ValidationFailed
from kafka_sidecar_plugins.schema_registry._client import RegisteredSchema
from kafka_sidecar_plugins.schema_registry._config import SchemaRegistryConfig
from kafka_sidecar_plugins.schema_registry._jsonschema import JsonSchemaFormat
from kafka_sidecar_plugins.schema_registry._protobuf import ProtobufFormat, compile_proto
from kafka_sidecar_plugins.schema_registry._wire import encode_message_indexes

CONFIG = SchemaRegistryConfig()
ADDRESS = {"type": "object", "properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}}, "required": ["zip"]}
PERSON = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Person",
    "type": "object",
    "properties": {"name": {"type": "string"}, "home": {"$ref": "address.json"}},
    "required": ["name"],
}
SHOP = """syntax = "proto3";
package shop;
import "common.proto";
import "google/protobuf/timestamp.proto";

message Order {
  int64 id = 1;
  common.Money total = 2;
  repeated Line lines = 3;
  google.protobuf.Timestamp at = 4;
  message Line { string sku = 1; int32 qty = 2; }
}
message Refund { int64 order_id = 1; }
"""
COMMON = 'syntax = "proto3";\npackage common;\nmessage Money { string currency = 1; int64 cents = 2; }\n'


def test_jsonschema_with_reference_validates_and_names_path() -> None:
    fmt = JsonSchemaFormat()
    parsed = fmt.parse(
        RegisteredSchema(json.dumps(PERSON), "JSON"), {"address.json": RegisteredSchema(json.dumps(ADDRESS))}, CONFIG
    )
    assert fmt.record_name(parsed) == "Person"
    body = fmt.encode(parsed, {"name": "ada", "home": {"zip": "12345"}}, "records[0].value")
    assert fmt.decode(parsed, memoryview(body)) == {"name": "ada", "home": {"zip": "12345"}}
    with pytest.raises(ValidationFailed) as caught:
        fmt.encode(parsed, {"name": "ada", "home": {"zip": "x"}}, "records[4].value")
    assert caught.value.field == "records[4].value.home.zip"
    with pytest.raises(ValidationFailed) as missing:
        fmt.encode(parsed, {"home": {"zip": "12345"}}, "records[0].value")
    assert missing.value.field == "records[0].value"


def test_jsonschema_invalid_schema_is_value_error() -> None:
    with pytest.raises(ValueError, match="type"):
        JsonSchemaFormat().parse(RegisteredSchema('{"type": 12}', "JSON"), {}, CONFIG)


def proto() -> tuple[ProtobufFormat, object]:
    fmt = ProtobufFormat()
    return fmt, fmt.parse(RegisteredSchema(SHOP, "PROTOBUF"), {"common.proto": RegisteredSchema(COMMON)}, CONFIG)


def test_protobuf_roundtrip_with_reference_and_well_known_type() -> None:
    fmt, parsed = proto()
    assert fmt.record_name(parsed) == "shop.Order"
    value = {"id": "7", "total": {"currency": "EUR", "cents": "1250"}, "lines": [{"sku": "a", "qty": 2}],
             "at": "2024-05-01T10:00:00Z"}  # fmt: skip
    body = fmt.encode(parsed, value, "records[0].value")
    assert body[0] == 0  # message index [0] as a single zero byte
    assert fmt.decode(parsed, memoryview(body)) == value


def test_protobuf_decodes_other_messages_by_index() -> None:
    fmt, parsed = proto()
    body = encode_message_indexes((1,)) + b"\x08\x05"  # shop.Refund{order_id: 5}, encoded by hand
    assert fmt.decode(parsed, memoryview(body)) == {"order_id": "5"}
    nested = encode_message_indexes((0, 0)) + b"\x0a\x01x\x10\x03"
    assert fmt.decode(parsed, memoryview(nested)) == {"sku": "x", "qty": 3}
    with pytest.raises(ValueError, match="index"):
        fmt.decode(parsed, memoryview(encode_message_indexes((5,))))


@pytest.mark.parametrize(
    ("value", "field"),
    [({"id": "x"}, "records[2].value.id"), ({"lines": [{"sku": "a", "qty": "many"}]}, "records[2].value.lines"),
     ({"nope": 1}, "records[2].value"), ([1], "records[2].value")],
)  # fmt: skip
def test_protobuf_mismatch_names_field(value: object, field: str) -> None:
    fmt, parsed = proto()
    with pytest.raises(ValidationFailed) as caught:
        fmt.encode(parsed, value, "records[2].value")
    assert caught.value.field is not None
    assert caught.value.field.startswith(field)


def test_protobuf_invalid_schema_names_line() -> None:
    with pytest.raises(ValueError, match=r"<schema>:2"):
        ProtobufFormat().parse(RegisteredSchema('syntax = "proto3";\nmessage {', "PROTOBUF"), {}, CONFIG)


def test_protobuf_accepts_base64_descriptor_as_registered_by_confluent_python() -> None:
    compiled = compile_proto(COMMON, {})
    (money,) = [f for f in compiled.file if f.message_type]
    text = base64.b64encode(money.SerializeToString()).decode()
    fmt = ProtobufFormat()
    parsed = fmt.parse(RegisteredSchema(text, "PROTOBUF"), {}, CONFIG)
    assert fmt.record_name(parsed) == "common.Money"
    body = fmt.encode(parsed, {"currency": "USD", "cents": "5"}, "v")
    assert fmt.decode(parsed, memoryview(body)) == {"currency": "USD", "cents": "5"}
