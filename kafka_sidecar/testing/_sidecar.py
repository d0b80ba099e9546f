"""A sidecar running in-process from a config string, with an httpx client bound to its ASGI app."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from kafka_sidecar._http.app import create_app
from kafka_sidecar._sidecar import Sidecar


@dataclass(frozen=True, slots=True)
class RunningSidecar:
    sidecar: Sidecar
    client: httpx.AsyncClient
    config_path: Path


@asynccontextmanager
async def running_sidecar(
    config_yaml: str,
    directory: Path,
    *,
    env: Mapping[str, str] | None = None,
    extra_plugins: Iterable[tuple[object, str]] = (),
    wait_for_kafka: float = 30.0,
    client_host: str = "127.0.0.1",
) -> AsyncIterator[RunningSidecar]:
    """Write ``config_yaml`` to ``directory/chains.yml``, start the sidecar and yield a client for it.

    The client talks to the ASGI app in-process (no socket); ``client_host`` is the caller address the
    app sees. ``wait_for_kafka`` seconds at most are spent waiting for the producers to reach the
    configured brokers (``0``: do not wait, for chains that never touch Kafka); a broker that does not
    answer in time is a ``RuntimeError``. The sidecar is stopped (producer flushed, consumers closed)
    when the block exits.
    """
    path = directory / "chains.yml"
    path.write_text(textwrap.dedent(config_yaml), encoding="utf-8")
    sidecar = Sidecar.from_file(path, env=env, extra_plugins=extra_plugins)
    app = create_app(sidecar, manage_lifecycle=False)
    await sidecar.start()
    try:
        for producer in (sidecar.resources.producer, sidecar.resources.internal_producer):
            if wait_for_kafka > 0 and not await producer.wait_connected(wait_for_kafka):
                raise RuntimeError(f"sidecar could not connect to Kafka: {producer.last_error}")
        transport = httpx.ASGITransport(app=app, client=(client_host, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
            yield RunningSidecar(sidecar, client, path)
    finally:
        await sidecar.stop()
