"""pytest plugin behind the suite-wide secret watch (issue 7); loaded by ``tests/conftest.py``.

* At session start a :class:`~kafka_sidecar_testing.leak_scan.CapturingHandler` goes on the root logger:
  INFO and above from every logger, DEBUG as well from the ``kafka_sidecar*`` loggers (aiokafka's DEBUG
  output is too voluminous). Before every test the handler and those levels are put back if a test or a
  sidecar's logging plugin changed them.
* ``secret_watch`` (session): the :class:`~kafka_sidecar_testing.leak_scan.SecretWatch`; tests call
  ``secret_watch.add(secret)`` for every secret they hand to the sidecar.
* ``tests_ran`` (session): node ids of the tests whose call phase ran so far, so the final check can
  refuse to pass when it did not run last.
* The secured broker's SCRAM passwords are registered by the first test using ``secure_kafka``, and its
  super-user bootstrap is kept in ``secure_kafka_bootstraps`` so the final test scans its topics too
  (a session fixture: it stays up until the session ends).

Not a ``pytest11`` entry point: only this project's own suite opts in.
"""

from __future__ import annotations

import logging
from typing import Final

import pytest

from kafka_sidecar_testing.leak_scan import CapturingHandler, SecretWatch

DEBUG_LOGGERS: Final = ("kafka_sidecar", "kafka_sidecar_handlers", "kafka_sidecar_plugins")
WATCH_KEY: Final = pytest.StashKey[SecretWatch]()
HANDLER_KEY: Final = pytest.StashKey[CapturingHandler]()
RAN_KEY: Final = pytest.StashKey[list[str]]()
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
    config.stash[RAN_KEY] = []
    config.stash[SECURE_BOOTSTRAPS_KEY] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    _ensure_capture(session.config.stash[HANDLER_KEY])


def pytest_unconfigure(config: pytest.Config) -> None:
    handler = config.stash.get(HANDLER_KEY, None)
    if handler is not None:
        logging.getLogger().removeHandler(handler)


def pytest_runtest_setup(item: pytest.Item) -> None:
    _ensure_capture(item.config.stash[HANDLER_KEY])


def pytest_runtest_call(item: pytest.Item) -> None:
    item.config.stash[RAN_KEY].append(item.nodeid)
    # A session fixture's setup hook goes to the session node, which a tests/ conftest does not see,
    # so the secured broker is picked up from the first test that uses it.
    kafka = getattr(item, "funcargs", {}).get("secure_kafka")
    if kafka is None:
        return
    from kafka_sidecar_testing.secure_fixtures import SecureKafka

    bootstraps = item.config.stash[SECURE_BOOTSTRAPS_KEY]
    if isinstance(kafka, SecureKafka) and kafka.broker.plaintext_bootstrap not in bootstraps:
        watch = item.config.stash[WATCH_KEY]
        for user in (kafka.alice, kafka.bob):
            watch.add_basic_auth(user.name, user.password)
        bootstraps.append(kafka.broker.plaintext_bootstrap)


@pytest.fixture(scope="session")
def secret_watch(pytestconfig: pytest.Config) -> SecretWatch:
    """The session's secret registry and captured log lines (see the module docstring)."""
    return pytestconfig.stash[WATCH_KEY]


@pytest.fixture(scope="session")
def tests_ran(pytestconfig: pytest.Config) -> list[str]:
    """Node ids of the tests whose call phase has run so far in this session (a live list)."""
    return pytestconfig.stash[RAN_KEY]


@pytest.fixture(scope="session")
def secure_kafka_bootstraps(pytestconfig: pytest.Config) -> list[str]:
    """Super-user bootstrap of every secured broker started this session (live list; empty if none ran)."""
    return pytestconfig.stash[SECURE_BOOTSTRAPS_KEY]
