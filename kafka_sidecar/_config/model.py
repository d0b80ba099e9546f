"""The typed shape of ``chains.yml``: frozen dataclasses, one per section.

Every key is documented in field metadata (``doc``); ``docs/configuration.md`` is written from the
same text. Secrets are marked ``secret`` and never shown unmasked.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from kafka_sidecar._config.yaml_source import Loc


def doc(text: str, **extra: Any) -> Any:
    """Field metadata helper: ``field(default=..., metadata=doc("..."))``."""
    return {"doc": text, **extra}


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    id: str = field(default="kafka-sidecar", metadata=doc("Service id used in audit records and logs."))


ServerEngine = Literal["hypercorn", "uvicorn"]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = field(default="127.0.0.1", metadata=doc("Address the HTTP listener binds to."))
    port: int = field(default=8442, metadata=doc("HTTP port (0 picks a free one)."))
    allow_non_loopback: bool = field(
        default=False,
        metadata=doc("Must be true to bind an address other than loopback: the sidecar serves its pod only."),
    )
    max_body_bytes: int = field(default=10 * 1024 * 1024, metadata=doc("Largest request body; larger is 413."))
    shutdown_timeout_s: float = field(
        default=20.0, metadata=doc("On SIGTERM: how long in-flight requests may take before exit.")
    )
    admin_token: str | None = field(
        default=None,
        metadata=doc("Bearer token admin routes require (use ${ENV_VAR}); unset: loopback callers only.", secret=True),
    )
    admin_token_file: str | None = field(
        default=None, metadata=doc("File holding the admin bearer token (read on every admin request).", file=True)
    )
    admin_port: int | None = field(
        default=None,
        metadata=doc("Serve /admin/ routes on this port only (same host); business routes are not served there."),
    )
    tls_certfile: str | None = field(
        default=None, metadata=doc("PEM certificate chain: serve HTTPS instead of HTTP.", file=True)
    )
    tls_keyfile: str | None = field(default=None, metadata=doc("PEM private key for tls_certfile.", file=True))
    tls_key_password_file: str | None = field(
        default=None, metadata=doc("File holding the password of an encrypted tls_keyfile.", file=True)
    )
    tls_client_cafile: str | None = field(
        default=None,
        metadata=doc("PEM CA bundle: when set, HTTP clients must present a certificate it signed.", file=True),
    )
    max_records_per_request: int = field(
        default=10000, metadata=doc("Most entries in a request body's 'records' list; more is 413.")
    )
    max_header_bytes: int = field(
        default=16384, metadata=doc("Largest total size of a request's header names and values; larger is 413.")
    )
    max_concurrent_requests: int = field(
        default=256,
        metadata=doc(
            "Business requests served at once, counted once their body has arrived; more is 429 "
            "(health and admin exempt)."
        ),
    )
    body_read_timeout_s: float = field(
        default=10.0, metadata=doc("Longest wait for the next piece of a request body; then 408.")
    )
    listen_backlog: int = field(
        default=2048, metadata=doc("Connections the OS queues before they are accepted (capped by somaxconn).")
    )
    engine: ServerEngine = field(
        default="hypercorn",
        metadata=doc("HTTP server: hypercorn (HTTP/1.1 + h2c), or uvicorn (HTTP/1.1, less CPU; extra 'uvicorn')."),
    )

    def __post_init__(self) -> None:
        if self.engine == "uvicorn" and importlib.util.find_spec("uvicorn") is None:
            raise ValueError("engine uvicorn needs uvicorn: pip install 'kafka-sidecar[uvicorn]'")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, got {self.port}")
        if self.max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")
        if self.admin_port is not None and not (0 < self.admin_port <= 65535 and self.admin_port != self.port):
            raise ValueError(f"admin_port must be 1..65535 and differ from port, got {self.admin_port}")
        if self.admin_token is not None and self.admin_token_file is not None:
            raise ValueError("set admin_token or admin_token_file, not both")
        if self.admin_token is not None and len(self.admin_token) < 16:
            raise ValueError("admin_token must be at least 16 characters")
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("tls_certfile and tls_keyfile go together")
        if self.tls_client_cafile is not None and self.tls_certfile is None:
            raise ValueError("tls_client_cafile needs tls_certfile and tls_keyfile")
        for name in (
            "max_records_per_request", "max_header_bytes", "max_concurrent_requests", "body_read_timeout_s",
            "listen_backlog",
        ):  # fmt: skip
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        _check_readable(
            self, "admin_token_file", "tls_certfile", "tls_keyfile", "tls_key_password_file", "tls_client_cafile"
        )


def _check_readable(settings: object, *keys: str) -> None:
    """Fail at load, with the config position, when a configured file cannot be read (no content is read)."""
    for key in keys:
        path = getattr(settings, key)
        if path is not None and not os.access(path, os.R_OK):
            raise ValueError(f"{key}: cannot read {path!r}")


def _check_kafka_engine(engine: str) -> None:
    """A producer or consumer engine is usable here (librdkafka needs the ``librdkafka`` extra)."""
    if engine == "librdkafka" and importlib.util.find_spec("confluent_kafka") is None:
        raise ValueError("engine librdkafka needs confluent-kafka: pip install 'kafka-sidecar[librdkafka]'")


Acks = Literal["all", "1", "0", -1, 0, 1]
ProducerEngine = Literal["aiokafka", "librdkafka"]
Compression = Literal["none", "gzip", "snappy", "lz4", "zstd"]


@dataclass(frozen=True, slots=True)
class ProducerSettings:
    acks: Acks = field(default="all", metadata=doc("Broker acknowledgements: all, 1 or 0."))
    enable_idempotence: bool = field(default=True, metadata=doc("Idempotent producer (no duplicates on retry)."))
    compression_type: Compression = field(default="none", metadata=doc("Batch compression."))
    linger_ms: int = field(default=5, metadata=doc("How long to wait to fill a batch."))
    max_batch_size: int = field(default=16384, metadata=doc("Per-partition batch size in bytes."))
    max_request_size: int = field(default=1048576, metadata=doc("Largest produce request in bytes."))
    request_timeout_ms: int = field(
        default=30000,
        metadata=doc("How long a produce may wait for acknowledgements; then unacknowledged records are 504."),
    )
    fail_fast: bool = field(
        default=True,
        metadata=doc("While the broker is known unreachable, answer a produce at once with 503 (nothing written)."),
    )
    health_check_interval_ms: int = field(
        default=2000, metadata=doc("How often the producer checks that the broker answers (fail fast, readiness).")
    )
    idempotency_window_s: float = field(
        default=300.0, metadata=doc("How long an Idempotency-Key's outcome is kept for a retried request.")
    )
    idempotency_max_keys: int = field(
        default=10000, metadata=doc("Most Idempotency-Keys remembered at once (the oldest are forgotten first).")
    )
    engine: ProducerEngine = field(
        default="aiokafka",
        metadata=doc(
            "Kafka client of the producers: aiokafka, or librdkafka (the C client, less CPU per record; "
            "extra 'librdkafka'; docs/producer.md#producer-engines)."
        ),
    )

    def __post_init__(self) -> None:
        _check_kafka_engine(self.engine)
        if self.request_timeout_ms <= 0 or self.health_check_interval_ms <= 0:
            raise ValueError("request_timeout_ms and health_check_interval_ms must be positive")
        if self.idempotency_window_s <= 0 or self.idempotency_max_keys <= 0:
            raise ValueError("idempotency_window_s and idempotency_max_keys must be positive")


ConsumerEngine = Literal["aiokafka", "librdkafka"]


@dataclass(frozen=True, slots=True)
class ConsumerSettings:
    engine: ConsumerEngine = field(
        default="aiokafka",
        metadata=doc(
            "Kafka client of the reactive and active consumers: aiokafka, or librdkafka (the C client, fetching "
            "off the event loop: less CPU per record; extra 'librdkafka'; docs/reactive-consumer.md#consumer-engines, "
            "docs/active-consumer.md#consumer-engines)."
        ),
    )

    def __post_init__(self) -> None:
        _check_kafka_engine(self.engine)


SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """Connection security shared by every Kafka client the sidecar makes.

    Secrets never need to be inline: use ``${ENV_VAR}`` or the ``*_file`` twin of a key. A password file
    is read when a Kafka client is created (a long-lived client keeps what it read; docs/security.md
    says when a rotated file takes effect); a relative path is taken from the config file's folder.
    """

    protocol: SecurityProtocol = field(default="PLAINTEXT", metadata=doc("security.protocol"))
    sasl_mechanism: SaslMechanism | None = field(
        default=None, metadata=doc("SASL mechanism when the protocol is SASL_* (default PLAIN).")
    )
    sasl_username: str | None = field(default=None, metadata=doc("SASL user name (PLAIN and SCRAM)."))
    sasl_password: str | None = field(default=None, metadata=doc("SASL password; use ${ENV_VAR}.", secret=True))
    sasl_password_file: str | None = field(default=None, metadata=doc("File holding the SASL password.", file=True))
    ssl_cafile: str | None = field(
        default=None, metadata=doc("CA bundle (PEM) to trust; default: system CAs.", file=True)
    )
    ssl_certfile: str | None = field(default=None, metadata=doc("Client certificate (PEM) for mTLS.", file=True))
    ssl_keyfile: str | None = field(default=None, metadata=doc("Client key (PEM) for mTLS.", file=True))
    ssl_password: str | None = field(default=None, metadata=doc("Client key password.", secret=True))
    ssl_password_file: str | None = field(
        default=None, metadata=doc("File holding the client key password.", file=True)
    )
    ssl_check_hostname: bool = field(default=True, metadata=doc("Verify the broker's host name (keep it on)."))
    oauth_token_endpoint: str | None = field(
        default=None, metadata=doc("OAUTHBEARER: OAuth 2 token endpoint (client-credentials grant).")
    )
    oauth_client_id: str | None = field(default=None, metadata=doc("OAUTHBEARER: client id."))
    oauth_client_secret: str | None = field(
        default=None, metadata=doc("OAUTHBEARER: client secret; use ${ENV_VAR}.", secret=True)
    )
    oauth_client_secret_file: str | None = field(
        default=None, metadata=doc("File holding the client secret.", file=True)
    )
    oauth_scope: str | None = field(default=None, metadata=doc("OAUTHBEARER: scope to request (space-separated)."))
    oauth_cafile: str | None = field(default=None, metadata=doc("CA bundle (PEM) for the token endpoint.", file=True))
    oauth_refresh_margin_s: float = field(
        default=60.0, metadata=doc("Fetch a new token this long before the current one expires.")
    )
    oauth_timeout_s: float = field(default=10.0, metadata=doc("Timeout of one token request."))

    def __post_init__(self) -> None:
        pairs = (
            ("sasl_password", "sasl_password_file"),
            ("ssl_password", "ssl_password_file"),
            ("oauth_client_secret", "oauth_client_secret_file"),
        )
        for inline, file in pairs:
            if getattr(self, inline) is not None and getattr(self, file) is not None:
                raise ValueError(f"set {inline} or {file}, not both")
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError("ssl_keyfile needs ssl_certfile")
        _check_readable(
            self,
            "sasl_password_file", "ssl_password_file", "oauth_client_secret_file",
            "ssl_cafile", "ssl_certfile", "ssl_keyfile", "oauth_cafile",
        )  # fmt: skip
        if not self.protocol.startswith("SASL_"):
            if self.sasl_mechanism is not None:
                raise ValueError(f"sasl_mechanism {self.sasl_mechanism} needs protocol SASL_SSL or SASL_PLAINTEXT")
            return
        mechanism = self.sasl_mechanism or "PLAIN"
        if mechanism == "OAUTHBEARER":
            if not (self.oauth_token_endpoint and self.oauth_client_id):
                raise ValueError("OAUTHBEARER needs oauth_token_endpoint and oauth_client_id")
            if self.oauth_client_secret is None and self.oauth_client_secret_file is None:
                raise ValueError("OAUTHBEARER needs oauth_client_secret or oauth_client_secret_file")
            if not self.oauth_token_endpoint.startswith(("https://", "http://")):
                raise ValueError("oauth_token_endpoint must be an http(s) URL")
        else:
            if not self.sasl_username:
                raise ValueError(f"SASL {mechanism} needs sasl_username")
            if self.sasl_password is None and self.sasl_password_file is None:
                raise ValueError(f"SASL {mechanism} needs sasl_password or sasl_password_file")


@dataclass(frozen=True, slots=True)
class KafkaConfig:
    bootstrap_servers: str = field(default="127.0.0.1:9092", metadata=doc("Comma-separated host:port list of brokers."))
    client_id: str = field(default="kafka-sidecar", metadata=doc("Client id prefix for every Kafka client."))
    metadata_max_age_ms: int = field(default=300000, metadata=doc("How often metadata is refreshed."))
    connect_timeout_ms: int = field(
        default=5000, metadata=doc("Readiness probe and start-up: how long to wait for the broker.")
    )
    producer: ProducerSettings = field(default_factory=ProducerSettings)
    consumer: ConsumerSettings = field(default_factory=ConsumerSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)


@dataclass(frozen=True, slots=True)
class PluginsConfig:
    dirs: tuple[str, ...] = field(
        default=(), metadata=doc("Folders whose every .py file is loaded as a plugin (the deployment's own).")
    )
    block: tuple[str, ...] = field(default=(), metadata=doc("Plugin names never to load."))
    entry_points: bool = field(default=True, metadata=doc("Load plugins from the 'kafka_sidecar' entry points."))


@dataclass(frozen=True, slots=True)
class HandlerDecl:
    """An instance of a registered handler type (``use``), with its own config."""

    use: str = field(metadata=doc("Registered handler type name."))
    enabled: bool = field(default=True, metadata=doc("Disabled handlers are dropped from chains at start."))
    config: object = field(default=None, metadata=doc("Settings for the handler type (validated by it)."))


@dataclass(frozen=True, slots=True)
class PathDecl:
    path: str = field(metadata=doc("URL path with {params}, Starlette syntax."))
    exec: tuple[str, ...] = field(metadata=doc("Chain and handler names; the last one is the terminal."))
    method: str | None = field(default=None, metadata=doc("HTTP method (or use 'methods')."))
    methods: tuple[str, ...] = field(default=(), metadata=doc("HTTP methods served by this entry."))

    def all_methods(self) -> tuple[str, ...]:
        found = (*((self.method,) if self.method else ()), *self.methods)
        return tuple(m.upper() for m in found)


@dataclass(frozen=True, slots=True)
class ConsumerDecl:
    """A consumer pipeline: its terminal is a source handler that feeds consumed batches to the chain."""

    exec: tuple[str, ...] = field(metadata=doc("Chain and handler names; the last one is a consumer terminal."))
    enabled: bool = field(default=True, metadata=doc("Disabled consumers are not started."))


@dataclass(frozen=True, slots=True)
class SidecarConfig:
    service: ServiceConfig = field(default_factory=ServiceConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    plugins: PluginsConfig = field(default_factory=PluginsConfig)
    handlers: Mapping[str, HandlerDecl] = field(default_factory=dict)
    chains: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    paths: tuple[PathDecl, ...] = ()
    consumers: Mapping[str, ConsumerDecl] = field(default_factory=dict)
    sections: Mapping[str, object] = field(
        default_factory=dict, metadata=doc("Top-level sections registered by plugins, by name.")
    )


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """The typed config plus where things were declared, for later (semantic) error messages."""

    config: SidecarConfig
    file: str
    raw: Any
    locations: Mapping[str, Loc] = field(default_factory=lambda: MappingProxyType({}))

    def loc(self, path: str) -> Loc:
        return self.locations.get(path, Loc(self.file, 1, 1))
