"""Integration fixtures beyond the broker: a real schema registry (Apicurio, Confluent ccompat API).

``schema_registry_url`` (session): the Confluent-compatible base URL. ``$KAFKA_SIDECAR_SCHEMA_REGISTRY_URL``
points the tests at an external registry instead (Confluent, Karapace, Apicurio ``.../apis/ccompat/v7``).
Fails loudly in CI when the registry cannot start; elsewhere skips only when Java 21+ or Maven is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REGISTRY_URL_ENV = "KAFKA_SIDECAR_SCHEMA_REGISTRY_URL"


@pytest.fixture(scope="session")
def schema_registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get(REGISTRY_URL_ENV, "").strip()
    if external:
        yield external.rstrip("/")
        return
    from kafka_sidecar_testing.broker import MissingToolError
    from kafka_sidecar_testing.registry import apicurio_registry

    work_dir: Path = tmp_path_factory.mktemp("apicurio")
    in_ci = os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no", "off"}
    try:
        context = apicurio_registry(work_dir)
        registry = context.__enter__()
    except MissingToolError as exc:
        if in_ci:
            pytest.fail(f"schema registry unavailable in CI: {exc}", pytrace=False)
        pytest.skip(f"schema registry unavailable: {exc} (or set ${REGISTRY_URL_ENV})")
    try:
        yield registry.url
    finally:
        context.__exit__(None, None, None)


@pytest.fixture(params=["aiokafka", "librdkafka"])
def producer_engine(request: pytest.FixtureRequest) -> str:
    """``kafka.producer.engine`` for a test that runs with both producer engines: configs read it as
    ``${PRODUCER_ENGINE:aiokafka}``; pass ``{"PRODUCER_ENGINE": producer_engine}`` in the sidecar's env."""
    return str(request.param)


@pytest.fixture(params=["aiokafka", "librdkafka"])
def consumer_engine(request: pytest.FixtureRequest) -> str:
    """``kafka.consumer.engine`` for a reactive test that runs with both consumer engines:
    ``test_reactive_support.sidecar_yaml`` reads it as ``${CONSUMER_ENGINE:aiokafka}``; pass
    ``{"CONSUMER_ENGINE": consumer_engine}`` in the sidecar's env."""
    return str(request.param)
