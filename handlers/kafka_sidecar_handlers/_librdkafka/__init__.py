"""What both consumers' librdkafka engines share: the thread that owns a ``confluent_kafka.Consumer``
(:mod:`.owner`), messages turned into records in C-level maps (:mod:`.messages`), and partitions named
the librdkafka way (:func:`rd_partition`). Imported only when an engine is ``librdkafka`` (extra
``librdkafka``); confluent-kafka itself is imported on first use."""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition


def rd_partition(tp: TopicPartition, offset: int | None = None) -> Any:
    """``tp`` (and an offset, or a timestamp for ``offsets_for_times``) as confluent-kafka's TopicPartition."""
    from confluent_kafka import TopicPartition as RdTopicPartition

    if offset is None:
        return RdTopicPartition(tp.topic, tp.partition)
    return RdTopicPartition(tp.topic, tp.partition, offset)


def anchored_pattern(pattern: str) -> str:
    """librdkafka takes a subscription starting with ``^`` as a regular expression; aiokafka matches a
    pattern at the start of a topic name, so an unanchored pattern is anchored there."""
    return pattern if pattern.startswith("^") else f"^({pattern})"
