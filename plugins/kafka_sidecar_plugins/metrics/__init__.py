"""Metrics: the ``metrics`` middleware and the Prometheus, InfluxDB and OpenTelemetry exporters.

The registry is a core service (``resources.metrics``, one per sidecar); this plugin only records
into it and offers exporters, registered through ``kafka_sidecar_register_metrics_exporters`` like a
team's own would be. The ``metrics`` middleware measures what passes through its chains: HTTP
requests by route template and status (with latency), records produced/failed by topic, and consumed
batches (size, latency, per-record outcomes, backend errors). Dead letters and admin actions come
from the event bus, counted by one service the plugin declares (so two ``metrics`` handlers never
count twice). The ``metrics`` section of ``chains.yml`` chooses the exporters (default:
``prometheus``, serving ``GET /metrics``); exporting is on when some chain runs a ``metrics`` handler.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from kafka_sidecar.plugin import (
    DEFAULT_BUCKETS,
    DELIVERED,
    PRODUCED,
    AdminAction,
    ConfigSection,
    ConsumedRecord,
    DeadLettered,
    Exchange,
    HandlerSpec,
    MetricsExporterSpec,
    MetricsRegistry,
    Next,
    RecordOutcome,
    Reply,
    Resources,
    ServiceSpec,
    SidecarError,
    StashKey,
    UniformOutcomes,
    hookimpl,
)
from kafka_sidecar_plugins.metrics._influx import InfluxConfig, InfluxExporter
from kafka_sidecar_plugins.metrics._otel import METER_PROVIDER, OpenTelemetryExporter
from kafka_sidecar_plugins.metrics._prometheus import PrometheusExporter

__all__ = [
    "METER_PROVIDER",
    "InfluxConfig",
    "InfluxExporter",
    "MetricsConfig",
    "MetricsHandler",
    "OpenTelemetryExporter",
    "PrometheusExporter",
]

_TOPIC = attrgetter("topic")


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    latency_buckets: tuple[float, ...] = field(
        default=DEFAULT_BUCKETS, metadata={"doc": "Histogram buckets (seconds) for HTTP, batch and backend latency."}
    )
    batch_size_buckets: tuple[float, ...] = field(
        default=(1, 5, 10, 25, 50, 100, 250, 500, 1000), metadata={"doc": "Histogram buckets for consumed batch size."}
    )


class _Instruments:
    def __init__(self, registry: MetricsRegistry, config: MetricsConfig) -> None:
        lat, sizes = config.latency_buckets, config.batch_size_buckets
        self.http_requests = registry.counter(
            "kafka_sidecar_http_requests_total",
            "HTTP requests by route template and status.",
            ("method", "route", "status"),
        )
        self.http_latency = registry.histogram(
            "kafka_sidecar_http_request_duration_seconds", "HTTP request latency.", ("method", "route"), lat
        )
        self.produced = registry.counter(
            "kafka_sidecar_records_produced_total", "Records the broker acknowledged.", ("topic",)
        )
        self.produce_failed = registry.counter(
            "kafka_sidecar_records_failed_total", "Records the broker did not acknowledge.", ("topic",)
        )
        self.consumed = registry.counter(
            "kafka_sidecar_consumer_records_total",
            "Consumed records by outcome (SUCCESS, RETRY, DROP, DEADLETTER).",
            ("consumer", "topic", "outcome"),
        )
        self.batch_size = registry.histogram(
            "kafka_sidecar_consumer_batch_size", "Records per consumed batch.", ("consumer",), sizes
        )
        self.batch_latency = registry.histogram(
            "kafka_sidecar_consumer_batch_duration_seconds",
            "Time to handle one consumed batch (backend call included).",
            ("consumer",),
            lat,
        )
        self.backend_errors = registry.counter(
            "kafka_sidecar_consumer_backend_errors_total",
            "Consumed records the backend did not accept (outcome with an error) or batches that failed.",
            ("consumer", "kind"),
        )


class EventCounters:
    """Dead letters and admin actions from the event bus, counted once per sidecar."""

    def __init__(self, resources: Resources) -> None:
        registry = resources.metrics.registry
        self.dead_letters = registry.counter(
            "kafka_sidecar_dead_letters_total", "Records sent to a dead-letter topic.", ("source_topic", "written")
        )
        self.admin_actions = registry.counter("kafka_sidecar_admin_actions_total", "Admin actions.", ("action",))
        resources.events.subscribe(DeadLettered, self._dead_lettered)
        resources.events.subscribe(AdminAction, self._admin_action)

    def _dead_lettered(self, event: DeadLettered) -> None:
        self.dead_letters.inc(event.record.topic, "true" if event.written else "false")

    def _admin_action(self, event: AdminAction) -> None:
        self.admin_actions.inc(event.action)


EVENT_COUNTERS: StashKey[EventCounters] = StashKey("metrics.event-counters")


def _status_of(exc: BaseException) -> int:
    return exc.status if isinstance(exc, SidecarError) else 500


class MetricsHandler:
    def __init__(self, config: MetricsConfig, resources: Resources) -> None:
        self.registry = resources.metrics.registry
        self._m = _Instruments(self.registry, config)

    async def __call__(self, exchange: Exchange, call_next: Next) -> Reply:
        if exchange.kind == "http":
            return await self._http(exchange, call_next)
        return await self._consumer(exchange, call_next)

    async def _http(self, exchange: Exchange, call_next: Next) -> Reply:
        request = exchange.http()
        started = time.perf_counter()
        status = 500
        try:
            reply = await call_next(exchange)
            status = reply.status
            return reply
        except Exception as exc:
            status = _status_of(exc)
            raise
        finally:
            self._m.http_latency.observe(request.method, request.route, value=time.perf_counter() - started)
            self._m.http_requests.inc(request.method, request.route, str(status))
            produced = exchange.stash.get(PRODUCED)
            if produced is not None:
                ok = produced.acknowledged
                if ok:
                    self._m.produced.inc(produced.topic, amount=ok)
                if ok < len(produced.reports):
                    self._m.produce_failed.inc(produced.topic, amount=len(produced.reports) - ok)

    async def _consumer(self, exchange: Exchange, call_next: Next) -> Reply:
        consumer = exchange.name
        self._m.batch_size.observe(consumer, value=len(exchange.records))
        started = time.perf_counter()
        try:
            return await call_next(exchange)
        except Exception:
            self._m.backend_errors.inc(consumer, "batch")
            raise
        finally:
            self._m.batch_latency.observe(consumer, value=time.perf_counter() - started)
            self._count_outcomes(consumer, exchange.stash.get(DELIVERED) or ())

    def _count_topics(self, consumer: str, records: Sequence[ConsumedRecord], status: str) -> None:
        """``records`` counted per topic: a batch from one topic (the usual case) by one ``list.count``
        (identity first, in C; about half a ``Counter``'s time), else by a ``Counter``."""
        topics = list(map(_TOPIC, records))
        if topics and topics.count(topics[0]) == len(topics):
            self._m.consumed.inc(consumer, topics[0], status, amount=len(topics))
            return
        for topic, count in Counter(topics).items():
            self._m.consumed.inc(consumer, topic, status, amount=count)

    def _count_outcomes(self, consumer: str, outcomes: Sequence[RecordOutcome]) -> None:
        """Per batch: one counter update per (topic, outcome), not one per record."""
        counts: dict[tuple[str, str], int] = {}
        errors = 0
        if isinstance(outcomes, UniformOutcomes):  # one status for the batch: counted per topic, in C
            self._count_topics(consumer, outcomes.records, outcomes.status)
            if outcomes.error is not None:
                self._m.backend_errors.inc(consumer, "record", amount=len(outcomes))
            return
        for outcome in outcomes:
            key = (outcome.record.topic, outcome.status)
            counts[key] = counts.get(key, 0) + 1
            if outcome.error is not None:
                errors += 1
        for (topic, status), count in counts.items():
            self._m.consumed.inc(consumer, topic, status, amount=count)
        if errors:
            self._m.backend_errors.inc(consumer, "record", amount=errors)


@hookimpl
def kafka_sidecar_register_handlers(register: Callable[[HandlerSpec[MetricsConfig]], None]) -> None:
    register(
        HandlerSpec(
            name="metrics",
            factory=MetricsHandler,
            config_type=MetricsConfig,
            kind="middleware",
            description="Measure HTTP, produce and consume traffic (exported as the `metrics` section says).",
        )
    )


@hookimpl
def kafka_sidecar_register_services(register: Callable[[ServiceSpec[EventCounters]], None]) -> None:
    register(ServiceSpec(EVENT_COUNTERS, EventCounters, "Dead-letter and admin-action counters"))


@hookimpl
def kafka_sidecar_register_config_sections(register: Callable[[ConfigSection], None]) -> None:
    register(ConfigSection("influx", InfluxConfig, "InfluxDB line-protocol push (metrics exporter `influx`)"))


@hookimpl
def kafka_sidecar_register_metrics_exporters(register: Callable[[MetricsExporterSpec], None]) -> None:
    register(
        MetricsExporterSpec(
            "prometheus",
            lambda registry, resources: PrometheusExporter(registry),
            "GET /metrics in the Prometheus text format (prometheus-client, one CollectorRegistry per sidecar)",
        )
    )
    register(
        MetricsExporterSpec(
            "influx",
            lambda registry, resources: InfluxExporter.from_config(registry, resources.section(InfluxConfig)),
            "Push InfluxDB line protocol to influx.url every influx.interval_s",
        )
    )
    register(
        MetricsExporterSpec(
            "otel",
            lambda registry, resources: OpenTelemetryExporter(registry, resources.services.get(METER_PROVIDER)),
            "Observable instruments on the OpenTelemetry meter provider (the global one unless set)",
        )
    )
