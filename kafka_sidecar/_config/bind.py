"""The sidecar serves its own pod: a non-loopback bind is refused unless allowed explicitly."""

from __future__ import annotations

import ipaddress

from kafka_sidecar._config.model import ServerConfig
from kafka_sidecar._config.yaml_source import Loc
from kafka_sidecar._errors import ConfigProblem


def is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_problem(server: ServerConfig, where: Loc) -> ConfigProblem | None:
    """The problem with ``server.host`` (located at ``where``), or None when the bind is allowed."""
    if server.allow_non_loopback or is_loopback(server.host):
        return None
    return where.problem(
        "server.host",
        f"{server.host!r} is not a loopback address; the sidecar serves its own pod only. "
        "Set server.allow_non_loopback: true to bind it anyway",
    )
