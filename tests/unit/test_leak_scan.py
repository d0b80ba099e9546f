"""The whole-run leak check can fail: planted secrets are found in log lines and records, and named."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import jwt
import pytest

from kafka_sidecar_testing.leak_scan import CapturingHandler, SecretWatch, log_file_lines, mask, scan_lines, scan_record

PLANTED = "planted-secret-0d9e8f7a"


def watch_with_planted() -> SecretWatch:
    watch = SecretWatch()
    watch.add(PLANTED)
    watch.add_basic_auth("svc", "basic-pass-123456")
    return watch


def test_planted_secret_in_a_log_line_is_found_masked_with_its_logger() -> None:
    watch = watch_with_planted()
    lines = [("aiokafka", "INFO aiokafka connected"), ("kafka_sidecar.x", f"DEBUG kafka_sidecar.x pw={PLANTED}")]
    leaks = scan_lines(lines, watch.needles)
    assert [str(leak) for leak in leaks] == [f"{mask(PLANTED)} found in log line 2 (logger kafka_sidecar.x)"]
    assert PLANTED not in str(leaks[0])
    assert str(leaks[0]).startswith("pla…(")


def test_base64_and_basic_auth_forms_and_any_jwt_are_found() -> None:
    watch = watch_with_planted()
    basic = base64.b64encode(b"svc:basic-pass-123456").decode()
    token = jwt.encode({"sub": "someone-unregistered", "aud": "x"}, "k" * 32, "HS256")
    lines = [
        ("a", "Authorization: Basic " + basic),
        ("b", "bearer " + base64.b64encode(PLANTED.encode()).decode()),
        ("c", "token=" + token),
        ("d", "nothing to see"),
    ]
    where = {leak.where: leak.secret for leak in scan_lines(lines, watch.needles)}
    assert where["log line 1 (logger a)"].endswith("as basic-auth base64")
    assert where["log line 2 (logger b)"] == f"{mask(PLANTED)} as base64"
    assert where["log line 3 (logger c)"].startswith("a JWT eyJ")
    assert "log line 4 (logger d)" not in where


def test_planted_secret_in_record_key_value_and_headers_is_located() -> None:
    needles = watch_with_planted().needles
    headers = [("x-ok", b"fine"), ("authorization", b"Bearer " + PLANTED.encode())]
    leaks = scan_record("orders", 2, 41, PLANTED.encode(), b"{}", headers, needles)
    assert sorted(leak.where for leak in leaks) == [
        "topic orders partition 2 offset 41 header 'authorization'",
        "topic orders partition 2 offset 41 key",
    ]
    assert scan_record("orders", 0, 0, None, None, [("x", b"clean")], needles) == []


def test_short_secrets_are_refused_as_ungreppable() -> None:
    with pytest.raises(ValueError, match="shorter"):
        SecretWatch().add("p")


def test_capture_handler_keeps_info_everywhere_and_debug_only_for_our_loggers() -> None:
    watch = SecretWatch()
    handler = CapturingHandler(watch, ("kafka_sidecar",))
    for name, level in (("aiokafka", logging.DEBUG), ("aiokafka", logging.INFO), ("kafka_sidecar.x", logging.DEBUG)):
        record = logging.LogRecord(name, level, __file__, 1, "msg %s", ("arg",), None)
        record.tenant = "acme"  # an extra field, as structured logging passes
        handler.handle(record)
    assert [logger for logger, _ in watch.lines] == ["aiokafka", "kafka_sidecar.x"]
    assert watch.lines[0][1] == "INFO aiokafka msg arg extra={'tenant': 'acme'}"


def test_a_secret_in_a_subprocess_log_file_is_found_with_the_file(tmp_path: Path) -> None:
    watch = SecretWatch()
    watch.add("planted-file-secret-42")
    (tmp_path / "t1").mkdir()
    (tmp_path / "t1" / "sidecar.log").write_text("INFO start\nERROR auth planted-file-secret-42 failed\n")
    (tmp_path / "t2.log").write_text("clean\n")
    (tmp_path / "notes.txt").write_text("planted-file-secret-42\n")  # not a log file: not read
    files, lines = log_file_lines(tmp_path)
    assert files == 2
    (leak,) = scan_lines(lines, watch.needles)
    assert "file t1/sidecar.log" in str(leak)
    assert "planted-file-secret-42" not in str(leak)  # reported masked
