"""Suite-wide secret watch (issue 7): every log line of the run is kept and every test secret registered,
so that the last tests (``tests/zz_final/test_no_secret_leaks.py``) can grep the logs and all Kafka topics.

The plugin lives in :mod:`kafka_sidecar_testing.leak_plugin` (type-checked there; mypy cannot check two
modules named ``conftest``, so this file is excluded from mypy and only re-exports).
"""

try:
    from kafka_sidecar_testing.leak_plugin import (
        pytest_configure,
        pytest_runtest_call,
        pytest_runtest_setup,
        pytest_sessionstart,
        pytest_unconfigure,
        secret_watch,
        secure_kafka_bootstraps,
        tests_ran,
    )
except ModuleNotFoundError as exc:
    if (exc.name or "").partition(".")[0] != "kafka_sidecar_testing":
        raise
    raise ImportError(
        "the test harness is not installed: pip install -e ./testing -c constraints.txt "
        "(the kafka-sidecar-testing distribution; scripts/test.sh installs it)"
    ) from exc

__all__ = [
    "pytest_configure",
    "pytest_runtest_call",
    "pytest_runtest_setup",
    "pytest_sessionstart",
    "pytest_unconfigure",
    "secret_watch",
    "secure_kafka_bootstraps",
    "tests_ran",
]
