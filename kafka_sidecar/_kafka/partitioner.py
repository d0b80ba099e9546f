"""Kafka's default partitioner for keyed records (the Java client's ``murmur2``), for the aiokafka engine.

aiokafka's own partitioner computes murmur2 one byte at a time in Python on every keyed ``send()``. This
one gives the same partition (tested against the Java client's vectors, aiokafka's partitioner and
librdkafka's ``murmur2_random``) with the key's 4-byte words unpacked in C, and remembers the hashes of
recently seen keys: keys repeat in keyed traffic (an entity's events share its key), so most records
cost a dictionary look-up. No maintained C implementation of Kafka's murmur2 is on PyPI.
"""

from __future__ import annotations

import functools
import random
import struct
from collections.abc import Callable, Sequence

SEED = 0x9747B28C
M = 0x5BD1E995
MASK = 0xFFFFFFFF
CACHED_KEYS = 8192
"""Keys whose hash is remembered (least recently used forgotten first): about 1.5 MB at most."""

_words = struct.Struct("<I").iter_unpack


def murmur2(data: bytes) -> int:
    """The Java client's ``Utils.murmur2`` as an unsigned 32-bit integer."""
    length = len(data)
    h = SEED ^ length
    end = length & ~3
    for (k,) in _words(data[:end]):
        k = (k * M) & MASK
        k = ((k ^ (k >> 24)) * M) & MASK
        h = ((h * M) & MASK) ^ k
    tail = length & 3
    if tail:
        if tail == 3:
            h ^= data[end + 2] << 16
        if tail >= 2:
            h ^= data[end + 1] << 8
        h = ((h ^ data[end]) * M) & MASK
    h ^= h >> 13
    h = (h * M) & MASK
    return h ^ (h >> 15)


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's clients pick for ``key`` among ``partitions`` (``toPositive(murmur2) % n``)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class Murmur2Partitioner:
    """An aiokafka ``partitioner``: murmur2 of the key (hashes of recent keys cached), random when unkeyed."""

    def __init__(self, cached_keys: int = CACHED_KEYS) -> None:
        self._hash: Callable[[bytes], int] = functools.lru_cache(maxsize=cached_keys)(murmur2)

    def __call__(self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        return all_partitions[(self._hash(key) & 0x7FFFFFFF) % len(all_partitions)]
