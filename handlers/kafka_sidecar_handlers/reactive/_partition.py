"""One assigned partition: a bounded buffer, one lane (or several in key mode), and its offset tracker.

A lane delivers one batch at a time, in offset order, so per-partition order holds in ``partition``
mode; in ``key`` mode records are spread over lanes by key hash, so each key stays in order while keys
progress in parallel. Lanes take a batch only when the partition is not held (operator pause, a seek
being applied, or shutdown); a batch already started always runs to its end unless cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from kafka_sidecar.plugin import ConsumedRecord
from kafka_sidecar_handlers.reactive._delivery import DeliveryStats, OnFinal
from kafka_sidecar_handlers.reactive._offsets import OffsetTracker

log = logging.getLogger(__name__)

BatchRunner = Callable[[Sequence[ConsumedRecord], OnFinal, DeliveryStats], Awaitable[None]]
_OFFSET, _KEY, _VALUE = attrgetter("offset"), attrgetter("key"), attrgetter("value")


@dataclass(frozen=True, slots=True)
class BatchLimits:
    max_records: int
    max_bytes: int
    max_wait_s: float


@dataclass(slots=True)
class _Lane:
    queue: list[ConsumedRecord] = field(default_factory=list)
    """Records not yet taken, in order (a list: a batch leaves it by one slice deletion)."""
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    busy: bool = False


def record_size(record: ConsumedRecord) -> int:
    return len(record.key or b"") + len(record.value or b"")


def batch_size(records: Sequence[ConsumedRecord]) -> int:
    """The sum of :func:`record_size` over ``records``, in C (``filter`` leaves out the Nones)."""
    return sum(map(len, filter(None, map(_KEY, records)))) + sum(map(len, filter(None, map(_VALUE, records))))


class PartitionWorker:
    """Delivery state of one topic-partition while it is assigned to this sidecar."""

    def __init__(
        self,
        topic: str,
        partition: int,
        lanes: int,
        limits: BatchLimits,
        runner: BatchRunner,
        on_change: Callable[[PartitionWorker], None],
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.tracker = OffsetTracker()
        self.stats = DeliveryStats()
        self.buffered = 0
        self.admin_paused = False
        self.held = False
        self.last_committed: int | None = None
        self.fetched_to: int | None = None
        self._limits = limits
        self._runner = runner
        self._on_change = on_change
        self._lanes = [_Lane() for _ in range(lanes)]
        self._idle = asyncio.Event()
        self._idle.set()
        self._busy = 0
        self._change_pending = False

    def start(self) -> None:
        for index, lane in enumerate(self._lanes):
            lane.task = asyncio.create_task(
                self._run_lane(lane), name=f"reactive-{self.topic}-{self.partition}-{index}"
            )

    @property
    def in_flight_batches(self) -> int:
        return self._busy

    @property
    def runnable(self) -> bool:
        return not (self.admin_paused or self.held)

    def offer(self, records: Sequence[ConsumedRecord]) -> None:
        """Fetched records, in offset order: each is now owed an outcome before its offset is committed."""
        single = self._lanes[0] if len(self._lanes) == 1 else None
        if single is not None and records and self.tracker.register_run(list(map(_OFFSET, records))):
            single.queue.extend(records)  # the common case: one lane, a run beyond every offset seen
            self.buffered += len(records)
            self.fetched_to = records[-1].offset + 1
            single.wake.set()
            return
        register = self.tracker.register
        woken: set[int] = set()
        for record in records:
            if not register(record.offset):
                log.debug("%s-%d: offset %d fetched twice; ignored", self.topic, self.partition, record.offset)
                continue
            if single is not None:
                single.queue.append(record)
            else:
                index = self._lane_of(record)
                self._lanes[index].queue.append(record)
                woken.add(index)
            self.buffered += 1
            self.fetched_to = record.offset + 1
        if single is not None:
            single.wake.set()
        for index in woken:
            self._lanes[index].wake.set()

    def observe_position(self, position: int) -> None:
        """The consumer's fetch position (it may have skipped offsets that hold no record of ours)."""
        before = self.tracker.committable()
        self.tracker.observe_position(position)
        if self.fetched_to is None or position > self.fetched_to:
            self.fetched_to = position
        if self.tracker.committable() != before:
            self._on_change(self)

    def _lane_of(self, record: ConsumedRecord) -> int:
        if len(self._lanes) == 1 or record.key is None:
            return 0
        return zlib.crc32(record.key) % len(self._lanes)

    def wake(self) -> None:
        for lane in self._lanes:
            lane.wake.set()

    async def quiesce(self, timeout: float | None = None) -> bool:
        """Hold the partition and wait until no batch is in flight; False if ``timeout`` passed first."""
        self.held = True
        self._on_change(self)
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def release(self) -> None:
        self.held = False
        self._on_change(self)
        self.wake()

    def clear_buffer(self, restart_at: int | None) -> None:
        """Drop fetched records no lane has started (after a seek); nothing of theirs is committed."""
        for lane in self._lanes:
            lane.queue.clear()
        self.buffered = 0
        self.tracker.reset(restart_at)
        self.fetched_to = restart_at

    async def close(self) -> None:
        """Cancel the lanes (a batch still running is abandoned; its records stay uncommitted)."""
        tasks = [lane.task for lane in self._lanes if lane.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _finish(self, records: Sequence[ConsumedRecord], status: str) -> None:
        self.tracker.finish_run(list(map(_OFFSET, records)))
        if not self._change_pending:  # one notification per burst of finished records
            self._change_pending = True
            asyncio.get_running_loop().call_soon(self._notify)

    def _notify(self) -> None:
        self._change_pending = False
        self._on_change(self)

    async def _run_lane(self, lane: _Lane) -> None:
        while True:
            while not (lane.queue and self.runnable):
                lane.wake.clear()
                await lane.wake.wait()
            await self._fill(lane)
            if not (lane.queue and self.runnable):
                continue
            batch = self._take(lane)
            self.buffered -= len(batch)
            self._busy += 1
            self._idle.clear()
            self._on_change(self)
            try:
                await self._runner(batch, self._finish, self.stats)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Never reached in normal operation (delivery catches everything); put the records back.
                log.exception("partition %s-%d: batch delivery crashed; it will be retried", self.topic, self.partition)
                lane.queue[0:0] = batch
                self.buffered += len(batch)
                await asyncio.sleep(1.0)
            finally:
                self._busy -= 1
                if self._busy == 0:
                    self._idle.set()
                self._on_change(self)

    async def _fill(self, lane: _Lane) -> None:
        """Give a short batch up to ``max_wait_s`` to fill up."""
        limits = self._limits
        deadline = time.monotonic() + limits.max_wait_s
        while len(lane.queue) < limits.max_records and self.runnable:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            lane.wake.clear()
            try:
                await asyncio.wait_for(lane.wake.wait(), remaining)
            except TimeoutError:
                return

    def _take(self, lane: _Lane) -> list[ConsumedRecord]:
        queue, limits = lane.queue, self._limits
        batch = queue[: limits.max_records]
        if batch_size(batch) > limits.max_bytes:  # rare: cut where the bytes limit is reached
            size, count = 0, 0
            for record in batch:
                size += record_size(record)
                if count and size > limits.max_bytes:
                    break
                count += 1
            batch = batch[:count]
        del queue[: len(batch)]
        return batch
