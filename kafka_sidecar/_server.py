"""Serving the sidecar with Hypercorn: HTTP/1.1 and h2c, graceful SIGTERM, bounded shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig

from kafka_sidecar._config.bind import bind_problem
from kafka_sidecar._config.model import ServerConfig
from kafka_sidecar._config.yaml_source import Loc
from kafka_sidecar._errors import ConfigError
from kafka_sidecar._http.app import create_app
from kafka_sidecar._sidecar import Sidecar
from kafka_sidecar._uvicorn import serve_uvicorn

log = logging.getLogger(__name__)
DRAIN_SHARE = 0.5


def check_bind(server: ServerConfig, file: str) -> None:
    """Refuse a non-loopback bind unless ``server.allow_non_loopback`` says so explicitly (the plan
    already reported it at the ``host`` key; this guards a sidecar assembled from a hand-made config)."""
    problem = bind_problem(server, Loc(file, 1, 1))
    if problem is not None:
        raise ConfigError([problem])


def hypercorn_config(server: ServerConfig) -> HypercornConfig:
    """Binds (the main port and, if set, the admin port), TLS, HTTP/2 and shutdown settings."""
    config = HypercornConfig()
    host = f"[{server.host}]" if ":" in server.host else server.host
    config.bind = [f"{host}:{server.port}"]
    if server.admin_port is not None:
        config.bind.append(f"{host}:{server.admin_port}")
    # One budget (server.shutdown_timeout_s) from SIGTERM to exit: in-flight requests get at most this
    # share of it, stopping consumers and flushing producers the rest (Sidecar.stop).
    config.graceful_timeout = server.shutdown_timeout_s * DRAIN_SHARE
    config.accesslog = None
    config.include_server_header = False  # as with uvicorn: no server name and version on every response
    # Over max_concurrent_requests a client gets 429; connections beyond what is being accepted wait in
    # the listen queue instead of being refused.
    config.backlog = server.listen_backlog
    config.errorlog = logging.getLogger("hypercorn.error")  # through the sidecar's handlers, once
    config.h2_max_concurrent_streams = 100
    config.h11_max_incomplete_size = max(server.max_header_bytes * 2, 16 * 1024)
    if server.tls_certfile is not None:
        # Hypercorn serves every bind address with TLS once a certificate is set.
        config.certfile = server.tls_certfile
        config.keyfile = server.tls_keyfile
        if server.tls_key_password_file is not None:
            config.keyfile_password = Path(server.tls_key_password_file).read_text(encoding="utf-8").strip()
        if server.tls_client_cafile is not None:
            config.ca_certs = server.tls_client_cafile
            config.verify_mode = ssl.CERT_REQUIRED
    return config


def listen_sockets(server: ServerConfig) -> list[socket.socket]:
    """Listening sockets for the port and, if set, the admin port (IPv6 when the host is one).

    They listen before the sidecar starts: connections made once the ready line is out wait in the
    queue (``server.listen_backlog``) until serving begins, instead of being refused."""
    sockets: list[socket.socket] = []
    try:
        for port in (server.port, server.admin_port):
            if port is None:
                continue
            sock = socket.socket(socket.AF_INET6 if ":" in server.host else socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((server.host, port))
            sock.listen(server.listen_backlog)
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


async def serve_sidecar(
    sidecar: Sidecar, *, shutdown: asyncio.Event | None = None, on_ready: Callable[[], None] | None = None
) -> None:
    """Start the sidecar, serve until SIGTERM/SIGINT (or ``shutdown`` is set): stop accepting, drain, flush.

    The ports listen first; then the sidecar is started here, before the server (not in the ASGI
    lifespan), so a failed start is the :class:`~kafka_sidecar._errors.StartFailed` it raises, with what
    had started already stopped again, whichever engine serves; ``on_ready`` is called once the start
    has completed (connections are accepted from then on).
    """
    server = sidecar.config.server
    check_bind(server, sidecar.blueprint.file)
    stop = shutdown or asyncio.Event()
    loop = asyncio.get_running_loop()
    config = hypercorn_config(server)
    app = create_app(sidecar, manage_lifecycle=False)

    async def shutdown_trigger() -> None:
        await stop.wait()
        sidecar.begin_shutdown()

    sockets = listen_sockets(server)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await sidecar.start()
        try:
            if on_ready is not None:
                on_ready()
            if server.engine == "uvicorn":
                await serve_uvicorn(app, server, sockets, shutdown_trigger, config.graceful_timeout)
            else:
                config.bind = [f"fd://{sock.detach()}" for sock in sockets]  # Hypercorn owns them from here
                await serve(app, config, shutdown_trigger=shutdown_trigger)  # type: ignore[arg-type]
        finally:
            await sidecar.stop()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        for sock in sockets:
            sock.close()  # a no-op for sockets handed to Hypercorn (detached)
