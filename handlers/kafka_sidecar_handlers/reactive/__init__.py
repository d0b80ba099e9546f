"""The reactive consumer (``use: reactive-consumer``): the sidecar consumes, the backend gets batches.

A source handler: it reads its topics, runs each batch through its consumer chain, and the chain ends
in :meth:`ReactiveConsumer.__call__`, which POSTs the batch to the backend and records one
:class:`RecordOutcome` per record in ``exchange.stash[DELIVERED]``. Retries, dead letters and commits
happen around the chain (``reactive_delivery``, ``reactive_runtime``). Contract and guarantees:
``docs/reactive-consumer.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiokafka import TopicPartition
from starlette.routing import BaseRoute

from kafka_sidecar.plugin import (
    BACKEND_HEADERS,
    DELIVERED,
    Chain,
    Conflict,
    ConsumedRecord,
    Exchange,
    HandlerSpec,
    PluginError,
    Reply,
    ReportingSink,
    Resources,
    Serde,
    SerdeRegistry,
    SidecarConfig,
    SidecarView,
    UniformOutcomes,
    UnsupportedMediaType,
    dead_letter_topic,
    hookimpl,
)
from kafka_sidecar_handlers.reactive._admin import ReactiveAdmin
from kafka_sidecar_handlers.reactive._backend import (
    BackendClient,
    as_is_body,
    record_entry,
    record_entry_as_is,
    request_body,
)
from kafka_sidecar_handlers.reactive._check import check_reactive
from kafka_sidecar_handlers.reactive._config import ReactiveConsumerConfig
from kafka_sidecar_handlers.reactive._control import PartitionRef, SeekRequest
from kafka_sidecar_handlers.reactive._delivery import (
    AS_IS,
    DECODED,
    DeliveryContext,
    DeliveryStats,
    OnFinal,
    decode_pair,
    deliver_batch,
    record_id,
)
from kafka_sidecar_handlers.reactive._lag import LagReporter
from kafka_sidecar_handlers.reactive._partition import BatchLimits, PartitionWorker
from kafka_sidecar_handlers.reactive._replay import ReplayJob, parse_replay, run_replay
from kafka_sidecar_handlers.reactive._runtime import ConsumerRuntime

__all__ = ["ReactiveConsumer", "kafka_sidecar_register_handlers", "kafka_sidecar_routes"]

log = logging.getLogger(__name__)
KEEP_FINISHED_REPLAYS = 20


def _serde(serdes: SerdeRegistry, name: str, field: str) -> Serde:
    """The plan-time check (``check_reactive``) reports an unknown format at its YAML node; this only
    guards a consumer built outside a plan (embedding with hand-made resources)."""
    try:
        return serdes.get(name, field=field)
    except UnsupportedMediaType as exc:
        raise PluginError(f"reactive consumer: {field}: {exc.detail}") from exc


class ReactiveConsumer:
    """Source terminal of one reactive consumer pipeline."""

    def __init__(self, config: ReactiveConsumerConfig, resources: Resources) -> None:
        self.config = config
        self.name = config.group
        self._sidecar: SidecarConfig = resources.config
        self._dead_letters: ReportingSink = resources.dead_letter_sinks.get(config.dead_letter_sink)
        self._partitions_for = resources.producer.partitions_for
        self.events = resources.events
        self._metrics = resources.metrics
        self._key_serde = _serde(resources.serdes, config.key_format, "key_format")
        self._value_serde = _serde(resources.serdes, config.value_format, "value_format")
        self._chain: Chain | None = None
        self._backend: BackendClient | None = None
        self._healthy = asyncio.Event()
        self._health_task: asyncio.Task[None] | None = None
        self.runtime: ConsumerRuntime | None = None
        self._lag: LagReporter | None = None
        self.replays: dict[str, ReplayJob] = {}

    # -- SourceTerminal --------------------------------------------------------------------------

    def attach(self, chain: Chain, consumer_name: str) -> None:
        self._chain = chain
        self.name = consumer_name

    async def start(self) -> None:
        await self.start_delivery()
        self.runtime = ConsumerRuntime(self.name, self.config, self._sidecar.kafka, self._make_worker)
        self.runtime.on_fetch = self.events.publish
        if self._metrics.enabled:
            self._lag = LagReporter(self._metrics.registry, self.name, self.runtime, self.config.lag_interval_ms / 1000)
            self.runtime.on_forget = self._lag.forget
            self._lag.start()
        self.runtime.start()

    async def start_delivery(self) -> None:
        """The backend client and its health watch, without consuming: the seam for sources that feed
        records themselves (the ksqlDB consumer's push mode) through :meth:`new_worker`."""
        if self._chain is None:
            raise Conflict("reactive consumer started before it was attached to a chain")
        config = self.config
        headers = dict(config.backend_headers)
        if config.backend_token:
            headers["authorization"] = f"Bearer {config.backend_token}"
        self._backend = BackendClient(
            config.endpoint, config.request_timeout_ms / 1000, headers, config.backend_health_url
        )
        if config.backend_health_url is None:
            self._healthy.set()
        else:
            self._health_task = asyncio.create_task(self._watch_health(), name=f"reactive-{self.name}-health")

    async def stop(self) -> None:
        for job in self.replays.values():
            if job.task is not None and not job.task.done():
                job.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job.task
        if self._lag is not None:
            await self._lag.stop()
        if self.runtime is not None:
            await self.runtime.stop()  # forgets every partition's lag series on the way
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
        backend, self._backend = self._backend, None
        if backend is not None:
            await backend.close()

    async def __call__(self, exchange: Exchange) -> Reply:
        """Deliver the exchange's records to the backend (the last link of the consumer chain)."""
        if self._backend is None:
            raise Conflict(f"reactive consumer {self.name!r} is not started")
        added = exchange.added_headers
        records = exchange.records
        java = self.config.request_format == "java"
        body: bytes | None = None
        if exchange.stash.get(AS_IS) is records:  # JSON text as it is (a middleware kept the records)
            column = added.column(records)
            if column is not None or not added:
                body = as_is_body(self.name, records, column, java)
            if body is None:
                entries = [record_entry_as_is(record, added.of(record) if added else ()) for record in records]
                body = request_body(self.name, entries, java)
        else:
            body = request_body(self.name, await self._entries(exchange), java)
        extra = exchange.stash.get(BACKEND_HEADERS) or {}
        outcomes = await self._backend.deliver(body, exchange.records, extra)
        exchange.stash[DELIVERED] = outcomes
        counts: dict[str, int] = {}
        if isinstance(outcomes, UniformOutcomes):
            counts[outcomes.status] = len(outcomes)
        else:
            for outcome in outcomes:
                counts[outcome.status] = counts.get(outcome.status, 0) + 1
        return Reply(status=200, body={"consumer": self.name, "outcomes": counts})

    async def _entries(self, exchange: Exchange) -> list[bytes]:
        """The body entries from the records decoded before the chain ran (``DECODED``)."""
        decoded = exchange.stash.get(DECODED) or {}
        added = exchange.added_headers
        entries: list[bytes] = []
        for record in exchange.records:
            rid = record_id(record)
            pair = decoded.get(rid)
            if pair is None:  # a middleware changed the records: decode here (an error fails the attempt)
                pair = await decode_pair(self._key_serde, self._value_serde, record)
            entries.append(record_entry(record, *pair, added.of_key(rid) if added else ()))
        return entries

    # -- pieces ----------------------------------------------------------------------------------

    def delivery_context(self, *, last_attempt: bool = False) -> DeliveryContext:
        assert self._chain is not None
        return DeliveryContext(
            consumer=self.name,
            chain=self._chain,
            key_serde=self._key_serde,
            value_serde=self._value_serde,
            dead_letters=self._dead_letters,
            retry=self.config.retry,
            dead_letter_suffix=self.config.dead_letter_suffix,
            wait_healthy=self._healthy.wait,
            last_attempt=last_attempt,
        )

    def _make_worker(self, topic: str, partition: int) -> PartitionWorker:
        assert self.runtime is not None
        return self.new_worker(topic, partition, self.runtime.on_change)

    def new_worker(self, topic: str, partition: int, on_change: Callable[[PartitionWorker], None]) -> PartitionWorker:
        """A partition's bounded buffer and lanes delivering through this consumer's retry/DLQ path."""
        ctx = self.delivery_context()
        config = self.config
        limits = BatchLimits(config.batch_max_records, config.batch_max_bytes, config.batch_max_wait_ms / 1000)

        async def run(batch: Sequence[ConsumedRecord], on_final: OnFinal, stats: DeliveryStats) -> None:
            await deliver_batch(ctx, batch, on_final, stats)

        return PartitionWorker(topic, partition, config.lanes, limits, run, on_change)

    async def _watch_health(self) -> None:
        assert self._backend is not None
        interval = self.config.health_interval_ms / 1000
        while True:
            ok = await self._backend.healthy()
            if ok and not self._healthy.is_set():
                log.info("consumer %s: backend health check passes; delivering", self.name)
                self._healthy.set()
            elif not ok and self._healthy.is_set():
                log.warning("consumer %s: backend health check fails; delivery paused", self.name)
                self._healthy.clear()
            await asyncio.sleep(interval)

    # -- control ---------------------------------------------------------------------------------

    @property
    def backend_healthy(self) -> bool:
        return self._healthy.is_set()

    def pause(self, partitions: list[PartitionRef] | None, paused: bool) -> list[PartitionRef]:
        runtime = self._require_runtime()
        chosen = runtime.set_paused(partitions, paused)
        if self._lag is not None:
            self._lag.report_paused()
        return chosen

    async def seek(self, request: SeekRequest) -> dict[PartitionRef, int]:
        return await self._require_runtime().seek(request)

    def _require_runtime(self) -> ConsumerRuntime:
        if self.runtime is None or self.runtime.consumer is None:
            raise Conflict(f"consumer {self.name!r} is not connected yet")
        return self.runtime

    def dead_letter_topics(self) -> list[str]:
        return [dead_letter_topic(t, self.config.dead_letter_suffix) for t in self.config.topics]

    async def start_replay(self, body: Mapping[str, Any]) -> ReplayJob:
        """Start replaying a dead-letter topic in the background; the job reports progress."""
        if self._backend is None:
            raise Conflict(f"reactive consumer {self.name!r} is not started")
        topics = self.dead_letter_topics()
        wanted = body.get("topic")
        if self.config.topic_pattern and isinstance(wanted, str) and wanted.endswith(self.config.dead_letter_suffix):
            topics = [wanted]
        request = parse_replay(body, topics)
        running = [j for j in self.replays.values() if j.request.topic == request.topic and j.finished_at is None]
        if running:
            raise Conflict(f"a replay of {request.topic!r} is already running (job {running[0].id})")
        finished = [key for key, j in self.replays.items() if j.finished_at is not None]
        for key in finished[: max(0, len(finished) - KEEP_FINISHED_REPLAYS + 1)]:
            del self.replays[key]
        job = ReplayJob(request)
        ctx = self.delivery_context(last_attempt=request.last_attempt)
        job.task = asyncio.create_task(
            run_replay(job, self._sidecar.kafka, self.name, ctx, self.config.batch_max_records, self._partitions_for),
            name=f"reactive-{self.name}-replay-{job.id}",
        )
        self.replays[job.id] = job
        return job

    async def status(self) -> dict[str, object]:
        """State, assignment and per-partition committed offset, position, lag and counters."""
        runtime = self.runtime
        partitions: list[dict[str, object]] = []
        if runtime is not None and runtime.consumer is not None and runtime.workers:
            tps = list(runtime.workers)
            try:
                ends: dict[TopicPartition, int] = await runtime.consumer.end_offsets(tps)
            except Exception as exc:
                log.warning("consumer %s: end offsets unavailable: %s", self.name, exc)
                ends = {}
            for tp in sorted(tps):
                worker = runtime.workers.get(tp)
                if worker is None:
                    continue
                committed = worker.last_committed
                if committed is None:
                    with contextlib.suppress(Exception):
                        committed = await runtime.consumer.committed(tp)
                end = ends.get(tp)
                partitions.append(
                    {
                        "topic": tp.topic,
                        "partition": tp.partition,
                        "committed": committed,
                        "position": worker.fetched_to if worker.fetched_to is not None else committed,
                        "end_offset": end,
                        "lag": (end - committed) if end is not None and committed is not None else end,
                        "paused": worker.admin_paused,
                        "fetch_paused": runtime.fetch_paused(tp),
                        "buffered": worker.buffered,
                        "in_flight_batches": worker.in_flight_batches,
                        "in_flight_records": worker.tracker.in_flight,
                        "delivered": worker.stats.delivered,
                        "dropped": worker.stats.dropped,
                        "dead_lettered": worker.stats.dead_lettered,
                        "retries": worker.stats.retried,
                        "last_error": worker.stats.last_error,
                    }
                )
        return {
            "name": self.name,
            "group": self.config.group,
            "state": runtime.state if runtime is not None else "created",
            "engine": self._sidecar.kafka.consumer.engine
            if runtime is None or runtime.consumer is None
            else runtime.consumer.engine,
            "paused": bool(runtime and runtime.paused_all),
            "backend": self.config.endpoint,
            "backend_healthy": self.backend_healthy,
            "last_error": runtime.last_error if runtime is not None else None,
            "partitions": partitions,
        }


@hookimpl
def kafka_sidecar_register_handlers(register: Callable[[HandlerSpec[ReactiveConsumerConfig]], None]) -> None:
    register(
        HandlerSpec(
            name="reactive-consumer",
            factory=ReactiveConsumer,
            config_type=ReactiveConsumerConfig,
            kind="source",
            check=check_reactive,
            description="Consume topics and push batches to a backend over HTTP (at-least-once, DLQ, retries).",
        )
    )


@hookimpl
def kafka_sidecar_routes(sidecar: SidecarView) -> list[BaseRoute] | None:
    consumers = {c.name: c.source for c in sidecar.consumers if isinstance(c.source, ReactiveConsumer)}
    return ReactiveAdmin(consumers).routes()
