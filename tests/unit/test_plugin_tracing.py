"""The tracing middleware alone: an SDK tracer provider with the in-memory exporter, fake terminals."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import default_getter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from kafka_sidecar._config.model import KafkaConfig, SidecarConfig
from kafka_sidecar._errors import KafkaUnavailable, ValidationFailed
from kafka_sidecar._events import DeadLettered
from kafka_sidecar._exchange import (
    BACKEND_HEADERS,
    DELIVERED,
    OUTGOING_HEADERS,
    PRODUCED,
    Exchange,
    HttpRequest,
    Produced,
    RecordOutcome,
    Reply,
)
from kafka_sidecar._kafka.producer import ProducerService
from kafka_sidecar._records import ConsumedRecord, DeliveryReport, OutgoingRecord
from kafka_sidecar._resources import Resources
from kafka_sidecar._serdes.base import SerdeRegistry
from kafka_sidecar_plugins.tracing import (
    DEAD_LETTER_SPANS,
    GLOBAL_PROVIDER_RECHECK_S,
    TRACER_PROVIDER,
    DeadLetterSpans,
    TracingConfig,
    TracingHandler,
    _Tracers,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def resources(exporter: InMemorySpanExporter) -> Resources:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    res = bare_resources()
    res.services[TRACER_PROVIDER] = provider
    return res


def bare_resources() -> Resources:
    """Resources with the services the tracing plugin declares (what assembly builds)."""
    res = Resources(SidecarConfig(), SerdeRegistry(), ProducerService(KafkaConfig()))
    res.services[DEAD_LETTER_SPANS] = DeadLetterSpans(res)
    return res


def http_exchange(headers: dict[str, str]) -> Exchange:
    request = HttpRequest("POST", "/producers/orders", "/producers/{topic}", {"topic": "orders"}, {}, headers, b"{}")
    return Exchange("http", "/producers/{topic}", request)


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


class ProducingTerminal:
    def __init__(self, ok: bool = True) -> None:
        self.ok = ok
        self.trace_id_inside: int | None = None

    async def __call__(self, exchange: Exchange) -> Reply:
        self.trace_id_inside = trace.get_current_span().get_span_context().trace_id
        shared = exchange.stash.get(OUTGOING_HEADERS) or []
        record = OutgoingRecord("orders", None, b"v", tuple(shared))
        report = DeliveryReport("orders", 1, 7) if self.ok else DeliveryReport("orders", None, None, 50003, "down")
        exchange.stash[PRODUCED] = Produced("orders", (record,), (report,))
        return Reply(200 if self.ok else 207, {})


@pytest.mark.asyncio
async def test_http_context_is_continued_and_injected_into_record_headers(
    resources: Resources, exporter: InMemorySpanExporter
) -> None:
    handler = TracingHandler(TracingConfig(record_baggage_keys=("tenant",)), resources)
    terminal = ProducingTerminal()
    exchange = http_exchange({"traceparent": PARENT, "tracestate": "vendor=x", "baggage": "tenant=acme,token=s3cret"})
    await handler(exchange, terminal)
    spans = by_name(exporter)
    server, send = spans["POST /producers/{topic}"], spans["send orders"]
    assert server.kind is SpanKind.SERVER
    assert send.kind is SpanKind.PRODUCER
    assert f"{server.context.trace_id:032x}" == TRACE_ID
    assert server.parent is not None
    assert f"{server.parent.span_id:016x}" == "00f067aa0ba902b7"
    assert send.parent is not None
    assert send.parent.span_id == server.context.span_id
    assert send.attributes is not None
    assert send.attributes["messaging.system"] == "kafka"
    assert send.attributes["messaging.destination.name"] == "orders"
    assert send.attributes["messaging.kafka.offset"] == 7
    headers = {name: value.decode() for name, value in exchange.stash[OUTGOING_HEADERS]}
    assert headers["traceparent"] == f"00-{TRACE_ID}-{send.context.span_id:016x}-01"
    assert headers["tracestate"] == "vendor=x"
    assert headers["baggage"] == "tenant=acme"
    assert terminal.trace_id_inside == send.context.trace_id


@pytest.mark.asyncio
@pytest.mark.parametrize("recording", [True, False])
async def test_baggage_reaches_records_only_for_opted_in_keys(resources: Resources, recording: bool) -> None:
    if not recording:  # no SDK: the pass-through path injects too
        resources = bare_resources()
    incoming = {"traceparent": PARENT, "baggage": "tenant=acme,api_token=s3cret"}
    default = http_exchange(incoming)
    await TracingHandler(TracingConfig(), resources)(default, ProducingTerminal())
    names = {name for name, _ in default.stash[OUTGOING_HEADERS]}
    assert "traceparent" in names
    assert "baggage" not in names
    opted = http_exchange(incoming)
    await TracingHandler(TracingConfig(record_baggage_keys=("tenant",)), resources)(opted, ProducingTerminal())
    pairs = opted.stash[OUTGOING_HEADERS]
    assert [value for name, value in pairs if name == "baggage"] == [b"tenant=acme"]


@pytest.mark.asyncio
async def test_unacknowledged_records_mark_the_produce_span_as_error(
    resources: Resources, exporter: InMemorySpanExporter
) -> None:
    await TracingHandler(TracingConfig(), resources)(http_exchange({}), ProducingTerminal(ok=False))
    send = by_name(exporter)["send orders"]
    assert send.status.status_code is StatusCode.ERROR
    assert send.attributes is not None
    assert send.attributes["kafka_sidecar.records_failed"] == 1


@pytest.mark.asyncio
async def test_no_injection_when_switched_off(resources: Resources) -> None:
    exchange = http_exchange({"traceparent": PARENT})
    await TracingHandler(TracingConfig(inject_records=False), resources)(exchange, ProducingTerminal())
    assert OUTGOING_HEADERS not in exchange.stash


def consumed(offset: int, traceparent: str | None) -> ConsumedRecord:
    headers = (("traceparent", traceparent.encode()),) if traceparent else ()
    return ConsumedRecord("orders", 0, offset, 1, None, b"v", headers)


class DeliveringTerminal:
    async def __call__(self, exchange: Exchange) -> Reply:
        exchange.stash[DELIVERED] = tuple(RecordOutcome(r, "SUCCESS") for r in exchange.records)
        return Reply(200)


@pytest.mark.asyncio
async def test_consumer_span_continues_a_shared_producer_trace_and_feeds_the_backend(
    resources: Resources, exporter: InMemorySpanExporter
) -> None:
    other = "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01"
    exchange = Exchange("consumer", "orders-consumer", records=(consumed(1, PARENT), consumed(2, other)))
    await TracingHandler(TracingConfig(), resources)(exchange, DeliveringTerminal())
    span = by_name(exporter)["process orders"]
    assert span.kind is SpanKind.CONSUMER
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert [f"{link.context.span_id:016x}" for link in span.links] == ["00f067aa0ba902b7", "1111111111111111"]
    assert span.attributes is not None
    assert span.attributes["messaging.batch.message_count"] == 2
    assert span.attributes["kafka_sidecar.delivered.success"] == 2
    backend = exchange.stash[BACKEND_HEADERS]
    assert backend["traceparent"] == f"00-{TRACE_ID}-{span.context.span_id:016x}-01"


@pytest.mark.asyncio
async def test_a_batch_from_different_traces_gets_a_new_root_linked_to_each(
    resources: Resources, exporter: InMemorySpanExporter
) -> None:
    other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    records = (consumed(1, PARENT), consumed(2, other), consumed(3, None), consumed(4, other), consumed(5, PARENT))
    exchange = Exchange("consumer", "c", records=records)
    await TracingHandler(TracingConfig(), resources)(exchange, DeliveringTerminal())
    span = by_name(exporter)["process orders"]
    assert span.parent is None
    assert f"{span.context.trace_id:032x}" not in (TRACE_ID, "0af7651916cd43dd8448eb211c80319c")
    # one link per distinct producer span, in record order (repeats of a span add nothing)
    assert [f"{link.context.trace_id:032x}" for link in span.links] == [TRACE_ID, "0af7651916cd43dd8448eb211c80319c"]


@pytest.mark.asyncio
async def test_dead_letter_writes_get_a_producer_span_in_the_record_trace(
    resources: Resources, exporter: InMemorySpanExporter
) -> None:
    TracingHandler(TracingConfig(), resources)
    TracingHandler(TracingConfig(), resources)  # a second instance must not subscribe twice
    event = DeadLettered(consumed(4, PARENT), "orders.dlq", None, None, "boom", 3, "c", written=False)
    resources.events.publish(event)
    spans = [s for s in exporter.get_finished_spans() if s.name == "send orders.dlq"]
    assert len(spans) == 1
    assert f"{spans[0].context.trace_id:032x}" == TRACE_ID
    assert spans[0].status.status_code is StatusCode.ERROR


def test_the_global_propagator_is_w3c() -> None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier, propagate.extract({"traceparent": PARENT}))
    assert carrier["traceparent"] == PARENT


@pytest.mark.asyncio
async def test_without_an_sdk_the_callers_context_still_reaches_records_and_backend() -> None:
    res = bare_resources()
    handler = TracingHandler(TracingConfig(), res)
    exchange = http_exchange({"traceparent": PARENT})
    terminal = ProducingTerminal()
    await handler(exchange, terminal)
    shared = exchange.stash[OUTGOING_HEADERS]
    assert dict(shared)["traceparent"] == PARENT.encode()
    assert terminal.trace_id_inside == int(TRACE_ID, 16)
    untraced = http_exchange({})
    await handler(untraced, ProducingTerminal())
    assert OUTGOING_HEADERS not in untraced.stash
    batch = Exchange("consumer", "c", records=(consumed(1, PARENT),))
    await handler(batch, DeliveringTerminal())
    assert batch.stash[BACKEND_HEADERS]["traceparent"] == PARENT


class Rejecting:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def __call__(self, exchange: Exchange) -> Reply:
        raise self.exc


@pytest.mark.asyncio
async def test_a_client_error_is_recorded_but_only_server_errors_mark_spans_as_error(
    resources: Resources, exporter: InMemorySpanExporter
) -> None:
    handler = TracingHandler(TracingConfig(), resources)
    with pytest.raises(ValidationFailed):
        await handler(http_exchange({}), Rejecting(ValidationFailed("bad", field="records")))
    spans = by_name(exporter)
    server = spans["POST /producers/{topic}"]
    assert server.status.status_code is StatusCode.UNSET
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 422
    assert [event.name for event in server.events] == ["exception"]
    exporter.clear()
    with pytest.raises(KafkaUnavailable):
        await handler(http_exchange({}), Rejecting(KafkaUnavailable("down")))
    assert all(s.status.status_code is StatusCode.ERROR for s in exporter.get_finished_spans())


class HeaderPropagator(TraceContextTextMapPropagator):
    """W3C trace context carried in a differently named header (a deployment's own propagator)."""

    def extract(self, carrier: Any, context: Any = None, getter: Any = default_getter) -> Any:
        value = carrier.get("x-trace")
        return super().extract({"traceparent": value} if value else {}, context)

    @property
    def fields(self) -> set[str]:
        return {"X-Trace"}


@pytest.mark.asyncio
async def test_without_an_sdk_the_global_propagators_own_headers_are_honoured() -> None:
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(HeaderPropagator())
    try:
        handler = TracingHandler(TracingConfig(), bare_resources())
        terminal = ProducingTerminal()
        await handler(http_exchange({"x-trace": PARENT}), terminal)
        assert terminal.trace_id_inside == int(TRACE_ID, 16)
        ignored = ProducingTerminal()
        await handler(http_exchange({"traceparent": PARENT}), ignored)
        assert ignored.trace_id_inside == 0
    finally:
        propagate.set_global_textmap(previous)


RECEIVE_CONFIG = """\
kafka: {bootstrap_servers: "127.0.0.1:1"}
handlers:
  traced-in:
    use: reactive-consumer
    config: {topics: [orders], group: g1, backend_url: "http://127.0.0.1:1"}
  plain-in:
    use: reactive-consumer
    config: {topics: [orders], group: g2, backend_url: "http://127.0.0.1:1"}
consumers:
  traced: {exec: [tracing, traced-in]}
  plain: {exec: [plain-in]}
"""


def test_receive_spans_only_for_consumers_whose_chain_traces(tmp_path: Any, exporter: InMemorySpanExporter) -> None:
    from kafka_sidecar._events import BatchFetched
    from kafka_sidecar._sidecar import Sidecar
    from kafka_sidecar_plugins import tracing

    path = tmp_path / "chains.yml"
    path.write_text(RECEIVE_CONFIG, encoding="utf-8")
    sidecar = Sidecar.from_file(path, env={})
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sidecar.resources.services[TRACER_PROVIDER] = provider
    tracing.kafka_sidecar_startup(sidecar.view)
    events = sidecar.resources.events
    events.publish(BatchFetched("traced", "g1", (("orders", 0, 3), ("orders", 1, 2)), 1_000, 5_000))
    events.publish(BatchFetched("plain", "g2", (("orders", 0, 7),), 1_000, 5_000))
    (span,) = exporter.get_finished_spans()
    assert span.name == "receive orders"
    assert span.kind is SpanKind.CONSUMER
    assert span.parent is None
    assert (span.start_time, span.end_time) == (1_000, 5_000)
    assert span.attributes is not None
    assert span.attributes["messaging.batch.message_count"] == 5
    assert span.attributes["kafka_sidecar.consumer"] == "traced"


def test_with_no_global_sdk_the_provider_is_asked_again_only_once_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []
    provider: trace.TracerProvider = trace.ProxyTracerProvider()

    def global_provider() -> trace.TracerProvider:
        asked.append(1)
        return provider

    monkeypatch.setattr(trace, "get_tracer_provider", global_provider)
    now = [100.0]
    tracers = _Tracers(bare_resources(), clock=lambda: now[0])
    assert [tracers.recording() for _ in range(1000)] == [False] * 1000
    assert len(asked) == 1, "no SDK: OpenTelemetry is not asked on every exchange"
    provider = TracerProvider()  # an SDK set as the global provider later
    now[0] += GLOBAL_PROVIDER_RECHECK_S
    assert tracers.recording() is True
    assert tracers.recording() is True
    assert len(asked) == 3, "with an SDK it is asked every time (cheap once one is set)"
