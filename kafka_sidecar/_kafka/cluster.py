"""One read-mostly view of the cluster (brokers, topics, configs, groups, offsets), a core service.

Used by the REST Proxy v2 metadata and v3 handlers (and open to any plugin through ``kafka_sidecar.plugin``).

An aiokafka admin client and a group-less consumer (for end offsets), both started on first use and
closed when the sidecar stops. Topic metadata is always read for every topic at once, so a lookup
never auto-creates a topic. Unknown topics and partitions are 404s carrying Confluent's v2 codes
(40401, 40402); a broker that does not answer is a 503.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka import errors as kafka_errors
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from kafka_sidecar._config.model import KafkaConfig
from kafka_sidecar._errors import Conflict, KafkaRejected, KafkaUnavailable, NotFound, SidecarError, ValidationFailed
from kafka_sidecar._kafka.options import admin_kwargs, consumer_kwargs
from kafka_sidecar._kafka.producer import describe
from kafka_sidecar._stash import StashKey

if TYPE_CHECKING:
    from kafka_sidecar._resources import Resources

V2_TOPIC_NOT_FOUND = 40401
V2_PARTITION_NOT_FOUND = 40402
V2_GROUP_NOT_FOUND = 40405
CONFIG_SOURCES = {
    1: "DYNAMIC_TOPIC_CONFIG", 2: "DYNAMIC_BROKER_CONFIG", 3: "DYNAMIC_DEFAULT_BROKER_CONFIG",
    4: "STATIC_BROKER_CONFIG", 5: "DEFAULT_CONFIG", 6: "DYNAMIC_BROKER_LOGGER_CONFIG",
}  # fmt: skip
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Broker:
    broker_id: int
    host: str
    port: int
    rack: str | None


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    cluster_id: str
    controller_id: int
    brokers: tuple[Broker, ...]


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    internal: bool
    partitions: tuple[PartitionInfo, ...]

    def partition(self, number: int) -> PartitionInfo:
        for found in self.partitions:
            if found.partition == number:
                return found
        raise NotFound(
            f"partition {number} of topic {self.name!r} does not exist (it has {len(self.partitions)})",
            field="partition",
            v2_error_code=V2_PARTITION_NOT_FOUND,
        )


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    name: str
    value: str | None
    read_only: bool
    source: str
    sensitive: bool

    @property
    def is_default(self) -> bool:
        return self.source == "DEFAULT_CONFIG"


@dataclass(frozen=True, slots=True)
class GroupMember:
    member_id: str
    client_id: str
    host: str
    instance_id: str | None
    assignment: tuple[TopicPartition, ...] = ()
    """Partitions the group gave this member (decoded for consumer-protocol groups; else empty)."""


@dataclass(frozen=True, slots=True)
class GroupInfo:
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    members: tuple[GroupMember, ...]


def topic_not_found(name: str) -> NotFound:
    return NotFound(f"topic {name!r} does not exist", field="topic", v2_error_code=V2_TOPIC_NOT_FOUND)


def _failure(action: str, exc: BaseException) -> SidecarError:
    if isinstance(exc, SidecarError):
        return exc
    if getattr(exc, "retriable", False) or isinstance(exc, TimeoutError | kafka_errors.KafkaConnectionError):
        return KafkaUnavailable(f"{action}: {describe(exc)}")
    return KafkaRejected(f"{action}: {describe(exc)}")


class ClusterView:
    """Lazily connected admin client + offsets consumer; safe to share between handlers."""

    def __init__(self, kafka: KafkaConfig) -> None:
        self._kafka = kafka
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()
        self._timeout_ms = max(kafka.connect_timeout_ms, 1000)

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        async with self._lock:
            if self._admin is None or self._offsets is None:
                admin = AIOKafkaAdminClient(**admin_kwargs(self._kafka, "admin"), request_timeout_ms=self._timeout_ms)
                offsets = AIOKafkaConsumer(**consumer_kwargs(self._kafka, "offsets"), group_id=None)
                try:
                    await asyncio.wait_for(admin.start(), self._timeout_ms / 1000)
                    await asyncio.wait_for(offsets.start(), self._timeout_ms / 1000)
                except BaseException as exc:
                    await _close_quietly(admin.close, offsets.stop)
                    raise _failure("connecting to Kafka failed", exc) from exc
                self._admin, self._offsets = admin, offsets
            return self._admin, self._offsets

    async def close(self) -> None:
        admin, offsets, self._admin, self._offsets = self._admin, self._offsets, None, None
        if admin is not None and offsets is not None:
            await _close_quietly(admin.close, offsets.stop)

    async def _call(self, action: str, call: Callable[[AIOKafkaAdminClient], Awaitable[T]]) -> T:
        admin, _ = await self._clients()
        try:
            return await asyncio.wait_for(call(admin), self._timeout_ms / 1000)
        except Exception as exc:
            raise _failure(action, exc) from exc

    async def cluster(self) -> ClusterInfo:
        found: Mapping[str, Any] = await self._call("describing the cluster failed", lambda a: a.describe_cluster())
        brokers = tuple(
            Broker(b["node_id"], b["host"], b["port"], b.get("rack")) for b in sorted(found["brokers"], key=_node)
        )
        return ClusterInfo(str(found.get("cluster_id") or ""), int(found.get("controller_id", -1)), brokers)

    async def topics(self) -> dict[str, TopicInfo]:
        """Every topic (internal ones too, marked), by name, in name order."""
        found: Sequence[Mapping[str, Any]] = await self._call("listing topics failed", lambda a: a.describe_topics())
        out: dict[str, TopicInfo] = {}
        for topic in sorted(found, key=lambda t: str(t["topic"])):
            if topic.get("error_code"):
                continue
            partitions = tuple(
                PartitionInfo(p["partition"], p["leader"], tuple(p["replicas"]), tuple(p["isr"]))
                for p in sorted(topic["partitions"], key=lambda p: int(p["partition"]))
            )
            out[topic["topic"]] = TopicInfo(topic["topic"], bool(topic.get("is_internal")), partitions)
        return out

    async def topic(self, name: str) -> TopicInfo:
        found = (await self.topics()).get(name)
        if found is None:
            raise topic_not_found(name)
        return found

    async def topic_configs(self, name: str) -> list[ConfigEntry]:
        await self.topic(name)
        resource = ConfigResource(ConfigResourceType.TOPIC, name)
        responses = await self._call("describing topic configs failed", lambda a: a.describe_configs([resource]))
        entries: list[ConfigEntry] = []
        for response in responses:
            for item in response.to_object()["resources"]:
                if item["error_code"]:
                    raise KafkaRejected(f"describing configs of {name!r} failed: {item['error_message']}")
                for entry in item["config_entries"]:
                    source = CONFIG_SOURCES.get(entry.get("config_source", 5), "UNKNOWN")
                    sensitive = bool(entry["is_sensitive"])
                    entries.append(
                        ConfigEntry(
                            entry["config_names"], None if sensitive else entry["config_value"],
                            bool(entry["read_only"]), source, sensitive,
                        )
                    )  # fmt: skip
        return sorted(entries, key=lambda e: e.name)

    async def groups(self) -> list[str]:
        found = await self._call("listing consumer groups failed", lambda a: a.list_consumer_groups())
        return sorted({str(group[0]) for group in found})

    async def group(self, group_id: str) -> GroupInfo:
        responses = await self._call(
            "describing the consumer group failed", lambda a: a.describe_consumer_groups([group_id])
        )
        for response in responses:
            for group in response.to_object()["groups"]:
                if group["group"] != group_id:
                    continue
                if group["error_code"] or group["state"] == "Dead":
                    break
                members = tuple(_member(m, group["protocol_type"]) for m in group["members"])  # fmt: skip
                return GroupInfo(group_id, group["state"], group["protocol_type"], group["protocol"], members)
        raise NotFound(f"consumer group {group_id!r} does not exist", field="group", v2_error_code=V2_GROUP_NOT_FOUND)

    async def committed(self, group_id: str) -> dict[TopicPartition, int]:
        found = await self._call("reading committed offsets failed", lambda a: a.list_consumer_group_offsets(group_id))
        return {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}

    async def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return await self._offsets_at("end", partitions)

    async def beginning_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return await self._offsets_at("beginning", partitions)

    async def _offsets_at(self, where: str, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        if not partitions:
            return {}
        _, offsets = await self._clients()
        lookup = offsets.end_offsets if where == "end" else offsets.beginning_offsets
        try:
            found: dict[TopicPartition, int] = await asyncio.wait_for(lookup(list(partitions)), self._timeout_ms / 1000)
        except Exception as exc:
            raise _failure(f"reading {where} offsets failed", exc) from exc
        return found

    async def created_topic(self, name: str, within_s: float = 10.0) -> TopicInfo:
        """A topic just created, once the metadata shows all its partitions (it takes a moment to propagate)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while True:
            found = (await self.topics()).get(name)
            if found is not None and all(p.leader >= 0 for p in found.partitions) and found.partitions:
                return found
            if loop.time() >= deadline:
                raise KafkaUnavailable(f"topic {name!r} was created but its metadata did not appear within {within_s}s")
            await asyncio.sleep(0.1)  # metadata propagation: poll the condition until the deadline

    async def create_topic(self, name: str, partitions: int, replication: int, configs: Mapping[str, str]) -> None:
        new = NewTopic(name, partitions, replication, topic_configs=dict(configs))
        response = await self._call("creating the topic failed", lambda a: a.create_topics([new]))
        for item in response.to_object().get("topic_errors", response.to_object().get("topics", [])):
            code = item.get("error_code", 0)
            if code == kafka_errors.TopicAlreadyExistsError.errno:
                raise Conflict(f"topic {name!r} already exists", field="topic_name", v2_error_code=40002)
            if code:
                message = item.get("error_message") or kafka_errors.for_code(code).__name__
                raise ValidationFailed(f"Kafka refused to create topic {name!r}: {message}", field="topic_name")

    async def delete_topic(self, name: str) -> None:
        await self.topic(name)
        await self._call("deleting the topic failed", lambda a: a.delete_topics([name]))


