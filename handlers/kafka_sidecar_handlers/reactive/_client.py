"""What the reactive runtime needs of a Kafka consumer client: the seam between it and an engine.

Two engines implement it (``kafka.consumer.engine``): aiokafka (``_aiokafka.py``, the default) and
librdkafka (``_rdkafka.py``, extra ``librdkafka``). Unit tests put an in-memory client behind it.
Partitions are named by aiokafka's ``TopicPartition`` (a ``(topic, partition)`` named tuple) on every
engine; fetched records arrive as :class:`ConsumedRecord` lists, one per partition, in offset order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from aiokafka import TopicPartition

from kafka_sidecar.plugin import ConsumedRecord


class RebalanceListener(Protocol):
    """Told of assignment changes. An engine calls these on the event loop and waits for them: the
    runtime drains and commits a revoked partition before the client gives it up."""

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None: ...

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None: ...


class ConsumerClient(Protocol):
    """A group member consuming ``topics`` (or ``pattern``) with manual commits."""

    engine: str
    """The engine's name, as ``kafka.consumer.engine`` spells it (shown by the control API)."""

    def subscribe(self, topics: Sequence[str], pattern: str | None, listener: RebalanceListener) -> None:
        """Before :meth:`start`: what to consume and whom to tell of rebalances."""

    async def start(self) -> None:
        """Connect and join the group; raises when the broker cannot be reached (the runtime retries)."""

    async def stop(self) -> None:
        """Leave the group and close, bounded in time; never raises for a broker that is gone."""

    async def fetch(self, timeout_ms: int) -> Mapping[TopicPartition, list[ConsumedRecord]]:
        """Records fetched since the last call (waiting up to ``timeout_ms`` for some). Rebalances are
        served only inside this call, and fetch positions move only inside it."""

    async def position(self, tp: TopicPartition) -> int | None:
        """The next offset the client will fetch from ``tp``; None while unknown or not assigned."""

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit these offsets (the next offset to read) for the group; raises when the broker refused."""

    def pause(self, tp: TopicPartition) -> None: ...

    def resume(self, tp: TopicPartition) -> None: ...

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        """The next fetch of ``tp`` starts at ``offset``; records fetched before are not returned."""

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]: ...

    async def beginning_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]: ...

    async def offsets_for_times(self, times: Mapping[TopicPartition, int]) -> dict[TopicPartition, int | None]:
        """The first offset at or after each timestamp (ms); None where no record is that new."""

    async def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset of ``tp`` on the broker; None when there is none."""
