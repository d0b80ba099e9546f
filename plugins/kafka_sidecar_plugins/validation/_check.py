"""Plan-time check of the validation middleware: every ``topic_schemas`` entry loads.

A file path is resolved against the config file's folder (not the working directory); the
returned config carries the absolute paths, so ``run`` reads exactly the files ``check`` read.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from kafka_sidecar import CheckContext
from kafka_sidecar_plugins.validation._schema import is_inline, load_schema

if TYPE_CHECKING:
    from kafka_sidecar_plugins.validation import ValidationConfig


def check_validation(config: ValidationConfig, ctx: CheckContext) -> ValidationConfig:
    resolved: dict[str, str] = {}
    for topic, source in config.topic_schemas.items():
        field = f"topic_schemas.{topic}"
        if not is_inline(source):
            path = ctx.resolve(source)
            if not path.is_file():
                ctx.problem(
                    field, f"schema file {str(path)!r} does not exist (relative paths start at the config file)"
                )
                continue
            source = str(path)
        try:
            load_schema(topic, source)
        except Exception as exc:
            ctx.problem(field, f"is not a usable JSON Schema: {exc}")
            continue
        resolved[topic] = source
    return dataclasses.replace(config, topic_schemas=resolved)
