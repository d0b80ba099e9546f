"""Lag and delivered counts of every reactive consumer, sampled in the background for the console's charts.

One sample every :data:`INTERVAL_S` seconds, the last :data:`KEEP` of them (five minutes), so a page
opened now shows the last minutes at once. Sampling asks the broker for end offsets, the same call as
``GET /admin/consumers/reactive``, once per interval whatever the number of open pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

INTERVAL_S = 5.0
KEEP = 60
log = logging.getLogger(__name__)

Status = Callable[[], Awaitable[Mapping[str, Any]]]


class History:
    def __init__(self, consumers: Mapping[str, Status], interval_s: float = INTERVAL_S, keep: int = KEEP) -> None:
        self._consumers = consumers
        self.interval_s = interval_s
        self.samples: deque[dict[str, object]] = deque(maxlen=keep)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._consumers and self._task is None:
            self._task = asyncio.create_task(self._run(), name="console-history")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def sample(self) -> None:
        consumers: dict[str, dict[str, int]] = {}
        for name, status in self._consumers.items():
            partitions = (await status()).get("partitions") or []
            consumers[name] = {
                "lag": sum(int(p.get("lag") or 0) for p in partitions),
                "delivered": sum(int(p.get("delivered") or 0) for p in partitions),
            }
        self.samples.append({"t": int(time.time() * 1000), "consumers": consumers})

    async def _run(self) -> None:
        while True:
            try:
                await self.sample()
            except Exception as exc:  # a broker hiccup must not end the sampling
                log.debug("console history sample failed: %s", exc)
            await asyncio.sleep(self.interval_s)

    def snapshot(self) -> dict[str, object]:
        return {"interval_s": self.interval_s, "samples": list(self.samples)}
