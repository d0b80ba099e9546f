"""``POST /consumers/deadLetter/active`` against the real broker, read back with a plain aiokafka consumer."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer

from kafka_sidecar.testing import RunningSidecar, running_sidecar
from kafka_sidecar_testing.broker import create_topic
from kafka_sidecar_testing.pytest_plugin import TopicFactory

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

CONFIG = """\
kafka:
  bootstrap_servers: ${KAFKA_BOOTSTRAP_SERVERS}
  producer: {engine: "${PRODUCER_ENGINE:aiokafka}"}
paths:
  - {path: "/consumers/deadLetter/active", method: POST, exec: [active-consumer]}
"""


@pytest_asyncio.fixture
async def sidecar(tmp_path: Path, kafka_bootstrap: str, producer_engine: str) -> AsyncIterator[RunningSidecar]:
    """With each producer engine: dead letters go through the internal producer."""
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PRODUCER_ENGINE": producer_engine}
    async with running_sidecar(CONFIG, tmp_path, env=env) as running:
        yield running


async def read_all(bootstrap: str, topic: str, count: int) -> list[Any]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    got: list[Any] = []
    try:
        for _ in range(100):
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                got.extend(messages)
            if len(got) >= count:
                break
    finally:
        await consumer.stop()
    return got


async def test_java_style_results_land_in_dlq_with_original_data_and_error_headers(
    sidecar: RunningSidecar, kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    source = TopicFactory.unique_name("orders")
    await create_topic(kafka_bootstrap, source + ".dlq", 1)
    body = [
        {
            "record": {"topic": source, "partition": 2, "offset": 41, "key": "k-1", "value": {"id": 7, "ok": False},
                       "headers": {"X-Correlation-Id": "corr-1", "app": "a"}, "timestamp": 1_650_000_000_000},
            "processed": False,
            "stacktrace": "java.lang.IllegalStateException: boom",
            "correlationId": "ignored-because-header-present",
            "traceabilityId": "trace-9",
        }
    ]  # fmt: skip
    response = await sidecar.client.post("/consumers/deadLetter/active", json=body)
    assert response.status_code == 200, response.text
    [landed] = response.json()
    assert landed["topic"] == source + ".dlq"
    assert landed["error_code"] is None
    assert landed["source"] == {"topic": source, "partition": 2, "offset": 41}
    [message] = await read_all(kafka_bootstrap, source + ".dlq", 1)
    assert (message.partition, message.offset) == (landed["partition"], landed["offset"])
    assert json.loads(message.key) == "k-1"
    assert json.loads(message.value) == {"id": 7, "ok": False}
    assert message.timestamp == 1_650_000_000_000
    headers = {name: value.decode() for name, value in message.headers}
    assert headers["X-Correlation-Id"] == "corr-1"
    assert headers["X-Traceability-Id"] == "trace-9"
    assert headers["app"] == "a"
    assert headers["x-dlq-source-topic"] == source
    assert headers["x-dlq-source-partition"] == "2"
    assert headers["x-dlq-source-offset"] == "41"
    assert headers["x-dlq-error"] == "java.lang.IllegalStateException: boom"


async def test_binary_records_keep_exact_bytes(
    sidecar: RunningSidecar, kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    source = await topic_factory.create(partitions=1)
    raw_key, raw_value = b"\x00\x01key", b"\xff\xfevalue"
    body = {
        "format": "binary",
        "records": [
            {"topic": source, "partition": 0, "offset": 3, "key": base64.b64encode(raw_key).decode(),
             "value": base64.b64encode(raw_value).decode(), "error": "bad value"},
        ],
    }  # fmt: skip
    response = await sidecar.client.post("/consumers/deadLetter/active", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["dead_letters"][0]["topic"] == source + ".dlq"
    [message] = await read_all(kafka_bootstrap, source + ".dlq", 1)
    assert (message.key, message.value) == (raw_key, raw_value)
    assert dict(message.headers)["x-dlq-error"] == b"bad value"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({"records": [{"partition": 0, "offset": 1}]}, "records[0].topic"),
        ([{"record": {"topic": "t", "partition": -1, "offset": 0}}], "[0].record.partition"),
        ([{"record": {"topic": "t", "partition": 0, "offset": 0}, "stacktrce": "x"}], "[0].stacktrce"),
        ({"format": "binary", "records": [{"topic": "t", "partition": 0, "offset": 0, "value": "%%"}]},
         "records[0].value"),
    ],
)  # fmt: skip
async def test_bad_dead_letter_bodies_name_the_field(sidecar: RunningSidecar, body: object, field: str) -> None:
    response = await sidecar.client.post("/consumers/deadLetter/active", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
