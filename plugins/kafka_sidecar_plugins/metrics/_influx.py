"""Optional push of the metrics registry in InfluxDB line protocol (the Java sidecar's metrics sink)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping

import httpx

from kafka_sidecar_plugins.metrics._registry import MetricsRegistry

log = logging.getLogger(__name__)


class InfluxPusher:
    """POSTs the whole registry to ``url`` every ``interval_s`` seconds, and once more on stop."""

    def __init__(
        self, registry: MetricsRegistry, url: str, interval_s: float, tags: Mapping[str, str], timeout_s: float = 5.0
    ) -> None:
        self._registry = registry
        self._url = url
        self._interval = interval_s
        self._tags = dict(tags)
        self._timeout = timeout_s
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._failures = registry.counter(
            "kafka_sidecar_metrics_push_failures_total", "Failed pushes of metrics to the InfluxDB URL."
        )
        self._pushes = registry.counter("kafka_sidecar_metrics_pushes_total", "Pushes of metrics to the InfluxDB URL.")

    async def start(self) -> None:
        if self._task is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
            self._task = asyncio.create_task(self._loop(), name="metrics-influx-push")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.push()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.push()

    async def push(self) -> bool:
        if self._client is None:
            return False
        body = self._registry.line_protocol(self._tags, time.time_ns())
        try:
            response = await self._client.post(
                self._url, content=body.encode("utf-8"), headers={"Content-Type": "text/plain; charset=utf-8"}
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            self._failures.inc()
            log.warning("pushing metrics to %s failed: %s", self._url, exc)
            return False
        self._pushes.inc()
        return True
