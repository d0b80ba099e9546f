"""Topics on the test broker: creating them (waiting until every partition is visible) and filling them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, Final

from kafka_sidecar_testing.kafka_runtime import BrokerError

_POLL_INTERVAL: Final = 0.1


async def create_topic(
    bootstrap: str,
    name: str,
    partitions: int = 1,
    config: Mapping[str, str] | None = None,
    *,
    replication_factor: int = 1,
    exist_ok: bool = False,
    wait_timeout: float = 30.0,
) -> None:
    """Create ``name`` and wait until the broker's metadata shows all its partitions with leaders.

    Raises :class:`BrokerError` if the broker rejects the topic and :class:`TimeoutError` if
    the whole operation takes longer than ``wait_timeout`` seconds.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import for_code

    topic_already_exists = 36
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(wait_timeout * 1000))
    async with asyncio.timeout(wait_timeout):
        await admin.start()
        try:
            response = await admin.create_topics(
                [NewTopic(name, partitions, replication_factor, topic_configs=dict(config or {}))]
            )
            for entry in response.to_object()["topic_errors"]:
                code = int(entry["error_code"])
                if code == 0 or (code == topic_already_exists and exist_ok):
                    continue
                message = entry.get("error_message") or for_code(code).__name__
                raise BrokerError(f"creating topic {name!r} failed: {message} (error code {code})")
            # Readiness wait on remote state (metadata), bounded by the timeout above; there is
            # no event to await, so poll.
            while not _topic_ready(await admin.describe_topics([name]), name, partitions):  # noqa: ASYNC110
                await asyncio.sleep(_POLL_INTERVAL)
        finally:
            await admin.close()


def _topic_ready(topics: list[Any], name: str, partitions: int) -> bool:
    for topic in topics:
        if topic.get("topic") != name or topic.get("error_code") != 0:
            continue
        parts = topic.get("partitions") or []
        return len(parts) >= partitions and all(p.get("error_code") == 0 and p.get("leader", -1) >= 0 for p in parts)
    return False


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


async def produce_raw(bootstrap: str, topic: str, records: Iterable[Mapping[str, Any]]) -> None:
    """Send records with a plain aiokafka producer, one ``send_and_wait(topic, **record)`` each, in order."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(topic, **record)
    finally:
        await producer.stop()
