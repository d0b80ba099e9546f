"""Metrics as a core service: one registry per sidecar and the exporters ``chains.yml`` turns on.

Exporters are registered through the ``kafka_sidecar_register_metrics_exporters`` hook (Prometheus,
InfluxDB and OpenTelemetry come from the ``metrics`` plugin, registered like a team's own) and
chosen by the ``metrics`` section::

    metrics:
      exporters: [prometheus, influx]   # default: [prometheus]
      max_series: 1000

Exporting is on when ``metrics.enabled`` is true, or, when it is left unset, when some chain runs a
``metrics`` handler (the middleware that measures HTTP and consumer traffic).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from kafka_sidecar._metrics.registry import MetricsRegistry

if TYPE_CHECKING:
    from kafka_sidecar._resources import Resources

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """The ``metrics`` section of ``chains.yml``."""

    enabled: bool | None = field(
        default=None,
        metadata={"doc": "Export metrics. Unset: on when some chain runs a `metrics` handler."},
    )
    exporters: tuple[str, ...] = field(
        default=("prometheus",), metadata={"doc": "Exporter names (see `kafka-sidecar handlers`)."}
    )
    max_series: int = field(default=1000, metadata={"doc": "Most label combinations per metric (then __overflow__)."})

    def __post_init__(self) -> None:
        if self.max_series < 1:
            raise ValueError("max_series must be at least 1")
        if len(set(self.exporters)) != len(self.exporters):
            raise ValueError("exporters lists the same exporter twice")


class MetricsExporter:
    """Reads the registry and ships it somewhere. Override what you need; every method is optional."""

    async def start(self) -> None:
        """Called once when the sidecar starts (before consumers start). A failure fails the start."""

    async def stop(self) -> None:
        """Called once when the sidecar stops, after handlers stopped (a last push belongs here)."""

    def routes(self) -> Sequence[BaseRoute]:
        """HTTP routes to mount (``GET /metrics`` for a pull exporter)."""
        return ()


@dataclass(frozen=True, slots=True)
class MetricsExporterSpec:
    """An exporter type a plugin offers; ``factory(registry, resources)`` is called once per sidecar."""

    name: str
    factory: Callable[[MetricsRegistry, Resources], MetricsExporter]
    description: str = ""


class Metrics:
    """The sidecar's metrics: ``registry`` to record into, ``enabled`` to know whether anyone exports."""

    def __init__(self, registry: MetricsRegistry | None = None, *, enabled: bool = False) -> None:
        self.registry = registry if registry is not None else MetricsRegistry()
        self.enabled = enabled
        self.exporters: dict[str, MetricsExporter] = {}
        self._started: list[MetricsExporter] = []

    def add_exporter(self, name: str, exporter: MetricsExporter) -> None:
        self.exporters[name] = exporter

    def routes(self) -> list[BaseRoute]:
        return [route for exporter in self.exporters.values() for route in exporter.routes()]

    async def start(self) -> None:
        for exporter in self.exporters.values():
            if exporter not in self._started:
                await exporter.start()
                self._started.append(exporter)

    async def stop(self) -> None:
        while self._started:
            exporter = self._started.pop()
            try:
                await exporter.stop()
            except Exception:
                log.exception("stopping metrics exporter %r failed", exporter)
