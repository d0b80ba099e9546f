"""Replaying a dead-letter topic back through the consumer's chain to its backend.

A replay job reads ``<topic><suffix>`` (every partition, or the offset range asked for) from a fixed
snapshot of the end offsets, so records that fail again and are written back to the same dead-letter
topic are not read twice by the same job. It uses no consumer group: it commits nothing and cannot
disturb the live consumer. With ``last_attempt`` a record that fails again is dropped (and logged)
instead of being written back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_sidecar.plugin import ConsumedRecord, KafkaConfig, ValidationFailed, consumer_kwargs
from kafka_sidecar_handlers.reactive._aiokafka import to_record
from kafka_sidecar_handlers.reactive._delivery import DeliveryContext, DeliveryStats, deliver_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    topic: str
    from_offset: int | None = None
    to_offset: int | None = None
    last_attempt: bool = False


def parse_replay(body: Mapping[str, Any], dlq_topics: list[str]) -> ReplayRequest:
    topic = body.get("topic")
    if topic is None:
        if len(dlq_topics) != 1:
            raise ValidationFailed(f"name the dead-letter topic to replay, one of {dlq_topics}", field="topic")
        topic = dlq_topics[0]
    if not isinstance(topic, str) or topic not in dlq_topics:
        raise ValidationFailed(f"must be one of this consumer's dead-letter topics {dlq_topics}", field="topic")
    bounds: dict[str, int | None] = {}
    for name in ("from_offset", "to_offset"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ValidationFailed("must be a non-negative integer", field=name)
        bounds[name] = value
    last_attempt = body.get("last_attempt", False)
    if not isinstance(last_attempt, bool):
        raise ValidationFailed("must be true or false", field="last_attempt")
    return ReplayRequest(topic, bounds["from_offset"], bounds["to_offset"], last_attempt)


@dataclass(slots=True)
class ReplayJob:
    request: ReplayRequest
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    state: str = "starting"
    total: int = 0
    read: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    stats: DeliveryStats = field(default_factory=DeliveryStats)
    task: asyncio.Task[None] | None = None

    def snapshot(self) -> dict[str, object]:
        return {
            "id": self.id,
            "topic": self.request.topic,
            "from_offset": self.request.from_offset,
            "to_offset": self.request.to_offset,
            "last_attempt": self.request.last_attempt,
            "state": self.state,
            "total": self.total,
            "read": self.read,
            "finished": sum(self.outcomes.values()),
            "outcomes": dict(self.outcomes),
            "error": self.error,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }

    def count(self, records: Sequence[ConsumedRecord], status: str) -> None:
        self.outcomes[status] = self.outcomes.get(status, 0) + len(records)


async def run_replay(
    job: ReplayJob,
    kafka: KafkaConfig,
    name: str,
    ctx: DeliveryContext,
    batch_max: int,
    partitions_for: Callable[[str], Awaitable[set[int]]],
) -> None:
    """Run ``job`` to its end; ``partitions_for`` is the shared producer's metadata lookup."""
    consumer = AIOKafkaConsumer(**consumer_kwargs(kafka, f"reactive-{name}-replay"), group_id=None)
    try:
        await consumer.start()
        partitions = await partitions_for(job.request.topic)
        tps = [TopicPartition(job.request.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        ranges: dict[TopicPartition, tuple[int, int]] = {}
        for tp in tps:
            low = max(starts[tp], job.request.from_offset or 0)
            high = ends[tp] if job.request.to_offset is None else min(ends[tp], job.request.to_offset + 1)
            if high > low:
                ranges[tp] = (low, high)
                consumer.seek(tp, low)
        job.total = sum(high - low for low, high in ranges.values())
        job.state = "running"
        while ranges:
            fetched = await consumer.getmany(*ranges, timeout_ms=500, max_records=batch_max)
            for tp, messages in fetched.items():
                if tp not in ranges:
                    continue
                high = ranges[tp][1]
                batch = [to_record(m) for m in messages if m.offset < high]
                job.read += len(batch)
                if batch:
                    await deliver_batch(ctx, batch, job.count, job.stats)
                if (messages and messages[-1].offset >= high - 1) or await consumer.position(tp) >= high:
                    del ranges[tp]
        job.state = "done"
    except asyncio.CancelledError:
        job.state = "cancelled"
        raise
    except Exception as exc:
        job.state = "failed"
        job.error = f"{type(exc).__name__}: {exc}"
        log.warning("consumer %s: DLQ replay %s failed: %s", name, job.id, job.error)
    finally:
        job.finished_at = time.time()
        with contextlib.suppress(Exception):
            await consumer.stop()
