"""One status for a whole batch (``UniformOutcomes``): the same outcomes as one ``RecordOutcome`` per
record, for every reader (delivery, metrics, audit), without building them (no broker)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import msgspec
import pytest

from kafka_sidecar._config.model import KafkaConfig, ServiceConfig, SidecarConfig
from kafka_sidecar._exchange import DELIVERED, Exchange, RecordOutcome, Reply, UniformOutcomes
from kafka_sidecar._kafka.producer import ProducerService
from kafka_sidecar._metrics.registry import MetricsRegistry
from kafka_sidecar._records import ConsumedRecord
from kafka_sidecar._resources import Resources
from kafka_sidecar._serdes.base import SerdeRegistry
from kafka_sidecar_handlers.reactive._backend import parse_reply
from kafka_sidecar_handlers.reactive._delivery import DeliveryStats, deliver_batch
from kafka_sidecar_plugins.audit import AUDIT_SINKS, AuditConfig, AuditHandler, AuditSinks
from kafka_sidecar_plugins.metrics import MetricsConfig, MetricsHandler, PrometheusExporter

RECORDS = tuple(ConsumedRecord("t", p, o, 1, None, b"{}") for p, o in ((0, 10), (0, 11), (1, 4)))


def test_uniform_outcomes_are_the_per_record_outcomes() -> None:
    uniform = UniformOutcomes(RECORDS, "DEADLETTER", "poison")
    expected = tuple(RecordOutcome(r, "DEADLETTER", "poison") for r in RECORDS)
    assert tuple(uniform) == expected
    assert len(uniform) == 3
    assert uniform[1] == expected[1]
    assert uniform[-1] == expected[-1]
    assert tuple(uniform[1:]) == expected[1:]
    assert list(reversed(uniform)) == list(reversed(expected))
    with pytest.raises(IndexError):
        uniform[3]


def test_a_reply_for_the_whole_batch_is_one_uniform_outcome() -> None:
    empty = parse_reply(b"", RECORDS)
    assert isinstance(empty, UniformOutcomes)
    assert tuple(empty) == tuple(RecordOutcome(r, "SUCCESS") for r in RECORDS)
    dropped = parse_reply(b'{"status": "drop", "error": "stale"}', RECORDS)
    assert isinstance(dropped, UniformOutcomes)
    assert tuple(dropped) == tuple(RecordOutcome(r, "DROP", "stale") for r in RECORDS)


@pytest.mark.asyncio
async def test_a_batch_accepted_at_once_is_final_in_one_call_in_offset_order() -> None:
    from test_reactive_retry import FakeDeadLetters, _context  # the delivery fakes

    async def terminal(exchange: Exchange) -> Reply:
        exchange.stash[DELIVERED] = UniformOutcomes(exchange.records, "SUCCESS")
        return Reply()

    calls: list[tuple[list[int], str]] = []

    def on_final(records: Sequence[ConsumedRecord], status: str) -> None:
        calls.append(([r.offset for r in records], status))

    stats = DeliveryStats()
    records = [msgspec.structs.replace(r, partition=0, offset=i) for i, r in enumerate(RECORDS)]
    await asyncio.wait_for(deliver_batch(_context(terminal, FakeDeadLetters()), records, on_final, stats), 5)
    assert calls == [([0, 1, 2], "SUCCESS")]
    assert stats.delivered == 3


def _render(outcomes: Sequence[RecordOutcome]) -> str:
    res = Resources(SidecarConfig(), SerdeRegistry(), ProducerService(KafkaConfig()))
    handler = MetricsHandler(MetricsConfig(), res)

    async def terminal(exchange: Exchange) -> Reply:
        exchange.stash[DELIVERED] = outcomes
        return Reply()

    asyncio.run(handler(Exchange("consumer", "c", records=RECORDS), terminal))
    registry: MetricsRegistry = res.metrics.registry
    return "\n".join(
        line for line in PrometheusExporter(registry).render().decode().splitlines() if "records_total" in line
    )


@pytest.mark.parametrize(("status", "error"), [("SUCCESS", None), ("RETRY", "backend 503")])
def test_metrics_count_a_uniform_batch_as_its_records(status: Any, error: str | None) -> None:
    uniform = _render(UniformOutcomes(RECORDS, status, error))
    assert uniform == _render(tuple(RecordOutcome(r, status, error) for r in RECORDS))
    assert f'outcome="{status}",topic="t"}} 3' in uniform
    mixed = (*RECORDS, msgspec.structs.replace(RECORDS[0], topic="u", offset=99))  # two topics in one batch
    two = _render(UniformOutcomes(mixed, status, error))
    assert two == _render(tuple(RecordOutcome(r, status, error) for r in mixed))
    assert f'outcome="{status}",topic="t"}} 3' in two
    assert f'outcome="{status}",topic="u"}} 1' in two


@pytest.mark.parametrize(("status", "error"), [("SUCCESS", None), ("DEADLETTER", "poison")])
def test_a_batch_audit_record_of_a_uniform_batch_is_that_of_its_records(status: Any, error: str | None) -> None:
    res = Resources(SidecarConfig(service=ServiceConfig(id="svc")), SerdeRegistry(), ProducerService(KafkaConfig()))
    res.services[AUDIT_SINKS] = AuditSinks(res)
    handler = AuditHandler(AuditConfig(granularity="batch"), res)
    uniform = handler._delivered_batch(UniformOutcomes(RECORDS, status, error), "c", None, 7)
    each = handler._delivered_batch(tuple(RecordOutcome(r, status, error) for r in RECORDS), "c", None, 7)
    assert uniform == each
    assert uniform.batch == {"records": 3, "failed": 0 if status == "SUCCESS" else 3,
                                "offsets": {"0": [10, 11], "1": [4, 4]}}  # fmt: skip
    shuffled = tuple(ConsumedRecord("t", 2, o, 1, None, b"{}") for o in (12, 10, 13, 11))  # one partition
    record = handler._delivered_batch(UniformOutcomes(shuffled, status, error), "c", None, 7)
    assert record.batch == {"records": 4, "failed": 0 if status == "SUCCESS" else 4, "offsets": {"2": [10, 13]}}
    assert (record.partition, record.offset) == (2, 10)


def test_added_headers_come_after_the_fetched_ones_without_copying_records() -> None:
    from kafka_sidecar._records import AddedHeaders

    given = ConsumedRecord("t", 0, 1, 1, None, b"{}", (("source", b"web"),))
    bare = ConsumedRecord("t", 0, 2, 1, None, b"{}")
    other = ConsumedRecord("u", 0, 2, 1, None, b"{}")  # the same offset in another topic is another record
    added = AddedHeaders()
    assert not added
    assert added.headers(given) == given.headers
    assert added.applied(bare) is bare
    added.add_each([given, bare], "X-Correlation-Id", [b"c-1", b"c-2"])
    added.add(bare, "X-Tenant", b"acme")
    added.add_each([bare], "X-Correlation-Id", [b"c-3"])
    assert added.headers(given) == (("source", b"web"), ("X-Correlation-Id", b"c-1"))
    assert added.headers(bare) == (("X-Correlation-Id", b"c-2"), ("X-Tenant", b"acme"), ("X-Correlation-Id", b"c-3"))
    assert added.header(bare, "x-correlation-id") == b"c-3"  # the last wins, names case-insensitive
    assert added.headers(other) == ()
    assert added.applied(given) == msgspec.structs.replace(given, headers=added.headers(given))
    with pytest.raises(ValueError, match="zip"):
        AddedHeaders().add_each([given, bare], "X-Correlation-Id", [b"one"])


def test_a_json_batch_spliced_as_is_gives_the_body_of_the_decoded_path() -> None:
    from kafka_sidecar_handlers.reactive._backend import RawJson, record_entry, record_entry_as_is

    records = [
        ConsumedRecord("t", 0, 1, 5, b'"k"', b'{"n": 1}', (("source", b"web"),)),
        ConsumedRecord("t", 0, 2, 5, None, None),
        ConsumedRecord("t", 0, 3, 5, b"7", b"[true]"),
    ]
    for record in records:
        key = None if record.key is None else RawJson(record.key)
        value = None if record.value is None else RawJson(record.value)
        for added in ((), (("X-Correlation-Id", b"c-1"),)):
            assert record_entry_as_is(record, added) == record_entry(record, key, value, added)


def test_one_added_header_per_record_as_a_column_gives_the_same_body() -> None:
    from kafka_sidecar._records import AddedHeaders
    from kafka_sidecar_handlers.reactive._backend import as_is_body, record_entry_as_is, request_body

    records = (ConsumedRecord("t", 0, 1, 5, b'"k"', b"{}"), ConsumedRecord("t", 0, 2, 5, None, None))
    values = (records[0], ConsumedRecord("t", 0, 2, 5, b"[1]", b'"v"'))
    added = AddedHeaders()
    added.add_each(records, "X-Correlation-Id", [b"c-1", b"c-2"])
    assert added.column(records) == ("X-Correlation-Id", [b"c-1", b"c-2"])
    assert added.column(list(records)) is None  # only for the very records it was added to
    for java in (False, True):
        body = as_is_body("c", values, ("X-Correlation-Id", [b"c-1", b"c-2"]), java)
        assert body == request_body("c", [record_entry_as_is(r, added.of(r)) for r in values], java)
        assert as_is_body("c", values, None, java) == request_body("c", [record_entry_as_is(r) for r in values], java)
    assert added.column(records) is None  # asked per record: spread out, still the same headers
    assert added.headers(records[1]) == (("X-Correlation-Id", b"c-2"),)
    for text in (b'say "hi"', b"a\\b", b"tab\there", b"del\x7f", "café".encode()):  # needs escaping
        assert as_is_body("c", values, ("X-Correlation-Id", [b"c-1", text])) is None
    printable = bytes(range(0x20, 0x7F)).replace(b'"', b"").replace(b"\\", b"")  # every byte kept as it is
    body = as_is_body("c", values, ("X-Correlation-Id", [b"c-1", printable]))
    assert body == request_body("c", [record_entry_as_is(r, added.of(r)) for r in values[:1]] + [
        record_entry_as_is(values[1], (("X-Correlation-Id", printable),))])  # fmt: skip
    fetched = (msgspec.structs.replace(values[0], headers=(("a", b"b"),)), values[1])
    assert as_is_body("c", fetched, ("X-Correlation-Id", [b"c-1", b"c-2"])) is None
    assert as_is_body("c", records) is None  # a tombstone: written record by record
    mixed = (values[0], msgspec.structs.replace(values[1], key=None))
    assert as_is_body("c", mixed) is None  # some keys null, some not: record by record
    nulls = [msgspec.structs.replace(r, key=None) for r in values]
    assert as_is_body("c", nulls) == request_body("c", [record_entry_as_is(r) for r in nulls])


def test_ids_sharing_a_prefix_read_and_write_as_the_plain_ids() -> None:
    from kafka_sidecar._records import AddedHeaders, SharedPrefix
    from kafka_sidecar_handlers.reactive._backend import as_is_body, record_entry_as_is, request_body

    ids = SharedPrefix(b"c-", [b"1", b"2", b"3"])
    assert (len(ids), ids[0], ids[-1], list(ids)) == (3, b"c-1", b"c-3", [b"c-1", b"c-2", b"c-3"])
    assert ids[1:] == [b"c-2", b"c-3"]
    assert isinstance(ids[1:], SharedPrefix)
    assert ids == SharedPrefix(b"c-", (b"1", b"2", b"3"))
    assert ids != [b"c-1"]
    records = tuple(ConsumedRecord("t", 0, n, 5, b'"k"', b"{}") for n in range(3))
    added = AddedHeaders()
    added.add_each(records, "X-Correlation-Id", ids)
    for java in (False, True):
        plain = as_is_body("c", records, ("X-Correlation-Id", [b"c-1", b"c-2", b"c-3"]), java)
        assert as_is_body("c", records, ("X-Correlation-Id", ids), java) == plain
        assert plain == request_body("c", [record_entry_as_is(r, added.of(r)) for r in records], java)
    assert added.headers(records[2]) == (("X-Correlation-Id", b"c-3"),)  # read one by one: the same ids
    for prefix, suffixes in ((b'say "', [b"1", b"2", b"3"]), (b"c-", [b"1", b"\\", b"3"])):  # needs escaping
        assert as_is_body("c", records, ("X-Correlation-Id", SharedPrefix(prefix, suffixes))) is None
