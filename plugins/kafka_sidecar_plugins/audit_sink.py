"""Audit records and where they go: a Kafka topic (keyed by correlation id) or the log.

Records are queued (bounded) and written by a background task, so auditing never slows or fails the
exchange that caused it. A full queue, a refused write or an unreachable broker is counted and
logged, never raised. Audit records carry metadata only: never the record value, never credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Literal

from kafka_sidecar.kafka.producer import ProducerService, describe
from kafka_sidecar.records import OutgoingRecord
from kafka_sidecar.stash import Stash
from kafka_sidecar_plugins.metrics_registry import METRICS_REGISTRY

log = logging.getLogger(__name__)
audit_log = logging.getLogger("kafka_sidecar.audit")

AuditType = Literal["PRODUCER", "REACTIVE_CONSUMER", "DEAD_LETTER", "ADMIN"]
AuditTarget = Literal["kafka", "log"]
KeyMode = Literal["hash", "omit"]
AuditStatus = Literal["SUCCESS", "FAILURE"]


@dataclass(frozen=True, slots=True)
class AuditRecord:
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
        return body


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
        services: Stash,
        *,
        target: AuditTarget,
        topic: str,
        queue_size: int,
        batch_size: int = 500,
    ) -> None:
        self._producer = producer
        self._services = services
        self.target = target
        self.topic = topic
        self._queue: asyncio.Queue[AuditRecord] = asyncio.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.failed = 0
        self.dropped = 0

    def _count(self, result: str, amount: int = 1) -> None:
        registry = self._services.get(METRICS_REGISTRY)
        if registry is not None:
            registry.counter(
                "kafka_sidecar_audit_records_total", "Audit records by target and result.", ("target", "result")
            ).inc(self.target, result, amount=amount)

    def submit(self, record: AuditRecord) -> None:
        """Queue a record; never blocks, never raises."""
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self.dropped += 1
            self._count("dropped")
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("audit queue is full: %d audit records dropped so far", self.dropped)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="audit-writer")

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Write what is queued (bounded by ``drain_timeout``), then stop."""
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), drain_timeout)
        except TimeoutError:
            log.error("audit: %d records not written at shutdown", self._queue.qsize())
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def flushed(self, timeout: float) -> bool:
        """Wait until every queued record is written or failed (tests, shutdown)."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            except Exception as exc:
                self.failed += len(batch)
                self._count("failed", len(batch))
                log.error("audit: writing %d records to %s failed: %s", len(batch), self.target, describe(exc))
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[AuditRecord]) -> None:
        if self.target == "log":
            for record in batch:
                audit_log.info(json.dumps(record.to_json(), separators=(",", ":")))
            self.written += len(batch)
            self._count("written", len(batch))
            return
        outgoing = [
            OutgoingRecord(
                topic=self.topic,
                key=record.correlation_id.encode("utf-8") if record.correlation_id else None,
                value=json.dumps(record.to_json(), separators=(",", ":")).encode("utf-8"),
            )
            for record in batch
        ]
        reports = await self._producer.send_batch(outgoing)
        failed = [report for report in reports if not report.acknowledged]
        self.written += len(reports) - len(failed)
        self._count("written", len(reports) - len(failed))
        if failed:
            self.failed += len(failed)
            self._count("failed", len(failed))
            log.error("audit: %d records not acknowledged by %s: %s", len(failed), self.topic, failed[0].error)
