"""A small hand-written metrics registry: counters, gauges and histograms with bounded labels.

Rendered as Prometheus text exposition (version 0.0.4) and as InfluxDB line protocol. Each family
keeps at most ``max_series`` label combinations; further combinations are folded into one series
whose labels are all ``__overflow__`` (and counted in ``kafka_sidecar_metrics_overflow_total``),
so no caller can blow up cardinality.

Other plugins and handlers find the registry in ``resources.services[METRICS_REGISTRY]`` (present
when a ``metrics`` handler is in some chain) and report through it, for example::

    registry = resources.services.get(METRICS_REGISTRY)
    if registry is not None:
        registry.report_lag("orders-consumer", "orders", 3, lag=42)
        registry.counter("my_plugin_things_total", "Things by result.", ("result",)).inc("ok")
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from kafka_sidecar._stash import StashKey

OVERFLOW = "__overflow__"
DEFAULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LabelValues = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


@dataclass(slots=True)
class _HistogramValue:
    counts: list[int]
    total: float = 0.0
    count: int = 0


class _Family:
    kind = "untyped"

    def __init__(
        self, name: str, help_text: str, labels: Sequence[str], max_series: int, owner: MetricsRegistry
    ) -> None:
        self.name = name
        self.help = help_text
        self.labels = tuple(labels)
        self._max = max_series
        self._owner = owner
        self._lock = threading.Lock()

    def _key(self, values: Sequence[str], store: Mapping[LabelValues, object]) -> LabelValues:
        if type(values) is tuple and values in store:  # fast path: a series already seen
            return values
        if len(values) != len(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {tuple(values)}")
        key = tuple(str(v) for v in values)
        if key not in store and len(store) >= self._max:
            self._owner.overflowed(self.name)
            return tuple(OVERFLOW for _ in self.labels)
        return key

    def _label_text(self, values: LabelValues, extra: str = "") -> str:
        parts = [f'{name}="{_escape(value)}"' for name, value in zip(self.labels, values, strict=True)]
        if extra:
            parts.append(extra)
        return "{" + ",".join(parts) + "}" if parts else ""

    def render(self) -> Iterator[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"

    def points(self) -> Iterator[tuple[dict[str, str], dict[str, float]]]:
        """(tags, fields) pairs for line protocol."""
        return iter(())


class Counter(_Family):
    kind = "counter"

    def __init__(
        self, name: str, help_text: str, labels: Sequence[str], max_series: int, owner: MetricsRegistry
    ) -> None:
        super().__init__(name, help_text, labels, max_series, owner)
        self._values: dict[LabelValues, float] = {}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        with self._lock:
            key = self._key(labels, self._values)
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, *labels: str) -> float:
        return self._values.get(tuple(labels), 0.0)

    def render(self) -> Iterator[str]:
        yield from super().render()
        for key, value in sorted(self._values.items()):
            yield f"{self.name}{self._label_text(key)} {_number(value)}"

    def points(self) -> Iterator[tuple[dict[str, str], dict[str, float]]]:
        for key, value in sorted(self._values.items()):
            yield dict(zip(self.labels, key, strict=True)), {"count": value}


class Gauge(Counter):
    kind = "gauge"

    def set(self, *labels: str, value: float) -> None:
        with self._lock:
            key = self._key(labels, self._values)
            self._values[key] = float(value)

    def remove(self, *labels: str) -> None:
        """Drop one series (absent from the output until set again)."""
        with self._lock:
            self._values.pop(tuple(str(v) for v in labels), None)

    def points(self) -> Iterator[tuple[dict[str, str], dict[str, float]]]:
        for key, value in sorted(self._values.items()):
            yield dict(zip(self.labels, key, strict=True)), {"value": value}


class Histogram(_Family):
    kind = "histogram"

    def __init__(
        self, name: str, help_text: str, labels: Sequence[str], max_series: int, owner: MetricsRegistry,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:  # fmt: skip
        super().__init__(name, help_text, labels, max_series, owner)
        self.buckets = tuple(sorted(float(b) for b in buckets))
        self._values: dict[LabelValues, _HistogramValue] = {}

    def observe(self, *labels: str, value: float) -> None:
        with self._lock:
            key = self._key(labels, self._values)
            entry = self._values.get(key)
            if entry is None:
                entry = self._values[key] = _HistogramValue([0] * len(self.buckets))
            for index, bound in enumerate(self.buckets):
                if value <= bound:
                    entry.counts[index] += 1
            entry.total += value
            entry.count += 1

    def count(self, *labels: str) -> int:
        entry = self._values.get(tuple(labels))
        return entry.count if entry else 0

    def render(self) -> Iterator[str]:
        yield from super().render()
        for key, entry in sorted(self._values.items()):
            for bound, count in zip(self.buckets, entry.counts, strict=True):
                le = 'le="' + _number(bound) + '"'
                yield f"{self.name}_bucket{self._label_text(key, le)} {count}"
            inf = 'le="+Inf"'
            yield f"{self.name}_bucket{self._label_text(key, inf)} {entry.count}"
            yield f"{self.name}_sum{self._label_text(key)} {_number(entry.total)}"
            yield f"{self.name}_count{self._label_text(key)} {entry.count}"

    def points(self) -> Iterator[tuple[dict[str, str], dict[str, float]]]:
        for key, entry in sorted(self._values.items()):
            yield dict(zip(self.labels, key, strict=True)), {"count": entry.count, "sum": entry.total}


class MetricsRegistry:
    """Families by name; asking twice for a name returns the same family (same type required)."""

    def __init__(self, max_series: int = 1000) -> None:
        self._max = max_series
        self._families: dict[str, _Family] = {}
        self._overflow: Counter | None = None
        self._overflow = self.counter(
            "kafka_sidecar_metrics_overflow_total", "Label combinations folded into __overflow__.", ("metric",)
        )
        self.lag = self.gauge(
            "kafka_sidecar_consumer_lag", "Records behind the partition end.", ("consumer", "topic", "partition")
        )
        self.paused = self.gauge("kafka_sidecar_consumer_paused", "1 while a consumer is paused.", ("consumer",))
        self.partition_paused = self.gauge(
            "kafka_sidecar_consumer_partition_paused",
            "1 while an operator has paused the partition, else 0.",
            ("consumer", "topic", "partition"),
        )

    def overflowed(self, name: str) -> None:
        if self._overflow is not None and name != self._overflow.name:
            self._overflow.inc(name)

    def _get(self, cls: type[_Family], name: str, help_text: str, labels: Sequence[str]) -> _Family | None:
        found = self._families.get(name)
        if found is not None and (type(found) is not cls or found.labels != tuple(labels)):
            raise ValueError(f"metric {name!r} already exists as a {found.kind} with labels {found.labels}")
        return found

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        found = self._get(Counter, name, help_text, labels)
        if found is None:
            found = self._families[name] = Counter(name, help_text, labels, self._max, self)
        assert isinstance(found, Counter)
        return found

    def gauge(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Gauge:
        found = self._get(Gauge, name, help_text, labels)
        if found is None:
            found = self._families[name] = Gauge(name, help_text, labels, self._max, self)
        assert isinstance(found, Gauge)
        return found

    def histogram(
        self, name: str, help_text: str, labels: Sequence[str] = (), buckets: Sequence[float] = DEFAULT_BUCKETS
    ) -> Histogram:
        found = self._get(Histogram, name, help_text, labels)
        if found is None:
            found = self._families[name] = Histogram(name, help_text, labels, self._max, self, buckets)
        assert isinstance(found, Histogram)
        return found

    def report_lag(self, consumer: str, topic: str, partition: int, lag: int) -> None:
        self.lag.set(consumer, topic, str(partition), value=lag)

    def report_paused(self, consumer: str, paused: bool) -> None:
        self.paused.set(consumer, value=1 if paused else 0)

    def report_partition_paused(self, consumer: str, topic: str, partition: int, paused: bool) -> None:
        self.partition_paused.set(consumer, topic, str(partition), value=1 if paused else 0)

    def forget_partition(self, consumer: str, topic: str, partition: int) -> None:
        """The partition is no longer assigned to ``consumer``: drop its lag and paused series."""
        self.lag.remove(consumer, topic, str(partition))
        self.partition_paused.remove(consumer, topic, str(partition))

    def render(self) -> str:
        """Prometheus text exposition format 0.0.4."""
        lines: list[str] = []
        for name in sorted(self._families):
            lines.extend(self._families[name].render())
        return "\n".join(lines) + "\n"

    def line_protocol(self, tags: dict[str, str], timestamp_ns: int) -> str:
        """InfluxDB line protocol: one line per series, measurement = metric name."""
        lines = []
        for name in sorted(self._families):
            for series_tags, fields in self._families[name].points():
                all_tags = {**tags, **series_tags}
                tag_text = "".join(f",{_influx_key(k)}={_influx_key(v or '-')}" for k, v in sorted(all_tags.items()))
                field_text = ",".join(f"{_influx_key(k)}={float(v)!r}" for k, v in fields.items())
                lines.append(f"{_influx_key(name)}{tag_text} {field_text} {timestamp_ns}")
        return "\n".join(lines) + ("\n" if lines else "")


def _influx_key(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


METRICS_REGISTRY: StashKey[MetricsRegistry] = StashKey("metrics.registry")
"""Where the registry lives in ``resources.services`` (see the module docstring)."""
