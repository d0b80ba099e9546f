"""A Kafka producer that heals itself: connects in the background, sends batches, reports per-record acks.

The sidecar starts even when the broker is down (readiness says so). Three things keep a producer from
getting stuck or answering late:

* **Fatal errors rebuild the producer.** An idempotent producer whose sequence state broke
  (``OutOfOrderSequenceNumber``, ``UnknownProducerId``, a fenced epoch, a dead sender task) fails every
  later batch. Such an error retires that aiokafka producer and a fresh one (new producer id) is
  connected; records of the batch the broker refused are reported *not written*, the others that were
  in flight on the broken producer and not acknowledged *outcome unknown* — never as failed twice.
* **Fail fast while the broker is known unreachable.** A watchdog probes metadata; while the broker does
  not answer, a send fails at once with "not written" instead of waiting the full request timeout.
* **"Not written" and "outcome unknown" are told apart** (:data:`ERROR_KAFKA_RETRIABLE` vs
  :data:`ERROR_OUTCOME_UNKNOWN`, and :func:`raise_if_none_acknowledged`), so a client knows whether a
  retry can write a record twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from typing import Any

import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka import errors as kafka_errors

from kafka_sidecar._config.model import KafkaConfig
from kafka_sidecar._errors import KafkaOutcomeUnknown, KafkaUnavailable, NotFound, ValidationFailed
from kafka_sidecar._kafka.diagnose import diagnose_connection
from kafka_sidecar._kafka.options import producer_kwargs
from kafka_sidecar._kafka.partitioner import Murmur2Partitioner
from kafka_sidecar._kafka.topics import ensure_topics
from kafka_sidecar._records import DeliveryReport, OutgoingRecord

log = logging.getLogger(__name__)

ProducerFactory = Callable[..., Any]

# Per-record error codes in produce responses (Java sidecar / REST Proxy v2 compatible).
ERROR_NOT_AUTHENTICATED = 40101
ERROR_NOT_AUTHORIZED = 40301
ERROR_KAFKA = 50002
ERROR_KAFKA_RETRIABLE = 50003
"""The record was not written; sending it again cannot duplicate it."""
ERROR_OUTCOME_UNKNOWN = 50004
"""The record may or may not have been written (no acknowledgement in time, or its producer broke)."""

FATAL_ERRORS: tuple[type[BaseException], ...] = (
    kafka_errors.OutOfOrderSequenceNumber,
    kafka_errors.UnknownProducerId,
    kafka_errors.ProducerFenced,
    kafka_errors.InvalidProducerEpoch,
    kafka_errors.InvalidProducerIdMapping,
    kafka_errors.ClusterAuthorizationFailedError,
    kafka_errors.TransactionalIdAuthorizationFailed,
    kafka_errors.SaslAuthenticationFailed,
    kafka_errors.AuthenticationFailedError,
    kafka_errors.IllegalStateError,
)
"""Errors after which this producer instance can never send again: it is rebuilt."""


PROBES_TO_FAIL = 2
"""Failed metadata probes in a row after which the broker counts as unreachable (sends fail fast)."""

BULK_TURN = 64
"""Records a bulk send hands to the client in one turn of the event loop (:meth:`ProducerService.send_bulk`):
requests waiting on the loop get in between, and a write of thousands never holds the loop for long."""


class BulkOutcome(msgspec.Struct, frozen=True):
    """What the broker said about a bulk send (:meth:`ProducerService.send_bulk`), counted: ``acknowledged``
    + ``failed`` is every record given; ``error`` describes one failure (``None`` when none failed)."""

    acknowledged: int
    failed: int
    error: str | None = None


def count_reports(reports: Sequence[DeliveryReport]) -> BulkOutcome:
    """``send_batch``'s reports as a :class:`BulkOutcome` (an engine or a test seam sending record by record)."""
    failed = [report for report in reports if not report.acknowledged]
    return BulkOutcome(len(reports) - len(failed), len(failed), failed[0].error if failed else None)


