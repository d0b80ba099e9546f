"""v3 streaming produce over a real connection: each result arrives while the request body is still open."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kafka_sidecar_testing.process import sidecar_process
from kafka_sidecar_testing.pytest_plugin import TopicFactory

pytestmark = [pytest.mark.kafka]

SHIPPED = Path(__file__).resolve().parents[2] / "chains.yml"


@pytest.fixture
def sidecar_url(tmp_path: Path, kafka_bootstrap: str) -> Iterator[str]:
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    with sidecar_process(SHIPPED.read_text(encoding="utf-8"), tmp_path, env=env) as sidecar:
        yield sidecar.base_url


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def read_line(reader: asyncio.StreamReader, pending: bytearray) -> bytes:
    """The next line of a chunked response body (chunk framing removed), within 20 s."""
    async with asyncio.timeout(20):
        while b"\n" not in pending:
            size_line = await reader.readline()
            size = int(size_line.strip() or b"0", 16)
            assert size > 0, "the response ended early"
            pending.extend(await reader.readexactly(size))
            await reader.readexactly(2)
    line, _, rest = bytes(pending).partition(b"\n")
    pending[:] = rest
    return line


@pytest.mark.asyncio
async def test_each_result_arrives_while_the_request_is_still_open(
    sidecar_url: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create()
    async with httpx.AsyncClient() as client:
        cluster_id = (await client.get(f"{sidecar_url}/v3/clusters")).json()["data"][0]["cluster_id"]
    port = int(sidecar_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"POST /v3/clusters/{cluster_id}/topics/{topic}/records HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        writer.write(chunk(json.dumps({"value": {"type": "JSON", "data": 0}}).encode() + b"\n"))
        await writer.drain()
        async with asyncio.timeout(20):
            status = await reader.readline()
            while (await reader.readline()).strip():
                pass  # response headers
        assert status.startswith(b"HTTP/1.1 200"), status
        pending = bytearray()
        first = json.loads(await read_line(reader, pending))
        assert (first["error_code"], first["offset"]) == (200, 0), "answered before the body ended"
        writer.write(chunk(b'{"value": {"type": "JSON", "data": 1}}\n{"value": {"type": "XML"}}\n'))
        await writer.drain()
        second = json.loads(await read_line(reader, pending))
        third = json.loads(await read_line(reader, pending))
        assert (second["error_code"], second["offset"]) == (200, 1)
        assert third["error_code"] == 422
        assert "value.type" in third["message"] or "XML" in third["message"]
        writer.write(chunk(b'{"value": {"type": "STRING", "data": "two"}}') + b"0\r\n\r\n")
        await writer.drain()
        fourth = json.loads(await read_line(reader, pending))
        assert (fourth["error_code"], fourth["offset"]) == (200, 2)
        async with asyncio.timeout(20):
            assert await reader.readline() == b"0\r\n", "the response ends once the request has"
    finally:
        writer.close()
