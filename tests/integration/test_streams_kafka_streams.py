"""A Kafka Streams topology jar (built from Maven Central, same Kafka as the broker) under ``runtime: command``."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest
from streams_support import (
    ensure_topology_classpath,
    order_counts_yaml,
    produce_keyed,
    read_topic,
    status,
    wait_status,
    wait_until,
)

from kafka_sidecar.testing import running_sidecar
from kafka_sidecar_testing.kafka_runtime import DEFAULT_KAFKA_VERSION, find_java
from kafka_sidecar_testing.pytest_plugin import VERSION_ENV

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio, pytest.mark.timeout(300)]
KEYS = ["c0", "c1", "c2", "c3"]


@pytest.fixture(scope="module")
def topology_classpath() -> str:
    if find_java() is None:
        pytest.skip("java is needed for the Kafka Streams topology")
    return ensure_topology_classpath(os.environ.get(VERSION_ENV, "").strip() or DEFAULT_KAFKA_VERSION)


def last_counts(records: list[tuple[str, dict[str, Any]]]) -> dict[str, int]:
    return {key: value["count"] for key, value in records}


def lag_zero(state: dict[str, Any]) -> bool:
    return bool(state["lag"]) and all(p["lag"] == 0 for p in state["lag"])


async def test_topology_runs_stops_on_sigterm_restarts_after_sigkill_reports_lag_and_resets(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path, topology_classpath: str
) -> None:
    orders = await topic_factory.create(partitions=2, prefix="ks-orders")
    counts = await topic_factory.create(partitions=2, prefix="ks-counts")
    app_id = f"ks-{uuid.uuid4().hex[:8]}"
    properties = 'properties: {session.timeout.ms: "6000", heartbeat.interval.ms: "500"}'
    yaml = f'kafka: {{bootstrap_servers: "{kafka_bootstrap}"}}\n' + order_counts_yaml(
        topology_classpath, app_id, tmp_path / "state", orders, counts, properties
    )
    batch = [(KEYS[i % len(KEYS)], {"id": i}, None) for i in range(20)]
    async with running_sidecar(yaml, tmp_path) as running:
        client = running.client
        first = await wait_status(client, "counts", lambda s: s["state"] == "running", 90, "RUNNING")
        await produce_keyed(kafka_bootstrap, orders, batch)
        behind = await wait_status(client, "counts", lag_zero, 60, "lag 0")
        assert sorted((p["topic"], p["partition"], p["committed"]) for p in behind["lag"]) == [
            (orders, 0, p0 := behind["lag"][0]["committed"]),
            (orders, 1, 20 - p0),
        ]
        records: list[tuple[str, dict[str, Any]]] = []

        async def counted(want: int, total: int | None = None) -> bool:
            records[:] = await read_topic(kafka_bootstrap, counts, 2)
            return last_counts(records) == dict.fromkeys(KEYS, want) and total in (None, len(records))

        await wait_until(lambda: counted(5), 60, "counts of 5")

        os.kill(first["pid"], signal.SIGKILL)
        second = await wait_status(
            client, "counts", lambda s: s["state"] == "running" and s["restarts"] == 1, 90, "the restart"
        )
        assert second["last_exit"]["signal"] == "SIGKILL"
        await produce_keyed(kafka_bootstrap, orders, batch)
        await wait_until(lambda: counted(10), 90, "counts of 10 after the restart")
        per_key = {key: [v["count"] for k, v in records if k == key] for key in KEYS}
        assert all(found == list(range(1, 11)) for found in per_key.values()), per_key  # exactly-once

        refused = await client.post("/admin/processors/counts/reset", json={})
        assert refused.status_code == 409, "no reset while the processor runs"
        stopped = await client.post("/admin/processors/counts/stop")
        assert stopped.json()["state"] == "stopped"
        after = await status(client, "counts")
        assert after["last_exit"]["signal"] != "SIGKILL", "stopped by SIGTERM within the timeout"
        assert any("PENDING_SHUTDOWN" in line["text"] for line in after["last_lines"])

        reset = await client.post("/admin/processors/counts/reset", json={"delete_internal_topics": True})
        assert reset.status_code == 200, reset.text
        assert {p["offset"] for p in reset.json()["partitions"]} == {0}
        assert any(t.endswith("-changelog") for t in reset.json()["deleted_topics"])
        await client.post("/admin/processors/counts/start")
        await wait_until(lambda: counted(10, 80), 90, "everything counted again from the beginning")
        per_key = {key: [v["count"] for k, v in records if k == key] for key in KEYS}
        assert all(found == [*range(1, 11), *range(1, 11)] for found in per_key.values()), per_key
