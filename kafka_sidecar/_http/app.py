"""The sidecar's ASGI application: chain routes, health, admin and plugin routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from kafka_sidecar._errors import MethodNotAllowed, NotFound, RequestError
from kafka_sidecar._http.admin import admin_routes, health_routes
from kafka_sidecar._http.endpoint import StreamingTerminal, after_response_failures, chain_endpoint
from kafka_sidecar._http.guard import ConcurrencySlots, LimitsMiddleware, limit_records
from kafka_sidecar._http.problems import problem_response
from kafka_sidecar._http.routing import ShapeRouter

if TYPE_CHECKING:
    from kafka_sidecar._sidecar import Sidecar


def create_app(sidecar: Sidecar, *, manage_lifecycle: bool = True) -> Starlette:
    """Build the app once. With ``manage_lifecycle`` the ASGI lifespan starts and stops the sidecar."""
    server = sidecar.config.server
    slots = ConcurrencySlots(server.max_concurrent_requests)
    failed_jobs = after_response_failures(sidecar.resources.metrics.registry)
    routes: list[BaseRoute] = [*health_routes(sidecar), *admin_routes(sidecar)]
    for compiled in sidecar.routes:
        chain = limit_records(compiled.chain, sidecar.config.server.max_records_per_request)
        terminal = sidecar.instances.get(compiled.plan.links[-1])
        streamed = frozenset(
            method
            for method in compiled.plan.methods
            if isinstance(terminal, StreamingTerminal) and terminal.streams_request_body(compiled.plan.path, method)
        )
        endpoint = chain_endpoint(chain, compiled.plan.path, server, slots, streamed, failed_jobs)
        routes.append(Route(compiled.plan.path, endpoint, methods=list(compiled.plan.methods)))
    routes.extend(sidecar.plugin_routes)  # collected and checked for clashes at assembly

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if manage_lifecycle:
            await sidecar.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                await sidecar.stop()

    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_exception, Exception: _unexpected},
        lifespan=lifespan,
        middleware=[Middleware(LimitsMiddleware, server=sidecar.config.server), Middleware(TrailingSlashMiddleware)],
    )
    # Starlette's own router with the same routes and lifespan, matching a request only against the
    # routes of its path's shape (about 70 regular expressions per request otherwise)
    app.router = ShapeRouter(routes, redirect_slashes=False, lifespan=lifespan)
    app.state.sidecar = sidecar
    app.state.concurrency = slots
    return app


class TrailingSlashMiddleware:
    """``POST .../offsets/`` is served as ``.../offsets``, not redirected (httpx and Node's http don't follow a 307)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            scope = dict(scope, path=path.rstrip("/") or "/")
            raw: bytes | None = scope.get("raw_path")
            if raw is not None:
                scope["raw_path"] = raw.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers) if exc.headers else None
    error: RequestError
    if exc.status_code == 404:
        error = NotFound(f"no route for {request.method} {request.url.path}", field="path")
    elif exc.status_code == 405:
        error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}", field="method")
    else:
        error = RequestError(str(exc.detail))
        error.status = exc.status_code  # type: ignore[misc]
    return problem_response(error, headers, request.headers.get("accept", ""))


async def _unexpected(request: Request, exc: Exception) -> Response:
    return problem_response(exc, accept=request.headers.get("accept", ""))
