"""Operator requests on a running reactive consumer: which partitions, and where a seek goes.

The consumer applies seeks between batches (its fetch loop holds the partition, lets the in-flight
batch finish, drops what was fetched but not started, seeks and commits the new position).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kafka_sidecar.plugin import ValidationFailed

SeekKind = Literal["offset", "timestamp", "beginning", "end"]


@dataclass(frozen=True, slots=True)
class PartitionRef:
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class SeekTarget:
    kind: SeekKind
    value: int | None = None


@dataclass(slots=True)
class SeekRequest:
    partitions: tuple[PartitionRef, ...] | None
    target: SeekTarget
    done: asyncio.Future[dict[PartitionRef, int]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def parse_partitions(body: Mapping[str, Any]) -> tuple[PartitionRef, ...] | None:
    """``{"partitions": [{"topic": "t", "partition": 0}, ...]}``; absent means every assigned partition."""
    raw = body.get("partitions")
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw:
        raise ValidationFailed("must be a non-empty list of {topic, partition}", field="partitions")
    refs: list[PartitionRef] = []
    for index, item in enumerate(raw):
        where = f"partitions[{index}]"
        if not isinstance(item, dict):
            raise ValidationFailed("must be an object {topic, partition}", field=where)
        topic, partition = item.get("topic"), item.get("partition")
        if not isinstance(topic, str) or not topic:
            raise ValidationFailed("must be a topic name", field=f"{where}.topic")
        if not isinstance(partition, int) or isinstance(partition, bool) or partition < 0:
            raise ValidationFailed("must be a non-negative integer", field=f"{where}.partition")
        refs.append(PartitionRef(topic, partition))
    return tuple(refs)


def parse_seek(body: Mapping[str, Any]) -> SeekTarget:
    """Exactly one of ``offset``, ``timestamp`` (epoch ms) or ``position`` (beginning|end)."""
    given = [name for name in ("offset", "timestamp", "position") if body.get(name) is not None]
    if len(given) != 1:
        raise ValidationFailed("give exactly one of offset, timestamp or position", field="offset")
    name = given[0]
    value = body[name]
    if name == "position":
        if value not in ("beginning", "end"):
            raise ValidationFailed("must be 'beginning' or 'end'", field="position")
        return SeekTarget(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationFailed("must be a non-negative integer", field=name)
    return SeekTarget("offset" if name == "offset" else "timestamp", value)


def select(
    assigned: Iterable[PartitionRef], wanted: Sequence[PartitionRef] | None, field_name: str = "partitions"
) -> list[PartitionRef]:
    """The assigned partitions a request names; naming one not assigned here is a 422."""
    current = set(assigned)
    if wanted is None:
        return sorted(current, key=lambda r: (r.topic, r.partition))
    for index, ref in enumerate(wanted):
        if ref not in current:
            raise ValidationFailed(
                f"{ref.topic}-{ref.partition} is not assigned to this sidecar", field=f"{field_name}[{index}]"
            )
    return list(dict.fromkeys(wanted))
