"""The running part of a reactive consumer: the Kafka client, fetch loop, commits and rebalances.

* The client is an engine behind :class:`ConsumerClient` (``kafka.consumer.engine``: aiokafka or librdkafka).
* Fetching never buffers without bound: a partition with ``max_buffered_records`` fetched but not yet
  delivered is paused in the client and resumed as its lanes catch up.
* Commits happen after records become final, contiguously per partition (see ``OffsetTracker``).
* On revoke, each partition's in-flight batch may finish (``drain_timeout_ms``), then it is abandoned;
  what is final is committed before the partition goes to its new owner.
* Seeks are applied between batches by the fetch loop itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from aiokafka import TopicPartition

from kafka_sidecar.plugin import BatchFetched, Conflict, KafkaConfig
from kafka_sidecar_handlers.reactive._client import ConsumerClient
from kafka_sidecar_handlers.reactive._config import ReactiveConsumerConfig
from kafka_sidecar_handlers.reactive._control import PartitionRef, SeekRequest, select
from kafka_sidecar_handlers.reactive._partition import PartitionWorker

log = logging.getLogger(__name__)

FETCH_TIMEOUT_MS = 200
CONNECT_RETRY_MAX_S = 5.0

WorkerFactory = Callable[[str, int], PartitionWorker]
ConsumerFactory = Callable[["ConsumerRuntime"], ConsumerClient]
"""Builds the (not yet started) Kafka client of a runtime; the seam unit tests use instead of a broker."""


def engine_client(runtime: ConsumerRuntime) -> ConsumerClient:
    """The production factory: a client of the engine ``kafka.consumer.engine`` names, in the runtime's group."""
    if runtime.kafka.consumer.engine == "librdkafka":
        from kafka_sidecar_handlers.reactive._rdkafka import rdkafka_client

        return rdkafka_client(runtime.name, runtime.config, runtime.kafka)
    from kafka_sidecar_handlers.reactive._aiokafka import aiokafka_client

    return aiokafka_client(runtime.name, runtime.config, runtime.kafka)


