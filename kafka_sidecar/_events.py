"""A small in-process event bus for things that happen outside a chain (dead letters, admin actions).

Audit and metrics plugins subscribe at start-up; publishers never wait on subscribers and a failing
subscriber never fails the publisher (it is logged).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from kafka_sidecar._records import ConsumedRecord

E = TypeVar("E")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeadLettered:
    """A record was written to (or failed to reach) a dead-letter topic."""

    record: ConsumedRecord
    dead_letter_topic: str
    partition: int | None
    offset: int | None
    error: str
    attempts: int
    consumer: str | None
    written: bool


@dataclass(frozen=True, slots=True)
class BatchFetched:
    """A consumer's poll returned records: which partitions, how many, and when the poll ran (epoch ns)."""

    consumer: str
    group: str
    partitions: tuple[tuple[str, int, int], ...]
    """(topic, partition, record count) per partition that returned records."""
    started_ns: int
    ended_ns: int


@dataclass(frozen=True, slots=True)
class AdminAction:
    """An operator changed something through an admin route."""

    action: str
    target: str
    detail: str = ""
    client: str | None = None


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[type, list[Callable[[object], None]]] = {}

    def subscribe(self, event_type: type[E], callback: Callable[[E], None]) -> None:
        self._subscribers.setdefault(event_type, []).append(callback)  # type: ignore[arg-type]

    def publish(self, event: object) -> None:
        for callback in self._subscribers.get(type(event), ()):
            try:
                callback(event)
            except Exception:
                log.exception("an event subscriber failed for %s", type(event).__name__)
