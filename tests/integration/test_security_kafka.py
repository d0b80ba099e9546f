"""The sidecar against a real secured broker: mutual TLS, SASL_SSL SCRAM, ACLs, and clear failures."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from test_reactive_support import Backend, serving, wait_for

from kafka_sidecar._config.model import KafkaConfig, SecuritySettings
from kafka_sidecar._kafka.diagnose import diagnose_connection
from kafka_sidecar._kafka.options import consumer_kwargs
from kafka_sidecar.testing import running_sidecar
from kafka_sidecar_testing.leak_scan import SecretWatch
from kafka_sidecar_testing.secure_fixtures import SecureKafka, secure_kafka
from kafka_sidecar_testing.token_endpoint import TokenEndpoint, private_ca_endpoint

__all__ = ["secure_kafka"]  # the fixture, imported so pytest finds it

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]


def sidecar_yaml(bootstrap: str, security: dict[str, str]) -> str:
    lines = "\n".join(f"    {key}: {value}" for key, value in security.items())
    return f"""\
kafka:
  bootstrap_servers: {bootstrap}
  connect_timeout_ms: 5000
  producer:
    request_timeout_ms: 5000
  security:
{lines}
handlers:
  producer:
    use: producer
paths:
  - path: /producers/{{topic}}
    method: POST
    exec: [producer]
