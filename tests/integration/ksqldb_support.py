"""Helpers for the ksqlDB tests: the in-process test server, a separate-process one (to SIGKILL), statements.

No tests here; ``test_ksqldb_*`` modules import from it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kafka_sidecar_testing.ksqldb import KsqlDbTestServer, wait_listening
from kafka_sidecar_testing.net import free_port


def name(prefix: str = "S") -> str:
    """A ksqlDB identifier no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}".upper()


@asynccontextmanager
async def ksqldb_server(bootstrap: str, **kwargs: Any) -> AsyncIterator[KsqlDbTestServer]:
    server = KsqlDbTestServer(bootstrap, **kwargs)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def ksql(url: str, statements: str, properties: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(f"{url}/ksql", json={"ksql": statements, "streamsProperties": properties or {}})


async def create_stream(url: str, stream: str, topic: str, columns: str, partitions: int = 1) -> None:
    response = await ksql(
        url,
        f"CREATE STREAM {stream} ({columns}) WITH (KAFKA_TOPIC='{topic}', VALUE_FORMAT='JSON', "
        f"PARTITIONS={partitions});",
    )
    assert response.status_code == 200, response.text


@dataclass
class ServerProcess:
    """The test server in its own process: ``kill()`` is a SIGKILL, ``start()`` brings it back on the same port."""

    bootstrap: str
    command_log: Path
    port: int = 0
    framing: str = "row"
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.port = self.port or free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [sys.executable, "-m", "kafka_sidecar_testing.ksqldb", "--bootstrap", self.bootstrap]
        command += ["--port", str(self.port), "--command-log", str(self.command_log), "--framing", self.framing]
        self.process = subprocess.Popen(command, env=dict(os.environ))
        wait_listening(self.port, 20)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


async def set_switches(url: str, **switches: Any) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(f"{url}/_test/switches", content=json.dumps(switches))
        response.raise_for_status()


async def until(condition: Any, timeout: float, what: str) -> None:
    """Poll a sync or async condition until true; fail with ``what`` after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def stays(condition: Any, seconds: float) -> None:
    """Assert ``condition`` holds throughout a bounded observation window."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        assert condition()
        await asyncio.sleep(0.05)