class ProducerState(enum.StrEnum):
    CONNECTING = "connecting"
    READY = "ready"
    UNREACHABLE = "unreachable"
    REBUILDING = "rebuilding"
    STOPPED = "stopped"


def is_fatal(exc: BaseException) -> bool:
    return isinstance(exc, FATAL_ERRORS)


def error_code_for(exc: BaseException) -> int:
    if isinstance(exc, kafka_errors.TopicAuthorizationFailedError | kafka_errors.ClusterAuthorizationFailedError):
        return ERROR_NOT_AUTHORIZED
    if isinstance(exc, kafka_errors.SaslAuthenticationFailed):
        return ERROR_NOT_AUTHENTICATED
    if isinstance(exc, kafka_errors.RequestTimedOutError):
        return ERROR_OUTCOME_UNKNOWN  # the broker may have appended it before the request timed out
    if getattr(exc, "retriable", False) or isinstance(exc, asyncio.TimeoutError):
        return ERROR_KAFKA_RETRIABLE
    return ERROR_KAFKA


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def raise_if_none_acknowledged(reports: Sequence[DeliveryReport], what: str, extra: Mapping[str, object]) -> None:
    """When the broker acknowledged none of ``reports``: 504 if any may still be written, 503 if none was."""
    if not reports or any(report.acknowledged for report in reports):
        return
    if any(report.error_code == ERROR_OUTCOME_UNKNOWN for report in reports):
        raise KafkaOutcomeUnknown(
            f"Kafka acknowledged none of the {len(reports)} {what} in time and some may still be written: "
            f"{next(r.error for r in reports if r.error_code == ERROR_OUTCOME_UNKNOWN)}",
            extra={**extra, "outcome_pending": False},
        )
    if all(report.error_code == ERROR_KAFKA_RETRIABLE for report in reports):
        raise KafkaUnavailable(f"Kafka acknowledged none of the {len(reports)} {what}: {reports[0].error}", extra=extra)


