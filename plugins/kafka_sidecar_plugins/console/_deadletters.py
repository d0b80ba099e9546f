"""Reading the newest records of a reactive consumer's dead-letter topics, for the console's browser.

A throw-away consumer without a group reads from a snapshot of the end offsets backwards, so it
commits nothing and cannot disturb the live consumer or a replay. Keys, values and headers are sent
as text (UTF-8 with replacement) when they decode, else as base64, and the page shows them as text
only (never as HTML).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_sidecar.plugin import KafkaConfig, NotFound, consumer_kwargs

READ_TIMEOUT_S = 10.0


def shown(data: bytes | None) -> dict[str, object] | None:
    """``{"text": ...}`` for UTF-8, ``{"base64": ...}`` for other bytes, None for null."""
    if data is None:
        return None
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def letter(message: Any) -> dict[str, Any]:
    headers = [(k, bytes(v) if v is not None else b"") for k, v in (message.headers or ())]
    return {
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "timestamp": message.timestamp,
        "key": shown(message.key),
        "value": shown(message.value),
        "headers": [{"name": k, "value": v.decode("utf-8", errors="replace")} for k, v in headers],
    }


async def newest_dead_letters(
    kafka: KafkaConfig, topics: Sequence[str], limit: int, partitions_for: Callable[[str], Awaitable[set[int]]]
) -> dict[str, object]:
    """Up to ``limit`` newest records of each partition of ``topics`` (topics not created yet are skipped).

    ``partitions_for`` is the shared producer's metadata lookup.
    """
    tps: list[TopicPartition] = []
    for topic in topics:
        try:
            tps.extend(TopicPartition(topic, p) for p in sorted(await partitions_for(topic)))
        except NotFound:
            continue
    if not tps:
        return {"topics": list(topics), "total": 0, "letters": [], "complete": True}
    consumer = AIOKafkaConsumer(**consumer_kwargs(kafka, "console-dlq"), group_id=None)
    await consumer.start()
    try:
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        wanted = {tp: max(starts[tp], ends[tp] - limit) for tp in tps}
        for tp, offset in wanted.items():
            consumer.seek(tp, offset)
        remaining = {tp for tp in tps if wanted[tp] < ends[tp]}
        letters: list[dict[str, Any]] = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while remaining and time.monotonic() < deadline:
            batches = await consumer.getmany(*remaining, timeout_ms=200)
            for tp, messages in batches.items():
                letters.extend(letter(m) for m in messages if m.offset < ends[tp])
                if messages and messages[-1].offset >= ends[tp] - 1:
                    remaining.discard(tp)
        letters.sort(key=lambda e: (e["topic"], e["partition"], -e["offset"]))
        total = sum(ends[tp] - starts[tp] for tp in tps)
        return {"topics": list(topics), "total": total, "letters": letters, "complete": not remaining}
    finally:
        await consumer.stop()
