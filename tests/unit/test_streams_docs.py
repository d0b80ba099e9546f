"""docs/stream-processors.md documents every setting, and the example chains.yml passes check."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from kafka_sidecar._blueprint import build_blueprint
from kafka_sidecar_handlers.streams._config import RestartPolicy, StreamProcessorConfig

ROOT = Path(__file__).parents[2]


def test_every_setting_is_in_the_table() -> None:
    text = (ROOT / "docs" / "stream-processors.md").read_text(encoding="utf-8")
    missing = [f.name for f in dataclasses.fields(StreamProcessorConfig) if f"`{f.name}" not in text]
    missing += [f.name for f in dataclasses.fields(RestartPolicy) if f"`restart.{f.name}`" not in text]
    assert not missing


def test_the_example_passes_check() -> None:
    env = {"STREAMS_PYTHON": sys.executable}  # .venv-streams may not exist here
    blueprint = build_blueprint(ROOT / "examples" / "streams" / "chains.yml", env=env)
    assert [c.name for c in blueprint.consumers] == ["order-streams", "order-results"]
