"""Metrics: Prometheus text at ``GET /metrics`` and an optional InfluxDB line-protocol push.

The ``metrics`` middleware measures what passes through its chains: HTTP requests by route template
and status (with latency), records produced/failed by topic, and consumed batches (size, latency,
per-record outcomes, backend errors). Dead letters and admin actions come from the event bus. The
registry lives in ``resources.services[METRICS_REGISTRY]`` so other plugins can report through it
(consumer lag, paused state, audit and schema-cache counters). ``/metrics`` is mounted only when a
``metrics`` handler is in some chain.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from kafka_sidecar._chain import Next
from kafka_sidecar._errors import SidecarError
from kafka_sidecar._events import AdminAction, DeadLettered
from kafka_sidecar._exchange import DELIVERED, PRODUCED, Exchange, Reply
from kafka_sidecar._hookspecs import hookimpl
from kafka_sidecar._registry import HandlerSpec
from kafka_sidecar._resources import Resources
from kafka_sidecar._stash import StashKey
from kafka_sidecar_plugins.metrics._influx import InfluxPusher
from kafka_sidecar_plugins.metrics._registry import DEFAULT_BUCKETS, METRICS_REGISTRY, MetricsRegistry

if TYPE_CHECKING:
    from kafka_sidecar._sidecar import Sidecar

__all__ = ["METRICS_REGISTRY", "MetricsConfig", "MetricsHandler", "MetricsRegistry"]

PROMETHEUS_MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PUSHER: StashKey[InfluxPusher] = StashKey("metrics.influx-pusher")


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    latency_buckets: tuple[float, ...] = field(
        default=DEFAULT_BUCKETS, metadata={"doc": "Histogram buckets (seconds) for HTTP, batch and backend latency."}
    )
    batch_size_buckets: tuple[float, ...] = field(
        default=(1, 5, 10, 25, 50, 100, 250, 500, 1000), metadata={"doc": "Histogram buckets for consumed batch size."}
    )
    max_series: int = field(default=1000, metadata={"doc": "Most label combinations per metric (then __overflow__)."})
    influx_url: str | None = field(default=None, metadata={"doc": "Push line protocol here (e.g. .../write?db=x)."})
    influx_interval_s: float = field(default=10.0, metadata={"doc": "Seconds between pushes."})
    influx_tags: Mapping[str, str] = field(default_factory=dict, metadata={"doc": "Tags added to every line."})

    def __post_init__(self) -> None:
        if self.max_series < 1:
            raise ValueError("max_series must be at least 1")
        if self.influx_interval_s <= 0:
            raise ValueError("influx_interval_s must be positive")


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
        self.dead_letters = registry.counter(
            "kafka_sidecar_dead_letters_total", "Records sent to a dead-letter topic.", ("source_topic", "written")
        )
        self.admin_actions = registry.counter("kafka_sidecar_admin_actions_total", "Admin actions.", ("action",))


_INSTRUMENTS: StashKey[_Instruments] = StashKey("metrics.instruments")


def _status_of(exc: BaseException) -> int:
    return exc.status if isinstance(exc, SidecarError) else 500


class MetricsHandler:
    def __init__(self, config: MetricsConfig, resources: Resources) -> None:
        services = resources.services
        registry = services.get(METRICS_REGISTRY)
        if registry is None:
            registry = services[METRICS_REGISTRY] = MetricsRegistry(config.max_series)
        instruments = services.get(_INSTRUMENTS)
        if instruments is None:
            instruments = services[_INSTRUMENTS] = _Instruments(registry, config)
            resources.events.subscribe(DeadLettered, self._dead_lettered)
            resources.events.subscribe(AdminAction, self._admin_action)
            if config.influx_url:
                services[_PUSHER] = InfluxPusher(
                    registry, config.influx_url, config.influx_interval_s, config.influx_tags
                )
        self.registry = registry
        self._m = instruments
        self._pusher = services.get(_PUSHER)

    async def start(self) -> None:
        if self._pusher is not None:
            await self._pusher.start()

    async def stop(self) -> None:
        if self._pusher is not None:
            await self._pusher.stop()

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
                ok = sum(1 for report in produced.reports if report.acknowledged)
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
            for outcome in exchange.stash.get(DELIVERED) or ():
                self._m.consumed.inc(consumer, outcome.record.topic, outcome.status)
                if outcome.error is not None:
                    self._m.backend_errors.inc(consumer, "record")

    def _dead_lettered(self, event: DeadLettered) -> None:
        self._m.dead_letters.inc(event.record.topic, "true" if event.written else "false")

    def _admin_action(self, event: AdminAction) -> None:
        self._m.admin_actions.inc(event.action)


def metrics_routes(registry: MetricsRegistry) -> list[BaseRoute]:
    async def metrics(request: Request) -> Response:
        """Prometheus metrics in the text exposition format."""
        return Response(registry.render(), media_type=PROMETHEUS_MEDIA_TYPE)

    metrics.response_media_type = "text/plain"  # type: ignore[attr-defined]  # for /openapi.json
    return [Route("/metrics", metrics, methods=["GET"])]


@hookimpl
def kafka_sidecar_register_handlers(register: Callable[[HandlerSpec[MetricsConfig]], None]) -> None:
    register(
        HandlerSpec(
            name="metrics",
            factory=MetricsHandler,
            config_type=MetricsConfig,
            kind="middleware",
            description="Prometheus metrics at /metrics (HTTP, produce, consume, DLQ, admin); optional Influx push.",
        )
    )


@hookimpl
def kafka_sidecar_routes(sidecar: Sidecar) -> Sequence[BaseRoute] | None:
    registry = sidecar.resources.services.get(METRICS_REGISTRY)
    return metrics_routes(registry) if registry is not None else None
