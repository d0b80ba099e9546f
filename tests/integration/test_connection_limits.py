"""Many concurrent connections against a real sidecar process: over the concurrency limit a client gets
429 or waits, never a dropped connection; stalled uploads hold no slot."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest

from kafka_sidecar_testing.process import SidecarProcess
from kafka_sidecar_testing.pytest_plugin import TopicFactory

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

CONNECTIONS = 2000
CONFIG = """\
server:
  port: ${SIDECAR_PORT}
  max_concurrent_requests: 8
  body_read_timeout_s: 20
kafka:
  bootstrap_servers: ${KAFKA_BOOTSTRAP_SERVERS}
paths:
  - {path: "/producers/{topic}", method: POST, exec: [producer]}
"""


def produce_request(topic: str, body: bytes, declared: int | None = None) -> bytes:
    length = len(body) if declared is None else declared
    return (
        f"POST /producers/{topic} HTTP/1.1\r\nHost: sidecar\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode() + body


async def one_request(port: int, request: bytes) -> str:
    """The status code the server answered with, or what went wrong with the connection."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        return f"connect: {type(exc).__name__}"
    try:
        writer.write(request)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 60)
    except (OSError, TimeoutError) as exc:
        return f"io: {type(exc).__name__}"
    finally:
        writer.close()
    if not status_line:
        return "closed without an answer"
    return status_line.split()[1].decode()


async def test_over_the_limit_clients_get_429_or_wait_never_a_dropped_connection(
    tmp_path: Path, kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create()
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    with SidecarProcess(CONFIG, tmp_path, env) as sidecar:
        body = json.dumps({"records": [{"value": {"n": i}} for i in range(20)]}).encode()
        # Stalled uploads first: they must not take slots from the requests below.
        stalled = [await asyncio.open_connection("127.0.0.1", sidecar.port) for _ in range(20)]
        for _, writer in stalled:
            writer.write(produce_request(topic, b'{"records"', declared=len(body)))
            await writer.drain()
        outcomes = Counter(
            await asyncio.gather(*(one_request(sidecar.port, produce_request(topic, body)) for _ in range(CONNECTIONS)))
        )
        for _, writer in stalled:
            writer.close()
    assert sum(outcomes.values()) == CONNECTIONS
    assert set(outcomes) <= {"200", "429"}, outcomes
    assert outcomes["200"] > 0, outcomes
