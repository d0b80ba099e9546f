"""The one place errors become HTTP: RFC 9457 ``application/problem+json`` bodies.

Each body carries the RFC fields (``type``, ``title``, ``status``, ``detail``), a stable ``code``,
the offending ``field`` when there is one, and — so REST Proxy v2 clients read it unchanged — the v2
pair ``error_code`` (five digits) and ``message``.

The body is the same whatever the caller accepts; only its Content-Type is negotiated from ``Accept``
(:func:`error_media_type`): ``application/problem+json`` unless the caller asks for a REST Proxy
media type (``application/vnd.kafka...+json``: answered ``application/vnd.kafka.v2+json``, what v2
clients read) or plain ``application/json`` without also accepting ``application/problem+json``.
"""

from __future__ import annotations

import json
import logging

from starlette.responses import Response

from kafka_sidecar._errors import SidecarError, ValidationFailed
from kafka_sidecar._exchange import Exchange, Reply
from kafka_sidecar._http.media import V2_MEDIA_TYPE

PROBLEM_MEDIA_TYPE = "application/problem+json"
V2_ERROR_MEDIA_TYPE = V2_MEDIA_TYPE
PROBLEM_TYPE_BASE = "https://kafka-sidecar.dev/problems/"
log = logging.getLogger(__name__)


def problem_body(exc: BaseException) -> tuple[int, dict[str, object]]:
    """Status and body for any exception; unexpected ones become a 500 with no internals shown."""
    if isinstance(exc, RecursionError):  # only input nested past any sane depth gets here
        exc = ValidationFailed("the request is nested too deeply", field="body")
    if isinstance(exc, SidecarError):
        status, code, title, detail = exc.status, exc.code, exc.title, exc.detail
        v2_code = exc.v2_error_code or status * 100
        body: dict[str, object] = {
            "type": PROBLEM_TYPE_BASE + code,
            "title": title,
            "status": status,
            "detail": detail,
            "code": code,
        }
        if exc.field is not None:
            body["field"] = exc.field
        body.update(exc.extra)
    else:
        log.error("unexpected error", exc_info=exc)
        status, v2_code = 500, 50001
        body = {
            "type": PROBLEM_TYPE_BASE + "internal-error",
            "title": "Internal error",
            "status": 500,
            "detail": "an unexpected error occurred; see the sidecar log",
            "code": "internal-error",
        }
    body["error_code"] = v2_code
    body["message"] = body["detail"]
    return status, body


def error_media_type(accept: str) -> str:
    """The Content-Type of an error for a caller sending ``accept`` (highest ``q`` first, then order)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept.split(",")):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media and quality > 0:
            ranked.append((-quality, index, media.lower()))
    for _, _, media in sorted(ranked):
        if media == PROBLEM_MEDIA_TYPE:
            return PROBLEM_MEDIA_TYPE
        if media.startswith("application/vnd.kafka") and media.endswith("+json"):
            return V2_ERROR_MEDIA_TYPE
        if media == "application/json":
            return "application/json"
    return PROBLEM_MEDIA_TYPE


def problem_reply(exchange: Exchange, exc: Exception) -> Reply:
    """The HTTP chains' error boundary."""
    status, body = problem_body(exc)
    accept = exchange.request.headers.get("accept", "") if exchange.request is not None else ""
    return Reply(status=status, body=body, media_type=error_media_type(accept))


def problem_response(exc: BaseException, headers: dict[str, str] | None = None, accept: str = "") -> Response:
    status, body = problem_body(exc)
    return Response(
        json.dumps(body, separators=(",", ":")).encode(),
        status,
        headers=headers,
        media_type=error_media_type(accept),
    )
