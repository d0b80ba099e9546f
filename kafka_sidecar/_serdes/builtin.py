"""The schema-less formats: ``json``, ``binary`` (base64 in JSON) and ``string`` (UTF-8).

Registered through the public ``kafka_sidecar_register_serdes`` hook, like any plugin's formats.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from kafka_sidecar._errors import RecordUndecodable, ValidationFailed
from kafka_sidecar._hookspecs import hookimpl
from kafka_sidecar._serdes.base import RecordSerializer, Role, SerializeContext, reject_schema

_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _encode_json(data: object, field: str) -> bytes | None:
    if data is None:
        return None
    try:
        return _compact(data).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"cannot be written as JSON: {exc}", field=field) from exc


def _encode_binary(data: object, field: str) -> bytes | None:
    if data is None:
        return None
    if not isinstance(data, str):
        raise ValidationFailed("binary data must be a base64 string", field=field)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed(f"is not valid base64: {exc}", field=field) from exc


def _encode_string(data: object, field: str) -> bytes | None:
    if data is None:
        return None
    if not isinstance(data, str):
        raise ValidationFailed(f"string format takes a JSON string, got {type(data).__name__}", field=field)
    return data.encode("utf-8")


@dataclass(frozen=True, slots=True)
class PlainSerde:
    """A format without a schema: one encoder, one decoder."""

    name: str
    encoder: Callable[[object, str], bytes | None]
    decoder: Callable[[bytes], object]
    uses_schema: bool = False
    _serializer: RecordSerializer = field(init=False, repr=False, compare=False)
    """The same for every batch (it depends on the encoder alone), so built once."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_serializer", RecordSerializer(self.encoder))

    async def serializer(self, context: SerializeContext) -> RecordSerializer:
        reject_schema(context, self.name)
        return self._serializer

    async def decode(self, data: bytes | None, topic: str, role: Role) -> object:
        if data is None:
            return None
        try:
            return self.decoder(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RecordUndecodable(
                f"{role} of a record in {topic!r} is not valid {self.name}: {exc}", field=role
            ) from exc


def _decode_json(data: bytes) -> object:
    return json.loads(data)


def _decode_binary(data: bytes) -> object:
    return base64.b64encode(data).decode("ascii")


def _decode_string(data: bytes) -> object:
    return data.decode("utf-8")


JSON = PlainSerde("json", _encode_json, _decode_json)
BINARY = PlainSerde("binary", _encode_binary, _decode_binary)
STRING = PlainSerde("string", _encode_string, _decode_string)


@hookimpl
def kafka_sidecar_register_serdes(register: Callable[[object], None]) -> None:
    for serde in (JSON, BINARY, STRING):
        register(serde)
