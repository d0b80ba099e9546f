"""The correlation middleware alone, with a recording fake terminal."""

from __future__ import annotations

import logging
import uuid

import pytest

from kafka_sidecar._config.model import KafkaConfig, SidecarConfig
from kafka_sidecar._errors import ValidationFailed
from kafka_sidecar._exchange import BACKEND_HEADERS, OUTGOING_HEADERS, RESPONSE_HEADERS, Exchange, HttpRequest, Reply
from kafka_sidecar._kafka.producer import ProducerService
from kafka_sidecar._records import ConsumedRecord
from kafka_sidecar._resources import Resources
from kafka_sidecar._serdes.base import SerdeRegistry
from kafka_sidecar.plugin import CORRELATION, LOG_IDS, CorrelationIds
from kafka_sidecar_plugins.correlation import CorrelationConfig, CorrelationHandler


def resources() -> Resources:
    return Resources(SidecarConfig(), SerdeRegistry(), ProducerService(KafkaConfig()))


def http_exchange(headers: dict[str, str] | None = None) -> Exchange:
    request = HttpRequest("POST", "/producers/t", "/producers/{topic}", {"topic": "t"}, {}, headers or {}, b"{}")
    return Exchange("http", "/producers/{topic}", request)


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Exchange] = []
        self.ids_in_context: list[CorrelationIds | None] = []

    async def __call__(self, exchange: Exchange) -> Reply:
        self.seen.append(exchange)
        self.ids_in_context.append(LOG_IDS.get())
        return Reply(200, {})


def record(offset: int, headers: tuple[tuple[str, bytes], ...] = ()) -> ConsumedRecord:
    return ConsumedRecord("orders", 0, offset, 1, b"k", b"v", headers)


@pytest.mark.asyncio
async def test_ids_from_the_request_go_to_response_records_and_context() -> None:
    handler = CorrelationHandler(CorrelationConfig(), resources())
    terminal = Recorder()
    exchange = http_exchange({"x-correlation-id": "c-1", "x-traceability-id": "t-1"})
    await handler(exchange, terminal)
    assert exchange.stash[RESPONSE_HEADERS] == {"X-Correlation-Id": "c-1", "X-Traceability-Id": "t-1"}
    assert exchange.stash[OUTGOING_HEADERS] == [("X-Correlation-Id", b"c-1"), ("X-Traceability-Id", b"t-1")]
    assert terminal.ids_in_context == [CorrelationIds("c-1", "t-1", False)]
    assert LOG_IDS.get() is None


@pytest.mark.asyncio
async def test_a_missing_correlation_id_is_generated_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    handler = CorrelationHandler(CorrelationConfig(), resources())
    exchange = http_exchange()
    with caplog.at_level(logging.DEBUG, logger="kafka_sidecar_plugins.correlation"):
        await handler(exchange, Recorder())
    cid = exchange.stash[RESPONSE_HEADERS]["X-Correlation-Id"]
    uuid.UUID(cid)
    assert exchange.stash[CORRELATION].generated
    assert "X-Traceability-Id" not in exchange.stash[RESPONSE_HEADERS]
    assert any(cid in message for message in caplog.messages)


@pytest.mark.asyncio
async def test_generation_and_record_headers_can_be_switched_off() -> None:
    handler = CorrelationHandler(CorrelationConfig(generate=False, to_records=False), resources())
    exchange = http_exchange()
    await handler(exchange, Recorder())
    assert RESPONSE_HEADERS not in exchange.stash
    assert OUTGOING_HEADERS not in exchange.stash


@pytest.mark.asyncio
async def test_an_unprintable_or_too_long_id_is_a_422_naming_the_header() -> None:
    handler = CorrelationHandler(CorrelationConfig(max_length=8), resources())
    terminal = Recorder()
    with pytest.raises(ValidationFailed) as caught:
        await handler(http_exchange({"x-correlation-id": "x" * 9}), terminal)
    assert caught.value.field == "X-Correlation-Id"
    with pytest.raises(ValidationFailed) as caught:
        await handler(http_exchange({"x-traceability-id": "a\x00b"}), terminal)
    assert caught.value.field == "X-Traceability-Id"
    assert terminal.seen == []


