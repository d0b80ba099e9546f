"""The out-of-tree dead-letter sink in examples/dlq-sink-plugin, pip-installed and used by a real sidecar.

A record the backend rejects lands in the plugin's SQLite file instead of a Kafka topic, and its source
offset is committed only after the sink stored it: while the file cannot be written (its folder does
not exist yet) the group's offset stays before the rejected record, and once the folder exists the
retried write succeeds and the offset moves on.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from example_packages import install_example, running_cli
from prometheus_client.parser import text_string_to_metric_families
from starlette.responses import Response
from test_reactive_support import (
    Backend,
    committed,
    json_values,
    new_group,
    produce,
    serving,
    sidecar_yaml,
    statuses,
    wait_committed,
    wait_until,
)

from kafka_sidecar_testing.pytest_plugin import TopicFactory

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]
REJECTED = {1, 4}  # the backend answers DEADLETTER for these values of n


@pytest.fixture(scope="module")
def sink_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    work = tmp_path_factory.mktemp("dlq-sink-plugin")
    site = install_example("dlq-sink-plugin", work)
    assert list(site.glob("kafka_sidecar_example_sqlite_dlq-0.1.0.dist-info/entry_points.txt"))
    yield site
    shutil.rmtree(work, ignore_errors=True)


def _config(topic: str, group: str, backend: Backend) -> str:
    consumer = sidecar_yaml(topic, group, backend, dead_letter_sink="sqlite")
    extra = "server:\n  port: ${SIDECAR_PORT}\nmetrics:\n  enabled: true\nsqlite_dead_letters:\n  path: ${DLQ_DB}\n"
    return consumer.replace("handlers:\n", extra + "handlers:\n", 1)


def _dead_letters(text: str, topic: str, written: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "kafka_sidecar_dead_letters_total"
        and sample.labels == {"source_topic": topic, "written": written}
    )


def _rows(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT source_topic, source_partition, source_offset, value, error, consumer FROM dead_letters"
        ).fetchall()
    connection.close()
    return rows


async def test_rejected_records_land_in_the_sqlite_sink_and_commit_only_once_stored(
    sink_site: Path, kafka_bootstrap: str, topic_factory: TopicFactory, tmp_path: Path
) -> None:
    topic = await topic_factory.create(partitions=1, prefix="dlqsink")
    group = new_group()

    async def reply(body: dict[str, Any]) -> Response:
        return statuses(body, lambda record: "DEADLETTER" if record["value"]["n"] in REJECTED else "SUCCESS")

    backend = Backend(reply=reply)
    folder = tmp_path / "not-yet"  # the sink cannot open its file until this folder exists
    db = folder / "dead-letters.db"
    config = tmp_path / "chains.yml"
    config.write_text(_config(topic, group, backend), encoding="utf-8")
    await produce(kafka_bootstrap, topic, json_values(6), partition=0)

    async with serving(backend):
        with running_cli(config, sink_site, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, DLQ_DB=str(db)) as base_url:
            async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
                failed_writes = 0.0

                async def refresh() -> None:
                    nonlocal failed_writes
                    failed_writes = _dead_letters((await client.get("/metrics")).text, topic, "false")

                async def sink_failed_twice() -> bool:
                    await refresh()
                    return failed_writes >= 2

                await wait_until(sink_failed_twice, 30, "the sink to refuse (its folder is missing)")
                # The record at offset 1 is rejected and not stored: nothing from it on is committed.
                assert (await committed(kafka_bootstrap, group)).get(0, 0) <= 1
                assert not db.exists()

                folder.mkdir()
                await wait_committed(kafka_bootstrap, group, {0: 6}, timeout=30)
                stored = _dead_letters((await client.get("/metrics")).text, topic, "true")

    rows = _rows(db)
    assert sorted((r[0], r[1], r[2]) for r in rows) == [(topic, 0, 1), (topic, 0, 4)]
    assert sorted(json.loads(r[3])["n"] for r in rows) == sorted(REJECTED)
    assert all(r[5] == "orders" for r in rows)
    assert stored == len(REJECTED)
    assert sum(1 for call in backend.records() if call["value"]["n"] in REJECTED) == len(REJECTED)
