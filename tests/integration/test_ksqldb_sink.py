"""Sink mode's durability: a SIGKILLed sidecar loses nothing and commits nothing ahead of the backend;
aborted transactions in the sink topic never reach a read_committed backend."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from ksqldb_support import ksqldb_server, name, until
from starlette.responses import Response
from test_ksqldb_consumer import delivered_n, keys, ksql_yaml, rows, stream_ddl
from test_reactive_isolation import _committed_aborted_committed
from test_reactive_support import Backend, committed, produce, serving

from kafka_sidecar.testing import running_sidecar
from kafka_sidecar_testing.net import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]


def sink_config(server: str, backend: Backend, source_topic: str, sink_topic: str, **extra: Any) -> str:
    source, sink = name("SRC"), name("SINK")
    query = (f"CREATE STREAM IF NOT EXISTS {sink} WITH (KAFKA_TOPIC='{sink_topic}') AS "
             f"SELECT ID, N FROM {source} EMIT CHANGES;")  # fmt: skip
    return ksql_yaml(server, backend, statements=[stream_ddl(source, source_topic)], query=query,
                     sink_topic=sink_topic, properties={"auto.offset.reset": "earliest"}, **extra)  # fmt: skip


async def _start(config: Path, port: int, bootstrap: str, log: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kafka_sidecar", "run", "-c", str(config), env=env, stdout=out, stderr=out
        )

    async def ready() -> bool:
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"http://127.0.0.1:{port}/health/ready")).status_code == 200
        except httpx.TransportError:
            return False

    await until(ready, 30, "the sidecar to be ready")
    return process


async def test_sigkill_mid_batch_then_restart_delivers_every_row_and_commits_nothing_ahead(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path
) -> None:
    source_topic = await topic_factory.create()
    sink_topic = f"sink-{uuid.uuid4().hex[:8]}"
    received: set[int] = set()

    async def slow(body: dict[str, Any]) -> Response:
        await asyncio.sleep(0.1)
        received.update(int(r["offset"]) for r in body["records"])
        return Response(status_code=200)

    backend = Backend(reply=slow)
    port = free_port()
    async with ksqldb_server(kafka_bootstrap) as server, serving(backend):
        text = sink_config(server.url, backend, source_topic, sink_topic, delivery={"batch_max_records": 5})
        group = text.split('"group": "')[1].split('"')[0]
        config = tmp_path / "chains.yml"
        config.write_text(f"server:\n  port: {port}\n" + text, encoding="utf-8")
        await produce(kafka_bootstrap, source_topic, rows(60), keys=keys(60))
        process = await _start(config, port, kafka_bootstrap, tmp_path / "sidecar.log")
        try:
            await until(lambda: len(received) >= 20, 30, "some batches at the backend")
            process.send_signal(signal.SIGKILL)  # mid-batch: the backend is always busy with one
            await process.wait()
            at_kill = await committed(kafka_bootstrap, group)
            assert 0 < at_kill[0] <= max(received) + 1
            assert set(range(at_kill[0])) <= received  # nothing committed ahead of the backend
            process = await _start(config, port, kafka_bootstrap, tmp_path / "sidecar.log")
            await until(lambda: received >= set(range(60)), 30, "every row after the restart")
        finally:
            if process.returncode is None:
                process.terminate()
                await process.wait()
    assert set(delivered_n(backend)) == set(range(60))  # every row at least once


async def test_aborted_transaction_in_the_sink_topic_never_reaches_the_backend(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path
) -> None:
    source_topic = await topic_factory.create()
    sink_topic = f"sink-{uuid.uuid4().hex[:8]}"
    backend = Backend()
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    async with ksqldb_server(kafka_bootstrap) as server, serving(backend):
        config = sink_config(server.url, backend, source_topic, sink_topic)
        async with running_sidecar(config, tmp_path, env=env) as rs:
            await produce(kafka_bootstrap, source_topic, rows(2), keys=keys(2))
            await until(lambda: delivered_n(backend) == [0, 1], 20, "the query's rows")
            # an exactly-once writer (ksqlDB with processing.guarantee=exactly_once_v2) aborts a transaction
            await _committed_aborted_committed(kafka_bootstrap, sink_topic)
            await until(lambda: len(backend.records()) >= 4, 20, "the committed row after the aborted one")

            async def drained() -> bool:
                (partition,) = (await rs.client.get("/admin/ksqldb/views")).json()["partitions"]
                assert partition["topic"] == sink_topic
                # the sink topic ends with a commit marker: the commit reaches past it
                return bool(partition["lag"] == 0 and partition["committed"] == partition["end_offset"])

            await until(drained, 20, "the committed offset to reach the log end (lag 0)")
    # {"n": 1} was written in the aborted transaction, between {"n": 0} and {"n": 2}
    assert [r["value"] for r in backend.records()] == [{"N": 0}, {"N": 1}, {"n": 0}, {"n": 2}]
