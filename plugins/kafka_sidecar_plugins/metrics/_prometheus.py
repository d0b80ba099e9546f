"""The ``prometheus`` exporter: ``GET /metrics`` rendered by prometheus-client.

Each sidecar gets its own ``CollectorRegistry`` (never the library's global one) holding one collector
that reads the sidecar's metrics registry at scrape time, so nothing is copied per observation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from kafka_sidecar.plugin import Counter, Gauge, Histogram, MetricsExporter, MetricsRegistry

PROMETHEUS_MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class RegistryCollector(Collector):
    """Translates the sidecar's families into prometheus-client metric families at collect time."""

    def __init__(self, registry: MetricsRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        for family in self._registry.families():
            labels = list(family.labels)
            if isinstance(family, Gauge):
                gauge = GaugeMetricFamily(family.name, family.help, labels=labels)
                for key, value in family.samples():
                    gauge.add_metric(list(key), value)
                yield gauge
            elif isinstance(family, Counter):
                counter = CounterMetricFamily(family.name, family.help, labels=labels)
                for key, value in family.samples():
                    counter.add_metric(list(key), value)
                yield counter
            elif isinstance(family, Histogram):
                histogram = HistogramMetricFamily(family.name, family.help, labels=labels)
                for key, sample in family.samples():
                    buckets = [(_bound(b), float(c)) for b, c in zip(sample.buckets, sample.counts, strict=True)]
                    buckets.append(("+Inf", float(sample.count)))
                    histogram.add_metric(list(key), buckets, sample.total)
                yield histogram


class PrometheusExporter(MetricsExporter):
    def __init__(self, registry: MetricsRegistry) -> None:
        self.collector_registry = CollectorRegistry(auto_describe=False)
        self.collector_registry.register(RegistryCollector(registry))

    def render(self) -> bytes:
        return generate_latest(self.collector_registry)

    def routes(self) -> Sequence[BaseRoute]:
        async def metrics(request: Request) -> Response:
            """Prometheus metrics in the text exposition format."""
            return Response(self.render(), media_type=PROMETHEUS_MEDIA_TYPE)

        metrics.response_media_type = "text/plain"  # type: ignore[attr-defined]  # for /openapi.json
        return [Route("/metrics", metrics, methods=["GET"])]
