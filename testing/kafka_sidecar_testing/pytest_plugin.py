"""pytest fixtures giving tests a real Apache Kafka broker.

Registered through the ``pytest11`` entry point, so it is loaded by every pytest run in an
environment where kafka-sidecar-testing is installed. Importing it does nothing: the broker module is
imported, and a broker started, only when a test asks for one of the fixtures.

Fixtures:

* ``kafka_broker`` (session): a :class:`KafkaEndpoint`. Uses ``$KAFKA_SIDECAR_BOOTSTRAP`` if
  set (an external broker), else downloads the broker jars once and starts a local broker.
* ``kafka_bootstrap`` (session): the bootstrap servers string, ``"127.0.0.1:<port>"``.
* ``topic_factory`` (function): ``make(partitions=1, prefix="t", config=None) -> str`` creates a
  uniquely named topic and returns its name; usable from sync and async tests alike.
* ``unique_topic`` (function): the name of a fresh single-partition topic.

If the local broker cannot start, the fixture fails loudly when ``$CI`` is set. Elsewhere it
skips only when ``java`` or ``mvn`` is missing, and fails otherwise.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

if TYPE_CHECKING:
    from kafka_sidecar_testing.broker import KafkaBroker

__all__ = ["KafkaEndpoint", "TopicFactory"]

BOOTSTRAP_ENV: Final = "KAFKA_SIDECAR_BOOTSTRAP"
VERSION_ENV: Final = "KAFKA_SIDECAR_KAFKA_VERSION"
START_TIMEOUT: Final = 120.0


@dataclass(frozen=True)
class KafkaEndpoint:
    """The broker the tests talk to; ``broker`` is None for an external one."""

    bootstrap_servers: str
    broker: KafkaBroker | None = None

    @property
    def external(self) -> bool:
        return self.broker is None


class TopicFactory:
    """Creates uniquely named topics on the test broker.

    ``factory(...)`` blocks and works in sync tests and, briefly blocking the loop, in async
    tests (the admin client runs on its own event loop in a worker thread). Async tests may
    prefer ``await factory.create(...)``.
    """

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.created: list[str] = []

    @staticmethod
    def unique_name(prefix: str = "t") -> str:
        return f"{prefix}-{uuid.uuid4().hex}"

    async def create(self, partitions: int = 1, prefix: str = "t", config: Mapping[str, str] | None = None) -> str:
        from kafka_sidecar_testing.broker import create_topic

        name = self.unique_name(prefix)
        await create_topic(self.bootstrap_servers, name, partitions, config)
        self.created.append(name)
        return name

    def __call__(self, partitions: int = 1, prefix: str = "t", config: Mapping[str, str] | None = None) -> str:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-topic-factory") as pool:
            return pool.submit(asyncio.run, self.create(partitions, prefix, config)).result()


def _truthy_env(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    return value not in {"", "0", "false", "no", "off"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kafka: needs the real Apache Kafka broker started by the harness")


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaEndpoint]:
    """A running Kafka broker for the whole test session (see the module docstring)."""
    external = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if external:
        yield KafkaEndpoint(external)
        return

    from kafka_sidecar_testing import broker as harness

    in_ci = _truthy_env("CI")
    version = os.environ.get(VERSION_ENV, "").strip() or harness.DEFAULT_KAFKA_VERSION
    broker: KafkaBroker | None = None
    problem: str | None = None
    missing_tool = False
    try:
        libs: Path = harness.ensure_kafka_runtime(version)
        broker = harness.KafkaBroker(libs)
        broker.start(timeout=START_TIMEOUT)
    except harness.MissingToolError as exc:
        problem, missing_tool = str(exc), True
    except Exception as exc:
        problem = f"{type(exc).__name__}: {exc}"
    if problem is not None:
        # Decided outside the except blocks so pytest reports one clean message.
        if broker is not None:
            broker.stop()
        if missing_tool and not in_ci:
            pytest.skip(f"Kafka test broker unavailable: {problem} (install JDK 17+ and Maven, or set {BOOTSTRAP_ENV})")
        where = " in CI (CI is set, so this is an error, not a skip)" if in_ci else ""
        pytest.fail(f"Kafka test broker failed to start{where}: {problem}", pytrace=False)

    assert broker is not None
    try:
        yield KafkaEndpoint(broker.bootstrap_servers, broker)
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: KafkaEndpoint) -> str:
    """Bootstrap servers of the test broker, e.g. ``"127.0.0.1:40123"``."""
    return kafka_broker.bootstrap_servers


@pytest.fixture
def topic_factory(kafka_bootstrap: str) -> TopicFactory:
    """``make(partitions=1, prefix="t", config=None) -> str``: create a fresh uniquely named topic."""
    return TopicFactory(kafka_bootstrap)


@pytest.fixture
def unique_topic(topic_factory: TopicFactory) -> str:
    """Name of a freshly created single-partition topic."""
    return topic_factory()
