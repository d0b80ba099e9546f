"""Two sidecars in one group, a rebalance in the middle, and a SIGKILLed sidecar restarted."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import Response
from test_reactive_support import (
    Backend,
    committed,
    end_offsets,
    json_values,
    produce,
    serving,
    sidecar_yaml,
    wait_committed,
    wait_for,
)

from kafka_sidecar.testing import running_sidecar

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]


def _check_order(backend: Backend, path: str) -> None:
    """Within every call a partition's records are contiguous and increasing; first deliveries are in order."""
    for call, call_path in zip(backend.calls, backend.paths, strict=True):
        if call_path != path:
            continue
        by_partition: dict[int, list[int]] = {}
        for record in call["records"]:
            by_partition.setdefault(record["partition"], []).append(record["offset"])
        for offsets in by_partition.values():
            assert offsets == list(range(offsets[0], offsets[0] + len(offsets))), offsets
    for partition, offsets in backend.offsets(path).items():
        first_seen = list(dict.fromkeys(offsets))
        assert first_seen == sorted(first_seen), f"{path} partition {partition} delivered out of order"


async def test_two_sidecars_one_group_rebalance(
    kafka_bootstrap: str, consumer_engine: str, topic_factory: Any, tmp_path: Path
) -> None:
    await _rebalance_two_sidecars(kafka_bootstrap, topic_factory, tmp_path, consumer_engine, consumer_engine)


async def test_a_group_mixing_both_engines_shares_partitions_and_loses_nothing(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path
) -> None:
    """A rolling update from an aiokafka sidecar to a librdkafka one: both in one group at once (their
    assignors meet on roundrobin), the partitions shared, every record delivered and committed."""
    pytest.importorskip("confluent_kafka")
    await _rebalance_two_sidecars(kafka_bootstrap, topic_factory, tmp_path, "aiokafka", "librdkafka")


async def _rebalance_two_sidecars(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path, engine_a: str, engine_b: str
) -> None:
    topic = await topic_factory.create(partitions=4)
    group = f"g-{uuid.uuid4().hex[:8]}"
    await produce(kafka_bootstrap, topic, json_values(400))

    async def slow_ack(body: dict[str, Any]) -> Response:
        await asyncio.sleep(0.1)  # a backend that takes a moment per batch, so the rebalance lands mid-stream
        return Response(status_code=200)

    backend = Backend(reply=slow_ack)
    env_a = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "CONSUMER_ENGINE": engine_a}
    env_b = {**env_a, "CONSUMER_ENGINE": engine_b}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    config_a = sidecar_yaml(topic, group, backend, backend_path="/a", batch_max_records=5)
    config_b = sidecar_yaml(topic, group, backend, backend_path="/b", batch_max_records=5)
    async with serving(backend), running_sidecar(config_a, tmp_path / "a", env=env_a) as rs_a:
        await wait_for(lambda: len(backend.records("/a")) >= 40, 30, "sidecar A to deliver")
        async with running_sidecar(config_b, tmp_path / "b", env=env_b) as rs_b:
            await wait_for(lambda: len(backend.records("/b")) > 0, 30, "sidecar B to take partitions")
            delivered_by_a = len(backend.records("/a"))
            assert delivered_by_a < 400, "the rebalance came too late to land mid-stream"
            await produce(kafka_bootstrap, topic, json_values(200, start=400))
            ends = await end_offsets(kafka_bootstrap, topic, 4)
            await wait_committed(kafka_bootstrap, group, ends)
            status_a = (await rs_a.client.get("/admin/consumers/reactive/orders")).json()
            status_b = (await rs_b.client.get("/admin/consumers/reactive/orders")).json()
    delivered = {(r["partition"], r["offset"]) for r in backend.records()}
    assert delivered == {(p, o) for p, end in ends.items() for o in range(end)}
    assert 0 < len(status_b["partitions"]) < 4
    assert (status_a["engine"], status_b["engine"]) == (engine_a, engine_b)
    _check_order(backend, "/a")
    _check_order(backend, "/b")
    values = [r["value"]["n"] for r in backend.records()]
    assert set(values) == set(range(600))


def _write_config(path: Path, text: str) -> Path:
    file = path / "chains.yml"
    file.write_text(text.replace("kafka:\n", "server:\n  port: 0\nkafka:\n", 1), encoding="utf-8")
    return file


@contextmanager
def _sidecar_process(config: Path, bootstrap: str, log: Path, engine: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "CONSUMER_ENGINE": engine}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "kafka_sidecar", "run", "-c", str(config), "--log-level", "INFO"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


async def test_sigkill_mid_batch_then_restart_redelivers(
    kafka_bootstrap: str, consumer_engine: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create(partitions=2)
    group = f"g-{uuid.uuid4().hex[:8]}"
    await produce(kafka_bootstrap, topic, json_values(100))
    hold = asyncio.Event()
    state = {"calls": 0, "held": 0, "killed": False}
    held_records: list[tuple[int, int]] = []

    async def reply(body: dict[str, Any]) -> Response:
        state["calls"] += 1
        if state["calls"] == 3 and not state["killed"]:
            held_records.extend((r["partition"], r["offset"]) for r in body["records"])
            state["held"] = 1
            await hold.wait()  # never answered before the kill: this batch is unacknowledged
        return Response(status_code=200)

    backend = Backend(reply=reply)
    config = _write_config(tmp_path, sidecar_yaml(topic, group, backend, batch_max_records=10))
    log = tmp_path / "sidecar.log"
    async with serving(backend):
        with _sidecar_process(config, kafka_bootstrap, log, consumer_engine) as first:
            await wait_for(lambda: state["held"] == 1, 60, "the third batch to be in flight")
            first.send_signal(signal.SIGKILL)
            assert await asyncio.to_thread(first.wait, 10) == -signal.SIGKILL
        state["killed"] = True
        hold.set()
        at_kill = await committed(kafka_bootstrap, group)
        calls_at_kill = len(backend.calls)
        with _sidecar_process(config, kafka_bootstrap, log, consumer_engine) as second:
            ends = await end_offsets(kafka_bootstrap, topic, 2)
            await wait_committed(kafka_bootstrap, group, ends, timeout=60)
            second.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(second.wait, 30) == 0, log.read_text()[-3000:]
    after = {(r["partition"], r["offset"]) for call in backend.calls[calls_at_kill:] for r in call["records"]}
    unacknowledged = {(p, o) for p, end in ends.items() for o in range(at_kill.get(p, 0), end)}
    assert held_records
    assert set(held_records) <= unacknowledged
    assert unacknowledged <= after
    everything = {(r["partition"], r["offset"]) for r in backend.records()}
    assert everything == {(p, o) for p, end in ends.items() for o in range(end)}