"""


def mtls_yaml(kafka: SecureKafka, cafile: Path | None = None) -> str:
    b = kafka.broker
    return sidecar_yaml(
        b.ssl_bootstrap,
        {
            "protocol": "SSL",
            "ssl_cafile": str(cafile or b.ca.certfile),
            "ssl_certfile": str(b.client_cert.certfile),
            "ssl_keyfile": str(b.client_cert.keyfile),
        },
    )


def scram_yaml(kafka: SecureKafka, user: str, mechanism: str, password_source: dict[str, str]) -> str:
    return sidecar_yaml(
        kafka.broker.sasl_ssl_bootstrap,
        {
            "protocol": "SASL_SSL",
            "sasl_mechanism": mechanism,
            "sasl_username": user,
            "ssl_cafile": str(kafka.broker.ca.certfile),
            **password_source,
        },
    )


async def consume_values(kafka: KafkaConfig, topic: str, count: int, timeout: float = 20.0) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, **consumer_kwargs(kafka, "verify"), group_id=f"sec-{uuid.uuid4().hex}", auto_offset_reset="earliest"
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = time.monotonic() + timeout
        while len(values) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            values += [record.value for records in batch.values() for record in records]
    finally:
        await consumer.stop()
    return values


async def produce(client: object, topic: str, values: list[object]) -> tuple[int, dict[str, object]]:
    response = await client.post(f"/producers/{topic}", json={"records": [{"value": v} for v in values]})  # type: ignore[attr-defined]
    return response.status_code, response.json()


@pytest.mark.asyncio
async def test_produce_and_consume_over_mutual_tls(secure_kafka: SecureKafka, tmp_path: Path) -> None:
    topic = await secure_kafka.new_topic()
    async with running_sidecar(mtls_yaml(secure_kafka), tmp_path) as rs:
        ready = await rs.client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        status, body = await produce(rs.client, topic, [{"n": 1}, {"n": 2}])
        assert status == 200, body
        assert [o["offset"] for o in body["offsets"]] == [0, 1]  # type: ignore[attr-defined]
    kafka = KafkaConfig(bootstrap_servers=secure_kafka.broker.ssl_bootstrap, security=secure_kafka.mtls())
    assert await consume_values(kafka, topic, 2) == [b'{"n":1}', b'{"n":2}']


@pytest.mark.asyncio
@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_produce_and_consume_over_sasl_ssl_scram(
    secure_kafka: SecureKafka, tmp_path: Path, mechanism: str
) -> None:
    topic = await secure_kafka.new_topic()
    alice = secure_kafka.alice
    # SHA-256 reads the password from the environment, SHA-512 from a file: both supported sources.
    if mechanism == "SCRAM-SHA-256":
        source, env = {"sasl_password": "${TEST_SASL_PASSWORD}"}, {"TEST_SASL_PASSWORD": alice.password}
    else:
        secret_file = tmp_path / "sasl-password"
        secret_file.write_text(alice.password + "\n", encoding="utf-8")
        source, env = {"sasl_password_file": str(secret_file)}, {}
    async with running_sidecar(scram_yaml(secure_kafka, alice.name, mechanism, source), tmp_path, env=env) as rs:
        assert (await rs.client.get("/health/ready")).status_code == 200
        status, body = await produce(rs.client, topic, ["a", "b", "c"])
        assert status == 200, body
    security = secure_kafka.scram(alice, mechanism)
    kafka = KafkaConfig(bootstrap_servers=secure_kafka.broker.sasl_ssl_bootstrap, security=security)
    assert await consume_values(kafka, topic, 3) == [b'"a"', b'"b"', b'"c"']


def with_reactive_consumer(yaml: str, topic: str, backend: Backend, engine: str) -> str:
    """The config plus a reactive consumer of ``topic`` (group ``sec-...``, which the ACLs allow) on ``engine``."""
    consumer = (
        f"  consumer:\n    engine: {engine}\n"
        "handlers:\n"
        "  orders-in:\n    use: reactive-consumer\n"
        f"    config: {{topics: [{topic}], group: sec-{uuid.uuid4().hex[:8]}, backend_url: {backend.url}, "
        "backend_path: /deliver, batch_max_wait_ms: 5}\n"
    )
    return yaml.replace("handlers:\n", consumer, 1) + "consumers:\n  orders:\n    exec: [orders-in]\n"


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["mtls", "scram"])
async def test_the_reactive_consumer_reads_over_mutual_tls_and_sasl_ssl(
    secure_kafka: SecureKafka, tmp_path: Path, mode: str, consumer_engine: str
) -> None:
    """Both consumer engines get their TLS and SASL settings from ``kafka.security`` (librdkafka's through the
    same settings as the librdkafka producer)."""
    topic = await secure_kafka.new_topic()
    backend = Backend()
    if mode == "mtls":
        base = mtls_yaml(secure_kafka)
    else:
        secret_file = tmp_path / "sasl-password"
        secret_file.write_text(secure_kafka.alice.password + "\n", encoding="utf-8")
        base = scram_yaml(
            secure_kafka, secure_kafka.alice.name, "SCRAM-SHA-512", {"sasl_password_file": str(secret_file)}
        )
    async with (
        serving(backend),
        running_sidecar(with_reactive_consumer(base, topic, backend, consumer_engine), tmp_path) as rs,
    ):
        status, body = await produce(rs.client, topic, [{"n": 1}, {"n": 2}, {"n": 3}])
        assert status == 200, body
        await wait_for(lambda: len(backend.records()) >= 3, 30, "three records at the backend")
        consumer = (await rs.client.get("/admin/consumers/reactive/orders")).json()
    assert [r["value"] for r in backend.records()] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert consumer["engine"] == consumer_engine


async def readiness_names(client: Any, *needles: str, timeout: float = 20.0) -> str:
    """Poll /health/ready until its 503 detail names every needle (the first attempt may still be running)."""
    deadline = time.monotonic() + timeout
    detail = ""
    while time.monotonic() < deadline:
        ready = await client.get("/health/ready")
        assert ready.status_code == 503, ready.text
        detail = str(ready.json()["detail"])
        if all(needle in detail for needle in needles):
            return detail
        await asyncio.sleep(0.2)  # polling a condition with a deadline
    raise AssertionError(f"readiness never named {needles}: {detail}")


@pytest.mark.asyncio
async def test_wrong_password_is_a_clear_error_not_a_hang(
    secure_kafka: SecureKafka, tmp_path: Path, secret_watch: SecretWatch
) -> None:
    topic = await secure_kafka.new_topic()
    wrong = "definitely-not-" + uuid.uuid4().hex
    secret_watch.add(wrong)
    config = scram_yaml(secure_kafka, "alice", "SCRAM-SHA-256", {"sasl_password": wrong})
    async with running_sidecar(config, tmp_path, wait_for_kafka=0) as rs:
        began = time.monotonic()
        ready = await rs.client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["code"] == "kafka-unavailable"
        status, body = await produce(rs.client, topic, [1])
        assert status == 503, body
        assert time.monotonic() - began < 15
        assert wrong not in ready.text
        assert wrong not in str(body)
        detail = await readiness_names(rs.client, "SASL authentication failed", "'alice'")
        assert wrong not in detail
        reason = await diagnose_connection(rs.sidecar.config.kafka, 5.0)
    assert reason is not None
    assert "SASL authentication failed" in reason
    assert "'alice'" in reason
    assert "sasl_password" in reason
    assert wrong not in reason


@pytest.mark.asyncio
async def test_untrusted_ca_is_a_clear_error(secure_kafka: SecureKafka, tmp_path: Path) -> None:
    config = mtls_yaml(secure_kafka, cafile=secure_kafka.broker.untrusted_ca.certfile)
    async with running_sidecar(config, tmp_path, wait_for_kafka=0) as rs:
        ready = await rs.client.get("/health/ready")
        assert ready.status_code == 503
        await readiness_names(rs.client, "not trusted", "ssl_cafile")
        reason = await asyncio.wait_for(diagnose_connection(rs.sidecar.config.kafka, 5.0), 10)
    assert reason is not None
    assert "not trusted" in reason
    assert "ssl_cafile" in reason


@pytest.mark.asyncio
async def test_missing_client_certificate_is_named(secure_kafka: SecureKafka) -> None:
    b = secure_kafka.broker
    security = SecuritySettings(protocol="SSL", ssl_cafile=str(b.ca.certfile))
    reason = await diagnose_connection(KafkaConfig(bootstrap_servers=b.ssl_bootstrap, security=security), 5.0)
    assert reason is not None
    assert "ssl_certfile" in reason


@pytest.mark.asyncio
async def test_missing_acl_is_a_clear_error(secure_kafka: SecureKafka, tmp_path: Path) -> None:
    topic = await secure_kafka.new_topic()
    bob = secure_kafka.bob
    config = scram_yaml(secure_kafka, bob.name, "SCRAM-SHA-512", {"sasl_password": bob.password})
    async with running_sidecar(config, tmp_path, wait_for_kafka=0) as rs:
        # bob authenticates, but no ACL lets him write anything: the idempotent producer cannot get a
        # producer id, so the sidecar is not ready and says it is an authorization failure.
        assert await diagnose_connection(rs.sidecar.config.kafka, 5.0) is None
        deadline = time.monotonic() + 15
        detail = ""
        while "authorization" not in detail.lower() and time.monotonic() < deadline:
            ready = await rs.client.get("/health/ready")
            assert ready.status_code == 503
            detail = ready.json()["detail"]
            await asyncio.sleep(0.2)
        assert "ClusterAuthorizationFailed" in detail
        status, body = await produce(rs.client, topic, [1])
    assert status == 503, body
    assert "authorization" in str(body["detail"]).lower()


LEAK_CONFIG = """\
server:
  admin_token: ${{TEST_ADMIN_TOKEN}}
