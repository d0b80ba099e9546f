"""The producer under faults, against a real broker: a fatal sequence error rebuilds it, the sidecar's own
traffic never touches the business producer, a known-unreachable broker fails fast, Idempotency-Key.
Every test runs with both producer engines (``kafka.producer.engine``: aiokafka and librdkafka)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from schema_support import end_offset

from kafka_sidecar._kafka.rdkafka import RdKafkaProducerService
from kafka_sidecar.testing import RunningSidecar, running_sidecar
from kafka_sidecar_plugins.audit import AUDIT_SINKS
from kafka_sidecar_testing.broker import KafkaBroker, create_topic, ensure_kafka_runtime
from kafka_sidecar_testing.pytest_plugin import TopicFactory

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

CONFIG = """\
kafka:
  bootstrap_servers: ${KAFKA_BOOTSTRAP_SERVERS}
  connect_timeout_ms: 1000
  producer:
    request_timeout_ms: ${REQUEST_TIMEOUT_MS:5000}
    health_check_interval_ms: 300
    engine: ${PRODUCER_ENGINE:aiokafka}
handlers:
  audit: {use: audit, config: {target: kafka, topic: "${AUDIT_TOPIC:sidecar-audit}"}}
paths:
  - {path: "/producers/{topic}", method: POST, exec: [audit, producer]}
