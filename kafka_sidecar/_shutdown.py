"""One shutdown budget for everything the sidecar stops (``server.shutdown_timeout_s``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable

log = logging.getLogger(__name__)


class ShutdownBudget:
    """A deadline shared by the steps of a shutdown; each step gets what is left of it."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + max(seconds, 0.0)

    def remaining(self, reserve: float = 0.0) -> float:
        """Seconds left, minus ``reserve`` kept for later steps (never negative)."""
        return max(self.deadline - time.monotonic() - reserve, 0.0)

    async def run(self, step: str, awaitable: Awaitable[object]) -> bool:
        """Await ``awaitable`` within the budget; False (and one log line) when it failed or ran out."""
        try:
            await asyncio.wait_for(awaitable, max(self.remaining(), 0.001))
        except TimeoutError:
            log.error("shutdown: %s did not finish within the shutdown budget; it was cancelled", step)
            return False
        except Exception:
            log.exception("shutdown: %s failed", step)
            return False
        return True
