"""A fast "is this instance valid?" check compiled once from a JSON Schema (Draft 2020-12 subset).

The validation middleware runs it on every request; only when it answers ``False`` does jsonschema
walk the instance to name the failing field, so a valid request (the common case) never pays for
jsonschema's error machinery. The compiled check must never accept what jsonschema rejects: it
understands a small set of keywords exactly (``type``, ``properties``, ``required``,
``additionalProperties``, ``items``, ``minItems``/``maxItems``, ``minLength``/``maxLength``,
``minimum``/``maximum`` and their exclusive forms, ``pattern``, ``enum``/``const`` of strings,
``oneOf``/``anyOf``/``allOf``, boolean schemas) plus pure annotations, and :func:`compile_check`
returns ``None`` for any schema using something else, so the caller uses jsonschema alone. On what
``json.loads`` produces (dict, list, str, int, float, bool, None) every check answers exactly as
jsonschema does (``tests/unit/test_validation_compile.py`` compares them); on other Python types a
check may be stricter, and jsonschema then has the last word.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Check = Callable[[object], bool]

ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "title",
        "description",
        "examples",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
        "contentEncoding",
        "contentMediaType",
        "contentSchema",
    }
)


class _Unsupported(Exception):
    """The schema uses a keyword (or a keyword value) this compiler does not handle exactly."""


def _is_integer(value: object) -> bool:
    if type(value) is int:
        return True
    return isinstance(value, float) and value.is_integer()


def _is_number(value: object) -> bool:
    return type(value) is int or type(value) is float


_TYPES: dict[str, Check] = {
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "string": lambda v: type(v) is str,
    "integer": _is_integer,
    "number": _is_number,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
}


def compile_check(schema: object) -> Check | None:
    """A function answering whether an instance is valid, or ``None`` when the schema is out of scope."""
    try:
        return _compile(schema)
    except _Unsupported:
        return None


def _always(value: object) -> bool:
    return True


def _never(value: object) -> bool:
    return False


def _compile(schema: object) -> Check:
    if schema is True:
        return _always
    if schema is False:
        return _never
    if not isinstance(schema, Mapping):
        raise _Unsupported(repr(schema))
    checks: list[Check] = []
    handled = set(ANNOTATIONS)
    for build in (_type, _object, _array, _string, _number, _enum, _combined):
        handled |= build(schema, checks)
    if set(schema) - handled:
        raise _Unsupported(", ".join(sorted(set(schema) - handled)))
    return _all(checks)


def _all(checks: Sequence[Check]) -> Check:
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    parts = tuple(checks)

    def every(value: object) -> bool:
        for check in parts:  # noqa: SIM110 - a plain loop is faster than all() over a generator here
            if not check(value):
                return False
        return True

    return every


def _type(schema: Mapping[str, Any], checks: list[Check]) -> set[str]:
    if "type" not in schema:
        return set()
    kinds = schema["type"]
    names = [kinds] if isinstance(kinds, str) else kinds
    if not isinstance(names, list) or not names or any(name not in _TYPES for name in names):
        raise _Unsupported(f"type {kinds!r}")
    options = tuple(_TYPES[name] for name in names)
    if len(options) == 1:
        checks.append(options[0])
    else:
        checks.append(lambda v: any(option(v) for option in options))
    return {"type"}


def _object(schema: Mapping[str, Any], checks: list[Check]) -> set[str]:
    keys = {"properties", "required", "additionalProperties"} & set(schema)
    if not keys:
        return keys
    raw_properties = schema.get("properties", {})
    required = schema.get("required", [])
    if not isinstance(raw_properties, Mapping) or not isinstance(required, list):
        raise _Unsupported("properties/required")
    if not all(isinstance(name, str) for name in required):
        raise _Unsupported("required")
    properties = {name: _compile(sub) for name, sub in raw_properties.items()}
    needed = tuple(required)
    extra = schema.get("additionalProperties", True)
    extra_check = None if extra is True else _compile(extra)

    def check(value: object) -> bool:
        if type(value) is not dict:
            return True
        for name in needed:
            if name not in value:
                return False
        for name, item in value.items():
            sub = properties.get(name)
            if sub is None:
                if extra_check is not None and not extra_check(item):
                    return False
            elif not sub(item):
                return False
        return True

    checks.append(check)
    return keys


def _bound(schema: Mapping[str, Any], name: str, kinds: tuple[type, ...]) -> Any:
    value = schema.get(name)
    if value is not None and (type(value) not in kinds):
        raise _Unsupported(f"{name} {value!r}")
    return value


def _array(schema: Mapping[str, Any], checks: list[Check]) -> set[str]:
    keys = {"items", "minItems", "maxItems"} & set(schema)
    if not keys:
        return keys
    items = _compile(schema["items"]) if "items" in schema else None
    low = _bound(schema, "minItems", (int,))
    high = _bound(schema, "maxItems", (int,))

    def check(value: object) -> bool:
        if type(value) is not list:
            return True
        if (low is not None and len(value) < low) or (high is not None and len(value) > high):
            return False
        if items is not None:
            for item in value:
                if not items(item):
                    return False
        return True

    checks.append(check)
    return keys


def _string(schema: Mapping[str, Any], checks: list[Check]) -> set[str]:
    keys = {"minLength", "maxLength", "pattern"} & set(schema)
    if not keys:
        return keys
    low = _bound(schema, "minLength", (int,))
    high = _bound(schema, "maxLength", (int,))
    pattern = _bound(schema, "pattern", (str,))
    try:
        search = re.compile(pattern).search if pattern is not None else None
    except re.error as exc:
        raise _Unsupported(f"pattern {pattern!r}") from exc

    def check(value: object) -> bool:
        if type(value) is not str:
            return True
        if (low is not None and len(value) < low) or (high is not None and len(value) > high):
            return False
        return search is None or search(value) is not None

    checks.append(check)
    return keys


def _number(schema: Mapping[str, Any], checks: list[Check]) -> set[str]:
    names = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
    keys = set(names) & set(schema)
    if not keys:
        return keys
    low, high, low_x, high_x = (_bound(schema, name, (int, float)) for name in names)

    def check(value: object) -> bool:
        if not _is_number(value):
            return True
        number: float = value  # type: ignore[assignment]
        return not (
            (low is not None and number < low)
            or (high is not None and number > high)
            or (low_x is not None and number <= low_x)
            or (high_x is not None and number >= high_x)
        )

    checks.append(check)
    return keys


def _enum(schema: Mapping[str, Any], checks: list[Check]) -> set[str]:
    keys = {"enum", "const"} & set(schema)
    if not keys:
        return keys
    allowed: list[object] = list(schema.get("enum", []) if "enum" in schema else [])
    if "enum" in schema and not isinstance(schema["enum"], list):
        raise _Unsupported("enum")
    # Strings only: jsonschema's equality for numbers, booleans and containers has subtleties.
    if not all(type(item) is str for item in allowed) or ("const" in schema and type(schema["const"]) is not str):
        raise _Unsupported("enum/const of non-strings")
    if "enum" in schema:
        options = frozenset(allowed)
        checks.append(lambda v: type(v) is str and v in options)
    if "const" in schema:
        const = schema["const"]
        checks.append(lambda v: v == const and type(v) is str)
    return keys


def _combined(schema: Mapping[str, Any], checks: list[Check]) -> set[str]:
    keys = {"oneOf", "anyOf", "allOf"} & set(schema)
    for name in keys:
        subschemas = schema[name]
        if not isinstance(subschemas, list) or not subschemas:
            raise _Unsupported(name)
        parts = tuple(_compile(sub) for sub in subschemas)
        checks.append(_all(parts) if name == "allOf" else _any(parts) if name == "anyOf" else _one(parts))
    return keys


def _any(parts: tuple[Check, ...]) -> Check:
    return lambda value: any(part(value) for part in parts)


def _one(parts: tuple[Check, ...]) -> Check:
    # Exact only because every compiled check is exact on json.loads output (never stricter there).
    return lambda value: sum(1 for part in parts if part(value)) == 1
