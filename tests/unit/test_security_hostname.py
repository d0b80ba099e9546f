"""Host-name verification is on by default: a trusted certificate for another name is refused, and named."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from kafka_sidecar._config.model import KafkaConfig, SecuritySettings
from kafka_sidecar._kafka.diagnose import diagnose_connection
from kafka_sidecar_testing.pki import make_ca


@asynccontextmanager
async def tls_listener(context: ssl.SSLContext) -> AsyncIterator[int]:
    """A real TLS server on 127.0.0.1 that completes handshakes and then closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.asyncio
async def test_certificate_for_another_host_is_refused_by_default(tmp_path: Path) -> None:
    ca = make_ca(tmp_path, "ca")
    other = ca.issue(tmp_path, "kafka.other.example", hosts=("kafka.other.example",))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(other.certfile, other.keyfile)
    async with tls_listener(server_context) as port:
        kafka = KafkaConfig(
            bootstrap_servers=f"127.0.0.1:{port}",
            security=SecuritySettings(protocol="SSL", ssl_cafile=str(ca.certfile)),
        )
        reason = await diagnose_connection(kafka, 3.0)
    assert reason is not None
    assert "does not match the host name" in reason
    assert "ssl_check_hostname" in reason
