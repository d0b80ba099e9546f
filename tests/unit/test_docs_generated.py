"""Every generated table in docs/ equals what the code renders, and every handler type with settings has one."""

from __future__ import annotations

from pathlib import Path

import pytest

from kafka_sidecar._config.reference import END, START, generated_blocks, replace_block

DOCS = Path(__file__).parents[2] / "docs"
BLOCKS = generated_blocks()


def test_every_handler_type_with_settings_is_documented() -> None:
    expected = {"producer", "active-consumer", "reactive-consumer", "validation", "jwt", "audit", "metrics"}
    assert expected <= {marker.split(":", 1)[1] for marker in BLOCKS if marker.startswith("handler-config:")}


@pytest.mark.parametrize("marker", sorted(BLOCKS))
def test_generated_block_matches_the_code(marker: str) -> None:
    holders = [path for path in sorted(DOCS.rglob("*.md")) if START.format(marker) in path.read_text("utf-8")]
    assert len(holders) == 1, f"{marker}: expected one doc with {START.format(marker).strip()}, found {holders}"
    text = holders[0].read_text("utf-8")
    assert END.format(marker) in text
    assert replace_block(text, marker, BLOCKS[marker]) == text, (
        f"{holders[0].name}: the {marker} table is out of date; "
        "regenerate with: python -m kafka_sidecar._config.reference --write-docs"
    )


def _config_types() -> list[type]:
    """Every dataclass the generated tables are rendered from, nested sections included."""
    import dataclasses
    import typing

    from kafka_sidecar._blueprint import discover
    from kafka_sidecar._config.reference import SECTIONS

    found: list[type] = []
    pending: list[type] = [cls for _, cls in SECTIONS]
    catalog = discover()
    pending += [registered.spec.config_type for registered in catalog.handlers]
    pending += [registered.spec.config_type for registered in catalog.sections]
    while pending:
        cls = pending.pop()
        if cls in found:
            continue
        found.append(cls)
        for hint in typing.get_type_hints(cls).values():
            if isinstance(hint, type) and dataclasses.is_dataclass(hint):
                pending.append(hint)
    return found


def test_no_derived_field_is_rendered_as_a_key() -> None:
    """A field with ``init=False`` is computed by the dataclass itself; no table may list it as a config key."""
    import dataclasses

    derived = [(cls, field.name) for cls in _config_types() for field in dataclasses.fields(cls) if not field.init]
    assert derived, "expected at least one derived field (the ksqlDB consumer's 'reactive')"
    rendered = "\n".join(BLOCKS.values())
    for cls, name in derived:
        assert f"| `{name}` |" not in rendered, (cls.__name__, name)
        assert f".{name}` |" not in rendered, (cls.__name__, name)
