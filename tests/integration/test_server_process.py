"""The real server process: HTTP/1.1 and h2c on loopback, and the loopback-only bind rule."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from kafka_sidecar_testing.net import free_port, wait_ready

CONFIG = """\
server:
  host: ${SIDECAR_HOST:127.0.0.1}
  port: ${SIDECAR_PORT}
kafka:
  bootstrap_servers: ${KAFKA_BOOTSTRAP_SERVERS}
paths:
  - {path: "/producers/{topic}", method: POST, exec: [producer]}
"""


def start(tmp_path: Path, **env: str) -> tuple[subprocess.Popen[bytes], Path]:
    config = tmp_path / "chains.yml"
    config.write_text(CONFIG, encoding="utf-8")
    log = tmp_path / "sidecar.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "kafka_sidecar", "run", "-c", str(config)],
        env={**os.environ, **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return process, log


def test_non_loopback_bind_is_refused_without_opt_in(tmp_path: Path) -> None:
    process, log = start(tmp_path, SIDECAR_HOST="0.0.0.0", SIDECAR_PORT="0", KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")
    assert process.wait(timeout=60) == 2
    text = log.read_text()
    assert "server.host" in text
    assert "'0.0.0.0' is not a loopback address" in text
    assert "allow_non_loopback" in text


@pytest.mark.kafka
def test_serves_http1_and_h2c_then_stops_on_sigterm(tmp_path: Path, kafka_bootstrap: str) -> None:
    port = free_port()
    process, log = start(tmp_path, SIDECAR_PORT=str(port), KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process, log)
        with httpx.Client(http1=False, http2=True) as h2:
            response = h2.get(f"{base}/health/live")
            assert response.http_version == "HTTP/2"
            assert response.json() == {"status": "UP"}
        assert httpx.get(f"{base}/health/live").http_version == "HTTP/1.1"
        process.terminate()
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
