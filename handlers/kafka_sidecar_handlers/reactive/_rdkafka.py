"""The librdkafka engine of the reactive consumer (``kafka.consumer.engine: librdkafka``, extra
``librdkafka``): :class:`~kafka_sidecar_handlers.reactive._client.ConsumerClient` over
``confluent_kafka.Consumer``.

* One thread of its own (:class:`RdKafkaConsumerThread`) makes every ``consume()`` call, one per :meth:`fetch`, and
  turns the messages into consumed records there (``rdkafka_records_by_partition``), so positions move only while
  the runtime waits for a fetch, as with aiokafka. Seeks, commits and ``close()`` run on that thread too.
* Rebalances are served by librdkafka inside ``consume()`` on that thread: the callback hands the change to
  the runtime on the event loop and blocks until its drain and commit are done, so a revoked
  partition's final records are committed before the partition goes, and nothing is committed that the
  backend did not accept. librdkafka holds a commit made on another thread until the callback returns,
  so the waiting callback runs the runtime's commits itself (:class:`RdKafkaConsumerThread`).
* Pauses and resumes are applied by that thread (:class:`FetchGate`: a paused partition's records are
  held back first, librdkafka pauses it only past a limit), before and while a fetch waits.
* Blocking look-ups (watermarks, offsets for times, committed offsets, metadata) run on worker threads,
  never on the loop; position is local and quick.
* Offsets are stored and committed only by the runtime (``enable.auto.commit`` and
  ``enable.auto.offset.store`` off).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from aiokafka import TopicPartition

from kafka_sidecar.plugin import (
    ConsumedRecord,
    KafkaConfig,
    KafkaUnavailable,
    RdKafkaConsumerThread,
    RdKafkaErrorLog,
    librdkafka_consumer_settings,
    rdkafka_partition,
    rdkafka_records_by_partition,
    rdkafka_split_errors,
    rdkafka_topic_pattern,
)
from kafka_sidecar_handlers.reactive._client import RebalanceListener
from kafka_sidecar_handlers.reactive._config import ReactiveConsumerConfig
from kafka_sidecar_handlers.reactive._rdkafka_gate import FetchGate

log = logging.getLogger(__name__)

CLOSE_WAIT_S = 10.0
"""Longest wait for ``close()`` (leaving the group) and the thread's end when stopping."""
REBALANCE_MARGIN_S = 5.0
"""How much longer than ``drain_timeout_ms`` a rebalance callback waits for the runtime."""
FETCH_WAIT_MAX_MS = 100
"""How long the broker may hold a fetch for partitions with nothing new. librdkafka has one fetch in flight
per broker, so a partition resumed meanwhile waits for it: with the default (500 ms) a reader held back by
its backend stalled for that long after each resume."""
AUTHENTICATION_ERRORS = frozenset({"_AUTHENTICATION", "SASL_AUTHENTICATION_FAILED"})
"""librdkafka's names of the errors a start failure is reported as (instead of the transport failure)."""
WAIT_SLICE_S = 0.01
"""While a fetch waits for records, how soon a commit or a resume the runtime asked for takes effect."""


def rdkafka_consumer_settings(name: str, config: ReactiveConsumerConfig, kafka: KafkaConfig) -> dict[str, Any]:
    """The librdkafka configuration equivalent to what the aiokafka engine gives ``AIOKafkaConsumer``."""
    return {
        **librdkafka_consumer_settings(kafka, f"reactive-{name}", config.group, config.fetch_max_records),
        "auto.offset.reset": config.auto_offset_reset,
        "isolation.level": config.isolation_level,
        "session.timeout.ms": config.session_timeout_ms,
        "heartbeat.interval.ms": config.heartbeat_interval_ms,
        "max.partition.fetch.bytes": config.max_partition_fetch_bytes,
        "fetch.wait.max.ms": FETCH_WAIT_MAX_MS,
    }


def _checked(partitions: list[Any]) -> list[Any]:
    from confluent_kafka import KafkaException

    for found in partitions:
        if found.error is not None:
            raise KafkaException(found.error)
    return partitions


