"""The active consumer across a broker SIGKILL and restart on the same data directory: the instance
survives, what was committed before stays committed, and polling resumes where it left off."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kafka_sidecar.testing import running_sidecar
from kafka_sidecar_testing.broker import KafkaBroker, create_topic, ensure_kafka_runtime
from kafka_sidecar_testing.topics import produce_raw

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

CONFIG = """\
kafka:
  bootstrap_servers: ${KAFKA_BOOTSTRAP_SERVERS}
  consumer:
    engine: ${CONSUMER_ENGINE:aiokafka}
  connect_timeout_ms: 2000
handlers:
  active:
    use: active-consumer
    config: {instance_timeout_ms: 300000, request_timeout_ms: 500, session_timeout_ms: 30000}
paths:
  - {path: "/consumers/{group}", method: POST, exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}/subscription", methods: [POST], exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}/records", method: GET, exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}/offsets", methods: [POST], exec: [active]}
"""
V2 = {"content-type": "application/vnd.kafka.v2+json"}


@pytest.fixture
def broker(kafka_bootstrap: str) -> Iterator[KafkaBroker]:
    own = KafkaBroker(ensure_kafka_runtime())
    own.start()
    try:
        yield own
    finally:
        own.stop()


async def poll(client: httpx.AsyncClient, base: str, want: int, deadline_s: float) -> list[dict[str, Any]]:
    """A real client's loop: poll (bounded) until ``want`` records arrived; errors are retried."""
    got: list[dict[str, Any]] = []
    end = time.monotonic() + deadline_s
    while len(got) < want and time.monotonic() < end:
        response = await client.get(f"{base}/records?timeout=500", headers={"accept": "application/json"})
        if response.status_code == 200:
            got.extend(response.json())
        else:
            assert response.status_code in (503, 504), response.text  # Kafka away: retry
            await asyncio.sleep(0.2)  # a client's back-off before it polls again
    return got


async def test_polling_resumes_after_a_broker_kill_and_commits_hold(
    tmp_path: Path, broker: KafkaBroker, consumer_engine: str
) -> None:
    bootstrap = broker.bootstrap_servers
    await create_topic(bootstrap, "events", 1)
    await produce_raw(bootstrap, "events", [{"value": f'{{"n": {n}}}'.encode()} for n in range(10)])
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "CONSUMER_ENGINE": consumer_engine}
    async with running_sidecar(CONFIG, tmp_path, env=env) as running:
        client = running.client
        created = await client.post(
            "/consumers/g1", json={"name": "c1", "format": "json", "auto.offset.reset": "earliest"}, headers=V2
        )
        assert created.status_code == 200, created.text
        base = "/consumers/g1/instances/c1"
        subscribed = await client.post(f"{base}/subscription", json={"topics": ["events"]}, headers=V2)
        assert subscribed.status_code == 204, subscribed.text
        first = await poll(client, base, 10, 30)
        assert [r["value"]["n"] for r in first] == list(range(10))
        committed = await client.post(f"{base}/offsets", headers=V2)
        assert committed.status_code in (200, 204), committed.text

        broker.kill()
        during = await client.get(f"{base}/records?timeout=500", headers={"accept": "application/json"})
        assert during.status_code in (200, 503, 504), during.text  # never a 500 while Kafka is away
        broker.restart()
        await produce_raw(bootstrap, "events", [{"value": f'{{"n": {n}}}'.encode()} for n in range(10, 20)])

        after = await poll(client, base, 10, 60)
        assert [r["value"]["n"] for r in after] == list(range(10, 20)), "resumed after the committed offset"
