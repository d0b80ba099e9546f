"""The running part of a reactive consumer: the aiokafka consumer, fetch loop, commits and rebalances.

* Fetching never buffers without bound: a partition with ``max_buffered_records`` fetched but not yet
  delivered is paused in aiokafka and resumed as its lanes catch up.
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
from itertools import starmap
from operator import attrgetter
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from kafka_sidecar.plugin import BatchFetched, Conflict, ConsumedRecord, KafkaConfig, consumer_kwargs
from kafka_sidecar_handlers.reactive._config import ReactiveConsumerConfig
from kafka_sidecar_handlers.reactive._control import PartitionRef, SeekRequest, select
from kafka_sidecar_handlers.reactive._partition import PartitionWorker

log = logging.getLogger(__name__)

FETCH_TIMEOUT_MS = 200
POSITION_WAIT_S = 0.05
"""How long the fetch loop waits for the client to know a partition's position (right after assignment)."""
CONNECT_RETRY_MAX_S = 5.0

WorkerFactory = Callable[[str, int], PartitionWorker]
ConsumerFactory = Callable[["ConsumerRuntime"], Any]
"""Builds the (not yet started) Kafka consumer of a runtime; the seam unit tests use instead of a broker."""


def aiokafka_consumer(runtime: ConsumerRuntime) -> AIOKafkaConsumer:
    """The production consumer factory: an aiokafka consumer in the runtime's group."""
    config = runtime.config
    return AIOKafkaConsumer(
        **consumer_kwargs(runtime.kafka, f"reactive-{runtime.name}"),
        group_id=config.group,
        auto_offset_reset=config.auto_offset_reset,
        isolation_level=config.isolation_level,
        session_timeout_ms=config.session_timeout_ms,
        heartbeat_interval_ms=config.heartbeat_interval_ms,
        max_partition_fetch_bytes=config.max_partition_fetch_bytes,
        max_poll_records=config.fetch_max_records,
    )


def to_record(message: Any) -> ConsumedRecord:
    headers = message.headers
    return ConsumedRecord(  # positional: measurably cheaper per record than keywords
        message.topic,
        message.partition,
        message.offset,
        message.timestamp if message.timestamp is not None else -1,
        message.key,
        message.value,
        tuple((k, bytes(v) if v is not None else b"") for k, v in headers) if headers else (),
    )


_FIELDS = attrgetter("topic", "partition", "offset", "timestamp", "key", "value")
_HEADERS, _TIMESTAMP = attrgetter("headers"), attrgetter("timestamp")


def to_records(messages: list[Any]) -> list[ConsumedRecord]:
    """The client's records of one partition as consumed records. The common case (no headers,
    every timestamp set) is built by one ``map`` (no Python frame per record); the rest record by record."""
    if any(map(_HEADERS, messages)) or None in map(_TIMESTAMP, messages):
        return [to_record(m) for m in messages]
    return list(starmap(ConsumedRecord, map(_FIELDS, messages)))


class ConsumerRuntime(ConsumerRebalanceListener):  # type: ignore[misc]
    """Owns the aiokafka consumer of one reactive consumer, from start to leaving the group."""

    def __init__(
        self,
        name: str,
        config: ReactiveConsumerConfig,
        kafka: KafkaConfig,
        make_worker: WorkerFactory,
        make_consumer: ConsumerFactory = aiokafka_consumer,
    ) -> None:
        self.name = name
        self.config = config
        self.kafka = kafka
        self._make_worker = make_worker
        self._make_consumer = make_consumer
        self.workers: dict[TopicPartition, PartitionWorker] = {}
        self.consumer: Any = None
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
        await self._connect()
        self.state = "running"
        while not self._stopping:
            await self._apply_seeks()
            started_ns = time.time_ns()
            try:
                fetched = await self.consumer.getmany(timeout_ms=FETCH_TIMEOUT_MS)
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
            for tp, messages in fetched.items():
                worker = self.workers.get(tp)
                if worker is None or not messages:
                    continue
                worker.offer(to_records(messages))
                self.sync_fetch(worker)
            await self._follow_positions()

    async def _follow_positions(self) -> None:
        """Partitions with nothing in flight follow the client's fetch position, so the commit also moves past
        offsets that are no records (transaction markers, aborted records under read_committed). Safe at any
        moment: aiokafka moves the position only inside ``getmany``, whose records this loop has already
        registered with the partition's tracker before it awaits anything."""
        for tp, worker in list(self.workers.items()):
            if worker.tracker.in_flight:
                continue  # finishing those records moves the commit (up to the position they saw)
            try:
                position = await asyncio.wait_for(self.consumer.position(tp), POSITION_WAIT_S)
            except (TimeoutError, KafkaError):
                continue  # no position yet (assignment in progress) or no longer assigned: next poll
            worker.observe_position(position)

    async def _connect(self) -> None:
        wait = 0.2
        while True:
            consumer = self._make_consumer(self)
            if self.config.topic_pattern:
                consumer.subscribe(pattern=self.config.topic_pattern, listener=self)
            else:
                consumer.subscribe(topics=list(self.config.topics), listener=self)
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
            return

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
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for worker in workers:
            committable = worker.tracker.committable()
            if committable is not None and committable != worker.last_committed:
                offsets[TopicPartition(worker.topic, worker.partition)] = OffsetAndMetadata(committable, "")
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
                worker.last_committed = offsets[tp].offset

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
            targets = await self._resolve(tps, request)
            for tp, worker in zip(tps, workers, strict=True):
                self.consumer.seek(tp, targets[tp])
                worker.clear_buffer(targets[tp])
            await self.commit(workers)
        finally:
            for worker in workers:
                worker.release()
        return {ref: targets[tp] for ref, tp in zip(refs, tps, strict=True)}

    async def _resolve(self, tps: list[TopicPartition], request: SeekRequest) -> dict[TopicPartition, int]:
        target = request.target
        if target.kind == "offset":
            assert target.value is not None
            return dict.fromkeys(tps, target.value)
        ends: dict[TopicPartition, int] = await self.consumer.end_offsets(tps)
        if target.kind == "end":
            return ends
        if target.kind == "beginning":
            starts: dict[TopicPartition, int] = await self.consumer.beginning_offsets(tps)
            return starts
        assert target.value is not None
        found = await self.consumer.offsets_for_times(dict.fromkeys(tps, target.value))
        return {tp: (found[tp].offset if found.get(tp) is not None else ends[tp]) for tp in tps}