class ProducerService:
    """One aiokafka producer at a time, shared by every handler that writes business records.

    The sidecar's own traffic (audit, dead letters) goes through a second instance with its own role,
    so a problem there never breaks the business producer's sequence state.

    The lifecycle (connect in the background, watchdog, rebuild, fail fast, bounded waits, reports) lives
    here; the methods marked *engine* talk to the client and are what another Kafka client overrides
    (:class:`kafka_sidecar._kafka.rdkafka.RdKafkaProducerService`, ``kafka.producer.engine``).
    """

    engine = "aiokafka"

    def __init__(
        self,
        kafka: KafkaConfig,
        *,
        role: str = "producer",
        factory: ProducerFactory = AIOKafkaProducer,
        patient: bool = False,
    ) -> None:
        """``patient``: a send waits up to the request timeout for a (re)connection instead of failing at
        once — for writers in the background (audit, dead letters), where nobody waits on an answer."""
        self._kafka = kafka
        self._role = role
        self._factory = factory
        self._producer: Any = None
        self._connect_task: asyncio.Task[None] | None = None
        self._watchdog_task: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._connected = asyncio.Event()
        self._stopping = asyncio.Event()
        self._last_error: BaseException | None = None
        self._unreachable: str | None = None
        self._failed_probes = 0
        self._rebuilds = 0
        self._timeout_s = kafka.producer.request_timeout_ms / 1000
        self._probe_interval_s = kafka.producer.health_check_interval_ms / 1000
        self._fail_fast = kafka.producer.fail_fast
        self._topics_wanted: set[str] = set()
        self._patient = patient
        self._partitioner = Murmur2Partitioner()

    # -- state ---------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._producer is not None

    @property
    def timeout_s(self) -> float:
        """How long a send waits for acknowledgements (``request_timeout_ms``)."""
        return self._timeout_s

    @property
    def rebuilds(self) -> int:
        """How many times a broken producer was replaced by a fresh one."""
        return self._rebuilds

    @property
    def state(self) -> ProducerState:
        if self._stopping.is_set():
            return ProducerState.STOPPED
        if self._producer is None:
            return ProducerState.REBUILDING if self._rebuilds else ProducerState.CONNECTING
        if self._unreachable is not None:
            return ProducerState.UNREACHABLE
        return ProducerState.READY

    @property
    def last_error(self) -> str | None:
        if self._last_error is None:
            return None
        if isinstance(self._last_error, KafkaUnavailable):
            return self._last_error.detail
        return describe(self._last_error)

    def problem(self) -> str | None:
        """Why this producer cannot send now (None when it can)."""
        state = self.state
        where = self._kafka.bootstrap_servers
        if state is ProducerState.READY:
            return None
        if state is ProducerState.UNREACHABLE:
            return f"Kafka at {where} is unreachable: {self._unreachable}"
        if state is ProducerState.REBUILDING:
            return f"the {self._role} is being rebuilt after a fatal error: {self.last_error or 'reconnecting'}"
        return f"not connected to Kafka at {where}: {self.last_error or state.value}"

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Begin connecting in the background; never fails because the broker is down."""
        if self._connect_task is None:
            self._connect_task = asyncio.create_task(self._connect_loop(), name=f"kafka-{self._role}-connect")
        if self._watchdog_task is None:
            self._watchdog_task = asyncio.create_task(self._watchdog(), name=f"kafka-{self._role}-watchdog")

    async def wait_connected(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def ensure_topic(self, topic: str) -> None:
        """Create ``topic`` (if missing) as soon as this producer is connected, before it writes there."""
        self._topics_wanted.add(topic)

    async def _connect_loop(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            producer: Any = None
            try:
                producer = await self._open()
                await self._create_wanted_topics(producer)
            except asyncio.CancelledError:
                if producer is not None:  # stopped while connecting: close what was opened
                    await self._close(producer)
                raise
            except Exception as exc:
                previous = self.last_error
                self._last_error = await self._explain(exc)
                if self.last_error != previous:  # the first failure and every change of reason, not each retry
                    reason = self.last_error
                    if isinstance(self._last_error, kafka_errors.KafkaConnectionError):
                        reason = "no broker answered (connection refused, or the address is wrong)"
                    log.warning(
                        "Kafka unreachable at %s (%s): %s; retrying every few seconds, /health/ready answers 503 "
                        "until connected (check kafka.bootstrap_servers, KAFKA_BOOTSTRAP_SERVERS in the shipped "
                        "chains.yml)", self._kafka.bootstrap_servers, self._role, reason,
                    )  # fmt: skip
                else:
                    log.debug("Kafka still unreachable at %s (%s): %s", self._kafka.bootstrap_servers, self._role,
                              self.last_error)  # fmt: skip
                # Waiting on the stop event, not sleeping: aiokafka's stop() can swallow a cancellation,
                # so stopping must not depend on cancelling this task.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if self._stopping.is_set():
                await self._close(producer)
                return
            self._producer = producer
            self._last_error = None
            self._unreachable = None
            self._failed_probes = 0
            self._connected.set()
            log.info("Kafka %s (%s) connected to %s", self._role, self.engine, self._kafka.bootstrap_servers)
            return

    # -- engine: the aiokafka client -------------------------------------------------------------

    async def _open(self) -> Any:
        """*engine*: a client connected to the broker; raises (having closed it) when it cannot connect."""
        producer = self._factory(**producer_kwargs(self._kafka, self._role), partitioner=self._partitioner)
        try:
            await asyncio.wait_for(producer.start(), self._kafka.connect_timeout_ms / 1000)
        except BaseException:
            await _stop_quietly(producer)
            raise
        return producer

    async def _close(self, producer: Any, timeout: float | None = None) -> None:
        """*engine*: flush (at most ``timeout``) and close a client; never raises."""
        if timeout is None:
            await _stop_quietly(producer)
            return
        try:
            await asyncio.wait_for(_stop_quietly(producer), max(timeout, 0.01))
        except TimeoutError:
            log.error("Kafka %s did not flush within %.1fs; unacknowledged records were not reported as sent",
                      self._role, timeout)  # fmt: skip

    async def _verify_topics(self, producer: Any, topics: list[str]) -> None:
        """*engine*: create ``topics`` if missing and wait until the client has their metadata."""
        brokers = len(producer.client.cluster.brokers())
        await ensure_topics(self._kafka, self._role, topics, brokers)
        for topic in topics:
            await asyncio.wait_for(producer.partitions_for(topic), self._kafka.connect_timeout_ms / 1000)

    def _failure(self, producer: Any) -> BaseException | None:
        """*engine*: why the client can never send again (its sender died), or None."""
        sender_task = getattr(getattr(producer, "_sender", None), "sender_task", None)
        if sender_task is None or not sender_task.done():
            return None
        failure = None if sender_task.cancelled() else sender_task.exception()
        return failure or RuntimeError("the producer's sender task ended")

    async def _metadata_answered(self, producer: Any, timeout: float) -> bool:
        """*engine*: True when the broker answered a metadata request within ``timeout``."""
        return bool(await asyncio.wait_for(producer.client.force_metadata_update(), timeout))

    async def _create_wanted_topics(self, producer: Any) -> None:
        if not self._topics_wanted:
            return
        try:
            await self._verify_topics(producer, sorted(self._topics_wanted))
        except Exception as exc:  # the topic may be managed elsewhere; its writes report their own errors
            log.warning("Kafka %s: could not verify its topics %s: %s", self._role, sorted(self._topics_wanted),
                        describe(exc))  # fmt: skip

    async def _explain(self, exc: Exception) -> Exception:
        """aiokafka hides TLS and SASL causes behind 'Unable to bootstrap'; find the real one to report."""
        connection_failed: bool = isinstance(exc, kafka_errors.KafkaConnectionError)
        if not connection_failed or self._kafka.security.protocol == "PLAINTEXT":
            return exc
        try:
            reason = await diagnose_connection(self._kafka, self._kafka.connect_timeout_ms / 1000)
        except Exception:
            return exc
        return KafkaUnavailable(reason) if reason else exc

    async def _watchdog(self) -> None:
        """Probe the broker while connected: marks it unreachable (fail fast) and back; rebuilds a dead sender."""
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._probe_interval_s)
            producer = self._producer
            if producer is None or self._stopping.is_set():
                continue
            failure = self._failure(producer)
            if failure is not None:
                self._retire(producer, failure)
                continue
            await self.probe(self._kafka.connect_timeout_ms / 1000)

    def _retire(self, producer: Any, cause: BaseException) -> None:
        """Replace a broken producer with a fresh one (new producer id); idempotent per instance."""
        if producer is not self._producer or self._stopping.is_set():
            return
        self._producer = None
        self._connected.clear()
        self._rebuilds += 1
        self._last_error = cause
        log.error("Kafka %s hit a fatal error (%s); rebuilding it with a new producer id", self._role,
                  describe(cause))  # fmt: skip
        task = asyncio.create_task(self._close_retired(producer), name=f"kafka-{self._role}-retire")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
        if self._connect_task is None or self._connect_task.done():
            self._connect_task = asyncio.create_task(self._connect_loop(), name=f"kafka-{self._role}-connect")

    async def _close_retired(self, producer: Any) -> None:
        await self._close(producer, self._kafka.connect_timeout_ms / 1000)

    async def stop(self, flush_timeout: float | None = None) -> None:
        """Flush what is buffered and close. Waits at most ``flush_timeout`` (default: the request timeout),
        because a record the broker has not taken by then would have failed anyway."""
        flush_timeout = self._timeout_s + 1 if flush_timeout is None else flush_timeout
        deadline = time.monotonic() + max(flush_timeout, 0.0)
        self._stopping.set()
        for task in (self._connect_task, self._watchdog_task):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=min(self._kafka.connect_timeout_ms / 1000 + 1, flush_timeout))
        producer, self._producer = self._producer, None
        if producer is not None:
            await self._close(producer, max(deadline - time.monotonic(), 0.01))
        if self._retiring:
            await asyncio.wait(self._retiring, timeout=max(deadline - time.monotonic(), 0.01))

    # -- broker questions ----------------------------------------------------------------------

    async def probe(self, timeout: float) -> str | None:
        """None when the broker answers a metadata request within ``timeout``; else the reason.

        The answer also moves the producer in and out of the *unreachable* state that fails sends fast.
        """
        producer = self._producer
        if producer is None:
            return self.problem()
        try:
            ok = await self._metadata_answered(producer, timeout)
        except Exception as exc:
            reason: str | None = f"Kafka metadata request failed: {describe(exc)}"
        else:
            reason = None if ok else f"Kafka at {self._kafka.bootstrap_servers} did not answer a metadata request"
        if producer is self._producer:
            self._note_probe(reason)
        return reason

    def _note_probe(self, reason: str | None) -> None:
        """Unreachable after :data:`PROBES_TO_FAIL` failed probes in a row (one slow answer is not an
        outage); reachable again on the first answer."""
        if reason is None:
            if self._unreachable is not None:
                log.info("Kafka %s: broker reachable again", self._role)
            self._failed_probes = 0
            self._unreachable = None
            return
        self._failed_probes += 1
        if self._failed_probes >= PROBES_TO_FAIL:
            if self._unreachable is None:
                log.warning("Kafka %s: broker unreachable (%s); sends fail fast until it answers", self._role, reason)
            self._unreachable = reason

    async def partitions_for(self, topic: str) -> set[int]:
        producer = self._require()
        try:
            partitions: set[int] = await asyncio.wait_for(producer.partitions_for(topic), self._timeout_s + 1)
        except kafka_errors.UnknownTopicOrPartitionError as exc:
            # aiokafka says "unknown topic" whenever it has no metadata for it, a broker it cannot reach
            # included: only a broker that answers can tell us a topic is missing.
            unreachable = await self.probe(self._kafka.connect_timeout_ms / 1000)
            if unreachable is not None:
                raise KafkaUnavailable(f"no metadata for topic {topic!r}: {unreachable}") from exc
            raise NotFound(f"topic {topic!r} does not exist", field="topic", v2_error_code=40401) from exc
        except kafka_errors.TopicAuthorizationFailedError as exc:
            raise NotFound(f"topic {topic!r} is not accessible: not authorized", field="topic") from exc
        except (TimeoutError, kafka_errors.KafkaError) as exc:
            raise KafkaUnavailable(f"no metadata for topic {topic!r}: {describe(exc)}") from exc
        return partitions

    # -- sending -------------------------------------------------------------------------------

    async def send_batch(
        self, records: Sequence[OutgoingRecord], *, ack_timeout: float | None = None
    ) -> list[DeliveryReport]:
        """Send every record, wait for every ack or failure (at most ``ack_timeout``, default the request
        timeout), and report them in order. Raises :class:`KafkaUnavailable` — nothing sent — when there
        is no usable producer."""
        producer, wait_s = await self._ready_to_send(records, ack_timeout)
        reports = await self._send(producer, records, wait_s)
        if any(report.acknowledged for report in reports):
            self._note_probe(None)
        return reports

    async def _ready_to_send(self, records: Sequence[OutgoingRecord], ack_timeout: float | None) -> tuple[Any, float]:
        """The client to send ``records`` with (a patient producer waits for one) and how long to wait for
        their acks; raises :class:`KafkaUnavailable` when there is no usable client, and refuses a record
        too large to send."""
        if self._patient and self._producer is None and not self._stopping.is_set():
            await self.wait_connected(self._timeout_s)
        producer = self._require()
        check_sizes(records, self._kafka.producer.max_request_size)
        return producer, (self._timeout_s + 1) if ack_timeout is None else ack_timeout

    async def _send(self, producer: Any, records: Sequence[OutgoingRecord], wait_s: float) -> list[DeliveryReport]:
        """*engine*: hand every record to the client and report each (ack, failure, or outcome unknown
        after ``wait_s``); retires the client on a fatal error."""
        deadline = time.monotonic() + wait_s
        pending: list[asyncio.Future[Any] | BaseException] = []
        try:
            # One timeout for the whole loop (no task per record): send() waits only for metadata or room.
            async with asyncio.timeout(wait_s):
                for record in records:
                    try:
                        pending.append(
                            await producer.send(
                                record.topic,
                                value=record.value,
                                key=record.key,
                                partition=record.partition,
                                timestamp_ms=record.timestamp_ms,
                                headers=list(record.headers) or None,
                            )
                        )
                    except Exception as exc:
                        pending.append(exc)  # never appended to a batch: not written
        except TimeoutError:
            not_sent = kafka_errors.KafkaTimeoutError(f"not sent: no room or metadata within {wait_s:.0f}s")
            pending.extend(not_sent for _ in range(len(records) - len(pending)))
        futures = [p for p in pending if isinstance(p, asyncio.Future)]
        if futures:
            # aiokafka's idempotent producer never expires a batch: bound the wait ourselves, and stop
            # waiting at once when the producer turns out to be broken. One completion for the batch.
            completion = _Completion(asyncio.get_running_loop(), len(futures))
            for future in futures:
                future.add_done_callback(completion.settled)
            await wait_settled(completion.done, deadline, lambda: producer is not self._producer)
        fatal = next((exc for exc in _failures(futures) if is_fatal(exc)), None)
        if fatal is not None:
            self._retire(producer, fatal)
        broken = producer is not self._producer
        return [_report(record, outcome, broken) for record, outcome in zip(records, pending, strict=True)]

    async def send_bulk(self, records: Sequence[OutgoingRecord], *, ack_timeout: float | None = None) -> BulkOutcome:
        """Send every record and wait for every ack or failure like :meth:`send_batch`, for traffic that needs
        counts, not a report per record (the sidecar's own: audit). The records are handed to the client
        :data:`BULK_TURN` at a time, one turn of the event loop each. The aiokafka engine packs them into one
        batch per partition (``create_batch``): one completion per batch instead of a future, a callback and
        a report per record, whose burst on the event loop delayed the requests around it (docs/benchmarks.md,
        "The audit's write, one batch per partition"). Raises :class:`KafkaUnavailable` like ``send_batch``."""
        producer, wait_s = await self._ready_to_send(records, ack_timeout)
        outcome = await self._send_bulk(producer, records, wait_s) if records else BulkOutcome(0, 0)
        if outcome.acknowledged:
            self._note_probe(None)
        return outcome

    async def _send_bulk(self, producer: Any, records: Sequence[OutgoingRecord], wait_s: float) -> BulkOutcome:
        """*engine*: ``records`` appended to one aiokafka batch per partition (a full one is handed over and a
        new one begun), each batch's one future awaited, and the records counted by their batch's outcome;
        retires the client on a fatal error. A record in a batch not handed over in time was not written.
        An empty batch takes a record of any size (aiokafka's builder, as its ``send()``), so a full batch
        is followed by one that takes the record at hand."""
        deadline = time.monotonic() + wait_s
        sent: list[tuple[asyncio.Future[Any], int]] = []  # a handed-over batch's future and its record count
        errors: list[BaseException] = []  # why batches were not handed over
        building: dict[tuple[str, int], _Building] = {}
        try:
            async with asyncio.timeout(wait_s):
                topics = {topic: sorted(await producer.partitions_for(topic)) for topic in {r.topic for r in records}}
                partition_of = _BulkPartitions(self._partitioner, topics)
                for start in range(0, len(records), BULK_TURN):
                    if start:
                        await asyncio.sleep(0)  # one turn of the loop per BULK_TURN records
                    for record in records[start : start + BULK_TURN]:
                        where = (record.topic, partition_of(record))
                        batch = building.get(where)
                        if batch is None:
                            batch = building[where] = _Building(producer.create_batch())
                        if batch.append(record):
                            continue
                        sent.append(await batch.hand_over(producer, where))  # full: handed over, another begun
                        batch = building[where] = _Building(producer.create_batch())
                        batch.append(record)  # an empty batch takes any record
                while building:
                    where, batch = building.popitem()
                    if batch.count:
                        sent.append(await batch.hand_over(producer, where))
        except TimeoutError:
            errors.append(kafka_errors.KafkaTimeoutError(f"not sent: no room or metadata within {wait_s:.0f}s"))
        except kafka_errors.KafkaError as exc:  # no metadata for a topic, the client closed: the rest not sent
            errors.append(exc)
        futures = [future for future, _ in sent]
        if futures:
            completion = _Completion(asyncio.get_running_loop(), len(futures))
            for future in futures:
                future.add_done_callback(completion.settled)
            await wait_settled(completion.done, deadline, lambda: producer is not self._producer)
        failures = _failures(futures)
        fatal = next((exc for exc in failures if is_fatal(exc)), None)
        if fatal is not None:
            self._retire(producer, fatal)
        acknowledged = sum(count for future, count in sent if _succeeded(future))
        failed = len(records) - acknowledged
        if not failed:
            return BulkOutcome(acknowledged, 0)
        first = next(iter((*errors, *failures)), None)
        why = describe(first) if first is not None else "outcome unknown: no acknowledgement in time"
        return BulkOutcome(acknowledged, failed, why)

    def _require(self) -> Any:
        producer = self._producer
        if producer is None or (self._fail_fast and self._unreachable is not None):
            raise KafkaUnavailable(f"{self.problem()}; nothing was written")
        failure = self._failure(producer)
        if failure is not None:  # broke after the last turn of the loop (librdkafka's fatal error callback): unused
            self._retire(producer, failure)
            raise KafkaUnavailable(f"{self.problem()}; nothing was written")
        return producer


_KEY, _VALUE, _HEADERS = attrgetter("key"), attrgetter("value"), attrgetter("headers")


def check_sizes(records: Sequence[OutgoingRecord], max_size: int) -> None:
    """A record larger than ``max_request_size`` rejects the whole batch (422 naming it) before anything is sent."""
    if _size_bound(records) <= max_size:  # no record can be too large: no Python step per record
        return
    for index, record in enumerate(records):
        size = len(record.key or b"") + len(record.value or b"") + sum(len(k) + len(v) for k, v in record.headers)
        if size > max_size:
            raise ValidationFailed(
                f"record is {size} bytes, more than max_request_size {max_size}", field=f"records[{index}]"
            )


def _size_bound(records: Sequence[OutgoingRecord]) -> int:
    """At least the size of the largest record: its largest key, value and headers added up (in C; the
    headers' sizes once per distinct headers tuple, which a request's records usually share)."""
    keys = max(map(len, filter(None, map(_KEY, records))), default=0)
    values = max(map(len, filter(None, map(_VALUE, records))), default=0)
    every = list(map(_HEADERS, records))
    distinct = dict(zip(map(id, every), every, strict=True)).values()
    headers = max((sum(len(k) + len(v) for k, v in each) for each in distinct), default=0)
    return keys + values + headers


class _Completion:
    """One future for a whole batch: resolved when its last record settles or one fails fatally."""

    __slots__ = ("done", "left")

    def __init__(self, loop: asyncio.AbstractEventLoop, count: int) -> None:
        self.done: asyncio.Future[None] = loop.create_future()
        self.left = count

    def settled(self, future: asyncio.Future[Any]) -> None:
        self.left -= 1
        if self.done.done():
            return
        if self.left == 0 or (not future.cancelled() and _is_fatal_failure(future.exception())):
            self.done.set_result(None)


class _Building:
    """An aiokafka batch being filled by a bulk send, and how many records are in it."""

    __slots__ = ("builder", "count")

    def __init__(self, builder: Any) -> None:
        self.builder = builder
        self.count = 0

    def append(self, record: OutgoingRecord) -> bool:
        """Whether ``record`` went in (``False``: the batch is full)."""
        headers = list(record.headers) if record.headers else []  # aiokafka's builder takes a list only
        if self.builder.append(key=record.key, value=record.value, timestamp=record.timestamp_ms,
                               headers=headers) is None:  # fmt: skip
            return False
        self.count += 1
        return True

    async def hand_over(self, producer: Any, where: tuple[str, int]) -> tuple[asyncio.Future[Any], int]:
        """The batch queued for sending to ``where`` (topic, partition): its future and its record count."""
        return await producer.send_batch(self.builder, where[0], partition=where[1]), self.count


class _BulkPartitions:
    """The partition of each record of a bulk send: its own, else Kafka's default partitioner's for its key
    (murmur2), and for the records without a key one partition per topic, picked at random once, so they
    fill one batch."""

    __slots__ = ("_partitioner", "_topics", "_unkeyed")

    def __init__(self, partitioner: Murmur2Partitioner, topics: Mapping[str, Sequence[int]]) -> None:
        self._partitioner = partitioner
        self._topics = topics
        self._unkeyed: dict[str, int] = {}

    def __call__(self, record: OutgoingRecord) -> int:
        if record.partition is not None:
            return record.partition
        partitions = self._topics[record.topic]
        if record.key is not None:
            return self._partitioner(record.key, partitions, partitions)
        chosen = self._unkeyed.get(record.topic)
        if chosen is None:
            chosen = self._unkeyed[record.topic] = self._partitioner(None, partitions, partitions)
        return chosen


def _succeeded(future: asyncio.Future[Any]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None


def _is_fatal_failure(exc: BaseException | None) -> bool:
    return exc is not None and is_fatal(exc)


async def wait_settled(done: asyncio.Future[None], deadline: float, broken: Callable[[], bool]) -> None:
    """Wait for ``done`` until ``deadline``; give up early when ``broken()`` says the client was retired."""
    while not done.done():
        left = deadline - time.monotonic()
        if left <= 0 or broken():
            return
        await asyncio.wait({done}, timeout=min(left, 0.5))


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _failures(futures: Sequence[asyncio.Future[Any]]) -> list[BaseException]:
    return [exc for f in futures if f.done() and not f.cancelled() and (exc := f.exception()) is not None]


def _report(record: OutgoingRecord, outcome: asyncio.Future[Any] | BaseException, broken: bool) -> DeliveryReport:
    if isinstance(outcome, BaseException):
        return DeliveryReport(record.topic, record.partition, None, error_code_for(outcome), describe(outcome))
    if outcome.done() and not outcome.cancelled() and outcome.exception() is None:
        metadata = outcome.result()
        return DeliveryReport(record.topic, metadata.partition, metadata.offset, timestamp_ms=metadata.timestamp)
    if broken:
        failure = outcome.exception() if outcome.done() and not outcome.cancelled() else None
        if failure is not None and is_fatal(failure):
            # The broker refused this batch (bad sequence, unknown producer id, fenced): not appended.
            return DeliveryReport(
                record.topic, record.partition, None, ERROR_KAFKA_RETRIABLE,
                f"not written: {describe(failure)}; the producer is being rebuilt with a new producer id",
            )  # fmt: skip
        return DeliveryReport(
            record.topic, record.partition, None, ERROR_OUTCOME_UNKNOWN,
            "outcome unknown: the producer broke while the record was in flight; it is being rebuilt",
        )  # fmt: skip
    if not outcome.done() or outcome.cancelled():
        return DeliveryReport(
            record.topic, record.partition, None, ERROR_OUTCOME_UNKNOWN,
            "outcome unknown: no acknowledgement in time; the record may still be written",
        )  # fmt: skip
    exc = outcome.exception()
    assert exc is not None
    return DeliveryReport(record.topic, record.partition, None, error_code_for(exc), describe(exc))


async def _stop_quietly(producer: Any) -> None:
    try:
        await producer.stop()
    except Exception as exc:
        log.debug("stopping a Kafka producer failed: %s", describe(exc))
