"""One active consumer instance: a Kafka consumer (aiokafka's, or librdkafka's behind aiokafka's API:
``_rdkafka.py``), the records fetched but not yet handed out, and a lock.

Every operation runs under the instance's lock, so two polls (or a poll and a seek) never interleave:
a second request waits for the first to finish. Records the consumer fetched beyond what a reply
could carry stay in ``buffer`` for the next poll; when a rebalance takes partitions away, their
buffered records are dropped (the new owner reads them from the committed offset).

Offsets: ``delivered`` holds, per partition, the offset after the last record handed to the client; with
nothing buffered it follows the client's position past offsets that hold no record (transaction markers,
aborted records under ``read_committed``), as a Java consumer's ``commitSync()`` would, so a topic whose
last offset is a commit marker is committed up to its end. An empty-body commit commits exactly that,
never records still buffered. With ``auto.commit.enable``
the same delivered offsets are committed at most every ``auto_commit_interval_ms`` (checked on each
poll), before partitions are revoked, and on close.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka import errors as kafka_errors

from kafka_sidecar.plugin import Conflict, KafkaRejected, KafkaUnavailable, NotFound, SidecarError
from kafka_sidecar.plugin import describe_error as describe
from kafka_sidecar_handlers.active._buffer import FetchedBuffer
from kafka_sidecar_handlers.active._requests import (
    CreateRequest,
    Partition,
    PartitionOffset,
    PartitionTimestamp,
    Subscription,
)

log = logging.getLogger(__name__)

POSITION_WAIT_S = 0.05
"""How long a poll waits for the client to tell a partition's position (it knows it at once when valid)."""
V2_INSTANCE_NOT_FOUND = 40403
V2_ILLEGAL_STATE = 40903


