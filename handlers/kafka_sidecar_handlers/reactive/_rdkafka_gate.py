"""Pausing partitions on the librdkafka engine without losing what librdkafka fetched ahead.

librdkafka drops a partition's prefetched messages when it is paused, and after a resume fetches again
only once its fetcher wakes (about 1 s) or behind a fetch the broker holds for other partitions: with
the reactive runtime pausing a partition every time its buffer fills, that cost a re-fetch of the data
and stalls of up to a second. So a pause the runtime asks for is **soft** first: the partition's records
that still arrive are held here, in order, and handed over on resume; only when ``hold_limit`` records
are held is the partition paused in librdkafka (**hard**), and resumed there with a seek to just after
the held records (the seek wakes the fetcher at once).

Lives on the thread that owns ``consume()``; the runtime's pause/resume calls reach it through
:meth:`apply`. While a partition has held records its client position is ahead of what the runtime has
seen, so :meth:`holds` tells the engine to report no position for it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import TopicPartition

from kafka_sidecar.plugin import ConsumedRecord
from kafka_sidecar.plugin import rdkafka_partition as rd_partition

log = logging.getLogger(__name__)


class FetchGate:
    """Soft and hard pauses of one librdkafka consumer's partitions, and the records held meanwhile."""

    def __init__(self, rd: Any, hold_limit: int) -> None:
        self._rd = rd
        self._limit = hold_limit
        self.soft: set[TopicPartition] = set()
        self.hard: set[TopicPartition] = set()
        self.held: dict[TopicPartition, list[ConsumedRecord]] = {}

    def apply(self, wanted: Mapping[TopicPartition, bool]) -> None:
        """Pauses (True) and resumes (False) the runtime asked for."""
        for tp, pause in wanted.items():
            if pause:
                self.soft.add(tp)
                continue
            self.soft.discard(tp)
            if tp in self.hard:
                self._unpause(tp, seek=True)

    def releasable(self) -> bool:
        """Held records of a partition no longer paused wait to be handed over (no need to wait)."""
        return any(tp not in self.soft for tp in self.held)

    def sift(
        self, fetched: Mapping[TopicPartition, list[ConsumedRecord]]
    ) -> dict[TopicPartition, list[ConsumedRecord]]:
        """What the runtime gets of a fetch: held records of resumed partitions first, then the fetched
        records of partitions not paused; a paused partition's are held (hard pause at the limit)."""
        out = {tp: self.held.pop(tp) for tp in [tp for tp in self.held if tp not in self.soft]}
        for tp, records in fetched.items():
            if tp in self.soft:
                held = self.held.setdefault(tp, [])
                held.extend(records)
                if len(held) >= self._limit and tp not in self.hard:
                    self._pause(tp)
            elif tp in out:
                out[tp].extend(records)
            else:
                out[tp] = records
        return out

    def holds(self, tp: TopicPartition) -> bool:
        return tp in self.held

    def drop_held(self, tp: TopicPartition) -> None:
        """Before a seek: the held records are not wanted any more, and librdkafka must fetch again."""
        self.held.pop(tp, None)
        if tp in self.hard:
            self._unpause(tp, seek=False)

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """The partitions were revoked (or newly assigned): no state of theirs holds."""
        for tp in tps:
            self.soft.discard(tp)
            self.hard.discard(tp)
            self.held.pop(tp, None)

    def _pause(self, tp: TopicPartition) -> None:
        from confluent_kafka import KafkaException

        try:
            self._rd.pause([rd_partition(tp)])
        except KafkaException as exc:  # no longer assigned
            log.debug("pause %s: %s", tp, exc)
            return
        self.hard.add(tp)

    def _unpause(self, tp: TopicPartition, *, seek: bool) -> None:
        from confluent_kafka import KafkaException

        self.hard.discard(tp)
        try:
            self._rd.resume([rd_partition(tp)])
            if seek:
                (place,) = self._rd.position([rd_partition(tp)])
                if place.offset >= 0 and place.error is None:
                    self._rd.seek(place)
        except KafkaException as exc:  # no longer assigned
            log.debug("resume %s: %s", tp, exc)
