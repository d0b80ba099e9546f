"""Creating the sidecar's own topics (audit, ...) at start, so its first write never waits on a missing topic."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

from kafka_sidecar._config.model import KafkaConfig
from kafka_sidecar._kafka.options import admin_kwargs

log = logging.getLogger(__name__)
TOPIC_ALREADY_EXISTS = 36


async def ensure_topics(kafka: KafkaConfig, role: str, topics: Sequence[str], brokers: int) -> None:
    """Create each of ``topics`` that does not exist: one partition, replicated to up to 3 of ``brokers``.

    A refusal other than "already exists" (no permission to create topics, say) is logged, not raised:
    the topic may be managed elsewhere, and a write to it then reports its own error.
    """
    timeout = kafka.connect_timeout_ms / 1000
    admin = AIOKafkaAdminClient(**admin_kwargs(kafka, f"{role}-admin"), request_timeout_ms=kafka.connect_timeout_ms)
    async with asyncio.timeout(timeout * 2):
        await admin.start()
        try:
            replication = max(1, min(3, brokers))
            response = await admin.create_topics([NewTopic(name, 1, replication) for name in topics])
        finally:
            await admin.close()
    for entry in response.to_object()["topic_errors"]:
        code = int(entry["error_code"])
        if code == 0:
            log.info("created the sidecar's topic %r", entry["topic"])
        elif code != TOPIC_ALREADY_EXISTS:
            message = entry.get("error_message") or for_code(code).__name__
            log.warning("could not create the sidecar's topic %r: %s", entry["topic"], message)
