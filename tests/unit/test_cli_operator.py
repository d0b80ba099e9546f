"""What an operator sees from the command: one-line start-up errors, --version, quiet pipes and logs.

Each start-up failure runs the real ``kafka-sidecar run`` process and checks its whole output: one
line that names the config key and the fix, exit code 2, no traceback and no "ready" line.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from kafka_sidecar._logs import NOISE, QUIET_LOGGERS, configure_logging
from kafka_sidecar.cli import main
from kafka_sidecar_testing.process import SidecarProcess

CONFIG = """\
server:
  port: ${SIDECAR_PORT:0}
kafka: {bootstrap_servers: "127.0.0.1:1", connect_timeout_ms: 200}
paths:
  - {path: "/producers/{topic}", method: POST, exec: [producer]}
"""


def run(tmp_path: Path, config: str = CONFIG, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "chains.yml"
    path.write_text(config, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "kafka_sidecar", "run", "-c", str(path), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line_failure(done: subprocess.CompletedProcess[str]) -> str:
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 2, output
    assert "Traceback" not in output
    assert "ready:" not in output
    assert "listening" not in output
    lines = output.splitlines()
    assert len(lines) == 1, output
    return lines[0]


def test_port_in_use_is_one_line_naming_the_key_and_the_variable(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_failure(run(tmp_path, SIDECAR_PORT=str(port)))
    assert f"port {port} on 127.0.0.1 is already in use" in line
    assert "server.port" in line
    assert "SIDECAR_PORT" in line


def test_a_tls_file_that_is_not_pem_is_one_line_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate\n", encoding="utf-8")
    (tmp_path / "key.pem").write_text("not a key\n", encoding="utf-8")
    config = CONFIG.replace(
        "server:\n", f"server:\n  tls_certfile: {tmp_path}/cert.pem\n  tls_keyfile: {tmp_path}/key.pem\n"
    )
    line = one_line_failure(run(tmp_path, config))
    assert line.startswith("kafka-sidecar cannot start: server.tls_certfile:")
    assert "PEM" in line


def test_a_kafka_ca_file_that_is_not_pem_is_one_line_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("garbage\n", encoding="utf-8")
    config = CONFIG.replace(
        "connect_timeout_ms: 200}",
        f"connect_timeout_ms: 200, security: {{protocol: SSL, ssl_cafile: {tmp_path}/ca.pem}}}}",
    )
    line = one_line_failure(run(tmp_path, config))
    assert "kafka.security.ssl_cafile" in line
    assert "CA bundle" in line


def test_a_missing_environment_variable_is_one_line_with_the_fix(tmp_path: Path) -> None:
    config = CONFIG.replace("127.0.0.1:1", "${ORDERS_BOOTSTRAP_NOT_SET}")
    line = one_line_failure(run(tmp_path, config))
    assert line.startswith("configuration error: ")
    assert "'ORDERS_BOOTSTRAP_NOT_SET' is not set" in line
    assert "${ORDERS_BOOTSTRAP_NOT_SET:value}" in line


def test_a_missing_config_file_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "kafka_sidecar", "run", "-c", str(tmp_path / "nope.yml")],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "--config" in one_line_failure(done)


def test_an_invalid_log_level_names_the_choices_without_a_traceback(tmp_path: Path) -> None:
    done = run(tmp_path, CONFIG, "--log-level", "LOUD")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "argument --log-level: invalid choice: 'LOUD'" in done.stderr
    assert "'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'" in done.stderr


FAILING_START = """
from kafka_sidecar import HandlerSpec, hookimpl

class Refuses:
    async def start(self):
        raise OSError("the handler's backend is gone")

    async def stop(self):
        pass

    async def __call__(self, exchange, call_next):
        return await call_next(exchange)

@hookimpl
def kafka_sidecar_register_handlers(register):
    register(HandlerSpec(name="refuses", factory=lambda config, resources: Refuses()))

@hookimpl
def kafka_sidecar_startup(sidecar):
    if "FAIL_THE_STARTUP_HOOK" in __import__("os").environ:
        raise RuntimeError("boom at start")
