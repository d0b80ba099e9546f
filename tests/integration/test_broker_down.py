"""A broker that goes away after the sidecar connected: produce answers 503 within the timeout, never hangs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kafka_sidecar.testing import running_sidecar
from kafka_sidecar_testing.broker import KafkaBroker, create_topic, ensure_kafka_runtime

pytestmark = [pytest.mark.kafka]

CONFIG = """\
kafka:
  bootstrap_servers: ${KAFKA_BOOTSTRAP_SERVERS}
  connect_timeout_ms: 1000
  producer:
    request_timeout_ms: 3000
    engine: ${PRODUCER_ENGINE:aiokafka}
paths:
  - {path: "/producers/{topic}", method: POST, exec: [producer]}
"""


@pytest.fixture
def private_broker(kafka_bootstrap: str) -> Iterator[KafkaBroker]:
    """A broker of this test's own (topics are not auto-created), so stopping it disturbs no other test."""
    broker = KafkaBroker(ensure_kafka_runtime(), extra_properties={"auto.create.topics.enable": "false"})
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.mark.asyncio
async def test_unknown_topic_is_404_then_broker_gone_is_503_both_within_the_timeout(
    tmp_path: Path, private_broker: KafkaBroker, producer_engine: str
) -> None:
    bootstrap = private_broker.bootstrap_servers
    await create_topic(bootstrap, "gone", 1)
    async with running_sidecar(
        CONFIG, tmp_path, env={"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "PRODUCER_ENGINE": producer_engine}
    ) as running:
        ok = await running.client.post("/producers/gone", json={"records": [{"value": 1}]})
        assert ok.status_code == 200
        started = time.monotonic()
        unknown = await running.client.post("/producers/never-created", json={"records": [{"value": 1}]})
        assert unknown.status_code == 404, unknown.text
        assert unknown.json()["field"] == "topic"
        assert unknown.json()["error_code"] == 40401
        assert time.monotonic() - started < 3.0 + 3.0
        private_broker.stop()
        started = time.monotonic()
        response = await running.client.post("/producers/gone", json={"records": [{"value": 2}]})
        elapsed = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "kafka-unavailable"
        assert elapsed < 3.0 + 6.0, f"took {elapsed:.1f}s; request_timeout_ms is 3000"
        ready = await running.client.get("/health/ready")
        assert ready.status_code == 503
