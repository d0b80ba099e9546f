"""The test server's HTTP routes (ksqlDB's ``ServerVerticle`` subset), served over h2c and HTTP/1.1 by Hypercorn.

Test switches (:class:`Switches`, also ``POST /_test/switches`` for a server in another process):
``ready`` (False: every ksqlDB route answers 503/50302 as while INITIALIZING), ``framing`` (``row``: one
write per row, as Vert.x does; ``coalesced``: everything read in one poll in one write; ``split``: bytes
cut at arbitrary places), ``inject_error`` (the next push query writes ksqlDB's in-stream error element
after ``after_rows`` rows and ends).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from kafka_sidecar_testing.ksqldb._engine import Engine, StatementError
from kafka_sidecar_testing.ksqldb._sql import Select, SqlError, parse
from kafka_sidecar_testing.ksqldb._wire import (
    V1_JSON,
    QueryMeta,
    Writer,
    dumps,
    error_body,
    negotiate,
    statement_error,
    writer_for,
)

SPLIT_BYTES = 7
log = logging.getLogger(__name__)
VERSION = "0.29.0-kafka-sidecar-test-server"


@dataclass
class InjectedError:
    message: str
    after_rows: int = 0
    code: int = 50000


@dataclass
class Switches:
    ready: bool = True
    framing: str = "row"
    inject_error: InjectedError | None = None
    keepalive_ms: int = 500
    users: dict[str, str] = field(default_factory=dict)
    """Basic-auth users; empty: no authentication (ksqlDB's default)."""


def _json(body: object, status: int = 200, media_type: str = "application/json") -> Response:
    return Response(dumps(body), status, media_type=media_type)


def _error(status: int, code: int, message: str) -> Response:
    return _json(error_body(code, message), status)


class KsqlApp:
    def __init__(self, engine: Engine, switches: Switches, cluster_id: str) -> None:
        self.engine = engine
        self.switches = switches
        self.cluster_id = cluster_id
        self.queries_started = 0

    def app(self) -> Starlette:
        def guarded(endpoint: Any) -> Any:
            async def run(request: Request) -> Response:
                refused = self._refuse(request)
                if refused is not None:
                    return refused
                result: Response = await endpoint(request)
                return result

            return run

        return Starlette(
            routes=[
                Route("/chc/ready", self.chc_ready, methods=["GET"]),
                Route("/chc/live", self.chc_live, methods=["GET"]),
                Route("/_test/switches", self.set_switches, methods=["POST"]),
                Route("/info", guarded(self.info), methods=["GET"]),
                Route("/healthcheck", guarded(self.healthcheck), methods=["GET"]),
                Route("/ksql", guarded(self.ksql), methods=["POST"]),
                Route("/query-stream", guarded(self.query_stream), methods=["POST"]),
                Route("/query", guarded(self.query), methods=["POST"]),
                Route("/close-query", guarded(self.close_query), methods=["POST"]),
            ]
        )

    def _refuse(self, request: Request) -> Response | None:
        users = self.switches.users
        if users:
            header = request.headers.get("authorization", "")
            try:
                user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
            except ValueError:
                user, password = "", ""
            if not header.startswith("Basic ") or users.get(user) != password:
                return _error(401, 40100, "Unauthorized")
        if not self.switches.ready:
            return _error(503, 50302, "KSQL is not yet ready to serve requests.")
        return None

    # -- simple routes ---------------------------------------------------------------------------

    async def chc_ready(self, request: Request) -> Response:
        return _json({"isHealthy": self.switches.ready}, 200 if self.switches.ready else 503)

    async def chc_live(self, request: Request) -> Response:
        return _json({"isHealthy": True})

    async def set_switches(self, request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        if "ready" in body:
            self.switches.ready = bool(body["ready"])
        if "framing" in body:
            self.switches.framing = str(body["framing"])
        if "inject_error" in body:
            spec = body["inject_error"]
            self.switches.inject_error = InjectedError(**spec) if spec else None
        return _json({"ready": self.switches.ready, "framing": self.switches.framing})

    async def info(self, request: Request) -> Response:
        return _json(
            {
                "KsqlServerInfo": {
                    "version": VERSION,
                    "kafkaClusterId": self.cluster_id,
                    "ksqlServiceId": self.engine.service_id,
                    "serverStatus": "RUNNING",
                }
            },
            media_type=V1_JSON,
        )

    async def healthcheck(self, request: Request) -> Response:
        details = {name: {"isHealthy": True} for name in ("metastore", "kafka", "commandRunner")}
        return _json({"isHealthy": True, "details": details}, media_type=V1_JSON)

    async def _body(self, request: Request, required: str) -> dict[str, Any] | Response:
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            return _error(400, 40000, f"Invalid JSON in request: {exc}")
        if not isinstance(body, dict) or not isinstance(body.get(required), str):
            return _error(400, 40000, f"Invalid JSON in request: Missing required creator property '{required}'")
        return body

    async def ksql(self, request: Request) -> Response:
        body = await self._body(request, "ksql")
        if isinstance(body, Response):
            return body
        properties = dict(body.get("streamsProperties") or {})
        entities: list[object] = []
        try:
            statements = parse(body["ksql"])
        except SqlError as exc:
            return _json(statement_error(str(exc), body["ksql"]), 400)
        for parsed in statements:
            try:
                entities.append(await self.engine.execute(parsed, properties))
            except (StatementError, SqlError) as exc:
                return _json(statement_error(str(exc), parsed.text, entities), 400)
            except Exception as exc:
                log.exception("test ksqlDB: statement failed")
                return _error(500, 50000, f"The server encountered an internal error: {exc}")
        return _json(entities, media_type=V1_JSON)

    async def close_query(self, request: Request) -> Response:
        body = await self._body(request, "queryId")
        if isinstance(body, Response):
            return body
        closed = self.engine.transient.pop(body["queryId"], None)
        if closed is None:
            return _error(400, 40000, f"No query with id {body['queryId']}")
        closed.set()
        return Response(b"", 200)

    # -- queries ---------------------------------------------------------------------------------

    async def query_stream(self, request: Request) -> Response:
        body = await self._body(request, "sql")
        if isinstance(body, Response):
            return body
        media = negotiate(request.headers.get("accept"))
        if not media:
            return _error(406, 40600, "Unsupported Accept header")
        return await self._run_query(body["sql"], dict(body.get("properties") or {}), media, old=False)

    async def query(self, request: Request) -> Response:
        body = await self._body(request, "ksql")
        if isinstance(body, Response):
            return body
        media = negotiate(request.headers.get("accept"), compatibility=True)
        if not media:
            return _error(406, 40600, "Unsupported Accept header")
        return await self._run_query(body["ksql"], dict(body.get("streamsProperties") or {}), media, old=True)

    async def _run_query(self, sql: str, properties: dict[str, Any], media: str, *, old: bool) -> Response:
        self.queries_started += 1  # every query request, accepted or not
        try:
            statements = parse(sql)
            if len(statements) != 1 or not isinstance(statements[0].statement, Select):
                raise SqlError("Expected exactly one SELECT statement")
            select = statements[0].statement
            assert isinstance(select, Select)
            source = self.engine.sources.get(select.source)
            if source is None:
                raise StatementError(f"{select.source} does not exist.")
            projection = self.engine.projection(source, select)
        except (SqlError, StatementError) as exc:
            return _json(statement_error(str(exc), sql if sql.rstrip().endswith(";") else sql + ";"), 400)
        pull = not select.emit_changes
        meta = QueryMeta(self.engine.new_query_id(source.name, pull=pull), projection.columns, pull)
        writer = writer_for(media, old_query=old)
        content_type = media
        if pull:
            rows = await self.engine.pull(projection)
            if select.limit is not None:
                rows = rows[: select.limit]
            chunks = [writer.header(meta), *(writer.row(r) for r in rows), writer.end(None)]
            return Response(b"".join(chunks), 200, media_type=content_type)
        closed = asyncio.Event()
        self.engine.transient[meta.query_id] = closed
        stream = self._push(meta, writer, projection, properties, closed, select.limit, old)
        return StreamingResponse(self._frames(stream), 200, media_type=content_type)

    async def _push(
        self,
        meta: QueryMeta,
        writer: Writer,
        projection: Any,
        properties: dict[str, Any],
        closed: asyncio.Event,
        limit: int | None,
        old: bool,
    ) -> AsyncIterator[list[bytes]]:
        """Groups of writes: each group is what one poll produced (the framing decides how they are sent)."""
        injected, self.switches.inject_error = self.switches.inject_error, None
        sent = 0
        batches = self.engine.push(projection, properties, closed, self.switches.keepalive_ms)
        try:
            await anext(batches)  # the reader is positioned before the header goes out
            yield [writer.header(meta)]
            if limit == 0:
                yield [writer.end("Limit Reached")]
                return
            async for rows in batches:
                if not rows:
                    if old:
                        yield [b"\n"]  # QueryStreamWriter's keep-alive / disconnect probe
                    continue
                writes: list[bytes] = []
                for row in rows:
                    if injected is not None and sent >= injected.after_rows:
                        writes.append(writer.error(error_body(injected.code, injected.message)))
                        writes.append(writer.end(None))
                        yield writes
                        return
                    writes.append(writer.row(row))
                    sent += 1
                    if limit is not None and sent >= limit:
                        writes.append(writer.end("Limit Reached"))
                        yield writes
                        return
                yield writes
            yield [writer.end("Query Completed")]
        finally:
            self.engine.transient.pop(meta.query_id, None)
            await batches.aclose()

    async def _frames(self, groups: AsyncIterator[list[bytes]]) -> AsyncIterator[bytes]:
        async with contextlib.aclosing(groups):  # type: ignore[type-var]
            async for writes in groups:
                framing = self.switches.framing
                if framing == "row":
                    for write in writes:
                        if write:
                            yield write
                            await asyncio.sleep(0)  # let the transport send it as its own frame
                elif framing == "coalesced":
                    yield b"".join(writes)
                else:  # "split": rows cut across frames
                    data = b"".join(writes)
                    for start in range(0, len(data), SPLIT_BYTES):
                        yield data[start : start + SPLIT_BYTES]
                        await asyncio.sleep(0)  # each piece its own frame
