"""The Kafka test harness itself: a real broker, a multi-partition topic, plain aiokafka clients."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from kafka_sidecar_testing.pytest_plugin import KafkaEndpoint, TopicFactory

Record = tuple[bytes, bytes, tuple[tuple[str, bytes], ...]]


def _records(count: int) -> list[Record]:
    records: list[Record] = []
    for i in range(count):
        key = f"key-{i % 7}".encode()
        # Arbitrary bytes, including ones that are not valid UTF-8.
        value = bytes([i % 256, 0x00, 0xFF, 0x80]) + uuid.uuid4().bytes
        headers = (("trace-id", uuid.uuid4().hex.encode()), ("seq", str(i).encode()), ("bin", b"\x00\xfe"))
        records.append((key, value, headers))
    return records


@pytest.mark.kafka
@pytest.mark.asyncio
async def test_produce_consume_roundtrip_on_three_partitions(topic_factory: TopicFactory) -> None:
    bootstrap = topic_factory.bootstrap_servers
    topic = await topic_factory.create(partitions=3, prefix="harness")
    sent = _records(30)

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        assert await producer.partitions_for(topic) == {0, 1, 2}
        placed: dict[int, list[Record]] = {0: [], 1: [], 2: []}
        for key, value, headers in sent:
            meta = await producer.send_and_wait(topic, value=value, key=key, headers=list(headers))
            placed[meta.partition].append((key, value, headers))
    finally:
        await producer.stop()
    assert sum(1 for records in placed.values() if records) >= 2, "keys should spread over partitions"

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"harness-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: dict[int, list[Record]] = {0: [], 1: [], 2: []}
    try:
        async with asyncio.timeout(60):
            while sum(len(records) for records in received.values()) < len(sent):
                batches = await consumer.getmany(timeout_ms=1000)
                for tp, messages in batches.items():
                    for msg in messages:
                        assert msg.key is not None
                        assert msg.value is not None
                        received[tp.partition].append((msg.key, msg.value, tuple(msg.headers)))
        assert consumer.assignment() == {TopicPartition(topic, p) for p in range(3)}
    finally:
        await consumer.stop()

    # Byte-for-byte equal, in per-partition order.
    assert received == placed


@pytest.mark.kafka
def test_topic_factory_from_sync_code(kafka_broker: KafkaEndpoint, topic_factory: TopicFactory) -> None:
    first = topic_factory(partitions=2, prefix="sync")
    second = topic_factory()
    assert first != second
    assert first.startswith("sync-")
    assert topic_factory.created == [first, second]
    if kafka_broker.broker is not None:
        assert kafka_broker.bootstrap_servers == kafka_broker.broker.listener_address("PLAINTEXT")
        assert kafka_broker.broker.is_running
