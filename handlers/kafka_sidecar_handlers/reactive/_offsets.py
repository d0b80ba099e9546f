"""Contiguous commit tracking for one partition.

Records are registered in fetch order (increasing offsets). They may finish in any order (key mode
runs several lanes per partition), but the committable offset only moves past a record once it and
every record before it are finished (SUCCESS, DROP or safely dead-lettered). The only other moves:
an explicit :meth:`reset` by an operator's seek, and the consumer's fetch *position* once every record
before it is finished: the client skips offsets that are no records of ours (transaction commit/abort
markers, aborted records under ``read_committed``, compacted gaps), and without that a partition whose
last offset is a commit marker would stay one short of the log end (lag 1) forever.
"""

from __future__ import annotations

from collections import deque


class OffsetTracker:
    """Which offsets of one partition are in flight, and what may be committed."""

    __slots__ = ("_done", "_next", "_order", "_position")

    def __init__(self, start: int | None = None) -> None:
        self._order: deque[int] = deque()
        self._done: set[int] = set()
        self._next: int | None = start
        """The offset after the last finished contiguous record (what a commit would store)."""
        self._position: int | None = start
        """The consumer's fetch position: every offset below it was registered here or skipped by the client."""

    def register(self, offset: int) -> bool:
        """A fetched record is now owed a result; False (ignored) unless it is beyond every offset seen."""
        if self._order and offset <= self._order[-1]:
            return False
        if not self._order and self._next is not None and offset < self._next:
            return False
        self._order.append(offset)
        self._position = offset + 1 if self._position is None else max(self._position, offset + 1)
        return True

    def observe_position(self, position: int) -> None:
        """The consumer's fetch position is ``position``: every offset below it was either registered here
        or is no record of ours (the client skipped it). Once nothing registered is unfinished, the commit
        may move there; a record still owed a result keeps it where it is."""
        if self._position is not None and position <= self._position:
            return
        self._position = position
        self._drained()

    def _drained(self) -> None:
        if not self._order and self._position is not None and (self._next is None or self._position > self._next):
            self._next = self._position

    def finish(self, offset: int) -> None:
        """The record at ``offset`` has a final outcome (offsets not in flight are ignored)."""
        if not self._order or offset < self._order[0] or offset > self._order[-1]:
            return
        self._done.add(offset)
        while self._order and self._order[0] in self._done:
            finished = self._order.popleft()
            self._done.discard(finished)
            self._next = finished + 1
        self._drained()

    def committable(self) -> int | None:
        """The offset to commit (the next record to read after a restart), or None if nothing finished."""
        return self._next

    @property
    def in_flight(self) -> int:
        return len(self._order)

    @property
    def lowest_unfinished(self) -> int | None:
        return self._order[0] if self._order else None

    def reset(self, start: int | None = None) -> None:
        """Forget everything in flight (an operator seek or an abandoned assignment)."""
        self._order.clear()
        self._done.clear()
        self._next = start
        self._position = start
