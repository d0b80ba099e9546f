"""The out-of-tree plugin package in examples/plugin-package, installed for real and found by entry point.

The package is built and installed with pip into a temporary target folder (not into the shared
venv), and that folder is put on PYTHONPATH of the ``kafka-sidecar`` processes under test (see
``example_packages``): discovery goes through the installed distribution's ``entry_points.txt``.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from example_packages import CLI, install_example, plugin_env, running_cli

from kafka_sidecar_testing.pytest_plugin import TopicFactory

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
    site = install_example("plugin-package", work)
    assert list(site.glob("kafka_sidecar_example_stamp-0.1.0.dist-info/entry_points.txt"))
    yield site
    shutil.rmtree(work, ignore_errors=True)


def _handlers_listing(site: Path | None) -> str:
    result = subprocess.run(
        [str(CLI), "handlers"], capture_output=True, text=True, timeout=60, env=plugin_env(site), check=False
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


@pytest.fixture
def stamped_sidecar(plugin_site: Path, kafka_bootstrap: str, tmp_path: Path) -> Iterator[str]:
    """A real ``kafka-sidecar run`` process whose default chain uses the plugin's ``stamp`` handler."""
    config = tmp_path / "chains.yml"
    config.write_text(CONFIG, encoding="utf-8")
    with running_cli(config, plugin_site, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap) as base_url:
        yield base_url


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
