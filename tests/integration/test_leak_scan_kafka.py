"""``scan_topics`` against the real broker: a secret planted in a record is found and located exactly.

The planted secret is NOT registered with ``secret_watch``, so the whole-run check in ``tests/zz_final``
does not trip over it; only this test's own needles look for it.
"""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaProducer

from kafka_sidecar_testing.leak_scan import SecretWatch, mask, scan_topics
from kafka_sidecar_testing.pytest_plugin import TopicFactory

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]


async def test_a_secret_planted_in_a_header_and_a_value_is_found_with_its_location(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create(partitions=2)
    planted = "planted-" + uuid.uuid4().hex
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"clean", partition=0)
        await producer.send_and_wait(topic, b"clean", partition=1, headers=[("x-auth", planted.encode())])
        await producer.send_and_wait(topic, b"v=" + planted.encode(), partition=1)
    finally:
        await producer.stop()
    watch = SecretWatch()
    watch.add(planted)
    scan = await scan_topics(kafka_bootstrap, watch.needles, timeout=30)
    assert topic in scan.topics
    assert scan.unfinished == ()
    mine = sorted(str(leak) for leak in scan.leaks if topic in leak.where)
    assert mine == [
        f"{mask(planted)} found in topic {topic} partition 1 offset 0 header 'x-auth'",
        f"{mask(planted)} found in topic {topic} partition 1 offset 1 value",
    ]
    assert all(planted not in str(leak) for leak in scan.leaks)
