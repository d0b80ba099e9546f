"""JSON in C (kafka_sidecar._json): what is spliced as is, and how replies are written."""

from __future__ import annotations

import base64
import json

import msgspec
import pytest

from kafka_sidecar._json import RawJson, base64_texts, dumps, is_json_text, json_texts

TEXTS = pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"a": [1, 2.5, "\xc3\xa9"], "b": null}', True),
        (b' "text" ', True),
        (b"12345678901234567890123", True),
        (b'"\xff"', False),  # not UTF-8: msgspec alone would skip over it
        (b'"\xed\xa0\x80"', False),  # an encoded surrogate is not UTF-8 either
        (b"NaN", False),  # the stdlib parser accepts it; the serde decides
        (b'"\\ud800"', False),  # a lone surrogate escape
        (b"\xef\xbb\xbf{}", False),  # a BOM
        (b'{"a": 1} x', False),
        (b"", False),
        (b"[" * 5000 + b"]" * 5000, False),
    ],
)


@TEXTS
def test_only_plain_utf8_json_text_is_spliced(data: bytes, expected: bool) -> None:
    assert is_json_text(data) is expected


@TEXTS
def test_a_list_checked_at_once_is_spliced_only_when_every_text_would_be(data: bytes, expected: bool) -> None:
    texts = [b'{"n": 1}', data, b"2"]
    split = json_texts(texts)
    assert (split is not None) is expected
    if split is not None:
        assert [bytes(part) for part in split] == [text.strip() for text in texts]


@pytest.mark.parametrize(
    "texts",
    [[b'1,"', b'"'], [b"[1", b"2]"], [b"1,2", b"3"], [b'{"a":', b"1}"], [b"", b"1"]],
    ids=["string across", "array across", "two in one", "object across", "empty"],
)
def test_texts_that_are_valid_only_joined_are_not_taken(texts: list[bytes]) -> None:
    assert json_texts(texts) is None
    assert not all(map(is_json_text, texts))


def test_an_empty_list_checks_nothing() -> None:
    assert json_texts([]) == []


def test_dumps_splices_raw_json_and_writes_utf8() -> None:
    body = dumps({"value": RawJson(b'{"n": 1}'), "text": "é", "big": 2**70})
    assert body == '{"value":{"n": 1},"text":"é","big":1180591620717411303424}'.encode()
    assert json.loads(body)["value"] == {"n": 1}


def test_a_lone_surrogate_echoed_back_is_escaped_not_a_failure() -> None:
    assert dumps({"field": "\ud800", "value": RawJson(b"[1]")}) == b'{"field":"\\ud800","value":[1]}'


@pytest.mark.parametrize("text", ["plain", "\ud800"], ids=["msgspec", "stdlib fallback"])
def test_bytes_are_written_as_padded_standard_base64(text: str) -> None:
    """Active consumer binary replies hand the record bytes to the encoder (base64 in C)."""
    data = bytes(range(256)) + b"\xff\xfe"
    written = json.loads(dumps({"value": data, "topic": text, "raw": RawJson(b"[1]")}))
    assert written["value"] == base64.b64encode(data).decode("ascii")
    assert written["raw"] == [1]


def test_structs_are_written_by_the_stdlib_fallback_too() -> None:
    """A consumed key decoded by a serde into text with a lone surrogate still gets a reply."""

    class Entry(msgspec.Struct):
        key: object
        value: object

    assert dumps([Entry("\ud800", RawJson(b"[1]"))]) == b'[{"key":"\\ud800","value":[1]}]'


def test_base64_texts_are_what_the_encoder_writes_for_bytes() -> None:
    data = [bytes(range(256)), b"", b"\xff", b"ab", b"abc"]
    written = base64_texts(data)
    assert written is not None, "pybase64 is a test dependency"
    assert dumps(written) == dumps(data)