class ConsumerRuntime:
    """Owns the Kafka client of one reactive consumer, from start to leaving the group; it is the client's
    rebalance listener."""

    def __init__(
        self,
        name: str,
        config: ReactiveConsumerConfig,
        kafka: KafkaConfig,
        make_worker: WorkerFactory,
        make_consumer: ConsumerFactory = engine_client,
    ) -> None:
        self.name = name
        self.config = config
        self.kafka = kafka
        self._make_worker = make_worker
        self._make_consumer = make_consumer
        self.workers: dict[TopicPartition, PartitionWorker] = {}
        self.consumer: ConsumerClient | None = None
        self.state = "created"
        self.paused_all = False
        self.last_error: str | None = None
        self._stopping = False
        self._commit_wanted = asyncio.Event()
        self._seeks: list[SeekRequest] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._fetch_paused: set[TopicPartition] = set()
        self.on_fetch: Callable[[BatchFetched], None] | None = None
        """Called after every poll that returned records (tracing and metrics listen through the event bus)."""
        self.on_forget: Callable[[list[TopicPartition]], None] | None = None
        """Called with partitions this consumer no longer owns (revoked, or stopping)."""

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self.state = "connecting"
        self._tasks.append(asyncio.create_task(self._main(), name=f"reactive-{self.name}-fetch"))
        self._tasks.append(asyncio.create_task(self._commit_loop(), name=f"reactive-{self.name}-commit"))

    async def stop(self) -> None:
        """Stop fetching, let in-flight batches finish (bounded), commit, leave the group (once)."""
        if self._stopping:
            return
        self._stopping = True
        self.state = "stopping"
        fetch = self._tasks[0] if self._tasks else None
        if fetch is not None:
            fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fetch
        await self._drain(list(self.workers))
        for task in self._tasks[1:]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for request in self._seeks:
            if not request.done.done():
                request.done.set_exception(Conflict(f"consumer {self.name!r} is stopping"))
        if self.consumer is not None:
            try:
                await self.consumer.stop()
            except Exception as exc:
                log.warning("consumer %s: leaving the group failed: %s", self.name, exc)
        self.state = "stopped"

    async def _main(self) -> None:
        consumer = await self._connect()
        self.state = "running"
        while not self._stopping:
            await self._apply_seeks()
            started_ns = time.time_ns()
            try:
                fetched = await consumer.fetch(FETCH_TIMEOUT_MS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = f"fetch failed: {type(exc).__name__}: {exc}"
                log.warning("consumer %s: %s", self.name, self.last_error)
                await asyncio.sleep(1.0)
                continue
            if fetched and self.on_fetch is not None:
                counts = tuple((tp.topic, tp.partition, len(m)) for tp, m in fetched.items() if m)
                self.on_fetch(BatchFetched(self.name, self.config.group, counts, started_ns, time.time_ns()))
            for tp, records in fetched.items():
                worker = self.workers.get(tp)
                if worker is None or not records:
                    continue
                worker.offer(records)
                self.sync_fetch(worker)
            await self._follow_positions(consumer)

    async def _follow_positions(self, consumer: ConsumerClient) -> None:
        """Partitions with nothing in flight follow the client's fetch position, so the commit also moves past
        offsets that are no records (transaction markers, aborted records under read_committed). Safe at any
        moment: a client moves the position only inside ``fetch``, whose records this loop has already
        registered with the partition's tracker before it awaits anything."""
        for tp, worker in list(self.workers.items()):
            if worker.tracker.in_flight:
                continue  # finishing those records moves the commit (up to the position they saw)
            position = await consumer.position(tp)
            if position is not None:  # None: no position yet (assignment in progress), or no longer assigned
                worker.observe_position(position)

    async def _connect(self) -> ConsumerClient:
        wait = 0.2
        while True:
            consumer = self._make_consumer(self)
            consumer.subscribe(self.config.topics, self.config.topic_pattern, self)
            try:
                await consumer.start()
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await consumer.stop()
                raise
            except Exception as exc:
                self.last_error = f"cannot connect: {type(exc).__name__}: {exc}"
                log.warning("consumer %s: %s", self.name, self.last_error)
                with contextlib.suppress(Exception):
                    await consumer.stop()
                await asyncio.sleep(wait)
                wait = min(wait * 2, CONNECT_RETRY_MAX_S)
                continue
            self.consumer = consumer
            self.last_error = None
            self._commit_wanted.set()  # progress made while connecting (assignment can come first)
            for worker in self.workers.values():
                self.sync_fetch(worker)
            return consumer

    # -- rebalance listener ----------------------------------------------------------------------

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        gone = [tp for tp in revoked if tp in self.workers]
        if gone:
            log.info("consumer %s: partitions revoked: %s", self.name, gone)
        await self._drain(gone)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("consumer %s: partitions assigned: %s", self.name, sorted(assigned))
        for tp in assigned:
            if tp in self.workers:
                continue
            worker = self._make_worker(tp.topic, tp.partition)
            worker.admin_paused = self.paused_all
            self.workers[tp] = worker
            worker.start()
            self.sync_fetch(worker)

    async def _drain(self, partitions: list[TopicPartition]) -> None:
        """Finish (bounded) or abandon in-flight batches, commit what is final, forget the partitions."""
        timeout = self.config.drain_timeout_ms / 1000
        workers = [self.workers[tp] for tp in partitions if tp in self.workers]
        results = await asyncio.gather(*(w.quiesce(timeout) for w in workers))
        for worker, finished in zip(workers, results, strict=True):
            if not finished:
                log.warning("consumer %s: %s-%d abandoned its in-flight batch (drain timeout); it will be redelivered",
                            self.name, worker.topic, worker.partition)  # fmt: skip
        await asyncio.gather(*(w.close() for w in workers))
        await self.commit(workers)
        for tp in partitions:
            self.workers.pop(tp, None)
            self._fetch_paused.discard(tp)
        if self.on_forget is not None and partitions:
            self.on_forget(partitions)

    # -- commits ---------------------------------------------------------------------------------

    def on_change(self, worker: PartitionWorker) -> None:
        """A worker made progress or changed state: maybe commit, maybe resume fetching."""
        committable = worker.tracker.committable()
        if committable is not None and committable != worker.last_committed:
            self._commit_wanted.set()
        if self.consumer is not None:
            self.sync_fetch(worker)

    async def _commit_loop(self) -> None:
        while True:
            await self._commit_wanted.wait()
            self._commit_wanted.clear()
            if self.consumer is None:
                continue
            await self.commit(list(self.workers.values()))
            if self.config.commit_interval_ms:  # what becomes final meanwhile joins the next commit
                await asyncio.sleep(self.config.commit_interval_ms / 1000)

    async def commit(self, workers: list[PartitionWorker]) -> None:
        offsets: dict[TopicPartition, int] = {}
        for worker in workers:
            committable = worker.tracker.committable()
            if committable is not None and committable != worker.last_committed:
                offsets[TopicPartition(worker.topic, worker.partition)] = committable
        if not offsets or self.consumer is None:
            return
        try:
            await self.consumer.commit(offsets)
        except Exception as exc:
            self.last_error = f"commit failed: {type(exc).__name__}: {exc}"
            log.warning("consumer %s: %s (retried with the next progress)", self.name, self.last_error)
            return
        for worker in workers:
            tp = TopicPartition(worker.topic, worker.partition)
            if tp in offsets:
                worker.last_committed = offsets[tp]

    # -- flow control ----------------------------------------------------------------------------

    def sync_fetch(self, worker: PartitionWorker) -> None:
        """Pause fetching a partition while it is held, paused by an operator, or its buffer is full."""
        tp = TopicPartition(worker.topic, worker.partition)
        if self.consumer is None or tp not in self.workers:
            return
        limit = self.config.max_buffered_records
        full = worker.buffered >= limit
        if tp in self._fetch_paused and not full:
            full = worker.buffered > limit // 2  # hysteresis: resume when half drained
        want_paused = full or not worker.runnable
        if want_paused and tp not in self._fetch_paused:
            self.consumer.pause(tp)
            self._fetch_paused.add(tp)
        elif not want_paused and tp in self._fetch_paused:
            self.consumer.resume(tp)
            self._fetch_paused.discard(tp)

    def fetch_paused(self, tp: TopicPartition) -> bool:
        return tp in self._fetch_paused

    def assigned(self) -> list[PartitionRef]:
        return [PartitionRef(tp.topic, tp.partition) for tp in self.workers]

    def set_paused(self, partitions: list[PartitionRef] | None, paused: bool) -> list[PartitionRef]:
        chosen = select(self.assigned(), partitions)
        if partitions is None:
            self.paused_all = paused
        for ref in chosen:
            worker = self.workers[TopicPartition(ref.topic, ref.partition)]
            worker.admin_paused = paused
            self.sync_fetch(worker)
            if not paused:
                worker.wake()
        return chosen

    # -- seeks -----------------------------------------------------------------------------------

    async def seek(self, request: SeekRequest) -> dict[PartitionRef, int]:
        if self.consumer is None or self.state != "running":
            raise Conflict(f"consumer {self.name!r} is {self.state}; seek needs a running consumer")
        select(self.assigned(), request.partitions)
        self._seeks.append(request)
        return await request.done

    async def _apply_seeks(self) -> None:
        while self._seeks:
            request = self._seeks.pop(0)
            try:
                result = await self._apply_seek(request)
            except Exception as exc:
                if not request.done.done():
                    request.done.set_exception(exc)
                continue
            if not request.done.done():
                request.done.set_result(result)

    async def _apply_seek(self, request: SeekRequest) -> dict[PartitionRef, int]:
        refs = select(self.assigned(), request.partitions)
        tps = [TopicPartition(r.topic, r.partition) for r in refs]
        workers = [self.workers[tp] for tp in tps]
        timeout = self.config.drain_timeout_ms / 1000
        idle = await asyncio.gather(*(w.quiesce(timeout) for w in workers))
        try:
            if not all(idle):
                raise Conflict("a batch is still in flight after drain_timeout_ms; try again")
            consumer = self.consumer
            if consumer is None:
                raise Conflict(f"consumer {self.name!r} is not connected")
            targets = await self._resolve(consumer, tps, request)
            for tp, worker in zip(tps, workers, strict=True):
                await consumer.seek(tp, targets[tp])
                worker.clear_buffer(targets[tp])
            await self.commit(workers)
        finally:
            for worker in workers:
                worker.release()
        return {ref: targets[tp] for ref, tp in zip(refs, tps, strict=True)}

    @staticmethod
    async def _resolve(
        consumer: ConsumerClient, tps: list[TopicPartition], request: SeekRequest
    ) -> dict[TopicPartition, int]:
        target = request.target
        if target.kind == "offset":
            assert target.value is not None
            return dict.fromkeys(tps, target.value)
        ends = await consumer.end_offsets(tps)
        if target.kind == "end":
            return ends
        if target.kind == "beginning":
            return await consumer.beginning_offsets(tps)
        assert target.value is not None
        found = await consumer.offsets_for_times(dict.fromkeys(tps, target.value))
        return {tp: (offset if (offset := found.get(tp)) is not None else ends[tp]) for tp in tps}
