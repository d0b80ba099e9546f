"""Avro datum <-> JSON, directed by a parsed (fastavro) schema.

JSON to Avro validates as it converts and reports the path inside the value (``.items[2].price``):

- ``bytes``/``fixed`` are base64 strings (as the sidecar's ``binary`` format);
- ``decimal`` takes a JSON string or number; ``date``/``time-*``/``timestamp-*`` take ISO-8601 strings
  or the underlying number; ``uuid`` a UUID string;
- a union takes either the plain value (the first branch it fits) or the Avro JSON wrapper
  ``{"<branch name>": value}``; ``null`` needs no wrapper.

Avro to JSON is the reverse: logical values become strings (decimal, ISO-8601 dates and times,
UUIDs), bytes become base64, non-null union values are wrapped as ``{"<branch>": value}`` unless
wrappers are stripped.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import uuid
from collections.abc import Mapping
from typing import Any

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
Names = Mapping[str, Any]


class AvroMismatch(ValueError):
    """A JSON value does not fit its Avro schema; ``path`` is where inside the value."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def branch_name(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return "union"
    kind = schema["type"]
    if kind in ("record", "enum", "fixed", "error"):
        return str(schema["name"])
    return str(kind) if isinstance(kind, str) else branch_name(kind)


def resolve(schema: Any, names: Names) -> Any:
    while isinstance(schema, str) and schema not in PRIMITIVES:
        schema = names[schema]
    return schema


def needs_conversion(schema: Any, names: Names, seen: set[str] | None = None) -> bool:
    """False when fastavro's plain output is already what :func:`to_json` would return."""
    seen = set() if seen is None else seen
    if isinstance(schema, str):
        if schema in PRIMITIVES:
            return schema == "bytes"
        if schema in seen:
            return False
        seen.add(schema)
        return needs_conversion(names[schema], names, seen)
    if isinstance(schema, list):
        return any(b != "null" for b in schema)
    if schema.get("logicalType") or schema["type"] in ("fixed", "bytes"):
        return True
    kind = schema["type"]
    if kind in ("record", "error"):
        seen.add(schema["name"])
        return any(needs_conversion(f["type"], names, seen) for f in schema["fields"])
    if kind == "array":
        return needs_conversion(schema["items"], names, seen)
    if kind == "map":
        return needs_conversion(schema["values"], names, seen)
    if kind == "enum":
        return False
    return needs_conversion(kind, names, seen)


def base64_bytes(value: object, path: str) -> bytes:
    if not isinstance(value, str):
        raise AvroMismatch(path, f"bytes must be a base64 string, got {type_name(value)}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AvroMismatch(path, f"is not valid base64: {exc}") from exc


NOT_LOGICAL = object()


def logical_in(schema: Any, logical: str, value: object, path: str) -> object:
    """The Python value fastavro expects for a logical type, or NOT_LOGICAL to use the base type's rules."""
    try:
        if logical == "decimal":
            if isinstance(value, str | int) and not isinstance(value, bool):
                return decimal.Decimal(value)
            if isinstance(value, float):
                return decimal.Decimal(str(value))
            raise AvroMismatch(path, f"decimal must be a string or number, got {type_name(value)}")
        if logical == "uuid":
            if not isinstance(value, str):
                raise AvroMismatch(path, f"uuid must be a string, got {type_name(value)}")
            return str(uuid.UUID(value))
        if isinstance(value, str):
            if logical == "date":
                return dt.date.fromisoformat(value)
            if logical.startswith("time-"):
                return dt.time.fromisoformat(value)
            if logical.startswith("timestamp-"):
                moment = dt.datetime.fromisoformat(value)
                return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
            if logical.startswith("local-timestamp-"):
                return dt.datetime.fromisoformat(value).replace(tzinfo=None)
    except (ValueError, decimal.InvalidOperation) as exc:
        raise AvroMismatch(path, f"is not a valid {logical}: {exc}") from exc
    return NOT_LOGICAL  # the underlying type's converter takes it (epoch numbers, unknown logical types)


# --- Avro datum -> JSON ----------------------------------------------------------------------------


def to_json(schema: Any, datum: object, names: Names, wrap_unions: bool) -> object:
    schema = resolve(schema, names)
    if isinstance(schema, str):
        return base64.b64encode(datum).decode("ascii") if isinstance(datum, bytes) else datum
    if isinstance(schema, list):
        return _union_out(schema, datum, names, wrap_unions)
    if schema.get("logicalType") is not None:
        converted = _logical_out(datum)
        if converted is not NOT_LOGICAL:
            return converted
    kind = schema["type"]
    if kind in ("record", "error"):
        assert isinstance(datum, dict)
        return {f["name"]: to_json(f["type"], datum[f["name"]], names, wrap_unions) for f in schema["fields"]}
    if kind == "array":
        assert isinstance(datum, list)
        return [to_json(schema["items"], item, names, wrap_unions) for item in datum]
    if kind == "map":
        assert isinstance(datum, dict)
        return {k: to_json(schema["values"], v, names, wrap_unions) for k, v in datum.items()}
    if kind == "enum":
        return datum
    if kind == "fixed":
        assert isinstance(datum, bytes)
        return base64.b64encode(datum).decode("ascii")
    return to_json(kind, datum, names, wrap_unions)


def _logical_out(datum: object) -> object:
    if isinstance(datum, decimal.Decimal | uuid.UUID):
        return str(datum)
    if isinstance(datum, dt.date | dt.time):  # datetime is a date
        return datum.isoformat()
    return NOT_LOGICAL


_PY_TYPES: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "int": (int,),
    "long": (int,),
    "float": (float,),
    "double": (float,),
    "string": (str, uuid.UUID),
    "bytes": (bytes, decimal.Decimal),
    "array": (list,),
    "map": (dict,),
}


def _union_out(branches: list[Any], datum: object, names: Names, wrap: bool) -> object:
    if datum is None:
        return None
    if isinstance(datum, tuple):  # fastavro's return_named_type: (full name, value) for named branches
        name, inner = datum
        value = to_json(names[name], inner, names, wrap)
        return {name: value} if wrap else value
    for branch in branches:
        resolved = resolve(branch, names)
        base = resolved if isinstance(resolved, str) else resolved["type"]
        if not isinstance(base, str):
            continue
        if isinstance(resolved, dict) and resolved.get("logicalType"):
            matches = isinstance(datum, dt.date | dt.time | decimal.Decimal | uuid.UUID)
        else:
            matches = isinstance(datum, _PY_TYPES.get(base, ())) and not (base != "boolean" and isinstance(datum, bool))
        if matches:
            value = to_json(branch, datum, names, wrap)
            return {base: value} if wrap else value
    return to_json_fallback(datum)


def to_json_fallback(datum: object) -> object:
    converted = _logical_out(datum)
    if converted is not NOT_LOGICAL:
        return converted
    if isinstance(datum, bytes):
        return base64.b64encode(datum).decode("ascii")
    return datum
