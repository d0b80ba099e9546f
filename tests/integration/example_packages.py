"""Helpers for the tests of the out-of-tree example plugins in ``examples/``: each is pip-installed for
real into a temporary folder (not the shared venv) that goes on ``PYTHONPATH`` of ``kafka-sidecar``
processes, so discovery goes through the installed distribution's ``entry_points.txt``.

No tests here; ``test_example_*`` modules import from it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from kafka_sidecar_testing.net import free_port

REPO = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("kafka-sidecar")


def install_example(name: str, work: Path) -> Path:
    """pip-install ``examples/<name>`` (built from a copy of its source) into ``work/site``."""
    source = work / "src"
    shutil.copytree(
        REPO / "examples" / name, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    site = work / "site"
    # Offline and fast with the venv's own setuptools; venvs of Python >= 3.12 have none, then pip
    # builds in an isolated environment (fetching setuptools from the package index).
    offline = ["--no-build-isolation", "--no-index"] if importlib.util.find_spec("setuptools") else []
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *offline, "--target", str(site), str(source)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"pip install failed:\n{result.stdout}\n{result.stderr}"
    return site


def plugin_env(site: Path | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    env.update(extra)
    return env


def wait_ready(process: subprocess.Popen[str], base_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"kafka-sidecar exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"{base_url}/health/ready", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)  # poll interval of a deadline-bounded readiness wait
    pytest.fail(f"kafka-sidecar was not ready within {timeout}s")


@contextmanager
def running_cli(config: Path, site: Path, **env: str) -> Iterator[str]:
    """A real ``kafka-sidecar run`` process with the installed plugin; yields its base URL; SIGTERM at exit.

    ``SIDECAR_PORT`` is set in its environment for the config to use.
    """
    port = free_port()
    process = subprocess.Popen(
        [str(CLI), "run", "-c", str(config), "--log-level", "WARNING"],
        env=plugin_env(site, SIDECAR_PORT=str(port), **env),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, base_url, timeout=60)
        yield base_url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
