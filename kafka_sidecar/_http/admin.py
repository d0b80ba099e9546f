"""Health probes and the loopback-only admin routes (``/admin/...``)."""

from __future__ import annotations

import dataclasses
import functools
import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from kafka_sidecar._config.convert import plain
from kafka_sidecar._errors import (
    Forbidden,
    KafkaUnavailable,
    NotFound,
    SidecarError,
    Unauthorized,
    UpstreamUnavailable,
    ValidationFailed,
)
from kafka_sidecar._http.guard import admin_token, on_admin_port
from kafka_sidecar._http.problems import problem_response

if TYPE_CHECKING:
    from kafka_sidecar._config.model import ServerConfig
    from kafka_sidecar._sidecar import Sidecar

MASK = "****"
SECRET_WORDS = (
    "password", "passwd", "secret", "token", "credential", "private_key", "api_key", "apikey", "jaas",
    "authorization", "cookie", "signature", "x_auth",
)  # fmt: skip
"""A key (config field or header name, ``-`` read as ``_``) containing one of these has its value masked."""


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def looks_secret(key: str) -> bool:
    lowered = key.lower().replace("-", "_")
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


async def json_object_body(request: Request) -> Mapping[str, Any]:
    """An admin request's JSON object body (``{}`` when empty); anything else is a 422 naming ``body``."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"request body is not valid JSON: {exc}", field="body") from exc
    if not isinstance(data, dict):
        raise ValidationFailed("request body must be a JSON object", field="body")
    return data


AdminEndpoint = Callable[[Request], Awaitable[Response]]


def require_admin(request: Request, *, bearer: bool = True) -> None:
    """Raise unless the caller may use admin routes.

    * With ``server.admin_port`` set, admin routes exist only on that port (elsewhere: 404).
    * With ``server.admin_token`` (or ``admin_token_file``) set, ``Authorization: Bearer <token>`` is
      required (compared in constant time); the listener may then be reached from other hosts.
      ``bearer=False`` (static pages, see :func:`admin_page_route`) skips only this check.
    * Without a token, only loopback callers are served.
    """
    sidecar = getattr(request.app.state, "sidecar", None)
    server = sidecar.config.server if sidecar is not None else None
    if server is not None and not on_admin_port(request.scope, server):
        raise NotFound(f"no route for {request.method} {request.url.path}", field="path")
    host = request.client.host if request.client else None
    if not bearer and server is not None and admin_token(server) is not None:
        return
    authorize_admin(server, host, request.headers.get("authorization", ""))


def authorize_admin(server: ServerConfig | None, client_host: str | None, authorization: str) -> None:
    """The admin rule without the port check: the admin bearer token when one is set, else loopback only.

    Chain terminals with admin operations (v3 create/delete topic) call this with the request's values.
    """
    token = admin_token(server) if server is not None else None
    if token is None:
        if not is_loopback(client_host):
            raise Forbidden(f"admin routes answer loopback callers only, not {client_host}")
        return
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() != "bearer" or not presented:
        raise Unauthorized("admin routes need 'Authorization: Bearer <admin token>'", field="authorization")
    if not hmac.compare_digest(presented.strip().encode(), token.encode()):
        raise Forbidden("the admin bearer token is not valid", field="authorization")


def admin_route(path: str, endpoint: AdminEndpoint, methods: list[str]) -> Route:
    """A route under ``/admin`` guarded by :func:`require_admin`, errors mapped to problems.

    Plugins that add admin routes (``kafka_sidecar_routes``) use this so every admin route has the
    same protection.
    """
    return _guarded_route(path, endpoint, methods, bearer=True)


def admin_page_route(path: str, endpoint: AdminEndpoint, methods: list[str]) -> Route:
    """An admin route for a static browser page or asset that carries no data.

    A browser cannot send ``Authorization: Bearer`` when it navigates to a page, so with an admin token
    set the page itself is served without it (the admin-port rule still applies, and without a token
    the loopback rule); every data route the page calls is an :func:`admin_route` and needs the token.
    """
    return _guarded_route(path, endpoint, methods, bearer=False)


def _guarded_route(path: str, endpoint: AdminEndpoint, methods: list[str], *, bearer: bool) -> Route:
    if not path.startswith("/admin/"):
        raise ValueError(f"admin routes live under /admin/, not {path!r}")

    async def guarded(request: Request) -> Response:
        try:
            require_admin(request, bearer=bearer)
            return await endpoint(request)
        except SidecarError as exc:
            return problem_response(exc)

    # The first docstring line is the route's summary in /openapi.json; attributes (response_status, ...) too.
    functools.update_wrapper(guarded, endpoint)

    return Route(path, guarded, methods=methods)


def admin_routes(sidecar: Sidecar) -> list[BaseRoute]:
    async def chains(request: Request) -> Response:
        routes = [
            {
                "methods": list(r.plan.methods),
                "path": r.plan.path,
                "chain": [{"name": link.name, "type": link.type_name} for link in r.chain.links],
            }
            for r in sidecar.routes
        ]
        consumers = [
            {"name": c.plan.name, "chain": [{"name": link.name, "type": link.type_name} for link in c.chain.links]}
            for c in sidecar.consumers
        ]
        return JSONResponse({"routes": routes, "consumers": consumers})

    async def config(request: Request) -> Response:
        return JSONResponse(masked(sidecar.config))

    return [admin_route("/admin/chains", chains, ["GET"]), admin_route("/admin/config", config, ["GET"])]


def health_routes(sidecar: Sidecar) -> list[BaseRoute]:
    async def live(request: Request) -> Response:
        return JSONResponse({"status": "UP"})

    async def ready(request: Request) -> Response:
        timeout = sidecar.config.kafka.connect_timeout_ms / 1000
        producer = sidecar.resources.producer
        reason = await producer.probe(timeout)
        if reason is not None:
            return problem_response(KafkaUnavailable(reason, extra={"producer": producer.state.value}))
        reasons = sidecar.not_ready()
        if reasons:
            return problem_response(UpstreamUnavailable("; ".join(reasons)))
        return JSONResponse(
            {"status": "UP", "kafka": sidecar.config.kafka.bootstrap_servers, "producer": producer.state.value}
        )

    return [Route("/health/live", live, methods=["GET"]), Route("/health/ready", ready, methods=["GET"])]
