"""The ``otel`` exporter: the registry as OpenTelemetry observable instruments (opentelemetry-api).

Counters become observable counters, gauges observable gauges; a histogram becomes two observable
counters, ``<name>_count`` and ``<name>_sum`` (the API has no asynchronous histogram). Values are read
when the SDK's reader collects, so nothing is done per observation. The meter comes from the
``METER_PROVIDER`` service when a plugin or test declares one, else from the global provider (which
the deployment's OpenTelemetry SDK configures; without an SDK the API's no-op provider drops it all).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation

from kafka_sidecar.plugin import Counter, Family, Gauge, Histogram, MetricsExporter, MetricsRegistry, StashKey

METER_NAME = "kafka_sidecar"
METER_PROVIDER: StashKey[MeterProvider] = StashKey("metrics.otel-meter-provider")
"""Declare a MeterProvider here (``kafka_sidecar_register_services``) to use it instead of the global one."""

Reader = Callable[[CallbackOptions], Iterable[Observation]]


def _series(family: Counter) -> Reader:
    def read(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, dict(zip(family.labels, key, strict=True))) for key, value in family.samples()]

    return read


def _histogram_part(family: Histogram, part: str) -> Reader:
    def read(options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(sample.count if part == "count" else sample.total, dict(zip(family.labels, key, strict=True)))
            for key, sample in family.samples()
        ]

    return read


class OpenTelemetryExporter(MetricsExporter):
    def __init__(self, registry: MetricsRegistry, provider: MeterProvider | None = None) -> None:
        self._registry = registry
        self._provider = provider
        self._meter: Meter | None = None

    async def start(self) -> None:
        provider = self._provider if self._provider is not None else metrics.get_meter_provider()
        self._meter = provider.get_meter(METER_NAME)
        for family in self._registry.families():
            self._declare(family)
        self._registry.on_new_family(self._declare)

    def _declare(self, family: Family) -> None:
        meter = self._meter
        if meter is None:
            return
        if isinstance(family, Gauge):
            meter.create_observable_gauge(family.name, [_series(family)], description=family.help)
        elif isinstance(family, Counter):
            meter.create_observable_counter(family.name, [_series(family)], description=family.help)
        elif isinstance(family, Histogram):
            for part in ("count", "sum"):
                meter.create_observable_counter(
                    f"{family.name}_{part}", [_histogram_part(family, part)], description=family.help
                )