kafka:
  bootstrap_servers: {bootstrap}
  security:
    protocol: SASL_SSL
    sasl_mechanism: SCRAM-SHA-512
    sasl_username: alice
    sasl_password: ${{TEST_SASL_PASSWORD}}
    ssl_cafile: {cafile}
handlers:
  correlation: {{use: correlation}}
  auth:
    use: jwt
    config:
      public_key_files: [{pem}]
      audience: kafka-sidecar
      required_scopes: [kafka:w]
  audit: {{use: audit, config: {{target: kafka, topic: {audit_topic}}}}}
  producer: {{use: producer}}
paths:
  - {{path: "/producers/{{topic}}", method: POST, exec: [correlation, auth, audit, producer]}}
"""


async def consume_all(kafka: KafkaConfig, topic: str, at_least: int, timeout: float = 20.0) -> list[object]:
    consumer = AIOKafkaConsumer(
        topic, **consumer_kwargs(kafka, "verify"), group_id=f"sec-{uuid.uuid4().hex}", auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[object] = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < at_least and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            records += [record for part in batch.values() for record in part]
    finally:
        await consumer.stop()
    return records


@pytest.mark.asyncio
async def test_no_secret_reaches_logs_records_audit_or_admin_output(
    secure_kafka: SecureKafka, tmp_path: Path, caplog: pytest.LogCaptureFixture, secret_watch: SecretWatch
) -> None:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    caplog.set_level(logging.DEBUG)  # every logger, aiokafka's debug output included
    topic, audit_topic = await secure_kafka.new_topic(), await secure_kafka.new_topic()
    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "issuer.pem"
    pem.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    bearer = jwt.encode(
        {"aud": "kafka-sidecar", "exp": int(time.time()) + 120, "scope": "kafka:w", "sub": "svc"}, key, "ES256"
    )
    admin_token = "admin-" + uuid.uuid4().hex
    cookie = "session-" + uuid.uuid4().hex
    api_key = "apikey-" + uuid.uuid4().hex
    password = secure_kafka.alice.password
    for secret in (bearer, admin_token, cookie, api_key):
        secret_watch.add(secret)
    config = LEAK_CONFIG.format(
        bootstrap=secure_kafka.broker.sasl_ssl_bootstrap, cafile=secure_kafka.broker.ca.certfile, pem=pem,
        audit_topic=audit_topic,
    )  # fmt: skip
    env = {"TEST_ADMIN_TOKEN": admin_token, "TEST_SASL_PASSWORD": password}
    outputs: list[str] = []
    async with running_sidecar(config, tmp_path, env=env) as rs:
        headers = {"Authorization": f"Bearer {bearer}", "Cookie": f"session={cookie}", "X-Api-Key": api_key}
        produced = await rs.client.post(f"/producers/{topic}", json={"records": [{"value": {"n": 1}}]}, headers=headers)
        assert produced.status_code == 200, produced.text
        bad_jwt = await rs.client.post(
            f"/producers/{topic}", json={"records": [{"value": 2}]}, headers={"Authorization": f"Bearer {bearer}x"}
        )
        assert bad_jwt.status_code == 401
        wrong_admin = await rs.client.get("/admin/config", headers={"Authorization": f"Bearer {admin_token}x"})
        assert wrong_admin.status_code == 403
        shown = await rs.client.get("/admin/config", headers={"Authorization": f"Bearer {admin_token}"})
        assert shown.status_code == 200
        assert shown.json()["kafka"]["security"]["sasl_password"] == "****"
        outputs += [produced.text, bad_jwt.text, wrong_admin.text, shown.text]
        kafka = rs.sidecar.config.kafka
        records = await consume_all(kafka, topic, 1)
        audits = await consume_all(kafka, audit_topic, 1)
    assert len(records) == 1
    assert audits, "the audit plugin wrote no audit record"
    stored = [
        repr((r.key, r.value, r.headers))  # type: ignore[attr-defined]
        for r in (*records, *audits)
    ]
    header_names = {name.lower() for r in records for name, _ in r.headers}  # type: ignore[attr-defined]
    assert not header_names & {"authorization", "cookie", "x-api-key"}
    logged = [record.getMessage() for record in caplog.records]
    logged += [repr(record.args) for record in caplog.records]
    haystack = "\n".join([*stored, *logged, caplog.text, *outputs])
    assert len(caplog.records) > 10  # the sidecar, aiokafka and the plugins did log
    for secret in (password, admin_token, bearer, cookie, api_key):
        assert secret not in haystack
    assert bearer.split(".")[2] not in haystack  # not even the signature part of the JWT


@pytest.mark.asyncio
async def test_produce_over_sasl_ssl_oauthbearer_with_client_credentials(
    secure_kafka: SecureKafka, tmp_path: Path, secret_watch: SecretWatch
) -> None:
    topic = await secure_kafka.new_topic()
    client_secret = "oauth-" + uuid.uuid4().hex
    secret_watch.add_basic_auth("sidecar-client", client_secret)
    secret_watch.add_basic_auth("sidecar-client", "wrong-secret")
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(client_secret, encoding="utf-8")
    # The token's subject is the Kafka principal: alice holds the ACLs for sec- topics.
    with TokenEndpoint("sidecar-client", client_secret, "alice", signer=secure_kafka.signing_key) as idp:
        security = {
            "protocol": "SASL_SSL",
            "sasl_mechanism": "OAUTHBEARER",
            "oauth_token_endpoint": idp.url,
            "oauth_client_id": "sidecar-client",
            "oauth_client_secret_file": str(secret_file),
            "oauth_scope": "kafka",
            "ssl_cafile": str(secure_kafka.broker.ca.certfile),
        }
        yaml = sidecar_yaml(secure_kafka.broker.sasl_ssl_bootstrap, security)
        async with running_sidecar(yaml, tmp_path) as rs:
            status, body = await produce(rs.client, topic, ["via-oauth"])
            assert status == 200, body
            kafka = rs.sidecar.config.kafka
        assert idp.issued >= 1
        assert idp.scopes[0] == "kafka"
        assert await consume_values(kafka, topic, 1) == [b'"via-oauth"']

        secret_file.write_text("wrong-secret", encoding="utf-8")  # rotated to a bad secret: named clearly
        reason = await diagnose_connection(kafka, 5.0)
    assert reason is not None
    assert "refused client 'sidecar-client'" in reason
    assert "401" in reason
    assert client_secret not in reason


def oauth_yaml(kafka: SecureKafka, idp: TokenEndpoint, engine: str, **extra: str) -> str:
    """A producer on ``engine`` over SASL_SSL OAUTHBEARER with ``idp``'s client credentials (plus ``extra``)."""
    security = {
        "protocol": "SASL_SSL",
        "sasl_mechanism": "OAUTHBEARER",
        "oauth_token_endpoint": idp.url,
        "oauth_client_id": idp.client_id,
        "ssl_cafile": str(kafka.broker.ca.certfile),
        **extra,
    }
    yaml = sidecar_yaml(kafka.broker.sasl_ssl_bootstrap, security)
    return yaml.replace("  producer:\n", f"  producer:\n    engine: {engine}\n", 1)