"""


@pytest_asyncio.fixture
async def sidecar(tmp_path: Path, kafka_bootstrap: str, producer_engine: str) -> AsyncIterator[RunningSidecar]:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "AUDIT_TOPIC": f"audit-{uuid.uuid4().hex}",
        "PRODUCER_ENGINE": producer_engine,
    }
    async with running_sidecar(CONFIG, tmp_path, env=env) as running:
        yield running


def one(value: object) -> dict[str, Any]:
    return {"records": [{"value": value}]}


async def test_a_fatal_sequence_error_rebuilds_the_producer_and_produce_recovers(
    sidecar: RunningSidecar, topic_factory: TopicFactory, kafka_bootstrap: str, producer_engine: str
) -> None:
    topic = await topic_factory.create()
    service = sidecar.sidecar.resources.producer
    assert (await sidecar.client.post(f"/producers/{topic}", json=one("a"))).status_code == 200
    broken = service._producer
    if producer_engine == "aiokafka":
        # Force what aiokafka#1017 leads to: the idempotent producer's sequence runs ahead of the broker's.
        broken._txn_manager._sequence_numbers[TopicPartition(topic, 0)] += 7
        poisoned = await sidecar.client.post(f"/producers/{topic}", json=one("b"))
        # The broker refused the batch (OutOfOrderSequenceNumber): not written, so safe to retry.
        assert poisoned.status_code == 503, poisoned.text
        assert poisoned.json()["code"] == "kafka-unavailable"
        assert poisoned.json()["offsets"][0]["error_code"] == 50003
        assert "OutOfOrderSequenceNumber" in poisoned.json()["offsets"][0]["error"]
    else:
        # librdkafka recovers sequence errors itself and raises a fatal error when it cannot; that error
        # reaches the engine through librdkafka's error callback, as here.
        from confluent_kafka import KafkaError

        fatal = KafkaError(KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, "forced by the test", fatal=True)
        assert isinstance(service, RdKafkaProducerService)
        service._error_from_thread(broken, fatal)
        poisoned = await sidecar.client.post(f"/producers/{topic}", json=one("b"))
        assert poisoned.status_code == 503, poisoned.text  # the broken client is not used: nothing written
        assert poisoned.json()["code"] == "kafka-unavailable"
        assert "nothing was written" in poisoned.json()["detail"]
        assert "OUT_OF_ORDER_SEQUENCE_NUMBER" in poisoned.json()["detail"]
    assert service.rebuilds == 1
    assert await service.wait_connected(30)
    assert service._producer is not broken
    ready = await sidecar.client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["producer"] == "ready"
    for value in ("c", "d"):
        response = await sidecar.client.post(f"/producers/{topic}", json=one(value))
        assert response.status_code == 200, response.text
    assert service.rebuilds == 1
    assert await end_offset(kafka_bootstrap, topic) == 3, "the refused batch must not be stored"


async def test_readiness_says_rebuilding_while_the_producer_is_replaced(sidecar: RunningSidecar) -> None:
    service = sidecar.sidecar.resources.producer
    service._retire(service._producer, RuntimeError("forced"))
    # Right after a fatal error, before the new producer connects:
    ready = await sidecar.client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["producer"] == "rebuilding"
    assert await service.wait_connected(30)
    assert (await sidecar.client.get("/health/ready")).status_code == 200


async def test_audit_goes_through_its_own_producer_to_a_topic_created_at_start(
    sidecar: RunningSidecar, topic_factory: TopicFactory, kafka_bootstrap: str
) -> None:
    """The trigger of issue 11 item 1: the first audit records to a new topic while batches are in flight."""
    resources = sidecar.sidecar.resources
    audit_topic = next(t for t in resources.internal_producer._topics_wanted if t.startswith("audit-"))
    assert await resources.internal_producer.wait_connected(30)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        assert audit_topic in await admin.list_topics(), "the audit topic is created when the sidecar starts"
    finally:
        await admin.close()
    topics = [await topic_factory.create(partitions=2) for _ in range(2)]
    for _ in range(3):
        replies = await asyncio.gather(
            *(
                sidecar.client.post(f"/producers/{topic}", json={"records": [{"value": i} for i in range(20)]})
                for topic in topics
                for _ in range(10)
            )
        )
        assert [r.status_code for r in replies] == [200] * len(replies)
    assert resources.producer.rebuilds == 0
    producer = resources.producer
    business_topics = (
        set(producer._partitions)  # the topics it fetched metadata for
        if isinstance(producer, RdKafkaProducerService)
        # the topics it asked metadata for to send (cluster.topics() also lists every topic of the broker,
        # since a client with no topic yet fetches the metadata of all of them)
        else set(producer._producer.client._topics)
    )
    assert topics[0] in business_topics
    assert audit_topic not in business_topics, "the business producer never writes the sidecar's own topics"
    (sink,) = resources.services[AUDIT_SINKS]
    assert await sink.flushed(30)
    assert sink.written > 0
    assert await end_offset(kafka_bootstrap, audit_topic) == sink.written


async def test_idempotency_key_replays_the_first_outcome_and_writes_once(
    sidecar: RunningSidecar, topic_factory: TopicFactory, kafka_bootstrap: str
) -> None:
    topic = await topic_factory.create()
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = await sidecar.client.post(f"/producers/{topic}", json=one("x"), headers=key)
    again = await sidecar.client.post(f"/producers/{topic}", json=one("x"), headers=key)
    assert first.status_code == again.status_code == 200
    assert first.json()["offsets"] == again.json()["offsets"]
    concurrent_key = {"Idempotency-Key": uuid.uuid4().hex}
    joined = await asyncio.gather(
        *(sidecar.client.post(f"/producers/{topic}", json=one("y"), headers=concurrent_key) for _ in range(5))
    )
    assert {r.status_code for r in joined} == {200}
    assert len({str(r.json()["offsets"]) for r in joined}) == 1, "every retry joined the one in flight"
    other = await sidecar.client.post(f"/producers/{topic}", json=one("z"), headers=key)
    assert other.status_code == 409, other.text
    assert other.json()["field"] == "Idempotency-Key"
    without_key = await sidecar.client.post(f"/producers/{topic}", json=one("x"))
    assert without_key.status_code == 200
    assert await end_offset(kafka_bootstrap, topic) == 3


# -- a broker of the test's own, killed and restarted ---------------------------------------


@pytest.fixture
def private_broker(kafka_bootstrap: str) -> Iterator[KafkaBroker]:
    broker = KafkaBroker(ensure_kafka_runtime(), extra_properties={"auto.create.topics.enable": "false"})
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


async def wait_for(what: str, check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)  # polling a condition with a deadline


async def test_a_dead_broker_fails_produce_fast_and_a_restart_recovers(
    tmp_path: Path, private_broker: KafkaBroker, producer_engine: str
) -> None:
    bootstrap = private_broker.bootstrap_servers
    await create_topic(bootstrap, "orders", 1)
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "REQUEST_TIMEOUT_MS": "30000", "PRODUCER_ENGINE": producer_engine}
    async with running_sidecar(CONFIG, tmp_path, env=env) as running:
        client = running.client
        assert (await client.post("/producers/orders", json=one(1))).status_code == 200
        private_broker.kill()

        async def unreachable() -> bool:
            ready = await client.get("/health/ready")
            return ready.status_code == 503 and ready.json()["producer"] == "unreachable"

        await wait_for("readiness to say the broker is unreachable", unreachable)
        started = time.monotonic()
        refused = await client.post("/producers/orders", json=one(2))
        elapsed = time.monotonic() - started
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "kafka-unavailable"
        assert "nothing was written" in refused.json()["detail"]
        assert elapsed < 3.0, f"took {elapsed:.1f}s although the broker is known to be down"

        private_broker.restart()

        async def ready() -> bool:
            return (await client.get("/health/ready")).status_code == 200

        await wait_for("readiness after the restart", ready)
        response = await client.post("/producers/orders", json=one(3))
        assert response.status_code == 200, response.text
    assert await end_offset(bootstrap, "orders") == 2


async def test_audit_records_to_a_missing_topic_never_stall_business_batches(
    tmp_path: Path, private_broker: KafkaBroker, producer_engine: str
) -> None:
    """Issue 11's trigger, made permanent: the audit topic vanishes (and the broker creates no topics)
    while concurrent produce batches are in flight. The business producer never notices."""
    bootstrap = private_broker.bootstrap_servers
    await create_topic(bootstrap, "orders", 2)
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "AUDIT_TOPIC": "audit-gone", "PRODUCER_ENGINE": producer_engine}
    async with running_sidecar(CONFIG, tmp_path, env=env) as running:
        resources = running.sidecar.resources
        assert await resources.internal_producer.wait_connected(30)
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            assert "audit-gone" in await admin.list_topics()
            await admin.delete_topics(["audit-gone"])
        finally:
            await admin.close()
        started = time.monotonic()
        for _ in range(3):
            replies = await asyncio.gather(
                *(
                    running.client.post("/producers/orders", json={"records": [{"value": i} for i in range(20)]})
                    for _ in range(10)
                )
            )
            assert [r.status_code for r in replies] == [200] * len(replies)
        assert time.monotonic() - started < 20, "business batches never waited on the audit topic"
        assert resources.producer.rebuilds == 0
        assert (await running.client.get("/health/ready")).status_code == 200
    assert await end_offset(bootstrap, "orders", 2) == 3 * 10 * 20
