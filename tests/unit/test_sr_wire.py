"""Confluent wire format: header and protobuf message indexes, checked against confluent-kafka's codec."""

from __future__ import annotations

import io

import pytest
from confluent_kafka.schema_registry.common.serde import SchemaId

from kafka_sidecar_plugins.schema_registry._wire import (
    WireFormatError,
    decode_message_indexes,
    encode_message_indexes,
    frame,
    unframe,
)


def test_frame_roundtrip_and_layout() -> None:
    data = frame(258, b"body")
    assert data == b"\x00\x00\x00\x01\x02body"
    schema_id, body = unframe(data)
    assert schema_id == 258
    assert bytes(body) == b"body"


@pytest.mark.parametrize("data", [b"", b"\x00\x00\x00\x01", b"\x01\x00\x00\x00\x01x", b'{"a":1}'])
def test_unframe_rejects_foreign_bytes(data: bytes) -> None:
    with pytest.raises(WireFormatError):
        unframe(data)


@pytest.mark.parametrize("indexes", [(0,), (1,), (0, 2), (3, 1, 70), (200,)])
def test_message_indexes_match_confluent(indexes: tuple[int, ...]) -> None:
    ours = encode_message_indexes(indexes)
    theirs = io.BytesIO()
    SchemaId._encode_varints(theirs, list(indexes), zigzag=True)
    assert ours == theirs.getvalue()
    assert SchemaId._read_index_array(io.BytesIO(ours), zigzag=True) == list(indexes)
    decoded, rest = decode_message_indexes(memoryview(ours + b"tail"))
    assert decoded == indexes
    assert bytes(rest) == b"tail"


def test_first_message_is_a_single_zero_byte() -> None:
    assert encode_message_indexes((0,)) == b"\x00"
    assert decode_message_indexes(memoryview(b"\x00rest"))[0] == (0,)


def test_truncated_indexes_are_an_error() -> None:
    with pytest.raises(WireFormatError):
        decode_message_indexes(memoryview(b"\x04\x80"))
