"""The Confluent REST Proxy v3 terminal: produce (one record, a stream of records, ``records:batch``) and
the read-only admin API (clusters, topics, partitions, topic configs, consumer groups, consumers, lags),
plus create and delete topic behind the admin guard (admin token, or loopback callers only).

v3 errors carry ``error_code`` = the HTTP status and ``message``, as Confluent's v3 does (plus the
RFC 9457 fields every problem has). ``docs/http-api.md`` lists every route and the differences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kafka_sidecar.plugin import (
    REQUEST_BODY_STREAM,
    ClusterView,
    Exchange,
    Forbidden,
    HandlerSpec,
    HttpRequest,
    MethodNotAllowed,
    NotFound,
    Reply,
    Resources,
    SidecarError,
    UnsupportedMediaType,
    ValidationFailed,
    authorize_admin,
    cluster_view,
    hookimpl,
)
from kafka_sidecar_handlers.v3 import _admin as bodies
from kafka_sidecar_handlers.v3._openapi import describe_v3
from kafka_sidecar_handlers.v3._records_route import RecordsRoute
from kafka_sidecar_handlers.v3._routes import ADMIN_OPERATIONS, operation, target


@dataclass(frozen=True, slots=True)
class V3Config:
    max_groups_in_flight: int = field(
        default=64, metadata={"doc": "Streamed produce: groups of records sent but not yet answered, at most."}
    )
    max_batch_entries: int = field(default=10, metadata={"doc": "Most entries in one records:batch (Confluent: 10)."})
    base_uri: str | None = field(
        default=None, metadata={"doc": "Prefix of metadata.self links; default: from the Host header."}
    )

    def __post_init__(self) -> None:
        for name in ("max_groups_in_flight", "max_batch_entries"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


class V3Handler:
    def __init__(self, config: V3Config, resources: Resources) -> None:
        self._config = config
        self._resources = resources
        self._cluster: ClusterView = cluster_view(resources)
        self._cluster_id: str | None = None
        self._records = RecordsRoute(resources, config.max_batch_entries, config.max_groups_in_flight)

    async def __call__(self, exchange: Exchange) -> Reply:
        request = exchange.http()
        op = operation(request.route, request.method)
        if op is None:
            raise MethodNotAllowed(f"{request.method} {request.route} is not a v3 operation", field="method")
        try:
            return await self._dispatch(op, exchange, request)
        except SidecarError as exc:
            exc.v2_error_code = exc.status  # Confluent v3: error_code is the HTTP status
            raise

    def streams_request_body(self, route: str, method: str) -> bool:
        """``POST .../records`` reads its body as it arrives (the streaming mode)."""
        return operation(route, method) == "produce"

    async def _dispatch(self, op: str, exchange: Exchange, request: HttpRequest) -> Reply:
        has_body = request.has_body or REQUEST_BODY_STREAM in exchange.stash
        if has_body and request.content_type not in ("", "application/json"):
            raise UnsupportedMediaType(
                f"content type {request.content_type!r} is not accepted; use application/json", field="Content-Type"
            )
        if op in ADMIN_OPERATIONS:
            if self._resources.config.server.admin_port is not None:
                raise Forbidden(
                    "topics are created and deleted on the admin port only; this one serves business routes"
                )
            authorize_admin(
                self._resources.config.server, request.client_host, request.headers.get("authorization", "")
            )
        cluster_id = await self._cluster_id_now()
        base = self._config.base_uri or f"http://{request.headers.get('host', 'localhost')}"
        path = target(request.route, request.path)
        res = bodies.Resources(f"{base.rstrip('/')}/v3/clusters", cluster_id)
        if op == "clusters":
            info = await self._cluster.cluster()
            return Reply(body=res.listing("KafkaClusterList", "", [res.cluster(info.controller_id)]))
        if path.at(0) != cluster_id:
            raise NotFound(f"cluster {path.at(0)!r} not found; this is {cluster_id!r}", field="cluster_id")
        return await self._on_cluster(op, exchange, path.at(1), path.at(2), res)

    async def _cluster_id_now(self) -> str:
        if self._cluster_id is None:
            self._cluster_id = (await self._cluster.cluster()).cluster_id
        return self._cluster_id

    async def _on_cluster(self, op: str, exchange: Exchange, name: str, third: str, res: bodies.Resources) -> Reply:
        cluster = self._cluster
        if op == "cluster":
            return Reply(body=res.cluster((await cluster.cluster()).controller_id))
        if op == "topics":
            topics = await cluster.topics()
            return Reply(body=res.listing("KafkaTopicList", "/topics", [res.topic(t) for t in topics.values()]))
        if op == "create_topic":
            return await self._create_topic(exchange, res)
        if op == "delete_topic":
            await cluster.delete_topic(name)
            return Reply(status=204)
        if op in ("topic", "partitions", "partition", "topic_configs"):
            topic = await cluster.topic(name)
            if op == "topic":
                return Reply(body=res.topic(topic))
            if op == "partitions":
                items = [res.partition(topic.name, p) for p in topic.partitions]
                return Reply(body=res.listing("KafkaPartitionList", f"/topics/{name}/partitions", items))
            if op == "partition":
                if not third.isdigit():
                    raise ValidationFailed(
                        f"partition_id must be a non-negative integer, got {third!r}", field="partition_id"
                    )
                return Reply(body=res.partition(topic.name, topic.partition(int(third))))
            configs = [res.topic_config(topic.name, e) for e in await cluster.topic_configs(topic.name)]
            return Reply(body=res.listing("KafkaTopicConfigList", f"/topics/{name}/configs", configs))
        if op == "produce":
            return await self._records.stream(exchange, name, res.cluster_id)
        if op == "produce_batch":
            return await self._records.batch(exchange, name, res.cluster_id)
        if op == "groups":
            groups = [res.group(await cluster.group(g)) for g in await cluster.groups()]
            return Reply(body=res.listing("KafkaConsumerGroupList", "/consumer-groups", groups))
        if op == "group":
            return Reply(body=res.group(await cluster.group(name)))
        if op == "consumers":
            consumers = res.consumers(await cluster.group(name))
            return Reply(body=res.listing("KafkaConsumerList", f"/consumer-groups/{name}/consumers", consumers))
        group, lags = await bodies.group_lags(cluster, name)
        if op == "lags":
            entries = res.lags(group, lags)
            return Reply(body=res.listing("KafkaConsumerLagList", f"/consumer-groups/{name}/lags", entries))
        return Reply(body=res.lag_summary(group, lags))

    async def _create_topic(self, exchange: Exchange, res: bodies.Resources) -> Reply:
        body = exchange.json_body()
        if not isinstance(body, dict):
            raise ValidationFailed("request body must be a JSON object with 'topic_name'", field="body")
        name = body.get("topic_name")
        if not isinstance(name, str) or not name:
            raise ValidationFailed("'topic_name' is required", field="topic_name")
        partitions = body.get("partitions_count", 1)
        replication = body.get("replication_factor", 1)
        for key, value in (("partitions_count", partitions), ("replication_factor", replication)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValidationFailed(f"must be a positive integer, got {value!r}", field=key)
        configs: dict[str, str] = {}
        for index, entry in enumerate(body.get("configs") or []):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise ValidationFailed("must be {name, value}", field=f"configs[{index}]")
            configs[entry["name"]] = str(entry.get("value"))
        await self._cluster.create_topic(name, partitions, replication, configs)
        return Reply(status=201, body=res.topic(await self._cluster.created_topic(name)))


@hookimpl
def kafka_sidecar_register_handlers(register: Callable[[HandlerSpec[V3Config]], None]) -> None:
    register(
        HandlerSpec(
            name="rest-v3",
            factory=V3Handler,
            config_type=V3Config,
            kind="terminal",
            description="REST Proxy v3: produce (streaming, records:batch) and read-only admin; topic create/delete.",
            describe=describe_v3,
        )
    )