class RdKafkaClient:
    """A :class:`ConsumerClient` on librdkafka (see the module's notes for the threads)."""

    engine = "librdkafka"

    def __init__(self, name: str, settings: dict[str, Any], config: ReactiveConsumerConfig, kafka: KafkaConfig) -> None:
        self._name = name
        self._settings = {**settings, "error_cb": self._on_error}
        self._auth_error: str | None = None
        """The last authentication error librdkafka reported (an OAUTHBEARER token it could not get, say):
        a failed start names it instead of the transport failure it causes."""
        self._max_records = config.fetch_max_records
        self._rebalance_wait_s = config.drain_timeout_ms / 1000 + REBALANCE_MARGIN_S
        self._timeout_s = kafka.connect_timeout_ms / 1000
        self._topics: list[str] = []
        self._listener: RebalanceListener | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._owner: RdKafkaConsumerThread | None = None
        self._rd: Any = None
        self._log_error = RdKafkaErrorLog(log, f"consumer {name}")
        self._flow: dict[TopicPartition, bool] = {}
        """Pauses (True) and resumes (False) wanted since the last ``consume()``, applied before the next."""
        self._flow_lock = threading.Lock()
        self._gate: FetchGate | None = None
        self._hold_limit = max(config.fetch_max_records, config.max_buffered_records // 2)
        """Records of a paused partition held back before librdkafka pauses it: the runtime resumes a
        partition once half its buffer is delivered, so about what it takes then."""

    def subscribe(self, topics: Sequence[str], pattern: str | None, listener: RebalanceListener) -> None:
        self._topics = [rdkafka_topic_pattern(pattern)] if pattern else list(topics)
        self._listener = listener

    async def start(self) -> None:
        from confluent_kafka import Consumer, KafkaException

        self._loop = asyncio.get_running_loop()
        rd = Consumer(self._settings)
        try:
            metadata = await asyncio.to_thread(rd.list_topics, None, self._timeout_s)
        except BaseException as exc:  # unreachable, or stopped while connecting: this client is not kept
            if isinstance(exc, KafkaException):
                rd.poll(0)  # serves the error callbacks queued meanwhile (an authentication error, say)
            self._discard(rd)
            if isinstance(exc, KafkaException):
                if self._auth_error is not None:
                    raise KafkaUnavailable(f"Kafka authentication failed: {self._auth_error}") from exc
                raise KafkaUnavailable(f"Kafka metadata request failed: {exc.args[0].str()}") from exc
            raise
        if not metadata.brokers:
            self._discard(rd)
            raise KafkaUnavailable("Kafka answered with no brokers")
        rd.subscribe(self._topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke)
        self._rd = rd
        self._gate = FetchGate(rd, self._hold_limit)
        self._owner = RdKafkaConsumerThread(f"reactive-{self._name}-librdkafka")

    def _discard(self, rd: Any) -> None:
        """Close a client that never started, on a thread of its own (nobody waits for it)."""
        threading.Thread(target=rd.close, name=f"reactive-{self._name}-close", daemon=True).start()

    async def stop(self) -> None:
        """Close in the owning thread (leaving the group serves the last revoke there), bounded."""
        owner, rd = self._owner, self._rd
        if owner is None:
            return
        self._owner = None
        await owner.close_client(rd.close, f"consumer {self._name}", CLOSE_WAIT_S)

    # -- fetching (the owning thread) ------------------------------------------------------------

    async def fetch(self, timeout_ms: int) -> dict[TopicPartition, list[ConsumedRecord]]:
        if self._owner is None:
            raise KafkaUnavailable("the consumer is not started")
        return await self._owner.run(lambda: self._poll(timeout_ms / 1000))

    def _poll(self, timeout_s: float) -> dict[TopicPartition, list[ConsumedRecord]]:
        """What is there now; else wait for the first message (in slices, applying commits, pauses and
        resumes the runtime asks for meanwhile) and take what came with it (``consume(n, t)`` alone would
        wait for all ``n``). Paused partitions' records are held back (:class:`FetchGate`)."""
        gate, owner = self._gate, self._owner
        assert gate is not None
        assert owner is not None
        self._apply_flow()
        messages = owner.consume(
            self._rd, self._max_records, timeout_s, slice_s=WAIT_SLICE_S, between_waits=self._apply_flow,
            ready=gate.releasable,
        )  # fmt: skip
        records, errors = rdkafka_split_errors(messages)
        for error in errors:
            self._log_error(error)
        return gate.sift(rdkafka_records_by_partition(records, ConsumedRecord) if records else {})

    def _apply_flow(self) -> None:
        """Pauses and resumes the runtime asked for take effect (before and while a fetch waits)."""
        if not self._flow:
            return
        with self._flow_lock:
            wanted, self._flow = self._flow, {}
        if wanted and self._gate is not None:
            self._gate.apply(wanted)

    def _on_error(self, error: Any) -> None:
        """librdkafka's error callback (served by ``consume()`` on the owning thread, or by ``start``)."""
        if error.name() in AUTHENTICATION_ERRORS:
            self._auth_error = f"{error.name()}: {error.str()}"
        self._log_error(error)

    def _on_assign(self, rd: Any, partitions: list[Any]) -> None:
        """Take the partitions unpaused (a pause left from an earlier assignment no longer holds), then
        let the runtime make their workers (it pauses what it wants again)."""
        assert self._listener is not None
        self._forget_flow(partitions)
        rd.assign(partitions)
        with contextlib.suppress(Exception):
            rd.resume(partitions)
        self._tell(self._listener.on_partitions_assigned, partitions)

    def _on_revoke(self, rd: Any, partitions: list[Any]) -> None:
        """Let the runtime drain and commit the partitions; pauses it asked for meanwhile go with them."""
        assert self._listener is not None
        self._tell(self._listener.on_partitions_revoked, partitions)
        self._forget_flow(partitions)

    def _forget_flow(self, partitions: list[Any]) -> None:
        tps = [TopicPartition(p.topic, p.partition) for p in partitions]
        with self._flow_lock:
            for tp in tps:
                self._flow.pop(tp, None)
        if self._gate is not None:
            self._gate.forget(tps)

    def _tell(self, method: Callable[[list[TopicPartition]], Coroutine[Any, Any, None]], partitions: list[Any]) -> None:
        """Run a listener method on the event loop and wait for it (bounded), serving its commits: we are
        inside ``consume()`` on the owning thread, and librdkafka hands the partitions over when this returns."""
        loop, owner = self._loop, self._owner
        if loop is None or loop.is_closed() or owner is None:
            return
        tps = [TopicPartition(p.topic, p.partition) for p in partitions]
        owner.wait_for(loop, method(tps), self._rebalance_wait_s, f"consumer {self._name}: the rebalance of {tps}")

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        if self._owner is None:
            raise KafkaUnavailable("the consumer is not started")
        await self._owner.run(lambda: self._seek(tp, offset))

    def _seek(self, tp: TopicPartition, offset: int) -> None:
        if self._gate is not None:
            self._gate.drop_held(tp)
        self._rd.seek(rdkafka_partition(tp, offset))

    async def thread_cpu_seconds(self) -> float:
        """CPU seconds of the thread owning ``consume()`` so far (bench/consumer_client_bench.py)."""
        if self._owner is None:
            return 0.0
        return await self._owner.run(time.thread_time)

    # -- on the event loop ----------------------------------------------------------------------

    async def position(self, tp: TopicPartition) -> int | None:
        """librdkafka's position, unless records of ``tp`` are held back (it is past them then)."""
        if self._rd is None or self._gate is None or self._gate.holds(tp):
            return None
        try:
            found = self._rd.position([rdkafka_partition(tp)])
        except Exception:
            return None
        offset = int(found[0].offset)
        return offset if offset >= 0 and found[0].error is None else None

    def pause(self, tp: TopicPartition) -> None:
        with self._flow_lock:
            self._flow[tp] = True

    def resume(self, tp: TopicPartition) -> None:
        with self._flow_lock:
            self._flow[tp] = False

    # -- blocking calls (worker threads) ---------------------------------------------------------

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """On the owning thread (also while a rebalance callback waits there: see :class:`RdKafkaConsumerThread`)."""
        if self._owner is None:
            raise KafkaUnavailable("the consumer is not started")
        wanted = [rdkafka_partition(tp, offset) for tp, offset in offsets.items()]
        await self._owner.run(
            lambda: _checked(self._rd.commit(offsets=wanted, asynchronous=False)), during_rebalance=True
        )

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: marks[1] for tp, marks in (await self._watermarks(tps)).items()}

    async def beginning_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: marks[0] for tp, marks in (await self._watermarks(tps)).items()}

    async def _watermarks(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, tuple[int, int]]:
        def ask() -> dict[TopicPartition, tuple[int, int]]:
            marks: dict[TopicPartition, tuple[int, int]] = {}
            for tp in tps:
                low, high = self._rd.get_watermark_offsets(rdkafka_partition(tp), self._timeout_s, False)
                marks[tp] = (int(low), int(high))
            return marks

        return await asyncio.to_thread(ask)

    async def offsets_for_times(self, times: Mapping[TopicPartition, int]) -> dict[TopicPartition, int | None]:
        wanted = [rdkafka_partition(tp, timestamp) for tp, timestamp in times.items()]
        found = await asyncio.to_thread(lambda: _checked(self._rd.offsets_for_times(wanted, self._timeout_s)))
        offsets = {(p.topic, p.partition): int(p.offset) for p in found}
        return {tp: (o if (o := offsets.get((tp.topic, tp.partition), -1)) >= 0 else None) for tp in times}

    async def committed(self, tp: TopicPartition) -> int | None:
        found = await asyncio.to_thread(lambda: _checked(self._rd.committed([rdkafka_partition(tp)], self._timeout_s)))
        offset = int(found[0].offset)
        return offset if offset >= 0 else None


def rdkafka_client(name: str, config: ReactiveConsumerConfig, kafka: KafkaConfig) -> RdKafkaClient:
    """The librdkafka client of reactive consumer ``name`` (in its group, not started)."""
    return RdKafkaClient(name, rdkafka_consumer_settings(name, config, kafka), config, kafka)
