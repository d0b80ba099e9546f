"""One :class:`~kafka_sidecar._serdes.base.Serde` per schema type, all sharing the registry service."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kafka_sidecar.plugin import (
    RecordSerializer,
    RecordUndecodable,
    Role,
    SerializeContext,
    UpstreamUnavailable,
    ValidationFailed,
)
from kafka_sidecar_plugins.schema_registry._client import RegistryNotFound
from kafka_sidecar_plugins.schema_registry._format import SchemaFormat
from kafka_sidecar_plugins.schema_registry._service import SchemaTypeMismatch, ServiceBinding
from kafka_sidecar_plugins.schema_registry._wire import WireFormatError, header, unframe


@dataclass(frozen=True, slots=True)
class RegistrySerde:
    """``avro``, ``jsonschema`` or ``protobuf`` in the Confluent wire format."""

    fmt: SchemaFormat
    binding: ServiceBinding
    uses_schema: bool = True

    @property
    def name(self) -> str:
        return self.fmt.name

    async def serializer(self, context: SerializeContext) -> RecordSerializer:
        service = await self.binding.get()
        try:
            schema_id, parsed = await service.resolve(self.fmt, context)
        except (ValidationFailed, UpstreamUnavailable) as exc:
            if context.schema.given:
                raise
            # Nothing was said about this schema (keys, often): fine as long as every record's data is null.
            return RecordSerializer(_nulls_only(exc))
        prefix = header(schema_id)
        fmt = self.fmt

        def encode(data: object, field: str) -> bytes | None:
            if data is None:
                return None
            return prefix + fmt.encode(parsed, data, field)

        return RecordSerializer(encode, schema_id)

    async def decode(self, data: bytes | None, topic: str, role: Role) -> object:
        if data is None:
            return None
        where = f"{role} of a record in {topic!r}"
        try:
            schema_id, body = unframe(data)
        except WireFormatError as exc:
            raise RecordUndecodable(
                f"{where} is not {self.name} in the registry wire format: {exc}", field=role
            ) from exc
        service = await self.binding.get()
        try:
            parsed = await service.parsed_by_id(self.fmt, schema_id)
        except RegistryNotFound as exc:
            raise RecordUndecodable(
                f"{where} names schema id {schema_id}, unknown to the registry", field=role
            ) from exc
        except (SchemaTypeMismatch, ValueError) as exc:
            raise RecordUndecodable(f"{where}: {exc}", field=role) from exc
        except (UpstreamUnavailable, ValidationFailed):
            raise
        try:
            return self.fmt.decode(parsed, body)
        except Exception as exc:  # a corrupt body must never crash a consumer
            raise RecordUndecodable(
                f"{where} does not decode with {self.name} schema {schema_id}: {type(exc).__name__}: {exc}", field=role
            ) from exc


def _nulls_only(problem: ValidationFailed | UpstreamUnavailable) -> Callable[[object, str], bytes | None]:
    def encode(data: object, field: str) -> bytes | None:
        if data is None:
            return None
        raise problem

    return encode
