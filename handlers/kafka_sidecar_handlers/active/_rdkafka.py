"""The librdkafka engine of the active consumer (``kafka.consumer.engine: librdkafka``, extra ``librdkafka``).

:class:`RdKafkaActiveConsumer` is ``confluent_kafka.Consumer`` behind the part of aiokafka's consumer API
the active consumer uses (``_instance.py``, ``_records.py``): the same method names, aiokafka's
``TopicPartition`` for partitions, records with aiokafka's field names, and failures raised as aiokafka's
errors (:func:`aiokafka_error`), so one instance code serves both engines.

* **Fetching off the event loop.** librdkafka fetches on its own threads; one thread per instance
  (:class:`~kafka_sidecar.plugin.RdKafkaConsumerThread`) makes every ``consume()`` call and turns the
  messages into records there, so the event loop only renders replies.
* **Rebalances** are served by librdkafka inside ``consume()``, so an instance takes part in a rebalance
  when it is next polled (as the Java consumer behind Confluent REST Proxy and the Strimzi bridge does).
  The revoke callback runs the instance's handler on the event loop and waits for it: an auto-commit
  instance commits what it handed out before the partitions go, and its buffered records of them are
  dropped. After ``unsubscribe()`` the owner thread serves the revoke at once, so the group does not wait
  for a poll that will not come.
* **Offsets** are committed only by the instance (``enable.auto.commit`` and ``enable.auto.offset.store``
  off), on the owner thread (also while a revoke callback waits there).
* Blocking look-ups (offsets for times, committed offsets, metadata) run on worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any

import msgspec
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka import errors as kafka_errors
from aiokafka.structs import OffsetAndTimestamp

from kafka_sidecar.plugin import (
    KafkaConfig,
    RdKafkaConsumerThread,
    RdKafkaErrorLog,
    librdkafka_consumer_settings,
    rdkafka_partition,
    rdkafka_records_by_partition,
    rdkafka_split_errors,
    rdkafka_topic_pattern,
)

log = logging.getLogger(__name__)

CLOSE_WAIT_S = 10.0
"""Longest wait for ``close()`` (leaving the group) when an instance is deleted or expires."""
REBALANCE_WAIT_S = 30.0
"""Longest a rebalance callback waits for the instance's revoke handling (an auto-commit)."""
UNSUBSCRIBE_SERVE_S = 5.0
"""Longest the owner thread serves the revoke that follows an unsubscribe."""
WAIT_SLICE_S = 0.05
"""While a poll waits for records, how soon a commit asked for meanwhile is made."""
COMMIT_REFUSED = frozenset({22, 25, 27, 82})
"""Broker codes of a commit refused because the group moved on (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID): aiokafka raises CommitFailedError for them."""
_LOCAL_STATE = frozenset({"_STATE", "_ASSIGNMENT_LOST", "_FENCED", "_UNKNOWN_PARTITION", "_PREV_IN_PROGRESS"})
_LOCAL_UNREACHABLE = frozenset(
    {"_TRANSPORT", "_ALL_BROKERS_DOWN", "_TIMED_OUT", "_WAIT_COORD", "_RESOLVE", "_DESTROY", "_NO_OFFSET"}
)


