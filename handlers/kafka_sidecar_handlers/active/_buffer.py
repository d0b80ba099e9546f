"""Records fetched but not yet handed out, kept as aiokafka's own lists (one per partition and fetch).

A poll takes whole lists while they fit (their sizes summed in C), and slices only the list where the
reply fills up; records are never moved one by one. The buffer may also hold its whole content already
written as a reply (:class:`PreparedReply`, made after a response while the client reads it); any change
to the buffer forgets that.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class PreparedReply:
    """Every buffered record, in order, rendered and encoded as one ``GET .../records`` reply body."""

    records: list[Fetched]
    size: int
    """Key plus value bytes of ``records``."""
    body: bytes
    last_offsets: Mapping[tuple[str, int], int]
    """The last record's offset per ``(topic, partition)``."""


class FetchedBuffer:
    """A queue of records in fetch order, held as the lists they were fetched in."""

    def __init__(self) -> None:
        self._chunks: deque[Sequence[Fetched]] = deque()
        self.prepared: PreparedReply | None = None
        """The buffer's whole content as a reply, while the buffer is unchanged (None after any change)."""

    def __len__(self) -> int:
        return sum(map(len, self._chunks))

    def __bool__(self) -> bool:
        return bool(self._chunks)

    def __iter__(self) -> Iterator[Fetched]:
        return chain.from_iterable(self._chunks)

    def last_offsets(self) -> dict[tuple[str, int], int]:
        """The last buffered offset per ``(topic, partition)``: each list is one partition's, in offset order,
        so one step per list."""
        return {(chunk[-1].topic, chunk[-1].partition): chunk[-1].offset for chunk in self._chunks}

    def append(self, records: Sequence[Fetched]) -> None:
        """Queue ``records`` (one partition's fetched list, as it is) behind what is buffered."""
        if records:
            self._chunks.append(records)
            self.prepared = None

    def put_back(self, records: Sequence[Fetched]) -> None:
        """Put ``records`` first in line again (records taken but not handed out)."""
        if records:
            self._chunks.appendleft(records)
            self.prepared = None

    def clear(self) -> None:
        self._chunks.clear()
        self.prepared = None

    def drop(self, partitions: set[TopicPartition]) -> int:
        """Forget the buffered records of ``partitions``; returns how many were dropped."""
        before = len(self)
        self.prepared = None
        wanted = {(tp.topic, tp.partition) for tp in partitions}
        self._chunks = deque(
            kept for chunk in self._chunks if (kept := [r for r in chunk if (r.topic, r.partition) not in wanted])
        )
        return before - len(self)

    def take(self, taken: list[Fetched], size: int, max_bytes: int) -> tuple[int, bool]:
        """Move records into ``taken`` while ``size`` plus theirs stays within ``max_bytes``; returns the new
        size and True when the reply is full (the next record would not fit, or ``max_bytes`` is reached)."""
        chunks = self._chunks
        if chunks:
            self.prepared = None
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
