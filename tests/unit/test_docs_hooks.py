"""Guards: every hook is documented with its exact signature; the public API list is sorted and complete."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import kafka_sidecar
from kafka_sidecar import _hookspecs as hookspecs
from kafka_sidecar._plugins import make_plugin_manager

DOCS = Path(__file__).parents[2] / "docs"


def hook_names() -> list[str]:
    pm = make_plugin_manager(entry_points=False)
    return sorted(name for name in dir(pm.hook) if name.startswith("kafka_sidecar_"))


def test_every_hook_has_a_section_headed_by_its_exact_signature() -> None:
    text = (DOCS / "plugin-hooks.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^## `([^`]+)`$", text, flags=re.MULTILINE))
    for name in hook_names():
        params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"{name}({params})" in headings, f"docs/plugin-hooks.md lacks a '## `{name}({params})`' section"
    documented = {heading.split("(")[0] for heading in headings}
    assert documented == set(hook_names()), "docs/plugin-hooks.md documents hooks that do not exist"


def test_hooks_are_prefixed() -> None:
    assert hook_names(), "no hooks found"
    assert all(name.startswith("kafka_sidecar_") for name in hook_names())


def test_public_api_is_sorted_and_complete() -> None:
    names = kafka_sidecar.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    for name in names:
        assert hasattr(kafka_sidecar, name), name
    public = {
        n for n in vars(kafka_sidecar) if not n.startswith("_") and not inspect.ismodule(getattr(kafka_sidecar, n))
    }
    assert public == set(names)


def test_configuration_reference_matches_the_code() -> None:
    from kafka_sidecar._config.reference import render_reference

    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    block = text.split("<!-- reference:start -->\n", 1)[1].split("<!-- reference:end -->", 1)[0]
    assert block == render_reference(), "regenerate with: python -m kafka_sidecar._config.reference"
