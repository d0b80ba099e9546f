"""A quixstreams app (count per key + tumbling window) as a supervised child; results reach a real backend.

One processor run covers, in order: results through a read_committed reactive consumer; SIGKILL mid-stream
and the supervisor's restart; exactly one count per input (checked against the input); an aborted
transaction never delivered; state dir deleted while stopped and restored from the changelog.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from streams_support import (
    EXAMPLE_APP,
    abort_one,
    metric,
    produce_keyed,
    streams_python,
    unique_results,
    wait_status,
    wait_until,
)
from test_reactive_support import Backend, serving, wait_for

from kafka_sidecar.testing import running_sidecar

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio, pytest.mark.timeout(240)]

KEYS = [f"c{n}" for n in range(5)]
WINDOW_MS = 10_000


def config_yaml(bootstrap: str, app_id: str, state_dir: Path, topics: dict[str, str], backend: Backend) -> str:
    return f"""
kafka: {{bootstrap_servers: "{bootstrap}"}}
handlers:
  order-streams:
    use: stream-processor
    config:
      application_id: {app_id}
      app: "{EXAMPLE_APP}:build"
      python: "{streams_python()}"
      state_dir: "{state_dir}"
      commit_interval_ms: 200
      input_topics: [{topics["orders"]}]
      output_topics: [{topics["counts"]}, {topics["totals"]}]
      env: {{ORDERS_TOPIC: {topics["orders"]}, COUNTS_TOPIC: {topics["counts"]}, TOTALS_TOPIC: {topics["totals"]}}}
      restart: {{initial_backoff_ms: 200}}
      properties: {{session.timeout.ms: "6000", heartbeat.interval.ms: "500"}}
      stop_timeout_ms: 15000
      lag_interval_ms: 200
  results:
    use: reactive-consumer
    config:
      topics: [{topics["counts"]}, {topics["totals"]}]
      group: results-{app_id}
      isolation_level: read_committed
      key_format: string
      backend_url: {backend.url}
      backend_path: /results
      batch_max_wait_ms: 5
  metrics: {{use: metrics}}
consumers:
  order-streams: {{exec: [metrics, order-streams]}}
  results: {{exec: [results]}}
"""


def orders(first: int, last: int, ts: int) -> list[tuple[str, dict[str, Any], int | None]]:
    return [(KEYS[i % len(KEYS)], {"id": i, "amount": i}, ts) for i in range(first, last)]


async def test_counts_and_windows_reach_the_backend_exactly_once_across_sigkill_and_state_loss(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path
) -> None:
    topics = {
        "orders": await topic_factory.create(partitions=2, prefix="orders"),
        "counts": await topic_factory.create(partitions=2, prefix="counts"),
        "totals": await topic_factory.create(partitions=2, prefix="totals"),
    }
    app_id = f"proc-{uuid.uuid4().hex[:8]}"
    state_dir = tmp_path / "state"
    backend = Backend()
    base = (int(time.time() * 1000) // WINDOW_MS - 6) * WINDOW_MS  # window [base, base + 10 s), a minute ago
    yaml = config_yaml(kafka_bootstrap, app_id, state_dir, topics, backend)

    def counts() -> dict[tuple[str, int, int], dict[str, Any]]:
        return {k: r for k, r in unique_results(backend.records()).items() if r["topic"] == topics["counts"]}

    async with serving(backend), running_sidecar(yaml, tmp_path) as running:
        client = running.client
        first = await wait_status(client, "order-streams", lambda s: s["state"] == "running", 60, "running")
        ready = await client.get("/health/ready")
        assert ready.status_code == 200, ready.text

        await produce_keyed(kafka_bootstrap, topics["orders"], orders(0, 150, base))
        await wait_for(lambda: len(counts()) >= 20, 60, "the first counts at the backend")
        os.kill(first["pid"], signal.SIGKILL)  # mid-stream: the supervisor must restart it
        await abort_one(kafka_bootstrap, topics["counts"], "c0", {"id": -1, "count": -1})
        second = await wait_status(
            client, "order-streams", lambda s: s["state"] == "running" and s["restarts"] == 1, 60, "the restart"
        )
        assert second["pid"] != first["pid"]
        assert second["last_exit"]["signal"] == "SIGKILL"

        await produce_keyed(kafka_bootstrap, topics["orders"], orders(150, 300, base + 1000))
        closing = [(key, {"id": 300 + n, "amount": 0}, base + 2 * WINDOW_MS + 5000) for n, key in enumerate(KEYS)]
        await produce_keyed(kafka_bootstrap, topics["orders"], closing)
        await wait_for(lambda: len(counts()) >= 305, 90, "a count for every input")
        lagging = await wait_status(
            client, "order-streams", lambda s: s["lag"] and all(p["lag"] == 0 for p in s["lag"]), 30, "lag 0"
        )
        assert {p["topic"] for p in lagging["lag"]} == {topics["orders"]}
        metrics = (await client.get("/metrics")).text
        assert metric(metrics, "kafka_sidecar_processor_up", processor="order-streams") == 1
        assert metric(metrics, "kafka_sidecar_processor_state", processor="order-streams", state="running") == 1
        assert metric(metrics, "kafka_sidecar_processor_restarts_total", processor="order-streams") == 1

        async def lag_on_metrics() -> bool:
            text = (await client.get("/metrics")).text
            lags = [
                metric(
                    text,
                    "kafka_sidecar_processor_lag",
                    processor="order-streams",
                    topic=topics["orders"],
                    partition=str(p),
                )
                for p in (0, 1)
            ]
            return lags == [0, 0]

        await wait_until(lag_on_metrics, 10, "lag 0 per partition on /metrics")

        # State lost while stopped: restored from the changelog, so the counts continue.
        stopped = await client.post("/admin/processors/order-streams/stop")
        assert stopped.json()["state"] == "stopped"
        assert (await client.get("/health/ready")).status_code == 200  # stopped by the operator
        assert state_dir.is_dir()
        shutil.rmtree(state_dir)
        await client.post("/admin/processors/order-streams/start")
        await wait_status(client, "order-streams", lambda s: s["state"] == "running", 60, "running after state loss")
        await produce_keyed(kafka_bootstrap, topics["orders"], orders(305, 310, base + 2 * WINDOW_MS + 6000))
        await wait_for(lambda: len(counts()) >= 310, 60, "counts after the state loss")

    by_id = defaultdict(list)
    for record in counts().values():
        by_id[record["value"]["id"]].append(record)
    assert sorted(by_id) == list(range(310)), "exactly the inputs, no aborted record (-1)"
    assert all(len(found) == 1 for found in by_id.values()), "one count per input"
    per_key: dict[str, list[int]] = defaultdict(list)
    for found in by_id.values():
        per_key[found[0]["key"]].append(found[0]["value"]["count"])
    for key in KEYS:
        expected = sum(1 for i in range(310) if KEYS[i % len(KEYS)] == key)
        assert sorted(per_key[key]) == list(range(1, expected + 1)), f"counts of {key} continue across restarts"

    totals = [r for r in unique_results(backend.records()).values() if r["topic"] == topics["totals"]]
    closed = {r["key"]: r["value"] for r in totals if r["value"]["start"] == base}
    assert set(closed) == set(KEYS)
    for key in KEYS:
        assert closed[key]["total"] == sum(i for i in range(300) if KEYS[i % len(KEYS)] == key)
    assert len([r for r in totals if r["value"]["start"] == base]) == len(KEYS), "one result per closed window"
