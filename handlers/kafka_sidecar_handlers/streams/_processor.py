"""One stream processor: its supervisor, lag, metrics, audit events and the operator's controls."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Mapping
from typing import Any

from kafka_sidecar.plugin import (
    AdminAction,
    Chain,
    Conflict,
    EventBus,
    Exchange,
    KafkaConfig,
    Metrics,
    MetricsRegistry,
    Reply,
    Resources,
    ValidationFailed,
)
from kafka_sidecar_handlers.streams._config import StreamProcessorConfig
from kafka_sidecar_handlers.streams._launch import command_launch, python_launch, ready_pattern_of, state_dir_of
from kafka_sidecar_handlers.streams._offsets import PartitionLag, delete_internal_topics, group_lag, reset_group
from kafka_sidecar_handlers.streams._supervisor import STATES, Launch, ProcessSupervisor

log = logging.getLogger(__name__)


class StreamProcessor:
    """A ``stream-processor`` handler: the terminal of a consumer entry that runs a supervised child."""

    def __init__(self, config: StreamProcessorConfig, resources: Resources) -> None:
        self.config = config
        self.name = config.application_id
        self._kafka: KafkaConfig = resources.config.kafka
        self.events: EventBus = resources.events
        self._metrics: Metrics = resources.metrics
        self._registry: MetricsRegistry | None = None
        self._supervisor: ProcessSupervisor | None = None
        self._lag_task: asyncio.Task[None] | None = None
        self._operator_stopped = False
        self._reported: set[tuple[str, int]] = set()

    # -- SourceTerminal --------------------------------------------------------------------------

    def attach(self, chain: Chain, consumer_name: str) -> None:
        self.name = consumer_name

    async def __call__(self, exchange: Exchange) -> Reply:
        raise Conflict(f"stream processor {self.name!r} runs in its own process; nothing is sent through its chain")

    async def start(self) -> None:
        config = self.config
        self._registry = self._metrics.registry if self._metrics.enabled else None  # metrics exported?
        self._supervisor = ProcessSupervisor(
            self.name,
            self._launch,
            config.restart,
            stop_timeout_s=config.stop_timeout_ms / 1000,
            ready_pattern=ready_pattern_of(config),
            ready_after_s=config.ready_after_ms / 1000,
            keep_lines=config.log_lines,
            on_change=self._changed,
        )
        self._supervisor.start()
        if self._registry is not None:
            self._lag_task = asyncio.create_task(self._report_lag(), name=f"stream-processor-{self.name}-lag")

    async def stop(self) -> None:
        task, self._lag_task = self._lag_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._supervisor is not None:
            await self._supervisor.stop()

    # -- pieces ----------------------------------------------------------------------------------

    @property
    def supervisor(self) -> ProcessSupervisor:
        if self._supervisor is None:
            raise Conflict(f"stream processor {self.name!r} is not started")
        return self._supervisor

    def _launch(self) -> Launch:
        if self.config.runtime == "python":
            return python_launch(self.name, self.config, self._kafka)
        return command_launch(self.name, self.config, self._kafka)

    def _changed(self, state: str, detail: str) -> None:
        log.info("stream processor %s: %s (%s)", self.name, state, detail)
        if self._registry is not None:
            supervisor = self._supervisor
            running = supervisor is not None and supervisor.state == "running"
            self._registry.gauge(
                "kafka_sidecar_processor_up", "1 while the stream processor is running.", ("processor",)
            ).set(self.name, value=1 if running else 0)
            states = self._registry.gauge(
                "kafka_sidecar_processor_state", "1 for the processor's current state.", ("processor", "state")
            )
            current = supervisor.state if supervisor is not None else "stopped"
            for name in STATES:
                states.set(self.name, name, value=1 if name == current else 0)
            if state == "backoff":
                self._registry.counter(
                    "kafka_sidecar_processor_restarts_total", "Restarts after a crash.", ("processor",)
                ).inc(self.name)
        self.events.publish(AdminAction(action=f"stream-processor.{state}", target=f"stream-processor/{self.name}",
                                        detail=detail))  # fmt: skip

    async def _report_lag(self) -> None:
        assert self._registry is not None
        gauge = self._registry.gauge(
            "kafka_sidecar_processor_lag",
            "Records the processor's group is behind.",
            ("processor", "topic", "partition"),
        )
        while True:
            await asyncio.sleep(self.config.lag_interval_ms / 1000)
            try:
                lags = await self.lag()
            except Exception as exc:
                log.warning("stream processor %s: lag unavailable: %s", self.name, exc)
                continue
            for item in lags:
                if item.lag is not None:
                    gauge.set(self.name, item.topic, str(item.partition), value=item.lag)
                    self._reported.add((item.topic, item.partition))

    async def lag(self) -> list[PartitionLag]:
        return await group_lag(self._kafka, self.config.application_id, self.config.input_topics)

    # -- readiness and control -------------------------------------------------------------------

    def readiness(self) -> str | None:
        """None while running (or deliberately stopped by an operator); else why not."""
        supervisor = self._supervisor
        if supervisor is None:
            return f"stream processor {self.name!r} is not started"
        if supervisor.state == "running" or (supervisor.state == "stopped" and self._operator_stopped):
            return None
        why = f": {supervisor.last_error}" if supervisor.last_error else ""
        return f"stream processor {self.name!r} is {supervisor.state}{why}"

    async def operator_stop(self) -> None:
        self._operator_stopped = True
        await self.supervisor.stop()

    def operator_start(self) -> None:
        self._operator_stopped = False
        self.supervisor.start(reset_budget=True)

    async def reset(self, body: Mapping[str, Any]) -> dict[str, object]:
        """Offsets to the beginning (or ``timestamp`` ms), local state removed; only while stopped."""
        if self.supervisor.active:
            raise Conflict(f"stream processor {self.name!r} is {self.supervisor.state}; stop it before a reset")
        unknown = set(body) - {"to", "timestamp", "delete_internal_topics"}
        if unknown:
            raise ValidationFailed(f"unknown field(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
        timestamp = body.get("timestamp")
        if timestamp is not None and (not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0):
            raise ValidationFailed("timestamp must be epoch milliseconds (an integer >= 0)", field="timestamp")
        if body.get("to", "beginning") != "beginning":
            raise ValidationFailed("to must be 'beginning' (or give 'timestamp')", field="to")
        drop_topics = body.get("delete_internal_topics", False)
        if not isinstance(drop_topics, bool):
            raise ValidationFailed("delete_internal_topics must be true or false", field="delete_internal_topics")
        offsets = await reset_group(self._kafka, self.config.application_id, self.config.input_topics, timestamp)
        state_dir = state_dir_of(self.name, self.config)
        shutil.rmtree(state_dir, ignore_errors=True)
        deleted = await delete_internal_topics(self._kafka, self.config.application_id) if drop_topics else []
        return {
            "processor": self.name,
            "partitions": [
                {"topic": tp.topic, "partition": tp.partition, "offset": offset}
                for tp, offset in sorted(offsets.items())
            ],
            "state_dir_removed": str(state_dir),
            "deleted_topics": deleted,
        }

    async def status(self) -> dict[str, object]:
        supervisor = self.supervisor
        exit_info = supervisor.last_exit
        out: dict[str, object] = {
            "name": self.name,
            "runtime": self.config.runtime,
            "application_id": self.config.application_id,
            "state": supervisor.state,
            "pid": supervisor.pid,
            "uptime_s": round(time.time() - supervisor.started_at, 3) if supervisor.started_at else None,
            "restarts": supervisor.restarts,
            "last_exit": None
            if exit_info is None
            else {
                "code": exit_info.code,
                "signal": exit_info.signal,
                "at": exit_info.at,
                "ran_s": round(exit_info.ran_s, 3),
                "error": exit_info.error,
            },
            "last_error": supervisor.last_error,
            "last_lines": [{"at": line.at, "stream": line.stream, "text": line.text} for line in supervisor.lines],
        }
        try:
            out["lag"] = [item.as_dict() for item in await self.lag()]
        except Exception as exc:
            out["lag"] = None
            out["lag_error"] = str(exc)
        return out
