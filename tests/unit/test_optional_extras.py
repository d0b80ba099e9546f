"""A feature whose extra is not installed: a plan-time problem naming the extra, not an import error.

The missing package is simulated by blocking its import (``sys.modules[name] = None``) and dropping the
first-party module that imports it, so discovery runs as on a machine without the extra.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kafka_sidecar._blueprint import build_blueprint, discover
from kafka_sidecar._errors import ConfigError, UnsupportedMediaType

REPO = Path(__file__).resolve().parents[2]


def block(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for name in modules:
        for loaded in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
            monkeypatch.delitem(sys.modules, loaded)
        monkeypatch.setitem(sys.modules, name, None)


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        build_blueprint(path, env={})
    return [f"{p.line}:{p.column}  {p.path}  {p.message}" for p in caught.value.problems]


def test_protobuf_format_without_the_extra_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    block(monkeypatch, "google.protobuf", "kafka_sidecar_plugins.schema_registry._protobuf")
    catalog = discover()
    assert "protobuf" not in catalog.serdes.names()
    assert {"avro", "jsonschema"} <= set(catalog.serdes.names())  # the rest of the plugin still works
    with pytest.raises(UnsupportedMediaType, match=r"install kafka-sidecar\[protobuf\]"):
        catalog.serdes.get("protobuf", field="valueFormat")  # a request naming it: 415 with the hint
    path = tmp_path / "chains.yml"
    path.write_text(
        "handlers:\n  producer: {use: producer, config: {value_format: protobuf}}\n"
        'paths:\n  - {path: "/producers/{topic}", method: POST, exec: [producer]}\n',
        encoding="utf-8",
    )
    assert problems(path) == [
        "2:52  handlers.producer.config.value_format  record format 'protobuf' needs an optional dependency: "
        "install kafka-sidecar[protobuf] (pip install 'kafka-sidecar[protobuf]')"
    ]


def test_jwt_handler_without_the_extra_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    block(monkeypatch, "jwt", "kafka_sidecar_plugins.security._jwt")
    (tmp_path / "k.pem").write_text("not read at plan time", encoding="utf-8")
    path = tmp_path / "chains.yml"
    path.write_text(
        "handlers:\n  auth:\n    use: jwt\n    config: {public_key_files: [k.pem]}\n"
        'paths:\n  - {path: "/producers/{topic}", method: POST, exec: [auth, producer]}\n',
        encoding="utf-8",
    )
    (problem,) = problems(path)
    assert problem.startswith("4:13  handlers.auth.config  handler 'auth' needs the optional dependency jwt")
    assert "install kafka-sidecar[jwt]" in problem


def test_with_the_extras_installed_both_features_plan(tmp_path: Path) -> None:
    assert "protobuf" in discover().serdes.names()
    path = tmp_path / "chains.yml"
    (tmp_path / "k.pem").write_text("not checked at plan time", encoding="utf-8")
    path.write_text(
        "handlers:\n  auth:\n    use: jwt\n    config: {public_key_files: [k.pem]}\n"
        "  producer: {use: producer, config: {value_format: protobuf}}\n"
        'paths:\n  - {path: "/producers/{topic}", method: POST, exec: [auth, producer]}\n',
        encoding="utf-8",
    )
    build_blueprint(path, env={})


def test_the_protobuf_libraries_are_imported_when_a_protobuf_schema_is_first_used() -> None:
    """Installed but unused, protobuf's compiler and runtime cost no memory: a fresh interpreter plans the
    shipped config without importing them, and imports them for the first protobuf schema it parses."""
    script = (
        "import sys\n"
        "from kafka_sidecar._blueprint import build_blueprint\n"
        "from kafka_sidecar_plugins.schema_registry._client import RegisteredSchema\n"
        "from kafka_sidecar_plugins.schema_registry._config import SchemaRegistryConfig\n"
        "blueprint = build_blueprint('chains.yml', env={})\n"
        "heavy = ('grpc_tools', 'google.protobuf')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "fmt = blueprint.catalog.serdes.get('protobuf', field='valueFormat').fmt\n"
        "parsed = fmt.parse(RegisteredSchema('syntax = \"proto3\"; message M { int32 a = 1; }', 'PROTOBUF'), {},\n"
        "                   SchemaRegistryConfig())\n"
        "print(sorted(m for m in heavy if m in sys.modules), fmt.record_name(parsed))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "['google.protobuf', 'grpc_tools'] M"]
