"""The ``schema_registry`` section of ``chains.yml``: where the registry is and how to talk to it.

Secrets come from the environment through ``${VAR}`` substitution (``password: ${SR_PASSWORD}``)
and are marked ``secret`` so they are masked wherever configuration is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kafka_sidecar.plugin import doc

SubjectStrategy = Literal["topic", "record", "topic_record"]

STRATEGY_ALIASES: dict[str, SubjectStrategy] = {
    "topic": "topic",
    "topicnamestrategy": "topic",
    "record": "record",
    "recordnamestrategy": "record",
    "topic_record": "topic_record",
    "topicrecord": "topic_record",
    "topicrecordnamestrategy": "topic_record",
}


@dataclass(frozen=True, slots=True)
class SchemaRegistryConfig:
    """Connection to a Confluent-compatible schema registry and the schema-path behaviour."""

    urls: tuple[str, ...] = field(
        default=(), metadata=doc("Base URLs, tried in order (Apicurio: http://host:port/apis/ccompat/v7).")
    )
    username: str | None = field(default=None, metadata=doc("Basic auth user (Confluent basic.auth.user.info)."))
    password: str | None = field(default=None, metadata=doc("Basic auth password; use ${ENV_VAR}.", secret=True))
    bearer_token: str | None = field(
        default=None, metadata=doc("Sent as 'Authorization: Bearer <token>'; use ${ENV_VAR}.", secret=True)
    )
    ca_file: str | None = field(
        default=None, metadata=doc("PEM CA bundle for the registry's TLS certificate.", file=True)
    )
    client_cert: str | None = field(default=None, metadata=doc("PEM client certificate for mutual TLS.", file=True))
    client_key: str | None = field(
        default=None, metadata=doc("PEM key of client_cert (if not in that file).", file=True)
    )
    connect_timeout: float = field(default=5.0, metadata=doc("Seconds to connect to the registry."))
    request_timeout: float = field(default=10.0, metadata=doc("Seconds for one registry request."))
    auto_register: bool = field(
        default=True, metadata=doc("Register a raw schema sent with a produce request when the subject lacks it.")
    )
    subject_strategy: SubjectStrategy = field(
        default="topic", metadata=doc("Default subject naming: topic (<topic>-value), record or topic_record.")
    )
    cache_size: int = field(default=1000, metadata=doc("Most entries per schema cache (by id, version, lookup)."))
    latest_ttl_seconds: float = field(
        default=60.0, metadata=doc("How long the 'latest' version of a subject is trusted before asking again.")
    )
    strip_avro_unions: bool = field(
        default=False, metadata=doc('Decode Avro unions as plain values, not {"type": value} (useNoWrappingAvro).')
    )
    bind_timeout_seconds: float = field(
        default=30.0, metadata=doc("How long a format waits at start-up for the registry client to be created.")
    )

    def __post_init__(self) -> None:
        if self.cache_size < 1:
            raise ValueError("cache_size must be at least 1")
        if self.bearer_token and (self.username or self.password):
            raise ValueError("give either bearer_token or username/password, not both")
        for url in self.urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"urls: {url!r} is not an http(s) URL")
