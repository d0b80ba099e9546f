"""Checks ``kafka-sidecar run`` makes before serving, turning the usual start-up failures into one line.

Each failure is a :class:`~kafka_sidecar._errors.StartupError` naming the config key and the fix:
the port taken, a TLS file that is not a usable PEM (the server's or the Kafka client's). A bind
that fails later anyway (a race with another process) is translated by :func:`explain_os_error`.
"""

from __future__ import annotations

import errno
import socket
import ssl
from pathlib import Path

from kafka_sidecar._config.model import KafkaConfig, ServerConfig, SidecarConfig
from kafka_sidecar._errors import StartupError

PORT_ENV = {"port": "SIDECAR_PORT"}
"""Environment variables the shipped chains.yml reads for these server keys (named in the fix)."""


def preflight(config: SidecarConfig) -> None:
    """Raise :class:`StartupError` for the first thing that would stop the server from starting."""
    check_ports(config.server)
    check_server_tls(config.server)
    check_kafka_tls(config.kafka)


def check_ports(server: ServerConfig) -> None:
    for key, port in (("port", server.port), ("admin_port", server.admin_port)):
        if port is None or port == 0:
            continue
        family = socket.AF_INET6 if ":" in server.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Hypercorn binds
            try:
                probe.bind((server.host, port))
            except OSError as exc:
                raise bind_error(exc, server, key, port) from exc


def bind_error(exc: OSError, server: ServerConfig, key: str, port: int) -> StartupError:
    env = f" (the shipped chains.yml reads {PORT_ENV[key]})" if key in PORT_ENV else ""
    if exc.errno == errno.EADDRINUSE:
        return StartupError(
            f"port {port} on {server.host} is already in use",
            field=f"server.{key}",
            fix=f"stop the process using it, or choose another port with server.{key}{env}",
        )
    if exc.errno == errno.EACCES:
        return StartupError(
            f"not allowed to listen on port {port} on {server.host}",
            field=f"server.{key}",
            fix=f"use a port above 1023 with server.{key}{env}",
        )
    return StartupError(
        f"cannot listen on {server.host}:{port}: {exc.strerror or exc}",
        field="server.host",
        fix="use an address of this machine, normally 127.0.0.1 (SIDECAR_HOST in the shipped chains.yml)",
    )


def explain_os_error(exc: OSError, server: ServerConfig) -> StartupError | None:
    """The one-line form of a bind failure raised by the server itself, or None if it is something else."""
    if exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
        return None
    return bind_error(exc, server, "port", server.port)


def check_server_tls(server: ServerConfig) -> None:
    if server.tls_certfile is None or server.tls_keyfile is None:
        return
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    password = None
    if server.tls_key_password_file is not None:
        password = Path(server.tls_key_password_file).read_text(encoding="utf-8").strip()
    fix = "point server.tls_certfile and server.tls_keyfile at a PEM certificate chain and its private key"
    _load_pair(context, (server.tls_certfile, server.tls_keyfile, password), "server.tls_certfile", fix)
    if server.tls_client_cafile is not None:
        _load_ca(context, server.tls_client_cafile, "server.tls_client_cafile")


def check_kafka_tls(kafka: KafkaConfig) -> None:
    security = kafka.security
    context = ssl.create_default_context()
    if security.ssl_cafile is not None:
        _load_ca(context, security.ssl_cafile, "kafka.security.ssl_cafile")
    if security.ssl_certfile is not None and security.ssl_keyfile is not None:
        password = security.ssl_password
        if security.ssl_password_file is not None:
            password = Path(security.ssl_password_file).read_text(encoding="utf-8").strip()
        fix = "point ssl_certfile and ssl_keyfile at the client's PEM certificate and its private key"
        pair = (security.ssl_certfile, security.ssl_keyfile, password)
        _load_pair(context, pair, "kafka.security.ssl_certfile", fix)


def _load_pair(context: ssl.SSLContext, pair: tuple[str, str, str | None], field: str, fix: str) -> None:
    """Load (certificate file, key file, key password) or raise the one-line error for ``field``."""
    certfile, keyfile, password = pair
    try:
        context.load_cert_chain(certfile, keyfile, password)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise StartupError(
            f"cannot use {certfile!r} with key {keyfile!r}: {_ssl_reason(exc)}", field=field, fix=fix
        ) from exc


def _load_ca(context: ssl.SSLContext, path: str, field: str) -> None:
    try:
        context.load_verify_locations(cafile=path)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise StartupError(
            f"{path!r} is not a usable CA bundle: {_ssl_reason(exc)}",
            field=field,
            fix="point it at a PEM file holding one or more CA certificates",
        ) from exc


def _ssl_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return f"{exc.reason} (not PEM, or the key does not match)"
    return str(exc) or type(exc).__name__
