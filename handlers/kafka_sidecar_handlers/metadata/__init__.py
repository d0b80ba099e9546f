"""The REST Proxy v2 metadata routes: ``GET /`` (and ``POST /``), ``/brokers``, ``/topics``,
``/topics/{topic}``, ``/topics/{topic}/partitions``, ``/topics/{topic}/partitions/{partition}`` and
``.../{partition}/offsets``, with Confluent's shapes and codes (40401 unknown topic, 40402 unknown partition).

Routes are recognised by their shape (the last one or two segments), so a deployment may mount them
under a prefix. Read-only; the cluster view (:mod:`._cluster`) is shared with the v3 handler.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from kafka_sidecar.plugin import (
    V2_MEDIA_TYPE,
    Exchange,
    HandlerSpec,
    MethodNotAllowed,
    PartitionInfo,
    Reply,
    Resources,
    ValidationFailed,
    cluster_view,
    hookimpl,
)
from kafka_sidecar_handlers.metadata._openapi import describe_metadata, operation


@dataclass(frozen=True, slots=True)
class MetadataConfig:
    include_internal: bool = field(
        default=False, metadata={"doc": "List internal topics (__consumer_offsets) in GET /topics."}
    )


def partition_body(partition: PartitionInfo) -> dict[str, object]:
    """Confluent's v2 partition: leader and replicas with their leader/in-sync flags."""
    return {
        "partition": partition.partition,
        "leader": partition.leader,
        "replicas": [
            {"broker": broker, "leader": broker == partition.leader, "in_sync": broker in partition.isr}
            for broker in partition.replicas
        ],
    }


def reply_media_type(accept: str) -> str:
    """``application/json`` only for a caller asking for just that; otherwise the v2 type (Confluent's default)."""
    wanted = {part.split(";", 1)[0].strip().lower() for part in accept.split(",") if part.strip()}
    return "application/json" if wanted == {"application/json"} else V2_MEDIA_TYPE


class MetadataHandler:
    def __init__(self, config: MetadataConfig, resources: Resources) -> None:
        self._config = config
        self._cluster = cluster_view(resources)

    async def __call__(self, exchange: Exchange) -> Reply:
        request = exchange.http()
        op = operation(request.route, request.method)
        if op is None:
            raise MethodNotAllowed(f"{request.method} {request.route} is not a metadata operation", field="method")
        body = await self._answer(op, request.path_params)
        return Reply(body=body, media_type=reply_media_type(request.headers.get("accept", "")))

    async def _answer(self, op: str, params: Mapping[str, str]) -> object:
        cluster = self._cluster
        if op == "root":
            return {}
        if op == "brokers":
            return {"brokers": [broker.broker_id for broker in (await cluster.cluster()).brokers]}
        if op == "topics":
            return [name for name, topic in (await cluster.topics()).items()
                    if self._config.include_internal or not topic.internal]  # fmt: skip
        topic = await cluster.topic(params.get("topic", ""))
        if op == "topic":
            configs = await cluster.topic_configs(topic.name)
            return {
                "name": topic.name,
                "configs": {entry.name: entry.value for entry in configs if entry.value is not None},
                "partitions": [partition_body(p) for p in topic.partitions],
            }
        if op == "partitions":
            return [partition_body(p) for p in topic.partitions]
        raw = params.get("partition", "")
        if not raw.isdigit():
            raise ValidationFailed(f"partition must be a non-negative integer, got {raw!r}", field="partition")
        partition = topic.partition(int(raw))
        if op == "partition":
            return partition_body(partition)
        tp = [TopicPartition(topic.name, partition.partition)]
        beginning, end = await cluster.beginning_offsets(tp), await cluster.end_offsets(tp)
        return {"beginning_offset": beginning[tp[0]], "end_offset": end[tp[0]]}


@hookimpl
def kafka_sidecar_register_handlers(register: Callable[[HandlerSpec[MetadataConfig]], None]) -> None:
    register(
        HandlerSpec(
            name="metadata",
            factory=MetadataHandler,
            config_type=MetadataConfig,
            kind="terminal",
            description="REST Proxy v2 metadata: /, /brokers, /topics[/{topic}[/partitions[/{partition}[/offsets]]]].",
            describe=describe_metadata,
        )
    )
