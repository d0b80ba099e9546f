"""The Java properties a ``command`` processor gets: the sidecar's Kafka settings plus the processor's own."""

from __future__ import annotations

from pathlib import Path

from kafka_sidecar.plugin import KafkaConfig, java_client_properties
from kafka_sidecar_handlers.streams._config import StreamProcessorConfig


def java_properties(kafka: KafkaConfig, config: StreamProcessorConfig, state_dir: Path) -> dict[str, str]:
    """Java client (and Kafka Streams) properties for a ``command`` processor."""
    out = java_client_properties(kafka, f"{kafka.client_id}-{config.application_id}")
    exactly_once = config.processing_guarantee == "exactly-once"
    out.update(
        {
            "application.id": config.application_id,
            "group.id": config.application_id,
            "processing.guarantee": "exactly_once_v2" if exactly_once else "at_least_once",
            "state.dir": str(state_dir),
            "commit.interval.ms": str(config.commit_interval_ms),
            "auto.offset.reset": config.auto_offset_reset,
        }
    )
    out.update(config.properties)
    return out