@pytest.mark.asyncio
@pytest.mark.parametrize("engine", ["aiokafka", "librdkafka"])
async def test_both_engines_produce_and_consume_over_oauthbearer_with_a_private_ca_token_endpoint(
    secure_kafka: SecureKafka, tmp_path: Path, secret_watch: SecretWatch, engine: str
) -> None:
    """The producer and the reactive consumer on ``engine`` (librdkafka: the container image's) fetch their
    token over HTTPS from an endpoint whose certificate only ``oauth_cafile`` trusts (its own CA, not the
    broker's, not the system's), through aiokafka's token provider or librdkafka's own OIDC support."""
    topic = await secure_kafka.new_topic()
    client_secret = "oauth-" + uuid.uuid4().hex
    secret_watch.add_basic_auth("sidecar-client", client_secret)
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(client_secret, encoding="utf-8")
    endpoint, idp_cafile = private_ca_endpoint(
        tmp_path, "sidecar-client", client_secret, "alice", secure_kafka.signing_key
    )
    backend = Backend()
    with endpoint as idp:
        base = oauth_yaml(
            secure_kafka, idp, engine, oauth_client_secret_file=str(secret_file), oauth_cafile=str(idp_cafile)
        )
        async with (
            serving(backend),
            running_sidecar(with_reactive_consumer(base, topic, backend, engine), tmp_path) as rs,
        ):
            status, body = await produce(rs.client, topic, [{"n": 1}, {"n": 2}])
            assert status == 200, body
            await wait_for(lambda: len(backend.records()) >= 2, 30, "two records at the backend")
            consumer = (await rs.client.get("/admin/consumers/reactive/orders")).json()
            producer_engine = rs.sidecar.config.kafka.producer.engine
        assert idp.url.startswith("https://")
    assert idp.issued >= 2, "the producer and the consumer each got a token"
    assert [r["value"] for r in backend.records()] == [{"n": 1}, {"n": 2}]
    assert (producer_engine, consumer["engine"]) == (engine, engine)


