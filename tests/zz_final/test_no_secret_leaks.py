"""Issue 7, "never leak": after the whole suite, no test secret is in any log line or any Kafka record.

This directory sorts last (http, integration, unit, zz_final), so these tests run after everything else;
each refuses to pass if fewer than ``MIN_TESTS_BEFORE`` other tests have run in the session (it would
prove nothing when run alone or first). Secrets come from ``secret_watch`` (see ``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
from typing import Final

import pytest

from kafka_sidecar_testing.leak_scan import SecretWatch, TopicScan, log_file_lines, scan_lines, scan_topics

MIN_TESTS_BEFORE: Final = 50
MIN_SECRETS: Final = 10
SCAN_TIMEOUT: Final = 90.0


def require_whole_run(tests_ran: list[str], watch: SecretWatch) -> None:
    others = [node for node in tests_ran if not node.startswith("tests/zz_final/")]
    if len(others) < MIN_TESTS_BEFORE:
        pytest.fail(
            f"only {len(others)} tests ran before the leak check (need {MIN_TESTS_BEFORE}): it must run last, "
            "after the whole suite",
            pytrace=False,
        )
    assert len(watch.needles) >= MIN_SECRETS, "the suite registered (almost) no secrets: secret_watch is not wired"


def describe(leaks: object, limit: int = 40) -> str:
    items = [str(leak) for leak in leaks]  # type: ignore[attr-defined]
    shown = "\n  ".join(items[:limit])
    more = f"\n  … and {len(items) - limit} more" if len(items) > limit else ""
    return f"{len(items)} secret leak(s):\n  {shown}{more}"


@pytest.mark.kafka
@pytest.mark.timeout(240)
def test_no_secret_in_any_record_of_any_topic(
    kafka_bootstrap: str, secure_kafka_bootstraps: list[str], secret_watch: SecretWatch, tests_ran: list[str]
) -> None:
    require_whole_run(tests_ran, secret_watch)
    needles = secret_watch.needles
    scans: list[tuple[str, TopicScan]] = []
    for name, bootstrap in [("session broker", kafka_bootstrap)] + [
        ("secured broker", b) for b in secure_kafka_bootstraps
    ]:
        scans.append((name, asyncio.run(scan_topics(bootstrap, needles, timeout=SCAN_TIMEOUT))))
    main = scans[0][1]
    assert main.topics, "no topic on the session broker: the scan looked at nothing"
    assert main.records > 0, f"no record read from {len(main.topics)} topics on the session broker"
    unfinished = [f"{name}: {part}" for name, scan in scans for part in scan.unfinished]
    assert not unfinished, f"partitions not read to their end within {SCAN_TIMEOUT}s: {unfinished[:20]}"
    for name, scan in scans:  # shown with -rP: what the check actually read
        print(f"{name}: {len(scan.topics)} topics, {scan.records} records, {len(needles)} needles")
    leaks = [leak for _, scan in scans for leak in scan.leaks]
    assert not leaks, describe(leaks)


def test_no_secret_in_any_log_line_of_the_run(
    secret_watch: SecretWatch, tests_ran: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    require_whole_run(tests_ran, secret_watch)
    lines = list(secret_watch.lines)
    assert len(lines) > 100, f"only {len(lines)} log lines captured: the capture handler is not wired"
    assert any(logger.startswith("kafka_sidecar") for logger, _ in lines)
    files, file_lines = log_file_lines(tmp_path_factory.getbasetemp())
    # the SIGTERM, server-process and SIGKILL tests each run a sidecar process that logs to a file
    assert files >= 3, f"only {files} subprocess log files found under the test temp folder"
    leaks = scan_lines([*lines, *file_lines], secret_watch.needles)
    print(
        f"{len(lines)} captured log lines + {len(file_lines)} lines in {files} subprocess log files, "
        f"{len(secret_watch.needles)} needles, {len(tests_ran)} tests ran"
    )
    assert not leaks, describe(leaks)
