"""Per-partition lag and paused state of one reactive consumer, recorded in the sidecar's metrics registry.

Only built when metrics are exported (``resources.metrics.enabled``). The
cost is one task per consumer: every ``lag_interval_ms`` it asks the broker for the end offsets of the
assigned partitions (one ListOffsets round trip for all of them) and sets
``kafka_sidecar_consumer_lag = end offset - committed offset``, the figure the broker's group tools
show. Nothing is done per record. Paused state is set at once on pause/resume, and every tick.
Revoked partitions lose their series as soon as the rebalance drains them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from aiokafka import TopicPartition

from kafka_sidecar.plugin import MetricsRegistry
from kafka_sidecar_handlers.reactive._partition import PartitionWorker
from kafka_sidecar_handlers.reactive._runtime import ConsumerRuntime

log = logging.getLogger(__name__)


class ConsumerGauges:
    """The consumer-owned series: lag, consumer paused, partition paused."""

    def __init__(self, registry: MetricsRegistry) -> None:
        self.lag = registry.gauge(
            "kafka_sidecar_consumer_lag", "Records behind the partition end.", ("consumer", "topic", "partition")
        )
        self.paused = registry.gauge("kafka_sidecar_consumer_paused", "1 while a consumer is paused.", ("consumer",))
        self.partition_paused = registry.gauge(
            "kafka_sidecar_consumer_partition_paused",
            "1 while an operator has paused the partition, else 0.",
            ("consumer", "topic", "partition"),
        )

    def report_lag(self, consumer: str, topic: str, partition: int, lag: int) -> None:
        self.lag.set(consumer, topic, str(partition), value=lag)

    def report_paused(self, consumer: str, paused: bool) -> None:
        self.paused.set(consumer, value=1 if paused else 0)

    def report_partition_paused(self, consumer: str, topic: str, partition: int, paused: bool) -> None:
        self.partition_paused.set(consumer, topic, str(partition), value=1 if paused else 0)

    def forget_partition(self, consumer: str, topic: str, partition: int) -> None:
        """The partition is no longer assigned to ``consumer``: drop its lag and paused series."""
        self.lag.remove(consumer, topic, str(partition))
        self.partition_paused.remove(consumer, topic, str(partition))


class LagReporter:
    """Keeps the registry's lag/paused series of one consumer in step with its assignment."""

    def __init__(self, registry: MetricsRegistry, consumer: str, runtime: ConsumerRuntime, interval_s: float) -> None:
        self._registry = ConsumerGauges(registry)
        self._consumer = consumer
        self._runtime = runtime
        self._interval = interval_s
        self._reported: set[TopicPartition] = set()
        self._broker_committed: dict[TopicPartition, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"reactive-{self._consumer}-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """The partitions were revoked (or the consumer stopped): their series disappear."""
        for tp in partitions:
            self._registry.forget_partition(self._consumer, tp.topic, tp.partition)
            self._reported.discard(tp)
            self._broker_committed.pop(tp, None)

    def report_paused(self) -> None:
        runtime = self._runtime
        self._registry.report_paused(self._consumer, runtime.paused_all)
        for tp, worker in list(runtime.workers.items()):
            self._registry.report_partition_paused(self._consumer, tp.topic, tp.partition, worker.admin_paused)
            self._reported.add(tp)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker may be away; the next tick tries again
                if not self._failing:
                    log.warning("consumer %s: lag not reported: %s: %s", self._consumer, type(exc).__name__, exc)
                self._failing = True
            else:
                self._failing = False

    async def tick(self) -> None:
        """Report lag and paused state of every assigned partition; drop series of partitions gone."""
        runtime = self._runtime
        consumer = runtime.consumer
        self.forget(self._reported - set(runtime.workers))
        if consumer is None or not runtime.workers:
            self.report_paused()
            return
        # Committed offsets first, end offsets second: the end only grows, so lag never goes negative.
        committed: dict[TopicPartition, int] = {}
        for tp, worker in list(runtime.workers.items()):
            offset = await self._committed(tp, worker)
            if offset is not None:
                committed[tp] = offset
        ends: dict[TopicPartition, int] = await consumer.end_offsets(list(committed)) if committed else {}
        for tp, end in ends.items():
            if tp in runtime.workers and tp in committed:  # still assigned after the awaits
                self._registry.report_lag(self._consumer, tp.topic, tp.partition, max(0, end - committed[tp]))
                self._reported.add(tp)
        self.report_paused()

    async def _committed(self, tp: TopicPartition, worker: PartitionWorker) -> int | None:
        """What this consumer committed; else the group's offset from before the assignment; else the
        first offset fetched (a new group, nothing committed yet); else unknown (no lag series)."""
        if worker.last_committed is not None:
            return worker.last_committed
        known = self._broker_committed.get(tp)
        if known is None and self._runtime.consumer is not None:
            found = await self._runtime.consumer.committed(tp)
            if isinstance(found, int) and found >= 0:
                known = self._broker_committed[tp] = found
        if known is not None:
            return known
        return worker.tracker.lowest_unfinished