@pytest.mark.asyncio
async def test_a_token_librdkafka_cannot_get_is_named_in_readiness_and_the_consumers_status(
    secure_kafka: SecureKafka, tmp_path: Path, secret_watch: SecretWatch
) -> None:
    """Without ``oauth_cafile`` the token endpoint is checked against certifi's bundle (what the aiokafka
    engine's token client trusts), which does not hold a private CA: readiness and the reactive consumer's
    status say the token could not be got and why, not only that the broker transport failed."""
    topic = await secure_kafka.new_topic()
    client_secret = "oauth-" + uuid.uuid4().hex
    secret_watch.add_basic_auth("sidecar-client", client_secret)
    endpoint, _ = private_ca_endpoint(tmp_path, "sidecar-client", client_secret, "alice", secure_kafka.signing_key)
    consumer_error = ""
    with endpoint as idp:
        config = oauth_yaml(secure_kafka, idp, "librdkafka", oauth_client_secret=client_secret)
        config = with_reactive_consumer(config, topic, Backend(), "librdkafka")
        async with running_sidecar(config, tmp_path, wait_for_kafka=0) as rs:
            detail = await readiness_names(rs.client, "authentication failed", "OAUTHBEARER token", "certificate")
            deadline = time.monotonic() + 20
            while "OAUTHBEARER token" not in consumer_error:
                assert time.monotonic() < deadline, f"the consumer's status never named the token: {consumer_error}"
                await asyncio.sleep(0.2)  # polling a condition with a deadline
                status = (await rs.client.get("/admin/consumers/reactive/orders")).json()
                consumer_error = str(status.get("last_error"))
    assert "authentication failed" in consumer_error
    assert "trust anchors" not in detail, "a CA bundle was found and read"
    assert client_secret not in detail + consumer_error
    assert idp.issued == 0
