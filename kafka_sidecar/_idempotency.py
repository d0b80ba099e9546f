"""``Idempotency-Key``: a retried produce gets the first attempt's outcome instead of writing again.

The first request with a key starts the produce as a task of its own; the request waits for it at most
``answer_within`` seconds (then 504, outcome unknown) while the task goes on waiting for the broker's
real answer. A retry with the same key joins that task, or gets its stored reply. Outcomes that wrote
nothing (503 not written, a 4xx) are not kept: a retry is then simply tried again. Memory is bounded by
a window and a key count; the oldest keys go first.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kafka_sidecar._errors import Conflict, KafkaOutcomeUnknown, ValidationFailed
from kafka_sidecar._exchange import Reply

HEADER = "idempotency-key"
MAX_KEY_LENGTH = 255


@dataclass(slots=True)
class _Entry:
    fingerprint: bytes
    task: asyncio.Task[Reply]
    created: float


class IdempotencyCache:
    def __init__(self, window_s: float, max_keys: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._window_s = window_s
        self._max_keys = max_keys
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def run(
        self, key: str, fingerprint: bytes, produce: Callable[[], Awaitable[Reply]], answer_within: float
    ) -> Reply:
        """``produce()`` once per ``key`` within the window; every caller gets its outcome."""
        self._expire()
        entry = self._entries.get(key)
        if entry is not None and entry.fingerprint != fingerprint:
            raise Conflict(
                "this Idempotency-Key was used for a different request; use a new key for a new request",
                field="Idempotency-Key",
            )
        if entry is None:
            task = asyncio.ensure_future(produce())
            entry = _Entry(fingerprint, task, self._clock())
            self._entries[key] = entry
            task.add_done_callback(lambda done: self._forget_unwritten(key, done))
            while len(self._entries) > self._max_keys:
                self._entries.popitem(last=False)
        try:
            return await asyncio.wait_for(asyncio.shield(entry.task), answer_within)
        except TimeoutError:
            raise KafkaOutcomeUnknown(
                f"no outcome within {answer_within:.0f}s; it may still be written. "
                "Retry with the same Idempotency-Key to learn it",
                field="Idempotency-Key",
                extra={"outcome_pending": True},
            ) from None

    def _forget_unwritten(self, key: str, task: asyncio.Task[Reply]) -> None:
        """An error other than "outcome unknown" means nothing was written: let a retry try again."""
        if task.cancelled() or not isinstance(task.exception(), KafkaOutcomeUnknown | None):
            entry = self._entries.get(key)
            if entry is not None and entry.task is task:
                del self._entries[key]

    def _expire(self) -> None:
        horizon = self._clock() - self._window_s
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if entry.created >= horizon or not entry.task.done():
                break
            del self._entries[key]


def idempotency_key(headers: dict[str, str] | object) -> str | None:
    """The request's ``Idempotency-Key`` (validated), or None."""
    get = getattr(headers, "get", None)
    value = get(HEADER) if get is not None else None
    if value is None:
        return None
    if not value or len(value) > MAX_KEY_LENGTH or not value.isascii() or not value.isprintable():
        raise ValidationFailed(f"must be 1..{MAX_KEY_LENGTH} printable ASCII characters", field="Idempotency-Key")
    return str(value)


def request_fingerprint(method: str, path: str, content_type: str, body: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), content_type.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


"""The sidecar's one cache, in ``resources.services``."""
