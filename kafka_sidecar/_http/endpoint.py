"""Adapting Starlette requests to exchanges, and replies back to responses."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, runtime_checkable
from urllib.parse import parse_qsl

from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from kafka_sidecar import _json
from kafka_sidecar._chain import Chain
from kafka_sidecar._config.model import ServerConfig
from kafka_sidecar._errors import PayloadTooLarge, RequestTimeout, SidecarError
from kafka_sidecar._exchange import (
    AFTER_RESPONSE,
    REQUEST_BODY_STREAM,
    RESPONSE_HEADERS,
    RESPONSE_STREAM,
    Exchange,
    HttpRequest,
    Reply,
    ResponseStream,
)
from kafka_sidecar._http.guard import RETRY_AFTER, ConcurrencySlots
from kafka_sidecar._http.problems import problem_response
from kafka_sidecar._metrics.registry import Counter, MetricsRegistry

log = logging.getLogger(__name__)


async def read_body(request: Request, limit: int, chunk_timeout: float | None = None) -> bytes:
    """The whole body, refusing more than ``limit`` bytes (413) without reading past it, and a body whose
    next piece takes longer than ``chunk_timeout`` seconds to arrive (408).

    Read from the ASGI messages under one timer, re-armed after each piece: most bodies are one message
    already received, so this costs one timer per request (not one per piece plus the end of the stream).
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds the limit of {limit} bytes", field="body")
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(chunk_timeout) as timer:
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "http.disconnect":
                    raise ClientDisconnect()
                if kind != "http.request":
                    continue
                chunk: bytes = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > limit:
                        raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes", field="body")
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    break
                if chunk and chunk_timeout is not None:  # the next piece gets the whole time again
                    timer.reschedule(asyncio.get_running_loop().time() + chunk_timeout)
    except TimeoutError:
        raise RequestTimeout(
            f"the request body stalled: nothing arrived for {chunk_timeout:g}s ({size} bytes read)", field="body"
        ) from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def to_http_request(request: Request, route: str, body: bytes) -> HttpRequest:
    """The request as the chain sees it, read from the ASGI scope directly (what Starlette's ``Request``
    properties would give, without building their objects): header names as the server lower-cased them,
    a repeated header joined with ``, ``, the query's last value per name."""
    scope = request.scope
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    query_string: bytes = scope.get("query_string", b"")
    client = scope.get("client")
    return HttpRequest(
        method=scope["method"],
        path=scope["path"],  # not request.url: building the whole URL costs more than the rest
        route=route,
        path_params={k: str(v) for k, v in scope.get("path_params", {}).items()},
        query=dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)) if query_string else {},
        headers=headers,
        body=body,
        client_host=client[0] if client else None,
    )


AFTER_RESPONSE_FAILURES = "kafka_sidecar_after_response_failures_total"


def after_response_failures(registry: MetricsRegistry) -> Counter:
    """Jobs left for after a response (:meth:`~kafka_sidecar.plugin.Exchange.after_response`) that failed, by route."""
    return registry.counter(
        AFTER_RESPONSE_FAILURES, "Jobs run after an HTTP response that failed (each is logged), by route.", ("route",)
    )


def to_response(reply: Reply, exchange: Exchange, failed_jobs: Counter | None = None) -> Response:
    """The Starlette response for ``reply``; the exchange's after-response jobs run once it is sent (a
    failing one is logged and counted in ``failed_jobs``)."""
    headers = dict(reply.headers)
    extra = exchange.stash.get(RESPONSE_HEADERS)
    if extra:
        headers.update(extra)
    jobs = exchange.stash.get(AFTER_RESPONSE)
    after = BackgroundTask(_run_after_response, jobs, exchange.name, failed_jobs) if jobs else None
    if reply.status == 204 or (reply.body is None and reply.status >= 200 and reply.status != 200):
        return Response(status_code=reply.status, headers=headers, background=after)
    content = reply.body if isinstance(reply.body, bytes) else _json.dumps(reply.body)
    return Response(content, reply.status, headers=headers, media_type=reply.media_type, background=after)


