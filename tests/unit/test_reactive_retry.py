"""The retry/dead-letter policy and per-partition lanes, with fakes at seams we own (no broker)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, cast

import pytest

from kafka_sidecar._chain import LinkInfo, Terminal, compile_chain
from kafka_sidecar._deadletter import DeadLetter, DeadLetterReceipt, ReportingSink
from kafka_sidecar._errors import UpstreamUnavailable
from kafka_sidecar._events import EventBus
from kafka_sidecar._exchange import DELIVERED, DeliveryStatus, Exchange, RecordOutcome, Reply
from kafka_sidecar._records import ConsumedRecord
from kafka_sidecar._serdes.builtin import JSON, STRING
from kafka_sidecar_handlers.reactive._backend import REASON_CONNECT, REASON_TIMEOUT, unavailable
from kafka_sidecar_handlers.reactive._config import RetryPolicy
from kafka_sidecar_handlers.reactive._delivery import DeliveryContext, DeliveryStats, deliver_batch
from kafka_sidecar_handlers.reactive._partition import BatchLimits, PartitionWorker

pytestmark = pytest.mark.asyncio
FAST = RetryPolicy(max_attempts=3, initial_backoff_ms=1, max_backoff_ms=2, jitter=0)


class FakeDeadLetters:
    """A dead-letter sink that stores letters, except that it refuses the first ``fail_first`` writes."""

    def __init__(self, fail_first: int = 0) -> None:
        self.written: list[DeadLetter] = []
        self.fail_first = fail_first
        self.calls = 0

    async def write(self, letters: Sequence[DeadLetter], suffix: str) -> list[DeadLetterReceipt]:
        self.calls += 1
        if self.calls <= self.fail_first:
            return [DeadLetterReceipt(False, "t.dlq", error="not enough replicas") for _ in letters]
        self.written.extend(letters)
        return [DeadLetterReceipt(True, "t.dlq", 0, len(self.written) + i) for i, _ in enumerate(letters)]


def _records(values: Sequence[bytes]) -> list[ConsumedRecord]:
    return [ConsumedRecord("t", 0, offset, 1, None, value) for offset, value in enumerate(values)]


def _context(terminal: Callable[[Exchange], Any], dead_letters: FakeDeadLetters, **kw: Any) -> DeliveryContext:
    chain = compile_chain("c", [], (LinkInfo("backend", "fake"), cast("Terminal", terminal)))

    async def healthy() -> None:
        return None

    return DeliveryContext(
        consumer="c", chain=chain, key_serde=STRING, value_serde=JSON,
        dead_letters=ReportingSink("fake", dead_letters, EventBus()), retry=FAST, dead_letter_suffix=".dlq",
        wait_healthy=healthy, **kw,
    )  # fmt: skip


def _answering(decide: Callable[[ConsumedRecord, int], DeliveryStatus]) -> tuple[Callable[[Exchange], Any], list[int]]:
    sizes: list[int] = []

    async def terminal(exchange: Exchange) -> Reply:
        sizes.append(len(exchange.records))
        attempt = len(sizes)
        exchange.stash[DELIVERED] = tuple(RecordOutcome(r, decide(r, attempt), "nope") for r in exchange.records)
        return Reply()

    return terminal, sizes


async def _run(ctx: DeliveryContext, records: list[ConsumedRecord]) -> tuple[dict[int, str], DeliveryStats]:
    final: dict[int, str] = {}
    stats = DeliveryStats()

    def on_final(records: Sequence[ConsumedRecord], status: str) -> None:
        for record in records:
            assert record.offset not in final, "a record was finalised twice"
            final[record.offset] = status

    await asyncio.wait_for(deliver_batch(ctx, records, on_final, stats), 5)
    return final, stats


async def test_retry_until_exhausted_then_dead_letter_only_failing_records() -> None:
    terminal, sizes = _answering(lambda r, attempt: "RETRY" if r.offset == 1 else "SUCCESS")
    letters = FakeDeadLetters()
    final, stats = await _run(_context(terminal, letters), _records([b"1", b"2", b"3"]))
    assert final == {0: "SUCCESS", 1: "DEADLETTER", 2: "SUCCESS"}
    assert sizes == [3, 1, 1]  # only the record asking for a retry is sent again
    assert [(dl.record.offset, dl.attempts) for dl in letters.written] == [(1, 3)]
    assert "gave up after 3 attempts" in letters.written[0].error
    assert stats.retried == 2


async def test_batch_failures_count_attempts_but_unreachable_does_not() -> None:
    calls: list[str] = []
    script = [REASON_CONNECT] * 5 + [REASON_TIMEOUT, REASON_TIMEOUT, "ok"]

    async def terminal(exchange: Exchange) -> Reply:
        step = script[len(calls)]
        calls.append(step)
        if step != "ok":
            raise unavailable(step, step)
        exchange.stash[DELIVERED] = tuple(RecordOutcome(r, "SUCCESS") for r in exchange.records)
        return Reply()

    letters = FakeDeadLetters()
    final, _ = await _run(_context(terminal, letters), _records([b"1", b"2"]))
    assert final == {0: "SUCCESS", 1: "SUCCESS"}  # 5 unreachable + 2 timeouts: within max_attempts=3
    assert calls == script
    assert letters.written == []


async def test_chain_errors_and_missing_outcomes_are_retried_then_dead_lettered() -> None:
    async def broken(exchange: Exchange) -> Reply:
        raise UpstreamUnavailable("backend answered HTTP 500", extra={"reason": "status"})

    letters = FakeDeadLetters()
    final, _stats = await _run(_context(broken, letters), _records([b"1"]))
    assert final == {0: "DEADLETTER"}
    assert letters.written[0].attempts == 3
    assert "HTTP 500" in letters.written[0].error

    async def silent(exchange: Exchange) -> Reply:
        return Reply()  # a middleware answered without delivering

    letters = FakeDeadLetters()
    final, _ = await _run(_context(silent, letters), _records([b"1"]))
    assert final == {0: "DEADLETTER"}
    assert "without delivering" in letters.written[0].error


async def test_dead_letter_write_is_retried_until_acknowledged_before_final() -> None:
    terminal, _ = _answering(lambda r, attempt: "DEADLETTER")
    letters = FakeDeadLetters(fail_first=2)
    final, stats = await _run(_context(terminal, letters), _records([b"1"]))
    assert letters.calls == 3
    assert final == {0: "DEADLETTER"}
    assert stats.dead_lettered == 1


async def test_undecodable_goes_to_dlq_without_backend_and_last_attempt_drops() -> None:
    terminal, sizes = _answering(lambda r, attempt: "SUCCESS")
    letters = FakeDeadLetters()
    final, _ = await _run(_context(terminal, letters), _records([b"{", b"2"]))
    assert final == {0: "DEADLETTER", 1: "SUCCESS"}
    assert sizes == [1]
    assert letters.written[0].error.startswith("undecodable")

    terminal, _ = _answering(lambda r, attempt: "RETRY")
    letters = FakeDeadLetters()
    final, stats = await _run(_context(terminal, letters, last_attempt=True), _records([b"1"]))
    assert final == {0: "DROP"}
    assert letters.written == []
    assert stats.dropped == 1


async def test_key_lanes_keep_per_key_order_and_commit_contiguously() -> None:
    started: list[tuple[bytes | None, int]] = []
    finished: set[int] = set()
    gates: dict[int, asyncio.Event] = {}

    async def runner(batch: Sequence[ConsumedRecord], on_final: Callable[[Sequence[ConsumedRecord], str], None],
                     stats: DeliveryStats) -> None:  # fmt: skip
        for record in batch:
            started.append((record.key, record.offset))
            gate = gates.setdefault(record.offset, asyncio.Event())
            await gate.wait()
            finished.add(record.offset)
            on_final([record], "SUCCESS")

    worker = PartitionWorker("t", 0, 4, BatchLimits(1, 1 << 20, 0), runner, lambda w: None)
    keys = [b"a", b"b", b"a", b"b", b"d"]  # crc32 % 4: a -> lane 3, b -> 1, d -> 0
    worker.offer([ConsumedRecord("t", 0, i, 1, k, b"v") for i, k in enumerate(keys)])
    worker.start()
    try:
        gates.setdefault(4, asyncio.Event()).set()  # "d" finishes first; offsets 0..3 still open
        await _until(lambda: 4 in finished)
        assert worker.tracker.committable() is None
        for offset in (1, 3):  # all of key "b"
            gates.setdefault(offset, asyncio.Event()).set()
        await _until(lambda: {1, 3} <= finished)
        assert worker.tracker.committable() is None  # offset 0 (key "a") is still running
        assert [o for k, o in started if k == b"a"] == [0]  # "a" waits for its own earlier record
        for offset in (0, 2):
            gates.setdefault(offset, asyncio.Event()).set()
        await _until(lambda: worker.tracker.committable() == 5)
        for key in (b"a", b"b"):
            offsets = [o for k, o in started if k == key]
            assert offsets == sorted(offsets)
    finally:
        await worker.close()


async def _until(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


class FlakyRegistrySerde:
    """A schema-registry-like format whose registry is unreachable for the first ``outages`` decodes."""

    name = "flaky"
    uses_schema = True

    def __init__(self, outages: int) -> None:
        self.outages = outages

    async def serializer(self, context: Any) -> Any:
        raise NotImplementedError

    async def decode(self, data: bytes | None, topic: str, role: str) -> object:
        if self.outages > 0:
            self.outages -= 1
            raise UpstreamUnavailable("schema registry unreachable")
        return (data or b"").decode()


async def test_transient_decode_failures_wait_without_using_attempts() -> None:
    terminal, sizes = _answering(lambda r, attempt: "SUCCESS")
    letters = FakeDeadLetters()
    serde = FlakyRegistrySerde(outages=5)
    ctx = _context(terminal, letters)
    ctx = DeliveryContext(**{**{f: getattr(ctx, f) for f in ctx.__dataclass_fields__}, "value_serde": serde})
    final, stats = await _run(ctx, _records([b"a", b"b"]))
    assert final == {0: "SUCCESS", 1: "SUCCESS"}
    assert serde.outages == 0
    assert sizes == [2]
    assert letters.written == []
    assert stats.last_error is not None
    assert "schema registry unreachable" in stats.last_error


async def test_a_generated_correlation_id_reaches_body_retries_and_dead_letter_without_a_record_copy() -> None:
    from kafka_sidecar._config.model import KafkaConfig, SidecarConfig
    from kafka_sidecar._kafka.producer import ProducerService
    from kafka_sidecar._resources import Resources
    from kafka_sidecar._serdes.base import SerdeRegistry
    from kafka_sidecar_handlers.reactive._backend import record_entry
    from kafka_sidecar_plugins.correlation import CorrelationConfig, CorrelationHandler

    resources = Resources(SidecarConfig(), SerdeRegistry(), ProducerService(KafkaConfig()))
    correlation = CorrelationHandler(CorrelationConfig(), resources)
    records = _records([b"1", b"2"])
    bodies: list[list[bytes]] = []

    async def terminal(exchange: Exchange) -> Reply:
        added = exchange.added_headers
        assert all(r is records[r.offset] for r in exchange.records)  # the fetched records, not copies
        bodies.append([record_entry(r, None, r.value, added.of(r)) for r in exchange.records])
        exchange.stash[DELIVERED] = tuple(
            RecordOutcome(r, "RETRY" if r.offset == 1 else "SUCCESS", "nope") for r in exchange.records
        )
        return Reply()

    letters = FakeDeadLetters()
    links = [(LinkInfo("correlation", "correlation"), correlation)]
    chain = compile_chain("c", links, (LinkInfo("backend", "fake"), terminal))
    ctx = dataclasses.replace(_context(terminal, letters), chain=chain)
    final, _ = await _run(ctx, records)
    assert final == {0: "SUCCESS", 1: "DEADLETTER"}
    ids = [[entry.split(b'"X-Correlation-Id":"', 1)[1][:36] for entry in body] for body in bodies]
    assert len(ids) == 3
    assert len(set(ids[0])) == 2
    assert ids[1] == ids[2] == [ids[0][1]]  # the retried record keeps the id generated on its first attempt
    (letter,) = letters.written
    assert letter.record.offset == 1
    assert letter.record.header("X-Correlation-Id") == ids[0][1]


async def test_a_batch_is_cut_at_max_records_or_max_bytes_and_the_rest_stays_queued() -> None:
    async def runner(batch: Sequence[ConsumedRecord], on_final: Callable[[Sequence[ConsumedRecord], str], None],
                     stats: DeliveryStats) -> None:  # fmt: skip
        raise AssertionError("not started")

    worker = PartitionWorker("t", 0, 1, BatchLimits(3, 10, 0), runner, lambda w: None)
    sizes = [4, 4, 4, 1, 20, 1]  # key b"k" (1 byte) + value of size - 1, a tombstone for size 1
    worker.offer([ConsumedRecord("t", 0, i, 1, b"k", b"v" * (n - 1) if n > 1 else None) for i, n in enumerate(sizes)])
    lane = worker._lanes[0]
    taken = [[r.offset for r in worker._take(lane)] for _ in range(4)]
    assert taken == [[0, 1], [2, 3], [4], [5]]  # 4+4 fits 10, +4 does not; a larger record goes alone
    assert lane.queue == []


async def test_fetched_records_become_consumed_records_with_or_without_headers() -> None:
    from aiokafka.structs import ConsumerRecord

    from kafka_sidecar_handlers.reactive._aiokafka import to_record, to_records

    def fetched(offset: int, headers: tuple[tuple[str, bytes | None], ...] = (), ts: int | None = 5) -> Any:
        return ConsumerRecord("t", 1, offset, ts, 0, b'"k"', b"{}", None, 3, 2, headers)

    plain = [fetched(0), fetched(1)]
    assert to_records(plain) == [ConsumedRecord("t", 1, n, 5, b'"k"', b"{}") for n in (0, 1)]
    mixed = [fetched(0), fetched(1, (("a", b"x"), ("b", None))), fetched(2, ts=None)]
    assert to_records(mixed) == [to_record(m) for m in mixed]
    assert to_records(mixed)[1].headers == (("a", b"x"), ("b", b""))
    assert to_records(mixed)[2].timestamp_ms == -1
