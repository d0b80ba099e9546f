"""Produce avro / jsonschema / protobuf through the sidecar against a real broker and a real registry;
read the bytes back from Kafka and decode them with confluent-kafka's own deserializers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from schema_support import generated_proto_module, read_raw, schema_sidecar, subjects, unique

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

ORDER_V1 = {
    "type": "record",
    "name": "Order",
    "namespace": "com.example",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}
ORDER_V2 = {**ORDER_V1, "fields": [*ORDER_V1["fields"], {"name": "channel", "type": "string", "default": "web"}]}
PERSON = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Person",
    "type": "object",
    "properties": {"name": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
    "required": ["name"],
    "additionalProperties": False,
}
EVENT_PROTO = """syntax = "proto3";
package com.example;

message Event {
  int32 id = 1;
  string label = 2;
  repeated Part parts = 3;
  message Part { int64 size = 1; }
}
"""


async def test_avro_produce_decodes_with_confluent_deserializer(
    kafka_bootstrap: str, topic_factory: Any, schema_registry_url: str, tmp_path: Path
) -> None:
    topic = await topic_factory.create()
    body = {
        "keyFormat": "string",
        "valueFormat": "avro",
        "valueSchema": json.dumps(ORDER_V1),
        "records": [
            {"key": "k1", "value": {"id": 1, "note": "rush", "amount": "12.34", "at": "2024-05-01T10:00:00Z"}},
            {"key": "k2", "value": {"id": 2, "amount": 5, "at": 1714557600000}},
        ],
    }
    async with schema_sidecar(kafka_bootstrap, schema_registry_url, tmp_path) as rs:
        response = await rs.client.post(f"/producers/{topic}", json=body)
    assert response.status_code == 200, response.text
    schema_id = response.json()["value_schema_id"]
    assert isinstance(schema_id, int)
    records = await read_raw(kafka_bootstrap, topic, 2)
    assert records[0].value[:5] == b"\x00" + schema_id.to_bytes(4, "big")
    deserialize = AvroDeserializer(SchemaRegistryClient({"url": schema_registry_url, "timeout": 30}))
    decoded = [deserialize(r.value, SerializationContext(topic, MessageField.VALUE)) for r in records]
    assert decoded[0]["id"] == 1
    assert decoded[0]["note"] == "rush"
    assert str(decoded[0]["amount"]) == "12.34"
    assert decoded[0]["at"].isoformat() == "2024-05-01T10:00:00+00:00"
    assert decoded[1]["note"] is None
    assert int(decoded[1]["at"].timestamp() * 1000) == 1714557600000
    assert f"{topic}-value" in await subjects(schema_registry_url)


async def test_jsonschema_produce_v2_media_type_decodes_with_confluent(
    kafka_bootstrap: str, topic_factory: Any, schema_registry_url: str, tmp_path: Path
) -> None:
    topic = await topic_factory.create()
    body = {"value_schema": json.dumps(PERSON), "records": [{"value": {"name": "ada", "tags": ["x"]}}]}
    async with schema_sidecar(kafka_bootstrap, schema_registry_url, tmp_path) as rs:
        response = await rs.client.post(
            f"/topics/{topic}", json=body, headers={"Content-Type": "application/vnd.kafka.jsonschema.v2+json"}
        )
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["value_schema_id"], int)
    (record,) = await read_raw(kafka_bootstrap, topic, 1)
    deserialize = JSONDeserializer(
        None, schema_registry_client=SchemaRegistryClient({"url": schema_registry_url, "timeout": 30})
    )
    assert deserialize(record.value, SerializationContext(topic, MessageField.VALUE)) == {"name": "ada", "tags": ["x"]}


async def test_protobuf_produce_decodes_with_generated_class(
    kafka_bootstrap: str, topic_factory: Any, schema_registry_url: str, tmp_path: Path
) -> None:
    topic = await topic_factory.create()
    body = {
        "valueFormat": "protobuf",
        "valueSchema": EVENT_PROTO,
        "records": [{"value": {"id": 9, "label": "go", "parts": [{"size": 3}, {"size": "4"}]}}],
    }
    async with schema_sidecar(kafka_bootstrap, schema_registry_url, tmp_path / "sc") as rs:
        response = await rs.client.post(f"/producers/{topic}", json=body)
    assert response.status_code == 200, response.text
    (record,) = await read_raw(kafka_bootstrap, topic, 1)
    (tmp_path / "gen").mkdir()
    module = generated_proto_module(EVENT_PROTO, tmp_path / "gen", unique("event").replace("-", "_"))
    deserialize = ProtobufDeserializer(module.Event, {"use.deprecated.format": False})
    event = deserialize(record.value, SerializationContext(topic, MessageField.VALUE))
    assert event.id == 9
    assert event.label == "go"
    assert [p.size for p in event.parts] == [3, 4]


async def test_schema_evolution_and_lookup_by_id_version_and_latest(
    kafka_bootstrap: str, topic_factory: Any, schema_registry_url: str, tmp_path: Path
) -> None:
    topic = await topic_factory.create()
    v1_value = {"id": 1, "amount": "1.00", "at": 0}
    async with schema_sidecar(kafka_bootstrap, schema_registry_url, tmp_path) as rs:
        post = rs.client.post
        first = await post(
            f"/producers/{topic}",
            json={"valueFormat": "avro", "valueSchema": json.dumps(ORDER_V1), "records": [{"value": v1_value}]},
        )
        second = await post(
            f"/producers/{topic}",
            json={
                "valueFormat": "avro",
                "valueSchema": json.dumps(ORDER_V2),
                "records": [{"value": {**v1_value, "channel": "app"}}],
            },
        )
        assert first.status_code == second.status_code == 200, (first.text, second.text)
        v1_id, v2_id = first.json()["value_schema_id"], second.json()["value_schema_id"]
        assert v1_id != v2_id
        by_version = await post(
            f"/producers/{topic}",
            json={"valueFormat": "avro", "valueSchemaVersion": 1, "records": [{"value": v1_value}]},
        )
        by_id = await post(
            f"/producers/{topic}",
            json={"valueFormat": "avro", "valueSchemaId": v2_id, "records": [{"value": v1_value}]},
        )
        latest = await post(f"/producers/{topic}", json={"valueFormat": "avro", "records": [{"value": v1_value}]})
        assert by_version.json()["value_schema_id"] == v1_id
        assert by_id.json()["value_schema_id"] == v2_id
        assert latest.json()["value_schema_id"] == v2_id
        records = await read_raw(kafka_bootstrap, topic, 5)
        serde = rs.sidecar.resources.serdes.get("avro", field="valueFormat")
        decoded: list[Any] = [await serde.decode(r.value, topic, "value") for r in records]
    assert "channel" not in decoded[0]
    assert decoded[1]["channel"] == "app"
    assert decoded[3]["channel"] == "web"  # default filled from the v2 schema on produce
    assert decoded[0]["note"] is None


async def test_record_name_strategy_selects_subject(
    kafka_bootstrap: str, topic_factory: Any, schema_registry_url: str, tmp_path: Path
) -> None:
    topic = await topic_factory.create()
    name = unique("Rec").replace("-", "_")
    schema = {"type": "record", "name": name, "namespace": "strategy.test", "fields": [{"name": "a", "type": "int"}]}
    async with schema_sidecar(kafka_bootstrap, schema_registry_url, tmp_path) as rs:
        response = await rs.client.post(
            f"/producers/{topic}",
            json={
                "valueFormat": "avro",
                "valueSchema": json.dumps(schema),
                "valueSubjectNameStrategy": "TopicRecordNameStrategy",
                "records": [{"value": {"a": 1}}],
            },
        )
    assert response.status_code == 200, response.text
    known = await subjects(schema_registry_url)
    assert f"{topic}-strategy.test.{name}" in known
    assert f"{topic}-value" not in known
