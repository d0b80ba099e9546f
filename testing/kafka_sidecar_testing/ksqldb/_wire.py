"""ksqlDB's response byte formats, written as its writers do (source files in confluentinc/ksql named per class).

* delimited ``application/vnd.ksqlapi.delimited.v1`` (``DelimitedQueryStreamResponseWriter``): metadata line,
  one JSON array line per row, an error object line ends the stream, no terminator otherwise;
* JSON array ``application/json`` (``JsonQueryStreamResponseWriter``): ``[`` metadata ``,`` row ... ``]``;
* StreamedRow ``application/vnd.ksql.v1+json`` (``JsonStreamedRowResponseWriter``): ``[{"header":...}``,
  ``,\\n{"row":{"columns":[...]}}`` per row, push queries end with ``,\\n{"finalMessage":...}``, then ``]``;
* the old ``/query`` (``QueryStreamWriter``): ``[`` header ``,\\n``, each row ``,\\n``, a bare ``\\n`` while idle,
  ``{"finalMessage":...}]\\n`` at the end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from kafka_sidecar_testing.ksqldb._sql import Column

DELIMITED = "application/vnd.ksqlapi.delimited.v1"
V1_JSON = "application/vnd.ksql.v1+json"
JSON = "application/json"


def dumps(value: object) -> bytes:
    """Jackson's compact output: no spaces, UTF-8."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def error_body(code: int, message: str, **extra: object) -> dict[str, object]:
    """A ``KsqlErrorMessage`` (``@type`` first, as Jackson's type info writes it)."""
    body: dict[str, object] = {"@type": "generic_error", "error_code": code, "message": message}
    body.update(extra)
    return body


def statement_error(message: str, statement_text: str, entities: list[object] | None = None) -> dict[str, object]:
    return {
        "@type": "statement_error",
        "error_code": 40001,
        "message": message,
        "statementText": statement_text,
        "entities": entities or [],
    }


@dataclass(frozen=True, slots=True)
class QueryMeta:
    query_id: str
    columns: tuple[Column, ...]
    pull: bool

    def metadata(self) -> dict[str, object]:
        return {
            "queryId": self.query_id,
            "columnNames": [c.name for c in self.columns],
            "columnTypes": [c.type for c in self.columns],
        }

    def schema(self) -> str:
        """``LogicalSchema.toString()``: pull queries keep `` KEY`` markers, push queries do not."""
        return ", ".join(f"`{c.name}` {c.type}" + (" KEY" if c.key and self.pull else "") for c in self.columns)


class Writer(Protocol):
    def header(self, meta: QueryMeta) -> bytes: ...

    def row(self, values: list[object]) -> bytes: ...

    def error(self, error: dict[str, object]) -> bytes: ...

    def end(self, final_message: str | None) -> bytes: ...


class DelimitedWriter:
    def header(self, meta: QueryMeta) -> bytes:
        return dumps(meta.metadata()) + b"\n"

    def row(self, values: list[object]) -> bytes:
        return dumps(values) + b"\n"

    def error(self, error: dict[str, object]) -> bytes:
        return dumps(error) + b"\n"

    def end(self, final_message: str | None) -> bytes:
        return b""  # writeCompletionMessage / writeLimitMessage are no-ops


class JsonArrayWriter:
    def header(self, meta: QueryMeta) -> bytes:
        return b"[" + dumps(meta.metadata())

    def row(self, values: list[object]) -> bytes:
        return b"," + dumps(values)

    def error(self, error: dict[str, object]) -> bytes:
        return b"," + dumps(error)

    def end(self, final_message: str | None) -> bytes:
        return b"]"


class StreamedRowWriter:
    def __init__(self) -> None:
        self._pull = False

    def header(self, meta: QueryMeta) -> bytes:
        self._pull = meta.pull
        return b"[" + dumps({"header": {"queryId": meta.query_id, "schema": meta.schema()}})

    def row(self, values: list[object]) -> bytes:
        return b",\n" + dumps({"row": {"columns": values}})

    def error(self, error: dict[str, object]) -> bytes:
        return b",\n" + dumps({"errorMessage": error})

    def end(self, final_message: str | None) -> bytes:
        if final_message is None or self._pull:  # pull queries are buffered and carry no final message
            return b"]"
        return b",\n" + dumps({"finalMessage": final_message}) + b"]"


class OldQueryWriter:
    """``POST /query`` with ``v1+json`` or ``json``: each element followed by ``,\\n``."""

    def header(self, meta: QueryMeta) -> bytes:
        return b"[" + dumps({"header": {"queryId": meta.query_id, "schema": meta.schema()}}) + b",\n"

    def row(self, values: list[object]) -> bytes:
        return dumps({"row": {"columns": values}}) + b",\n"

    def error(self, error: dict[str, object]) -> bytes:
        return b"\n" + dumps({"errorMessage": error}) + b",\n"

    def end(self, final_message: str | None) -> bytes:
        return (dumps({"finalMessage": final_message}) if final_message else b"") + b"]\n"


def negotiate(accept: str | None, *, compatibility: bool = False) -> str:
    """The response media type ksqlDB's ``QueryStreamHandler`` picks for an Accept header.

    ``/query-stream``: none or ``*/*`` -> delimited. The old ``/query`` (compatibility): delimited only when asked.
    """
    offered = (DELIMITED, V1_JSON, JSON)
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept or "").split(",")):
        pieces = [p.strip() for p in part.split(";")]
        media = pieces[0].lower()
        if not media:
            continue
        quality = 1.0
        for param in pieces[1:]:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        ranked.append((-quality, index, media))
    for _, _, media in sorted(ranked):
        if media in offered:
            return media
        if media in ("*/*", "application/*"):
            return DELIMITED
    if not ranked:
        return V1_JSON if compatibility else DELIMITED
    return ""


def writer_for(media_type: str, *, old_query: bool = False) -> Writer:
    if media_type == DELIMITED:
        return DelimitedWriter()
    if old_query:
        return OldQueryWriter()
    if media_type == V1_JSON:
        return StreamedRowWriter()
    return JsonArrayWriter()
