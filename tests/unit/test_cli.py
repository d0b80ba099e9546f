"""The kafka-sidecar command: check, handlers."""

from __future__ import annotations

from pathlib import Path

import pytest

from kafka_sidecar.cli import main


def test_check_reports_every_problem_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "chains.yml"
    config.write_text("server:\n  prot: 1\nkafka:\n  client_di: x\n", encoding="utf-8")
    assert main(["check", str(config)]) == 2
    err = capsys.readouterr().err
    assert "configuration has 2 problem(s)" in err
    assert f"{config}:2:3  server.prot  unknown key  (did you mean 'port'?)" in err
    assert f"{config}:4:3  kafka.client_di  unknown key  (did you mean 'client_id'?)" in err


def test_check_passes_the_shipped_config(capsys: pytest.CaptureFixture[str]) -> None:
    shipped = Path(__file__).parents[2] / "chains.yml"
    assert main(["check", str(shipped)]) == 0
    assert "/producers/{topic}" in capsys.readouterr().out


def test_check_refuses_a_non_loopback_bind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "chains.yml"
    config.write_text("server:\n  host: 10.0.0.5\n", encoding="utf-8")
    assert main(["check", str(config)]) == 2
    assert "allow_non_loopback" in capsys.readouterr().err
    config.write_text("server:\n  host: 10.0.0.5\n  allow_non_loopback: true\n", encoding="utf-8")
    assert main(["check", str(config)]) == 0


def test_handlers_lists_types_with_their_distribution(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["handlers"]) == 0
    out = capsys.readouterr().out
    producer_line = next(line for line in out.splitlines() if line.strip().startswith("producer "))
    assert "terminal" in producer_line
    assert "kafka-sidecar 0.1.0" in producer_line
    json_line = next(line for line in out.splitlines() if line.strip().startswith("json "))
    assert "formats (kafka-sidecar 0.1.0)" in json_line
