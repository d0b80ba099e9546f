"""Bounded schema cache: LRU eviction, TTL, stale reads."""

from __future__ import annotations

import pytest

from kafka_sidecar_plugins.schema_registry._cache import BoundedCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_evicts_least_recently_used() -> None:
    cache: BoundedCache[int, str] = BoundedCache(2)
    cache.put(1, "a")
    cache.put(2, "b")
    assert cache.get(1) == "a"  # 2 is now the least recently used
    cache.put(3, "c")
    assert len(cache) == 2
    assert cache.get(2) is None
    assert cache.get(1) == "a"
    assert cache.get(3) == "c"
    assert (cache.hits, cache.misses) == (3, 1)


def test_ttl_expires_but_stale_value_stays_readable() -> None:
    clock = Clock()
    cache: BoundedCache[str, int] = BoundedCache(10, ttl=5, clock=clock)
    cache.put("s", 1)
    clock.now += 4.9
    assert cache.get("s") == 1
    clock.now += 0.2
    assert cache.get("s") is None
    cache.put("t", 2)
    clock.now += 10
    assert cache.get_stale("t") == 2
    assert cache.get_stale("missing") is None


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_size"):
        BoundedCache(0)
