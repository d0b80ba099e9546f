"""The two wheels: the runtime one (optional features behind extras, upper bounds on majors, no test
harness) and ``kafka-sidecar-testing`` (the Maven-backed broker harness, its fixtures and test servers).

Each wheel is built (offline, with the venv's setuptools) from a copy of its sources, as the
Containerfile builds the runtime one, and its file list and metadata are read back.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "testing" / "kafka_sidecar_testing"
IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")


def build(source: Path, out: Path, pattern: str) -> zipfile.ZipFile:
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        str(source),
        "-w",
        str(out),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    (built,) = out.glob(pattern)
    return zipfile.ZipFile(built)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    pytest.importorskip("setuptools", reason="an offline wheel build needs setuptools in the venv")
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for folder in ("kafka_sidecar", "handlers", "plugins"):  # what the Containerfile copies
        shutil.copytree(REPO / folder, source / folder, ignore=IGNORE)
    return build(source, tmp_path_factory.mktemp("dist"), "kafka_sidecar-*.whl")


@pytest.fixture(scope="module")
def testing_wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    pytest.importorskip("setuptools", reason="an offline wheel build needs setuptools in the venv")
    source = tmp_path_factory.mktemp("testing") / "testing"
    shutil.copytree(REPO / "testing", source, ignore=IGNORE)
    return build(source, tmp_path_factory.mktemp("dist"), "kafka_sidecar_testing-*.whl")


def metadata(wheel: zipfile.ZipFile) -> tuple[list[str], list[str]]:
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    message = Parser().parsestr(wheel.read(name).decode())
    return message.get_all("Requires-Dist") or [], message.get_all("Provides-Extra") or []


def entry_points(wheel: zipfile.ZipFile) -> str:
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))
    return wheel.read(name).decode()


def imports(tree: ast.AST) -> set[str]:
    found = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return found | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}


def harness_files() -> set[str]:
    """Every file of the harness source tree, as a path inside a wheel."""
    return {
        path.relative_to(HARNESS.parent).as_posix()
        for path in HARNESS.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_the_runtime_wheel_has_no_harness_only_the_plugin_author_helper(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    assert not [n for n in names if n.startswith("kafka_sidecar_testing/")]
    maven = ("pom.xml", "SecuritySetup.java", "log4j2.properties")
    assert not [n for n in names if "kafka-runtime" in n or n.endswith(maven)]
    assert sorted(n for n in names if n.startswith("kafka_sidecar/testing/")) == [
        "kafka_sidecar/testing/__init__.py",
        "kafka_sidecar/testing/_sidecar.py",
    ]
    trees = {n: ast.parse(wheel.read(n), n) for n in names if n.endswith(".py")}
    imported = {n: imports(tree) for n, tree in trees.items()}
    assert not [n for n, modules in imported.items() if any(m.startswith("kafka_sidecar_testing") for m in modules)]
    literals = {n: {c.value for c in ast.walk(tree) if isinstance(c, ast.Constant)} for n, tree in trees.items()}
    assert not [n for n, values in literals.items() if "mvn" in values]  # nothing runs Maven
    assert "pytest11" not in entry_points(wheel)  # installing the sidecar adds no pytest plugin
    assert "kafka_sidecar_handlers/producer/__init__.py" in names


def test_the_testing_wheel_has_the_whole_harness(testing_wheel: zipfile.ZipFile) -> None:
    names = set(testing_wheel.namelist())
    assert harness_files() <= names, sorted(harness_files() - names)
    for required in ("broker.py", "kafka-runtime/pom.xml", "kafka-runtime/SecuritySetup.java", "pki.py",
                     "ksqldb/__main__.py", "registry.py", "backend.py", "py.typed"):  # fmt: skip
        assert f"kafka_sidecar_testing/{required}" in names
    assert not [n for n in names if n.startswith(("kafka_sidecar/", "kafka_sidecar_handlers/", "tests/"))]
    assert "kafka_sidecar_testing = kafka_sidecar_testing.pytest_plugin" in entry_points(testing_wheel)
    requires, _ = metadata(testing_wheel)
    assert {r.split(">")[0].split("=")[0].strip() for r in requires} >= {"kafka-sidecar", "pytest", "cryptography"}


def test_heavy_features_are_extras_and_majors_are_bounded(wheel: zipfile.ZipFile) -> None:
    requires, extras = metadata(wheel)
    core = [r for r in requires if "extra ==" not in r]
    assert {"protobuf", "jwt", "streams", "test", "librdkafka"} <= set(extras)
    for optional in ("protobuf", "grpcio-tools", "pyjwt", "cryptography"):
        assert not [r for r in core if r.lower().startswith(optional)], core
    assert any(r.startswith("PyJWT[crypto]") and 'extra == "jwt"' in r for r in requires)
    for package, bound in (("starlette", "<2"), ("hypercorn", "<1")):
        (requirement,) = [r for r in core if r.lower().startswith(package)]
        assert bound in requirement
    (protobuf,) = [r for r in requires if r.startswith("protobuf")]
    assert "<8" in protobuf
