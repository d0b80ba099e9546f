"""Avro through fastavro: schemaless bodies after the Confluent header, named-type references."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import fastavro

from kafka_sidecar.plugin import ValidationFailed
from kafka_sidecar_plugins.schema_registry._avro_in import Converter, compile_from_json
from kafka_sidecar_plugins.schema_registry._avro_json import AvroMismatch, needs_conversion, to_json
from kafka_sidecar_plugins.schema_registry._client import RegisteredSchema
from kafka_sidecar_plugins.schema_registry._config import SchemaRegistryConfig


@dataclass(frozen=True, slots=True)
class ParsedAvro:
    schema: Any
    names: Mapping[str, Any]
    from_json: Converter
    convert_output: bool
    record_name: str | None
    wrap_unions: bool


def _load(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text  # a bare primitive name such as  string  (registries accept it unquoted)


@dataclass(frozen=True, slots=True)
class AvroFormat:
    name: str = "avro"
    schema_type: str = "AVRO"

    def parse(
        self, schema: RegisteredSchema, references: Mapping[str, RegisteredSchema], config: SchemaRegistryConfig
    ) -> ParsedAvro:
        named: dict[str, Any] = {}
        try:
            for ref in references.values():
                fastavro.parse_schema(_load(ref.schema), named)
            parsed = fastavro.parse_schema(_load(schema.schema), named)
        except Exception as exc:  # fastavro raises SchemaParseException, KeyError, TypeError...
            raise ValueError(f"{type(exc).__name__}: {exc}") from exc
        record = parsed.get("name") if isinstance(parsed, dict) and parsed.get("type") == "record" else None
        try:
            converter = compile_from_json(parsed, named)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"cannot use the schema: {exc}") from exc
        return ParsedAvro(
            parsed, named, converter, needs_conversion(parsed, named), record, not config.strip_avro_unions
        )

    def record_name(self, parsed: object) -> str | None:
        assert isinstance(parsed, ParsedAvro)
        return parsed.record_name

    def encode(self, parsed: object, data: object, field: str) -> bytes:
        assert isinstance(parsed, ParsedAvro)
        try:
            datum = parsed.from_json(data)
        except AvroMismatch as exc:
            raise ValidationFailed(
                f"does not match the Avro schema: {exc.message}", field=f"{field}{exc.path}"
            ) from exc
        out = io.BytesIO()
        try:
            fastavro.schemaless_writer(out, parsed.schema, datum)
        except Exception as exc:  # e.g. a decimal wider than its precision
            raise ValidationFailed(f"cannot be written as Avro: {exc}", field=field) from exc
        return out.getvalue()

    def decode(self, parsed: object, body: memoryview) -> object:
        assert isinstance(parsed, ParsedAvro)
        stream = io.BytesIO(body)
        datum = fastavro.schemaless_reader(stream, parsed.schema, None, return_named_type=parsed.convert_output)
        if stream.tell() != len(body):
            raise ValueError(f"{len(body) - stream.tell()} bytes left over after the Avro value")
        if not parsed.convert_output:
            return datum
        return to_json(parsed.schema, datum, parsed.names, parsed.wrap_unions)
