"""``kafka-sidecar check``: a processor's declared output topic must have a consumer (or expose: false)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from kafka_sidecar.plugin import CheckContext
from kafka_sidecar_handlers.streams._config import StreamProcessorConfig


def _consumed(sources: Iterable[object], topic: str) -> bool:
    """True when an enabled consumer in this sidecar reads ``topic`` (by name or topic_pattern)."""
    for config in sources:
        if topic in (getattr(config, "topics", None) or ()):
            return True
        pattern = getattr(config, "topic_pattern", None)
        if isinstance(pattern, str) and re.fullmatch(pattern, topic):
            return True
    return False


def check_outputs(config: StreamProcessorConfig, ctx: CheckContext) -> None:
    """Reports every output topic no consumer of this sidecar reads, unless ``expose: false``."""
    if not config.expose:
        return
    blueprint = ctx.blueprint
    sources = [blueprint.handlers[consumer.links[-1]].config for consumer in blueprint.consumers]
    for index, topic in enumerate(config.output_topics):
        if not _consumed(sources, topic):
            ctx.problem(
                f"output_topics.{index}",
                f"output topic {topic!r} has no consumer in this sidecar: add a reactive-consumer reading it"
                " (isolation_level: read_committed) or set expose: false",
            )
