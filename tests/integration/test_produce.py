"""Producing over HTTP to the real broker, read back with a plain aiokafka consumer."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_sidecar._kafka.partitioner import partition_for
from kafka_sidecar.testing import running_sidecar
from kafka_sidecar_testing.leak_scan import SecretWatch
from kafka_sidecar_testing.pytest_plugin import TopicFactory

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]


@pytest.fixture(autouse=True)
def _watch_secrets(secret_watch: SecretWatch) -> None:
    """Registers the bearer token sent to the producer for the whole-run leak check (tests/zz_final)."""
    secret_watch.add("s3cret")


CONFIG = """\
kafka:
  bootstrap_servers: ${KAFKA_BOOTSTRAP_SERVERS}
  producer: {request_timeout_ms: 5000, engine: "${PRODUCER_ENGINE:aiokafka}"}
paths:
  - {path: "/producers/{topic}", method: POST, exec: [producer]}
  - {path: "/topics/{topic}", method: POST, exec: [producer]}
  - {path: "/topics/{topic}/partitions/{partition}", method: POST, exec: [producer]}
"""


async def read_all(bootstrap: str, topic: str, expected: int, timeout: float = 20.0) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[Any] = []
    try:
        async with asyncio.timeout(timeout):
            while len(records) < expected:
                batch = await consumer.getmany(timeout_ms=500)
                for items in batch.values():
                    records.extend(items)
    finally:
        await consumer.stop()
    return records


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        offsets = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in offsets.items()}


async def test_keyed_records_with_headers_arrive_byte_for_byte(
    tmp_path: Path, kafka_bootstrap: str, topic_factory: TopicFactory, producer_engine: str
) -> None:
    topic = await topic_factory.create(partitions=3)
    records = [
        {
            "key": f"customer-{i}",
            "value": {"order": i, "text": "żółw ✓"},
            "headers": {"source": "test", "n": str(i)},
            "partition": i % 3,
            "timestamp": 1_700_000_000_000 + i,
            "correlationId": f"corr-{i}",
        }
        for i in range(9)
    ]
    async with running_sidecar(
        CONFIG, tmp_path, env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PRODUCER_ENGINE": producer_engine}
    ) as running:
        response = await running.client.post(f"/producers/{topic}", json={"records": records})
    assert response.status_code == 200, response.text
    offsets = response.json()["offsets"]
    assert [o["partition"] for o in offsets] == [i % 3 for i in range(9)]
    assert all(o["error_code"] is None and isinstance(o["offset"], int) for o in offsets)

    consumed = await read_all(kafka_bootstrap, topic, 9)
    by_key = {r.key: r for r in consumed}
    for i, sent in enumerate(records):
        got = by_key[f'"customer-{i}"'.encode()]  # json format: the key is a JSON string
        assert got.value == json.dumps(sent["value"], ensure_ascii=False, separators=(",", ":")).encode()
        assert got.partition == i % 3
        assert got.offset == offsets[i]["offset"]
        assert got.timestamp == 1_700_000_000_000 + i
        headers = dict(got.headers)
        assert headers["source"] == b"test"
        assert headers["n"] == str(i).encode()
        assert headers["X-Correlation-Id"] == f"corr-{i}".encode()
        assert not any(name.lower() == "authorization" for name in headers)


async def test_v2_binary_route_and_partition_path(
    tmp_path: Path, kafka_bootstrap: str, topic_factory: TopicFactory, producer_engine: str
) -> None:
    topic = await topic_factory.create(partitions=2)
    raw = bytes(range(256))
    async with running_sidecar(
        CONFIG, tmp_path, env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PRODUCER_ENGINE": producer_engine}
    ) as running:
        response = await running.client.post(
            f"/topics/{topic}/partitions/1",
            json={"records": [{"key": base64.b64encode(b"k").decode(), "value": base64.b64encode(raw).decode()}]},
            headers={"content-type": "application/vnd.kafka.binary.v2+json", "authorization": "Bearer s3cret"},
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/vnd.kafka.v2+json"
        missing = await running.client.post(
            f"/topics/{topic}/partitions/7",
            json={"records": [{"value": "AA=="}]},
            headers={"content-type": "application/vnd.kafka.binary.v2+json"},
        )
        assert missing.status_code == 404
        assert missing.json()["error_code"] == 40402
    (record,) = await read_all(kafka_bootstrap, topic, 1)
    assert record.partition == 1
    assert record.key == b"k"
    assert record.value == raw
    assert all(b"s3cret" not in value for _, value in record.headers)


async def test_a_bad_record_rejects_the_whole_batch_and_nothing_is_produced(
    tmp_path: Path, kafka_bootstrap: str, topic_factory: TopicFactory, producer_engine: str
) -> None:
    topic = await topic_factory.create(partitions=2)
    batch = {"records": [{"value": "ok"}, {"value": "ok"}, {"value": "ok", "partition": 5}]}
    async with running_sidecar(
        CONFIG, tmp_path, env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PRODUCER_ENGINE": producer_engine}
    ) as running:
        response = await running.client.post(f"/producers/{topic}", json=batch)
        assert response.status_code == 422
        assert response.json()["field"] == "records[2].partition"
        bad_format = await running.client.post(
            f"/producers/{topic}", json={"valueFormat": "string", "records": [{"value": "a"}, {"value": {"x": 1}}]}
        )
        assert bad_format.status_code == 422
        assert bad_format.json()["field"] == "records[1].value"
        # Inputs aiokafka would only refuse at send time, one record at a time (a 207 with the good one stored):
        for bad, field in BAD_SECOND_RECORDS:
            content = json.dumps({"records": [{"value": "ok"}, bad]}).encode()  # surrogates as JSON escapes
            reply = await running.client.post(
                f"/producers/{topic}", content=content, headers={"content-type": "application/json"}
            )
            assert 400 <= reply.status_code < 500, reply.text
            assert reply.json()["field"].startswith(field), reply.text
    assert await end_offsets(kafka_bootstrap, topic) == {0: 0, 1: 0}


BAD_SECOND_RECORDS: list[tuple[dict[str, object], str]] = [
    ({"value": "ok", "timestamp": 2**63}, "records[1].timestamp"),
    ({"value": "ok", "headers": {"\ud800": "x"}}, "records[1].headers"),
    ({"value": "ok", "headers": {"h": "\udfff"}}, "records[1].headers.h"),
    ({"value": "ok", "headers": [{"name": "\ud800", "value": None}]}, "records[1].headers[0].name"),
    ({"value": "ok", "correlationId": "\ud800"}, "records[1].correlationId"),
]


async def test_readiness_follows_the_broker(tmp_path: Path, kafka_bootstrap: str, producer_engine: str) -> None:
    async with running_sidecar(
        CONFIG, tmp_path, env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PRODUCER_ENGINE": producer_engine}
    ) as running:
        ready = await running.client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "UP"


async def test_keys_land_on_the_java_clients_partition_with_either_engine(
    tmp_path: Path, kafka_bootstrap: str, topic_factory: TopicFactory, producer_engine: str
) -> None:
    """Keyed records: aiokafka through the sidecar's cached murmur2, librdkafka through its own
    ``murmur2_random``; both put a key where the Java client does (Kafka's murmur2 of the key bytes)."""
    topic = await topic_factory.create(partitions=7)
    keys = [f"customer-{i}" for i in range(40)] + ["", "ż", "a-little-bit-longer-string"]
    body = {"keyFormat": "string", "valueFormat": "string", "records": [{"key": k, "value": "v"} for k in keys]}
    async with running_sidecar(
        CONFIG, tmp_path, env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PRODUCER_ENGINE": producer_engine}
    ) as running:
        first = await running.client.post(f"/producers/{topic}", json=body)
        again = await running.client.post(f"/producers/{topic}", json=body)  # the cached hashes
    assert first.status_code == again.status_code == 200, first.text
    expected = [partition_for(k.encode(), 7) for k in keys]
    assert len(set(expected)) == 7, "the keys cover every partition"
    assert [o["partition"] for o in first.json()["offsets"]] == expected
    assert [o["partition"] for o in again.json()["offsets"]] == expected
    stored = await read_all(kafka_bootstrap, topic, 2 * len(keys))
    assert sorted((r.key, r.partition) for r in stored) == sorted(
        (k.encode(), p) for k, p in zip(keys * 2, expected * 2, strict=True)
    )
