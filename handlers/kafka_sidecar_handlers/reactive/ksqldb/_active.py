"""``POST /ksqldb/active`` (``use: ksqldb-query``): a pull or push query answered as JSON rows.

The body is the Java sidecar's (``KsqlDbPullQueryRequest``): ``query`` (required; ``\\'`` is unescaped),
``queryType`` (``pull`` default, or ``push``), ``offset`` (``earliest``/``latest`` -> ``auto.offset.reset``),
``deserializationError`` (-> ``fail.on.deserialization.error``), ``tableScanEnable``
(-> ``ksql.query.pull.table.scan.enabled``). The answer is ``200 [{column: value}, ...]``.

Push queries are not terminated when their id arrives (the Java sidecar's bug): with a ``LIMIT`` the
answer comes when the query ends; without one, the rows arriving within ``push_timeout_ms`` are
returned and the query is closed. Errors: ksqlDB's 4xx -> 400 problem with its ``message`` and
``ksqldb_error_code``; ksqlDB unreachable or 503 -> 503; no answer in time -> 504.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Mapping

from kafka_sidecar.plugin import Exchange, PayloadTooLarge, Reply, Resources, UpstreamTimeout, ValidationFailed
from kafka_sidecar_handlers.reactive.ksqldb._client import KsqlDbClient, rejection
from kafka_sidecar_handlers.reactive.ksqldb._config import KsqlDbQueryConfig
from kafka_sidecar_handlers.reactive.ksqldb._rows import parse_header, parse_rows

_LIMIT = re.compile(r"\bLIMIT\s+\d+\s*;?\s*$", re.IGNORECASE)
_BODY_SCHEMA = {
    "type": "object",
    "required": ["query"],
    "properties": {
        "query": {"type": "string", "description": "A pull query, or a push query (EMIT CHANGES)."},
        "queryType": {"type": "string", "enum": ["pull", "push"], "default": "pull"},
        "offset": {"type": "string", "enum": ["earliest", "latest"]},
        "deserializationError": {"type": "boolean"},
        "tableScanEnable": {"type": "boolean"},
    },
}
_PROBLEM = {"application/problem+json": {"schema": {"type": "object"}}}


def parse_request(body: object) -> tuple[str, bool, dict[str, object]]:
    """(sql, push, properties) from the Java sidecar's request body; 422 names the wrong field."""
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object with a 'query'", field="body")
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ValidationFailed("'query' must be a non-empty string", field="query")
    kind = body.get("queryType", "pull")
    if kind not in ("pull", "push"):
        raise ValidationFailed(f"'queryType' must be 'pull' or 'push', got {kind!r}", field="queryType")
    properties: dict[str, object] = {}
    offset = body.get("offset")
    if offset is not None:
        if offset not in ("earliest", "latest"):
            raise ValidationFailed(f"'offset' must be 'earliest' or 'latest', got {offset!r}", field="offset")
        properties["auto.offset.reset"] = offset
    for key, prop in (
        ("deserializationError", "fail.on.deserialization.error"),
        ("tableScanEnable", "ksql.query.pull.table.scan.enabled"),
    ):
        value = body.get(key)
        if value is not None:
            if not isinstance(value, bool):
                raise ValidationFailed(f"'{key}' must be true or false", field=key)
            properties[prop] = value
    sql = query.replace("\\'", "'").strip()
    if not sql.endswith(";"):
        sql += ";"
    return sql, kind == "push", properties


class KsqlDbQuery:
    """Terminal of the ``/ksqldb/active`` route."""

    def __init__(self, config: KsqlDbQueryConfig, resources: Resources) -> None:
        self.config = config
        self._client: KsqlDbClient | None = None

    async def start(self) -> None:
        self._client = KsqlDbClient(self.config)

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def __call__(self, exchange: Exchange) -> Reply:
        sql, push, properties = parse_request(exchange.json_body())
        client = self._client or KsqlDbClient(self.config)
        self._client = client
        bounded = not push or _LIMIT.search(sql) is not None
        timeout = self.config.request_timeout_ms / 1000 if bounded else self.config.push_timeout_ms / 1000
        names: tuple[str, ...] = ()
        rows: list[dict[str, object]] = []
        query_id: str | None = None
        async with client.stream(sql, properties, read_timeout=None) as groups:
            try:
                async with asyncio.timeout(timeout):
                    first = await anext(groups)
                    header = parse_header(first[0])
                    names, query_id = header.column_names, header.query_id
                    pending = first[1:]
                    while True:
                        found, error = parse_rows(pending) if pending else ([], None)
                        if len(rows) + len(found) > self.config.max_rows:
                            raise PayloadTooLarge(f"the query returned more than max_rows={self.config.max_rows} rows")
                        rows.extend(dict(zip(names, values, strict=False)) for values in found)
                        if error is not None:
                            raise rejection(500, {"message": error.message, "error_code": error.code}, "the query")
                        pending = await anext(groups, [])
                        if not pending:
                            break
            except TimeoutError as exc:
                if bounded:
                    raise UpstreamTimeout(f"ksqlDB did not finish the query within {timeout:g}s") from exc
            except StopAsyncIteration as exc:
                raise UpstreamTimeout("ksqlDB ended the query without its header") from exc
            finally:
                if push and query_id is not None:
                    with contextlib.suppress(Exception):
                        await client.close_query(query_id)
        return Reply(status=200, body=rows)


def describe(route: str, method: str) -> Mapping[str, object] | None:
    """OpenAPI operation of ``POST /ksqldb/active``."""
    if method.upper() != "POST":
        return None
    rows = {"type": "array", "items": {"type": "object", "description": "column name -> value"}}
    return {
        "operationId": "ksqldb_active_query",
        "summary": "Run a ksqlDB pull query (or a bounded push query) and answer its rows as JSON objects",
        "tags": ["ksqldb"],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _BODY_SCHEMA}}},
        "responses": {
            "200": {"description": "rows", "content": {"application/json": {"schema": rows}}},
            "400": {"description": "ksqlDB rejected the query (message, ksqldb_error_code)", "content": _PROBLEM},
            "413": {"description": "more rows than max_rows", "content": _PROBLEM},
            "422": {"description": "a body field is wrong (field names it)", "content": _PROBLEM},
            "503": {"description": "ksqlDB unreachable or not ready", "content": _PROBLEM},
            "504": {"description": "ksqlDB did not answer in time", "content": _PROBLEM},
        },
    }
