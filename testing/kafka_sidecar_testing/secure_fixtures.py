"""pytest fixture for the secured test broker (SSL with client certs, SASL_SSL SCRAM, ACLs).

Not auto-registered: a test module imports it (``from kafka_sidecar_testing.secure_fixtures import
secure_kafka``) so the second JVM starts only for the tests that need it.

Principals and grants: ``alice`` (SCRAM) and the client certificate ``CN=sidecar-client`` may do
anything with topics and groups whose names start with ``sec-``; ``bob`` (SCRAM) authenticates but
has no ACL at all.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import pytest

from kafka_sidecar._config.model import SecuritySettings
from kafka_sidecar_testing.broker import BrokerError, MissingToolError, create_topic, ensure_kafka_runtime
from kafka_sidecar_testing.broker_security import AclGrant, ScramUser, SecureKafkaBroker
from kafka_sidecar_testing.jwt_key import SigningKey

__all__ = ["SecureKafka", "secure_kafka"]

TOPIC_PREFIX: Final = "sec-"
ALICE: Final = ScramUser("alice", "alice-" + uuid.uuid4().hex)
BOB: Final = ScramUser("bob", "bob-" + uuid.uuid4().hex)


@dataclass(frozen=True)
class SecureKafka:
    broker: SecureKafkaBroker

    @property
    def alice(self) -> ScramUser:
        return ALICE

    @property
    def bob(self) -> ScramUser:
        return BOB

    @property
    def signing_key(self) -> SigningKey:
        """Signs tokens this broker accepts over OAUTHBEARER (a token endpoint's ``signer``)."""
        return self.broker.signing_key

    def mtls(self, *, cafile: str | None = None) -> SecuritySettings:
        b = self.broker
        return SecuritySettings(
            protocol="SSL",
            ssl_cafile=cafile or str(b.ca.certfile),
            ssl_certfile=str(b.client_cert.certfile),
            ssl_keyfile=str(b.client_cert.keyfile),
        )

    def scram(
        self, user: ScramUser, mechanism: str = "SCRAM-SHA-256", *, password: str | None = None
    ) -> SecuritySettings:
        return SecuritySettings(
            protocol="SASL_SSL",
            sasl_mechanism=mechanism,  # type: ignore[arg-type]
            sasl_username=user.name,
            sasl_password=user.password if password is None else password,
            ssl_cafile=str(self.broker.ca.certfile),
        )

    async def new_topic(self, partitions: int = 1, prefix: str = TOPIC_PREFIX) -> str:
        """A fresh topic created through the (super user) PLAINTEXT listener."""
        name = f"{prefix}{uuid.uuid4().hex[:12]}"
        await create_topic(self.broker.plaintext_bootstrap, name, partitions)
        return name


@pytest.fixture(scope="session")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    """A secured broker for the session; skipped only when java/mvn are missing outside CI."""
    try:
        libs = ensure_kafka_runtime()
    except MissingToolError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"secured Kafka broker unavailable: {exc}")
    grants = [
        AclGrant(principal, resource, TOPIC_PREFIX)
        for principal in (f"User:{ALICE.name}", "User:CN=sidecar-client")
        for resource in ("TOPIC", "GROUP")
    ]
    broker = SecureKafkaBroker(libs, tmp_path_factory.mktemp("secure-kafka"), users=[ALICE, BOB], acls=grants)
    try:
        broker.start()
    except BrokerError as exc:
        pytest.fail(f"secured Kafka broker failed to start: {exc}", pytrace=False)
    try:
        yield SecureKafka(broker)
    finally:
        broker.stop()
