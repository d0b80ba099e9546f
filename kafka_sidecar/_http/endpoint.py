"""Adapting Starlette requests to exchanges, and replies back to responses."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from kafka_sidecar import _json
from kafka_sidecar._chain import Chain
from kafka_sidecar._config.model import ServerConfig
from kafka_sidecar._errors import PayloadTooLarge, RequestTimeout, SidecarError
from kafka_sidecar._exchange import RESPONSE_HEADERS, Exchange, HttpRequest, Reply
from kafka_sidecar._http.guard import RETRY_AFTER, ConcurrencySlots
from kafka_sidecar._http.problems import problem_response

log = logging.getLogger(__name__)


async def read_body(request: Request, limit: int, chunk_timeout: float | None = None) -> bytes:
    """The whole body, refusing more than ``limit`` bytes (413) without reading past it, and a body whose
    next piece takes longer than ``chunk_timeout`` seconds to arrive (408)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds the limit of {limit} bytes", field="body")
    chunks: list[bytes] = []
    size = 0
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(anext(stream), chunk_timeout)
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise RequestTimeout(
                f"the request body stalled: nothing arrived for {chunk_timeout:g}s ({size} bytes read)", field="body"
            ) from None
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes", field="body")
        chunks.append(chunk)
    return b"".join(chunks)


def to_http_request(request: Request, route: str, body: bytes) -> HttpRequest:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return HttpRequest(
        method=request.method,
        path=request.url.path,
        route=route,
        path_params={k: str(v) for k, v in request.path_params.items()},
        query=dict(request.query_params),
        headers=headers,
        body=body,
        client_host=request.client.host if request.client else None,
    )


def to_response(reply: Reply, exchange: Exchange) -> Response:
    headers = dict(reply.headers)
    extra = exchange.stash.get(RESPONSE_HEADERS)
    if extra:
        headers.update(extra)
    if reply.status == 204 or (reply.body is None and reply.status >= 200 and reply.status != 200):
        return Response(status_code=reply.status, headers=headers)
    content = reply.body if isinstance(reply.body, bytes) else _json.dumps(reply.body)
    return Response(content, reply.status, headers=headers, media_type=reply.media_type)


def chain_endpoint(
    chain: Chain, route: str, server: ServerConfig, slots: ConcurrencySlots
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint that runs ``chain`` for every request to ``route``.

    The body is read first (bounded in size and in time); only then is a concurrency slot taken, so a
    client that never finishes its upload holds no slot.
    """

    async def endpoint(request: Request) -> Response:
        try:
            body = await read_body(request, server.max_body_bytes, server.body_read_timeout_s)
        except ClientDisconnect:
            log.debug("client %s went away before its request body to %s arrived", request.client, route)
            return Response(status_code=400)  # nobody reads it; Starlette needs a response
        except SidecarError as exc:
            return problem_response(exc, {"Connection": "close"})
        if not slots.try_acquire():
            return problem_response(slots.busy(), RETRY_AFTER)
        try:
            exchange = Exchange("http", route, to_http_request(request, route, body))
            reply = await chain(exchange)
            return to_response(reply, exchange)
        finally:
            slots.release()

    return endpoint
