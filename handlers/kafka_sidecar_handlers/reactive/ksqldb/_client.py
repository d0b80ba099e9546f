"""A small ksqlDB client over httpx: ``/info``, ``/ksql``, ``/query-stream`` (streamed lines), ``/close-query``.

* ``http://`` with HTTP/2 uses h2c with prior knowledge (what ksqlDB's own Java client does); ``https://``
  negotiates h2 by ALPN. ``http_version: '1.1'`` uses chunked HTTP/1.1 instead.
* Query responses are read as groups of complete lines (:func:`line_groups`), never as one row per
  chunk: HTTP/2 frames and chunks coalesce and split.
* Errors become the sidecar's error tree: ksqlDB's 4xx bodies :class:`UpstreamRejected` (its ``message`` and
  ``error_code`` carried), 503, 401/403 (the sidecar's credentials) and connection failures
  :class:`UpstreamUnavailable`, timeouts
  :class:`UpstreamTimeout`.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx

from kafka_sidecar.plugin import SidecarError, TooManyRequests, UpstreamRejected, UpstreamTimeout, UpstreamUnavailable
from kafka_sidecar_handlers.reactive.ksqldb._config import KsqlDbConnection
from kafka_sidecar_handlers.reactive.ksqldb._rows import line_groups

DELIMITED = "application/vnd.ksqlapi.delimited.v1"
V1_JSON = "application/vnd.ksql.v1+json"


def rejection(status: int, body: object, what: str) -> SidecarError:
    """The sidecar error for a ksqlDB error answer (``{"@type", "error_code", "message", ...}``)."""
    error = body if isinstance(body, dict) else {}
    message = str(error.get("message") or f"ksqlDB answered {status} to {what}")
    code = error.get("error_code")
    extra: dict[str, object] = {"ksqldb_error_code": code if isinstance(code, int) else status * 100}
    if isinstance(error.get("statementText"), str):
        extra["statement"] = error["statementText"]
    if status in (401, 403):  # the sidecar's credentials, not the caller's request
        return UpstreamUnavailable(f"ksqlDB refused the sidecar's credentials: {message}", extra=extra)
    if status == 429:
        return TooManyRequests(f"ksqlDB: {message}", extra=extra)
    if status >= 500:
        return UpstreamUnavailable(f"ksqlDB: {message}", extra=extra)
    return UpstreamRejected(message, extra=extra)


def _ssl_context(connection: KsqlDbConnection) -> ssl.SSLContext | bool:
    if not connection.server.startswith("https://"):
        return True
    context = ssl.create_default_context(cafile=connection.ca_file)
    if connection.client_certfile and connection.client_keyfile:
        context.load_cert_chain(connection.client_certfile, connection.client_keyfile)
    return context


class KsqlDbClient:
    """One connection pool to one ksqlDB server."""

    def __init__(self, connection: KsqlDbConnection) -> None:
        self.connection = connection
        self.base = connection.server.rstrip("/")
        http2 = connection.http_version == "2"
        https = connection.server.startswith("https://")
        auth = None
        password = connection.password()
        if connection.basic_auth_user and password is not None:
            auth = httpx.BasicAuth(connection.basic_auth_user, password)
        timeout = httpx.Timeout(
            connection.request_timeout_ms / 1000, connect=connection.connect_timeout_ms / 1000, pool=None
        )
        self._client = httpx.AsyncClient(
            http1=not http2 or https,  # h2c needs prior knowledge: HTTP/2 only over http://
            http2=http2,
            verify=_ssl_context(connection),
            auth=auth,
            timeout=timeout,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def info(self) -> dict[str, Any]:
        response = await self._send("GET", "/info", None, "GET /info")
        body: dict[str, Any] = response.json().get("KsqlServerInfo", {})
        return body

    async def ksql(self, statements: str, properties: Mapping[str, str]) -> list[dict[str, Any]]:
        payload = {"ksql": statements, "streamsProperties": dict(properties)}
        response = await self._send("POST", "/ksql", payload, "the statement")
        entities: list[dict[str, Any]] = response.json()
        return entities

    async def close_query(self, query_id: str) -> bool:
        try:
            response = await self._client.post(f"{self.base}/close-query", json={"queryId": query_id}, timeout=5)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    @asynccontextmanager
    async def stream(
        self, sql: str, properties: Mapping[str, object], accept: str = DELIMITED, *, read_timeout: float | None = None
    ) -> AsyncIterator[AsyncIterator[list[bytes]]]:
        """``POST /query-stream``; yields its lines in groups. ``read_timeout`` None: wait for rows forever."""
        payload = {"sql": sql, "properties": dict(properties)}
        timeout = httpx.Timeout(
            self.connection.request_timeout_ms / 1000,
            connect=self.connection.connect_timeout_ms / 1000,
            read=read_timeout,
            pool=None,
        )
        request = self._client.build_request(
            "POST", f"{self.base}/query-stream", json=payload, headers={"accept": accept}, timeout=timeout
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(f"ksqlDB did not answer in time: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"ksqlDB is unreachable: {type(exc).__name__}: {exc}") from exc
        try:
            if response.status_code != 200:
                raw = await response.aread()
                raise rejection(response.status_code, _json(raw), "the query")
            yield line_groups(response.aiter_bytes())
        finally:
            await response.aclose()

    async def _send(self, method: str, path: str, payload: object, what: str) -> httpx.Response:
        try:
            response = await self._client.request(
                method, f"{self.base}{path}", json=payload, headers={"accept": V1_JSON}
            )
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(f"ksqlDB did not answer {what} in time: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"ksqlDB is unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise rejection(response.status_code, _json(response.content), what)
        return response


def _json(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return None
