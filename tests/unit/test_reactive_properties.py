"""Property-based tests (hypothesis) of the reactive consumer's commit safety, without a broker.

* ``OffsetTracker``: whatever the finishing order, the committable offset is exactly one past the
  longest finished prefix of the registered offsets; it never moves back; old or repeated offsets
  are ignored.
* ``PartitionWorker``: every offered record is delivered exactly once, each key (each partition in
  partition mode) in offset order, and once every record finished, the tracker can commit past the last.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_sidecar._records import ConsumedRecord
from kafka_sidecar_handlers.reactive._delivery import DeliveryStats
from kafka_sidecar_handlers.reactive._offsets import OffsetTracker
from kafka_sidecar_handlers.reactive._partition import BatchLimits, PartitionWorker

offsets_strategy = st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=60).map(
    lambda gaps: [sum(gaps[: i + 1]) for i in range(len(gaps))]  # strictly increasing, with gaps
)


@settings(max_examples=300, deadline=None)
@given(offsets=offsets_strategy, data=st.data())
def test_tracker_commits_only_past_the_finished_prefix(offsets: list[int], data: st.DataObject) -> None:
    tracker = OffsetTracker()
    for offset in offsets:
        assert tracker.register(offset)
    assert not tracker.register(offsets[-1])  # a repeat is ignored
    assert not tracker.register(offsets[0] - 1)
    order = data.draw(st.permutations(offsets))
    count = data.draw(st.integers(min_value=0, max_value=len(order)))
    finished: set[int] = set()
    previous = tracker.committable()
    for offset in order[:count]:
        tracker.finish(offset)
        tracker.finish(offset)  # finishing twice changes nothing
        finished.add(offset)
        prefix = 0
        while prefix < len(offsets) and offsets[prefix] in finished:
            prefix += 1
        expected = offsets[prefix - 1] + 1 if prefix else None
        assert tracker.committable() == expected
        assert tracker.in_flight == len(offsets) - prefix
        assert tracker.lowest_unfinished == (offsets[prefix] if prefix < len(offsets) else None)
        if previous is not None:
            assert tracker.committable() is not None
            assert tracker.committable() >= previous  # type: ignore[operator]
        previous = tracker.committable()
    tracker.finish(offsets[-1] + 100)  # never registered: ignored
    assert tracker.committable() == previous


@settings(max_examples=100, deadline=None)
@given(start=st.integers(min_value=0, max_value=50), offsets=offsets_strategy)
def test_tracker_after_a_reset_ignores_offsets_before_the_new_start(start: int, offsets: list[int]) -> None:
    tracker = OffsetTracker()
    for offset in offsets:
        tracker.register(offset)
    tracker.reset(start)
    assert (tracker.committable(), tracker.in_flight) == (start, 0)
    accepted = [offset for offset in offsets if tracker.register(offset)]
    assert accepted == [offset for offset in offsets if offset >= start]


records_strategy = st.lists(st.sampled_from([b"a", b"b", b"c", b"d", None]), min_size=1, max_size=40)


async def _deliver_all(
    keys: Sequence[bytes | None], lanes: int, limits: BatchLimits, yields: Callable[[], int]
) -> tuple[list[ConsumedRecord], PartitionWorker]:
    delivered: list[ConsumedRecord] = []
    records = [ConsumedRecord("t", 0, 10 + i, 0, key, b"v%d" % i) for i, key in enumerate(keys)]
    last = records[-1].offset
    done = asyncio.Event()

    async def runner(
        batch: Sequence[ConsumedRecord], on_final: Callable[[Sequence[ConsumedRecord], str], None], stats: DeliveryStats
    ) -> None:
        for _ in range(yields()):  # let other lanes interleave
            await asyncio.sleep(0)
        for record in batch:
            delivered.append(record)
            on_final([record], "success")

    def on_change(worker: PartitionWorker) -> None:
        if worker.tracker.committable() == last + 1:
            done.set()

    worker = PartitionWorker("t", 0, lanes, limits, runner, on_change)
    worker.start()
    try:
        half = len(records) // 2
        worker.offer(records[:half])
        worker.offer(records[half:])
        worker.offer(records[:1])  # fetched twice: ignored
        await asyncio.wait_for(done.wait(), 10)
    finally:
        await worker.close()
    return delivered, worker


@settings(max_examples=60, deadline=None)
@given(
    keys=records_strategy,
    lanes=st.integers(min_value=1, max_value=4),
    max_records=st.integers(min_value=1, max_value=8),
    max_bytes=st.integers(min_value=1, max_value=64),
    pattern=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=16),
)
def test_worker_delivers_each_record_once_in_key_order_and_commits_past_the_last(
    keys: list[bytes | None], lanes: int, max_records: int, max_bytes: int, pattern: list[int]
) -> None:
    turns = itertools.cycle(pattern)  # drawn up front: a draw inside the event loop could fail a lane

    def yields() -> int:
        return next(turns)

    limits = BatchLimits(max_records, max_bytes, 0.0)
    delivered, worker = asyncio.run(_deliver_all(keys, lanes, limits, yields))
    offsets = [record.offset for record in delivered]
    assert sorted(offsets) == list(range(10, 10 + len(keys)))  # each exactly once
    for key in set(keys):
        mine = [record.offset for record in delivered if record.key == key or (lanes == 1)]
        assert mine == sorted(mine), f"key {key!r} out of order"
    assert worker.tracker.committable() == 10 + len(keys)
    assert worker.tracker.in_flight == 0
    assert worker.buffered == 0


@settings(max_examples=200, deadline=None)
@given(offsets=offsets_strategy, skipped=st.integers(min_value=1, max_value=3), data=st.data())
def test_tracker_follows_the_position_only_past_finished_records(
    offsets: list[int], skipped: int, data: st.DataObject
) -> None:
    """The client's position may be past the last record (transaction markers): the commit follows it
    once every registered record is final, and never while one is still owed a result."""
    tracker = OffsetTracker()
    for offset in offsets:
        tracker.register(offset)
    position = offsets[-1] + 1 + skipped
    tracker.observe_position(position)
    order = data.draw(st.permutations(offsets))
    for offset in order[:-1]:
        tracker.finish(offset)
        assert tracker.committable() is None or tracker.committable() <= order[-1]  # type: ignore[operator]
    tracker.finish(order[-1])
    assert tracker.committable() == position
    tracker.observe_position(position - 1)  # an older reading never moves it back
    assert tracker.committable() == position
    assert tracker.register(position)
    assert tracker.committable() == position


@settings(max_examples=300, deadline=None)
@given(offsets=offsets_strategy, data=st.data())
def test_tracker_runs_register_and_finish_like_single_offsets(offsets: list[int], data: st.DataObject) -> None:
    """Runs (a fetched run registered at once, a batch finished at once) commit exactly what the same
    offsets registered and finished one by one would, in any order and split."""
    cut = data.draw(st.integers(min_value=0, max_value=len(offsets)))
    runs, single = OffsetTracker(), OffsetTracker()
    assert runs.register_run(offsets[:cut])
    assert not runs.register_run([offsets[-1], offsets[-1]])  # not increasing: nothing registered
    assert runs.register_run(offsets[cut:])
    assert not runs.register_run(offsets[:1])  # seen already
    for offset in offsets:
        single.register(offset)
    order = data.draw(st.permutations(offsets))
    finished: set[int] = set()
    while order:
        size = data.draw(st.integers(min_value=1, max_value=len(order)))
        chunk, order = order[:size], order[size:]
        if data.draw(st.booleans()):
            chunk = sorted(chunk)
        runs.finish_run(chunk)
        for offset in chunk:
            single.finish(offset)
        finished.update(chunk)
        prefix = 0
        while prefix < len(offsets) and offsets[prefix] in finished:
            prefix += 1
        assert runs.committable() == single.committable() == (offsets[prefix - 1] + 1 if prefix else None)
        assert runs.in_flight == single.in_flight == len(offsets) - prefix
        assert runs.lowest_unfinished == single.lowest_unfinished
