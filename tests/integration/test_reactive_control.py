"""Control API of the reactive consumer: pause/resume, lag, seek by timestamp, dead-letter replay."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import Response
from test_reactive_support import (
    Backend,
    end_offsets,
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

from kafka_sidecar._events import AdminAction
from kafka_sidecar.testing import running_sidecar

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]
BASE = "/admin/consumers/reactive/orders"


async def _stays(condition: Callable[[], bool], seconds: float) -> None:
    """Assert ``condition`` holds throughout a bounded observation window."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert condition()
        await asyncio.sleep(0.05)


async def test_pause_resume_partitions_and_lag(
    kafka_bootstrap: str, consumer_engine: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create(partitions=2)
    group = new_group()
    backend = Backend()
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "CONSUMER_ENGINE": consumer_engine}
    async with serving(backend), running_sidecar(sidecar_yaml(topic, group, backend), tmp_path, env=env) as rs:
        actions: list[AdminAction] = []
        rs.sidecar.resources.events.subscribe(AdminAction, actions.append)
        await produce(kafka_bootstrap, topic, json_values(4))
        await wait_committed(kafka_bootstrap, group, {0: 2, 1: 2}, exact=True)

        reply = await rs.client.post(f"{BASE}/pause", json={"partitions": [{"topic": topic, "partition": 0}]})
        assert reply.status_code == 200, reply.text
        assert reply.json()["partitions"] == [{"topic": topic, "partition": 0}]
        await produce(kafka_bootstrap, topic, json_values(10, start=4))  # 5 to each partition
        await wait_committed(kafka_bootstrap, group, {0: 2, 1: 7}, exact=True)  # partition 1 keeps flowing
        await _stays(lambda: max(backend.offsets()[0]) == 1, 1.0)  # partition 0 does not
        status = (await rs.client.get(BASE)).json()
        p0 = next(p for p in status["partitions"] if p["partition"] == 0)
        assert p0["paused"] is True
        assert p0["fetch_paused"] is True
        assert (p0["committed"], p0["end_offset"], p0["lag"]) == (2, 7, 5)  # what the broker says, too
        assert await end_offsets(kafka_bootstrap, topic, 2) == {0: 7, 1: 7}

        reply = await rs.client.post(f"{BASE}/resume", json={"partitions": [{"topic": topic, "partition": 0}]})
        assert reply.status_code == 200
        await wait_committed(kafka_bootstrap, group, {0: 7, 1: 7}, exact=True)
        assert backend.offsets()[0] == list(range(7))

        # whole-consumer pause
        assert (await rs.client.post(f"{BASE}/pause")).status_code == 200
        calls = len(backend.calls)
        await produce(kafka_bootstrap, topic, json_values(2, start=20))
        await _stays(lambda: len(backend.calls) == calls, 1.0)
        listing = (await rs.client.get("/admin/consumers/reactive")).json()
        assert listing["consumers"][0]["paused"] is True
        assert sum(p["lag"] for p in listing["consumers"][0]["partitions"]) == 2
        assert (await rs.client.post(f"{BASE}/resume")).status_code == 200
        await wait_committed(kafka_bootstrap, group, {0: 8, 1: 8}, exact=True)

        bad = await rs.client.post(f"{BASE}/pause", json={"partitions": [{"topic": topic, "partition": 9}]})
        assert bad.status_code == 422
        assert bad.json()["field"] == "partitions[0]"
        missing = await rs.client.post("/admin/consumers/reactive/nope/pause")
        assert missing.status_code == 404
    assert [a.action for a in actions] == [
        "reactive-consumer.pause", "reactive-consumer.resume", "reactive-consumer.pause", "reactive-consumer.resume",
    ]  # fmt: skip


