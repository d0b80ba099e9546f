"""Snapshots of the producer and of every active-consumer instance, as JSON-ready dicts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kafka_sidecar_plugins.console._sources import active_handlers

if TYPE_CHECKING:
    from kafka_sidecar.plugin import SidecarView


def producer_state(sidecar: SidecarView) -> dict[str, object]:
    producer = sidecar.resources.producer
    return {
        "connected": producer.connected,
        "last_error": producer.last_error,
        "bootstrap_servers": sidecar.config.kafka.bootstrap_servers,
        "service": sidecar.config.service.id,
    }


def active_instances(sidecar: SidecarView) -> list[dict[str, object]]:
    """Every live instance of every active-consumer handler in the config."""
    found = [_instance_state(i) for handler in active_handlers(sidecar) for i in handler.manager.live()]
    return sorted(found, key=lambda i: (str(i["group"]), str(i["name"])))


def _instance_state(instance: Any) -> dict[str, object]:
    """An ``ActiveInstance`` of the active-consumer handler (read through its attributes)."""
    consumer: Any = instance.consumer
    partitions: list[dict[str, object]] = []
    for tp in sorted(instance.assigned()):
        end = consumer.highwater(tp)
        position = instance.delivered.get(tp)
        partitions.append(
            {
                "topic": tp.topic,
                "partition": tp.partition,
                "delivered_to": position,
                "end_offset": end,
                "lag": end - position if end is not None and position is not None else None,
            }
        )
    return {
        "group": instance.key.group,
        "name": instance.key.name,
        "key_format": instance.settings.key_format,
        "value_format": instance.settings.value_format,
        "auto_commit": instance.settings.auto_commit_enable,
        "subscription": instance.subscription(),
        "buffered": len(instance.buffer),
        "idle_s": round(instance.idle_for(), 1),
        "partitions": partitions,
    }
