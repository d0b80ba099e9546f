"""SIGTERM while produce requests are in flight: the sidecar drains, flushes and exits 0, losing nothing acked."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from kafka_sidecar_testing.net import free_port
from kafka_sidecar_testing.pytest_plugin import TopicFactory

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

CONFIG = """\
server:
  port: ${SIDECAR_PORT}
  shutdown_timeout_s: 10
  engine: ${SERVER_ENGINE:hypercorn}
kafka:
  bootstrap_servers: ${KAFKA_BOOTSTRAP_SERVERS}
  producer: {linger_ms: 20, engine: "${PRODUCER_ENGINE:aiokafka}"}
paths:
  - {path: "/producers/{topic}", method: POST, exec: [producer]}
"""


async def wait_ready(base: str, process: asyncio.subprocess.Process, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            assert process.returncode is None, "the sidecar exited during start-up"
            try:
                if (await client.get(f"{base}/health/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)  # polling a condition with a deadline
    raise AssertionError("sidecar did not become ready")


@pytest.mark.parametrize(
    ("server", "producer_engine"), [("hypercorn", "aiokafka"), ("uvicorn", "aiokafka"), ("hypercorn", "librdkafka")]
)
async def test_sigterm_drains_in_flight_requests_and_loses_no_acknowledged_record(
    tmp_path: Path, kafka_bootstrap: str, topic_factory: TopicFactory, server: str, producer_engine: str
) -> None:
    topic = await topic_factory.create(partitions=2)
    config = tmp_path / "chains.yml"
    config.write_text(CONFIG, encoding="utf-8")
    port = free_port()
    env = {
        **os.environ,
        "SIDECAR_PORT": str(port),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SERVER_ENGINE": server,
        "PRODUCER_ENGINE": producer_engine,
    }
    log = (tmp_path / "sidecar.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kafka_sidecar", "run", "-c", str(config), env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    acknowledged: dict[str, tuple[int, int]] = {}
    try:
        await wait_ready(base, process)

        async def client_loop(client_id: int, stop: asyncio.Event) -> None:
            async with httpx.AsyncClient(timeout=30) as client:
                n = 0
                while not stop.is_set():
                    values = [f"c{client_id}-{n}-{i}" for i in range(20)]
                    n += 1
                    try:
                        response = await client.post(
                            f"{base}/producers/{topic}", json={"records": [{"value": v} for v in values]}
                        )
                    except httpx.TransportError:
                        return  # the server is gone: nothing was promised for this request
                    if response.status_code != 200:
                        return
                    for value, entry in zip(values, response.json()["offsets"], strict=True):
                        acknowledged[value] = (entry["partition"], entry["offset"])
                    if len(acknowledged) >= 400:
                        enough.set()

        stop, enough = asyncio.Event(), asyncio.Event()
        clients = [asyncio.create_task(client_loop(i, stop)) for i in range(6)]
        await asyncio.wait_for(enough.wait(), 20)  # traffic is flowing: now signal mid-stream
        process.send_signal(signal.SIGTERM)
        exit_code = await asyncio.wait_for(process.wait(), 30)
        stop.set()
        await asyncio.gather(*clients)
        assert exit_code == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log.close()

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    stored: dict[str, tuple[int, int]] = {}
    try:
        async with asyncio.timeout(30):
            while not set(acknowledged) <= set(stored):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        stored[record.value.decode().strip('"')] = (record.partition, record.offset)
    finally:
        await consumer.stop()
    for value, position in acknowledged.items():
        assert stored[value] == position
