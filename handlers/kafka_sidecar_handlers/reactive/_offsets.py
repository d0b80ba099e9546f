"""Contiguous commit tracking for one partition.

Records are registered in fetch order (increasing offsets). They may finish in any order (key mode
runs several lanes per partition), but the committable offset only moves past a record once it and
every record before it are finished (SUCCESS, DROP or safely dead-lettered). The only other moves:
an explicit :meth:`reset` by an operator's seek, and the consumer's fetch *position* once every record
before it is finished: the client skips offsets that are no records of ours (transaction commit/abort
markers, aborted records under ``read_committed``, compacted gaps), and without that a partition whose
last offset is a commit marker would stay one short of the log end (lag 1) forever.

Whole runs are cheap: a fetched run registers with one list extend (:meth:`register_run`), and a
batch that finishes as the oldest records in flight leaves with one list comparison
(:meth:`finish_run`), not a Python step per record.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from itertools import islice

COMPACT_AFTER = 4096
"""Finished offsets kept at the front of the list before it is compacted."""


class OffsetTracker:
    """Which offsets of one partition are in flight, and what may be committed."""

    __slots__ = ("_done", "_head", "_next", "_order", "_position")

    def __init__(self, start: int | None = None) -> None:
        self._order: list[int] = []
        """Registered offsets, increasing; those before ``_head`` are finished and gone."""
        self._head = 0
        self._done: set[int] = set()
        """Finished offsets still behind an unfinished one."""
        self._next: int | None = start
        """The offset after the last finished contiguous record (what a commit would store)."""
        self._position: int | None = start
        """The consumer's fetch position: every offset below it was registered here or skipped by the client."""

    def register(self, offset: int) -> bool:
        """A fetched record is now owed a result; False (ignored) unless it is beyond every offset seen."""
        if not self._beyond_seen(offset):
            return False
        self._order.append(offset)
        self._position = offset + 1 if self._position is None else max(self._position, offset + 1)
        return True

    def register_run(self, offsets: Sequence[int]) -> bool:
        """Register fetched offsets at once; False (nothing registered) unless they are strictly increasing
        and all beyond every offset seen (then register them one by one)."""
        if not offsets:
            return True
        if not self._beyond_seen(offsets[0]) or not all(map(operator.lt, offsets, islice(offsets, 1, None))):
            return False
        self._order.extend(offsets)
        after = offsets[-1] + 1
        self._position = after if self._position is None else max(self._position, after)
        return True

    def _beyond_seen(self, offset: int) -> bool:
        if self._head < len(self._order):
            return offset > self._order[-1]
        return self._next is None or offset >= self._next

    def observe_position(self, position: int) -> None:
        """The consumer's fetch position is ``position``: every offset below it was either registered here
        or is no record of ours (the client skipped it). Once nothing registered is unfinished, the commit
        may move there; a record still owed a result keeps it where it is."""
        if self._position is not None and position <= self._position:
            return
        self._position = position
        self._drained()

    def _drained(self) -> None:
        position = self._position
        if self._head == len(self._order) and position is not None and (self._next is None or position > self._next):
            self._next = position

    def finish(self, offset: int) -> None:
        """The record at ``offset`` has a final outcome (offsets not in flight are ignored)."""
        order = self._order
        if self._head == len(order) or offset < order[self._head] or offset > order[-1]:
            return
        self._done.add(offset)
        self._advance()

    def finish_run(self, offsets: Sequence[int]) -> None:
        """The records at ``offsets`` have final outcomes. When they are the oldest in flight, in order (a
        batch of one lane), they leave with one comparison; otherwise one by one, as :meth:`finish`."""
        count = len(offsets)
        head, order = self._head, self._order
        if count and order[head : head + count] == list(offsets):
            if self._done:
                self._done.difference_update(offsets)
            self._next = offsets[-1] + 1
            self._head = head + count
            self._advance()
            return
        for offset in offsets:
            self.finish(offset)

    def _advance(self) -> None:
        """Move past finished offsets at the front; compact the list now and then."""
        order, done, head = self._order, self._done, self._head
        while done and head < len(order) and order[head] in done:
            done.discard(order[head])
            self._next = order[head] + 1
            head += 1
        if head == len(order):
            order.clear()
            head = 0
        elif head > COMPACT_AFTER and head * 2 > len(order):
            del order[:head]
            head = 0
        self._head = head
        self._drained()

    def committable(self) -> int | None:
        """The offset to commit (the next record to read after a restart), or None if nothing finished."""
        return self._next

    @property
    def in_flight(self) -> int:
        return len(self._order) - self._head

    @property
    def lowest_unfinished(self) -> int | None:
        return self._order[self._head] if self._head < len(self._order) else None

    def reset(self, start: int | None = None) -> None:
        """Forget everything in flight (an operator seek or an abandoned assignment)."""
        self._order.clear()
        self._head = 0
        self._done.clear()
        self._next = start
        self._position = start
