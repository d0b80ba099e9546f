"""Reactive-consumer lag and paused state on ``/metrics``, against the real broker and a real backend."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_reactive_support import Backend, committed, end_offsets, json_values, produce, serving, sidecar_yaml

from kafka_sidecar.testing import running_sidecar

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]
BASE = "/admin/consumers/reactive/orders"


def _with_metrics(config_yaml: str) -> str:
    """The support module's consumer config, with the metrics plugin in the consumer chain."""
    config_yaml = config_yaml.replace("handlers:\n", "handlers:\n  metrics:\n    use: metrics\n", 1)
    chain = "    exec: [orders-in]\n"
    assert chain in config_yaml
    return config_yaml.replace(chain, "    exec: [metrics, orders-in]\n", 1)


def _series(text: str, name: str, topic: str) -> dict[int, int]:
    """Partition -> value of the ``name`` series of consumer ``orders`` on ``topic`` (parsed by prometheus-client)."""
    return {
        int(sample.labels["partition"]): int(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and sample.labels.get("consumer") == "orders" and sample.labels.get("topic") == topic
    }


async def _until(condition: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_lag_and_paused_state_follow_the_broker(
    kafka_bootstrap: str, consumer_engine: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create(partitions=2)
    group = f"g-{uuid.uuid4().hex[:8]}"
    backend = Backend()
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "CONSUMER_ENGINE": consumer_engine}
    config_yaml = _with_metrics(sidecar_yaml(topic, group, backend, lag_interval_ms=100))
    async with serving(backend), running_sidecar(config_yaml, tmp_path, env=env) as rs:
        client: httpx.AsyncClient = rs.client
        last: dict[str, dict[int, int]] = {}

        async def metrics_show(lag: dict[int, int], paused: dict[int, int]) -> bool:
            text = (await client.get("/metrics")).text
            last["lag"] = _series(text, "kafka_sidecar_consumer_lag", topic)
            last["paused"] = _series(text, "kafka_sidecar_consumer_partition_paused", topic)
            return last["lag"] == lag and last["paused"] == paused

        async def broker_committed_is(want: dict[int, int]) -> bool:
            return await committed(kafka_bootstrap, group) == want

        await produce(kafka_bootstrap, topic, json_values(4))  # 2 records per partition
        await _until(lambda: broker_committed_is({0: 2, 1: 2}), 30, "the first records to be committed")
        await _until(lambda: metrics_show({0: 0, 1: 0}, {0: 0, 1: 0}), 10, f"lag 0 on /metrics ({last})")

        reply = await client.post(f"{BASE}/pause", json={"partitions": [{"topic": topic, "partition": 0}]})
        assert reply.status_code == 200, reply.text
        await produce(kafka_bootstrap, topic, json_values(10, start=4))  # 5 more per partition
        await _until(lambda: broker_committed_is({0: 2, 1: 7}), 30, "partition 1 to keep flowing")
        ends = await end_offsets(kafka_bootstrap, topic, 2)
        group_offsets = await committed(kafka_bootstrap, group)
        broker_lag = {p: ends[p] - group_offsets[p] for p in (0, 1)}
        assert broker_lag == {0: 5, 1: 0}
        await _until(lambda: metrics_show(broker_lag, {0: 1, 1: 0}), 10, f"the broker's lag on /metrics ({last})")
        assert 'kafka_sidecar_consumer_paused{consumer="orders"} 0' in (await client.get("/metrics")).text

        reply = await client.post(f"{BASE}/resume", json={"partitions": [{"topic": topic, "partition": 0}]})
        assert reply.status_code == 200, reply.text
        await _until(lambda: metrics_show({0: 0, 1: 0}, {0: 0, 1: 0}), 30, f"lag 0 after resume ({last})")
        assert await committed(kafka_bootstrap, group) == {0: 7, 1: 7}  # /metrics said 0: the broker agrees
