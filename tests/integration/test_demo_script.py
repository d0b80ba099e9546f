"""The README's first command, ``./scripts/demo.sh``, in its ``--smoke`` mode.

It starts its own broker (cached jars), the example backend and the sidecar with the shipped
chains.yml, produces over HTTP, reads the records back from Kafka, and stops everything it started.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kafka_sidecar_testing.broker import find_java

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "scripts" / "demo.sh"


@pytest.mark.kafka
@pytest.mark.timeout(300)
def test_demo_smoke_round_trip() -> None:
    if find_java() is None and not os.environ.get("CI"):
        pytest.skip("the demo starts its own Kafka broker, which needs java (JDK 17+)")
    env = {k: v for k, v in os.environ.items() if k not in ("SIDECAR_PORT", "BACKEND_PORT", "KAFKA_BOOTSTRAP_SERVERS")}
    # Its own session, so that on a timeout the whole group (script, broker, sidecar, backend) is stopped.
    process = subprocess.Popen(
        [str(DEMO), "--smoke"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=200)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)  # the script's trap stops what it started
        try:
            output, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
        pytest.fail(f"scripts/demo.sh --smoke did not finish within 200 s:\n{output}")
    assert process.returncode == 0, output
    assert "HTTP 200" in output
    # Both records came back from Kafka carrying this run's header ...
    read_back = [line for line in output.splitlines() if line.startswith("  partition=") and "'demo-run'" in line]
    assert len(read_back) == 2, output
    # ... and reached the example backend: through the sidecar's reactive consumer when the shipped
    # chains.yml declares the `demo` consumer, else handed over by the script in the same batch format.
    if "consumer demo " in _check_shipped_config():
        delivered = [line for line in output.splitlines() if line.startswith("  backend got: consumer=demo ")]
        assert len(delivered) == 2, output
        assert "sidecar reactive consumer -> backend" in output
    else:
        assert '"status":"SUCCESS"' in output
    assert "round trip OK" in output
    # It says which step it is in, and how long each took; pip's noise is kept out of sight.
    assert "==> [1] Python environment (.venv)" in output
    assert "==> [2] Apache Kafka broker" in output
    assert "broker jars: " in output
    assert "step timings" in output
    assert re.search(r"^\s+\d+s  kafka-sidecar \(chains\.yml\)$", output, re.MULTILINE), output
    assert "Editable" not in output


def _check_shipped_config() -> str:
    env = {**os.environ, "DEMO_CONSUMER_ENABLED": "true"}
    cli = Path(sys.executable).with_name("kafka-sidecar")
    result = subprocess.run(
        [str(cli), "check", "chains.yml"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout
