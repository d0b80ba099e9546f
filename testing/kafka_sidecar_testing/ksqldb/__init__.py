"""A protocol-faithful ksqlDB **test server** backed by the real test broker. It is not ksqlDB.

No ksqlDB server can be had where the tests run, so this speaks ksqlDB's REST and HTTP/2 query API
(routes, byte formats, Accept negotiation, error bodies; ``docs/ksqldb-consumer.md`` lists what it
covers) over a small SQL subset, with real Kafka topics underneath. Its fidelity is checked against
golden byte strings from ksqlDB's own tests and a real third-party client (``tests/integration/
test_ksqldb_test_server.py``).

In-process: ``async with KsqlDbTestServer(bootstrap) as server: server.url``. In its own process
(so a test can SIGKILL it): ``python -m kafka_sidecar_testing.ksqldb --bootstrap B --port P
--command-log FILE``; its switches are then set with ``POST /_test/switches``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from pathlib import Path
from types import TracebackType

from hypercorn.asyncio import serve
from hypercorn.config import Config

from kafka_sidecar_testing.ksqldb._app import InjectedError, KsqlApp, Switches
from kafka_sidecar_testing.ksqldb._engine import Engine
from kafka_sidecar_testing.net import free_port

__all__ = ["InjectedError", "KsqlDbTestServer", "Switches", "wait_listening"]


def wait_listening(port: int, timeout: float = 10.0) -> None:
    """Block until 127.0.0.1:port accepts connections (for a server in another process)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s") from None
            time.sleep(0.05)


class KsqlDbTestServer:
    """Serves the test ksqlDB on ``127.0.0.1:port`` (h2c with prior knowledge and HTTP/1.1; TLS when given)."""

    def __init__(
        self,
        bootstrap: str,
        *,
        port: int | None = None,
        command_log: Path | None = None,
        certfile: Path | None = None,
        keyfile: Path | None = None,
        client_ca: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.switches = Switches()
        self.engine = Engine(bootstrap, command_log)
        self.api = KsqlApp(self.engine, self.switches, cluster_id="test-cluster")
        self._tls = certfile is not None
        self._config = Config()
        self._config.bind = [f"127.0.0.1:{self.port}"]
        self._config.accesslog = None
        self._config.errorlog = None
        self._config.graceful_timeout = 0.2
        self._config.keep_alive_timeout = 30
        if certfile is not None:
            self._config.certfile = str(certfile)
            self._config.keyfile = str(keyfile)
            if client_ca is not None:
                self._config.ca_certs = str(client_ca)
                self._config.verify_mode = ssl.CERT_REQUIRED
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    async def start(self) -> None:
        await self.engine.start()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(
            serve(self.api.app(), self._config, shutdown_trigger=self._stop.wait),  # type: ignore[arg-type]
            name=f"ksqldb-test-server-{self.port}",
        )
        deadline = time.monotonic() + 10
        while not await _accepts(self.port):
            if self._task.done():
                self._task.result()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the ksqlDB test server did not listen on {self.port}")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        await self.engine.close()  # ends every push query, so the graceful shutdown is quick
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 10)
            self._task = None

    async def __aenter__(self) -> KsqlDbTestServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


async def _accepts(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
