"""kafka.security -> aiokafka arguments: TLS contexts, SASL, secrets from files, validation."""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path

import certifi
import pytest
from aiokafka.abc import AbstractTokenProvider

from kafka_sidecar._config.model import KafkaConfig, SecuritySettings, ServerConfig
from kafka_sidecar._errors import ConfigError
from kafka_sidecar._kafka.client_settings import librdkafka_settings
from kafka_sidecar._kafka.options import admin_kwargs, consumer_kwargs, producer_kwargs, security_kwargs
from kafka_sidecar_testing.leak_scan import SecretWatch
from kafka_sidecar_testing.pki import make_ca


@pytest.fixture(autouse=True)
def _watch_secrets(secret_watch: SecretWatch) -> None:
    """Registers the SCRAM passwords read from files for the whole-run leak check (tests/zz_final)."""
    secret_watch.add("s3cr3t-from-file")
    secret_watch.add("rotated-s3cr3t")


def test_plaintext_has_no_tls_and_no_sasl() -> None:
    kwargs = security_kwargs(SecuritySettings())
    assert kwargs == {"security_protocol": "PLAINTEXT"}


def test_tls_verifies_chain_and_hostname_by_default(tmp_path: Path) -> None:
    ca = make_ca(tmp_path, "ca")
    context = security_kwargs(SecuritySettings(protocol="SSL", ssl_cafile=str(ca.certfile)))["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname is True
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    relaxed = SecuritySettings(protocol="SSL", ssl_cafile=str(ca.certfile), ssl_check_hostname=False)
    loose = security_kwargs(relaxed)["ssl_context"]
    assert loose.check_hostname is False
    assert loose.verify_mode == ssl.CERT_REQUIRED  # the chain is still verified


def test_client_certificate_is_loaded(tmp_path: Path) -> None:
    ca = make_ca(tmp_path, "ca")
    cert = ca.issue(tmp_path, "client", server=False, client=True)
    settings = SecuritySettings(
        protocol="SSL", ssl_cafile=str(ca.certfile), ssl_certfile=str(cert.certfile), ssl_keyfile=str(cert.keyfile)
    )
    assert isinstance(security_kwargs(settings)["ssl_context"], ssl.SSLContext)
    with pytest.raises(ValueError, match="ssl_certfile: cannot read"):  # at load time
        SecuritySettings(protocol="SSL", ssl_certfile=str(tmp_path / "nope.crt"))
    cert.certfile.unlink()  # removed after start: the connect attempt names the key
    with pytest.raises(ConfigError, match=r"kafka\.security\.ssl_certfile"):
        security_kwargs(settings)


def test_scram_password_from_file_is_read_at_connect_time(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cr3t-from-file\n", encoding="utf-8")
    settings = SecuritySettings(
        protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="svc", sasl_password_file=str(secret)
    )
    kwargs = security_kwargs(settings)
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "svc"
    assert kwargs["sasl_plain_password"] == "s3cr3t-from-file"
    secret.write_text("rotated-s3cr3t", encoding="utf-8")
    assert security_kwargs(settings)["sasl_plain_password"] == "rotated-s3cr3t"
    secret.unlink()
    with pytest.raises(ConfigError) as caught:
        security_kwargs(settings)
    assert "kafka.security.sasl_password_file" in str(caught.value)
    assert "rotated-s3cr3t" not in str(caught.value)


def oauth_security(**extra: str) -> SecuritySettings:
    """SASL_SSL OAUTHBEARER with client credentials for ``https://idp.test/token`` (plus ``extra``)."""
    return SecuritySettings(
        protocol="SASL_SSL",
        sasl_mechanism="OAUTHBEARER",
        oauth_token_endpoint="https://idp.test/token",
        oauth_client_id="svc",
        oauth_client_secret="x",
        **extra,  # type: ignore[arg-type]
    )


def test_oauthbearer_gets_a_token_provider() -> None:
    settings = oauth_security()
    kwargs = security_kwargs(settings)
    assert isinstance(kwargs["sasl_oauth_token_provider"], AbstractTokenProvider)
    assert "sasl_plain_password" not in kwargs


def test_every_client_gets_the_same_security(tmp_path: Path) -> None:
    ca = make_ca(tmp_path, "ca")
    security = SecuritySettings(
        protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256", sasl_username="u", sasl_password="p",
        ssl_cafile=str(ca.certfile),
    )  # fmt: skip
    kafka = KafkaConfig(security=security)
    for kwargs in (producer_kwargs(kafka), consumer_kwargs(kafka), admin_kwargs(kafka), producer_kwargs(kafka, "dlq")):
        assert kwargs["security_protocol"] == "SASL_SSL"
        assert kwargs["sasl_mechanism"] == "SCRAM-SHA-256"
        assert kwargs["sasl_plain_password"] == "p"
        assert kwargs["ssl_context"].check_hostname is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sasl_password": "a", "sasl_password_file": "/f"}, "not both"),
        ({"protocol": "SASL_SSL", "sasl_password": "a"}, "sasl_username"),
        ({"protocol": "SASL_SSL", "sasl_username": "u"}, "sasl_password"),
        ({"protocol": "SSL", "sasl_mechanism": "PLAIN"}, "SASL_SSL"),
        ({"protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER"}, "oauth_token_endpoint"),
        ({"ssl_keyfile": "/k"}, "ssl_certfile"),
    ],
)
def test_inconsistent_security_is_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SecuritySettings(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"admin_port": 8442}, "admin_port"),
        ({"admin_token": "short"}, "16 characters"),
        ({"admin_token": "a" * 20, "admin_token_file": "/f"}, "not both"),
        ({"tls_certfile": "/c"}, "tls_keyfile"),
        ({"max_concurrent_requests": 0}, "max_concurrent_requests"),
    ],
)
def test_inconsistent_server_settings_are_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServerConfig(**kwargs)  # type: ignore[arg-type]


