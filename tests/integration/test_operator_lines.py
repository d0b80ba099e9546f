"""The lines an operator reads from a real `kafka-sidecar run`: ready, stop, unreachable broker, quiet libraries."""

from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from kafka_sidecar_testing.process import SidecarProcess, sidecar_process


def wait_for_output(sidecar: SidecarProcess, pattern: str, count: int = 1, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while len(re.findall(pattern, sidecar.log(), re.MULTILINE)) < count:
        assert sidecar.process is not None
        assert sidecar.process.poll() is None, sidecar.log()
        assert time.monotonic() < deadline, f"no {count} x {pattern!r} in:\n{sidecar.log()}"
        time.sleep(0.05)  # polling a condition with a deadline
    return sidecar.log()


def reactive_config(bootstrap: str, topic: str, group: str, settings: str) -> str:
    """A config with a produce route and one reactive consumer ``orders``; ``settings`` is YAML flow text."""
    return f"""\
    server: {{port: "${{SIDECAR_PORT}}"}}
    kafka: {{bootstrap_servers: "{bootstrap}"}}
    handlers:
      orders-in: {{use: reactive-consumer, config: {{topics: [{topic}], group: {group}, {settings}}}}}
    consumers:
      orders: {{exec: [orders-in]}}
    paths:
      - {{path: "/producers/{{topic}}", method: POST, exec: [producer]}}
    """


def stop(sidecar: SidecarProcess) -> str:
    assert sidecar.stop(timeout=30) == 0, sidecar.log()  # SIGTERM
    return sidecar.log()


def test_an_unreachable_broker_is_reported_once_with_the_key_not_on_every_retry(tmp_path: Path) -> None:
    config = """\
    server: {port: "${SIDECAR_PORT}"}
    kafka: {bootstrap_servers: "127.0.0.1:1", connect_timeout_ms: 300}
    paths:
      - {path: "/producers/{topic}", method: POST, exec: [producer]}
    """
    with sidecar_process(config, tmp_path, args=["--log-level", "DEBUG"], ready=False) as sidecar:
        # DEBUG shows each retry, so we can wait for three of them; the warning stays a single line.
        output = wait_for_output(sidecar, r"Kafka still unreachable at 127\.0\.0\.1:1", count=3)
        assert httpx.get(sidecar.base_url + "/health/ready").status_code == 503
        output = stop(sidecar)
    warnings = [line for line in output.splitlines() if "WARNING" in line and "Kafka unreachable" in line]
    roles = [re.search(r"Kafka unreachable at 127\.0\.0\.1:1 \(([\w-]+)\)", line) for line in warnings]
    # one line per Kafka client of the sidecar (the producer, and the internal one), not one per retry
    assert sorted(m.group(1) for m in roles if m) == sorted({m.group(1) for m in roles if m}), output
    assert "producer" in [m.group(1) for m in roles if m], output
    for line in warnings:
        assert "no broker answered" in line
        assert "kafka.bootstrap_servers" in line
        assert "KAFKA_BOOTSTRAP_SERVERS" in line


@pytest.mark.kafka
def test_ready_and_stopped_lines_and_no_library_chatter(
    tmp_path: Path, kafka_bootstrap: str, topic_factory: Any
) -> None:
    topic = topic_factory(partitions=1, prefix="oplines")
    settings = 'backend_url: "${BACKEND}", backend_health_url: "${BACKEND}/health", health_interval_ms: 100'
    config = reactive_config(kafka_bootstrap, topic, "oplines", settings)
    with sidecar_process(config, tmp_path, env={"BACKEND": "http://127.0.0.1:1"}) as sidecar:
        response = httpx.post(f"{sidecar.base_url}/producers/{topic}", json={"records": [{"value": 1}]})
        assert response.status_code == 200
        output = stop(sidecar)
    ready = [line for line in output.splitlines() if " ready: " in line]
    assert len(ready) == 1, output
    assert (
        f"ready: {sidecar.base_url}, broker {kafka_bootstrap}, chains: none, 1 route(s), consumers: orders" in ready[0]
    )
    stopped = [line for line in output.splitlines() if " stopped " in line]
    assert len(stopped) == 1, output
    assert re.search(r"stopped \d+\.\d s after the stop signal: HTTP requests finished; consumers orders", stopped[0])
    assert stopped[0].endswith("producer flushed")
    for chatter in ("HTTP Request:", "Running on", "not found in cluster metadata", "Subscribed to topic",
                    "Unable connect to"):  # fmt: skip
        assert chatter not in output


@pytest.mark.kafka
def test_a_failing_backend_logs_retries_then_the_last_attempt_and_one_dead_letter_line(
    tmp_path: Path, kafka_bootstrap: str, topic_factory: Any
) -> None:
    topic = topic_factory(partitions=1, prefix="oplast")

    class Failing(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(500)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    backend = f"http://127.0.0.1:{server.server_address[1]}"
    settings = f'backend_url: "{backend}", retry: {{max_attempts: 2, initial_backoff_ms: 10, max_backoff_ms: 20}}'
    config = reactive_config(kafka_bootstrap, topic, "oplast", settings)
    try:
        with sidecar_process(config, tmp_path) as sidecar:
            response = httpx.post(
                f"{sidecar.base_url}/producers/{topic}", json={"records": [{"key": "o1", "value": 1}]}
            )
            assert response.status_code == 200
            output = wait_for_output(sidecar, "dead-lettered")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    lines = output.splitlines()
    retried = [line for line in lines if "delivery failed" in line]
    assert len(retried) == 2, output
    assert retried[0].endswith("the batch will be retried (attempt 1 of 2)")
    assert retried[1].endswith("that was the last attempt (2 of 2); its records go to the dead-letter topic")
    [letter] = [line for line in lines if "dead-lettered" in line]
    assert f"consumer orders: dead-lettered {topic}-0@0 -> {topic}.dlq-0@0 after 2 attempt(s)" in letter
