"""HTTP-side guards: request limits, the separate admin port, and the admin token source.

* :class:`LimitsMiddleware` (ASGI, outermost): header size (413), ``Content-Length`` together with
  ``Transfer-Encoding`` (400, a request-smuggling shape), and — when ``server.admin_port`` is set —
  business routes are not served on the admin port.
* :class:`ConcurrencySlots`: business requests served at once (429 with ``Retry-After``). A slot is
  taken only once the request body has fully arrived, so slow or stalled uploads hold none.
* :func:`limit_records`: the ``records`` list of a JSON body may hold at most
  ``server.max_records_per_request`` entries (413), checked before the chain runs.

Everything here runs outside the chains' error boundary, so every error goes through
:func:`~kafka_sidecar._http.problems.problem_response` / ``problem_reply`` itself: never a bare 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from kafka_sidecar._chain import Chain
from kafka_sidecar._config.model import ServerConfig
from kafka_sidecar._errors import NotFound, PayloadTooLarge, RequestError, SidecarError, TooManyRequests
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


class ConcurrencySlots:
    """At most ``limit`` business requests being served; taken after the body is read."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    def try_acquire(self) -> bool:
        if self.in_use >= self.limit:
            return False
        self.in_use += 1
        return True

    def release(self) -> None:
        self.in_use -= 1

    def busy(self) -> TooManyRequests:
        return TooManyRequests(f"more than {self.limit} requests in progress; retry shortly", field="concurrency")


RETRY_AFTER = {"Retry-After": "1"}


class LimitsMiddleware:
    def __init__(self, app: ASGIApp, server: ServerConfig) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        error = self._refusal(scope)
        if error is not None:
            await problem_response(error, {"Connection": "close"})(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> SidecarError | None:
        path: str = scope.get("path", "")
        headers = scope.get("headers", ())
        on_admin = self.server.admin_port is not None and local_port(scope) == self.server.admin_port
        if on_admin and not path.startswith(EXEMPT_PREFIXES):
            return NotFound(f"the admin port serves /admin/ and /health/ only, not {path}", field="path")
        if (size := sum(len(k) + len(v) for k, v in headers)) > self.server.max_header_bytes:
            return PayloadTooLarge(
                f"request headers are {size} bytes, more than the limit of {self.server.max_header_bytes}",
                field="headers",
            )
        names = {name.lower() for name, _ in headers}
        if b"content-length" in names and b"transfer-encoding" in names:
            return RequestError(
                "Content-Length and Transfer-Encoding together are ambiguous; send one of them",
                field="Transfer-Encoding",
            )
        return None


def limit_records(chain: Chain, max_records: int) -> Chain:
    """``chain`` behind a check that a JSON body's ``records`` list is not longer than ``max_records``."""

    async def entry(exchange: Exchange) -> Reply:
        try:
            count = _records_count(exchange, max_records)
        except SidecarError as exc:
            return problem_reply(exchange, exc)
        if count is not None and count > max_records:
            error = PayloadTooLarge(
                f"{count} records in one request, more than the limit of {max_records}", field="records"
            )
            return problem_reply(exchange, error)
        return await chain(exchange)

    return Chain(chain.name, chain.links, entry)


def _records_count(exchange: Exchange, max_records: int) -> int | None:
    """How many entries the body's ``records`` list has, when it may have more than ``max_records``.

    Each record is a JSON object, so a body with at most ``max_records`` ``{`` cannot exceed the limit:
    then the body is not parsed here (one byte count in C), and the chain parses it once.
    """
    request = exchange.request
    if request is None or request.body.count(b"{") <= max_records:
        return None
    media = request.content_type
    if media != "application/json" and not media.endswith("+json"):
        return None  # not JSON: the chain answers it (415 when a handler reads the body)
    body: Any = exchange.json_body()  # raises only RequestError: answered here, before the chain
    if isinstance(body, Mapping) and isinstance(body.get("records"), list):
        return len(body["records"])
    return None
