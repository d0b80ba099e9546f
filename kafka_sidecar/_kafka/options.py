"""Typed Kafka settings -> aiokafka keyword arguments, in one place for every client the sidecar makes.

Producers, consumers, admin, audit and dead-letter clients all get their connection and security
settings from :func:`common_client_kwargs`, so ``kafka.security`` in ``chains.yml`` is the only
place TLS and SASL are configured. Secrets are read here, at connect time, from the config value
(usually ``${ENV_VAR}``) or from the ``*_file`` key; they are never logged.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from kafka_sidecar._config.model import KafkaConfig, SecuritySettings
from kafka_sidecar._errors import ConfigError, ConfigProblem
from kafka_sidecar._kafka.oauth import ClientCredentialsTokenProvider

SECTION = "kafka.security"


def read_secret(inline: str | None, file: str | None, key: str) -> str | None:
    """The secret given inline or in ``file`` (one trailing newline stripped); None when neither is set."""
    if inline is not None:
        return inline
    if file is None:
        return None
    try:
        text = Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [ConfigProblem(file, 1, 1, f"{SECTION}.{key}_file", f"cannot read the {key} file: {exc.strerror}")]
        ) from exc
    return text[:-1] if text.endswith("\n") else text


def ssl_context_for(security: SecuritySettings) -> ssl.SSLContext | None:
    """A verifying TLS context (CA bundle, optional client certificate) for SSL and SASL_SSL; else None."""
    if security.protocol not in ("SSL", "SASL_SSL"):
        return None
    try:
        context = ssl.create_default_context(cafile=security.ssl_cafile)
    except (OSError, ssl.SSLError) as exc:
        raise _file_problem("ssl_cafile", security.ssl_cafile, exc) from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if security.ssl_certfile:
        password = read_secret(security.ssl_password, security.ssl_password_file, "ssl_password")
        try:
            context.load_cert_chain(security.ssl_certfile, security.ssl_keyfile, password)
        except (OSError, ssl.SSLError) as exc:
            raise _file_problem("ssl_certfile", security.ssl_certfile, exc) from exc
    # Hostname verification stays on unless the config turns it off explicitly; the chain is always verified.
    context.check_hostname = security.ssl_check_hostname
    return context


def sasl_kwargs(security: SecuritySettings) -> dict[str, Any]:
    """aiokafka SASL arguments for SASL_* protocols (empty otherwise)."""
    if not security.protocol.startswith("SASL_"):
        return {}
    mechanism = security.sasl_mechanism or "PLAIN"
    if mechanism == "OAUTHBEARER":
        return {"sasl_mechanism": mechanism, "sasl_oauth_token_provider": token_provider_for(security)}
    return {
        "sasl_mechanism": mechanism,
        "sasl_plain_username": security.sasl_username,
        "sasl_plain_password": read_secret(security.sasl_password, security.sasl_password_file, "sasl_password"),
    }


def token_provider_for(security: SecuritySettings) -> ClientCredentialsTokenProvider:
    assert security.oauth_token_endpoint is not None
    assert security.oauth_client_id is not None
    return ClientCredentialsTokenProvider(
        endpoint=security.oauth_token_endpoint,
        client_id=security.oauth_client_id,
        secret=lambda: (
            read_secret(security.oauth_client_secret, security.oauth_client_secret_file, "oauth_client_secret") or ""
        ),
        scope=security.oauth_scope,
        cafile=security.oauth_cafile,
        refresh_margin_s=security.oauth_refresh_margin_s,
        timeout_s=security.oauth_timeout_s,
    )


def security_kwargs(security: SecuritySettings) -> dict[str, Any]:
    """``security_protocol``, ``ssl_context`` and the SASL arguments for one client."""
    kwargs: dict[str, Any] = {"security_protocol": security.protocol}
    context = ssl_context_for(security)
    if context is not None:
        kwargs["ssl_context"] = context
    kwargs.update(sasl_kwargs(security))
    return kwargs


def common_client_kwargs(kafka: KafkaConfig, role: str) -> dict[str, Any]:
    """Connection settings shared by producers, consumers and admin clients."""
    return {
        "bootstrap_servers": kafka.bootstrap_servers,
        "client_id": f"{kafka.client_id}-{role}",
        "metadata_max_age_ms": kafka.metadata_max_age_ms,
        **security_kwargs(kafka.security),
    }


def producer_kwargs(kafka: KafkaConfig, role: str = "producer") -> dict[str, Any]:
    settings = kafka.producer
    acks: int | str = settings.acks
    if acks in ("0", "1"):
        acks = int(acks)
    return {
        **common_client_kwargs(kafka, role),
        "acks": acks,
        "enable_idempotence": settings.enable_idempotence,
        "compression_type": None if settings.compression_type == "none" else settings.compression_type,
        "linger_ms": settings.linger_ms,
        "max_batch_size": settings.max_batch_size,
        "max_request_size": settings.max_request_size,
        "request_timeout_ms": settings.request_timeout_ms,
    }


def consumer_kwargs(kafka: KafkaConfig, role: str = "consumer") -> dict[str, Any]:
    """Settings every consumer shares; callers add group, offsets and fetch limits."""
    return {**common_client_kwargs(kafka, role), "enable_auto_commit": False}


def admin_kwargs(kafka: KafkaConfig, role: str = "admin") -> dict[str, Any]:
    return common_client_kwargs(kafka, role)


def _file_problem(key: str, path: str | None, exc: Exception) -> ConfigError:
    reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
    return ConfigError([ConfigProblem(path or SECTION, 1, 1, f"{SECTION}.{key}", f"cannot load {key}: {reason}")])
