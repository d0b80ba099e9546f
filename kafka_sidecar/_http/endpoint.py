"""Adapting Starlette requests to exchanges, and replies back to responses."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from kafka_sidecar._chain import Chain
from kafka_sidecar._errors import PayloadTooLarge, SidecarError
from kafka_sidecar._exchange import RESPONSE_HEADERS, Exchange, HttpRequest, Reply
from kafka_sidecar._http.problems import problem_response

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing more than ``limit`` bytes (413) without reading past it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds the limit of {limit} bytes", field="body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
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
    content = reply.body if isinstance(reply.body, bytes) else _encode(reply.body).encode("utf-8")
    return Response(content, reply.status, headers=headers, media_type=reply.media_type)


def chain_endpoint(chain: Chain, route: str, max_body_bytes: int) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint that runs ``chain`` for every request to ``route``."""

    async def endpoint(request: Request) -> Response:
        try:
            body = await read_body(request, max_body_bytes)
        except SidecarError as exc:
            return problem_response(exc)
        exchange = Exchange("http", route, to_http_request(request, route, body))
        reply = await chain(exchange)
        return to_response(reply, exchange)

    return endpoint
