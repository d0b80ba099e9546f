"""schemathesis (the real CLI) against the served /openapi.json of a real sidecar process running the
shipped chain: every operation, its standard checks, seeded and bounded so it stays about a minute.

So that operations on a consumer instance and a reactive consumer reach more than their 404, an active
consumer instance exists before the run and the shipped demo reactive consumer is on (its backend
unreachable); the config file hands their names to schemathesis."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from kafka_sidecar_testing.process import SidecarProcess

pytestmark = [pytest.mark.kafka]

SHIPPED = Path(__file__).resolve().parents[2] / "chains.yml"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
SEED = "20261204"
MAX_EXAMPLES = "10"


def test_every_operation_conforms_to_the_served_openapi(tmp_path: Path, kafka_bootstrap: str) -> None:
    sidecar = SidecarProcess(
        SHIPPED.read_text(encoding="utf-8"), tmp_path, {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    )
    with sidecar:
        command = [
            str(Path(sys.executable).with_name("schemathesis")),
            "run", f"{sidecar.base_url}/openapi.json",
            "--checks", CHECKS,
            "--max-examples", MAX_EXAMPLES,
            "--seed", SEED,
            "--workers", "1",  # hypothesis' lambda-source cache is not thread-safe on 3.11
            "--no-shrink",
            "--generation-database", "none",
            "--request-timeout", "40",
            "--no-color",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", output)
    assert generated is not None, output[-3000:]
    assert generated.group(1) == generated.group(2)
    assert int(generated.group(1)) > 1000, "every operation was exercised"
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    tested = re.search(r"Tested: (\d+)", output)
    assert selected is not None, output[-3000:]
    assert tested is not None, output[-3000:]
    assert selected.group(1) == selected.group(2) == tested.group(1), "all operations were tested"
    assert "Traceback" not in sidecar.log()
