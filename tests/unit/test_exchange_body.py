"""``HttpRequest.has_body`` and ``Exchange.json_body``: a body of whitespace is no body, as ``strip()`` says."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kafka_sidecar._exchange import Exchange, HttpRequest


def request(body: bytes) -> HttpRequest:
    return HttpRequest("POST", "/x", "/x", {}, {}, {"content-type": "application/json"}, body)


@given(st.binary(max_size=64) | st.text(" \t\r\n\x0b\x0c{}1", max_size=16).map(str.encode))
def test_has_body_agrees_with_strip(body: bytes) -> None:
    assert request(body).has_body is bool(body.strip())


@pytest.mark.parametrize(("body", "parsed"), [(b"", None), (b" \r\n\t", None), (b' {"a": 1}\n', {"a": 1})])
def test_a_blank_body_parses_to_none(body: bytes, parsed: object) -> None:
    assert Exchange("http", "/x", request(body)).json_body() == parsed
