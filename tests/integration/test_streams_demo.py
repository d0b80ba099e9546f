"""``examples/streams/demo.sh --smoke`` against the session's broker: orders in over HTTP, counts out at the backend."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from streams_support import REPO, streams_python

DEMO = REPO / "examples" / "streams" / "demo.sh"


@pytest.mark.kafka
@pytest.mark.timeout(200)
def test_streams_demo_smoke(kafka_bootstrap: str) -> None:
    streams_python()  # skips (or fails in CI) without the quixstreams venv
    env = {k: v for k, v in os.environ.items() if k not in ("SIDECAR_PORT", "BACKEND_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    process = subprocess.Popen(
        [str(DEMO), "--smoke", "--bootstrap", kafka_bootstrap],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # on a timeout the whole group is stopped
    )
    try:
        output, _ = process.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)  # the script's trap stops what it started
        output, _ = process.communicate(timeout=60)
        pytest.fail(f"examples/streams/demo.sh --smoke did not finish within 150 s:\n{output}")
    assert process.returncode == 0, output
    counts = [line for line in output.splitlines() if line.startswith("  customer-") and " is number " in line]
    assert len(counts) == 6, output
    per_customer: dict[str, list[int]] = {}
    for line in counts:  # "  customer-1: order <run>-3 is number 2 (...)"
        per_customer.setdefault(line.split(":")[0].strip(), []).append(int(line.split(" is number ")[1].split()[0]))
    for numbers in per_customer.values():  # consecutive: the counts continue on a reused broker
        assert numbers == list(range(numbers[0], numbers[0] + 3)), output
    assert "round trip OK" in output
