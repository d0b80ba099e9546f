"""The strict JSON parser's fast path (jiter + msgspec) answers exactly as the exact parser does.

A body the fast parsers accept must be one the exact parser accepts, with the same value (types
included: ``1.0`` stays a float, a 400-digit integer an exact int); a body either refuses goes to the
exact parser, which names the field. Checked on generated JSON and on every refusal the exact parser makes.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_sidecar._errors import RequestError
from kafka_sidecar._strict_json import _parse_exactly, parse_json_body

JSON = "application/json"


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (``1 == 1.0`` and ``0.0 == -0.0`` are not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return math.copysign(1, a) == math.copysign(1, b) and a == b
    return bool(a == b)


def outcome(parse: Any, raw: bytes) -> tuple[str, Any]:
    try:
        return "ok", parse(raw)
    except RequestError as exc:
        return type(exc).__name__, (exc.field, str(exc))


def check(raw: bytes) -> None:
    fast, exact = outcome(lambda b: parse_json_body(b, JSON), raw), outcome(_parse_exactly, raw)
    assert fast[0] == exact[0], (raw[:200], fast, exact)
    if fast[0] == "ok":
        assert same(fast[1], exact[1]), raw[:200]
    else:
        assert fast[1] == exact[1]


texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=8) | st.sampled_from(["\ud800", "a\udfffb", "é😀"])
numbers = (
    st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([10**400, -0.0, 1e308, 5e-324])
)
values = st.recursive(
    st.none() | st.booleans() | numbers | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(values, st.booleans())
def test_generated_json_gets_the_exact_parsers_answer(value: object, ascii_only: bool) -> None:
    check(json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":1,"a":2}',
        b'{"x":{"b":[{"c":1,"c":1}]}}',
        b'{"\\u0061":1,"a":2}',  # the same key written two ways
        rb'{"records":[{"headers":{"h":"\ud800"}}]}',
        rb'{"v":"\udc00"}',
        b'{"v":1e400}',
        b'{"a":{"b":[1,-1E+400]}}',
        b'{"v":1' + b"0" * 400 + b".5}",
        b'{"v":1' + b"0" * 400 + b"}",
        b'{"v":' + b"9" * 5000 + b"}",
        b'{"v":NaN}',
        b'{"v":Infinity}',
        b'{"v":"\xff"}',
        b'"\xed\xa0\x80"',
        b"[" * 150 + b"]" * 150,
        b"[" * 250 + b"]" * 250,  # past jiter's depth, within the exact parser's: accepted
        b"[" * 100_000,
        b"\xef\xbb\xbf{}",
        b"{} x",
        b'{"a":1,}',
        b'"tab\tin a string"',
        b"01",
        b' {"n": -0, "f": -0.0, "e": 1E2, "s": "\\u0000"} ',
    ],
)
def test_refusals_and_edges_get_the_exact_parsers_answer(raw: bytes) -> None:
    check(raw)
