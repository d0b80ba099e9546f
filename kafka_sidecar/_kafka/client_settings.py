"""The sidecar's ``kafka`` section in the dialects of other Kafka clients: librdkafka keys and Java properties.

For programs the sidecar starts with its own Kafka settings (stream processors): the same connection and
security facts as :mod:`kafka_sidecar._kafka.options` gives aiokafka. Secrets are read here from the config
(usually ``${ENV_VAR}``) or their ``*_file``; callers hand them over through an environment or a 0600 file,
never a command line.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import certifi

from kafka_sidecar._config.model import KafkaConfig, SecuritySettings
from kafka_sidecar._kafka.options import read_secret

JAAS_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}
OAUTH_HANDLER = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler"
OAUTH_MODULE = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"


RDKAFKA_PREFETCH_KIB = 16384
"""Most KiB a librdkafka consumer fetches ahead of the sidecar (all partitions; librdkafka's default is 64 MiB)."""
RDKAFKA_FETCH_QUEUE_BACKOFF_MS = 10
"""How soon librdkafka fetches again once its queue has room (its default, 1000 ms, starves a fast reader:
measured 162k records/s with it, 458k with 10 ms; bench/consumer_client_bench.py)."""


def librdkafka_consumer_settings(kafka: KafkaConfig, client_role: str, group: str, poll_records: int) -> dict[str, Any]:
    """What every librdkafka consumer of the sidecar shares; callers add offsets reset, isolation, session
    and fetch limits. Connection and security as :func:`librdkafka_settings`; offsets stored and committed
    only by the sidecar; metadata refreshed as aiokafka does; prefetch bounded by ``RDKAFKA_PREFETCH_KIB``
    and two polls' worth of records (``poll_records`` each), refilled within ``RDKAFKA_FETCH_QUEUE_BACKOFF_MS``
    of falling below; librdkafka's own log through ``kafka_sidecar.librdkafka`` from warnings up."""
    return {
        **librdkafka_settings(kafka, client_role),
        "group.id": group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "topic.metadata.refresh.interval.ms": kafka.metadata_max_age_ms,
        "queued.max.messages.kbytes": RDKAFKA_PREFETCH_KIB,
        "queued.min.messages": 2 * poll_records,
        "fetch.queue.backoff.ms": RDKAFKA_FETCH_QUEUE_BACKOFF_MS,
        "logger": logging.getLogger("kafka_sidecar.librdkafka"),
        "log_level": 4,
    }


def librdkafka_settings(kafka: KafkaConfig, client_role: str) -> dict[str, str]:
    """Connection and security settings as librdkafka (confluent-kafka) keys."""
    security = kafka.security
    out = {
        "bootstrap.servers": kafka.bootstrap_servers,
        "client.id": f"{kafka.client_id}-{client_role}",
        "security.protocol": security.protocol,
    }
    if security.protocol in ("SSL", "SASL_SSL"):
        _put(out, "ssl.ca.location", security.ssl_cafile)
        _put(out, "ssl.certificate.location", security.ssl_certfile)
        _put(out, "ssl.key.location", security.ssl_keyfile)
        _put(out, "ssl.key.password", _key_password(security))
        out["ssl.endpoint.identification.algorithm"] = "https" if security.ssl_check_hostname else "none"
    if security.protocol.startswith("SASL_"):
        mechanism = security.sasl_mechanism or "PLAIN"
        out["sasl.mechanism"] = mechanism
        if mechanism == "OAUTHBEARER":
            out["sasl.oauthbearer.method"] = "oidc"
            _put(out, "sasl.oauthbearer.token.endpoint.url", security.oauth_token_endpoint)
            _put(out, "sasl.oauthbearer.client.id", security.oauth_client_id)
            _put(out, "sasl.oauthbearer.client.secret", _oauth_secret(security))
            _put(out, "sasl.oauthbearer.scope", security.oauth_scope)
            # The token endpoint's CA: oauth_cafile, else certifi's bundle, which the aiokafka engine's token
            # client (httpx) trusts. Unset, librdkafka's bundled HTTP client looks only for a Red Hat path
            # (/etc/pki/tls/certs/ca-bundle.crt), and its "probe" does not reach it (librdkafka 2.16): on
            # Debian every HTTPS token endpoint failed with "error adding trust anchors".
            out["https.ca.location"] = _token_endpoint_ca(security)
        else:
            _put(out, "sasl.username", security.sasl_username)
            _put(out, "sasl.password", _sasl_password(security))
    return out


def java_client_properties(kafka: KafkaConfig, client_id: str) -> dict[str, str]:
    """Connection and security settings as Java client properties (TLS as PEM, SASL as ``sasl.jaas.config``)."""
    security = kafka.security
    out = {
        "bootstrap.servers": kafka.bootstrap_servers,
        "client.id": client_id,
        "security.protocol": security.protocol,
    }
    if security.protocol in ("SSL", "SASL_SSL"):
        if security.ssl_cafile:
            out["ssl.truststore.type"] = "PEM"
            out["ssl.truststore.location"] = security.ssl_cafile
        if security.ssl_certfile and security.ssl_keyfile:
            out["ssl.keystore.type"] = "PEM"
            out["ssl.keystore.certificate.chain"] = Path(security.ssl_certfile).read_text(encoding="utf-8")
            out["ssl.keystore.key"] = Path(security.ssl_keyfile).read_text(encoding="utf-8")
            _put(
                out, "ssl.key.password", read_secret(security.ssl_password, security.ssl_password_file, "ssl_password")
            )
        out["ssl.endpoint.identification.algorithm"] = "https" if security.ssl_check_hostname else ""
    if security.protocol.startswith("SASL_"):
        mechanism = security.sasl_mechanism or "PLAIN"
        out["sasl.mechanism"] = mechanism
        if mechanism == "OAUTHBEARER":
            _put(out, "sasl.oauthbearer.token.endpoint.url", security.oauth_token_endpoint)
            out["sasl.login.callback.handler.class"] = OAUTH_HANDLER
            scope = f' scope="{_jaas(security.oauth_scope)}"' if security.oauth_scope else ""
            # The token endpoint's CA, as the other engines trust it (oauth_cafile, else certifi's bundle):
            # the Java client reads the token call's TLS settings from the login module's options.
            trust = (
                f' ssl.truststore.type="PEM" ssl.truststore.location="{_jaas(_token_endpoint_ca(security))}"'
                if (security.oauth_token_endpoint or "").lower().startswith("https:")
                else ""
            )
            out["sasl.jaas.config"] = (
                f'{OAUTH_MODULE} required clientId="{_jaas(security.oauth_client_id or "")}"'
                f' clientSecret="{_jaas(_oauth_secret(security) or "")}"{scope}{trust};'
            )
        else:
            out["sasl.jaas.config"] = (
                f'{JAAS_MODULES[mechanism]} required username="{_jaas(security.sasl_username or "")}"'
                f' password="{_jaas(_sasl_password(security) or "")}";'
            )
    return out


OAUTH_ALLOWED_URLS = "org.apache.kafka.sasl.oauthbearer.allowed.urls"
"""The JVM system property (Kafka 4) listing the URLs an OAUTHBEARER client may fetch tokens from."""


def java_system_properties(kafka: KafkaConfig) -> dict[str, str]:
    """JVM system properties a Java client needs for these settings, besides its properties file: Kafka 4's
    Java clients refuse a token endpoint not listed in :data:`OAUTH_ALLOWED_URLS` (a ``ConfigException`` at
    start), so the sidecar's own ``oauth_token_endpoint`` is listed."""
    security = kafka.security
    if security.sasl_mechanism == "OAUTHBEARER" and security.oauth_token_endpoint:
        return {OAUTH_ALLOWED_URLS: security.oauth_token_endpoint}
    return {}


def _token_endpoint_ca(security: SecuritySettings) -> str:
    return security.oauth_cafile or certifi.where()


def _jaas(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _put(out: dict[str, str], key: str, value: str | None) -> None:
    if value is not None:
        out[key] = value


def _sasl_password(security: SecuritySettings) -> str | None:
    return read_secret(security.sasl_password, security.sasl_password_file, "sasl_password")


def _oauth_secret(security: SecuritySettings) -> str | None:
    return read_secret(security.oauth_client_secret, security.oauth_client_secret_file, "oauth_client_secret")


def _key_password(security: SecuritySettings) -> str | None:
    return read_secret(security.ssl_password, security.ssl_password_file, "ssl_password")