def _member(member: Mapping[str, Any], protocol_type: str) -> GroupMember:
    host = str(member["client_host"]).lstrip("/")
    assignment: tuple[TopicPartition, ...] = ()
    raw = member.get("member_assignment")
    if protocol_type == "consumer" and raw:
        try:
            assignment = tuple(ConsumerProtocolMemberAssignment.decode(raw).partitions())
        except Exception:  # a client with its own assignment format: its partitions stay unknown
            assignment = ()
    return GroupMember(member["member_id"], member["client_id"], host, member.get("group_instance_id"), assignment)


def _node(broker: Mapping[str, Any]) -> int:
    return int(broker["node_id"])


async def _close_quietly(*closers: Callable[[], Awaitable[object]]) -> None:
    for close in closers:
        with contextlib.suppress(Exception):  # closing a client that may never have connected
            await close()


CLUSTER_VIEW: StashKey[ClusterView] = StashKey("cluster-view")


def build_cluster_view(resources: Resources) -> ClusterView:
    """The factory of the core's ``cluster-view`` service (declared by the core plugin, built at assembly;
    it connects only when first used, and is closed with the sidecar's resources)."""
    view = ClusterView(resources.config.kafka)
    resources.on_close(view.close)
    return view


def cluster_view(resources: Resources) -> ClusterView:
    """The sidecar's one :class:`ClusterView` (a service built at assembly, before any handler factory)."""
    return resources.services[CLUSTER_VIEW]
