"""The commented samples in the shipped chains.yml are valid once uncommented as they say."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kafka_sidecar._blueprint import build_blueprint

SHIPPED = Path(__file__).parents[2] / "chains.yml"
SAMPLE = re.compile(r"^(\s*)# \[sample: (?P<name>[\w-]+), part \d of \d\].*?\n(?P<body>.*?)^\s*# \[end of sample\]",
                    re.MULTILINE | re.DOTALL)  # fmt: skip


def uncommented(text: str, name: str) -> str:
    """``text`` with every line of sample ``name`` uncommented (the first "# " after the indent removed)."""
    found = 0

    def uncomment(match: re.Match[str]) -> str:
        nonlocal found
        if match.group("name") != name:
            return match.group(0)
        found += 1
        return "".join(re.sub(r"^(\s*)# ", r"\1", line) for line in match.group("body").splitlines(keepends=True))

    result = SAMPLE.sub(uncomment, text)
    assert found, f"no sample {name!r} in {SHIPPED}"
    return result


def sample_names() -> list[str]:
    return sorted({m.group("name") for m in SAMPLE.finditer(SHIPPED.read_text(encoding="utf-8"))})


def test_the_shipped_config_has_samples() -> None:
    assert sample_names() == ["orders", "pageviews"]


@pytest.mark.parametrize("name", sample_names())
def test_a_sample_uncommented_as_it_says_is_a_valid_config(name: str, tmp_path: Path) -> None:
    config = tmp_path / "chains.yml"
    config.write_text(uncommented(SHIPPED.read_text(encoding="utf-8"), name), encoding="utf-8")
    blueprint = build_blueprint(config, env={})  # no ${VAR} without a default
    assert name in [c.name for c in blueprint.consumers]
