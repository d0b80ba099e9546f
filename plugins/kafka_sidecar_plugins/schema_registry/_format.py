"""What each schema type (Avro, JSON Schema, Protobuf) provides to the shared registry serde."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from kafka_sidecar_plugins.schema_registry._client import RegisteredSchema
from kafka_sidecar_plugins.schema_registry._config import SchemaRegistryConfig


class SchemaFormat(Protocol):
    """Parsing, naming, encoding and decoding for one schema type. ``parsed`` is format-specific."""

    @property
    def name(self) -> str:
        """Format name in requests (``avro``)."""
        ...

    @property
    def schema_type(self) -> str:
        """Registry ``schemaType`` (``AVRO``, ``JSON``, ``PROTOBUF``)."""
        ...

    def parse(
        self, schema: RegisteredSchema, references: Mapping[str, RegisteredSchema], config: SchemaRegistryConfig
    ) -> object:
        """Compile a schema; ``references`` holds every (transitively) referenced schema by reference name.

        Raises ``ValueError`` with a readable message when the schema is invalid.
        """
        ...

    def record_name(self, parsed: object) -> str | None:
        """Fully-qualified record name for RecordNameStrategy, if the schema has one."""
        ...

    def encode(self, parsed: object, data: object, field: str) -> bytes:
        """JSON data to the body after the 5-byte header; raises ValidationFailed naming ``field`` + path."""
        ...

    def decode(self, parsed: object, body: memoryview) -> object:
        """Body after the 5-byte header to JSON-ready data; raises ValueError (or a subclass) when invalid."""
        ...


class DeferredFormat:
    """A :class:`SchemaFormat` whose implementation (and the libraries it needs) is loaded on first use.

    Protobuf's compiler (``grpc_tools``) and runtime hold about 10 MB of resident memory once imported; a
    sidecar that never meets a protobuf schema should not pay it (docs/benchmarks.md, idle RSS)."""

    def __init__(self, name: str, schema_type: str, load: Callable[[], SchemaFormat]) -> None:
        self._name = name
        self._schema_type = schema_type
        self._load = load
        self._loaded: SchemaFormat | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def schema_type(self) -> str:
        return self._schema_type

    def _format(self) -> SchemaFormat:
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    def parse(
        self, schema: RegisteredSchema, references: Mapping[str, RegisteredSchema], config: SchemaRegistryConfig
    ) -> object:
        return self._format().parse(schema, references, config)

    def record_name(self, parsed: object) -> str | None:
        return self._format().record_name(parsed)

    def encode(self, parsed: object, data: object, field: str) -> bytes:
        return self._format().encode(parsed, data, field)

    def decode(self, parsed: object, body: memoryview) -> object:
        return self._format().decode(parsed, body)
