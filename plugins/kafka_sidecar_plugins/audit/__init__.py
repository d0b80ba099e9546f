"""Audit: one record per produce request and per delivered batch (or per record), per dead letter, per admin action.

``granularity: batch`` (the default) writes one audit record per produce request and per consumed
batch, carrying the record count, the failures and the offset range of each partition, so auditing
costs one Kafka record per request instead of one per record; ``granularity: record`` writes one audit
record per produced or delivered record (keyed by each record's own correlation id).

The ``audit`` middleware reads what its exchange produced (``PRODUCED``) or delivered (``DELIVERED``)
after the terminal ran; dead letters and admin actions arrive on the event bus. Records go to the
audit topic (default ``sidecar-audit``, keyed by correlation id) or to the ``kafka_sidecar.audit``
logger, asynchronously; see :mod:`kafka_sidecar_plugins.audit._sink`.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from kafka_sidecar.plugin import (
    CORRELATION,
    CORRELATION_HEADER,
    DELIVERED,
    PRODUCED,
    TRACEABILITY_HEADER,
    AddedHeaders,
    AdminAction,
    ConsumedRecord,
    DeadLettered,
    DeliveryReport,
    Exchange,
    HandlerSpec,
    Next,
    Produced,
    RecordOutcome,
    Reply,
    Resources,
    ServiceSpec,
    StashKey,
    UniformOutcomes,
    hookimpl,
)
from kafka_sidecar_plugins.audit._sink import (
    AuditGranularity,
    AuditRecord,
    AuditSink,
    AuditStatus,
    AuditTarget,
    AuditType,
    DeferredRecords,
    KeyMode,
    audit_key,
)

log = logging.getLogger(__name__)
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True, slots=True)
class AuditConfig:
    target: AuditTarget = field(default="kafka", metadata={"doc": "'kafka' (the audit topic) or 'log'."})
    topic: str = field(default="sidecar-audit", metadata={"doc": "Audit topic when the target is kafka."})
    key: KeyMode = field(default="hash", metadata={"doc": "Record keys in audit records: 'hash' (SHA-256) or 'omit'."})
    granularity: AuditGranularity = field(
        default="batch",
        metadata={"doc": "'batch': one audit record per request or consumed batch; 'record': one per record."},
    )
    queue_size: int = field(
        default=10000, metadata={"doc": "Audit records waiting to be written; more are dropped (counted, logged)."}
    )
    linger_ms: int = field(
        default=500,
        metadata={
            "doc": "Wait this long after an audit record is queued so the ones that follow are written with it "
            "(one produce request for many: each write has a fixed cost of 0.3-0.45 ms CPU; 0 writes each at once)."
        },
    )
    produced: bool = field(default=True, metadata={"doc": "Audit produced records."})
    delivered: bool = field(default=True, metadata={"doc": "Audit records delivered to the backend."})
    dead_letters: bool = field(default=True, metadata={"doc": "Audit dead-letter writes."})
    admin_actions: bool = field(default=True, metadata={"doc": "Audit admin actions."})

    def __post_init__(self) -> None:
        if self.queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if self.linger_ms < 0:
            raise ValueError("linger_ms must not be negative")


class AuditSinks:
    """The audit sinks of one sidecar, a service the plugin declares (built at assembly, before handlers).

    One sink per distinct ``audit`` config: handlers with the same config share a sink (one writer task,
    one subscription to dead letters and admin actions), so no handler's build order decides anything.
    """

    def __init__(self, resources: Resources) -> None:
        self._producer = resources.internal_producer
        self._metrics = resources.metrics
        self._sinks: dict[AuditConfig, AuditSink] = {}

    def get(self, config: AuditConfig) -> tuple[AuditSink, bool]:
        """The sink for ``config``, and whether it was just made."""
        found = self._sinks.get(config)
        if found is not None:
            return found, False
        if config.target == "kafka":
            self._producer.ensure_topic(config.topic)
        sink = self._sinks[config] = AuditSink(
            self._producer,
            self._metrics,
            target=config.target,
            topic=config.topic,
            queue_size=config.queue_size,
            linger_s=config.linger_ms / 1000,
        )
        return sink, True

    def __iter__(self) -> Iterator[AuditSink]:
        return iter(self._sinks.values())

    def __len__(self) -> int:
        return len(self._sinks)

    async def flushed(self, timeout: float) -> bool:
        """Every sink wrote or failed what it had queued (tests, benchmarks)."""
        results = [await sink.flushed(timeout) for sink in self._sinks.values()]
        return all(results)


AUDIT_SINKS: StashKey[AuditSinks] = StashKey("audit.sinks")


def _header(headers: Sequence[tuple[str, bytes]], name: str) -> str | None:
    lowered = name.lower()
    found = None
    for key, value in headers:
        if key.lower() == lowered:
            found = value.decode("utf-8", "replace")
    return found


_RECORD, _STATUS = attrgetter("record"), attrgetter("status")
_PARTITION, _OFFSET = attrgetter("partition"), attrgetter("offset")


def _widen(ranges: dict[int, list[int]], partition: int, offset: int) -> None:
    span = ranges.get(partition)
    if span is None:
        ranges[partition] = [offset, offset]
    elif offset < span[0]:
        span[0] = offset
    elif offset > span[1]:
        span[1] = offset


class AuditHandler:
    def __init__(self, config: AuditConfig, resources: Resources) -> None:
        self._config = config
        self._service_id = resources.config.service.id
        sink, made = resources.services[AUDIT_SINKS].get(config)
        if made:  # handlers sharing the sink share its config too: one subscription formats the same
            if config.dead_letters:
                resources.events.subscribe(DeadLettered, self._dead_lettered)
            if config.admin_actions:
                resources.events.subscribe(AdminAction, self._admin_action)
        self.sink = sink

    async def start(self) -> None:
        await self.sink.start()

    async def stop(self) -> None:
        await self.sink.stop()

    async def __call__(self, exchange: Exchange, call_next: Next) -> Reply:
        try:
            return await call_next(exchange)
        finally:
            try:
                self._audit_exchange(exchange)
            except Exception as exc:  # the exchange is not affected; the loss is counted and logged
                log.debug("audit: building audit records failed", exc_info=True)
                self.sink.not_built(exc)

    def _audit_exchange(self, exchange: Exchange) -> None:
        ids = exchange.stash.get(CORRELATION)
        default_cid = ids.correlation_id if ids is not None and ids.correlation_id else None
        default_tid = ids.traceability_id if ids is not None else None
        produced = exchange.stash.get(PRODUCED)
        batch = self._config.granularity == "batch"
        now_ms = int(time.time() * 1000)
        if produced is not None and self._config.produced and produced.records:
            if len(produced.records) != len(produced.reports):
                raise ValueError(f"{len(produced.records)} produced records but {len(produced.reports)} reports")
            if batch:  # built now, from the reports while they are fresh: nothing of the request waits for the write
                self.sink.submit(self._produced_batch(produced.topic, produced.reports, default_cid, default_tid,
                                                      now_ms))  # fmt: skip
            else:  # the writer task builds the records (and their ids, JSON)
                build = functools.partial(self._produced, produced, default_cid, default_tid, now_ms)
                self.sink.submit_deferred(DeferredRecords(len(produced.records), build))
        outcomes = exchange.stash.get(DELIVERED) if self._config.delivered else None
        if outcomes:
            if batch:
                # Built now (a few C passes over the batch): a deferred build would keep the batch's records,
                # values and all, alive for the audit's linger (~85,000 records at 170,000 a second: +200 MB
                # of RSS and a page fault every six records; docs/benchmarks.md, "The chain's cost on the
                # reactive path").
                self.sink.submit(self._delivered_batch(outcomes, default_cid, default_tid, now_ms))
            else:
                build = functools.partial(self._delivered, outcomes, exchange.added_headers, now_ms)
                self.sink.submit_deferred(DeferredRecords(len(outcomes), build))

    def _produced_batch(
        self,
        topic: str,
        reports: Sequence[DeliveryReport],
        cid: str | None,
        tid: str | None,
        timestamp_ms: int,
    ) -> AuditRecord:
        """One audit record for a whole produce request, from its delivery reports."""
        ranges: dict[int, list[int]] = {}
        failed = 0
        error: str | None = None
        for report in reports:
            if report.acknowledged and report.partition is not None and report.offset is not None:
                _widen(ranges, report.partition, report.offset)
            else:
                failed += 1
                error = error or report.error or f"error code {report.error_code}"
        return self._batch_record("PRODUCER", topic, ranges, len(reports), failed, cid, tid, None, error,
                                  timestamp_ms)  # fmt: skip

    def _delivered_batch(
        self, outcomes: Sequence[RecordOutcome], cid: str | None, tid: str | None, timestamp_ms: int
    ) -> AuditRecord:
        """One audit record for a whole delivered batch: counts per outcome, offset ranges, the first error."""
        # counted in C (map, Counter, sorted); a Python step only per partition and per failed record
        records: Sequence[ConsumedRecord]
        if isinstance(outcomes, UniformOutcomes):  # one status for the batch: no outcome object per record
            records = outcomes.records
            statuses = Counter({outcomes.status: len(records)})
            error = outcomes.error if outcomes.status not in ("SUCCESS", "DROP") else None
        else:
            records = list(map(_RECORD, outcomes))
            statuses = Counter(map(_STATUS, outcomes))
            error = next((o.error for o in outcomes if o.error and o.status not in ("SUCCESS", "DROP")), None)
        failed = len(outcomes) - statuses.get("SUCCESS", 0) - statuses.get("DROP", 0)
        partitions = list(map(_PARTITION, records))
        if partitions.count(partitions[0]) == len(partitions):  # one partition (the usual case)
            offsets = sorted(map(_OFFSET, records))  # a batch in offset order is one run: a single C pass
            ranges = {partitions[0]: [offsets[0], offsets[-1]]}
        else:
            ranges = {}
            for record in records:
                _widen(ranges, record.partition, record.offset)
        summary = ",".join(f"{status}={n}" for status, n in sorted(statuses.items()))
        return self._batch_record("REACTIVE_CONSUMER", records[0].topic, ranges, len(outcomes), failed, cid, tid,
                                  summary, error, timestamp_ms)  # fmt: skip

    def _batch_record(
        self,
        audit_type: AuditType,
        topic: str,
        ranges: dict[int, list[int]],
        records: int,
        failed: int,
        cid: str | None,
        tid: str | None,
        outcome: str | None,
        error: str | None,
        timestamp_ms: int,
    ) -> AuditRecord:
        (partition, (offset, _)), *more = ranges.items() if ranges else [(None, (None, None))]
        return AuditRecord(
            audit_type,
            self._service_id,
            "SUCCESS" if failed == 0 else "FAILURE",
            topic=topic,
            partition=None if more else partition,
            offset=None if more else offset,
            correlation_id=cid,
            traceability_id=tid,
            outcome=outcome,
            error=error[:MAX_ERROR_CHARS] if error else None,
            timestamp_ms=timestamp_ms,
            batch={"records": records, "failed": failed, "offsets": {str(p): r for p, r in ranges.items()}},
        )

    def _delivered(
        self, outcomes: Sequence[RecordOutcome], added: AddedHeaders, timestamp_ms: int, count: int
    ) -> Iterator[AuditRecord]:
        """The audit records of the first ``count`` delivered records (run by the sink's writer task); a
        record's ids may be headers middleware added (a generated correlation id)."""
        for outcome in outcomes[:count]:
            yield self._consumed(
                added.applied(outcome.record),
                "REACTIVE_CONSUMER",
                "SUCCESS" if outcome.status in ("SUCCESS", "DROP") else "FAILURE",
                outcome=outcome.status,
                error=outcome.error,
                timestamp_ms=timestamp_ms,
            )

    def _produced(
        self, produced: Produced, default_cid: str | None, default_tid: str | None, timestamp_ms: int, count: int
    ) -> Iterator[AuditRecord]:
        """The audit records of the first ``count`` produced records (run by the sink's writer task)."""
        key_mode, service_id = self._config.key, self._service_id
        for record, report in zip(produced.records[:count], produced.reports[:count], strict=True):
            ok = report.acknowledged
            yield AuditRecord(
                "PRODUCER",
                service_id,
                "SUCCESS" if ok else "FAILURE",
                topic=record.topic,
                partition=report.partition,
                offset=report.offset,
                correlation_id=_header(record.headers, CORRELATION_HEADER) or default_cid,
                traceability_id=_header(record.headers, TRACEABILITY_HEADER) or default_tid,
                key=audit_key(record.key, key_mode),
                error=None if ok else (report.error or f"error code {report.error_code}")[:MAX_ERROR_CHARS],
                timestamp_ms=timestamp_ms,
            )

    def _consumed(
        self,
        record: ConsumedRecord,
        audit_type: AuditType,
        status: AuditStatus,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
        outcome: str | None = None,
        error: str | None = None,
        timestamp_ms: int = 0,
    ) -> AuditRecord:
        return AuditRecord(
            audit_type,
            self._service_id,
            status,
            topic=topic or record.topic,
            partition=record.partition if topic is None else partition,
            offset=record.offset if topic is None else offset,
            correlation_id=_header(record.headers, CORRELATION_HEADER),
            traceability_id=_header(record.headers, TRACEABILITY_HEADER),
            key=audit_key(record.key, self._config.key),
            outcome=outcome,
            error=error[:MAX_ERROR_CHARS] if error else None,
            timestamp_ms=timestamp_ms,
        )

    def _dead_lettered(self, event: DeadLettered) -> None:
        self.sink.submit(
            self._consumed(
                event.record,
                "DEAD_LETTER",
                "SUCCESS" if event.written else "FAILURE",
                topic=event.dead_letter_topic,
                partition=event.partition,
                offset=event.offset,
                outcome=f"from {event.record.topic}[{event.record.partition}]@{event.record.offset}",
                error=event.error,
            )
        )

    def _admin_action(self, event: AdminAction) -> None:
        self.sink.submit(
            AuditRecord(
                "ADMIN",
                self._service_id,
                "SUCCESS",
                action=f"{event.action} {event.target}".strip()[:MAX_ERROR_CHARS],
                outcome=event.detail[:MAX_ERROR_CHARS] or None,
                error=None,
            )
        )


@hookimpl
def kafka_sidecar_register_services(register: Callable[[ServiceSpec[AuditSinks]], None]) -> None:
    register(ServiceSpec(AUDIT_SINKS, AuditSinks, "One audit sink per distinct audit config"))


@hookimpl
def kafka_sidecar_register_handlers(register: Callable[[HandlerSpec[AuditConfig]], None]) -> None:
    register(
        HandlerSpec(
            name="audit",
            factory=AuditHandler,
            config_type=AuditConfig,
            kind="middleware",
            description="Audit records (metadata only) for produced, delivered and dead-lettered records and admin.",
        )
    )