async def test_seek_by_timestamp_beginning_offset_and_end(
    kafka_bootstrap: str, consumer_engine: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create(partitions=1)
    group = new_group()
    now = int(time.time() * 1000)
    await produce(kafka_bootstrap, topic, json_values(5), partition=0, timestamp_ms=now - 60_000)
    await produce(kafka_bootstrap, topic, json_values(5, start=5), partition=0, timestamp_ms=now - 30_000)
    backend = Backend()
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "CONSUMER_ENGINE": consumer_engine}
    async with serving(backend), running_sidecar(sidecar_yaml(topic, group, backend), tmp_path, env=env) as rs:
        await wait_committed(kafka_bootstrap, group, {0: 10}, exact=True)
        reply = await rs.client.post(f"{BASE}/seek", json={"timestamp": now - 45_000})
        assert reply.status_code == 200, reply.text
        assert reply.json()["partitions"] == [{"topic": topic, "partition": 0, "offset": 5}]
        await wait_for(lambda: len(backend.offsets()[0]) == 15, 20, "offsets 5..9 again")
        assert backend.offsets()[0] == [*range(10), *range(5, 10)]
        await wait_committed(kafka_bootstrap, group, {0: 10}, exact=True)

        reply = await rs.client.post(f"{BASE}/seek", json={"position": "beginning"})
        assert reply.json()["partitions"][0]["offset"] == 0
        await wait_for(lambda: len(backend.offsets()[0]) == 25, 20, "everything again")
        assert backend.offsets()[0][15:] == list(range(10))
        await wait_committed(kafka_bootstrap, group, {0: 10}, exact=True)

        reply = await rs.client.post(f"{BASE}/seek", json={"offset": 8})
        assert reply.json()["partitions"][0]["offset"] == 8
        await wait_for(lambda: len(backend.offsets()[0]) == 27, 20, "offsets 8 and 9 again")
        assert backend.offsets()[0][25:] == [8, 9]
        await wait_committed(kafka_bootstrap, group, {0: 10}, exact=True)

        reply = await rs.client.post(f"{BASE}/seek", json={"position": "end"})
        assert reply.json()["partitions"][0]["offset"] == 10
        await produce(kafka_bootstrap, topic, json_values(1, start=10), partition=0)
        await wait_committed(kafka_bootstrap, group, {0: 11}, exact=True)
        assert backend.offsets()[0][27:] == [10]  # nothing before the end again, the new record once

        bad = await rs.client.post(f"{BASE}/seek", json={"offset": -1})
        assert bad.status_code == 422
        assert bad.json()["field"] == "offset"
        both = await rs.client.post(f"{BASE}/seek", json={"offset": 1, "position": "end"})
        assert both.status_code == 422


async def test_dead_letter_replay(kafka_bootstrap: str, topic_factory: Any, tmp_path: Path) -> None:
    topic = await topic_factory.create(partitions=1)
    group = new_group()
    await produce(kafka_bootstrap, topic, json_values(6), partition=0)
    mode = {"value": "dlq-even"}

    def decide(record: dict[str, Any]) -> str:
        if mode["value"] == "dlq-even":
            return "DEADLETTER" if record["value"]["n"] % 2 == 0 else "SUCCESS"
        return "SUCCESS" if mode["value"] == "accept" else "RETRY"

    async def reply(body: dict[str, Any]) -> Response:
        return statuses(body, decide)

    backend = Backend(reply=reply)
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    async with serving(backend), running_sidecar(sidecar_yaml(topic, group, backend), tmp_path, env=env) as rs:
        await wait_committed(kafka_bootstrap, group, {0: 6}, exact=True)
        dlq_topic = f"{topic}.dlq"
        assert len(await read_all(kafka_bootstrap, dlq_topic, 3)) == 3

        async def replay(body: dict[str, Any]) -> dict[str, Any]:
            started = await rs.client.post(f"{BASE}/replay", json=body)
            assert started.status_code == 202, started.text
            job_id = started.json()["id"]
            deadline = time.monotonic() + 20
            while True:
                job: dict[str, Any] = (await rs.client.get(f"{BASE}/replay/{job_id}")).json()
                if job["state"] not in ("starting", "running"):
                    return job
                assert time.monotonic() < deadline, job
                await asyncio.sleep(0.05)

        mode["value"] = "accept"
        calls = len(backend.calls)
        job = await replay({})
        assert job["state"] == "done", job
        assert (job["total"], job["read"], job["outcomes"]) == (3, 3, {"SUCCESS": 3})
        replayed = [r for call in backend.calls[calls:] for r in call["records"]]
        assert [r["value"]["n"] for r in replayed] == [0, 2, 4]
        assert {r["topic"] for r in replayed} == {dlq_topic}

        mode["value"] = "retry"
        job = await replay({"from_offset": 1, "to_offset": 1, "last_attempt": True})
        assert (job["total"], job["outcomes"]) == (1, {"DROP": 1}), job
        assert await end_offsets(kafka_bootstrap, dlq_topic, 1) == {0: 3}  # nothing written back

        job = await replay({"from_offset": 2})
        assert job["outcomes"] == {"DEADLETTER": 1}, job
        assert await end_offsets(kafka_bootstrap, dlq_topic, 1) == {0: 4}  # failed again: back in the DLQ
        rewritten = (await read_all(kafka_bootstrap, dlq_topic, 4))[-1]
        assert json.loads(rewritten.value) == {"n": 4}

        bad = await rs.client.post(f"{BASE}/replay", json={"topic": "elsewhere"})
        assert bad.status_code == 422
        assert bad.json()["field"] == "topic"