async def _run_after_response(
    jobs: list[Callable[[], Awaitable[None]]], route: str, failed_jobs: Counter | None
) -> None:
    """The exchange's :meth:`~Exchange.after_response` jobs in order; a failing one is logged and counted,
    the rest still run."""
    for job in jobs:
        try:
            await job()
        except Exception:
            if failed_jobs is not None:
                failed_jobs.inc(route)
            log.exception("a job run after the response to %s failed", route)


@runtime_checkable
class StreamingTerminal(Protocol):
    """A terminal that reads some routes' request bodies as they arrive and answers piece by piece."""

    def streams_request_body(self, route: str, method: str) -> bool: ...


def chain_endpoint(
    chain: Chain,
    route: str,
    server: ServerConfig,
    slots: ConcurrencySlots,
    streamed_methods: frozenset[str] = frozenset(),
    failed_jobs: Counter | None = None,
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint that runs ``chain`` for every request to ``route``.

    The body is read first (bounded in size and in time); only then is a concurrency slot taken, so a
    client that never finishes its upload holds no slot. For ``streamed_methods`` the body is not read
    first: the chain gets it as a stream (:data:`REQUEST_BODY_STREAM`) and may answer through a
    :class:`ResponseStream`; such a request holds a slot until its answer ends.
    """

    async def endpoint(request: Request) -> Response:
        if request.method in streamed_methods:
            if not slots.try_acquire():
                return problem_response(slots.busy(), RETRY_AFTER, request.headers.get("accept", ""))
            return await _streamed(chain, route, request, slots.release)
        try:
            body = await read_body(request, server.max_body_bytes, server.body_read_timeout_s)
        except ClientDisconnect:
            log.debug("client %s went away before its request body to %s arrived", request.client, route)
            return Response(status_code=400)  # nobody reads it; Starlette needs a response
        except SidecarError as exc:
            return problem_response(exc, {"Connection": "close"}, request.headers.get("accept", ""))
        if not slots.try_acquire():
            return problem_response(slots.busy(), RETRY_AFTER, request.headers.get("accept", ""))
        try:
            exchange = Exchange("http", route, to_http_request(request, route, body))
            reply = await chain(exchange)
            return to_response(reply, exchange, failed_jobs)
        finally:
            slots.release()

    return endpoint


async def _streamed(chain: Chain, route: str, request: Request, release: Callable[[], None]) -> Response:
    exchange = Exchange("http", route, to_http_request(request, route, b""))
    stream = ResponseStream()
    exchange.stash[REQUEST_BODY_STREAM] = _until_disconnect(request)
    exchange.stash[RESPONSE_STREAM] = stream
    running = asyncio.ensure_future(chain(exchange))
    running.add_done_callback(lambda _: stream.close())
    running.add_done_callback(lambda _: release())  # the slot is held while the chain runs
    started = asyncio.ensure_future(stream.started.wait())
    await asyncio.wait({running, started}, return_when=asyncio.FIRST_COMPLETED)
    if not stream.started.is_set():
        started.cancel()
        return to_response(running.result(), exchange)  # answered without streaming (an error, say)

    async def pieces() -> AsyncIterator[bytes]:
        async for piece in stream.pieces():
            yield piece
        reply = await running
        if reply.status >= 400 and reply.body is not None:  # failed after the first piece: say so last
            yield _json.dumps(reply.body) + b"\n"

    extra = exchange.stash.get(RESPONSE_HEADERS)
    headers = dict(extra) if extra else {}
    return _PiecesResponse(pieces(), stream.status, headers=headers, media_type=stream.media_type)


async def _until_disconnect(request: Request) -> AsyncIterator[bytes]:
    """The body as it arrives; a client that goes away simply ends it (what was read is still answered)."""
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        log.info("client went away during a streamed request to %s", request.url.path)


class _PiecesResponse(Response):
    """Sends pieces as they come. Unlike Starlette's StreamingResponse it never calls ``receive``
    (which would swallow the request body the chain is still reading)."""

    def __init__(self, pieces: AsyncIterator[bytes], status: int, headers: dict[str, str], media_type: str) -> None:
        super().__init__(None, status, headers=headers, media_type=media_type)
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]  # length unknown
        self._pieces = pieces

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        async for piece in self._pieces:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
