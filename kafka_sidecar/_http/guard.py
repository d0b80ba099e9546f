"""HTTP-side guards: request limits, the separate admin port, and the admin token source.

* :class:`LimitsMiddleware` (ASGI, outermost): header size (413), concurrent business requests
  (429 with ``Retry-After``), and — when ``server.admin_port`` is set — business routes are not
  served on the admin port. Health probes and admin routes never count against the concurrency limit.
* :func:`limit_records`: the ``records`` list of a JSON body may hold at most
  ``server.max_records_per_request`` entries (413), checked before the chain runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from kafka_sidecar._chain import Chain
from kafka_sidecar._config.model import ServerConfig
from kafka_sidecar._errors import NotFound, PayloadTooLarge, SidecarError, TooManyRequests
from kafka_sidecar._exchange import Exchange, Reply
from kafka_sidecar._http.problems import problem_reply, problem_response

EXEMPT_PREFIXES = ("/health/", "/admin/")


def admin_token(server: ServerConfig) -> str | None:
    """The configured admin token (inline or from ``admin_token_file``, read on each call); None if unset."""
    if server.admin_token is not None:
        return server.admin_token
    if server.admin_token_file is None:
        return None
    try:
        token = Path(server.admin_token_file).read_text(encoding="utf-8").strip()
    except OSError:
        token = ""
    # An unreadable or empty token file must lock admin routes, never open them.
    return token or "\0unreadable-admin-token-file"


def local_port(scope: Scope) -> int | None:
    server = scope.get("server")
    if not server or len(server) < 2 or server[1] is None:
        return None
    return int(server[1])


def on_admin_port(scope: Scope, server: ServerConfig) -> bool:
    """True when admin routes may be served on the port this request arrived on."""
    return server.admin_port is None or local_port(scope) == server.admin_port


class LimitsMiddleware:
    def __init__(self, app: ASGIApp, server: ServerConfig) -> None:
        self.app = app
        self.server = server
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        exempt = path.startswith(EXEMPT_PREFIXES)
        error: SidecarError | None = None
        headers: dict[str, str] | None = None
        if self.server.admin_port is not None and not exempt and local_port(scope) == self.server.admin_port:
            error = NotFound(f"the admin port serves /admin/ and /health/ only, not {path}", field="path")
        elif (size := sum(len(k) + len(v) for k, v in scope.get("headers", ()))) > self.server.max_header_bytes:
            error = PayloadTooLarge(
                f"request headers are {size} bytes, more than the limit of {self.server.max_header_bytes}",
                field="headers",
            )
        elif not exempt and self.in_flight >= self.server.max_concurrent_requests:
            error = TooManyRequests(
                f"more than {self.server.max_concurrent_requests} requests in progress; retry shortly",
                field="concurrency",
            )
            headers = {"Retry-After": "1"}
        if error is not None:
            await problem_response(error, headers)(scope, receive, send)
            return
        if exempt:
            await self.app(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


def limit_records(chain: Chain, max_records: int) -> Chain:
    """``chain`` behind a check that a JSON body's ``records`` list is not longer than ``max_records``."""

    async def entry(exchange: Exchange) -> Reply:
        count = _records_count(exchange)
        if count is not None and count > max_records:
            error = PayloadTooLarge(
                f"{count} records in one request, more than the limit of {max_records}", field="records"
            )
            return problem_reply(exchange, error)
        return await chain(exchange)

    return Chain(chain.name, chain.links, entry)


def _records_count(exchange: Exchange) -> int | None:
    request = exchange.request
    if request is None or (request.content_type and "json" not in request.content_type):
        return None
    try:
        body: Any = exchange.json_body()
    except SidecarError:
        return None  # the chain reports the malformed body itself
    if isinstance(body, Mapping) and isinstance(body.get("records"), list):
        return len(body["records"])
    return None
