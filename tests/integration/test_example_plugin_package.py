"""The out-of-tree plugin package in examples/plugin-package, installed for real and found by entry point.

The package is built and installed with pip into a temporary target folder (not into the shared
venv), and that folder is put on PYTHONPATH of the ``kafka-sidecar`` processes under test: discovery
goes through the installed distribution's ``entry_points.txt``, exactly as for a pip-installed plugin.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from kafka_sidecar.testing.net import free_port as _free_port
from kafka_sidecar.testing.pytest_plugin import TopicFactory

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "examples" / "plugin-package"
CLI = Path(sys.executable).with_name("kafka-sidecar")

CONFIG = """\
kafka:
  bootstrap_servers: ${KAFKA_BOOTSTRAP_SERVERS}
server:
  port: ${SIDECAR_PORT}
handlers:
  stamp:
    use: stamp
    config:
      header: x-stamped-by
      value: team-orders
      response_header: X-Stamped-By
  producer:
    use: producer
chains:
  default: [stamp]
paths:
  - path: /producers/{topic}
    method: POST
    exec: [default, producer]
"""


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The example package pip-installed (built from a copy of its source) into a temporary folder."""
    work = tmp_path_factory.mktemp("example-plugin")
    source = work / "src"
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = work / "site"
    # Offline and fast with the venv's own setuptools; venvs of Python >= 3.12 have none, then pip
    # builds in an isolated environment (fetching setuptools from the package index).
    offline = ["--no-build-isolation", "--no-index"] if importlib.util.find_spec("setuptools") else []
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *offline, "--target", str(site), str(source)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"pip install failed:\n{result.stdout}\n{result.stderr}"
    assert list(site.glob("kafka_sidecar_example_stamp-0.1.0.dist-info/entry_points.txt"))
    yield site
    shutil.rmtree(work, ignore_errors=True)


def _env(site: Path | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    env.update(extra)
    return env


def _handlers_listing(site: Path | None) -> str:
    result = subprocess.run(
        [str(CLI), "handlers"], capture_output=True, text=True, timeout=60, env=_env(site), check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_handlers_lists_the_plugin_with_its_distribution(plugin_site: Path) -> None:
    without = _handlers_listing(None)
    assert "stamp" not in without.split(), "the example plugin must not be installed in the venv itself"

    listing = _handlers_listing(plugin_site)
    lines = [line.split() for line in listing.splitlines()]
    stamp = [line for line in lines if line and line[0] == "stamp"]
    assert stamp, listing
    assert stamp[0][:3] == ["stamp", "middleware", "example_stamp"]
    assert "(kafka-sidecar-example-stamp 0.1.0)" in " ".join(stamp[0])


def _wait_ready(process: subprocess.Popen[str], base_url: str, timeout: float) -> None:
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


@pytest.fixture
def stamped_sidecar(plugin_site: Path, kafka_bootstrap: str, tmp_path: Path) -> Iterator[str]:
    """A real ``kafka-sidecar run`` process whose default chain uses the plugin's ``stamp`` handler."""
    config = tmp_path / "chains.yml"
    config.write_text(CONFIG, encoding="utf-8")
    port = _free_port()
    env = _env(plugin_site, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, SIDECAR_PORT=str(port))
    process = subprocess.Popen(
        [str(CLI), "run", "-c", str(config), "--log-level", "WARNING"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(process, base_url, timeout=60)
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


async def _read_one(bootstrap: str, topic: str) -> tuple[bytes | None, list[tuple[str, bytes]]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        async with asyncio.timeout(30):
            while True:
                batches = await consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    if messages:
                        return messages[0].value, list(messages[0].headers)
    finally:
        await consumer.stop()


@pytest.mark.kafka
@pytest.mark.asyncio
async def test_plugin_handler_runs_in_a_chain_and_stamps_the_record(
    stamped_sidecar: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create(partitions=1, prefix="stamp")
    correlation = uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=stamped_sidecar, timeout=30) as client:
        response = await client.post(
            f"/producers/{topic}",
            json={"records": [{"key": "k1", "value": {"n": 1}, "headers": {"x-own": correlation}}]},
        )
    assert response.status_code == 200, response.text
    assert response.headers["x-stamped-by"] == "team-orders"
    assert response.json()["offsets"][0]["error_code"] is None

    value, headers = await _read_one(topic_factory.bootstrap_servers, topic)
    assert value == b'{"n":1}'
    assert ("x-stamped-by", b"team-orders") in headers
    assert ("x-own", correlation.encode()) in headers
