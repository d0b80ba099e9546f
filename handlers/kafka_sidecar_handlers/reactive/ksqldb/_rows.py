"""Reading ksqlDB's delimited query stream: the metadata line, row lines, in-stream errors, tokens.

A row becomes a JSON object keyed by column name, in the body shape the reactive consumer already
sends (so ``value`` is ``{"USERID": "u1", "PAGEID": "p3"}``). Values keep the JSON types ksqlDB wrote
for each column type (``columnTypes``: numbers for INTEGER/BIGINT/DOUBLE/DECIMAL, strings, booleans,
arrays, objects for MAP/STRUCT, base64 strings for BYTES), so nothing is converted per row. Decoding
and encoding are the C-backed ``json`` module's work.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

PARTITION_COLUMN = "ROWPARTITION"
OFFSET_COLUMN = "ROWOFFSET"
_FROM = re.compile(r"\bFROM\b", re.IGNORECASE)
_STRING = re.compile(r"'(?:[^']|'')*'")


class StreamError(Exception):
    """ksqlDB ended the stream with an error element (``{"@type", "error_code", "message"}``)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"ksqlDB stream error {code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class QueryHeader:
    query_id: str
    column_names: tuple[str, ...]
    column_types: tuple[str, ...]

    def describe(self) -> dict[str, object]:
        return {
            "queryId": self.query_id,
            "columnNames": list(self.column_names),
            "columnTypes": list(self.column_types),
        }


def _error(data: dict[str, object]) -> StreamError:
    code = data.get("error_code")
    return StreamError(code if isinstance(code, int) else 50000, str(data.get("message", "")))


def parse_header(line: str | bytes) -> QueryHeader:
    data = json.loads(line)
    if not isinstance(data, dict) or "error_code" in data:
        raise _error(data if isinstance(data, dict) else {})
    return QueryHeader(
        str(data.get("queryId", "")),
        tuple(str(n) for n in data.get("columnNames", ())),
        tuple(str(t) for t in data.get("columnTypes", ())),
    )


async def line_groups(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
    """The complete lines of each chunk as they arrive (a row split across chunks waits for its end)."""
    pending = b""
    async for chunk in chunks:
        pending += chunk
        if b"\n" not in chunk:
            continue
        *lines, pending = pending.split(b"\n")
        complete = [line for line in lines if line.strip()]
        if complete:
            yield complete
    if pending.strip():
        yield [pending]


def parse_rows(lines: list[bytes]) -> tuple[list[list[object]], StreamError | None]:
    """The rows of a group of lines (one C-level JSON parse for all), and the in-stream error that ended it."""
    items = json.loads(b"[" + b",".join(lines) + b"]")
    rows: list[list[object]] = []
    for item in items:
        if isinstance(item, list):
            rows.append(item)
        elif isinstance(item, dict) and "error_code" in item:
            return rows, _error(item)
    return rows, None


def parse_line(line: str | bytes) -> list[object] | None:
    """A row's values; None for lines that are not rows (tokens, blank keep-alives). Errors raise."""
    if not line:
        return None
    data = json.loads(line)
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and "error_code" in data:
        raise _error(data)
    return None  # {"continuationToken": ...} / {"consistencyToken": ...}


def with_source_offsets(sql: str) -> str:
    """The push query with ``ROWPARTITION, ROWOFFSET`` appended to its select list (resume: source-offsets)."""
    masked = _STRING.sub(lambda m: "_" * len(m.group(0)), sql)
    found = _FROM.search(masked)
    if found is None:
        raise ValueError("the push query has no FROM")
    head = sql[: found.start()].rstrip()
    return f"{head}, {PARTITION_COLUMN}, {OFFSET_COLUMN} {sql[found.start() :]}"


def rows_from_pairs(names: tuple[str, ...], rows: list[list[object]]) -> list[dict[str, object]]:
    return [dict(zip(names, values, strict=False)) for values in rows]
