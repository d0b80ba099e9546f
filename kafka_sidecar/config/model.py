"""The typed shape of ``chains.yml``: frozen dataclasses, one per section.

Every key is documented in field metadata (``doc``); ``docs/configuration.md`` is written from the
same text. Secrets are marked ``secret`` and never shown unmasked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from kafka_sidecar.config.yaml_source import Loc


def doc(text: str, **extra: Any) -> Any:
    """Field metadata helper: ``field(default=..., metadata=doc("..."))``."""
    return {"doc": text, **extra}


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    id: str = field(default="kafka-sidecar", metadata=doc("Service id used in audit records and logs."))


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
    http2: bool = field(default=True, metadata=doc("Accept HTTP/2 cleartext (h2c) besides HTTP/1.1."))

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, got {self.port}")
        if self.max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")


Acks = Literal["all", "1", "0", -1, 0, 1]
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
        default=30000, metadata=doc("How long a produce may wait for the broker before it fails (503).")
    )


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """Connection security shared by every Kafka client the sidecar makes."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = field(
        default="PLAINTEXT", metadata=doc("security.protocol")
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = field(
        default=None, metadata=doc("SASL mechanism when the protocol is SASL_*.")
    )
    sasl_username: str | None = field(default=None, metadata=doc("SASL user name."))
    sasl_password: str | None = field(default=None, metadata=doc("SASL password; use ${ENV_VAR}.", secret=True))
    ssl_cafile: str | None = field(default=None, metadata=doc("CA bundle (PEM) to trust."))
    ssl_certfile: str | None = field(default=None, metadata=doc("Client certificate (PEM) for mTLS."))
    ssl_keyfile: str | None = field(default=None, metadata=doc("Client key (PEM) for mTLS."))
    ssl_password: str | None = field(default=None, metadata=doc("Client key password.", secret=True))
    ssl_check_hostname: bool = field(default=True, metadata=doc("Verify the broker's host name."))


@dataclass(frozen=True, slots=True)
class KafkaConfig:
    bootstrap_servers: str = field(default="127.0.0.1:9092", metadata=doc("Comma-separated host:port list of brokers."))
    client_id: str = field(default="kafka-sidecar", metadata=doc("Client id prefix for every Kafka client."))
    metadata_max_age_ms: int = field(default=300000, metadata=doc("How often metadata is refreshed."))
    connect_timeout_ms: int = field(
        default=5000, metadata=doc("Readiness probe and start-up: how long to wait for the broker.")
    )
    producer: ProducerSettings = field(default_factory=ProducerSettings)
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