class FetchedRecord(msgspec.Struct, frozen=True, gc=False):
    """A fetched record with aiokafka's field names (what the active consumer renders), built in C."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


Fetched = dict[TopicPartition, list[FetchedRecord]]


def aiokafka_error(exc: BaseException, action: str) -> BaseException:
    """A librdkafka failure as the aiokafka error the active consumer maps to HTTP: wrong state (a commit
    the group refused, a partition not assigned) as ``CommitFailedError``/``IllegalStateError`` (409), an
    unreachable cluster as ``KafkaConnectionError`` (503), a broker error as aiokafka's class for its code
    (retriable ones 503, others 502). Anything else is returned as it is."""
    from confluent_kafka import KafkaError, KafkaException

    if not isinstance(exc, KafkaException) or not exc.args or not isinstance(exc.args[0], KafkaError):
        return exc
    error: KafkaError = exc.args[0]
    text = f"{action}: {error.name()}: {error.str()}"
    code, name = error.code(), error.name()
    kind: type[BaseException]
    if code in COMMIT_REFUSED:
        kind = kafka_errors.CommitFailedError
    elif name in _LOCAL_STATE:
        kind = kafka_errors.IllegalStateError
    elif name in _LOCAL_UNREACHABLE or (code < 0 and error.retriable()):
        kind = kafka_errors.KafkaConnectionError
    elif code > 0:
        kind = kafka_errors.for_code(code)
    else:
        kind = kafka_errors.KafkaError
    return kind(text)


def _checked(partitions: list[Any], action: str) -> list[Any]:
    from confluent_kafka import KafkaException

    for found in partitions:
        if found.error is not None:
            raise aiokafka_error(KafkaException(found.error), action)
    return partitions


def rdkafka_active_settings(
    kafka: KafkaConfig,
    group: str,
    name: str,
    *,
    auto_offset_reset: str,
    session_timeout_ms: int,
    heartbeat_interval_ms: int,
    max_poll_interval_ms: int,
    max_poll_records: int,
) -> dict[str, Any]:
    """The librdkafka configuration equivalent to what the aiokafka engine gives ``AIOKafkaConsumer``."""
    return {
        **librdkafka_consumer_settings(kafka, f"active-{name}", group, max_poll_records),
        "auto.offset.reset": "error" if auto_offset_reset == "none" else auto_offset_reset,
        "isolation.level": "read_uncommitted",  # aiokafka's default (librdkafka's is read_committed)
        "session.timeout.ms": session_timeout_ms,
        "heartbeat.interval.ms": heartbeat_interval_ms,
        "max.poll.interval.ms": max_poll_interval_ms,
    }


class RdKafkaActiveConsumer:
    """One active consumer instance's client on librdkafka (see the module for the threads)."""

    def __init__(self, name: str, settings: dict[str, Any], *, connect_timeout_s: float) -> None:
        self._name = name
        self._log_error = RdKafkaErrorLog(log, f"consumer instance {name}")
        self._settings = {**settings, "error_cb": self._log_error}
        self._timeout_s = connect_timeout_s
        self._rd: Any = None
        self._owner: RdKafkaConsumerThread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: ConsumerRebalanceListener | None = None
        self._topics: frozenset[str] = frozenset()
        self._pattern: str | None = None
        self._assignment: frozenset[TopicPartition] = frozenset()
        """What librdkafka assigned (set on the owner thread in the callbacks, or by ``assign``)."""
        self._pending_seeks: dict[TopicPartition, int] = {}
        """Seeks librdkafka refused while the partition's fetch was not started (see :meth:`seek`)."""
        self._seek_lock = threading.Lock()
        self._generation = 0
        """Counts subscribes, assigns and unsubscribes (a revoke served after an unsubscribe stops at the next)."""

    # -- life ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (a metadata request proves the cluster answers); raises when it does not."""
        from confluent_kafka import Consumer, KafkaException

        self._loop = asyncio.get_running_loop()
        rd = Consumer(self._settings)
        try:
            metadata = await asyncio.to_thread(rd.list_topics, None, self._timeout_s)
        except BaseException as exc:
            threading.Thread(target=rd.close, name=f"active-{self._name}-close", daemon=True).start()
            if isinstance(exc, KafkaException):
                raise aiokafka_error(exc, "Kafka metadata request failed") from exc
            raise
        if not metadata.brokers:
            threading.Thread(target=rd.close, name=f"active-{self._name}-close", daemon=True).start()
            raise kafka_errors.KafkaConnectionError("Kafka answered with no brokers")
        self._rd = rd
        self._owner = RdKafkaConsumerThread(f"active-{self._name}-librdkafka")

    async def stop(self) -> None:
        """Leave the group and close on the owner thread (bounded in time)."""
        owner, rd = self._owner, self._rd
        if owner is None:
            return
        self._owner = None
        await owner.close_client(rd.close, f"consumer instance {self._name}", CLOSE_WAIT_S)

    def _running(self) -> tuple[Any, RdKafkaConsumerThread]:
        if self._owner is None:
            raise kafka_errors.IllegalStateError("the consumer instance is closed")
        return self._rd, self._owner

    # -- subscription and assignment -------------------------------------------------------------

    def subscribe(
        self,
        topics: Sequence[str] = (),
        pattern: str | None = None,
        listener: ConsumerRebalanceListener | None = None,
    ) -> None:
        rd, _ = self._running()
        wanted = [rdkafka_topic_pattern(pattern)] if pattern else list(topics)
        try:
            rd.subscribe(wanted, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke)
        except Exception as exc:
            raise aiokafka_error(exc, "subscribe failed") from exc
        self._generation += 1
        self._listener = listener
        self._topics = frozenset(() if pattern else topics)
        self._pattern = pattern

    def subscription(self) -> frozenset[str]:
        """The topics subscribed to; for a pattern, the topics of the partitions assigned so far."""
        if self._pattern is not None:
            return frozenset(tp.topic for tp in self._assignment)
        return self._topics

    def unsubscribe(self) -> None:
        """Leave the subscription; the owner thread serves the revoke that follows at once (see
        :meth:`_serve_revoke`), so the group does not wait for a poll that may not come."""
        rd, owner = self._running()
        self._topics, self._pattern, self._assignment = frozenset(), None, frozenset()
        self._generation += 1
        rd.unsubscribe()
        generation = self._generation
        served = owner.run(lambda: self._serve_revoke(generation))
        served.add_done_callback(_log_failure)

    def _serve_revoke(self, generation: int) -> None:
        """On the owner thread: consume until librdkafka has handed the partitions back, unless a subscribe
        or an assign came first (its poll serves the revoke then). A record fetched meanwhile for a
        partition that is assigned again is sought back to, so this instance still hands it out."""
        deadline = time.monotonic() + UNSUBSCRIBE_SERVE_S
        dropped = 0
        while self._generation == generation and self._rd.assignment() and time.monotonic() < deadline:
            for message in self._rd.consume(1, WAIT_SLICE_S):
                if message.error() is not None:
                    self._log_error(message.error())
                    continue
                tp = TopicPartition(message.topic(), message.partition())
                if tp in self._assignment:
                    self.seek(tp, message.offset())
                else:
                    dropped += 1
        self._log_not_handed_out(dropped, "after unsubscribing")

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        rd, _ = self._running()
        wanted = list(partitions)
        try:
            if wanted:
                rd.assign([rdkafka_partition(tp) for tp in wanted])
            else:
                rd.unassign()
        except Exception as exc:
            raise aiokafka_error(exc, "assign failed") from exc
        self._generation += 1
        self._assignment = frozenset(wanted)

    def assignment(self) -> frozenset[TopicPartition]:
        return self._assignment

    def _on_assign(self, rd: Any, partitions: list[Any]) -> None:
        rd.assign(partitions)
        assigned = [TopicPartition(p.topic, p.partition) for p in partitions]
        self._assignment = frozenset(assigned)
        if self._listener is not None:
            self._tell(self._listener.on_partitions_assigned, assigned)

    def _on_revoke(self, rd: Any, partitions: list[Any]) -> None:
        revoked = [TopicPartition(p.topic, p.partition) for p in partitions]
        if self._listener is not None:
            self._tell(self._listener.on_partitions_revoked, revoked)
        self._assignment = self._assignment - set(revoked)
        with contextlib.suppress(Exception):
            rd.unassign()

    def _tell(
        self, method: Callable[[list[TopicPartition]], Coroutine[Any, Any, None]], tps: list[TopicPartition]
    ) -> None:
        """Run a listener method on the event loop and wait for it (bounded), serving its commits here."""
        loop, owner = self._loop, self._owner
        if loop is None or loop.is_closed() or owner is None:
            return
        owner.wait_for(loop, method(tps), REBALANCE_WAIT_S, f"consumer instance {self._name}: the rebalance of {tps}")

    # -- fetching (the owner thread) -------------------------------------------------------------

    async def getmany(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[FetchedRecord]]:
        _, owner = self._running()
        most = max_records or 500
        return await owner.run(lambda: self._poll(timeout_ms / 1000, most))

    def _poll(self, timeout_s: float, most: int) -> Fetched:
        """What is there now; else wait for the first message (making the commits and the seeks asked for
        meanwhile) and take what came with it."""
        assert self._owner is not None
        self._seek_pending()
        messages = self._owner.consume(
            self._rd, most, timeout_s, slice_s=WAIT_SLICE_S, between_waits=self._seek_pending
        )
        records, errors = rdkafka_split_errors(messages)
        for error in errors:
            if error.fatal() or error.name() in ("_AUTO_OFFSET_RESET", "OFFSET_OUT_OF_RANGE"):
                from confluent_kafka import KafkaException

                raise aiokafka_error(KafkaException(error), "polling Kafka failed")
            self._log_error(error)
        if not records:
            return {}
        with self._seek_lock:
            wanted = self._assignment - self._pending_seeks.keys()
        fetched = rdkafka_records_by_partition(records, FetchedRecord)
        kept = {tp: got for tp, got in fetched.items() if tp in wanted}
        if len(kept) < len(fetched):
            self._log_not_handed_out(sum(len(got) for tp, got in fetched.items() if tp not in wanted), "in a poll")
        return kept

    def _log_not_handed_out(self, count: int, when: str) -> None:
        """Records fetched for partitions no longer assigned (revoked meanwhile) or being sought are not
        handed out: their owner reads them from the committed offset, or this instance from the seek's."""
        if count:
            log.info(
                "consumer instance %s: %d fetched record(s) %s not handed out (partition revoked or being sought; "
                "read again from the committed offset or the seek's)", self._name, count, when,
            )  # fmt: skip

    # -- positions -------------------------------------------------------------------------------

    async def position(self, tp: TopicPartition) -> int:
        """The offset after the last record handed out of ``consume()``; IllegalStateError while unknown."""
        rd, _ = self._running()
        if tp not in self._assignment or tp in self._pending_seeks:
            raise kafka_errors.IllegalStateError(f"{tp.topic}:{tp.partition} is not assigned, or is being sought")
        (found,) = rd.position([rdkafka_partition(tp)])
        if found.error is not None or found.offset < 0:
            raise kafka_errors.IllegalStateError(f"the position of {tp.topic}:{tp.partition} is not known yet")
        return int(found.offset)

    def highwater(self, tp: TopicPartition) -> int | None:
        """The partition's end offset as the last fetch saw it (no request; None before any fetch)."""
        if self._rd is None:
            return None
        try:
            _low, high = self._rd.get_watermark_offsets(rdkafka_partition(tp), cached=True)
        except Exception:
            return None
        return int(high) if high >= 0 else None

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """The next record of ``tp`` handed out is at ``offset``. librdkafka refuses to seek a partition whose
        fetch has not started yet (just assigned, its committed offset still being read): such a seek is kept
        and made by the owner thread as soon as librdkafka takes it, and records of ``tp`` fetched meanwhile
        are not handed out."""
        rd, _ = self._running()
        with self._seek_lock:
            self._pending_seeks.pop(tp, None)
            try:
                rd.seek(rdkafka_partition(tp, offset))
            except Exception as exc:
                failure = aiokafka_error(exc, f"seek of {tp.topic}:{tp.partition} failed")
                if not isinstance(failure, kafka_errors.IllegalStateError) or tp not in self._assignment:
                    raise failure from exc
                self._pending_seeks[tp] = offset

    def _seek_pending(self) -> None:
        """On the owner thread: make the seeks librdkafka refused so far, once it takes them."""
        if not self._pending_seeks:
            return
        from confluent_kafka import KafkaException

        with self._seek_lock:
            for tp, offset in list(self._pending_seeks.items()):
                if tp not in self._assignment:
                    del self._pending_seeks[tp]
                    continue
                try:
                    self._rd.seek(rdkafka_partition(tp, offset))
                except KafkaException as exc:
                    if not isinstance(aiokafka_error(exc, "seek"), kafka_errors.IllegalStateError):
                        log.warning("consumer instance %s: seek of %s to %d failed: %s", self._name, tp, offset, exc)
                        del self._pending_seeks[tp]
                else:
                    del self._pending_seeks[tp]

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        for tp, (low, _high) in (await self._watermarks(tps)).items():
            self.seek(tp, low)

    async def seek_to_end(self, *tps: TopicPartition) -> None:
        """To each partition's end as it is now (aiokafka resolves it so too; librdkafka's logical end
        offset would be resolved only once its fetcher looks)."""
        for tp, (_low, high) in (await self._watermarks(tps)).items():
            self.seek(tp, high)

    async def _watermarks(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, tuple[int, int]]:
        rd, _ = self._running()

        def ask() -> dict[TopicPartition, tuple[int, int]]:
            marks: dict[TopicPartition, tuple[int, int]] = {}
            for tp in tps:
                low, high = rd.get_watermark_offsets(rdkafka_partition(tp), self._timeout_s, False)
                marks[tp] = (int(low), int(high))
            return marks

        try:
            return await asyncio.to_thread(ask)
        except Exception as exc:
            raise aiokafka_error(exc, "reading the partitions' first and last offsets failed") from exc

    async def offsets_for_times(
        self, times: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        rd, _ = self._running()
        wanted = [rdkafka_partition(tp, stamp) for tp, stamp in times.items()]
        try:
            found = await asyncio.to_thread(rd.offsets_for_times, wanted, self._timeout_s)
        except Exception as exc:
            raise aiokafka_error(exc, "looking up offsets by timestamp failed") from exc
        offsets = {(p.topic, p.partition): int(p.offset) for p in _checked(found, "looking up offsets by timestamp")}
        out: dict[TopicPartition, OffsetAndTimestamp | None] = {}
        for tp, stamp in times.items():
            offset = offsets.get((tp.topic, tp.partition), -1)
            out[tp] = OffsetAndTimestamp(offset, stamp) if offset >= 0 else None
        return out

    # -- offsets ---------------------------------------------------------------------------------

    async def commit(self, offsets: Mapping[TopicPartition, int | tuple[int, str]]) -> None:
        """Commit the next offsets to read (with metadata when given), synchronously, on the owner thread."""
        from confluent_kafka import TopicPartition as RdTopicPartition

        rd, owner = self._running()
        wanted = []
        for tp, planned in offsets.items():
            offset, metadata = planned if isinstance(planned, tuple) else (planned, "")
            if metadata:
                wanted.append(RdTopicPartition(tp.topic, tp.partition, offset, metadata=metadata))
            else:
                wanted.append(RdTopicPartition(tp.topic, tp.partition, offset))

        def commit() -> None:
            try:
                _checked(rd.commit(offsets=wanted, asynchronous=False), "commit failed")
            except kafka_errors.KafkaError:
                raise
            except Exception as exc:
                raise aiokafka_error(exc, "commit failed") from exc

        await owner.run(commit, during_rebalance=True)

    async def committed(self, tp: TopicPartition) -> int | None:
        rd, _ = self._running()
        try:
            found = await asyncio.to_thread(rd.committed, [rdkafka_partition(tp)], self._timeout_s)
        except Exception as exc:
            raise aiokafka_error(exc, "reading committed offsets failed") from exc
        offset = int(_checked(found, "reading committed offsets")[0].offset)
        return offset if offset >= 0 else None


def _log_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("serving the revoke after an unsubscribe failed: %r", future.exception())
