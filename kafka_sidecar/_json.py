"""JSON written in C (msgspec): replies and request bodies to backends, with already-valid JSON spliced.

Replies may carry :data:`RawJson` values (``msgspec.Raw``): JSON text already known to be valid (a
consumed record's value) is written into the reply as it is, never decoded and re-encoded; ``bytes``
are written as base64 text (standard alphabet, padded), in C. Request
bodies are parsed by :mod:`kafka_sidecar._strict_json` (duplicate keys, lone surrogates and the like are
4xx there).
"""

from __future__ import annotations

import base64
import json

import msgspec

RawJson = msgspec.Raw
"""Valid JSON text written into an encoded reply as it is."""

_encode = msgspec.json.Encoder().encode
_skip = msgspec.json.Decoder(type=msgspec.Raw).decode


def _plain(value: object) -> object:
    """What the stdlib encoder writes for msgspec's own types: bytes as base64 text (as msgspec does)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    return json.loads(bytes(value))  # type: ignore[call-overload]


_ascii = json.JSONEncoder(separators=(",", ":"), default=_plain).encode


def dumps(body: object) -> bytes:
    """Compact UTF-8 JSON (non-ASCII written as UTF-8, not escaped). A string holding a lone surrogate
    (echoed back from a request) cannot be UTF-8: then the whole body is written with ``\\u`` escapes."""
    try:
        return _encode(body)
    except (UnicodeEncodeError, msgspec.EncodeError, TypeError):
        return _ascii(body).encode("ascii")


def is_json_text(data: bytes) -> bool:
    """True when ``data`` is one UTF-8 JSON text that can be spliced into a reply as it is: checked in C
    without building any object. False for anything else, including what the stdlib parser would still
    accept (NaN, lone surrogate escapes, a BOM, UTF-16): callers then decode it the usual way."""
    try:
        if not data.isascii():  # ASCII is UTF-8 (a C scan, no copy); else a full check
            data.decode("utf-8")  # msgspec does not check the UTF-8 of strings it only skips over
        _skip(data)
    except (UnicodeDecodeError, msgspec.DecodeError, RecursionError):
        return False
    return not data.startswith(b"\xef\xbb\xbf")
