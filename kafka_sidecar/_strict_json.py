"""Strict JSON request bodies: UTF-8 only, no duplicate keys, bounded nesting, no lone surrogates.

Two C-backed parsers decide a body that is fine, each catching what the other lets through: jiter (Rust)
refuses duplicate keys (``catch_duplicate_keys``), NaN/Infinity, lone surrogates, invalid UTF-8 and
nesting past 200 levels; msgspec (C) refuses numbers too large for a double (``1e400``, which jiter reads
as infinity), lone surrogates, invalid UTF-8 and deep nesting, and builds the value. A body either refuses
is parsed again by the exact parser below (the C scanner of :mod:`json` with a duplicate check per
object, a float hook and a search for surrogate escapes), which accepts or refuses it as before and
names the field: so a refusal of the fast parsers never changes an answer, it only costs time. Parsing a
produce request of 100 x 1 KiB records: 139 µs with the exact parser, 82 µs with both fast ones
(docs/benchmarks.md, "Produce path, fourth round").
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator

import jiter
import msgspec

from kafka_sidecar._errors import RequestError, UnsupportedMediaType, ValidationFailed

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([^\";\s]+)", re.IGNORECASE)


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    built = dict(pairs)
    if len(built) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return built


def _no_constant(name: str) -> object:
    raise ValidationFailed(f"{name} is not a JSON number", field="body")


class _HugeNumber(ValueError):
    """A number too large for a double: the body is decoded again, leniently, to name its field."""


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _HugeNumber(text)
    return value


_decoder = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant, parse_float=_finite_float)
_lenient_decoder = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def check_json_media_type(content_type: str) -> None:
    """415 unless ``content_type`` is a JSON media type (``application/json``, ``*/*+json``) in UTF-8."""
    media = content_type.split(";", 1)[0].strip().lower()
    if not media:
        raise UnsupportedMediaType(
            "a request body needs a Content-Type; use application/json", field="Content-Type", v2_error_code=41501
        )
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(
            f"content type {media!r} is not JSON; use application/json", field="Content-Type", v2_error_code=41501
        )
    charset = _CHARSET.search(content_type)
    if charset is not None and charset.group(1).lower() not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(
            f"charset {charset.group(1)!r} is not accepted; JSON bodies are UTF-8",
            field="Content-Type",
            v2_error_code=41501,
        )


def parse_json_body(raw: bytes, content_type: str) -> object:
    """``raw`` parsed as strict JSON (see the module docstring); every problem is a 4xx naming the field."""
    check_json_media_type(content_type)
    try:
        jiter.from_json(raw, allow_inf_nan=False, catch_duplicate_keys=True, cache_mode="keys")
        return msgspec.json.decode(raw)
    except (ValueError, RecursionError, msgspec.MsgspecError):
        return _parse_exactly(raw)


def _parse_exactly(raw: bytes) -> object:
    """The exact parser: accepts what is strict JSON, else raises a 4xx naming the field."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(f"request body is not valid UTF-8 at byte {exc.start}", field="body") from exc
    huge = False
    try:
        parsed: object = _decoder.decode(text)
    except _HugeNumber:
        parsed, huge = _lenient_decoder.decode(text), True
    except DuplicateKey as exc:
        key = exc.key.encode("utf-8", "backslashreplace").decode("utf-8")
        raise RequestError(f"duplicate key {key!r} in the JSON body", field=key) from exc
    except RecursionError as exc:
        raise ValidationFailed("request body is nested too deeply", field="body") from exc
    except ValueError as exc:
        raise ValidationFailed(f"request body is not valid JSON: {exc}", field="body") from exc
    if huge or _SURROGATE_ESCAPE.search(raw):
        problem = _unrepresentable(parsed)
        if problem is not None:
            where, what = problem
            shown = where.encode("utf-8", "backslashreplace").decode("utf-8") or "body"
            raise ValidationFailed(what, field=shown)
    return parsed


def _unrepresentable(value: object) -> tuple[str, str] | None:
    """The path of the first string (or key) with a lone surrogate or number too large for a double."""
    for path, item in _leaves(value):
        if isinstance(item, float) and math.isinf(item):
            return path, "the number is too large to represent"
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return path, "a string holds a lone UTF-16 surrogate (not valid Unicode)"
    return None


def _leaves(value: object) -> Iterator[tuple[str, object]]:
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else str(key)
                yield child_path, key
                stack.append((child_path, child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", child) for index, child in enumerate(item))
        else:
            yield path, item
