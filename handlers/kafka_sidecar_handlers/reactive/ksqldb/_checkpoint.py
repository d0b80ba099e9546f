"""Push-mode checkpoints (``resume: source-offsets``): per source partition, the next offset not yet final.

Stored like a commit, after records become final (SUCCESS, DROP or an acknowledged dead letter), in a
compacted topic (key = consumer name, value = ``{"partitions": {"0": 42, ...}}``) written through the
sidecar's shared producer and acknowledged by the broker. Loaded at each (re)subscription: the newest
value for the key wins.
"""

from __future__ import annotations

import json
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from kafka_sidecar.plugin import KafkaConfig, OutgoingRecord, ProducerService, admin_kwargs, consumer_kwargs

log = logging.getLogger(__name__)
TOPIC_EXISTS = 36


class CheckpointStore:
    def __init__(self, kafka: KafkaConfig, producer: ProducerService, topic: str, consumer: str) -> None:
        self._kafka = kafka
        self._producer = producer
        self.topic = topic
        self._key = consumer.encode()
        self._ensured = False

    async def _ensure_topic(self) -> None:
        if self._ensured:
            return
        admin = AIOKafkaAdminClient(**admin_kwargs(self._kafka, "ksqldb-checkpoints"))
        await admin.start()
        try:
            response = await admin.create_topics(
                [NewTopic(self.topic, 1, 1, topic_configs={"cleanup.policy": "compact"})]
            )
            for entry in response.to_object()["topic_errors"]:
                if int(entry["error_code"]) not in (0, TOPIC_EXISTS):
                    raise RuntimeError(f"cannot create checkpoint topic {self.topic!r}: {entry}")
        finally:
            await admin.close()
        self._ensured = True

    async def load(self) -> dict[int, int]:
        """Partition -> next offset to deliver, from the newest checkpoint (empty: start of the source)."""
        await self._ensure_topic()
        consumer = AIOKafkaConsumer(**consumer_kwargs(self._kafka, "ksqldb-checkpoints"))
        await consumer.start()
        try:
            tp = TopicPartition(self.topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            found: bytes | None = None
            while await consumer.position(tp) < end:
                for message in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                    if message.key == self._key and message.offset < end:
                        found = message.value
        finally:
            await consumer.stop()
        if not found:
            return {}
        data = json.loads(found)
        return {int(p): int(o) for p, o in data.get("partitions", {}).items()}

    async def save(self, positions: dict[int, int]) -> bool:
        """True once the broker acknowledged the checkpoint."""
        await self._ensure_topic()
        value = json.dumps({"partitions": {str(p): o for p, o in sorted(positions.items())}}).encode()
        reports = await self._producer.send_batch([OutgoingRecord(self.topic, self._key, value, partition=0)])
        return bool(reports) and reports[0].acknowledged
