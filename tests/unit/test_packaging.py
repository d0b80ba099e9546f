"""The runtime wheel: optional features behind extras, upper bounds on majors, no Maven broker harness.

The wheel is built (offline, with the venv's setuptools) from a copy of the sources, as the
Containerfile builds it, and its file list and metadata are read back.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    pytest.importorskip("setuptools", reason="an offline wheel build needs setuptools in the venv")
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for folder in ("kafka_sidecar", "handlers", "plugins"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path_factory.mktemp("dist")
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
    (built,) = out.glob("kafka_sidecar-*.whl")
    return zipfile.ZipFile(built)


def metadata(wheel: zipfile.ZipFile) -> tuple[list[str], list[str]]:
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    message = Parser().parsestr(wheel.read(name).decode())
    return message.get_all("Requires-Dist") or [], message.get_all("Provides-Extra") or []


def test_the_maven_harness_stays_out_but_the_pytest_plugin_is_in(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    assert not [n for n in names if "kafka-runtime" in n]
    assert "kafka_sidecar/testing/pytest_plugin.py" in names  # the pytest11 entry point still imports
    assert "kafka_sidecar_handlers/producer/__init__.py" in names


def test_heavy_features_are_extras_and_majors_are_bounded(wheel: zipfile.ZipFile) -> None:
    requires, extras = metadata(wheel)
    core = [r for r in requires if "extra ==" not in r]
    assert {"protobuf", "jwt", "streams", "test"} <= set(extras)
    for optional in ("protobuf", "grpcio-tools", "pyjwt", "cryptography"):
        assert not [r for r in core if r.lower().startswith(optional)], core
    assert any(r.startswith("PyJWT[crypto]") and 'extra == "jwt"' in r for r in requires)
    for package, bound in (("starlette", "<2"), ("hypercorn", "<1")):
        (requirement,) = [r for r in core if r.lower().startswith(package)]
        assert bound in requirement
    (protobuf,) = [r for r in requires if r.startswith("protobuf")]
    assert "<8" in protobuf
