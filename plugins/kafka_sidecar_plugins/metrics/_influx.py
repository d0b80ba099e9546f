"""The ``influx`` exporter: the registry pushed in InfluxDB line protocol (the Java sidecar's metrics sink).

Configured by the ``influx`` section (``url``, ``interval_s``, ``tags``). Measurement = metric name,
tags = labels plus ``tags``, fields ``count`` (counters), ``value`` (gauges), ``count``/``sum``
(histograms), nanosecond timestamps. A failed push is counted and logged, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import httpx

from kafka_sidecar.plugin import Counter, Gauge, Histogram, MetricsExporter, MetricsRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InfluxConfig:
    url: str | None = field(default=None, metadata={"doc": "Push line protocol here (e.g. .../write?db=x)."})
    interval_s: float = field(default=10.0, metadata={"doc": "Seconds between pushes."})
    tags: Mapping[str, str] = field(default_factory=dict, metadata={"doc": "Tags added to every line."})

    def __post_init__(self) -> None:
        if self.interval_s <= 0:
            raise ValueError("interval_s must be positive")


def _influx_key(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _points(registry: MetricsRegistry) -> Iterator[tuple[str, dict[str, str], dict[str, float]]]:
    for family in registry.families():
        if isinstance(family, Counter):  # gauges too
            field_name = "value" if isinstance(family, Gauge) else "count"
            for key, value in family.samples():
                yield family.name, dict(zip(family.labels, key, strict=True)), {field_name: value}
        elif isinstance(family, Histogram):
            for key, sample in family.samples():
                tags = dict(zip(family.labels, key, strict=True))
                yield family.name, tags, {"count": float(sample.count), "sum": sample.total}


def line_protocol(registry: MetricsRegistry, tags: Mapping[str, str], timestamp_ns: int) -> str:
    """InfluxDB line protocol: one line per series, measurement = metric name."""
    lines = []
    for name, series_tags, fields in _points(registry):
        all_tags = {**tags, **series_tags}
        tag_text = "".join(f",{_influx_key(k)}={_influx_key(v or '-')}" for k, v in sorted(all_tags.items()))
        field_text = ",".join(f"{_influx_key(k)}={float(v)!r}" for k, v in fields.items())
        lines.append(f"{_influx_key(name)}{tag_text} {field_text} {timestamp_ns}")
    return "\n".join(lines) + ("\n" if lines else "")


class InfluxExporter(MetricsExporter):
    """POSTs the whole registry to ``url`` every ``interval_s`` seconds, and once more on stop."""

    def __init__(
        self, registry: MetricsRegistry, url: str, interval_s: float, tags: Mapping[str, str], timeout_s: float = 5.0
    ) -> None:
        self._registry = registry
        self._url = url
        self._interval = interval_s
        self._tags = dict(tags)
        self._timeout = timeout_s
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._failures = registry.counter(
            "kafka_sidecar_metrics_push_failures_total", "Failed pushes of metrics to the InfluxDB URL."
        )
        self._pushes = registry.counter("kafka_sidecar_metrics_pushes_total", "Pushes of metrics to the InfluxDB URL.")

    @classmethod
    def from_config(cls, registry: MetricsRegistry, config: InfluxConfig) -> InfluxExporter:
        if not config.url:
            raise ValueError("the influx metrics exporter needs influx.url")
        return cls(registry, config.url, config.interval_s, config.tags)

    async def start(self) -> None:
        if self._task is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
            self._task = asyncio.create_task(self._loop(), name="metrics-influx-push")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.push()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.push()

    async def push(self) -> bool:
        if self._client is None:
            return False
        body = line_protocol(self._registry, self._tags, time.time_ns())
        try:
            response = await self._client.post(
                self._url, content=body.encode("utf-8"), headers={"Content-Type": "text/plain; charset=utf-8"}
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            self._failures.inc()
            log.warning("pushing metrics to %s failed: %s", self._url, exc)
            return False
        self._pushes.inc()
        return True