"""


@pytest.mark.parametrize("engine", ["hypercorn", "uvicorn"])
@pytest.mark.parametrize(
    ("failing", "clear_line"),
    [
        ("hook", "kafka-sidecar failed to start: startup hook of plugin(s) failing failed "
                 "(failing: RuntimeError('boom at start'))"),
        ("handler", "kafka-sidecar failed to start: kafka-sidecar failed to start (a handler): "
                    "OSError(\"the handler's backend is gone\")"),
    ],
)  # fmt: skip
def test_a_failed_start_is_clear_lines_without_a_traceback(
    tmp_path: Path, engine: str, failing: str, clear_line: str
) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "failing.py").write_text(FAILING_START, encoding="utf-8")
    exec_ = "[refuses, producer]" if failing == "handler" else "[producer]"
    config = f"plugins: {{dirs: [plugins]}}\nserver: {{port: 0, engine: {engine}}}\n" + CONFIG.split("\n", 2)[
        2
    ].replace("exec: [producer]", f"exec: {exec_}")
    env = {"FAIL_THE_STARTUP_HOOK": "1"} if failing == "hook" else {}
    done = run(tmp_path, config, **env)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "LifespanFailureError" not in done.stderr
    assert "ready:" not in done.stderr
    assert done.stderr.splitlines()[-1] == clear_line


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"kafka-sidecar {version('kafka-sidecar')}"


def test_a_closed_stdout_pipe_ends_quietly() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "kafka_sidecar", "handlers"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()  # as `| head` does once it has its lines
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141
    assert "Traceback" not in err
    assert "BrokenPipeError" not in err


def test_handlers_shows_descriptions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["handlers"]) == 0
    lines = capsys.readouterr().out.splitlines()
    index = next(i for i, line in enumerate(lines) if line.strip().startswith("reactive-consumer "))
    assert lines[index + 1].strip().startswith("Consume topics and push batches to a backend")


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    names = [*QUIET_LOGGERS, *NOISE]
    saved = {name: (logging.getLogger(name).level, logging.getLogger(name).filters[:]) for name in names}
    try:
        yield
    finally:
        root.handlers[:], root.level = handlers, level
        for name, (old_level, filters) in saved.items():
            logging.getLogger(name).setLevel(old_level)
            logging.getLogger(name).filters[:] = filters


@pytest.mark.usefixtures("restored_logging")
def test_library_noise_is_left_out_at_info_but_real_problems_are_kept(caplog: pytest.LogCaptureFixture) -> None:
    configure_logging("INFO")
    with caplog.at_level(logging.INFO):
        logging.getLogger("httpx").info('HTTP Request: GET http://127.0.0.1:8080/health "HTTP/1.1 200 OK"')
        logging.getLogger("aiokafka.cluster").error("Topic orders.dlq not found in cluster metadata")
        logging.getLogger("aiokafka").error('Unable connect to "127.0.0.1:1": [Errno 111]')
        logging.getLogger("aiokafka.consumer.group_coordinator").info("(Re-)joining group g")
        logging.getLogger("aiokafka.consumer.group_coordinator").error("OffsetCommit failed: RebalanceInProgress")
        logging.getLogger("hypercorn.error").info("Running on http://127.0.0.1:8442 (CTRL + C to quit)")
        logging.getLogger("kafka_sidecar_handlers.reactive").info("consumer demo: backend health check passes")
    assert [r.getMessage() for r in caplog.records] == [
        "OffsetCommit failed: RebalanceInProgress",
        "consumer demo: backend health check passes",
    ]


@pytest.mark.usefixtures("restored_logging")
def test_debug_shows_everything(caplog: pytest.LogCaptureFixture) -> None:
    configure_logging("DEBUG")
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("httpx").info("HTTP Request: GET /health")
        logging.getLogger("aiokafka.cluster").error("Topic x not found in cluster metadata")
    assert len(caplog.records) == 2


def test_uvicorn_logs_in_the_sidecars_format(tmp_path: Path) -> None:
    """uvicorn's own warnings (here: a malformed request) come out in the sidecar's log format, not its own."""
    config = CONFIG.replace("  port: ${SIDECAR_PORT:0}", "  port: ${SIDECAR_PORT}\n  engine: uvicorn")
    sidecar = SidecarProcess(config, tmp_path)
    sidecar.start("/health/live")
    try:
        with socket.create_connection(("127.0.0.1", sidecar.port), timeout=10) as raw:
            raw.sendall(b"NOT HTTP AT ALL\x00\r\n\r\n")
            raw.recv(1024)  # uvicorn answers 400 once it has parsed the garbage (and logged a warning)
    finally:
        assert sidecar.stop() == 0
    log = sidecar.log()
    # "<date> <time> LEVEL logger message", configure_logging's FORMAT; uvicorn's own is "WARNING:  message"
    fields = [line.split(" ", 4) for line in log.splitlines()]
    warned = [f for f in fields if len(f) == 5 and f[3].startswith("uvicorn") and "Invalid HTTP request" in f[4]]
    assert warned, log
    assert warned[0][2] == "WARNING", log
    assert not [line for line in log.splitlines() if line.startswith(("WARNING:", "INFO:", "ERROR:"))], log
