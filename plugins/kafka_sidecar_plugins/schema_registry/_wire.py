"""The Confluent wire format: magic byte 0, a big-endian int32 schema id, then the body.

Protobuf bodies start with the message-index path: a zig-zag varint count followed by zig-zag varint
indexes, with the common ``[0]`` written as a single ``0`` byte.
"""

from __future__ import annotations

import struct

MAGIC = 0
_HEADER = struct.Struct(">bI")
HEADER_SIZE = _HEADER.size


class WireFormatError(ValueError):
    """The bytes are not in the Confluent wire format."""


def frame(schema_id: int, body: bytes) -> bytes:
    return _HEADER.pack(MAGIC, schema_id) + body


def header(schema_id: int) -> bytes:
    return _HEADER.pack(MAGIC, schema_id)


def unframe(data: bytes) -> tuple[int, memoryview]:
    """``(schema_id, body)``; raises :class:`WireFormatError`."""
    if len(data) < HEADER_SIZE:
        raise WireFormatError(f"{len(data)} bytes is too short for the schema-registry wire format (needs 5+)")
    magic, schema_id = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise WireFormatError(f"first byte is {magic}, not the schema-registry magic byte 0")
    return schema_id, memoryview(data)[HEADER_SIZE:]


def _zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


def _unzigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_message_indexes(indexes: tuple[int, ...]) -> bytes:
    if indexes == (0,):
        return b"\x00"
    return _varint(_zigzag(len(indexes))) + b"".join(_varint(_zigzag(i)) for i in indexes)


def _read_varint(data: memoryview, pos: int) -> tuple[int, int]:
    shift = 0
    result = 0
    while True:
        if pos >= len(data):
            raise WireFormatError("truncated varint in the protobuf message-index list")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireFormatError("varint too long in the protobuf message-index list")


def decode_message_indexes(body: memoryview) -> tuple[tuple[int, ...], memoryview]:
    """``(indexes, rest)``: an empty list on the wire means ``[0]``."""
    count_raw, pos = _read_varint(body, 0)
    count = _unzigzag(count_raw)
    if count < 0 or count > 100:
        raise WireFormatError(f"implausible protobuf message-index count {count}")
    if count == 0:
        return (0,), body[pos:]
    indexes = []
    for _ in range(count):
        raw, pos = _read_varint(body, pos)
        indexes.append(_unzigzag(raw))
    return tuple(indexes), body[pos:]
