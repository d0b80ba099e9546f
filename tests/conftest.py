"""Suite-wide secret watch (issue 7): every log line of the run is kept so that the last test
(``tests/zz_final/test_no_secret_leaks.py``) can grep it, and the Kafka topics, for every test secret.

* At session start a :class:`~kafka_sidecar.testing.leak_scan.CapturingHandler` goes on the root logger:
  INFO and above from every logger, DEBUG as well from the ``kafka_sidecar*`` loggers (aiokafka's DEBUG
  output is too voluminous). Before every test the handler and those levels are put back if a test or a
  sidecar's logging plugin changed them.
* ``secret_watch`` (session): the :class:`~kafka_sidecar.testing.leak_scan.SecretWatch`; tests call
  ``secret_watch.add(secret)`` for every secret they hand to the sidecar.
* The secured broker's SCRAM passwords are registered when its ``secure_kafka`` fixture starts, and the
  broker is remembered so the final test can scan its topics too (it stays up until the session ends).
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Final

import pytest

from kafka_sidecar.testing.leak_scan import CapturingHandler, SecretWatch

DEBUG_LOGGERS: Final = ("kafka_sidecar", "kafka_sidecar_handlers", "kafka_sidecar_plugins")
WATCH_KEY: Final = pytest.StashKey[SecretWatch]()
HANDLER_KEY: Final = pytest.StashKey[CapturingHandler]()
PASSED_KEY: Final = pytest.StashKey[list[str]]()
SECURE_BOOTSTRAPS_KEY: Final = pytest.StashKey[list[str]]()


def _ensure_capture(handler: CapturingHandler) -> None:
    root = logging.getLogger()
    if handler not in root.handlers:
        root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    for name in DEBUG_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level > logging.DEBUG:
            logger.setLevel(logging.DEBUG)


def pytest_configure(config: pytest.Config) -> None:
    watch = SecretWatch()
    config.stash[WATCH_KEY] = watch
    config.stash[HANDLER_KEY] = CapturingHandler(watch, DEBUG_LOGGERS)
    config.stash[PASSED_KEY] = []
    config.stash[SECURE_BOOTSTRAPS_KEY] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    _ensure_capture(session.config.stash[HANDLER_KEY])


def pytest_unconfigure(config: pytest.Config) -> None:
    handler = config.stash.get(HANDLER_KEY, None)
    if handler is not None:
        logging.getLogger().removeHandler(handler)


def pytest_runtest_setup(item: pytest.Item) -> None:
    _ensure_capture(item.config.stash[HANDLER_KEY])


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed:
        _passed_list(report).append(report.nodeid)


def _passed_list(report: pytest.TestReport) -> list[str]:
    # reports carry no config; the list lives in a closure-free module-level lookup via the plugin manager
    return _CONFIG_HOLDER[0].stash[PASSED_KEY]


_CONFIG_HOLDER: list[pytest.Config] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest) -> Generator[None]:
    outcome = yield
    if fixturedef.argname != "secure_kafka" or outcome.excinfo is not None:
        return
    from kafka_sidecar.testing.secure_fixtures import SecureKafka

    kafka = outcome.get_result()
    if isinstance(kafka, SecureKafka):
        watch = request.config.stash[WATCH_KEY]
        for user in (kafka.alice, kafka.bob):
            watch.add_basic_auth(user.name, user.password)
        request.config.stash[SECURE_BOOTSTRAPS_KEY].append(kafka.broker.plaintext_bootstrap)


@pytest.fixture(scope="session")
def secret_watch(pytestconfig: pytest.Config) -> SecretWatch:
    """The session's secret registry and captured log lines (see the module docstring)."""
    return pytestconfig.stash[WATCH_KEY]
