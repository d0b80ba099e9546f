"""Typed Kafka settings -> aiokafka keyword arguments, in one place for every client the sidecar makes."""

from __future__ import annotations

import ssl
from typing import Any

from kafka_sidecar.config.model import KafkaConfig, SecuritySettings


def ssl_context_for(security: SecuritySettings) -> ssl.SSLContext | None:
    if security.protocol not in ("SSL", "SASL_SSL"):
        return None
    context = ssl.create_default_context(cafile=security.ssl_cafile)
    if security.ssl_certfile:
        context.load_cert_chain(security.ssl_certfile, security.ssl_keyfile, security.ssl_password)
    context.check_hostname = security.ssl_check_hostname
    return context


def common_client_kwargs(kafka: KafkaConfig, role: str) -> dict[str, Any]:
    """Connection settings shared by producers, consumers and admin clients."""
    security = kafka.security
    kwargs: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "client_id": f"{kafka.client_id}-{role}",
        "metadata_max_age_ms": kafka.metadata_max_age_ms,
        "security_protocol": security.protocol,
    }
    context = ssl_context_for(security)
    if context is not None:
        kwargs["ssl_context"] = context
    if security.protocol.startswith("SASL_"):
        kwargs["sasl_mechanism"] = security.sasl_mechanism or "PLAIN"
        kwargs["sasl_plain_username"] = security.sasl_username
        kwargs["sasl_plain_password"] = security.sasl_password
    return kwargs


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
