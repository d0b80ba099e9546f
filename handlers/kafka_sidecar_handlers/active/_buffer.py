"""Records fetched but not yet handed out, kept as aiokafka's own lists (one per partition and fetch).

A poll takes whole lists while they fit (their sizes summed in C), and slices only the list where the
reply fills up; records are never moved one by one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from itertools import chain
from operator import attrgetter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiokafka import TopicPartition

    from kafka_sidecar_handlers.active._instance import Fetched

_key = attrgetter("key")
_value = attrgetter("value")


def record_size(record: Fetched) -> int:
    """Key plus value bytes as stored in Kafka."""
    return len(record.key or b"") + len(record.value or b"")


def records_size(records: Sequence[Fetched]) -> int:
    """:func:`record_size` summed over ``records``, in C."""
    return sum(map(len, filter(None, map(_key, records)))) + sum(map(len, filter(None, map(_value, records))))


class FetchedBuffer:
    """A queue of records in fetch order, held as the lists they were fetched in."""

    def __init__(self) -> None:
        self._chunks: deque[Sequence[Fetched]] = deque()

    def __len__(self) -> int:
        return sum(map(len, self._chunks))

    def __bool__(self) -> bool:
        return bool(self._chunks)

    def __iter__(self) -> Iterator[Fetched]:
        return chain.from_iterable(self._chunks)

    def append(self, records: Sequence[Fetched]) -> None:
        """Queue ``records`` (one partition's fetched list, as it is) behind what is buffered."""
        if records:
            self._chunks.append(records)

    def put_back(self, records: Sequence[Fetched]) -> None:
        """Put ``records`` first in line again (records taken but not handed out)."""
        if records:
            self._chunks.appendleft(records)

    def clear(self) -> None:
        self._chunks.clear()

    def drop(self, partitions: set[TopicPartition]) -> int:
        """Forget the buffered records of ``partitions``; returns how many were dropped."""
        before = len(self)
        wanted = {(tp.topic, tp.partition) for tp in partitions}
        self._chunks = deque(
            kept for chunk in self._chunks if (kept := [r for r in chunk if (r.topic, r.partition) not in wanted])
        )
        return before - len(self)

    def take(self, taken: list[Fetched], size: int, max_bytes: int) -> tuple[int, bool]:
        """Move records into ``taken`` while ``size`` plus theirs stays within ``max_bytes``; returns the new
        size and True when the reply is full (the next record would not fit, or ``max_bytes`` is reached)."""
        chunks = self._chunks
        while chunks:
            chunk = chunks[0]
            chunk_size = records_size(chunk)
            if size + chunk_size <= max_bytes:
                chunks.popleft()
                taken.extend(chunk)
                size += chunk_size
                if size >= max_bytes:
                    return size, True
                continue
            fit = 0
            for record in chunk:  # only the list where the reply fills up is walked record by record
                next_size = record_size(record)
                if size + next_size > max_bytes:
                    break
                size += next_size
                fit += 1
                if size >= max_bytes:
                    break
            taken.extend(chunk[:fit])
            chunks[0] = chunk[fit:]
            return size, True
        return size, False
