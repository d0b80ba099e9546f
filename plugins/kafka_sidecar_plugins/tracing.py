"""W3C trace context through the OpenTelemetry API only (the deployment chooses the SDK).

HTTP exchanges: ``traceparent``/``tracestate``/``baggage`` are extracted from the request, a SERVER
span covers the request and, on routes with a ``{topic}``, a PRODUCER span ``send <topic>`` whose
context is injected into every produced record's headers (baggage only for the keys listed in
``record_baggage_keys``). Consumer exchanges: the context is
extracted from each record's headers, a CONSUMER span ``process <topic>`` links to every distinct
producer context (and is the child of it when the whole batch shares one trace), and its context is
injected into the backend call's headers. Dead-letter writes get a PRODUCER span ``send <dlq topic>``.

Per consumed record only the headers the propagator reads are picked out; records carrying the same
values (the records of one produce request share a ``traceparent``) are extracted once, and a record
with none of them costs no extraction at all. So a span gets one link per distinct producer span
context, not one per record (identical links said nothing more).

The tracer comes from ``resources.services[TRACER_PROVIDER]`` when a plugin or test puts one there,
else from the global OpenTelemetry tracer provider; the propagator is the global one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from kafka_sidecar.plugin import (
    BACKEND_HEADERS,
    DELIVERED,
    PRODUCED,
    BatchFetched,
    ConsumedRecord,
    DeadLettered,
    Exchange,
    HandlerSpec,
    Next,
    Reply,
    Resources,
    ServiceSpec,
    SidecarError,
    SidecarView,
    StashKey,
    UniformOutcomes,
    hookimpl,
)

TRACER_NAME = "kafka_sidecar"
_HEADERS = attrgetter("headers")
TRACER_PROVIDER: StashKey[trace.TracerProvider] = StashKey("tracing.tracer-provider")
"""Put a TracerProvider here (``resources.services``) to use it instead of the global one."""


@dataclass(frozen=True, slots=True)
class TracingConfig:
    server_spans: bool = field(default=True, metadata={"doc": "A SERVER span per HTTP request."})
    inject_records: bool = field(default=True, metadata={"doc": "Inject trace context into produced records."})
    inject_backend: bool = field(default=True, metadata={"doc": "Inject trace context into the backend call."})
    dead_letter_spans: bool = field(default=True, metadata={"doc": "A PRODUCER span per dead-letter write."})
    max_links: int = field(default=128, metadata={"doc": "Most producer links on one consumer span."})
    record_baggage_keys: tuple[str, ...] = field(
        default=(),
        metadata={
            "doc": "Baggage entries copied into produced records' 'baggage' header, by key (default: none, so a "
            "credential put in baggage never reaches Kafka)."
        },
    )


def record_carrier(record: ConsumedRecord) -> dict[str, str]:
    """A record's headers as a propagation carrier (lower-case names, text values)."""
    return {name.lower(): value.decode("utf-8", "replace") for name, value in record.headers}


GLOBAL_PROVIDER_RECHECK_S = 1.0
"""While no global SDK is set, how long "not recording" is trusted before the global provider is asked
again: OpenTelemetry's ``get_tracer_provider()`` reads ``os.environ`` on every call until a provider is set
(2.4 µs of the chain's 26 µs per request in process; docs/benchmarks.md). A provider set later is honoured
within this time."""


class _Tracers:
    """Resolves the tracer at use time, so a provider registered after assembly is honoured (one in
    ``resources.services`` at once, a global one within :data:`GLOBAL_PROVIDER_RECHECK_S`)."""

    def __init__(self, resources: Resources, clock: Callable[[], float] = time.monotonic) -> None:
        self._services = resources.services
        self._cached: tuple[object, trace.Tracer] | None = None
        self._clock = clock
        self._idle_until = float("-inf")
        """Until then, no global SDK is assumed (the last look found none)."""

    def recording(self) -> bool:
        """False while no SDK is configured: spans would be no-ops, so only propagation is done."""
        if self._services.get(TRACER_PROVIDER) is not None:
            return True
        now = self._clock()
        if now < self._idle_until:
            return False
        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider):
            self._idle_until = now + GLOBAL_PROVIDER_RECHECK_S
            return False
        return True

    def get(self) -> trace.Tracer:
        provider = self._services.get(TRACER_PROVIDER)
        if self._cached is None or self._cached[0] is not provider:
            tracer = provider.get_tracer(TRACER_NAME) if provider is not None else trace.get_tracer(TRACER_NAME)
            self._cached = (provider, tracer)
        return self._cached[1]