@pytest.mark.asyncio
async def test_consumed_records_keep_their_ids_and_missing_ones_are_generated() -> None:
    handler = CorrelationHandler(CorrelationConfig(), resources())
    terminal = Recorder()
    given = record(1, (("X-Correlation-Id", b"c-1"), ("X-Traceability-Id", b"t-1")))
    bare = record(2)
    exchange = Exchange("consumer", "orders-consumer", records=(given, bare))
    await handler(exchange, terminal)
    first, second = terminal.seen[0].records
    assert first is given
    assert second is bare  # not copied: the generated id is an added header
    added = terminal.seen[0].added_headers
    assert added.of(given) == ()
    generated = added.header(second, "X-Correlation-Id")
    assert generated is not None
    assert added.headers(second) == (("X-Correlation-Id", generated),)
    uuid.UUID(generated.decode())
    assert (second.topic, second.partition, second.offset, second.value) == ("orders", 0, 2, b"v")
    backend = exchange.stash[BACKEND_HEADERS]
    # The batch's records disagree, so the backend call carries a batch id of its own.
    assert backend["X-Correlation-Id"] not in ("c-1", generated.decode())
    assert backend["X-Traceability-Id"] == "t-1"
    assert terminal.ids_in_context[0] == exchange.stash[CORRELATION]


@pytest.mark.asyncio
async def test_a_batch_sharing_one_id_sends_that_id_to_the_backend() -> None:
    handler = CorrelationHandler(CorrelationConfig(), resources())
    headers = (("x-correlation-id", b"same"),)
    exchange = Exchange("consumer", "c", records=(record(1, headers), record(2, headers)))
    await handler(exchange, Recorder())
    assert exchange.stash[BACKEND_HEADERS] == {"X-Correlation-Id": "same"}
    assert exchange.stash[CORRELATION] == CorrelationIds("same", None, False)


@pytest.mark.asyncio
async def test_a_retried_batch_keeps_the_ids_generated_on_its_first_attempt() -> None:
    handler = CorrelationHandler(CorrelationConfig(), resources())
    bare = record(7)
    first = Exchange("consumer", "c", records=(bare,))
    await handler(first, Recorder())
    generated = first.added_headers.header(bare, "X-Correlation-Id")
    assert generated is not None
    again = Exchange("consumer", "c", records=(bare,), added_headers=first.added_headers)
    await handler(again, Recorder())
    assert again.added_headers.headers(bare) == (("X-Correlation-Id", generated),)
    assert again.stash[CORRELATION] == CorrelationIds(generated.decode(), None, False)


def test_batch_ids_are_distinct_version_4_uuid_texts_for_any_batch_size() -> None:
    from kafka_sidecar_plugins.correlation import _IdMaker

    make = _IdMaker()
    seen: set[bytes] = set()
    for count in (3, 1, 700, 5):  # growing past and shrinking below the index texts made so far
        ids = make(count)
        assert len(ids) == count == len(set(ids))
        for text in (ids[0], ids[-1]):
            parsed = uuid.UUID(text.decode())
            assert parsed.version == 4
            assert str(parsed).encode() == text
        assert not seen & set(ids)  # each batch draws a new random head
        seen.update(ids)


def test_request_ids_are_distinct_version_4_uuid_texts_across_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    from kafka_sidecar_plugins import correlation

    monkeypatch.setattr(correlation, "IDS_PER_DRAW", 4)
    make = correlation._SequenceIds()
    ids = [make() for _ in range(10)]  # two new random draws along the way
    assert len(set(ids)) == 10
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert str(parsed) == text
    heads = [text[:24] for text in ids]
    assert heads[0] == heads[3] != heads[4] == heads[7] != heads[8]
    assert [text[24:] for text in ids[:5]] == ["000000000000", "000000000001", "000000000002", "000000000003",
                                               "000000000000"]  # fmt: skip


@pytest.mark.asyncio
async def test_generated_request_ids_differ_from_request_to_request() -> None:
    handler = CorrelationHandler(CorrelationConfig(), resources())
    exchanges = [http_exchange() for _ in range(3)]
    for exchange in exchanges:
        await handler(exchange, Recorder())
    ids = {exchange.stash[CORRELATION].correlation_id for exchange in exchanges}
    assert len(ids) == 3
