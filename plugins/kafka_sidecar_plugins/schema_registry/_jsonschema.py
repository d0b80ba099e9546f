"""JSON Schema: validate before sending (the ``$schema`` draft, draft 7 by default), JSON bodies."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.validators
import referencing
import referencing.exceptions
import referencing.jsonschema

from kafka_sidecar.plugin import ValidationFailed
from kafka_sidecar_plugins.schema_registry._client import RegisteredSchema
from kafka_sidecar_plugins.schema_registry._config import SchemaRegistryConfig

_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


@dataclass(frozen=True, slots=True)
class ParsedJsonSchema:
    validator: Any
    title: str | None


def json_path(parts: Iterable[object]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _load(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{what} is not JSON: {exc}") from exc


@dataclass(frozen=True, slots=True)
class JsonSchemaFormat:
    name: str = "jsonschema"
    schema_type: str = "JSON"

    def parse(
        self, schema: RegisteredSchema, references: Mapping[str, RegisteredSchema], config: SchemaRegistryConfig
    ) -> ParsedJsonSchema:
        contents = _load(schema.schema, "the schema")
        if not isinstance(contents, dict | bool):
            raise ValueError("a JSON Schema must be an object or a boolean")
        cls = jsonschema.validators.validator_for(contents, default=jsonschema.Draft7Validator)
        try:
            cls.check_schema(contents)  # type: ignore[arg-type]
        except jsonschema.exceptions.SchemaError as exc:
            raise ValueError(f"{exc.message} at {json_path(exc.absolute_path) or 'the root'}") from exc
        registry: referencing.Registry[Any] = referencing.Registry()
        spec = referencing.jsonschema.specification_with(
            cls.META_SCHEMA.get("$schema", ""), default=referencing.jsonschema.DRAFT7
        )
        for name, ref in references.items():
            registry = registry.with_resource(name, spec.create_resource(_load(ref.schema, f"reference {name!r}")))
        title = contents.get("title") if isinstance(contents, dict) else None
        return ParsedJsonSchema(cls(contents, registry=registry), title if isinstance(title, str) else None)

    def record_name(self, parsed: object) -> str | None:
        assert isinstance(parsed, ParsedJsonSchema)
        return parsed.title

    def encode(self, parsed: object, data: object, field: str) -> bytes:
        assert isinstance(parsed, ParsedJsonSchema)
        try:
            error = jsonschema.exceptions.best_match(parsed.validator.iter_errors(data))
        except referencing.exceptions.Unresolvable as exc:
            raise ValidationFailed(f"the schema has an unresolvable reference: {exc}", field=field) from exc
        if error is not None:
            raise ValidationFailed(
                f"does not match the JSON Schema: {error.message}", field=f"{field}{json_path(error.absolute_path)}"
            )
        try:
            return _compact(data).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise ValidationFailed(f"cannot be written as JSON: {exc}", field=field) from exc

    def decode(self, parsed: object, body: memoryview) -> object:
        return json.loads(bytes(body))
