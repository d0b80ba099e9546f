"""``server.engine: uvicorn``: the same app served by uvicorn with httptools (extra ``uvicorn``).

HTTP/1.1 only (no h2c), about 40 % less CPU per small request than Hypercorn (docs/benchmarks.md).
Binds, TLS, client certificates, the admin port and the graceful stop on SIGTERM behave as with
Hypercorn; the sidecar's own signal handling decides when to stop (uvicorn's is switched off).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from kafka_sidecar._config.model import ServerConfig


def uvicorn_config(app: Any, server: ServerConfig, graceful_timeout: float) -> Any:
    import uvicorn

    password = None
    if server.tls_key_password_file is not None:
        password = Path(server.tls_key_password_file).read_text(encoding="utf-8").strip()
    return uvicorn.Config(
        app,
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        lifespan="on",
        log_config=None,  # uvicorn's loggers propagate to the sidecar's root handler: one log format
        log_level="warning",
        access_log=False,
        proxy_headers=False,  # as Hypercorn: the peer is the client; X-Forwarded-* neither trusted nor parsed
        server_header=False,
        timeout_graceful_shutdown=max(1, int(graceful_timeout)),
        h11_max_incomplete_event_size=max(server.max_header_bytes * 2, 16 * 1024),
        ssl_certfile=server.tls_certfile,
        ssl_keyfile=server.tls_keyfile,
        ssl_keyfile_password=password,
        ssl_ca_certs=server.tls_client_cafile,
        ssl_cert_reqs=ssl.CERT_REQUIRED if server.tls_client_cafile else ssl.CERT_NONE,
    )


async def serve_uvicorn(
    app: Any,
    server: ServerConfig,
    sockets: list[socket.socket],
    shutdown_trigger: Callable[[], Awaitable[None]],
    graceful_timeout: float,
) -> None:
    """Serve until ``shutdown_trigger`` returns, then drain in-flight requests (``graceful_timeout``), return."""
    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the sidecar's own handlers set ``stop``

    instance = _Server(uvicorn_config(app, server, graceful_timeout))

    async def exit_on_stop() -> None:
        await shutdown_trigger()
        instance.should_exit = True

    watcher = asyncio.create_task(exit_on_stop(), name="uvicorn-stop")
    try:
        await instance.serve(sockets=sockets)
    finally:
        watcher.cancel()
