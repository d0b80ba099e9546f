"""Snapshots of the producer and of every active-consumer instance, as JSON-ready dicts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kafka_sidecar._sidecar import Sidecar
    from kafka_sidecar_handlers.active._instance import ActiveInstance


def producer_state(sidecar: Sidecar) -> dict[str, object]:
    producer = sidecar.resources.producer
    return {
        "connected": producer.connected,
        "last_error": producer.last_error,
        "bootstrap_servers": sidecar.config.kafka.bootstrap_servers,
        "service": sidecar.config.service.id,
    }


def active_instances(sidecar: Sidecar) -> list[dict[str, object]]:
    """Every live instance of every active-consumer handler in the config."""
    from kafka_sidecar_handlers.active import ActiveConsumerHandler

    found: list[dict[str, object]] = []
    for handler_name, instance in sorted(sidecar.instances.items()):
        if isinstance(instance, ActiveConsumerHandler):
            found.extend(_instance_state(handler_name, i) for i in instance.manager.live())
    return sorted(found, key=lambda i: (str(i["group"]), str(i["name"])))


def _instance_state(handler: str, instance: ActiveInstance) -> dict[str, object]:
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
        "handler": handler,
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
