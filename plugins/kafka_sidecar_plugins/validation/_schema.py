"""One JSON Schema (Draft 2020-12): jsonschema-rs answers "valid?" fast; jsonschema names what is wrong."""

from __future__ import annotations

from collections.abc import Mapping
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
