"""Bytes written by confluent-kafka's serializers (an independent implementation) decode in the sidecar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from schema_support import generated_proto_module, schema_sidecar, unique

from kafka_sidecar._errors import RecordUndecodable

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

READING = {
    "type": "record",
    "name": "Reading",
    "namespace": "interop.test",
    "fields": [
        {"name": "sensor", "type": "string"},
        {"name": "value", "type": ["null", "double"], "default": None},
        {"name": "raw", "type": "bytes"},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    ],
}
NESTED_PROTO = """syntax = "proto3";
package interop.test;

message Outer {
  string name = 1;
  message Inner { int32 n = 1; repeated string words = 2; }
}
"""


def ctx(topic: str) -> SerializationContext:
    return SerializationContext(topic, MessageField.VALUE)


async def test_confluent_avro_bytes_decode_in_sidecar(
    kafka_bootstrap: str, schema_registry_url: str, tmp_path: Path
) -> None:
    import datetime as dt

    topic = unique("interop-avro")
    client = SchemaRegistryClient({"url": schema_registry_url, "timeout": 30})
    serialize = AvroSerializer(client, json.dumps(READING))
    data = serialize({"sensor": "s1", "value": 2.5, "raw": b"\x00\x01", "day": dt.date(2024, 2, 29)}, ctx(topic))
    async with schema_sidecar(kafka_bootstrap, schema_registry_url, tmp_path) as rs:
        avro = rs.sidecar.resources.serdes.get("avro", field="format")
        decoded = await avro.decode(data, topic, "value")
        with pytest.raises(RecordUndecodable):
            await rs.sidecar.resources.serdes.get("jsonschema", field="format").decode(data, topic, "value")
    assert decoded == {"sensor": "s1", "value": {"double": 2.5}, "raw": "AAE=", "day": "2024-02-29"}


async def test_strip_avro_unions_option(kafka_bootstrap: str, schema_registry_url: str, tmp_path: Path) -> None:
    import datetime as dt

    topic = unique("interop-strip")
    serialize = AvroSerializer(SchemaRegistryClient({"url": schema_registry_url, "timeout": 30}), json.dumps(READING))
    data = serialize({"sensor": "s1", "value": 2.5, "raw": b"", "day": dt.date(2024, 1, 1)}, ctx(topic))
    options = "  strip_avro_unions: true\n"
    async with schema_sidecar(kafka_bootstrap, schema_registry_url, tmp_path, options) as rs:
        decoded: Any = await rs.sidecar.resources.serdes.get("avro", field="format").decode(data, topic, "value")
    assert decoded["value"] == 2.5


async def test_confluent_jsonschema_bytes_decode_in_sidecar(
    kafka_bootstrap: str, schema_registry_url: str, tmp_path: Path
) -> None:
    topic = unique("interop-json")
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Thing",
        "type": "object",
        "properties": {"n": {"type": "integer"}},
    }
    serialize = JSONSerializer(json.dumps(schema), SchemaRegistryClient({"url": schema_registry_url, "timeout": 30}))
    data = serialize({"n": 3}, ctx(topic))
    async with schema_sidecar(kafka_bootstrap, schema_registry_url, tmp_path) as rs:
        decoded = await rs.sidecar.resources.serdes.get("jsonschema", field="format").decode(data, topic, "value")
    assert decoded == {"n": 3}


async def test_confluent_protobuf_bytes_of_a_nested_message_decode_in_sidecar(
    kafka_bootstrap: str, schema_registry_url: str, tmp_path: Path
) -> None:
    topic = unique("interop-proto")
    (tmp_path / "gen").mkdir()
    module = generated_proto_module(NESTED_PROTO, tmp_path / "gen", unique("nested").replace("-", "_"))
    serialize = ProtobufSerializer(
        module.Outer.Inner,
        SchemaRegistryClient({"url": schema_registry_url, "timeout": 30}),
        {"use.deprecated.format": False},
    )
    data = serialize(module.Outer.Inner(n=5, words=["a", "b"]), ctx(topic))
    assert data[5:7] == b"\x04\x00"  # message-index path [0, 0]: Outer.Inner
    async with schema_sidecar(kafka_bootstrap, schema_registry_url, tmp_path / "sc") as rs:
        protobuf = rs.sidecar.resources.serdes.get("protobuf", field="format")
        decoded: Any = await protobuf.decode(data, topic, "value")
    assert decoded == {"n": 5, "words": ["a", "b"]}
