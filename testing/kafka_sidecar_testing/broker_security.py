"""A secured test broker: SSL (mutual TLS) and SASL_SSL (SCRAM) listeners, ACLs enforced.

Built on :class:`kafka_sidecar_testing.broker.KafkaBroker`: certificates come from
:mod:`kafka_sidecar_testing.pki`, SCRAM users and ACLs are applied with Kafka's own Admin client
(``kafka-runtime/SecuritySetup.java`` run by the JDK's source launcher on the broker's classpath).

Listeners:

* ``PLAINTEXT`` — the harness's own; its principal (``User:ANONYMOUS``) is a super user, so tests
  create topics through it. The controller uses it too.
* ``SSL`` — TLS with client certificates required; the principal is the client cert's DN.
* ``SASL_SSL`` — TLS plus SCRAM-SHA-256/512 (principal ``User:<name>``) and OAUTHBEARER: RS256 tokens
  checked against the JWKS of ``signing_key`` (principal: the token's ``sub``).

Everything else is denied unless an ACL allows it (``allow.everyone.if.no.acl.found=false``).
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

from kafka_sidecar_testing.broker import BrokerError, KafkaBroker, Listener, find_java
from kafka_sidecar_testing.jwt_key import SigningKey
from kafka_sidecar_testing.pki import CertificateAuthority, IssuedCert, make_ca

__all__ = ["AclGrant", "ScramUser", "SecureKafkaBroker"]

CLIENT_CN: Final = "sidecar-client"
SCRAM_MECHANISMS: Final = ("SCRAM-SHA-256", "SCRAM-SHA-512")
SASL_MECHANISMS: Final = (*SCRAM_MECHANISMS, "OAUTHBEARER")
_SETUP_SOURCE: Final = "SecuritySetup.java"


@dataclass(frozen=True)
class ScramUser:
    name: str
    password: str


@dataclass(frozen=True)
class AclGrant:
    """ALLOW ``operation`` on a resource to ``principal`` (e.g. ``User:alice``, ``User:CN=sidecar-client``)."""

    principal: str
    resource_type: str
    name: str
    operation: str = "ALL"
    pattern: str = "PREFIXED"


class SecureKafkaBroker:
    """Starts a :class:`KafkaBroker` with SSL and SASL_SSL listeners, then creates users and ACLs."""

    def __init__(
        self,
        libs_dir: Path,
        work_dir: Path,
        *,
        users: Sequence[ScramUser] = (),
        acls: Sequence[AclGrant] = (),
    ) -> None:
        self.libs_dir = libs_dir
        self.work_dir = work_dir
        self.users = tuple(users)
        self.acls = tuple(acls)
        pki = work_dir / "pki"
        self.ca: CertificateAuthority = make_ca(pki, "test-ca")
        self.untrusted_ca: CertificateAuthority = make_ca(pki, "untrusted-ca")
        self.server_cert: IssuedCert = self.ca.issue(pki, "kafka-broker", hosts=("127.0.0.1", "localhost"))
        self.client_cert: IssuedCert = self.ca.issue(pki, CLIENT_CN, server=False, client=True)
        self.signing_key = SigningKey()
        """Signs the OAUTHBEARER tokens the broker accepts (its JWKS is what the broker validates against)."""
        self.jwks = self.signing_key.write_jwks(pki / "jwks.json")
        self.broker = KafkaBroker(
            libs_dir,
            work_dir / "broker",
            extra_listeners=[Listener("SSL", "SSL"), Listener("SASL_SSL", "SASL_SSL")],
            extra_properties=self._properties(),
            # Kafka 4 reads a JWKS only from a URL or file listed in these system properties.
            jvm_options=[
                f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={self.jwks.as_uri()}",
                f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.files={self.jwks}",
            ],
        )
        self.timings: dict[str, float] = {}

    @property
    def client_principal(self) -> str:
        return f"User:CN={CLIENT_CN}"

    @property
    def plaintext_bootstrap(self) -> str:
        return self.broker.bootstrap_servers

    @property
    def ssl_bootstrap(self) -> str:
        return self.broker.listener_address("SSL")

    @property
    def sasl_ssl_bootstrap(self) -> str:
        return self.broker.listener_address("SASL_SSL")

    def _properties(self) -> dict[str, str]:
        scram_login = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        return {
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:ANONYMOUS",
            "allow.everyone.if.no.acl.found": "false",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.server_cert.bundle),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca.certfile),
            "listener.name.ssl.ssl.client.auth": "required",
            "listener.name.sasl_ssl.sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": scram_login,
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram_login,
            # OAUTHBEARER tokens are validated as a real deployment does: RS256 signatures checked against a
            # JWKS (a file here, signed by `signing_key`), the principal from "sub". Kafka's unsecured
            # validator would need alg "none" tokens, which Kafka's own Java clients refuse to send.
            "listener.name.sasl_ssl.oauthbearer.sasl.jaas.config": (
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;"
            ),
            "listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class": (
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
            ),
            "sasl.oauthbearer.jwks.endpoint.url": self.jwks.as_uri(),
            "sasl.oauthbearer.expected.audience": self.signing_key.audience,
            "sasl.oauthbearer.expected.issuer": self.signing_key.issuer,
        }

    def start(self, timeout: float = 120.0) -> None:
        began = time.monotonic()
        self.broker.start(timeout=timeout)
        self.timings["broker"] = time.monotonic() - began
        try:
            began = time.monotonic()
            self._apply_security(timeout)
            self.timings["security_setup"] = time.monotonic() - began
            began = time.monotonic()
            self._wait_tls(self.ssl_bootstrap, timeout)
            self.timings["tls_ready"] = time.monotonic() - began
        except BaseException:
            self.broker.stop()
            raise

    def stop(self) -> None:
        self.broker.stop()

    def _apply_security(self, timeout: float) -> None:
        lines = [f"scram\t{u.name}\t{m}\t{u.password}" for u in self.users for m in SCRAM_MECHANISMS]
        lines += [f"acl\t{a.principal}\t{a.resource_type}\t{a.pattern}\t{a.name}\t{a.operation}" for a in self.acls]
        if not lines:
            return
        java = find_java()
        if java is None:
            raise BrokerError("java is needed to create SCRAM users and ACLs")
        source = resources.files("kafka_sidecar_testing").joinpath("kafka-runtime", _SETUP_SOURCE)
        with resources.as_file(source) as path:
            result = subprocess.run(
                [java, "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", f"{self.libs_dir.resolve()}/*",
                 str(path), self.plaintext_bootstrap],
                input="\n".join(lines) + "\n",
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )  # fmt: skip
        if result.returncode != 0:
            raise BrokerError(f"creating SCRAM users/ACLs failed (exit {result.returncode}):\n{result.stderr[-4000:]}")

    def _wait_tls(self, address: str, timeout: float) -> None:
        """Wait until the SSL listener completes a handshake with the test client certificate."""
        host, port = address.rsplit(":", 1)
        context = ssl.create_default_context(cafile=str(self.ca.certfile))
        context.load_cert_chain(self.client_cert.certfile, self.client_cert.keyfile)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with (
                    socket.create_connection((host, int(port)), timeout=2.0) as raw,
                    context.wrap_socket(raw, server_hostname=host),
                ):
                    return
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise BrokerError(f"SSL listener {address} never completed a handshake: {exc}") from exc
            time.sleep(0.1)
