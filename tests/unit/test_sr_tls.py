"""The registry client over TLS with a private CA and a client certificate (mutual TLS).

Certificates come from the ``openssl`` command line; the server is hypercorn requiring a client
certificate, answering the one registry call the test makes.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kafka_sidecar._errors import UpstreamUnavailable
from kafka_sidecar_plugins.schema_registry._client import SchemaRegistryClient
from kafka_sidecar_plugins.schema_registry._config import SchemaRegistryConfig
from kafka_sidecar_testing.net import free_port as _free_port

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(directory: Path) -> None:
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        cwd=directory,
    )
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n", encoding="utf-8")
    for name in ("server", "client"):
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name}",
            cwd=directory,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            cwd=directory,
        )


@asynccontextmanager
async def tls_registry(pki: Path) -> AsyncIterator[str]:
    async def schema(request: Request) -> JSONResponse:
        return JSONResponse({"schema": '"string"'})

    config = Config()
    port = _free_port()
    config.bind = [f"127.0.0.1:{port}"]
    config.certfile = str(pki / "server.pem")
    config.keyfile = str(pki / "server.key")
    config.ca_certs = str(pki / "ca.pem")
    config.verify_mode = ssl.CERT_REQUIRED
    config.accesslog = None
    config.errorlog = None
    stop = asyncio.Event()
    app = Starlette(routes=[Route("/schemas/ids/{id}", schema)])
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        except OSError:
            assert asyncio.get_running_loop().time() < deadline, "TLS test server did not listen"
            await asyncio.sleep(0.05)
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.mark.asyncio
async def test_mutual_tls_with_private_ca(tmp_path: Path) -> None:
    make_pki(tmp_path)
    async with tls_registry(tmp_path) as url:
        good = SchemaRegistryConfig(
            urls=(url,),
            ca_file=str(tmp_path / "ca.pem"),
            client_cert=str(tmp_path / "client.pem"),
            client_key=str(tmp_path / "client.key"),
        )
        client = SchemaRegistryClient(good)
        assert (await client.schema_by_id(1)).schema == '"string"'
        await client.aclose()
        untrusted = SchemaRegistryClient(
            SchemaRegistryConfig(
                urls=(url,), client_cert=str(tmp_path / "client.pem"), client_key=str(tmp_path / "client.key")
            )
        )
        with pytest.raises(UpstreamUnavailable):
            await untrusted.schema_by_id(1)
        await untrusted.aclose()
        no_client_cert = SchemaRegistryClient(SchemaRegistryConfig(urls=(url,), ca_file=str(tmp_path / "ca.pem")))
        with pytest.raises(UpstreamUnavailable):
            await no_client_cert.schema_by_id(1)
        await no_client_cert.aclose()
