"""The ``jwt`` middleware in a real chain: 401 without/with a bad token, 403 without the route's scope."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kafka_sidecar.testing import running_sidecar
from kafka_sidecar_testing.leak_scan import SecretWatch

KEY = ec.generate_private_key(ec.SECP256R1())
MINTED: list[str] = []  # tokens made by make_token, registered with secret_watch after each test

CONFIG = """\
kafka:
  bootstrap_servers: 127.0.0.1:1
  connect_timeout_ms: 200
handlers:
  auth:
    use: jwt
    config:
      public_key_files: [{pem}]
      audience: kafka-sidecar
      issuer: https://idp.test/
      route_scopes:
        "POST /producers/{{topic}}": [kafka:w]
  producer: {{use: producer}}
chains:
  secured: [auth]
paths:
  - {{path: "/producers/{{topic}}", method: POST, exec: [secured, producer]}}
"""


def make_token(scope: str, *, audience: str = "kafka-sidecar", key: ec.EllipticCurvePrivateKey = KEY) -> str:
    claims = {"aud": audience, "iss": "https://idp.test/", "exp": int(time.time()) + 60, "scope": scope}
    token = jwt.encode(claims, key, algorithm="ES256")
    MINTED.append(token)
    return token


@pytest.fixture(autouse=True)
def _watch_secrets(secret_watch: SecretWatch) -> Iterator[None]:
    """Registers every token minted here for the whole-run leak check (tests/zz_final)."""
    yield
    while MINTED:
        secret_watch.add(MINTED.pop())


@pytest.mark.asyncio
async def test_jwt_scopes_guard_the_produce_route(tmp_path: Path) -> None:
    pem = tmp_path / "issuer.pem"
    pem.write_bytes(
        KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    body = {"records": [{"value": 1}]}
    async with running_sidecar(CONFIG.format(pem=pem), tmp_path, env={}, wait_for_kafka=0) as rs:
        none = await rs.client.post("/producers/t", json=body)
        forged = await rs.client.post(
            "/producers/t",
            json=body,
            headers={"Authorization": "Bearer " + make_token("kafka:w", key=ec.generate_private_key(ec.SECP256R1()))},
        )
        wrong_aud = await rs.client.post(
            "/producers/t", json=body, headers={"Authorization": "Bearer " + make_token("kafka:w", audience="x")}
        )
        reader = await rs.client.post(
            "/producers/t", json=body, headers={"Authorization": "Bearer " + make_token("kafka:r")}
        )
        writer = await rs.client.post(
            "/producers/t", json=body, headers={"Authorization": "Bearer " + make_token("kafka:r kafka:w")}
        )
    assert none.status_code == 401
    assert none.json()["field"] == "authorization"
    assert forged.status_code == 401
    assert "signature" in forged.json()["detail"]
    assert wrong_aud.status_code == 401
    assert "audience" in wrong_aud.json()["detail"].lower()
    assert reader.status_code == 403
    assert reader.json()["field"] == "scope"
    assert "kafka:w" in reader.json()["detail"]
    # Past the guard: the producer runs and reports that Kafka (not reachable in this test) is down.
    assert writer.status_code == 503
    assert writer.json()["code"] == "kafka-unavailable"