def _messaging(topic: str, operation: str) -> dict[str, str]:
    return {
        "messaging.system": "kafka",
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": topic,
    }


def _status_of(exc: BaseException) -> int:
    return exc.status if isinstance(exc, SidecarError) else 500


def _failed(span: trace.Span, exc: Exception, *, server: bool) -> None:
    """An exception crossed the span: recorded; an error status only for a server-side failure (5xx)."""
    status = _status_of(exc)
    span.record_exception(exc)
    if server:
        span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


class TracingHandler:
    def __init__(self, config: TracingConfig, resources: Resources) -> None:
        self._config = config
        self._tracers = _Tracers(resources)
        self._fields: tuple[object, frozenset[str]] | None = None
        if config.dead_letter_spans:
            resources.services[DEAD_LETTER_SPANS].enable()

    async def __call__(self, exchange: Exchange, call_next: Next) -> Reply:
        if exchange.kind == "http":
            return await self._http(exchange, call_next)
        return await self._consumer(exchange, call_next)

    def _propagator_fields(self) -> frozenset[str]:
        """The (lower-case) header names the global propagator reads."""
        textmap = propagate.get_global_textmap()
        if self._fields is None or self._fields[0] is not textmap:
            self._fields = (textmap, frozenset(field.lower() for field in textmap.fields))
        return self._fields[1]

    def _carries_context(self, headers: Mapping[str, str]) -> bool:
        """Whether the request has any header the global propagator reads (else extracting finds nothing)."""
        return not self._propagator_fields().isdisjoint(headers)  # one pass over the headers, in C

    async def _http(self, exchange: Exchange, call_next: Next) -> Reply:
        request = exchange.http()
        if not self._tracers.recording():
            if not self._carries_context(request.headers):
                return await call_next(exchange)
            return await self._pass_through(exchange, call_next, propagate.extract(request.headers))
        parent = propagate.extract(request.headers)
        tracer = self._tracers.get()
        token = otel_context.attach(parent)
        try:
            if not self._config.server_spans:
                return await self._produce(exchange, call_next, tracer)
            attributes = {"http.request.method": request.method, "http.route": request.route, "url.path": request.path}
            with tracer.start_as_current_span(
                f"{request.method} {request.route}",
                kind=SpanKind.SERVER,
                attributes=attributes,
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                try:
                    reply = await self._produce(exchange, call_next, tracer)
                except Exception as exc:
                    _failed(span, exc, server=True)
                    raise
                span.set_attribute("http.response.status_code", reply.status)
                if reply.status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                return reply
        finally:
            otel_context.detach(token)

    async def _pass_through(self, exchange: Exchange, call_next: Next, parent: otel_context.Context) -> Reply:
        """Without an SDK: the caller's context still reaches the records (and the logs), at little cost."""
        if not trace.get_current_span(parent).get_span_context().is_valid:
            return await call_next(exchange)
        token = otel_context.attach(parent)
        try:
            if self._config.inject_records and "topic" in exchange.http().path_params:
                self._inject(exchange.add_record_header)
            return await call_next(exchange)
        finally:
            otel_context.detach(token)

    def _inject(self, add: Callable[[str, bytes], None]) -> None:
        """Trace context into record headers; of the baggage, only the opted-in keys."""
        context = otel_context.get_current()
        entries = baggage.get_all(context)
        if entries:
            context = baggage.clear(context)
            for key in self._config.record_baggage_keys:
                if key in entries:
                    context = baggage.set_baggage(key, entries[key], context)
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context)
        for name, value in carrier.items():
            add(name, value.encode("utf-8"))

    async def _produce(self, exchange: Exchange, call_next: Next, tracer: trace.Tracer) -> Reply:
        topic = exchange.http().path_params.get("topic")
        if topic is None:
            return await call_next(exchange)
        with tracer.start_as_current_span(
            f"send {topic}",
            kind=SpanKind.PRODUCER,
            attributes=_messaging(topic, "send"),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            if self._config.inject_records:
                self._inject(exchange.add_record_header)
            try:
                reply = await call_next(exchange)
            except Exception as exc:
                _failed(span, exc, server=False)
                raise
            produced = exchange.stash.get(PRODUCED)
            if produced is not None:
                span.set_attribute("messaging.batch.message_count", len(produced.reports))
                failed = len(produced.reports) - produced.acknowledged
                if len(produced.reports) == 1 and produced.reports[0].acknowledged:
                    report = produced.reports[0]
                    span.set_attribute("messaging.destination.partition.id", str(report.partition))
                    span.set_attribute("messaging.kafka.offset", report.offset or 0)
                if failed:
                    span.set_attribute("kafka_sidecar.records_failed", failed)
                    span.set_status(Status(StatusCode.ERROR, f"{failed} records not acknowledged"))
            return reply

    async def _consumer(self, exchange: Exchange, call_next: Next) -> Reply:
        parent, links = self._producer_contexts(exchange.records)
        if not self._tracers.recording():
            if self._config.inject_backend and links:
                carrier: dict[str, str] = {}
                propagate.inject(carrier, parent)
                exchange.stash.setdefault(BACKEND_HEADERS, {}).update(carrier)
            return await call_next(exchange)
        tracer = self._tracers.get()
        topics = {record.topic for record in exchange.records}
        topic = next(iter(topics)) if len(topics) == 1 else "multiple"
        attributes: dict[str, str | int] = {
            **_messaging(topic, "process"),
            "messaging.batch.message_count": len(exchange.records),
            "messaging.consumer.group.name": exchange.name,
        }
        with tracer.start_as_current_span(
            f"process {topic}", context=parent, kind=SpanKind.CONSUMER, links=links, attributes=attributes
        ) as span:
            if self._config.inject_backend:
                backend: dict[str, str] = {}
                propagate.inject(backend)
                exchange.stash.setdefault(BACKEND_HEADERS, {}).update(backend)
            reply = await call_next(exchange)
            outcomes = exchange.stash.get(DELIVERED) or ()
            counts: dict[str, int] = {}
            if isinstance(outcomes, UniformOutcomes):  # one status for the batch
                counts[outcomes.status] = len(outcomes)
                failed = bool(outcomes.error) and len(outcomes) > 0
            else:
                for outcome in outcomes:
                    counts[outcome.status] = counts.get(outcome.status, 0) + 1
                failed = any(outcome.error for outcome in outcomes)
            for status, count in counts.items():
                span.set_attribute(f"kafka_sidecar.delivered.{status.lower()}", count)
            if failed:
                span.set_status(Status(StatusCode.ERROR, "some records were not accepted by the backend"))
            return reply

    def _producer_contexts(self, records: Sequence[ConsumedRecord]) -> tuple[otel_context.Context, list[Link]]:
        """The batch's common producer context as parent (else a fresh root), and a link to each distinct one."""
        fields = self._propagator_fields()
        carriers: dict[tuple[tuple[str, bytes], ...], None] = {}  # distinct ones, in record order
        if not any(map(_HEADERS, records)):  # no record has any header (checked in C): nothing to extract
            records = ()
        for record in records:
            if record.headers:
                carrier = tuple((name.lower(), value) for name, value in record.headers if name.lower() in fields)
                if carrier:
                    carriers[carrier] = None
        links: list[Link] = []
        seen: set[tuple[int, int]] = set()
        contexts: dict[int, otel_context.Context] = {}
        for carrier in carriers:
            ctx = propagate.extract({name: value.decode("utf-8", "replace") for name, value in carrier})
            span_context = trace.get_current_span(ctx).get_span_context()
            if span_context.is_valid:
                contexts.setdefault(span_context.trace_id, ctx)
                ids = (span_context.trace_id, span_context.span_id)
                if ids not in seen and len(links) < self._config.max_links:
                    seen.add(ids)
                    links.append(Link(span_context))
        parent = next(iter(contexts.values())) if len(contexts) == 1 else otel_context.Context()
        return parent, links


class DeadLetterSpans:
    """A ``send`` span per dead letter: a service the plugin declares, subscribed once however many
    tracing handlers ask for it."""

    def __init__(self, resources: Resources) -> None:
        self._tracers = _Tracers(resources)
        self._events = resources.events
        self._enabled = False

    def enable(self) -> None:
        if not self._enabled:
            self._enabled = True
            self._events.subscribe(DeadLettered, self._dead_lettered)

    def _dead_lettered(self, event: DeadLettered) -> None:
        if not self._tracers.recording():
            return
        parent = propagate.extract(record_carrier(event.record))
        attributes: Mapping[str, str | int] = {
            **_messaging(event.dead_letter_topic, "send"),
            "kafka_sidecar.source.topic": event.record.topic,
            "kafka_sidecar.source.partition": event.record.partition,
            "kafka_sidecar.source.offset": event.record.offset,
            "kafka_sidecar.attempts": event.attempts,
        }
        span = self._tracers.get().start_span(
            f"send {event.dead_letter_topic}", context=parent, kind=SpanKind.PRODUCER, attributes=attributes
        )
        if not event.written:
            span.set_status(Status(StatusCode.ERROR, event.error[:200]))
        span.end()


DEAD_LETTER_SPANS: StashKey[DeadLetterSpans] = StashKey("tracing.dead-letter-spans")


@hookimpl
def kafka_sidecar_register_services(register: Callable[[ServiceSpec[DeadLetterSpans]], None]) -> None:
    register(ServiceSpec(DEAD_LETTER_SPANS, DeadLetterSpans, "Send spans for dead letters"))


@hookimpl
def kafka_sidecar_register_handlers(register: Callable[[HandlerSpec[TracingConfig]], None]) -> None:
    register(
        HandlerSpec(
            name="tracing",
            factory=TracingHandler,
            config_type=TracingConfig,
            kind="middleware",
            description="W3C trace context (OpenTelemetry API): HTTP -> record headers -> backend, with spans.",
        )
    )


@hookimpl
def kafka_sidecar_startup(sidecar: SidecarView) -> None:
    """A ``receive`` span per poll that returned records, for consumers whose chain includes tracing.

    The consumer's poll runs outside its chain (the source reads, then feeds batches in), so the span is
    recorded from the source's ``BatchFetched`` event, with the poll's own start and end times.
    """
    traced = {c.name for c in sidecar.consumers if c.uses("tracing")}
    if not traced:
        return
    tracers = _Tracers(sidecar.resources)

    def on_fetch(event: BatchFetched) -> None:
        if event.consumer not in traced or not tracers.recording():
            return
        topics = sorted({topic for topic, _, _ in event.partitions})
        attributes: dict[str, AttributeValue] = {
            **_messaging(",".join(topics), "receive"),
            "messaging.consumer.group.name": event.group,
            "messaging.batch.message_count": sum(count for _, _, count in event.partitions),
            "kafka_sidecar.consumer": event.consumer,
        }
        span = tracers.get().start_span(
            f"receive {','.join(topics)}",
            context=otel_context.Context(),  # a root span: a poll belongs to no caller's trace
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            start_time=event.started_ns,
        )
        span.end(end_time=event.ended_ns)

    sidecar.resources.events.subscribe(BatchFetched, on_fetch)
