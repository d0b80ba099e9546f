"""First-party handlers and plugins (and the example plugin packages) use only the public plugin API, so a
team's plugin can do what they do.

Every import (module level or inside a function) in ``handlers/`` and ``plugins/`` that names a
``kafka_sidecar*`` module must be ``kafka_sidecar`` or ``kafka_sidecar.plugin`` (and only names in
their ``__all__``), or the file's own subpackage. A handler importing a plugin, or one plugin importing
another's internals, fails here: what they share belongs in the public API or the core.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import kafka_sidecar
import kafka_sidecar.plugin

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = {"kafka_sidecar": set(kafka_sidecar.__all__), "kafka_sidecar.plugin": set(kafka_sidecar.plugin.__all__)}
SOURCES = (ROOT / "handlers", ROOT / "plugins", *sorted(ROOT.glob("examples/*plugin*/src")))
FIRST_PARTY = [path for source in SOURCES for path in sorted(source.rglob("*.py"))]


def own_package(path: Path) -> str:
    """``kafka_sidecar_handlers.reactive`` for any file under it, ``kafka_sidecar_plugins.tracing`` for
    tracing.py; an example plugin package's own top-level package."""
    source = next(s for s in SOURCES if path.is_relative_to(s))
    parts = path.relative_to(source).with_suffix("").parts
    return ".".join(parts[:2]) if parts[0] in ("kafka_sidecar_handlers", "kafka_sidecar_plugins") else parts[0]


def violations(source: str, own: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, name)):
        imported: list[tuple[str, list[str]]] = []
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            imported = [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported = [(node.module, [alias.name for alias in node.names])]
        elif isinstance(node, ast.ImportFrom):
            found.append(f"{name}:{node.lineno} relative import (use the absolute own-package name)")
        for module, names in imported:
            if not module.startswith("kafka_sidecar"):
                continue
            if module == own or module.startswith(own + "."):
                continue
            if module in PUBLIC:
                private = [item for item in names if item not in PUBLIC[module]]
                if private or not names:
                    found.append(f"{name}:{line} {module}: not public: {private or 'import module'}")
                continue
            found.append(f"{name}:{line} imports {module}")
    return found


@pytest.mark.parametrize("path", FIRST_PARTY, ids=lambda p: str(p.relative_to(ROOT)))
def test_first_party_code_imports_only_the_public_api_and_its_own_package(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8"), own_package(path), path.name) == []


def test_the_guard_catches_internals_cross_package_and_non_public_names() -> None:
    source = (
        "from kafka_sidecar._resources import Resources\n"
        "from kafka_sidecar_plugins.metrics import MetricsHandler\n"
        "from kafka_sidecar.plugin import Resources as R, _hidden\n"
        "from kafka_sidecar_handlers.reactive._config import ReactiveConsumerConfig\n"
        "def late():\n    import kafka_sidecar._sidecar\n"
    )
    found = violations(source, "kafka_sidecar_handlers.reactive", "probe.py")
    assert len(found) == 4, found
    assert any("kafka_sidecar._resources" in f for f in found)
    assert any("kafka_sidecar_plugins.metrics" in f for f in found)
    assert any("_hidden" in f for f in found)
    assert any("kafka_sidecar._sidecar" in f for f in found)


def test_every_public_name_exists() -> None:
    for module in (kafka_sidecar, kafka_sidecar.plugin):
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert missing == [], f"{module.__name__}.__all__ names what it lacks: {missing}"