def test_security_errors_point_at_the_config_file(tmp_path: Path) -> None:
    from kafka_sidecar._sidecar import Sidecar

    path = tmp_path / "chains.yml"
    path.write_text("kafka:\n  security:\n    protocol: SASL_SSL\n    sasl_username: svc\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Sidecar.from_file(path, env={})
    assert f"{path}:" in str(caught.value)
    assert "sasl_password" in str(caught.value)


def test_librdkafka_gets_the_oauth_settings_and_the_token_endpoints_ca(tmp_path: Path) -> None:
    ca = make_ca(tmp_path, "idp-ca")
    security = oauth_security(oauth_scope="kafka", oauth_cafile=str(ca.certfile))
    settings = librdkafka_settings(KafkaConfig(bootstrap_servers="b:9093", security=security), "producer")
    assert settings["sasl.oauthbearer.method"] == "oidc"
    assert settings["sasl.oauthbearer.token.endpoint.url"] == "https://idp.test/token"
    assert settings["https.ca.location"] == str(ca.certfile)
    system_store = dataclasses.replace(security, oauth_cafile=None)
    settings = librdkafka_settings(KafkaConfig(bootstrap_servers="b:9093", security=system_store), "producer")
    assert settings["https.ca.location"] == certifi.where()  # what httpx (the aiokafka engine) trusts


def test_java_clients_get_the_token_endpoints_ca_in_the_login_options_and_its_url_allowed(tmp_path: Path) -> None:
    from kafka_sidecar._kafka.client_settings import java_client_properties, java_system_properties

    ca = make_ca(tmp_path, "idp-ca")
    kafka = KafkaConfig(bootstrap_servers="b:9093", security=oauth_security(oauth_cafile=str(ca.certfile)))
    jaas = java_client_properties(kafka, "proc")["sasl.jaas.config"]
    assert f'ssl.truststore.type="PEM" ssl.truststore.location="{ca.certfile}";' in jaas
    assert java_system_properties(kafka) == {"org.apache.kafka.sasl.oauthbearer.allowed.urls": "https://idp.test/token"}
    defaults = dataclasses.replace(kafka, security=oauth_security())
    assert (
        f'ssl.truststore.location="{certifi.where()}"' in java_client_properties(defaults, "proc")["sasl.jaas.config"]
    )
    plain_http = dataclasses.replace(
        kafka, security=dataclasses.replace(oauth_security(), oauth_token_endpoint="http://idp.test/token")
    )
    assert "ssl.truststore" not in java_client_properties(plain_http, "proc")["sasl.jaas.config"]
    scram = KafkaConfig(security=SecuritySettings(protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256",
                                                  sasl_username="u", sasl_password="p"))  # fmt: skip
    assert java_system_properties(scram) == {}
