"""Reactive-consumer lag/paused series and schema-cache counters, reported into the real metrics registry.

No broker: the reactive consumer's runtime gets a fake aiokafka consumer (a seam we own); the schema
service talks to the in-test registry double of ``test_sr_service``. The end-to-end lag test against the
real broker is ``tests/integration/test_metrics_lag.py``.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from aiokafka import TopicPartition
from test_sr_service import AVRO, RECORD, Double, ctx, service

from kafka_sidecar._config.model import KafkaConfig
from kafka_sidecar._errors import UpstreamUnavailable
from kafka_sidecar._metrics.registry import MetricsRegistry
from kafka_sidecar._records import ConsumedRecord
from kafka_sidecar._sidecar import Sidecar
from kafka_sidecar.testing import running_sidecar
from kafka_sidecar_handlers.reactive._client import ConsumerClient
from kafka_sidecar_handlers.reactive._config import ReactiveConsumerConfig
from kafka_sidecar_handlers.reactive._delivery import DeliveryStats
from kafka_sidecar_handlers.reactive._lag import ConsumerGauges, LagReporter
from kafka_sidecar_handlers.reactive._partition import BatchLimits, PartitionWorker
from kafka_sidecar_handlers.reactive._runtime import ConsumerRuntime
from kafka_sidecar_plugins.metrics import PrometheusExporter
from kafka_sidecar_plugins.schema_registry import bind_serdes
from kafka_sidecar_plugins.schema_registry._cache import BoundedCache
from kafka_sidecar_plugins.schema_registry._client import SchemaRegistryClient
from kafka_sidecar_plugins.schema_registry._config import SchemaRegistryConfig
from kafka_sidecar_plugins.schema_registry._serde import RegistrySerde
from kafka_sidecar_plugins.schema_registry._service import CACHE_LOOKUPS, REGISTRY_ERRORS, ServiceBinding

TOPIC = "orders"


# --- the reactive consumer's lag reporter ------------------------------------------------------------


class FakeKafka:
    """The few aiokafka consumer calls the runtime and the lag reporter make."""

    def __init__(self, ends: dict[int, int], group_committed: dict[int, int] | None = None) -> None:
        self.ends = ends
        self.group_committed = group_committed or {}
        self.committed_calls: list[int] = []
        self.end_calls = 0
        self.hold_ends: asyncio.Event | None = None
        self.ends_asked = asyncio.Event()

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        self.end_calls += 1
        self.ends_asked.set()
        if self.hold_ends is not None:
            await self.hold_ends.wait()
        return {tp: self.ends[tp.partition] for tp in tps}

    async def committed(self, tp: TopicPartition) -> int | None:
        self.committed_calls.append(tp.partition)
        return self.group_committed.get(tp.partition)

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        return None

    def pause(self, tp: TopicPartition) -> None:
        return None

    def resume(self, tp: TopicPartition) -> None:
        return None


def _runtime(kafka: FakeKafka, partitions: int) -> ConsumerRuntime:
    config = ReactiveConsumerConfig(group="g", backend_url="http://127.0.0.1:9", topics=(TOPIC,))

    async def never(batch: Sequence[ConsumedRecord], on_final: Any, stats: DeliveryStats) -> None:
        raise AssertionError("no delivery in these tests")

    def no_new_workers(topic: str, partition: int) -> PartitionWorker:
        raise AssertionError("no assignment in these tests")

    runtime = ConsumerRuntime("orders", config, KafkaConfig(), no_new_workers)
    runtime.consumer = cast(ConsumerClient, kafka)  # the lag reporter's calls only
    for partition in range(partitions):
        worker = PartitionWorker(TOPIC, partition, 1, BatchLimits(10, 1000, 0.01), never, runtime.on_change)
        runtime.workers[TopicPartition(TOPIC, partition)] = worker
    return runtime


def _worker(runtime: ConsumerRuntime, partition: int) -> PartitionWorker:
    return runtime.workers[TopicPartition(TOPIC, partition)]


def render(registry: MetricsRegistry) -> str:
    return PrometheusExporter(registry).render().decode()


def _lag(registry: MetricsRegistry, partition: int) -> int | None:
    """The lag series of ``partition`` as /metrics shows it, or None when absent."""
    prefix = f'kafka_sidecar_consumer_lag{{consumer="orders",partition="{partition}",topic="{TOPIC}"}} '
    for line in render(registry).splitlines():
        if line.startswith(prefix):
            return int(float(line.removeprefix(prefix)))
    return None


@pytest.mark.asyncio
async def test_lag_is_end_minus_committed_with_the_group_offset_before_our_first_commit() -> None:
    kafka = FakeKafka(ends={0: 7, 1: 9, 2: 10, 3: 4}, group_committed={1: 5})
    runtime = _runtime(kafka, 4)
    _worker(runtime, 0).last_committed = 2  # committed by us
    # partition 1: nothing committed by us yet; the group's offset (5) from before the assignment counts
    _worker(runtime, 2).offer([ConsumedRecord(TOPIC, 2, n, 0, None, b"{}") for n in (3, 4)])  # new group
    # partition 3: nothing committed, nothing fetched: lag unknown, so no series
    registry = MetricsRegistry()
    reporter = LagReporter(registry, "orders", runtime, 60)
    await reporter.tick()
    assert [_lag(registry, p) for p in range(4)] == [5, 4, 7, None]
    text = render(registry)
    assert 'kafka_sidecar_consumer_partition_paused{consumer="orders",partition="3",topic="orders"} 0.0\n' in text
    assert 'kafka_sidecar_consumer_paused{consumer="orders"} 0.0\n' in text

    _worker(runtime, 0).last_committed = 7  # caught up
    kafka.ends[1] = 12
    await reporter.tick()
    assert (_lag(registry, 0), _lag(registry, 1)) == (0, 7)
    assert kafka.committed_calls.count(1) == 1  # the group offset is asked once, then remembered
    assert kafka.end_calls == 2  # one end-offsets request per tick for all partitions


@pytest.mark.asyncio
async def test_pause_and_resume_are_reported_per_partition_and_for_the_consumer() -> None:
    runtime = _runtime(FakeKafka(ends={0: 1, 1: 1}), 2)
    registry = MetricsRegistry()
    reporter = LagReporter(registry, "orders", runtime, 60)
    runtime.set_paused([runtime.assigned()[0]], True)
    reporter.report_paused()
    gauges = ConsumerGauges(registry)
    paused = gauges.partition_paused
    assert (paused.value("orders", TOPIC, "0"), paused.value("orders", TOPIC, "1")) == (1, 0)
    assert gauges.paused.value("orders") == 0
    runtime.set_paused(None, True)
    reporter.report_paused()
    assert (paused.value("orders", TOPIC, "1"), gauges.paused.value("orders")) == (1, 1)
    runtime.set_paused(None, False)
    reporter.report_paused()
    assert (paused.value("orders", TOPIC, "0"), gauges.paused.value("orders")) == (0, 0)


@pytest.mark.asyncio
async def test_revoked_partitions_lose_their_series_even_mid_tick() -> None:
    kafka = FakeKafka(ends={0: 5, 1: 5})
    runtime = _runtime(kafka, 2)
    for partition in (0, 1):
        _worker(runtime, partition).last_committed = 1
    registry = MetricsRegistry()
    reporter = LagReporter(registry, "orders", runtime, 60)
    runtime.on_forget = reporter.forget
    await reporter.tick()
    assert (_lag(registry, 0), _lag(registry, 1)) == (4, 4)

    await runtime.on_partitions_revoked([TopicPartition(TOPIC, 0)])  # the real rebalance path
    text = render(registry)
    assert 'partition="0"' not in text
    assert 'kafka_sidecar_consumer_lag{consumer="orders",partition="1",topic="orders"} 4.0\n' in text

    # A tick that asked for end offsets before a revoke must not bring the revoked series back.
    kafka.hold_ends = asyncio.Event()
    kafka.ends_asked.clear()
    tick = asyncio.create_task(reporter.tick())
    await asyncio.wait_for(kafka.ends_asked.wait(), 5)
    await runtime.on_partitions_revoked([TopicPartition(TOPIC, 1)])
    kafka.hold_ends.set()
    await asyncio.wait_for(tick, 5)
    text = render(registry)
    assert 'partition="1"' not in text
    assert "kafka_sidecar_consumer_lag{" not in text


def _sidecar_yaml(with_metrics: bool) -> str:
    config = {"topics": [TOPIC], "group": "g", "backend_url": "http://127.0.0.1:9", "lag_interval_ms": 20}
    chain = "[metrics, orders-in]" if with_metrics else "[orders-in]"
    return textwrap.dedent(
        f"""\
        kafka:
          bootstrap_servers: ${{KAFKA_BOOTSTRAP_SERVERS}}
        handlers:
          metrics:
            use: metrics
          orders-in:
            use: reactive-consumer
            config: {json.dumps(config)}
        consumers:
          orders:
            exec: {chain}
        """
    )


def _lag_tasks() -> list[str]:
    return [t.get_name() for t in asyncio.all_tasks() if t.get_name() == "reactive-orders-lag" and not t.done()]


@pytest.mark.asyncio
@pytest.mark.parametrize("with_metrics", [True, False])
async def test_reporter_runs_only_with_the_metrics_plugin(tmp_path: Path, with_metrics: bool) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}  # nothing listens: the consumer stays connecting
    async with running_sidecar(_sidecar_yaml(with_metrics), tmp_path, env=env, wait_for_kafka=0) as rs:
        if not with_metrics:
            assert _lag_tasks() == []
            assert not rs.sidecar.resources.metrics.enabled
            assert (await rs.client.get("/metrics")).status_code == 404
            return
        assert _lag_tasks() == ["reactive-orders-lag"]
        deadline = time.monotonic() + 10
        while 'kafka_sidecar_consumer_paused{consumer="orders"} 0' not in (await rs.client.get("/metrics")).text:
            assert time.monotonic() < deadline, "the lag task never reported"
            await asyncio.sleep(0.02)
    assert _lag_tasks() == []  # stopped with the consumer


# --- schema cache counters ----------------------------------------------------------------------------


def test_cache_tells_its_observer_hit_miss_and_stale() -> None:
    now = [0.0]
    cache: BoundedCache[str, int] = BoundedCache(2, ttl=10, clock=lambda: now[0])
    seen: list[str] = []
    cache.observe = seen.append
    assert cache.get("a") is None
    cache.put("a", 1)
    assert cache.get("a") == 1
    now[0] = 11
    assert cache.get("a") is None  # expired
    assert cache.get_stale("a") == 1
    assert cache.get_stale("b") is None
    assert seen == ["miss", "hit", "miss", "stale"]
    assert (cache.hits, cache.misses) == (1, 2)


def _lookups(registry: MetricsRegistry, cache: str, result: str) -> float:
    return registry.counter(CACHE_LOOKUPS, "", ("cache", "result")).value(cache, result)


@pytest.mark.asyncio
async def test_two_produces_with_the_same_schema_miss_once_then_hit() -> None:
    double = Double()
    svc = service(double)
    registry = MetricsRegistry()
    svc.use_metrics(registry)
    binding = ServiceBinding()
    binding.bind(svc)
    serde = RegistrySerde(AVRO, binding)

    first = await serde.serializer(ctx(schema=RECORD))  # what the producer does per request and role
    assert first.encode({"a": 1}, "value") is not None
    assert (_lookups(registry, "lookup", "miss"), _lookups(registry, "lookup", "hit")) == (1, 0)
    assert (_lookups(registry, "parsed_raw", "miss"), _lookups(registry, "parsed_raw", "hit")) == (1, 0)
    calls = len(double.calls)

    await serde.serializer(ctx(schema=RECORD))
    await serde.serializer(ctx(schema=RECORD))
    assert (_lookups(registry, "lookup", "miss"), _lookups(registry, "lookup", "hit")) == (1, 2)
    assert (_lookups(registry, "parsed_raw", "miss"), _lookups(registry, "parsed_raw", "hit")) == (1, 2)
    assert len(double.calls) == calls  # the hits really made no registry call
    text = render(registry)
    assert 'kafka_sidecar_schema_cache_lookups_total{cache="lookup",result="hit"} 2.0\n' in text
    # The first produce looked the schema up (404: not registered yet) and then registered it.
    assert 'kafka_sidecar_schema_registry_errors_total{kind="not_found",operation="lookup"} 1.0\n' in text
    await svc.aclose()


@pytest.mark.asyncio
async def test_registry_errors_are_counted_by_operation_and_kind() -> None:
    double = Double()
    svc = service(double)
    registry = MetricsRegistry()
    svc.use_metrics(registry)
    double.down = True
    with pytest.raises(UpstreamUnavailable):
        await svc.resolve(AVRO, ctx(schema_id=1))
    with pytest.raises(UpstreamUnavailable):
        await svc.resolve(AVRO, ctx(schema=RECORD))
    errors = registry.counter(REGISTRY_ERRORS, "", ("operation", "kind"))
    assert errors.value("schema_by_id", "unavailable") == 1
    assert errors.value("lookup", "unavailable") == 1
    assert _lookups(registry, "parsed", "miss") == 1
    await svc.aclose()


def _sr_yaml(with_metrics: bool) -> str:
    chain = "[metrics, producer]" if with_metrics else "[producer]"
    return textwrap.dedent(
        f"""\
        kafka:
          bootstrap_servers: 127.0.0.1:1
        schema_registry:
          urls: [http://registry.test]
        handlers:
          metrics:
            use: metrics
          producer:
            use: producer
        paths:
          - path: /producers/{{topic}}
            method: POST
            exec: {chain}
        """
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("with_metrics", [True, False])
async def test_the_plugin_hands_the_sidecars_registry_to_the_schema_service(tmp_path: Path, with_metrics: bool) -> None:
    path = tmp_path / "chains.yml"
    path.write_text(_sr_yaml(with_metrics), encoding="utf-8")
    sidecar = Sidecar.from_file(path)
    svc = bind_serdes(sidecar.view)  # what the startup hook does
    assert svc is not None
    double = Double()
    config = sidecar.resources.section(SchemaRegistryConfig)
    await svc.client.aclose()
    svc.client = SchemaRegistryClient(config, transport=httpx.MockTransport(double.handle))
    for _ in range(2):
        await svc.resolve(AVRO, ctx(schema=RECORD))
    metrics = sidecar.resources.metrics
    expected = (1.0, 1.0) if with_metrics else (0.0, 0.0)  # and the service works without metrics
    assert (_lookups(metrics.registry, "lookup", "miss"), _lookups(metrics.registry, "lookup", "hit")) == expected
    assert metrics.enabled == with_metrics
    await svc.aclose()
