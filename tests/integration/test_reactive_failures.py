"""Backend down, slow, answering garbage, unhealthy, or holding one record: no crash, no loss, no early commit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import Response
from test_reactive_support import (
    Backend,
    committed,
    json_values,
    new_group,
    produce,
    read_all,
    serving,
    sidecar_yaml,
    statuses,
    wait_committed,
    wait_for,
)

from kafka_sidecar.testing import running_sidecar

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]


def _distinct(backend: Backend) -> set[tuple[int, int]]:
    return {(r["partition"], r["offset"]) for r in backend.records()}


async def test_backend_down_then_up_loses_nothing(
    kafka_bootstrap: str, consumer_engine: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create(partitions=2)
    group = new_group()
    await produce(kafka_bootstrap, topic, json_values(30))
    backend = Backend()
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "CONSUMER_ENGINE": consumer_engine}
    config = sidecar_yaml(topic, group, backend, retry={"max_attempts": 1, "initial_backoff_ms": 20})
    async with running_sidecar(config, tmp_path, env=env) as rs:
        # nobody listens on the backend port: the consumer keeps trying without spending attempts

        async def stuck() -> bool:
            status = (await rs.client.get("/admin/consumers/reactive/orders")).json()
            return bool(status["partitions"]) and all(p["in_flight_batches"] == 1 for p in status["partitions"])

        deadline = asyncio.get_running_loop().time() + 20
        while not await stuck():
            assert asyncio.get_running_loop().time() < deadline, "never tried to deliver"
            await asyncio.sleep(0.05)
        assert await committed(kafka_bootstrap, group) == {}
        async with serving(backend):
            await wait_committed(kafka_bootstrap, group, {0: 15, 1: 15}, exact=True)
            status = (await rs.client.get("/admin/consumers/reactive/orders")).json()
    assert len(_distinct(backend)) == 30
    assert all(p["dead_lettered"] == 0 for p in status["partitions"])
    assert status["state"] == "running"


async def test_slow_and_garbage_replies_are_retried(kafka_bootstrap: str, topic_factory: Any, tmp_path: Path) -> None:
    topic = await topic_factory.create(partitions=1)
    group = new_group()
    await produce(kafka_bootstrap, topic, json_values(10))
    answers = iter(["slow", "garbage", "bad-status", "http500", "unknown-entry", "missing"])

    async def reply(body: dict[str, Any]) -> Response:
        kind = next(answers, "ok")
        if kind == "slow":
            await asyncio.sleep(1.0)  # longer than request_timeout_ms below: the backend is slow, not a sync
        if kind == "garbage":
            return Response("<html>oops</html>", media_type="text/html")
        if kind == "bad-status":
            return statuses(body, lambda r: "MAYBE")
        if kind == "http500":
            return Response("boom", status_code=500)
        if kind == "unknown-entry":
            return Response('{"statuses": [{"partition": 9, "offset": 999, "status": "SUCCESS"}]}')
        if kind == "missing":
            return Response('{"statuses": []}')  # nothing said about any record: RETRY for all
        return Response(status_code=204)

    backend = Backend(reply=reply)
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    config = sidecar_yaml(
        topic, group, backend, request_timeout_ms=300, batch_max_records=100, batch_max_wait_ms=200,
        retry={"max_attempts": 10, "initial_backoff_ms": 10, "max_backoff_ms": 20},
    )  # fmt: skip
    async with serving(backend), running_sidecar(config, tmp_path, env=env) as rs:
        await wait_committed(kafka_bootstrap, group, {0: 10}, exact=True)
        status = (await rs.client.get("/admin/consumers/reactive/orders")).json()
    assert len(backend.calls) >= 7
    assert _distinct(backend) == {(0, n) for n in range(10)}
    partition = status["partitions"][0]
    assert partition["dead_lettered"] == 0
    assert partition["delivered"] == 10
    assert partition["retries"] >= 6 * 10 - 10  # the first batch may have been shorter than 10


async def test_commit_never_passes_an_unfinished_record(
    kafka_bootstrap: str, consumer_engine: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create(partitions=1)
    group = new_group()
    await produce(kafka_bootstrap, topic, json_values(10))
    release = asyncio.Event()
    attempts_of_5 = 0

    async def reply(body: dict[str, Any]) -> Response:
        nonlocal attempts_of_5

        def decide(record: dict[str, Any]) -> str:
            nonlocal attempts_of_5
            if record["offset"] == 5 and not release.is_set():
                attempts_of_5 += 1
                return "RETRY"
            return "SUCCESS"

        return statuses(body, decide)

    backend = Backend(reply=reply)
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "CONSUMER_ENGINE": consumer_engine}
    config = sidecar_yaml(
        topic, group, backend, batch_max_records=4,
        retry={"max_attempts": 1000, "initial_backoff_ms": 20, "max_backoff_ms": 20, "jitter": 0},
    )  # fmt: skip
    async with serving(backend), running_sidecar(config, tmp_path, env=env):
        await wait_committed(kafka_bootstrap, group, {0: 5}, exact=True)
        await wait_for(lambda: attempts_of_5 >= 10, 20, "offset 5 retried ten times")
        assert await committed(kafka_bootstrap, group) == {0: 5}  # 0..4 are done, 5 is not: never past it
        assert {r["offset"] for r in backend.records()} <= set(range(8))  # the next batch waits its turn
        release.set()
        await wait_committed(kafka_bootstrap, group, {0: 10}, exact=True)
    assert sorted({r["offset"] for r in backend.records()}) == list(range(10))
    assert await read_all(kafka_bootstrap, f"{topic}.dlq", 1, timeout=1) == []


async def test_unhealthy_backend_pauses_delivery(kafka_bootstrap: str, topic_factory: Any, tmp_path: Path) -> None:
    topic = await topic_factory.create(partitions=1)
    group = new_group()
    await produce(kafka_bootstrap, topic, json_values(5))
    backend = Backend(healthy=False)
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    config = sidecar_yaml(topic, group, backend, backend_health_url=f"{backend.url}/health", health_interval_ms=50)
    async with serving(backend), running_sidecar(config, tmp_path, env=env) as rs:
        await wait_for(lambda: backend.health_checks >= 10, 20, "ten failing health checks")
        status = (await rs.client.get("/admin/consumers/reactive/orders")).json()
        assert status["backend_healthy"] is False
        assert backend.calls == []
        backend.healthy = True
        await wait_committed(kafka_bootstrap, group, {0: 5}, exact=True)
    assert [r["offset"] for r in backend.records()] == [0, 1, 2, 3, 4]


async def test_backpressure_pauses_fetching_instead_of_buffering(
    kafka_bootstrap: str, consumer_engine: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create(partitions=1)
    group = new_group()
    await produce(kafka_bootstrap, topic, json_values(200), partition=0)
    release = asyncio.Event()

    async def reply(body: dict[str, Any]) -> Response:
        await release.wait()
        return Response(status_code=200)

    backend = Backend(reply=reply)
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "CONSUMER_ENGINE": consumer_engine}
    config = sidecar_yaml(
        topic, group, backend, batch_max_records=5, max_buffered_records=10, fetch_max_records=5,
        request_timeout_ms=20000,
    )  # fmt: skip
    async with serving(backend), running_sidecar(config, tmp_path, env=env) as rs:
        status: dict[str, Any] = {}

        async def paused() -> bool:
            nonlocal status
            status = (await rs.client.get("/admin/consumers/reactive/orders")).json()
            return bool(status["partitions"]) and status["partitions"][0]["fetch_paused"]

        deadline = asyncio.get_running_loop().time() + 20
        # the fetch may pause before the first batch's request reaches the backend: wait for both
        while not (await paused() and backend.calls):
            assert asyncio.get_running_loop().time() < deadline, (status, len(backend.calls))
            await asyncio.sleep(0.05)
        partition = status["partitions"][0]
        assert partition["paused"] is False  # not an operator's pause: backpressure
        assert partition["buffered"] <= 10 + 5  # the limit plus at most one poll (fetch_max_records)
        assert partition["position"] <= 5 + 10 + 5
        assert len(backend.calls) == 1
        release.set()
        await wait_committed(kafka_bootstrap, group, {0: 200}, exact=True)
    assert [r["offset"] for r in backend.records()] == list(range(200))
