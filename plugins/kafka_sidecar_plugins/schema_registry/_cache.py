"""Bounded in-memory caches for schemas: least-recently-used eviction, optional time-to-live.

Each cache counts its hits and misses; ``observe`` (when set) is told each result as well
(``"hit"``, ``"miss"``, or ``"stale"`` when an expired entry is served because the registry is down),
which is how the schema service feeds the metrics plugin.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """An LRU map holding at most ``max_size`` entries; entries older than ``ttl`` seconds are misses."""

    def __init__(self, max_size: int, ttl: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self._max_size = max_size
        self._ttl = ttl
        self._clock = clock
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.observe: Callable[[str], None] | None = None

    def get(self, key: K) -> V | None:
        entry = self._items.get(key)
        if entry is None or (self._ttl is not None and self._clock() - entry[0] > self._ttl):
            self.misses += 1  # an expired entry is kept for get_stale() until it is replaced or evicted
            if self.observe is not None:
                self.observe("miss")
            return None
        self._items.move_to_end(key)
        self.hits += 1
        if self.observe is not None:
            self.observe("hit")
        return entry[1]

    def get_stale(self, key: K) -> V | None:
        """The value even when expired (used when the registry is down)."""
        entry = self._items.get(key)
        if entry is None:
            return None
        if self.observe is not None:
            self.observe("stale")
        return entry[1]

    def put(self, key: K, value: V) -> None:
        self._items[key] = (self._clock(), value)
        self._items.move_to_end(key)
        while len(self._items) > self._max_size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items
