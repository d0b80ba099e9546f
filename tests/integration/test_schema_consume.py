"""The reactive consumer decodes registry formats for the backend; foreign bytes go to the dead-letter topic."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from test_reactive_support import Backend, produce, read_all, serving, sidecar_yaml, wait_for

from kafka_sidecar.testing import running_sidecar

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

METRIC = {
    "type": "record",
    "name": "Metric",
    "namespace": "consume.test",
    "fields": [{"name": "name", "type": "string"}, {"name": "v", "type": ["null", "long"], "default": None}],
}


async def test_reactive_consumer_decodes_avro_and_dead_letters_foreign_records(
    kafka_bootstrap: str, topic_factory: Any, schema_registry_url: str, tmp_path: Path
) -> None:
    topic = await topic_factory.create()
    serialize = AvroSerializer(SchemaRegistryClient({"url": schema_registry_url, "timeout": 30}), json.dumps(METRIC))
    context = SerializationContext(topic, MessageField.VALUE)
    good = [serialize({"name": f"m{i}", "v": i}, context) for i in range(3)]
    unknown_id = b"\x00" + (2_000_000_000).to_bytes(4, "big") + b"\x02a\x00"
    not_wire = b'{"name": "plain json"}'
    await produce(kafka_bootstrap, topic, [good[0], unknown_id, good[1], not_wire, good[2]], partition=0)
    backend = Backend()
    config = sidecar_yaml(topic, f"g-{uuid.uuid4().hex[:8]}", backend, value_format="avro")
    config += 'schema_registry:\n  urls: ["${SR_URL}"]\n  strip_avro_unions: true\n'
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "SR_URL": schema_registry_url}
    async with serving(backend), running_sidecar(config, tmp_path, env=env):
        await wait_for(lambda: len(backend.records()) >= 3, 30, "three decoded records at the backend")
        letters = await read_all(kafka_bootstrap, f"{topic}.dlq", 2)
    values = [r["value"] for r in backend.records()]
    assert values == [{"name": "m0", "v": 0}, {"name": "m1", "v": 1}, {"name": "m2", "v": 2}]
    assert sorted(letter.value for letter in letters) == sorted([unknown_id, not_wire])


ACTIVE_CONFIG = """\
kafka:
  bootstrap_servers: ${KAFKA_BOOTSTRAP_SERVERS}
schema_registry:
  urls: ["${SR_URL}"]
handlers:
  active:
    use: active-consumer
    config: {request_timeout_ms: 500, session_timeout_ms: 6000}
paths:
  - {path: "/producers/{topic}", method: POST, exec: [producer]}
  - {path: "/consumers/{group}", method: POST, exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}/subscription", methods: [POST], exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}/records", method: GET, exec: [active]}
"""


async def test_active_consumer_returns_avro_as_json_and_reports_undecodable_record(
    kafka_bootstrap: str, topic_factory: Any, schema_registry_url: str, tmp_path: Path
) -> None:
    topic = await topic_factory.create()
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "SR_URL": schema_registry_url}
    async with running_sidecar(ACTIVE_CONFIG, tmp_path, env=env) as rs:
        client = rs.client
        produced = await client.post(
            f"/producers/{topic}",
            json={
                "valueFormat": "avro",
                "valueSchema": json.dumps(METRIC),
                "records": [{"value": {"name": "a", "v": 1}}, {"value": {"name": "b"}}],
            },
        )
        assert produced.status_code == 200, produced.text
        await produce(kafka_bootstrap, topic, [b"\x00" + (2_000_000_000).to_bytes(4, "big") + b"\x00"], partition=0)
        group = f"g-{uuid.uuid4().hex[:8]}"
        created = await client.post(f"/consumers/{group}", json={"format": "avro", "auto.offset.reset": "earliest"})
        assert created.status_code == 200, created.text
        base = f"/consumers/{group}/instances/{created.json()['instance_id']}"
        assert (await client.post(f"{base}/subscription", json={"topics": [topic]})).status_code in (200, 204)
        got: list[dict[str, Any]] = []
        problem: dict[str, Any] | None = None
        deadline = asyncio.get_running_loop().time() + 30
        while problem is None and asyncio.get_running_loop().time() < deadline:
            response = await client.get(f"{base}/records", params={"timeout": 500})
            if response.status_code == 200:
                got.extend(response.json())
            else:
                problem = response.json()
                assert response.status_code == 422, response.text
    assert [r["value"] for r in got] == [{"name": "a", "v": {"long": 1}}, {"name": "b", "v": None}]
    assert problem is not None
    assert problem["code"] == "record-undecodable"
    assert problem["field"] == "value"
