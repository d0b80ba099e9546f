"""Health probes and the loopback-only admin routes (``/admin/...``)."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from kafka_sidecar.config.convert import plain
from kafka_sidecar.errors import Forbidden, KafkaUnavailable
from kafka_sidecar.http.problems import problem_response

if TYPE_CHECKING:
    from kafka_sidecar.sidecar import Sidecar

MASK = "****"
SECRET_WORDS = ("password", "secret", "token", "credential", "private_key", "api_key", "jaas")


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def looks_secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in SECRET_WORDS)


def masked(value: Any) -> Any:
    """Config as plain data with every secret replaced by ``****``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            secret = field.metadata.get("secret", False) or looks_secret(field.name)
            out[field.name] = MASK if secret and item is not None else masked(item)
        return out
    if isinstance(value, Mapping):
        return {
            str(k): (MASK if looks_secret(str(k)) and v is not None and not isinstance(v, Mapping) else masked(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    return plain(value)


def admin_routes(sidecar: Sidecar) -> list[BaseRoute]:
    def guard(request: Request) -> Response | None:
        host = request.client.host if request.client else None
        if not is_loopback(host):
            return problem_response(Forbidden(f"admin routes answer loopback callers only, not {host}"))
        return None

    async def chains(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        routes = [
            {
                "methods": list(r.plan.methods),
                "path": r.plan.path,
                "chain": [{"name": link.name, "type": link.type_name} for link in r.chain.links],
            }
            for r in sidecar.routes
        ]
        consumers = [
            {
                "name": c.plan.name,
                "chain": [{"name": link.name, "type": link.type_name} for link in c.chain.links],
            }
            for c in sidecar.consumers
        ]
        return JSONResponse({"routes": routes, "consumers": consumers})

    async def config(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        return JSONResponse(masked(sidecar.config))

    return [Route("/admin/chains", chains, methods=["GET"]), Route("/admin/config", config, methods=["GET"])]


def health_routes(sidecar: Sidecar) -> list[BaseRoute]:
    async def live(request: Request) -> Response:
        return JSONResponse({"status": "UP"})

    async def ready(request: Request) -> Response:
        timeout = sidecar.config.kafka.connect_timeout_ms / 1000
        reason = await sidecar.resources.producer.probe(timeout)
        if reason is not None:
            return problem_response(KafkaUnavailable(reason))
        return JSONResponse({"status": "UP", "kafka": sidecar.config.kafka.bootstrap_servers})

    return [Route("/health/live", live, methods=["GET"]), Route("/health/ready", ready, methods=["GET"])]
