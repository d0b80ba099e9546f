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
