"""The configuration reference as Markdown, written from the config dataclasses' own ``doc`` metadata.

``python -m kafka_sidecar._config.reference`` prints the core sections' table;
``python -m kafka_sidecar._config.reference --write-docs`` rewrites every generated block in ``docs/``:
the core table in ``docs/configuration.md`` and, for each registered handler type, the table of its
config dataclass between ``<!-- handler-config:NAME:start -->`` and ``<!-- handler-config:NAME:end -->``
(plugin-registered top-level sections likewise, as ``section-config:NAME``).
A test keeps every block identical to the code and requires one for every handler type with settings.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from pathlib import Path
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
    if typing.get_origin(annotation) is typing.Literal:
        return " \\| ".join(f"`{_yaml(value)}`" for value in typing.get_args(annotation))
    text = str(annotation).replace("typing.", "").replace("collections.abc.", "")
    text = text.replace("kafka_sidecar._config.model.", "")
    name = getattr(annotation, "__name__", text) if isinstance(annotation, type) else text
    return name.replace("|", "\\|")  # a bare | would split the Markdown table cell


def _yaml(value: object) -> str:
    """A default as it is written in chains.yml."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_yaml(item) for item in value) + "]"
    return str(value)


def _default(field: dataclasses.Field[Any]) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
        return "—" if value is None else f"`{_yaml(value)}`"
    if field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
        return "(section)" if dataclasses.is_dataclass(value) else f"`{value!r}`"
    return "required"


def config_keys(cls: type) -> list[dataclasses.Field[Any]]:
    """The fields a config file sets: derived ones (``init=False``, computed in ``__post_init__``) are not keys."""
    return [field for field in dataclasses.fields(cls) if field.init]


def _rows(prefix: str, cls: type) -> list[str]:
    hints = typing.get_type_hints(cls)
    rows = []
    for field in config_keys(cls):
        key = f"{prefix}.{field.name}" if prefix else field.name
        annotation = hints[field.name]
        if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
            rows.extend(_rows(key, annotation))
            continue
        doc = field.metadata.get("doc", "")
        if field.metadata.get("secret"):
            doc += " Secret: masked in `/admin/config`."
        if field.metadata.get("file"):
            doc += " A relative path is taken from the config file's folder."
        rows.append(f"| `{key}` | {_type_name(annotation)} | {_default(field)} | {doc} |")
    return rows


HEADER = ["| key | type | default | meaning |", "|---|---|---|---|"]
START, END = "<!-- {}:start -->\n", "<!-- {}:end -->"


def render_reference() -> str:
    lines = list(HEADER)
    for name, cls in SECTIONS:
        lines.extend(_rows(name, cls))
    return "\n".join(lines) + "\n"


def render_config_table(config_type: type) -> str:
    """The ``config:`` keys of a handler (or plugin section) as a Markdown table."""
    return "\n".join([*HEADER, *_rows("", config_type)]) + "\n"


def generated_blocks() -> dict[str, str]:
    """Marker name -> the text between its markers: the core reference and every handler type's table."""
    from kafka_sidecar._blueprint import discover
    from kafka_sidecar._registry import NoConfig

    catalog = discover()
    blocks = {"reference": render_reference()}
    for registered in catalog.handlers:
        spec = registered.spec
        if spec.config_type is not NoConfig:
            blocks[f"handler-config:{spec.name}"] = render_config_table(spec.config_type)
    core = {name for name, _ in SECTIONS}
    for section in catalog.sections:
        if section.spec.name in core:
            continue  # in the core table already
        blocks[f"section-config:{section.spec.name}"] = render_config_table(section.spec.config_type)
    return blocks


def replace_block(text: str, marker: str, body: str) -> str | None:
    """``text`` with the block ``marker`` replaced by ``body``; None when the markers are absent."""
    start, end = START.format(marker), END.format(marker)
    if start not in text or end not in text:
        return None
    head, rest = text.split(start, 1)
    return head + start + body + end + rest.split(end, 1)[1]


def write_docs(docs: Path) -> list[str]:
    """Rewrite every generated block found under ``docs``; return the markers found nowhere."""
    missing = []
    files = sorted(docs.rglob("*.md"))
    for marker, body in generated_blocks().items():
        found = False
        for path in files:
            text = path.read_text(encoding="utf-8")
            updated = replace_block(text, marker, body)
            if updated is not None:
                found = True
                if updated != text:
                    path.write_text(updated, encoding="utf-8")
        if not found:
            missing.append(marker)
    return missing


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-docs"]:
        unplaced = write_docs(Path(__file__).resolve().parents[2] / "docs")
        for marker in unplaced:
            print(f"no block for {marker!r} in docs/: add {START.format(marker).strip()} ... {END.format(marker)}")
        sys.exit(1 if unplaced else 0)
    print(render_reference(), end="")