class Fetched(Protocol):
    """A record as aiokafka hands it out; kept as is (no copy) until it is rendered."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes | None]]: ...


@dataclass(frozen=True, slots=True)
class InstanceKey:
    group: str
    name: str

    def __str__(self) -> str:
        return f"{self.group}/{self.name}"


def last_offsets(records: Iterable[Fetched]) -> dict[tuple[str, int], int]:
    """The last offset of ``records`` per ``(topic, partition)`` (records come in offset order per partition)."""
    last: dict[tuple[str, int], int] = {}
    for record in records:
        last[record.topic, record.partition] = record.offset
    return last


def not_found(key: InstanceKey) -> NotFound:
    return NotFound(
        f"consumer instance {key.name!r} not found in group {key.group!r} (it may have expired)",
        field="instance",
        v2_error_code=V2_INSTANCE_NOT_FOUND,
    )


def illegal_state(message: str, field: str | None = None) -> Conflict:
    return Conflict(message, field=field, v2_error_code=V2_ILLEGAL_STATE)


def kafka_failure(action: str, exc: BaseException) -> SidecarError:
    """An aiokafka failure as one of our errors: wrong state 409, retriable 503, anything else 502."""
    if isinstance(exc, kafka_errors.IllegalStateError | kafka_errors.CommitFailedError):
        return illegal_state(f"{action}: {describe(exc)}")
    if getattr(exc, "retriable", False) or isinstance(exc, TimeoutError | kafka_errors.KafkaConnectionError):
        return KafkaUnavailable(f"{action}: {describe(exc)}")
    return KafkaRejected(f"{action}: {describe(exc)}")


def tp_of(partition: Partition | PartitionOffset | PartitionTimestamp) -> TopicPartition:
    return TopicPartition(partition.topic, partition.partition)


class _DropRevoked(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, instance: ActiveInstance) -> None:
        self._instance = instance

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._instance.partitions_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        log.info("consumer instance %s assigned %s", self._instance.key, sorted(map(tuple, assigned)))


class ActiveInstance:
    """A consumer instance as the HTTP API sees it."""

    def __init__(
        self,
        key: InstanceKey,
        settings: CreateRequest,
        consumer: Any,
        *,
        auto_commit_interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key
        self.settings = settings
        self.consumer = consumer
        self.lock = asyncio.Lock()
        self.buffer = FetchedBuffer()
        self.delivered: dict[TopicPartition, int] = {}
        self.deferred_poll_error: BaseException | None = None
        """A Kafka error met while reading ahead (``_records.prepare_next``): the next poll raises it."""
        self.closed = False
        self._clock = clock
        self.last_used = clock()
        self._auto_commit_interval_s = auto_commit_interval_s
        self._last_auto_commit = clock()
        self._manual = False
        self._pattern: str | None = None
        """A ``topic_pattern`` subscription: a source before any topic has matched (aiokafka lists none yet)."""
        self._listener = _DropRevoked(self)

    # -- bookkeeping ---------------------------------------------------------------------------

    def touch(self) -> None:
        self.last_used = self._clock()

    def idle_for(self) -> float:
        return 0.0 if self.lock.locked() else self._clock() - self.last_used

    def drop_buffered(self, partitions: set[TopicPartition] | None = None) -> int:
        """Forget buffered records (of ``partitions``, or all); returns how many were dropped."""
        if partitions is not None:
            return self.buffer.drop(partitions)
        before = len(self.buffer)
        self.buffer.clear()
        return before

    async def partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if self.settings.auto_commit_enable:
            await self._commit_delivered_quietly({tp: o for tp, o in self.delivered.items() if tp in revoked})
        dropped = self.drop_buffered(revoked)
        for tp in revoked:
            self.delivered.pop(tp, None)
        if revoked:
            log.info("consumer instance %s lost %d partition(s); dropped %d buffered record(s)", self.key,
                     len(revoked), dropped)  # fmt: skip

    def assigned(self) -> set[TopicPartition]:
        return set(self.consumer.assignment())

    def has_source(self) -> bool:
        return bool(self.consumer.subscription()) or self._manual or self._pattern is not None or bool(self.assigned())

    def mark_delivered(self, records: Iterable[Fetched]) -> None:
        self.mark_delivered_up_to(last_offsets(records))

    def mark_delivered_up_to(self, last: Mapping[tuple[str, int], int]) -> None:
        """Records were handed out up to ``last[(topic, partition)]`` (that offset included)."""
        for (topic, partition), offset in last.items():
            self.delivered[TopicPartition(topic, partition)] = offset + 1

    async def follow_positions(self) -> None:
        """With nothing buffered, every offset below the client's position was handed out or is no record:
        ``delivered`` moves up to the position (only for partitions something was delivered from)."""
        if self.buffer:
            return
        for tp, offset in list(self.delivered.items()):
            try:
                async with asyncio.timeout(POSITION_WAIT_S):  # in this task: no task per partition, as wait_for
                    position = await self.consumer.position(tp)
            except (kafka_errors.KafkaError, TimeoutError):
                continue  # no longer assigned, or its position is being reset: stays at the last record
            if position > offset and tp in self.delivered:
                self.delivered[tp] = position

    # -- subscription and assignment -------------------------------------------------------------

    def subscribe(self, subscription: Subscription) -> None:
        if self._manual:
            raise illegal_state("this instance has manually assigned partitions; it cannot also subscribe", "topics")
        self.drop_buffered()
        try:
            if subscription.pattern is not None:
                self.consumer.subscribe(pattern=subscription.pattern, listener=self._listener)
            else:
                self.consumer.subscribe(topics=list(subscription.topics), listener=self._listener)
        except (kafka_errors.KafkaError, ValueError, TypeError) as exc:
            raise kafka_failure("subscribe failed", exc) from exc
        self._pattern = subscription.pattern

    def subscription(self) -> list[str]:
        return sorted(self.consumer.subscription())

    async def unsubscribe(self) -> None:
        if self.settings.auto_commit_enable:
            await self._commit_delivered_quietly(self.delivered)
        self.consumer.unsubscribe()
        self.drop_buffered()
        self.delivered.clear()
        self._manual = False
        self._pattern = None

    def assign(self, partitions: tuple[Partition, ...]) -> None:
        if self.consumer.subscription() or self._pattern is not None:
            raise illegal_state("this instance is subscribed to topics; it cannot also assign partitions", "partitions")
        self.drop_buffered()
        try:
            self.consumer.assign([tp_of(p) for p in partitions])
        except kafka_errors.KafkaError as exc:
            raise kafka_failure("assign failed", exc) from exc
        self._manual = bool(partitions)
        kept = {tp_of(p) for p in partitions}
        self.delivered = {tp: o for tp, o in self.delivered.items() if tp in kept}

    # -- seeking -----------------------------------------------------------------------------------

    def _require_assigned(self, tps: Iterable[TopicPartition], field: str) -> list[TopicPartition]:
        wanted = list(dict.fromkeys(tps))
        missing = [tp for tp in wanted if tp not in self.assigned()]
        if missing:
            names = ", ".join(f"{tp.topic}:{tp.partition}" for tp in missing)
            raise illegal_state(
                f"partition(s) {names} are not assigned to this instance (yet); after subscribing, poll "
                "until the group has assigned partitions, or assign them manually",
                field,
            )
        return wanted

    def _forget(self, tps: Iterable[TopicPartition]) -> None:
        chosen = set(tps)
        self.drop_buffered(chosen)
        for tp in chosen:
            self.delivered.pop(tp, None)

    async def seek(self, offsets: tuple[PartitionOffset, ...], stamps: tuple[PartitionTimestamp, ...]) -> None:
        self._require_assigned([tp_of(o) for o in offsets], "offsets")
        self._require_assigned([tp_of(s) for s in stamps], "timestamps")
        targets: dict[TopicPartition, int | None] = {tp_of(o): o.offset for o in offsets}
        if stamps:
            try:
                found = await self.consumer.offsets_for_times({tp_of(s): s.timestamp for s in stamps})
            except (kafka_errors.KafkaError, TimeoutError) as exc:
                raise kafka_failure("looking up offsets by timestamp failed", exc) from exc
            for tp, hit in found.items():
                targets[tp] = None if hit is None else hit.offset
        self._forget(targets)
        past_end = [tp for tp, offset in targets.items() if offset is None]
        try:
            for tp, offset in targets.items():
                if offset is not None:
                    self.consumer.seek(tp, offset)
        except (kafka_errors.KafkaError, ValueError) as exc:
            raise kafka_failure("seek failed", exc) from exc
        if past_end:
            await self.seek_to("end", tuple(Partition(tp.topic, tp.partition) for tp in past_end))

    async def seek_to(self, where: str, partitions: tuple[Partition, ...]) -> None:
        """``beginning`` or ``end`` of the given partitions, or of every assigned one when none are given."""
        tps = self._require_assigned([tp_of(p) for p in partitions], "partitions") if partitions else self.assigned()
        if not tps:
            raise illegal_state("no partitions are assigned to this instance yet", "partitions")
        self._forget(tps)
        try:
            if where == "beginning":
                await self.consumer.seek_to_beginning(*tps)
            else:
                await self.consumer.seek_to_end(*tps)
        except (kafka_errors.KafkaError, TimeoutError) as exc:
            raise kafka_failure(f"seek to {where} failed", exc) from exc

    # -- offsets -----------------------------------------------------------------------------------

    async def commit(self, offsets: tuple[PartitionOffset, ...]) -> list[dict[str, object]]:
        """Commit ``offset + 1`` for each entry (Confluent semantics), or everything delivered when empty."""
        if offsets:
            plan: dict[TopicPartition, tuple[int, str]] = {tp_of(o): (o.offset + 1, o.metadata or "") for o in offsets}
            self._require_assigned(plan, "offsets")
        else:
            assigned = self.assigned()
            plan = {tp: (offset, "") for tp, offset in self.delivered.items() if tp in assigned}
        if plan:
            try:
                await self.consumer.commit(plan)
            except (kafka_errors.KafkaError, TimeoutError) as exc:
                raise kafka_failure("commit failed", exc) from exc
        self._last_auto_commit = self._clock()
        # Confluent's CommitOffsetsResponse entry: the last consumed offset and the committed (next) one
        return [
            {"topic": tp.topic, "partition": tp.partition, "consumed": offset - 1, "committed": offset}
            for tp, (offset, _metadata) in sorted(plan.items())
        ]

    async def committed(self, partitions: tuple[Partition, ...]) -> list[dict[str, object]]:
        """Committed offsets as Kafka stores them (the next offset the group reads); uncommitted ones left out."""
        tps = [tp_of(p) for p in partitions] or sorted(self.assigned())
        out: list[dict[str, object]] = []
        for tp in tps:
            try:
                offset = await self.consumer.committed(tp)
            except (kafka_errors.KafkaError, TimeoutError) as exc:
                raise kafka_failure(f"reading the committed offset of {tp.topic}:{tp.partition} failed", exc) from exc
            if offset is not None:
                out.append({"topic": tp.topic, "partition": tp.partition, "offset": offset, "metadata": ""})
        return out

    async def maybe_auto_commit(self) -> None:
        if self.settings.auto_commit_enable and self._clock() - self._last_auto_commit >= self._auto_commit_interval_s:
            await self._commit_delivered_quietly(self.delivered)

    async def _commit_delivered_quietly(self, delivered: Mapping[TopicPartition, int]) -> None:
        assigned = self.assigned()
        plan = {tp: offset for tp, offset in delivered.items() if tp in assigned}
        self._last_auto_commit = self._clock()
        if not plan:
            return
        try:
            await self.consumer.commit(plan)
        except Exception as exc:
            log.warning("auto-commit of consumer instance %s failed: %s", self.key, describe(exc))

    # -- closing -----------------------------------------------------------------------------------

    async def close(self, reason: str) -> None:
        """Commit (auto-commit instances only), leave the group and close. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        async with self.lock:
            if self.settings.auto_commit_enable:
                await self._commit_delivered_quietly(self.delivered)
            try:
                await self.consumer.stop()
            except Exception as exc:
                log.warning("closing consumer instance %s failed: %s", self.key, describe(exc))
        log.info("consumer instance %s closed (%s)", self.key, reason)
