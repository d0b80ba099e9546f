"""``ProducerService.send_bulk`` (the audit's write) against a real broker, with both producer engines:
every record lands once, on the partition Kafka's default partitioner picks for its key, in order, and
the outcome counts what the broker acknowledged; what cannot be written is counted as failed, never
reported as written. (A missing topic cannot be tried here: the shared test broker creates topics.)"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from schema_support import end_offset, read_raw

from kafka_sidecar._config.model import KafkaConfig, ProducerEngine, ProducerSettings
from kafka_sidecar._kafka.partitioner import partition_for
from kafka_sidecar._kafka.producer import ProducerService
from kafka_sidecar._kafka.rdkafka import producer_service
from kafka_sidecar._records import OutgoingRecord
from kafka_sidecar_testing.pytest_plugin import TopicFactory

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]
ENGINES = ["aiokafka", "librdkafka"]


@pytest_asyncio.fixture(params=ENGINES)
async def internal_producer(request: pytest.FixtureRequest, kafka_bootstrap: str) -> AsyncIterator[ProducerService]:
    engine: ProducerEngine = request.param
    kafka = KafkaConfig(bootstrap_servers=kafka_bootstrap, producer=ProducerSettings(engine=engine))
    producer = producer_service(kafka, role="internal-producer", patient=True)
    await producer.start()
    assert await producer.wait_connected(30)
    try:
        yield producer
    finally:
        await producer.stop()


async def test_every_record_lands_once_on_its_keys_partition_in_order(
    internal_producer: ProducerService, topic_factory: TopicFactory, kafka_bootstrap: str
) -> None:
    topic = await topic_factory.create(partitions=3)
    # 300 records of 2 KiB: more than one 128 KiB batch per partition, so full batches are handed over
    records = [OutgoingRecord(topic, f"key-{n % 40}".encode(), b"%06d" % n + b"x" * 2048) for n in range(300)]
    handed_over: list[int] = []
    if internal_producer.engine == "aiokafka":  # count the batches handed to the client (one future each)
        client = internal_producer._producer
        submit = client.send_batch

        async def counting_send_batch(batch: Any, topic: str, *, partition: int) -> Any:
            handed_over.append(partition)
            return await submit(batch, topic, partition=partition)

        client.send_batch = counting_send_batch
    outcome = await internal_producer.send_bulk(records)
    assert (outcome.acknowledged, outcome.failed, outcome.error) == (300, 0, None)
    landed = await read_raw(kafka_bootstrap, topic, 300)
    if internal_producer.engine == "aiokafka":  # full batches of max_batch_size, per partition: not 300 sends
        per_batch = KafkaConfig().producer.max_batch_size // 2200  # a record with its overhead is < 2200 bytes
        per_partition = Counter(record.partition for record in landed)
        assert sorted(set(handed_over)) == [0, 1, 2]
        assert len(handed_over) <= sum(-(-count // per_batch) for count in per_partition.values()), handed_over
    assert sorted(int(r.value[:6]) for r in landed) == list(range(300))  # each once
    for record in landed:
        assert record.partition == partition_for(record.key, 3), record.key
    for partition in range(3):  # in the order given, within each partition
        numbers = [int(r.value[:6]) for r in landed if r.partition == partition]
        assert numbers == sorted(numbers)


async def test_records_without_a_key_each_land_once_in_order(
    internal_producer: ProducerService, topic_factory: TopicFactory, kafka_bootstrap: str
) -> None:
    """aiokafka's engine puts a write's unkeyed records in one partition (one batch); librdkafka's sticky
    partitioner spreads them as its batches fill."""
    topic = await topic_factory.create(partitions=3)
    outcome = await internal_producer.send_bulk([OutgoingRecord(topic, None, b"%03d" % n) for n in range(50)])
    assert (outcome.acknowledged, outcome.failed) == (50, 0)
    landed = await read_raw(kafka_bootstrap, topic, 50)
    assert sorted(record.value for record in landed) == [b"%03d" % n for n in range(50)]
    for partition in range(3):
        values = [record.value for record in landed if record.partition == partition]
        assert values == sorted(values)
    if internal_producer.engine == "aiokafka":
        assert len({record.partition for record in landed}) == 1


async def test_what_the_broker_refuses_is_counted_failed_and_nothing_unacknowledged_counts_written(
    internal_producer: ProducerService, topic_factory: TopicFactory, kafka_bootstrap: str
) -> None:
    topic = await topic_factory.create(partitions=1, config={"max.message.bytes": "4096"})
    records = [OutgoingRecord(topic, b"k", b"small-%d" % n) for n in range(5)]
    records.insert(2, OutgoingRecord(topic, b"k", b"x" * 20_000))  # refused by the broker's topic limit
    outcome = await internal_producer.send_bulk(records, ack_timeout=20)
    assert outcome.acknowledged + outcome.failed == 6
    assert outcome.failed >= 1, outcome
    assert outcome.error, outcome
    # the topic holds exactly what was counted acknowledged (aiokafka fails the refused record's whole batch;
    # librdkafka may too): nothing is counted written that is not
    assert await end_offset(kafka_bootstrap, topic) == outcome.acknowledged
