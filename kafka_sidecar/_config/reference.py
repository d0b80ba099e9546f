"""The configuration reference as Markdown, written from the config dataclasses' own ``doc`` metadata.

``python -m kafka_sidecar._config.reference`` prints it; ``docs/configuration.md`` embeds it and a test
keeps the two identical.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from kafka_sidecar._config.model import KafkaConfig, PluginsConfig, ServerConfig, ServiceConfig
from kafka_sidecar._metrics.service import MetricsSettings

SECTIONS: tuple[tuple[str, type], ...] = (
    ("service", ServiceConfig),
    ("server", ServerConfig),
    ("kafka", KafkaConfig),
    ("plugins", PluginsConfig),
    ("metrics", MetricsSettings),
)


def _type_name(annotation: Any) -> str:
    text = str(annotation).replace("typing.", "").replace("kafka_sidecar._config.model.", "")
    name = getattr(annotation, "__name__", text) if isinstance(annotation, type) else text
    return name.replace("|", "\\|")  # a bare | would split the Markdown table cell


def _default(field: dataclasses.Field[Any]) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
        return "—" if value is None else f"`{value!r}`" if isinstance(value, str) else f"`{value}`"
    if field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
        return "(section)" if dataclasses.is_dataclass(value) else f"`{value!r}`"
    return "required"


def _rows(prefix: str, cls: type) -> list[str]:
    hints = typing.get_type_hints(cls)
    rows = []
    for field in dataclasses.fields(cls):
        key = f"{prefix}.{field.name}"
        annotation = hints[field.name]
        if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
            rows.extend(_rows(key, annotation))
            continue
        doc = field.metadata.get("doc", "")
        if field.metadata.get("secret"):
            doc += " Secret: masked in `/admin/config`."
        rows.append(f"| `{key}` | {_type_name(annotation)} | {_default(field)} | {doc} |")
    return rows


def render_reference() -> str:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, cls in SECTIONS:
        lines.extend(_rows(name, cls))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_reference(), end="")
