"""The live consumer instances: creation under a cap, lookup, deletion, idle expiry and shutdown.

One manager per handler instance (no globals). Instances are keyed by group and name, like REST
Proxy v2. A name is reserved before its consumer connects, so two creates racing for one name get
one 200 and one 409 (v2 code 40902). An expiry task closes instances idle longer than the
configured time (an instance busy in a poll is never idle), which makes the consumer leave its group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer

from kafka_sidecar.plugin import Conflict, KafkaConfig, KafkaUnavailable, TooManyRequests, consumer_kwargs
from kafka_sidecar.plugin import describe_error as describe
from kafka_sidecar_handlers.active._instance import ActiveInstance, InstanceKey, not_found
from kafka_sidecar_handlers.active._requests import CreateRequest

log = logging.getLogger(__name__)
V2_INSTANCE_EXISTS = 40902
V2_TOO_MANY_INSTANCES = 42901


@dataclass(frozen=True, slots=True)
class ManagerSettings:
    instance_timeout_s: float
    max_instances: int
    max_poll_records: int
    auto_commit_interval_s: float
    session_timeout_ms: int
    heartbeat_interval_ms: int
    start_timeout_s: float
    name_prefix: str = "rest-consumer"


class InstanceManager:
    def __init__(self, kafka: KafkaConfig, settings: ManagerSettings) -> None:
        self._kafka = kafka
        self.settings = settings
        self.engine = kafka.consumer.engine
        """``kafka.consumer.engine``: aiokafka, or librdkafka (``_rdkafka.py``)."""
        self._instances: dict[InstanceKey, ActiveInstance | None] = {}
        """``None`` marks a name reserved while its consumer connects."""
        self._expiry_task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._instances)

    def _poll_interval_ms(self) -> int:
        """Longer than an instance may stay idle (it expires first), so Kafka never drops a live one."""
        return max(300000, int(self.settings.instance_timeout_s * 1000) + 60000)

    def make_consumer(self, group: str, name: str, request: CreateRequest) -> Any:
        """A client of the configured engine for instance ``name`` of ``group`` (not started)."""
        if self.engine == "librdkafka":
            from kafka_sidecar_handlers.active._rdkafka import RdKafkaActiveConsumer, rdkafka_active_settings

            settings = rdkafka_active_settings(
                self._kafka, group, name,
                auto_offset_reset=request.auto_offset_reset,
                session_timeout_ms=self.settings.session_timeout_ms,
                heartbeat_interval_ms=self.settings.heartbeat_interval_ms,
                max_poll_interval_ms=self._poll_interval_ms(),
                max_poll_records=self.settings.max_poll_records,
            )  # fmt: skip
            return RdKafkaActiveConsumer(name, settings, connect_timeout_s=self.settings.start_timeout_s)
        return AIOKafkaConsumer(**self.consumer_options(group, name, request))

    def consumer_options(self, group: str, name: str, request: CreateRequest) -> dict[str, Any]:
        """The aiokafka engine's ``AIOKafkaConsumer`` settings."""
        poll_interval = self._poll_interval_ms()
        return {
            **consumer_kwargs(self._kafka, f"active-{name}"),
            "group_id": group,
            "auto_offset_reset": request.auto_offset_reset,
            # The sidecar commits itself (only what was handed out), also for auto-commit instances.
            "enable_auto_commit": False,
            "max_poll_interval_ms": poll_interval,
            "session_timeout_ms": self.settings.session_timeout_ms,
            "heartbeat_interval_ms": self.settings.heartbeat_interval_ms,
            "max_poll_records": self.settings.max_poll_records,
        }

    async def create(self, group: str, request: CreateRequest) -> ActiveInstance:
        name = request.name or f"{self.settings.name_prefix}-{uuid.uuid4().hex}"
        key = InstanceKey(group, name)
        if key in self._instances:
            raise Conflict(
                f"a consumer instance named {name!r} already exists in group {group!r}",
                field="name",
                v2_error_code=V2_INSTANCE_EXISTS,
            )
        if len(self._instances) >= self.settings.max_instances:
            raise TooManyRequests(
                f"the sidecar already runs {len(self._instances)} consumer instances (max_instances); "
                "delete unused ones or wait for idle ones to expire",
                v2_error_code=V2_TOO_MANY_INSTANCES,
            )
        self._instances[key] = None
        try:
            consumer = self.make_consumer(group, name, request)
            try:
                await asyncio.wait_for(consumer.start(), self.settings.start_timeout_s)
            except BaseException:
                with contextlib.suppress(Exception):
                    await consumer.stop()
                raise
        except Exception as exc:
            del self._instances[key]
            raise KafkaUnavailable(f"consumer instance {key} could not connect to Kafka: {describe(exc)}") from exc
        except BaseException:
            del self._instances[key]
            raise
        instance = ActiveInstance(key, request, consumer, auto_commit_interval_s=self.settings.auto_commit_interval_s)
        self._instances[key] = instance
        log.info("consumer instance %s created (formats %s/%s)", key, request.key_format, request.value_format)
        return instance

    def live(self) -> list[ActiveInstance]:
        """Every connected, open instance (for the admin console)."""
        return [i for i in self._instances.values() if i is not None and not i.closed]

    def get(self, group: str, name: str) -> ActiveInstance:
        key = InstanceKey(group, name)
        instance = self._instances.get(key)
        if instance is None or instance.closed:
            raise not_found(key)
        instance.touch()
        return instance

    async def delete(self, group: str, name: str) -> None:
        instance = self.get(group, name)
        self._forget(instance)
        await instance.close("deleted")

    def _forget(self, instance: ActiveInstance) -> None:
        if self._instances.get(instance.key) is instance:
            del self._instances[instance.key]

    # -- expiry and shutdown ---------------------------------------------------------------------

    def start(self) -> None:
        if self._expiry_task is None:
            self._expiry_task = asyncio.create_task(self._expire_loop(), name="active-consumer-expiry")

    async def expire_idle(self) -> int:
        """Close every instance idle longer than the timeout; returns how many were closed."""
        limit = self.settings.instance_timeout_s
        idle = [i for i in self._instances.values() if i is not None and i.idle_for() > limit]
        for instance in idle:
            self._forget(instance)
        for instance in idle:
            log.info("consumer instance %s expired after %.1f s idle; leaving the group", instance.key, limit)
        await asyncio.gather(*(i.close("expired") for i in idle))
        return len(idle)

    async def _expire_loop(self) -> None:
        period = min(1.0, max(0.05, self.settings.instance_timeout_s / 4))
        while True:
            await asyncio.sleep(period)
            try:
                await self.expire_idle()
            except Exception:
                log.exception("expiring idle consumer instances failed")

    async def close_all(self) -> None:
        if self._expiry_task is not None:
            self._expiry_task.cancel()
            await asyncio.gather(self._expiry_task, return_exceptions=True)
            self._expiry_task = None
        live = [i for i in self._instances.values() if i is not None]
        self._instances.clear()
        await asyncio.gather(*(i.close("sidecar stopping") for i in live), return_exceptions=True)
