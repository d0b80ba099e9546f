"""Audit records and where they go: a Kafka topic (keyed by correlation id) or the log.

Records are queued (bounded) and written by a background task, so auditing never slows or fails the
exchange that caused it. A whole batch can be queued as one :class:`DeferredRecords` item: the
request path then only enqueues, and the writer task builds the records. A full queue, a refused
write or an unreachable broker is counted and logged, never raised. Audit records carry metadata
only: never the record value, never credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import msgspec

from kafka_sidecar.plugin import Metrics, OutgoingRecord, ProducerService
from kafka_sidecar.plugin import describe_error as describe

log = logging.getLogger(__name__)

WRITE_SLICE = 64
"""Audit records built (ids, JSON) in one turn of the event loop: a write of a linger's worth is built in
slices, so requests are not held up behind it (an audit record is built in about 4 µs). The whole write
then goes to the producer's ``send_bulk``, which hands it to the client in turns of its own (one batch
per partition on aiokafka; docs/benchmarks.md, "The audit's write, one batch per partition")."""
audit_log = logging.getLogger("kafka_sidecar.audit")

AuditType = Literal["PRODUCER", "REACTIVE_CONSUMER", "DEAD_LETTER", "ADMIN"]
AuditTarget = Literal["kafka", "log"]
KeyMode = Literal["hash", "omit"]
AuditGranularity = Literal["batch", "record"]
AuditStatus = Literal["SUCCESS", "FAILURE"]


class AuditRecord(msgspec.Struct, frozen=True):
    """One audit record, before its id, timestamp and JSON are made by the writer. A frozen
    ``msgspec.Struct``, built in C (a frozen dataclass's generated ``__init__`` of 15 fields cost about 7 µs
    per request with the CPU caches cold): keyword or positional construction, ``==``; a changed copy is
    ``msgspec.structs.replace``."""

    audit_type: AuditType
    service_id: str
    status: AuditStatus
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    correlation_id: str | None = None
    traceability_id: str | None = None
    key: str | None = None
    outcome: str | None = None
    error: str | None = None
    action: str | None = None
    timestamp_ms: int = 0
    id: str = ""
    batch: Mapping[str, object] | None = None
    """Batch granularity: ``{"records": n, "failed": f, "offsets": {partition: [first, last]}}``."""

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "id": self.id or str(uuid.uuid4()),
            "serviceId": self.service_id,
            "auditType": self.audit_type,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "correlationId": self.correlation_id,
            "traceabilityId": self.traceability_id,
            "key": self.key,
            "auditStatus": self.status,
            "timestamp": self.timestamp_ms or int(time.time() * 1000),
        }
        for name, value in (("outcome", self.outcome), ("error", self.error), ("action", self.action)):
            if value is not None:
                body[name] = value
        if self.batch is not None:
            body["batch"] = self.batch
        return body


class _AuditJson(msgspec.Struct, omit_defaults=True, rename="camel", gc=False):
    """An audit record as written: every field below ``timestamp`` always (``null`` when unset), the
    rest only when set; the same keys in the same order as :meth:`AuditRecord.to_json`."""

    id: str
    service_id: str
    audit_type: str
    topic: str | None
    partition: int | None
    offset: int | None
    correlation_id: str | None
    traceability_id: str | None
    key: str | None
    audit_status: str
    timestamp: int
    outcome: str | None = None
    error: str | None = None
    action: str | None = None
    batch: Mapping[str, object] | None = None


_json_lines = msgspec.json.Encoder().encode_lines


def audit_json(records: Sequence[AuditRecord], now_ms: int) -> list[bytes]:
    """Each record's JSON (UTF-8), as :meth:`AuditRecord.to_json` gives it, encoded in one C call: a
    missing ``id`` is a fresh version 4 UUID, a missing ``timestamp_ms`` is ``now_ms``."""
    ids = uuid4_texts(len(records))
    wire = [
        _AuditJson(r.id or new_id, r.service_id, r.audit_type, r.topic, r.partition, r.offset, r.correlation_id,
                   r.traceability_id, r.key, r.status, r.timestamp_ms or now_ms, r.outcome, r.error, r.action, r.batch)
        for r, new_id in zip(records, ids, strict=True)
    ]  # fmt: skip
    # JSON text never holds a raw newline (it is escaped inside strings): one line per record
    return _json_lines(wire).split(b"\n")[:-1]


def uuid4_texts(count: int) -> list[str]:
    """``count`` random (version 4) UUIDs as text, from one ``os.urandom`` call."""
    raw = os.urandom(16 * count).hex()
    texts = []
    for start in range(0, 32 * count, 32):
        h = raw[start : start + 32]
        variant = "89ab"[int(h[16], 16) & 3]
        texts.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}")
    return texts


@dataclass(frozen=True, slots=True)
class DeferredRecords:
    """``count`` audit records that the writer task builds: ``build(n)`` yields the first ``n`` of them."""

    count: int
    build: Callable[[int], Iterable[AuditRecord]]


def audit_key(key: bytes | None, mode: KeyMode) -> str | None:
    """The key as audited: a SHA-256 hex digest, or nothing."""
    if key is None or mode == "omit":
        return None
    return "sha256:" + hashlib.sha256(key).hexdigest()


class AuditSink:
    """A bounded queue drained by one task into the audit topic or the log."""

    def __init__(
        self,
        producer: ProducerService,
        metrics: Metrics,
        *,
        target: AuditTarget,
        topic: str,
        queue_size: int,
        batch_size: int = 500,
        linger_s: float = 0.0,
        write_slice: int = WRITE_SLICE,
    ) -> None:
        self._producer = producer
        self._metrics = metrics
        self.target = target
        self.topic = topic
        self._queued: list[AuditRecord | DeferredRecords] = []
        """Waiting for the writer, which takes them all at once (one wake-up per drain, not one per item)."""
        self._wakeup: asyncio.Future[None] | None = None
        self._idle = asyncio.Event()
        """Set while every queued record is written or failed."""
        self._idle.set()
        self._capacity = queue_size
        self._pending = 0
        self._write_slice = write_slice
        self._batch_size = batch_size
        self._linger_s = linger_s
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.failed = 0
        self.dropped = 0

    def _count(self, result: str, amount: int = 1) -> None:
        if self._metrics.enabled:
            self._metrics.registry.counter(
                "kafka_sidecar_audit_records_total", "Audit records by target and result.", ("target", "result")
            ).inc(self.target, result, amount=amount)

    def submit(self, record: AuditRecord) -> None:
        """Queue a record; never blocks, never raises."""
        if self._pending >= self._capacity:
            self._drop(1)
            return
        self._pending += 1
        self._enqueue(record)

    def submit_deferred(self, deferred: DeferredRecords) -> None:
        """Queue ``deferred.count`` records built later by the writer (as many as there is room for)."""
        room = self._capacity - self._pending
        accepted = min(room, deferred.count)
        if accepted > 0:
            self._pending += accepted
            self._enqueue(deferred if accepted == deferred.count else DeferredRecords(accepted, deferred.build))
        if accepted < deferred.count:
            self._drop(deferred.count - max(accepted, 0))

    def _enqueue(self, item: AuditRecord | DeferredRecords) -> None:
        self._queued.append(item)
        self._idle.clear()
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def not_built(self, error: Exception) -> None:
        """An exchange whose audit records could not be built: counted as one dropped, logged like a drop."""
        self._drop(1, f"building audit records failed ({type(error).__name__}: {error})")

    def _drop(self, amount: int, why: str = "audit queue is full") -> None:
        before = self.dropped
        self.dropped += amount
        self._count("dropped", amount)
        if before == 0 or before // 1000 != self.dropped // 1000:
            log.error("%s: %d audit records dropped so far", why, self.dropped)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="audit-writer")

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Write what is queued (bounded by ``drain_timeout``), then stop."""
        task, self._task = self._task, None
        if task is None:
            return
        cancelled = False
        try:
            await asyncio.wait_for(self._idle.wait(), max(drain_timeout, 0.0))
        except (TimeoutError, asyncio.CancelledError) as exc:
            # Out of time (our own drain timeout, or the sidecar's shutdown budget cancelled us).
            cancelled = isinstance(exc, asyncio.CancelledError)
            left = self._pending
            self.dropped += left
            self._count("dropped", left)
            log.error("audit: %d records dropped at shutdown (not written in time)", left)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if cancelled:
            raise asyncio.CancelledError

    async def flushed(self, timeout: float) -> bool:
        """Wait until every queued record is written or failed (tests, shutdown)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queued:
                self._wakeup = loop.create_future()
                await self._wakeup
            if self._linger_s > 0 and self._pending < self._batch_size:
                # let the next batches' audit records join this write: one produce request, not one each
                await asyncio.sleep(self._linger_s)
            await self._write_items(self._take())
            if self._pending == 0:
                self._idle.set()

    def _take(self) -> list[AuditRecord | DeferredRecords]:
        """The queued items of the next write: all of them, or the first ``batch_size`` records' worth."""
        queued = self._queued
        if self._pending <= self._batch_size:  # counts every queued record (and those being written)
            self._queued = []
            return queued
        size = taken = 0
        while taken < len(queued) and (taken == 0 or size + _size(queued[taken]) <= self._batch_size):
            size += _size(queued[taken])
            taken += 1
        self._queued = queued[taken:]
        return queued[:taken]

    async def _write_items(self, items: list[AuditRecord | DeferredRecords]) -> None:
        size = sum(_size(item) for item in items)
        counted = self.written + self.failed
        try:
            await self._write(items)
        except Exception as exc:
            lost = size - (self.written + self.failed - counted)  # the log target counts its slices as it goes
            self.failed += lost
            self._count("failed", lost)
            log.error("audit: writing %d records to %s failed: %s", lost, self.target, describe(exc))
        finally:
            self._pending -= size

    async def _write(self, items: list[AuditRecord | DeferredRecords]) -> None:
        """Build the records a slice per turn of the event loop (requests waiting on the loop get in
        between), then write them all: one ``send_bulk``, or a log line each."""
        outgoing: list[OutgoingRecord] = []
        topic, now_ms = self.topic, int(time.time() * 1000)
        for index, part in enumerate(_slices(items, self._write_slice)):
            if index:
                await asyncio.sleep(0)
            batch = _expand(part)
            texts = audit_json(batch, now_ms)
            if self.target == "log":
                for text in texts:
                    audit_log.info(text.decode("utf-8"))
                self.written += len(batch)
                self._count("written", len(batch))
                continue
            outgoing += [
                OutgoingRecord(topic, record.correlation_id.encode("utf-8") if record.correlation_id else None, text)
                for record, text in zip(batch, texts, strict=True)
            ]
        if not outgoing:
            return
        outcome = await self._producer.send_bulk(outgoing)
        self.written += outcome.acknowledged
        self._count("written", outcome.acknowledged)
        if outcome.failed:
            self.failed += outcome.failed
            self._count("failed", outcome.failed)
            log.error("audit: %d records not acknowledged by %s: %s", outcome.failed, self.topic, outcome.error)


def _slices(items: list[AuditRecord | DeferredRecords], most: int) -> Iterator[list[AuditRecord | DeferredRecords]]:
    """``items`` in order, in runs of at most ``most`` records (an item bigger than that is a run of its own)."""
    part: list[AuditRecord | DeferredRecords] = []
    size = 0
    for item in items:
        if part and size + _size(item) > most:
            yield part
            part, size = [], 0
        part.append(item)
        size += _size(item)
    if part:
        yield part


def _size(item: AuditRecord | DeferredRecords) -> int:
    return item.count if isinstance(item, DeferredRecords) else 1


def _expand(items: list[AuditRecord | DeferredRecords]) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    for item in items:
        if isinstance(item, DeferredRecords):
            records.extend(item.build(item.count))
        else:
            records.append(item)
    return records
