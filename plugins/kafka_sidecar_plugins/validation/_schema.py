"""One JSON Schema (Draft 2020-12): jsonschema-rs answers "valid?" fast; jsonschema names what is wrong."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match


class Schema:
    """One JSON Schema, checked by jsonschema-rs; jsonschema runs only to describe a failure."""

    __slots__ = ("_fast", "validator")

    def __init__(self, schema: Mapping[str, Any] | bool) -> None:
        self.validator = Draft202012Validator(schema)
        # formats only annotate, as in jsonschema
        self._fast = jsonschema_rs.Draft202012Validator(
            schema if isinstance(schema, bool) else dict(schema), validate_formats=False
        )

    @property
    def schema(self) -> Mapping[str, Any] | bool:
        schema: Mapping[str, Any] | bool = self.validator.schema
        return schema

    def error(self, instance: object) -> ValidationError | None:
        """The best error for an invalid instance; ``None`` when it is valid."""
        try:
            if self._fast.is_valid(instance):
                return None
        except (ValueError, TypeError):
            pass  # a Python value jsonschema-rs cannot read: jsonschema has the last word
        error: ValidationError | None = best_match(self.validator.iter_errors(instance))
        return error


def is_inline(source: str) -> bool:
    """A ``topic_schemas`` value that is the schema itself (JSON text), not a file."""
    return source.lstrip().startswith("{")


def load_schema(topic: str, source: str) -> Schema:
    """The schema for ``topic``: inline JSON text, or a file (resolved by the plan-time check)."""
    text = source if is_inline(source) else Path(source).read_text(encoding="utf-8")
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"topic_schemas[{topic!r}] is not valid JSON: {exc}") from exc
    Draft202012Validator.check_schema(schema)
    return Schema(schema)
