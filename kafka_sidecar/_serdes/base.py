"""The serializer seam: every record format (json, binary, string, avro, ...) is a :class:`Serde`.

Serialization is split so schema work happens once per batch: ``await serde.serializer(context)``
resolves whatever the format needs (a schema from the registry, say) and returns a plain function
that encodes one record's data. Decoding is per record and async, because a record may name a schema
not yet cached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

import msgspec

from kafka_sidecar._errors import PluginError, UnsupportedMediaType, ValidationFailed
from kafka_sidecar._extras import FORMAT_EXTRAS, install_hint
from kafka_sidecar._registry import Duplicate, Provider, Registry

Role = Literal["key", "value"]


@dataclass(frozen=True, slots=True)
class SchemaRef:
    """What a produce request said about the schema of its keys or values (all optional)."""

    schema: str | None = None
    schema_id: int | None = None
    version: int | None = None
    subject: str | None = None
    subject_strategy: str | None = None

    @property
    def given(self) -> bool:
        return any(v is not None for v in (self.schema, self.schema_id, self.version, self.subject))


class SerializeContext(msgspec.Struct, frozen=True):
    """What a format's serializer is asked for, once per role of every produce request: a frozen
    ``msgspec.Struct``, built in C (see :class:`~kafka_sidecar.plugin.HttpRequest`)."""

    topic: str
    role: Role
    schema: SchemaRef = SchemaRef()
    field_prefix: str = ""
    """Path of the schema fields in the request, for error messages (``valueSchema`` and so on)."""


@dataclass(frozen=True, slots=True)
class RecordSerializer:
    """Encodes one record's key or value. ``encode(data, field)`` raises ValidationFailed naming ``field``."""

    encode: Callable[[object, str], bytes | None]
    schema_id: int | None = None


class Serde(Protocol):
    """A record format."""

    @property
    def name(self) -> str:
        """Format name as used in ``keyFormat``/``valueFormat`` and v2 media types (lower-case)."""
        ...

    @property
    def uses_schema(self) -> bool:
        """True for schema-registry formats (they accept the schema fields of a produce request)."""
        ...

    async def serializer(self, context: SerializeContext) -> RecordSerializer: ...

    async def decode(self, data: bytes | None, topic: str, role: Role) -> object:
        """Bytes to JSON-ready data; raises :class:`~kafka_sidecar._errors.RecordUndecodable`."""
        ...


class SerdeRegistry:
    """Formats by name, frozen after assembly."""

    def __init__(self, duplicates: list[Duplicate] | None = None) -> None:
        self._registry: Registry[Serde] = Registry("record format", duplicates)

    def add(self, serde: object, provider: Provider) -> None:
        name = getattr(serde, "name", None)
        if not isinstance(name, str) or not all(
            callable(getattr(serde, attr, None)) for attr in ("serializer", "decode")
        ):
            raise PluginError(
                f"plugin {provider} in kafka_sidecar_register_serdes: {serde!r} is not a Serde "
                "(needs name, serializer() and decode())"
            )
        self._registry.add(name.lower(), serde, provider)  # type: ignore[arg-type]

    def get(self, name: str, *, field: str) -> Serde:
        found = self._registry.get(name.lower())
        if found is None:
            extra = FORMAT_EXTRAS.get(name.lower())
            hint = f" (format {name!r} needs an optional dependency: {install_hint(extra)})" if extra else ""
            raise UnsupportedMediaType(
                f"unknown format {name!r}; known formats: {', '.join(self._registry.names())}{hint}",
                field=field,
                v2_error_code=40601,
            )
        return found.spec

    def names(self) -> list[str]:
        return self._registry.names()

    def providers(self) -> list[tuple[str, Provider]]:
        """(format name, the plugin that registered it), by name."""
        return [(name, self._registry.get(name).provider) for name in self.names()]  # type: ignore[union-attr]

    def __iter__(self) -> Iterator[Serde]:
        return (registered.spec for registered in self._registry)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._registry


def reject_schema(context: SerializeContext, serde_name: str) -> None:
    """Schema fields sent with a format that has no schema are a mistake worth reporting."""
    if context.schema.given:
        raise ValidationFailed(
            f"format {serde_name!r} takes no schema; drop the schema fields or use avro, jsonschema or protobuf",
            field=f"{context.field_prefix}{context.role}Schema",
        )
