"""The ksqlDB consumer (``use: ksqldb-consumer``): start-up against ksqlDB, then sink or push delivery.

Start-up never blocks the sidecar: ``start`` returns at once and a task waits for ksqlDB (``GET /info``
answering RUNNING; 503, timeouts and refused connections are retried with capped backoff; state
``connecting``), runs the ``statements`` once each in order (``starting``), then, in sink mode, the
persistent query, and starts delivering. A statement ksqlDB rejects (4xx) is final: state ``failed``
with ksqlDB's message and error code, until an operator's restart.

Delivery is the reactive consumer's, composed rather than copied: sink mode runs a
:class:`ReactiveConsumer` on ``sink_topic``; push mode uses the same consumer's backend client and
partition workers (retries, DLQ, statuses) fed by :class:`PushSubscription`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_sidecar.plugin import (
    Chain,
    Conflict,
    Exchange,
    Reply,
    Resources,
    SidecarError,
    UpstreamRejected,
    UpstreamUnavailable,
    cancel_and_wait,
    consumer_kwargs,
)
from kafka_sidecar_handlers.reactive import ReactiveConsumer
from kafka_sidecar_handlers.reactive.ksqldb._checkpoint import CheckpointStore
from kafka_sidecar_handlers.reactive.ksqldb._client import KsqlDbClient
from kafka_sidecar_handlers.reactive.ksqldb._config import KsqlDbConsumerConfig
from kafka_sidecar_handlers.reactive.ksqldb._metrics import KsqlDbMetrics
from kafka_sidecar_handlers.reactive.ksqldb._push import PushSubscription

log = logging.getLogger(__name__)
_CREATED_NAME = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:STREAM|TABLE)\s+(?:IF\s+NOT\s+EXISTS\s+)?(`[^`]+`|\w+)", re.IGNORECASE
)


RECEIVED_PARTS = ("delivered", "dropped", "dead_lettered", "in_flight_records")
"""Sink mode: rows fetched since this start are the final ones plus those fetched and not yet final."""


def created_name(statement: str) -> str | None:
    found = _CREATED_NAME.match(statement)
    if found is None:
        return None
    name = found.group(1)
    return name[1:-1] if name.startswith("`") else name.upper()


class KsqlDbConsumer:
    """Source terminal of one ksqlDB consumer pipeline."""

    def __init__(self, config: KsqlDbConsumerConfig, resources: Resources) -> None:
        self.config = config
        self.name = "ksqldb"
        self.events = resources.events
        self._resources = resources
        self._chain: Chain | None = None
        self.delivery: ReactiveConsumer | None = None
        self.push: PushSubscription | None = None
        self.state = "created"
        self.last_error: str | None = None
        self.ksqldb_error_code: int | None = None
        self.server_version: str | None = None
        self.query_id: str | None = None
        self.columns: list[dict[str, object]] | None = None
        self.restarts = 0
        self._client: KsqlDbClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._offset_reset: str | None = None
        self._metrics: KsqlDbMetrics | None = None

    # -- SourceTerminal --------------------------------------------------------------------------

    def attach(self, chain: Chain, consumer_name: str) -> None:
        self._chain = chain
        self.name = consumer_name

    async def __call__(self, exchange: Exchange) -> Reply:
        """Deliver the exchange's rows to the backend (the reactive consumer's last link)."""
        if self.delivery is None:
            raise Conflict(f"ksqlDB consumer {self.name!r} is not delivering")
        return await self.delivery(exchange)

    async def start(self) -> None:
        if self._chain is None:
            raise Conflict("ksqlDB consumer started before it was attached to a chain")
        self.state = "connecting"
        self._task = asyncio.create_task(self._run(), name=f"ksqldb-{self.name}")
        if self._resources.metrics.enabled:
            self._metrics = self._metrics or KsqlDbMetrics(self._resources.metrics.registry, self)
            self._metrics.reset()
            self._metrics.start()

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        drain = self.config.reactive_for(self.name).drain_timeout_ms / 1000
        push, self.push = self.push, None
        if push is not None:
            await push.stop(drain)
        delivery, self.delivery = self.delivery, None
        if delivery is not None:
            await delivery.stop()
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        self.state = "stopped"
        if self._metrics is not None:
            await self._metrics.stop()

    async def restart(self, offset_reset: str | None = None) -> None:
        """Stop delivering, run the statements again (idempotently) and start over; ``failed`` clears."""
        await self.stop()
        self.restarts += 1
        self._offset_reset = offset_reset
        self.last_error = None
        self.ksqldb_error_code = None
        await self.start()

    # -- start-up --------------------------------------------------------------------------------

    async def _run(self) -> None:
        config = self.config
        self._client = client = KsqlDbClient(config)
        wait = config.reconnect_initial_ms / 1000
        while True:
            try:
                await self._connect(client)
                await self._run_statements(client)
                break
            except UpstreamRejected as exc:
                self.state = "failed"
                self.last_error = exc.detail
                code = exc.extra.get("ksqldb_error_code")
                self.ksqldb_error_code = code if isinstance(code, int) else None
                log.error("ksqlDB consumer %s failed: %s (ksqlDB error %s)", self.name, exc.detail, code)
                return
            except SidecarError as exc:
                self.state = "connecting"
                self.last_error = exc.detail
            log.info("ksqlDB consumer %s: %s; trying again in %.1fs", self.name, self.last_error, wait)
            await asyncio.sleep(wait)
            wait = min(wait * 2, config.reconnect_max_ms / 1000)
        self.last_error = None
        try:
            await self._start_delivery(client)
        except Exception as exc:  # reported, never a silently dead task; restart tries again
            log.exception("ksqlDB consumer %s: delivery did not start", self.name)
            self.state = "failed"
            self.last_error = f"delivery did not start: {type(exc).__name__}: {exc}"

    async def _connect(self, client: KsqlDbClient) -> None:
        self.state = "connecting"
        info = await client.info()
        status = str(info.get("serverStatus", "RUNNING"))
        self.server_version = str(info.get("version")) if info.get("version") else None
        if status != "RUNNING":
            raise UpstreamUnavailable(f"ksqlDB server status is {status}")

    async def _run_statements(self, client: KsqlDbClient) -> None:
        self.state = "starting"
        properties = dict(self.config.properties)
        if self._offset_reset is not None:
            properties["auto.offset.reset"] = self._offset_reset
        statements = list(self.config.statements)
        if self.config.mode == "sink":
            statements.append(self.config.query)
        for statement in statements:
            entities = await client.ksql(statement, properties)
            for entity in entities:
                status = entity.get("commandStatus") or {}
                if status.get("queryId"):
                    self.query_id = str(status["queryId"])
        if self.config.mode == "sink":
            await self._describe_sink(client)

    async def _describe_sink(self, client: KsqlDbClient) -> None:
        name = created_name(self.config.query)
        if name is None:
            return
        entities = await client.ksql(f"DESCRIBE `{name}`;", {})
        description = entities[0].get("sourceDescription", {}) if entities else {}
        self.columns = [{"name": f.get("name"), "type": (f.get("schema") or {}).get("type")}
                        for f in description.get("fields", [])]  # fmt: skip
        writers = description.get("writeQueries") or []
        if writers and not self.query_id:
            self.query_id = str(writers[0].get("id"))
        topic = description.get("topic")
        if topic and topic != self.config.sink_topic:
            raise UpstreamRejected(
                f"sink_topic is {self.config.sink_topic!r} but ksqlDB's {name} writes {topic!r}",
                extra={"ksqldb_error_code": None},
            )

    async def _start_delivery(self, client: KsqlDbClient) -> None:
        assert self._chain is not None
        delivery = ReactiveConsumer(self.config.reactive_for(self.name), self._resources)
        delivery.attach(self._chain, self.name)
        self.delivery = delivery
        if self.config.mode == "sink":
            if self._offset_reset is not None:
                await self._reset_group(self._offset_reset)
            await delivery.start()
            self.state = "running"
            return
        await delivery.start_delivery()
        checkpoints = None
        if self.config.resume == "source-offsets":
            checkpoints = CheckpointStore(
                self._resources.config.kafka, self._resources.internal_producer, self.config.checkpoint_topic, self.name
            )
        self.push = PushSubscription(
            self.name, self.config, client, delivery, checkpoints, self.events.publish, self._offset_reset
        )
        if self._offset_reset == "earliest" and checkpoints is not None:
            await checkpoints.save({})
        self.push.start()
        self.state = "running"

    async def _reset_group(self, where: str) -> None:
        """Sink mode restart with an offset reset: commit the group's offsets to the beginning or end."""
        delivery = self.config.reactive_for(self.name)
        topic = self.config.sink_topic
        assert topic is not None
        kafka = self._resources.config.kafka
        consumer = AIOKafkaConsumer(**consumer_kwargs(kafka, f"ksqldb-{self.name}-reset"), group_id=delivery.group)
        await consumer.start()
        try:
            partitions = sorted(await self._resources.producer.partitions_for(topic))
            tps = [TopicPartition(topic, p) for p in partitions]
            consumer.assign(tps)
            found: dict[TopicPartition, int] = await (
                consumer.beginning_offsets(tps) if where == "earliest" else consumer.end_offsets(tps)
            )
            await consumer.commit(dict(found))
        finally:
            await consumer.stop()

    # -- status ----------------------------------------------------------------------------------

    @property
    def current_state(self) -> str:
        if self.state != "running":
            return self.state
        if self.push is not None:
            return self.push.state
        runtime = self.delivery.runtime if self.delivery is not None else None
        return runtime.state if runtime is not None else self.state

    async def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "mode": self.config.mode,
            "state": self.current_state,
            "server": self.config.server,
            "server_version": self.server_version,
            "query": self.config.query,
            "query_id": self.query_id,
            "columns": self.columns,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "ksqldb_error_code": self.ksqldb_error_code,
            "backend_healthy": self.delivery.backend_healthy if self.delivery is not None else None,
        }
        if self.push is not None:
            body.update(self.push.status())
            body["paused"] = self.push.paused
            body["last_error"] = self.last_error or self.push.last_error
            body["ksqldb_error_code"] = self.ksqldb_error_code or self.push.error_code
        elif self.config.mode == "push":
            body.update(PushSubscription.idle_status(), paused=False)
        else:
            reactive = await self.delivery.status() if self.delivery is not None else {"partitions": []}
            parts = reactive["partitions"]
            assert isinstance(parts, list)
            body.update(
                sink_topic=self.config.sink_topic,
                group=self.config.reactive_for(self.name).group,
                rows_received=sum(int(p[k]) for p in parts for k in RECEIVED_PARTS),
                rows_delivered=sum(int(p["delivered"]) for p in parts),
                resubscribes=0,
                gap_possible=False,
                paused=bool(reactive.get("paused", False)),
                partitions=parts,
            )
            body["last_error"] = self.last_error or reactive.get("last_error")
        return body
