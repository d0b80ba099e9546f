"""``kafka-sidecar check``: a processor's declared output topic must have a consumer (or expose: false)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from kafka_sidecar_handlers.streams._config import StreamProcessorConfig

if TYPE_CHECKING:
    from kafka_sidecar._blueprint import Blueprint


def _consumed(blueprint: Blueprint, topic: str) -> bool:
    """True when an enabled consumer in this sidecar reads ``topic`` (by name or topic_pattern)."""
    for consumer in blueprint.consumers:
        config = blueprint.handlers[consumer.links[-1]].config
        if topic in (getattr(config, "topics", None) or ()):
            return True
        pattern = getattr(config, "topic_pattern", None)
        if isinstance(pattern, str) and re.fullmatch(pattern, topic):
            return True
    return False


def check_outputs(name: str, config: object, blueprint: Blueprint) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if not isinstance(config, StreamProcessorConfig) or not config.expose:
        return
    for index, topic in enumerate(config.output_topics):
        if not _consumed(blueprint, topic):
            yield (
                ("handlers", name, "config", "output_topics", index),
                f"output topic {topic!r} has no consumer in this sidecar: add a reactive-consumer reading it"
                " (isolation_level: read_committed) or set expose: false",
            )
