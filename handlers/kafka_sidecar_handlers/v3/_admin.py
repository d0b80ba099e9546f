"""Confluent REST Proxy v3 admin resources as JSON: clusters, topics, partitions, configs, groups, lags.

Each resource carries ``kind``, ``metadata.self`` (and ``resource_name``, a CRN) and its fields, as
Confluent's; relationships are ``{"related": url}``. Lags are computed from the group's committed
offsets and the partitions' end offsets, both read from the broker at request time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aiokafka import TopicPartition

from kafka_sidecar.plugin import ClusterView, ConfigEntry, GroupInfo, GroupMember, PartitionInfo, TopicInfo


class Resources:
    """Builds resource bodies under ``base`` (``http://host/v3/clusters``) for one cluster id."""

    def __init__(self, base: str, cluster_id: str) -> None:
        self.base = base.rstrip("/")
        self.cluster_id = cluster_id
        self.cluster_url = f"{self.base}/{cluster_id}"

    def _meta(self, path: str, crn: str) -> dict[str, object]:
        return {"self": f"{self.cluster_url}{path}", "resource_name": f"crn:///kafka={self.cluster_id}{crn}"}

    def _related(self, path: str) -> dict[str, str]:
        return {"related": f"{self.cluster_url}{path}"}

    def listing(self, kind: str, path: str, data: Sequence[object]) -> dict[str, object]:
        return {"kind": kind, "metadata": {"self": f"{self.cluster_url}{path}", "next": None}, "data": list(data)}

    def cluster(self, controller_id: int) -> dict[str, object]:
        return {
            "kind": "KafkaCluster",
            "metadata": self._meta("", ""),
            "cluster_id": self.cluster_id,
            "controller": self._related(f"/brokers/{controller_id}"),
            "acls": self._related("/acls"),
            "brokers": self._related("/brokers"),
            "broker_configs": self._related("/broker-configs"),
            "consumer_groups": self._related("/consumer-groups"),
            "topics": self._related("/topics"),
            "partition_reassignments": self._related("/topics/-/partitions/-/reassignment"),
        }

    def topic(self, topic: TopicInfo) -> dict[str, object]:
        path = f"/topics/{topic.name}"
        replication = len(topic.partitions[0].replicas) if topic.partitions else 0
        return {
            "kind": "KafkaTopic",
            "metadata": self._meta(path, f"/topic={topic.name}"),
            "cluster_id": self.cluster_id,
            "topic_name": topic.name,
            "is_internal": topic.internal,
            "replication_factor": replication,
            "partitions_count": len(topic.partitions),
            "partitions": self._related(f"{path}/partitions"),
            "configs": self._related(f"{path}/configs"),
            "partition_reassignments": self._related(f"{path}/partitions/-/reassignment"),
        }

    def partition(self, topic: str, partition: PartitionInfo) -> dict[str, object]:
        path = f"/topics/{topic}/partitions/{partition.partition}"
        return {
            "kind": "KafkaPartition",
            "metadata": self._meta(path, f"/topic={topic}/partition={partition.partition}"),
            "cluster_id": self.cluster_id,
            "topic_name": topic,
            "partition_id": partition.partition,
            "leader": self._related(f"{path}/replicas/{partition.leader}"),
            "replicas": self._related(f"{path}/replicas"),
            "reassignment": self._related(f"{path}/reassignment"),
        }

    def topic_config(self, topic: str, entry: ConfigEntry) -> dict[str, object]:
        return {
            "kind": "KafkaTopicConfig",
            "metadata": self._meta(f"/topics/{topic}/configs/{entry.name}", f"/topic={topic}/config={entry.name}"),
            "cluster_id": self.cluster_id,
            "topic_name": topic,
            "name": entry.name,
            "value": entry.value,
            "is_default": entry.is_default,
            "is_read_only": entry.read_only,
            "is_sensitive": entry.sensitive,
            "source": entry.source,
            "synonyms": [],
        }

    def group(self, group: GroupInfo) -> dict[str, object]:
        path = f"/consumer-groups/{group.group_id}"
        return {
            "kind": "KafkaConsumerGroup",
            "metadata": self._meta(path, f"/consumer-group={group.group_id}"),
            "cluster_id": self.cluster_id,
            "consumer_group_id": group.group_id,
            "is_simple": group.protocol_type == "",
            "partition_assignor": group.protocol,
            "state": group.state.upper()
            .replace("PREPARINGREBALANCE", "PREPARING_REBALANCE")
            .replace("COMPLETINGREBALANCE", "COMPLETING_REBALANCE"),
            "consumers": self._related(f"{path}/consumers"),
            "lag_summary": self._related(f"{path}/lag-summary"),
        }

    def consumers(self, group: GroupInfo) -> list[dict[str, object]]:
        path = f"/consumer-groups/{group.group_id}/consumers"
        return [
            {
                "kind": "KafkaConsumer",
                "metadata": self._meta(
                    f"{path}/{m.member_id}", f"/consumer-group={group.group_id}/consumer={m.member_id}"
                ),
                "cluster_id": self.cluster_id,
                "consumer_group_id": group.group_id,
                "consumer_id": m.member_id,
                "instance_id": m.instance_id,
                "client_id": m.client_id,
                "assignments": self._related(f"{path}/{m.member_id}/assignments"),
            }
            for m in group.members
        ]

    def lags(self, group: GroupInfo, lags: Mapping[TopicPartition, tuple[int, int]]) -> list[dict[str, object]]:
        group_id = group.group_id
        path = f"/consumer-groups/{group_id}/lags"
        owners = owners_of(group)
        return [
            {
                "kind": "KafkaConsumerLag",
                "metadata": self._meta(
                    f"{path}/{tp.topic}/partitions/{tp.partition}",
                    f"/consumer-group={group_id}/lag={tp.topic}/partition={tp.partition}",
                ),
                "cluster_id": self.cluster_id,
                "consumer_group_id": group_id,
                "topic_name": tp.topic,
                "partition_id": tp.partition,
                "current_offset": current,
                "log_end_offset": end,
                "lag": max(end - current, 0),
                **_owner_fields(owners.get(tp)),
            }
            for tp, (current, end) in sorted(lags.items())
        ]

    def lag_summary(self, group: GroupInfo, lags: Mapping[TopicPartition, tuple[int, int]]) -> dict[str, object]:
        group_id = group.group_id
        per = {tp: max(end - current, 0) for tp, (current, end) in lags.items()}
        worst = max(sorted(per), key=lambda tp: per[tp], default=None)
        owner = _owner_fields(owners_of(group).get(worst) if worst else None)
        return {
            "kind": "KafkaConsumerGroupLagSummary",
            "metadata": self._meta(
                f"/consumer-groups/{group_id}/lag-summary", f"/consumer-group={group_id}/lag-summary"
            ),
            "cluster_id": self.cluster_id,
            "consumer_group_id": group_id,
            "max_lag_consumer_id": owner["consumer_id"],
            "max_lag_instance_id": owner["instance_id"],
            "max_lag_client_id": owner["client_id"],
            "max_lag_topic_name": worst.topic if worst else "",
            "max_lag_partition_id": worst.partition if worst else 0,
            "max_lag": per[worst] if worst else 0,
            "total_lag": sum(per.values()),
            "max_lag_partition": self._related(f"/topics/{worst.topic}/partitions/{worst.partition}")
            if worst
            else None,
        }


def owners_of(group: GroupInfo) -> dict[TopicPartition, GroupMember]:
    return {tp: member for member in group.members for tp in member.assignment}


def _owner_fields(member: GroupMember | None) -> dict[str, object]:
    if member is None:
        return {"consumer_id": "", "instance_id": None, "client_id": ""}
    return {"consumer_id": member.member_id, "instance_id": member.instance_id, "client_id": member.client_id}


async def group_lags(cluster: ClusterView, group_id: str) -> tuple[GroupInfo, dict[TopicPartition, tuple[int, int]]]:
    """The group, and (committed offset, log end offset) of every partition it has committed."""
    group = await cluster.group(group_id)  # 404 for an unknown group
    committed = await cluster.committed(group_id)
    ends = await cluster.end_offsets(sorted(committed))
    return group, {tp: (offset, ends.get(tp, offset)) for tp, offset in committed.items()}
