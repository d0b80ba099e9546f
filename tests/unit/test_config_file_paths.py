"""File keys of the core config (``server.tls_*``, ``kafka.security.*file``) are read from the config file's
folder, never the working directory; a file that is missing is a ``check`` problem at its ``file:line:col``.

The ``run`` test starts the real command from another folder with relative TLS files, waits for its
``ready:`` line, fetches ``/health/live`` over HTTPS trusting the test CA, and stops it with SIGTERM.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kafka_sidecar._config.model import ServerConfig
from kafka_sidecar._sidecar import Sidecar
from kafka_sidecar.cli import main

CONFIG = """\
server:
  port: ${SIDECAR_PORT:0}
  tls_certfile: certs/server.pem
  tls_keyfile: certs/server.key
kafka:
  bootstrap_servers: 127.0.0.1:1
  connect_timeout_ms: 200
  security: {protocol: SSL, ssl_cafile: certs/ca.pem}
paths:
  - {path: "/producers/{topic}", method: POST, exec: [producer]}
"""


def write_self_signed(folder: Path) -> None:
    """``ca.pem`` (a self-signed certificate for 127.0.0.1, which is also its own CA), ``server.pem``/``.key``."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kafka-sidecar test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "server.pem").write_bytes(pem)
    (folder / "ca.pem").write_bytes(pem)
    (folder / "server.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory that is not the config file's folder."""
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    return other


def test_check_resolves_core_files_against_the_config_folder(
    tmp_path: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "conf"
    write_self_signed(conf / "certs")
    (conf / "chains.yml").write_text(CONFIG, encoding="utf-8")
    (elsewhere / "certs").mkdir()  # a same-named folder in the working directory must not be used

    assert main(["check", str(conf / "chains.yml")]) == 0, capsys.readouterr().err
    config = Sidecar.from_file(conf / "chains.yml").config
    assert config.server.tls_certfile == str(conf / "certs" / "server.pem")
    assert config.server.tls_keyfile == str(conf / "certs" / "server.key")
    assert config.kafka.security.ssl_cafile == str(conf / "certs" / "ca.pem")


def test_a_missing_core_file_is_a_located_check_problem(
    tmp_path: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "conf"
    write_self_signed(elsewhere / "certs")  # present in the working directory only
    conf.mkdir()
    path = conf / "chains.yml"
    path.write_text(CONFIG, encoding="utf-8")

    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3:17  server.tls_certfile  file '{conf / 'certs' / 'server.pem'}' does not exist" in err
    assert f"{path}:4:16  server.tls_keyfile  file '{conf / 'certs' / 'server.key'}' does not exist" in err
    assert f"{path}:8:41  kafka.security.ssl_cafile  file '{conf / 'certs' / 'ca.pem'}' does not exist" in err


def test_a_hand_made_config_keeps_its_readability_guard() -> None:
    with pytest.raises(ValueError, match="tls_certfile: cannot read"):
        ServerConfig(tls_certfile="no/such/cert.pem", tls_keyfile="no/such/key.pem")


def test_run_from_another_folder_serves_https_with_the_relative_files(tmp_path: Path, elsewhere: Path) -> None:
    conf = tmp_path / "conf"
    write_self_signed(conf / "certs")
    (conf / "chains.yml").write_text(CONFIG, encoding="utf-8")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "kafka_sidecar", "run", "-c", str(conf / "chains.yml")],
        cwd=elsewhere,
        env={**os.environ, "SIDECAR_PORT": str(port)},
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    try:
        deadline = time.monotonic() + 30
        lines: list[str] = []
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            lines.append(line)
            if " ready: " in line:
                break
        assert any(f"ready: https://127.0.0.1:{port}" in line for line in lines), lines
        context = ssl.create_default_context(cafile=str(conf / "certs" / "ca.pem"))
        reply = httpx.get(f"https://127.0.0.1:{port}/health/live", verify=context, timeout=10)
        assert reply.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=30)[1]
    assert process.returncode == 0, rest
    assert "Traceback" not in "".join(lines) + rest


def test_handler_file_keys_are_resolved_and_checked_the_same_way(
    tmp_path: Path, elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``file=True`` config fields of handlers and plugin sections get the same treatment (ksqlDB TLS
    files, the JWT plugin's JWKS CA bundle, the schema registry's TLS files)."""
    conf = tmp_path / "conf"
    conf.mkdir()
    path = conf / "chains.yml"
    path.write_text(
        "handlers:\n  views:\n    use: ksqldb-consumer\n    config:\n"
        '      server: "https://127.0.0.1:8088"\n      ca_file: certs/ksqldb-ca.pem\n'
        '      query: "CREATE STREAM S2 AS SELECT * FROM S EMIT CHANGES;"\n      sink_topic: s2\n'
        "      delivery: {group: g, backend_url: 'http://127.0.0.1:8080'}\n"
        "  auth: {use: jwt, config: {jwks_url: 'https://127.0.0.1:9/keys', jwks_cafile: jwks-ca.pem}}\n"
        'paths:\n  - {path: "/producers/{topic}", method: POST, exec: [auth, producer]}\n'
        "consumers:\n  views: {exec: [views]}\n",
        encoding="utf-8",
    )
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:6:16  handlers.views.config.ca_file  file '{conf / 'certs' / 'ksqldb-ca.pem'}' does not" in err
    assert f"handlers.auth.config.jwks_cafile  file '{conf / 'jwks-ca.pem'}' does not exist" in err

    path.write_text(
        "schema_registry:\n  urls: ['https://127.0.0.1:8081']\n  ca_file: registry-ca.pem\n", encoding="utf-8"
    )
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3:12  schema_registry.ca_file  file '{conf / 'registry-ca.pem'}' does not exist" in err
