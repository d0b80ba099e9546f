"""The thread that owns a librdkafka consumer: every call that must not run elsewhere.

Used by both consumers' librdkafka engines (``kafka_sidecar_handlers``: ``reactive/_rdkafka.py``,
``active/_rdkafka.py``); public in ``kafka_sidecar.plugin`` as ``RdKafkaConsumerThread``. Jobs are
run in order and answered on the event loop. librdkafka serves rebalance callbacks inside ``consume()``
on this thread, and holds a commit made on any other thread until such a callback returns; the callback
waits for the consumer's own revoke handling on the event loop, which commits. So while a callback waits
(:meth:`RdKafkaConsumerThread.serve_until`), and between the slices of a fetch's wait
(:meth:`RdKafkaConsumerThread.serve_pending`), this thread runs the jobs marked ``during_rebalance``
(commits) itself; the others wait their turn.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

SERVE_TICK_S = 0.01
"""How often a waiting rebalance callback looks whether the runtime is done."""


@dataclass(frozen=True, slots=True)
class _Job:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    call: Callable[[], Any]
    during_rebalance: bool
    """May run while a rebalance callback waits for the runtime (a commit the runtime's drain makes)."""

    def run(self) -> None:
        try:
            result = self.call()
        except BaseException as exc:  # answered to the caller, who decides
            _answer(self.loop, self.future, None, exc)
        else:
            _answer(self.loop, self.future, result, None)


class RdKafkaConsumerThread:
    """One daemon thread running the jobs given to it, in order, each answered on the event loop; commits
    also while a rebalance callback or a fetch waits on it (see the module)."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._deferred: list[_Job | None] = []
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()

    def run(self, call: Callable[[], T], *, during_rebalance: bool = False) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(loop, future, call, during_rebalance))
        return future

    def finish(self) -> None:
        """No jobs after those queued: the thread ends once they are done."""
        self._jobs.put(None)

    def _main(self) -> None:
        while True:
            job = self._deferred.pop(0) if self._deferred else self._jobs.get()
            if job is None:
                return
            job.run()

    def serve_pending(self) -> None:
        """On this thread, between two waits of a fetch: run the rebalance-safe jobs (commits) queued
        meanwhile, so a commit does not wait for the fetch to end; other jobs wait for it."""
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            self._run_if_rebalance_safe(job)

    def serve_until(self, done: concurrent.futures.Future[None], timeout: float) -> bool:
        """On this thread, inside a rebalance callback: run rebalance-safe jobs until ``done`` (True) or
        ``timeout`` (False); other jobs wait for the callback to return."""
        deadline = time.monotonic() + timeout
        while not done.done():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                job = self._jobs.get(timeout=min(left, SERVE_TICK_S))
            except queue.Empty:
                continue
            self._run_if_rebalance_safe(job)
        return True

    def consume(
        self,
        rd: Any,
        most: int,
        timeout_s: float,
        *,
        slice_s: float,
        between_waits: Callable[[], None] | None = None,
        ready: Callable[[], bool] | None = None,
    ) -> list[Any]:
        """On this thread: the messages ``rd`` (a ``confluent_kafka.Consumer``) has now, at most ``most``;
        else wait up to ``timeout_s`` for the first, in slices of ``slice_s``, and take what came with it
        (``consume(n, t)`` alone would wait for all ``n``). Between slices the commits queued meanwhile are
        made (:meth:`serve_pending`), then ``between_waits`` runs; the wait ends early once ``ready()``."""
        consume = rd.consume
        messages: list[Any] = consume(most, 0)
        deadline = time.monotonic() + timeout_s
        while not messages and not (ready is not None and ready()):
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            messages = consume(1, min(left, slice_s))
            if messages and most > 1:
                messages.extend(consume(most - 1, 0))
            elif not messages:
                self.serve_pending()
                if between_waits is not None:
                    between_waits()
        return messages

    def wait_for(
        self, loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, None], timeout: float, what: str
    ) -> None:
        """On this thread, inside a rebalance callback: run ``work`` on the event loop and wait for it
        (bounded), making the commits it asks for meanwhile (:meth:`serve_until`). Never raises: a listener
        that fails or takes longer than ``timeout`` is logged, and librdkafka goes on."""
        try:
            done = asyncio.run_coroutine_threadsafe(work, loop)
        except RuntimeError:  # the loop is gone
            work.close()
            return
        if not self.serve_until(done, timeout):
            done.cancel()
            log.warning("%s took longer than %.0fs; going on", what, timeout)
        elif done.exception() is not None:
            log.error("%s failed: %r", what, done.exception())

    async def close_client(self, close: Callable[[], Any], what: str, timeout: float) -> None:
        """The last job: ``close`` (librdkafka's ``close()``, which leaves the group and serves the final
        revoke on this thread), waited for at most ``timeout``; never raises. The thread then ends."""
        closed = self.run(close)
        self.finish()
        try:
            await asyncio.wait_for(asyncio.shield(closed), timeout)
        except TimeoutError:
            log.warning("%s: librdkafka did not close within %.0fs; left behind", what, timeout)
        except Exception as exc:
            log.warning("%s: closing librdkafka failed: %s", what, exc)
        await asyncio.to_thread(self.thread.join, 1.0)

    def _run_if_rebalance_safe(self, job: _Job | None) -> None:
        """Run a job that may run while a fetch or a rebalance callback waits; keep any other (and the
        end marker) for after it, in order."""
        if job is not None and job.during_rebalance:
            job.run()
        else:
            self._deferred.append(job)


def _answer(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any, error: BaseException | None
) -> None:
    def settle() -> None:
        if future.done():  # the caller gave up (cancelled)
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        loop.call_soon_threadsafe(settle)
