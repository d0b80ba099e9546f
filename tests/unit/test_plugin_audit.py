"""The audit middleware and sink alone, with a fake producer at our own ProducerService seam."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sys
import uuid
from collections.abc import Sequence

import pytest

from kafka_sidecar._config.model import KafkaConfig, ProducerEngine, ProducerSettings, ServiceConfig, SidecarConfig
from kafka_sidecar._errors import KafkaUnavailable
from kafka_sidecar._events import AdminAction, DeadLettered
from kafka_sidecar._exchange import DELIVERED, PRODUCED, Exchange, HttpRequest, Produced, RecordOutcome, Reply
from kafka_sidecar._kafka.producer import BulkOutcome, ProducerService, count_reports
from kafka_sidecar._records import ConsumedRecord, DeliveryReport, OutgoingRecord
from kafka_sidecar._resources import Resources
from kafka_sidecar._serdes.base import SerdeRegistry
from kafka_sidecar.plugin import CORRELATION, CorrelationIds
from kafka_sidecar_plugins.audit import AUDIT_SINKS, AuditConfig, AuditHandler, AuditSinks, _sink
from kafka_sidecar_plugins.audit._sink import AuditRecord, audit_json, uuid4_texts
from kafka_sidecar_plugins.metrics import PrometheusExporter


class FakeProducer(ProducerService):
    def __init__(self, fail: bool = False, block: asyncio.Event | None = None) -> None:
        super().__init__(KafkaConfig())
        self.sent: list[OutgoingRecord] = []
        self.fail = fail
        self.block = block

    async def send_batch(
        self, records: Sequence[OutgoingRecord], *, ack_timeout: float | None = None
    ) -> list[DeliveryReport]:
        if self.block is not None:
            await self.block.wait()
        if self.fail:
            raise KafkaUnavailable("broker down")
        self.sent.extend(records)
        return [DeliveryReport(r.topic, 0, len(self.sent) - len(records) + i) for i, r in enumerate(records)]

    async def send_bulk(self, records: Sequence[OutgoingRecord], *, ack_timeout: float | None = None) -> BulkOutcome:
        return count_reports(await self.send_batch(records, ack_timeout=ack_timeout))


def make(producer: FakeProducer, **config: object) -> tuple[AuditHandler, Resources]:
    """An audit handler; per-record granularity unless the test asks for batches."""
    sidecar_config = SidecarConfig(service=ServiceConfig(id="svc-1"))
    res = Resources(sidecar_config, SerdeRegistry(), ProducerService(KafkaConfig()), internal_producer=producer)
    res.services[AUDIT_SINKS] = AuditSinks(res)  # what the plugin's declared service does at assembly
    return AuditHandler(AuditConfig(**{"granularity": "record", **config}), res), res  # type: ignore[arg-type]


class Producing:
    async def __call__(self, exchange: Exchange) -> Reply:
        records = (
            OutgoingRecord("orders", b"secret-key", b"VALUE-NEVER-AUDITED", (("X-Correlation-Id", b"per-record"),)),
            OutgoingRecord("orders", None, b"VALUE-NEVER-AUDITED"),
        )
        reports = (DeliveryReport("orders", 2, 40), DeliveryReport("orders", None, None, 50003, "timed out"))
        exchange.stash[PRODUCED] = Produced("orders", records, reports)
        return Reply(207, {})


def http_exchange() -> Exchange:
    exchange = Exchange("http", "/producers/{topic}", HttpRequest("POST", "/producers/orders", "/producers/{topic}"))
    exchange.stash[CORRELATION] = CorrelationIds("request-cid", "request-tid")
    return exchange


async def written(handler: AuditHandler) -> None:
    assert await handler.sink.flushed(5), "audit records were not written in time"


@pytest.mark.asyncio
async def test_one_audit_record_per_produced_record_keyed_by_correlation_id() -> None:
    producer = FakeProducer()
    handler, _ = make(producer)
    await handler.start()
    try:
        reply = await handler(http_exchange(), Producing())
        assert reply.status == 207
        await written(handler)
    finally:
        await handler.stop()
    assert [r.topic for r in producer.sent] == ["sidecar-audit", "sidecar-audit"]
    assert [r.key for r in producer.sent] == [b"per-record", b"request-cid"]
    first, second = (json.loads(r.value or b"") for r in producer.sent)
    assert first["auditType"] == "PRODUCER"
    assert first["serviceId"] == "svc-1"
    assert (first["topic"], first["partition"], first["offset"]) == ("orders", 2, 40)
    assert first["correlationId"] == "per-record"
    assert first["traceabilityId"] == "request-tid"
    assert first["key"] == "sha256:" + hashlib.sha256(b"secret-key").hexdigest()
    assert first["auditStatus"] == "SUCCESS"
    assert second["auditStatus"] == "FAILURE"
    assert second["error"] == "timed out"
    assert second["key"] is None
    assert all(b"VALUE-NEVER-AUDITED" not in (r.value or b"") for r in producer.sent)
    assert all(b"secret-key" not in (r.value or b"") for r in producer.sent)


def consumed(offset: int, cid: bytes | None = None) -> ConsumedRecord:
    headers = (("X-Correlation-Id", cid),) if cid else ()
    return ConsumedRecord("orders", 1, offset, 1, b"k", b"v", headers)


class Delivering:
    async def __call__(self, exchange: Exchange) -> Reply:
        a, b = exchange.records
        exchange.stash[DELIVERED] = (RecordOutcome(a, "SUCCESS"), RecordOutcome(b, "RETRY", "backend 503"))
        return Reply(200)


@pytest.mark.asyncio
async def test_delivered_records_dead_letters_and_admin_actions_are_audited_to_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler, res = make(FakeProducer(), target="log", key="omit")
    await handler.start()
    try:
        with caplog.at_level(logging.INFO, logger="kafka_sidecar.audit"):
            await handler(Exchange("consumer", "c", records=(consumed(5, b"c-5"), consumed(6))), Delivering())
            res.events.publish(DeadLettered(consumed(6), "orders.dlq", 0, 9, "poison", 3, "c", written=True))
            res.events.publish(AdminAction("set-log-level", "root", "DEBUG", "127.0.0.1"))
            await written(handler)
    finally:
        await handler.stop()
    entries = [json.loads(r.getMessage()) for r in caplog.records if r.name == "kafka_sidecar.audit"]
    kinds = [(e["auditType"], e["auditStatus"]) for e in entries]
    assert kinds == [
        ("REACTIVE_CONSUMER", "SUCCESS"),
        ("REACTIVE_CONSUMER", "FAILURE"),
        ("DEAD_LETTER", "SUCCESS"),
        ("ADMIN", "SUCCESS"),
    ]
    assert entries[0]["correlationId"] == "c-5"
    assert entries[0]["key"] is None
    assert entries[1]["outcome"] == "RETRY"
    assert entries[1]["error"] == "backend 503"
    assert (entries[2]["topic"], entries[2]["partition"], entries[2]["offset"]) == ("orders.dlq", 0, 9)
    assert entries[3]["action"] == "set-log-level root"


@pytest.mark.asyncio
async def test_a_failing_audit_target_never_fails_the_request_and_is_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler, res = make(FakeProducer(fail=True))
    res.metrics.enabled = True
    registry = res.metrics.registry
    await handler.start()
    try:
        reply = await handler(http_exchange(), Producing())
        await written(handler)
    finally:
        await handler.stop()
    assert reply.status == 207
    assert handler.sink.failed == 2
    assert any("audit" in m and "failed" in m for m in caplog.messages)
    assert (
        'kafka_sidecar_audit_records_total{result="failed",target="kafka"} 2'
        in PrometheusExporter(registry).render().decode()
    )


@pytest.mark.asyncio
async def test_a_full_queue_drops_and_counts_without_blocking_the_request() -> None:
    gate = asyncio.Event()
    handler, _ = make(FakeProducer(block=gate), queue_size=1)
    await handler.start()
    try:
        for _ in range(3):
            await asyncio.wait_for(handler(http_exchange(), Producing()), 1)
        assert handler.sink.dropped >= 3
    finally:
        gate.set()
        await handler.stop()


def test_one_sink_per_distinct_config_whatever_the_build_order() -> None:
    first, res = make(FakeProducer())  # granularity "record", like the two below
    second = AuditHandler(AuditConfig(granularity="record"), res)
    other = AuditHandler(AuditConfig(target="log", granularity="record"), res)
    sinks = res.services[AUDIT_SINKS]
    assert first.sink is second.sink
    assert other.sink is not first.sink
    assert (other.sink.target, first.sink.target) == ("log", "kafka")
    assert list(sinks) == [first.sink, other.sink]


@pytest.mark.parametrize(
    "record",
    [
        AuditRecord("PRODUCER", "svc", "SUCCESS", topic="t", partition=0, offset=12, key="sha256:ab", id="x"),
        AuditRecord(
            "DEAD_LETTER",
            'sv"c\\é',
            "FAILURE",
            topic="dlq",
            partition=None,
            offset=None,
            correlation_id="c\n\u2028😀",
            traceability_id="t",
            outcome="from a[1]@2",
            error="boom \x00 ü",
            timestamp_ms=5,
        ),
        AuditRecord("ADMIN", "svc", "SUCCESS", action="set-log-level root", outcome="DEBUG"),
    ],
)
def test_the_written_json_is_the_records_content_key_for_key_in_order(record: AuditRecord) -> None:
    (text,) = audit_json([record], 1234)
    written = json.loads(text)
    expected = {**record.to_json(), "id": written["id"], "timestamp": record.timestamp_ms or 1234}
    assert list(written.items()) == list(expected.items())
    assert written["id"] == record.id or uuid.UUID(written["id"]).version == 4


def test_records_encoded_together_come_out_one_each_in_order() -> None:
    records = [AuditRecord("ADMIN", "svc", "SUCCESS", outcome=f"line\n{n}", id=str(n)) for n in range(50)]
    texts = audit_json(records, 1)
    assert [json.loads(text)["outcome"] for text in texts] == [f"line\n{n}" for n in range(50)]


def test_generated_audit_ids_are_distinct_version_4_uuids() -> None:
    texts = uuid4_texts(500)
    parsed = [uuid.UUID(text) for text in texts]
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 for u in parsed)
    assert [str(u) for u in parsed] == texts
    assert len(set(texts)) == 500


@pytest.mark.asyncio
async def test_a_nearly_full_queue_keeps_the_first_records_of_a_batch_and_counts_the_rest() -> None:
    gate = asyncio.Event()
    producer = FakeProducer(block=gate)
    handler, _ = make(producer, queue_size=3)
    await handler.start()
    try:
        for _ in range(2):
            await asyncio.wait_for(handler(http_exchange(), Producing()), 1)
        assert handler.sink.dropped == 1
        gate.set()
        await written(handler)
    finally:
        gate.set()
        await handler.stop()
    statuses = [json.loads(r.value or b"")["auditStatus"] for r in producer.sent]
    assert statuses == ["SUCCESS", "FAILURE", "SUCCESS"]
    assert handler.sink.written == 3


@pytest.mark.asyncio
async def test_records_left_at_shutdown_are_counted_as_dropped_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = asyncio.Event()
    handler, res = make(FakeProducer(block=gate), queue_size=100)
    res.metrics.enabled = True
    await handler.start()
    for _ in range(3):
        await handler(http_exchange(), Producing())
    with caplog.at_level(logging.ERROR):
        await handler.sink.stop(drain_timeout=0.1)
    gate.set()
    assert handler.sink.dropped == 6
    counter = res.metrics.registry.counter("kafka_sidecar_audit_records_total", "", ("target", "result"))
    assert counter.value("kafka", "dropped") == 6
    dropped_lines = [r for r in caplog.records if "dropped at shutdown" in r.getMessage()]
    assert len(dropped_lines) == 1
    assert "6 records" in dropped_lines[0].getMessage()


class ProducingMany:
    """A produce request of 100 records over two partitions, the last two refused."""

    async def __call__(self, exchange: Exchange) -> Reply:
        records = tuple(OutgoingRecord("orders", None, b"VALUE-NEVER-AUDITED") for _ in range(100))
        reports = (
            tuple(DeliveryReport("orders", i % 2, 1000 + i) for i in range(98))
            + (DeliveryReport("orders", None, None, 50003, "timed out"),) * 2
        )
        exchange.stash[PRODUCED] = Produced("orders", records, reports)
        return Reply(207, {})


@pytest.mark.asyncio
async def test_batch_granularity_is_the_default_one_audit_record_per_request_with_offset_ranges() -> None:
    assert AuditConfig().granularity == "batch"
    producer = FakeProducer()
    handler, _ = make(producer, granularity="batch")
    await handler.start()
    try:
        await handler(http_exchange(), ProducingMany())
        await handler(Exchange("consumer", "c", records=(consumed(5, b"c-5"), consumed(6))), Delivering())
        await written(handler)
    finally:
        await handler.stop()
    assert len(producer.sent) == 2, "one audit record per request and per delivered batch"
    assert [r.key for r in producer.sent] == [b"request-cid", None]
    produced, delivered = (json.loads(r.value or b"") for r in producer.sent)
    assert produced["auditType"] == "PRODUCER"
    assert produced["auditStatus"] == "FAILURE"
    assert produced["error"] == "timed out"
    assert produced["batch"] == {"records": 100, "failed": 2, "offsets": {"0": [1000, 1096], "1": [1001, 1097]}}
    assert (produced["partition"], produced["offset"]) == (None, None), "two partitions: see batch.offsets"
    assert produced["correlationId"] == "request-cid"
    assert delivered["auditType"] == "REACTIVE_CONSUMER"
    assert delivered["outcome"] == "RETRY=1,SUCCESS=1"
    assert delivered["error"] == "backend 503"
    assert (delivered["topic"], delivered["partition"], delivered["offset"]) == ("orders", 1, 5)
    assert delivered["batch"] == {"records": 2, "failed": 1, "offsets": {"1": [5, 6]}}
    assert all(b"VALUE-NEVER-AUDITED" not in (r.value or b"") for r in producer.sent)


class ProducingAcknowledged:
    """A produce request whose every record the broker acknowledged, at these (partition, offset) pairs."""

    def __init__(self, placed: Sequence[tuple[int, int]]) -> None:
        self.placed = placed

    async def __call__(self, exchange: Exchange) -> Reply:
        records = tuple(OutgoingRecord("orders", None, b"v") for _ in self.placed)
        reports = tuple(DeliveryReport("orders", partition, offset) for partition, offset in self.placed)
        exchange.stash[PRODUCED] = Produced("orders", records, reports)
        return Reply(200, {})


@pytest.mark.parametrize(
    ("placed", "offsets", "where"),
    [
        ([(2, 7), (2, 8), (2, 9)], {"2": [7, 9]}, (2, 7)),
        # unkeyed on aiokafka: records scattered over partitions, offsets not in request order
        ([(1, 40), (0, 12), (1, 38), (2, 5), (0, 11), (1, 39)], {"1": [38, 40], "0": [11, 12], "2": [5, 5]}, None),
    ],
)
@pytest.mark.asyncio
async def test_an_acknowledged_request_is_audited_with_each_partitions_first_and_last_offset(
    placed: list[tuple[int, int]], offsets: dict[str, list[int]], where: tuple[int, int] | None
) -> None:
    producer = FakeProducer()
    handler, _ = make(producer, granularity="batch")
    await handler.start()
    try:
        await handler(http_exchange(), ProducingAcknowledged(placed))
        await written(handler)
    finally:
        await handler.stop()
    (audit,) = (json.loads(r.value or b"") for r in producer.sent)
    assert audit["auditStatus"] == "SUCCESS"
    assert "error" not in audit
    assert audit["batch"] == {"records": len(placed), "failed": 0, "offsets": offsets}
    assert list(audit["batch"]["offsets"]) == list(offsets), "partitions in the order the request first used them"
    assert (audit["partition"], audit["offset"]) == (where or (None, None))


@pytest.mark.asyncio
async def test_an_exchange_whose_audit_cannot_be_built_is_counted_as_dropped_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler, _ = make(FakeProducer())

    def broken(exchange: object) -> None:
        raise ValueError("unexpected stash value")

    handler._audit_exchange = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR):
        for _ in range(2):
            reply = await handler(http_exchange(), Producing())
            assert reply.status == 207  # the exchange itself is not affected
    assert handler.sink.dropped == 2
    errors = [m for m in caplog.messages if "building audit records failed" in m]
    assert len(errors) == 1  # logged once, then counted
    assert "ValueError: unexpected stash value" in errors[0]


class CallRecordingProducer(FakeProducer):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    async def send_bulk(self, records: Sequence[OutgoingRecord], *, ack_timeout: float | None = None) -> BulkOutcome:
        self.calls.append(len(records))
        return await super().send_bulk(records, ack_timeout=ack_timeout)


@pytest.mark.asyncio
@pytest.mark.parametrize("engine", ["aiokafka", "librdkafka"])
async def test_what_is_queued_is_built_in_slices_and_goes_out_in_one_bulk_write_in_order(
    engine: ProducerEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[int] = []

    def recording_audit_json(records: Sequence[AuditRecord], now_ms: int) -> list[bytes]:
        built.append(len(records))
        return audit_json(records, now_ms)

    monkeypatch.setattr(_sink, "audit_json", recording_audit_json)
    producer = CallRecordingProducer()
    config = SidecarConfig(
        service=ServiceConfig(id="svc-1"), kafka=KafkaConfig(producer=ProducerSettings(engine=engine))
    )
    res = Resources(config, SerdeRegistry(), ProducerService(KafkaConfig()), internal_producer=producer)
    sink, _ = AuditSinks(res).get(AuditConfig(linger_ms=0))
    for n in range(100):  # queued before the writer's first turn: one write takes them all
        sink.submit(AuditRecord("ADMIN", "svc-1", "SUCCESS", action=f"action {n}"))
    await sink.start()
    try:
        assert await sink.flushed(5)
    finally:
        await sink.stop()
    assert built == [_sink.WRITE_SLICE, 100 - _sink.WRITE_SLICE]  # a slice per turn of the loop
    assert producer.calls == [100]  # one bulk write: the producer makes its batches
    assert [json.loads(r.value or b"")["action"] for r in producer.sent] == [f"action {n}" for n in range(100)]
    assert (sink.written, sink.failed, sink.dropped) == (100, 0, 0)


class ProducingThese:
    def __init__(self, records: tuple[OutgoingRecord, ...]) -> None:
        self.records = records

    async def __call__(self, exchange: Exchange) -> Reply:
        reports = tuple(DeliveryReport("orders", 0, n) for n in range(len(self.records)))
        exchange.stash[PRODUCED] = Produced("orders", self.records, reports)
        return Reply(200, {})


@pytest.mark.asyncio
async def test_a_queued_batch_audit_record_keeps_no_record_alive() -> None:
    """Batch granularity: what waits for the writer (up to linger_ms) holds no consumed or produced record,
    so a busy consumer's batches (values and all) are freed when delivered, not a linger later."""
    handler, _ = make(FakeProducer(), granularity="batch")  # not started: everything stays queued
    consumed_records = (consumed(5, b"c-5"), consumed(6))
    produced_records = (OutgoingRecord("orders", None, b"v1"), OutgoingRecord("orders", None, b"v2"))
    held = (*consumed_records, produced_records)  # a Produced holds its records' tuple
    before = [sys.getrefcount(r) for r in held]
    await handler(Exchange("consumer", "c", records=consumed_records), Delivering())
    await handler(http_exchange(), ProducingThese(produced_records))
    assert handler.sink._pending == 2, "both audit records are queued"
    assert [sys.getrefcount(r) for r in held] == before


@pytest.mark.asyncio
async def test_a_write_failing_midway_counts_each_record_once(caplog: pytest.LogCaptureFixture) -> None:
    """The log target writes a slice at a time: when a later slice cannot be built, the slices already
    logged stay written and only the rest is counted failed (never both)."""

    def broken(count: int) -> list[AuditRecord]:
        raise ValueError("cannot build")

    producer = FakeProducer()
    res = Resources(SidecarConfig(service=ServiceConfig(id="svc-1")), SerdeRegistry(), producer, producer)
    sink, _ = AuditSinks(res).get(AuditConfig(target="log", linger_ms=0))
    for n in range(_sink.WRITE_SLICE):
        sink.submit(AuditRecord("ADMIN", "svc-1", "SUCCESS", action=f"action {n}"))
    sink.submit_deferred(_sink.DeferredRecords(36, broken))
    await sink.start()
    try:
        assert await sink.flushed(5)
    finally:
        await sink.stop()
    assert (sink.written, sink.failed, sink.dropped) == (_sink.WRITE_SLICE, 36, 0)
    assert any("writing 36 records to log failed" in m for m in caplog.messages)
