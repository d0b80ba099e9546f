"""``kafka-sidecar check``: a processor's declared output topic must have a consumer (or expose: false)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from kafka_sidecar_handlers.streams._config import StreamProcessorConfig


def _consumed(sources: Mapping[str, object], topic: str) -> bool:
    """True when an enabled consumer in this sidecar reads ``topic`` (by name or topic_pattern)."""
    for config in sources.values():
        if topic in (getattr(config, "topics", None) or ()):
            return True
        pattern = getattr(config, "topic_pattern", None)
        if isinstance(pattern, str) and re.fullmatch(pattern, topic):
            return True
    return False


def check_outputs(
    name: str, config: object, sources: Mapping[str, object]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if not isinstance(config, StreamProcessorConfig) or not config.expose:
        return
    for index, topic in enumerate(config.output_topics):
        if not _consumed(sources, topic):
            yield (
                ("handlers", name, "config", "output_topics", index),
                f"output topic {topic!r} has no consumer in this sidecar: add a reactive-consumer reading it"
                " (isolation_level: read_committed) or set expose: false",
            )
