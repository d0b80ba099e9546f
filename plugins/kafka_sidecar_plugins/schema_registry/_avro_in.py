"""JSON to Avro datum: a converter compiled once per schema, validating as it converts.

The mapping is described in :mod:`kafka_sidecar_plugins.schema_registry._avro_json`. Paths inside the value
(``.lines[2].qty``) are built only when a value does not fit, so the common case pays nothing for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kafka_sidecar_plugins.schema_registry._avro_json import (
    NOT_LOGICAL,
    PRIMITIVES,
    AvroMismatch,
    Names,
    base64_bytes,
    branch_name,
    logical_in,
    resolve,
    type_name,
)

Converter = Callable[[object], object]
_INT_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def compile_from_json(schema: Any, names: Names) -> Converter:
    """A function turning JSON data into a fastavro datum for ``schema``; raises :class:`AvroMismatch`."""
    return _Compiler(names).build(schema)


def _prefixed(exc: AvroMismatch, segment: str) -> AvroMismatch:
    exc.path = f"{segment}{exc.path}"
    return exc


def _primitive(kind: str) -> Converter:
    if kind == "null":

        def null(v: object) -> object:
            if v is None:
                return None
            raise AvroMismatch("", f"must be null, got {type_name(v)}")

        return null
    if kind == "boolean":

        def boolean(v: object) -> object:
            if type(v) is bool:
                return v
            raise AvroMismatch("", f"must be a boolean, got {type_name(v)}")

        return boolean
    if kind in _INT_RANGE:
        low, high = _INT_RANGE[kind]

        def integer(v: object) -> object:
            if type(v) is int and low <= v <= high:
                return v
            if type(v) is int:
                raise AvroMismatch("", f"{v} is out of range for {kind}")
            raise AvroMismatch("", f"must be an integer ({kind}), got {type_name(v)}")

        return integer
    if kind in ("float", "double"):

        def number(v: object) -> object:
            if type(v) is float:
                return v
            if type(v) is int:
                return float(v)
            raise AvroMismatch("", f"must be a number ({kind}), got {type_name(v)}")

        return number
    if kind == "string":

        def string(v: object) -> object:
            if type(v) is str:
                return v
            raise AvroMismatch("", f"must be a string, got {type_name(v)}")

        return string
    if kind == "bytes":
        return lambda v: base64_bytes(v, "")
    raise ValueError(f"unsupported Avro type {kind!r}")


class _Compiler:
    def __init__(self, names: Names) -> None:
        self._names = names
        self._named: dict[str, Converter] = {}

    def build(self, schema: Any) -> Converter:
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return _primitive(schema)
            if schema not in self._named:
                self._named[schema] = self._late(schema)  # placeholder while a recursive type compiles
                self._named[schema] = self.build(self._names[schema])
            return self._named[schema]
        if isinstance(schema, list):
            return self._union(schema)
        logical = schema.get("logicalType")
        kind = schema["type"]
        if logical is not None:
            base = self._plain(schema)
            return self._logical(schema, str(logical), base)
        return self._plain(schema) if isinstance(kind, str) and kind not in PRIMITIVES else self.build(kind)

    def _late(self, name: str) -> Converter:
        return lambda v: self._named[name](v)

    def _plain(self, schema: Any) -> Converter:
        kind = schema["type"]
        if kind in ("record", "error"):
            return self._record(schema)
        if kind == "enum":
            symbols = frozenset(schema["symbols"])
            listed = list(schema["symbols"])

            def enum(v: object) -> object:
                if type(v) is str and v in symbols:
                    return v
                raise AvroMismatch("", f"must be one of {listed}, got {v!r}")

            return enum
        if kind == "array":
            return self._array(self.build(schema["items"]))
        if kind == "map":
            return self._map(self.build(schema["values"]))
        if kind == "fixed":
            size = schema["size"]

            def fixed(v: object) -> object:
                data = base64_bytes(v, "")
                if len(data) != size:
                    raise AvroMismatch("", f"fixed {schema['name']} takes {size} bytes, got {len(data)}")
                return data

            return fixed
        return self.build(kind)

    def _logical(self, schema: Any, logical: str, base: Converter) -> Converter:
        def convert(v: object) -> object:
            converted = logical_in(schema, logical, v, "")
            return base(v) if converted is NOT_LOGICAL else converted

        return convert

    def _record(self, schema: Any) -> Converter:
        name = schema["name"]
        fields: list[tuple[str, Converter, bool, object]] = []
        known = frozenset(f["name"] for f in schema["fields"])

        def record(v: object) -> object:
            if type(v) is not dict:
                raise AvroMismatch("", f"must be an object (record {name}), got {type_name(v)}")
            if not known.issuperset(v):
                extra = next(k for k in v if k not in known)
                raise AvroMismatch(f".{extra}", f"is not a field of record {name}")
            out: dict[str, object] = {}
            for field, convert, has_default, default in fields:
                if field in v:
                    value = v[field]
                elif has_default:
                    value = default
                else:
                    raise AvroMismatch(f".{field}", "is required (no default in the schema)")
                try:
                    out[field] = convert(value)
                except AvroMismatch as exc:
                    raise _prefixed(exc, f".{field}") from None
            return out

        self._named.setdefault(name, record)  # recursive references to this record resolve to it
        fields.extend((f["name"], self.build(f["type"]), "default" in f, f.get("default")) for f in schema["fields"])
        return record

    @staticmethod
    def _array(items: Converter) -> Converter:
        def array(v: object) -> object:
            if type(v) is not list:
                raise AvroMismatch("", f"must be an array, got {type_name(v)}")
            try:
                return [items(x) for x in v]
            except AvroMismatch:
                for index, x in enumerate(v):  # error path only: find which item
                    try:
                        items(x)
                    except AvroMismatch as exc:
                        raise _prefixed(exc, f"[{index}]") from None
                raise

        return array

    @staticmethod
    def _map(values: Converter) -> Converter:
        def mapping(v: object) -> object:
            if type(v) is not dict:
                raise AvroMismatch("", f"must be an object (Avro map), got {type_name(v)}")
            out: dict[str, object] = {}
            for key, x in v.items():
                try:
                    out[key] = values(x)
                except AvroMismatch as exc:
                    raise _prefixed(exc, f"[{key!r}]") from None
            return out

        return mapping

    def _union(self, branches: list[Any]) -> Converter:
        has_null = "null" in branches
        options = ", ".join(branch_name(resolve(b, self._names)) for b in branches)
        compiled: list[tuple[Converter, str | None]] = []
        by_key: dict[str, tuple[Converter, str | None]] = {}
        for branch in branches:
            resolved = resolve(branch, self._names)
            named = isinstance(resolved, dict) and resolved["type"] in ("record", "error", "enum", "fixed")
            entry = (self.build(branch), str(resolved["name"]) if named else None)
            full = branch_name(resolved)
            by_key.setdefault(full, entry)
            by_key.setdefault(full.rsplit(".", 1)[-1], entry)
            if branch != "null":
                compiled.append(entry)

        def union(v: object) -> object:
            if v is None:
                if has_null:
                    return None
                raise AvroMismatch("", "must not be null")
            if type(v) is dict and len(v) == 1:
                ((key, inner),) = v.items()
                entry = by_key.get(key)
                if entry is not None:
                    try:
                        datum = entry[0](inner)
                    except AvroMismatch as exc:
                        raise _prefixed(exc, f".{key}") from None
                    return datum if entry[1] is None else (entry[1], datum)
            problems = []
            for convert, tag in compiled:
                try:
                    datum = convert(v)
                except AvroMismatch as exc:
                    problems.append(exc.message)
                    continue
                return datum if tag is None else (tag, datum)
            raise AvroMismatch("", f"fits no branch of the union [{options}] ({'; '.join(problems)})")

        return union
