"""The sidecar's metrics registry: counters, gauges and histograms with bounded labels.

One registry per sidecar (``resources.metrics.registry``), built by the core at assembly; handlers
and plugins record into it, exporters (Prometheus, InfluxDB, OpenTelemetry, a team's own) read it.
Each family keeps at most ``max_series`` label combinations; further combinations are folded into one
series whose labels are all ``__overflow__`` (counted in ``kafka_sidecar_metrics_overflow_total``), so
no caller can blow up cardinality.

    counter = resources.metrics.registry.counter("my_plugin_things_total", "Things by result.", ("result",))
    counter.inc("ok")
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Literal

OVERFLOW = "__overflow__"
DEFAULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LabelValues = tuple[str, ...]
MetricKind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True, slots=True)
class HistogramSample:
    """Cumulative bucket counts (``counts[i]`` = observations <= ``buckets[i]``), sum and count."""

    buckets: tuple[float, ...]
    counts: tuple[int, ...]
    total: float
    count: int


@dataclass(slots=True)
class _HistogramValue:
    in_bucket: list[int]
    """Observations in each bucket alone (``buckets[i-1] < value <= buckets[i]``): one slot per
    observation, found by bisection in C; :meth:`Histogram.samples` makes them cumulative."""
    total: float = 0.0
    count: int = 0


class Family:
    """A metric name with fixed label names; one series per label combination."""

    kind: MetricKind

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


class Counter(Family):
    kind: MetricKind = "counter"

    def __init__(
        self, name: str, help_text: str, labels: Sequence[str], max_series: int, owner: MetricsRegistry
    ) -> None:
        super().__init__(name, help_text, labels, max_series, owner)
        self._values: dict[LabelValues, float] = {}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        values = self._values
        with self._lock:
            key = labels if labels in values else self._key(labels, values)  # a series seen before: no call
            values[key] = values.get(key, 0.0) + amount

    def value(self, *labels: str) -> float:
        return self._values.get(tuple(labels), 0.0)

    def samples(self) -> list[tuple[LabelValues, float]]:
        """A sorted snapshot of (label values, value)."""
        with self._lock:
            return sorted(self._values.items())


class Gauge(Counter):
    kind: MetricKind = "gauge"

    def set(self, *labels: str, value: float) -> None:
        with self._lock:
            key = self._key(labels, self._values)
            self._values[key] = float(value)

    def remove(self, *labels: str) -> None:
        """Drop one series (absent from the output until set again)."""
        with self._lock:
            self._values.pop(tuple(str(v) for v in labels), None)


class Histogram(Family):
    kind: MetricKind = "histogram"

    def __init__(
        self, name: str, help_text: str, labels: Sequence[str], max_series: int, owner: MetricsRegistry,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:  # fmt: skip
        super().__init__(name, help_text, labels, max_series, owner)
        self.buckets = tuple(sorted(float(b) for b in buckets))
        self._values: dict[LabelValues, _HistogramValue] = {}

    def observe(self, *labels: str, value: float) -> None:
        with self._lock:
            entry = self._values.get(labels)  # a series seen before: no key to make
            if entry is None:
                key = self._key(labels, self._values)
                entry = self._values.get(key)
                if entry is None:
                    entry = self._values[key] = _HistogramValue([0] * (len(self.buckets) + 1))  # last: above all
            # NaN (not equal to itself) is above every bound, as a comparison with each bound says
            entry.in_bucket[bisect_left(self.buckets, value) if value == value else len(self.buckets)] += 1
            entry.total += value
            entry.count += 1

    def count(self, *labels: str) -> int:
        entry = self._values.get(tuple(labels))
        return entry.count if entry else 0

    def samples(self) -> list[tuple[LabelValues, HistogramSample]]:
        """A sorted snapshot of (label values, cumulative buckets, sum, count)."""
        with self._lock:
            return [
                (key, HistogramSample(self.buckets, tuple(accumulate(entry.in_bucket[:-1])), entry.total, entry.count))
                for key, entry in sorted(self._values.items())
            ]


class MetricsRegistry:
    """Families by name; asking twice for a name returns the same family (same type and labels required)."""

    def __init__(self, max_series: int = 1000) -> None:
        self._max = max_series
        self._families: dict[str, Family] = {}
        self._listeners: list[Callable[[Family], None]] = []
        self._overflow: Counter | None = None
        self._overflow = self.counter(
            "kafka_sidecar_metrics_overflow_total", "Label combinations folded into __overflow__.", ("metric",)
        )

    def overflowed(self, name: str) -> None:
        if self._overflow is not None and name != self._overflow.name:
            self._overflow.inc(name)

    def on_new_family(self, listener: Callable[[Family], None]) -> None:
        """Call ``listener`` for every family created from now on (exporters that declare instruments)."""
        self._listeners.append(listener)

    def families(self) -> Iterator[Family]:
        """Every family, sorted by name."""
        for name in sorted(self._families):
            yield self._families[name]

    def _get(self, cls: type[Family], name: str, labels: Sequence[str]) -> Family | None:
        found = self._families.get(name)
        if found is not None and (type(found) is not cls or found.labels != tuple(labels)):
            raise ValueError(f"metric {name!r} already exists as a {found.kind} with labels {found.labels}")
        return found

    def _add(self, family: Family) -> None:
        self._families[family.name] = family
        for listener in self._listeners:
            listener(family)

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        """A monotonically increasing count; its name ends in ``_total`` (the name exporters show)."""
        if not name.endswith("_total"):
            raise ValueError(f"counter {name!r}: counter names end in '_total'")
        found = self._get(Counter, name, labels)
        if found is None:
            found = Counter(name, help_text, labels, self._max, self)
            self._add(found)
        assert isinstance(found, Counter)
        return found

    def gauge(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Gauge:
        found = self._get(Gauge, name, labels)
        if found is None:
            found = Gauge(name, help_text, labels, self._max, self)
            self._add(found)
        assert isinstance(found, Gauge)
        return found

    def histogram(
        self, name: str, help_text: str, labels: Sequence[str] = (), buckets: Sequence[float] = DEFAULT_BUCKETS
    ) -> Histogram:
        found = self._get(Histogram, name, labels)
        if found is None:
            found = Histogram(name, help_text, labels, self._max, self, buckets)
            self._add(found)
        assert isinstance(found, Histogram)
        return found
