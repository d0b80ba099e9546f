"""The real listener (Hypercorn; uvicorn with server.engine): HTTPS, and the admin routes on their own port."""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

import httpx
import pytest

from kafka_sidecar._server import serve_sidecar
from kafka_sidecar._sidecar import Sidecar
from kafka_sidecar_testing.leak_scan import SecretWatch
from kafka_sidecar_testing.net import free_port
from kafka_sidecar_testing.pki import make_ca

ADMIN_TOKEN = "tls-admin-token-0123456789"


@pytest.fixture(autouse=True)
def _watch_secrets(secret_watch: SecretWatch) -> None:
    """Registers the admin token for the whole-run leak check (tests/zz_final)."""
    secret_watch.add(ADMIN_TOKEN)


async def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return


@pytest.mark.asyncio
@pytest.mark.parametrize("engine", ["hypercorn", "uvicorn"])
async def test_https_listener_and_separate_admin_port(tmp_path: Path, engine: str) -> None:
    ca = make_ca(tmp_path, "http-ca")
    cert = ca.issue(tmp_path, "sidecar", hosts=("127.0.0.1", "localhost"))
    port, admin_port = free_port(), free_port()
    path = tmp_path / "chains.yml"
    path.write_text(
        f"""\
server:
  port: {port}
  admin_port: {admin_port}
  admin_token: {ADMIN_TOKEN}
  tls_certfile: {cert.certfile}
  tls_keyfile: {cert.keyfile}
  shutdown_timeout_s: 1
  engine: {engine}
kafka:
  bootstrap_servers: 127.0.0.1:1
  connect_timeout_ms: 200
""",
        encoding="utf-8",
    )
    sidecar = Sidecar.from_file(path, env={})
    stop = asyncio.Event()
    server = asyncio.create_task(serve_sidecar(sidecar, shutdown=stop))
    try:
        await wait_listening(port)
        await wait_listening(admin_port)
        trusted = ssl.create_default_context(cafile=str(ca.certfile))
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with httpx.AsyncClient(verify=trusted) as client:
            live = await client.get(f"https://127.0.0.1:{port}/health/live")
            admin_on_main = await client.get(f"https://127.0.0.1:{port}/admin/chains", headers=auth)
            admin = await client.get(f"https://127.0.0.1:{admin_port}/admin/chains", headers=auth)
            no_token = await client.get(f"https://127.0.0.1:{admin_port}/admin/chains")
        async with httpx.AsyncClient() as plain:  # system CAs only: the test CA is not trusted
            with pytest.raises(httpx.ConnectError):
                await plain.get(f"https://127.0.0.1:{port}/health/live")
    finally:
        stop.set()
        await asyncio.wait_for(server, 15)
    assert live.status_code == 200
    assert live.url.scheme == "https"
    assert admin_on_main.status_code == 404
    assert admin.status_code == 200
    assert no_token.status_code == 401
