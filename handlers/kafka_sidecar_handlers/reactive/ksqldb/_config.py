"""Settings of the ksqlDB handlers (``use: ksqldb-consumer``, ``use: ksqldb-query``): validated once, frozen.

Every field is documented in its metadata and in ``docs/ksqldb-consumer.md``. ``kafka-sidecar check``
runs these validations, so a push query with ``resume: source-offsets`` and GROUP BY/WINDOW/JOIN, or
a wrong key under ``delivery``, is refused before anything starts.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kafka_sidecar.plugin import convert_nested, doc
from kafka_sidecar_handlers.reactive._config import ReactiveConsumerConfig

Mode = Literal["sink", "push"]
Resume = Literal["none", "source-offsets"]
HttpVersion = Literal["2", "1.1"]

_STRINGS = re.compile(r"'(?:[^']|'')*'")
_NOT_ROW_PRESERVING = re.compile(r"\b(GROUP\s+BY|WINDOW|JOIN)\b", re.IGNORECASE)
PUSH_TOPIC_PREFIX = "ksqldb."


def not_row_preserving(sql: str) -> str | None:
    """``GROUP BY``, ``WINDOW`` or ``JOIN`` in ``sql`` (outside string literals), or None."""
    found = _NOT_ROW_PRESERVING.search(_STRINGS.sub("''", sql))
    return " ".join(found.group(1).upper().split()) if found else None


@dataclass(frozen=True, slots=True, kw_only=True)
class KsqlDbConnection:
    """How to reach ksqlDB: shared by the consumer and the query endpoint."""

    server: str = field(
        default="http://127.0.0.1:8088",
        metadata=doc("ksqlDB URL: http:// (h2c prior knowledge or HTTP/1.1) or https:// (TLS, ALPN h2)."),
    )
    http_version: HttpVersion = field(
        default="2", metadata=doc("'2': HTTP/2 (h2c over http://, ALPN over https://); '1.1': HTTP/1.1 only.")
    )
    basic_auth_user: str | None = field(default=None, metadata=doc("Basic-auth user name."))
    basic_auth_password: str | None = field(
        default=None, metadata=doc("Basic-auth password; use ${ENV_VAR}.", secret=True)
    )
    basic_auth_password_file: str | None = field(
        default=None,
        metadata=doc("File holding the basic-auth password (read at start and at each restart).", file=True),
    )
    ca_file: str | None = field(
        default=None, metadata=doc("PEM CA bundle trusted for https:// (default: system).", file=True)
    )
    client_certfile: str | None = field(default=None, metadata=doc("PEM client certificate (mutual TLS).", file=True))
    client_keyfile: str | None = field(default=None, metadata=doc("PEM private key of client_certfile.", file=True))
    connect_timeout_ms: int = field(default=5000, metadata=doc("Longest wait to connect to ksqlDB."))
    request_timeout_ms: int = field(
        default=30000, metadata=doc("Longest wait for a /ksql answer or a query's first bytes.")
    )

    def __post_init__(self) -> None:
        if not self.server.startswith(("http://", "https://")):
            raise ValueError(f"server must be an http:// or https:// URL, got {self.server!r}")
        if self.basic_auth_password is not None and self.basic_auth_password_file is not None:
            raise ValueError("set basic_auth_password or basic_auth_password_file, not both")
        if (self.basic_auth_password is not None or self.basic_auth_password_file) and not self.basic_auth_user:
            raise ValueError("a basic-auth password needs basic_auth_user")
        if (self.client_certfile is None) != (self.client_keyfile is None):
            raise ValueError("client_certfile and client_keyfile go together")
        if self.server.startswith("http://") and (self.ca_file or self.client_certfile):
            raise ValueError("ca_file and client certificates need an https:// server")
        for name in ("ca_file", "client_certfile", "client_keyfile", "basic_auth_password_file"):
            value = getattr(self, name)
            if value is not None and not Path(value).is_file():
                raise ValueError(f"{name}: no such file {value!r}")
        if self.http_version == "2" and importlib.util.find_spec("h2") is None:
            raise ValueError(
                "http_version '2' needs the h2 package: pip install 'kafka-sidecar[ksqldb]' (or http_version: '1.1')"
            )
        if self.connect_timeout_ms < 1 or self.request_timeout_ms < 1:
            raise ValueError("connect_timeout_ms and request_timeout_ms must be positive")

    def password(self) -> str | None:
        if self.basic_auth_password_file is not None:
            return Path(self.basic_auth_password_file).read_text(encoding="utf-8").strip()
        return self.basic_auth_password


@dataclass(frozen=True, slots=True, kw_only=True)
class KsqlDbConsumerConfig(KsqlDbConnection):
    query: str = field(
        metadata=doc(
            "sink: the persistent query (CREATE STREAM|TABLE ... AS SELECT ... EMIT CHANGES); "
            "push: the push query (SELECT ... EMIT CHANGES)."
        )
    )
    mode: Mode = field(default="sink", metadata=doc("sink (durable, default) or push (live; see the guarantees)."))
    statements: tuple[str, ...] = field(
        default=(), metadata=doc("Run once at start, in order, before the query; make them idempotent (IF NOT EXISTS).")
    )
    properties: Mapping[str, str] = field(
        default_factory=dict,
        metadata=doc("ksqlDB properties for the statements and the query, e.g. {auto.offset.reset: earliest}."),
    )
    sink_topic: str | None = field(default=None, metadata=doc("sink: the topic the persistent query writes."))
    resume: Resume = field(
        default="none",
        metadata=doc(
            "push: none (rows while disconnected may be missed) or source-offsets (no gap; row-preserving "
            "queries only: ROWPARTITION/ROWOFFSET are added and checkpointed)."
        ),
    )
    checkpoint_topic: str = field(
        default="_kafka-sidecar-ksqldb", metadata=doc("push + source-offsets: compacted topic of checkpoints.")
    )
    reconnect_initial_ms: int = field(default=200, metadata=doc("First wait before connecting again."))
    reconnect_max_ms: int = field(default=10000, metadata=doc("Cap on the wait between connection attempts."))
    delivery: object = field(
        default=None,
        metadata=doc(
            "Reactive-consumer keys (group, backend_url, backend_path, retry, batch_*, max_buffered_records, "
            "isolation_level, ...: docs/reactive-consumer.md) except topics."
        ),
    )
    reactive: ReactiveConsumerConfig | None = field(
        default=None, init=False, repr=False, compare=False, metadata=doc("Derived from delivery (not a key).")
    )

    def __post_init__(self) -> None:
        super(KsqlDbConsumerConfig, self).__post_init__()
        query = self.query.strip()
        head = query.split(None, 1)[0].upper() if query else ""
        if self.mode == "sink":
            if head != "CREATE" or not re.search(r"\bAS\s+SELECT\b", query, re.IGNORECASE):
                raise ValueError("mode sink: query must be a persistent query (CREATE STREAM|TABLE ... AS SELECT ...)")
            if not self.sink_topic:
                raise ValueError("mode sink: sink_topic (the topic the persistent query writes) is required")
            if self.resume != "none":
                raise ValueError("resume applies to mode push only (sink mode resumes from committed offsets)")
        else:
            if head != "SELECT" or not re.search(r"\bEMIT\s+CHANGES\b", query, re.IGNORECASE):
                raise ValueError("mode push: query must be a push query (SELECT ... EMIT CHANGES)")
            clause = not_row_preserving(query)
            if self.resume == "source-offsets" and clause is not None:
                raise ValueError(
                    f"resume: source-offsets needs a row-preserving query; this one has {clause} "
                    "(its rows have no source offsets to resume from)"
                )
        if self.reconnect_initial_ms < 1 or self.reconnect_max_ms < self.reconnect_initial_ms:
            raise ValueError("reconnect_initial_ms must be positive and at most reconnect_max_ms")
        topic = self.sink_topic if self.mode == "sink" and self.sink_topic else PUSH_TOPIC_PREFIX + "consumer"
        object.__setattr__(self, "reactive", self._reactive_config(topic))

    def _reactive_config(self, topic: str) -> ReactiveConsumerConfig:
        raw = self.delivery if self.delivery is not None else {}
        if not isinstance(raw, dict):
            raise ValueError("delivery must be a mapping of reactive-consumer keys")
        if "topics" in raw or "topic_pattern" in raw:
            raise ValueError("delivery: topics come from the ksqlDB query (sink_topic, or the push stream)")
        data = copy.copy(raw)  # keeps the YAML positions of a positioned mapping
        data["topics"] = [topic]
        # ksqlDB writes keys in its KAFKA key format (a STRING key is its raw UTF-8 text), not JSON.
        data.setdefault("key_format", "string")
        if self.mode == "push":
            data.setdefault("group", "ksqldb-push")
        return convert_nested(data, ReactiveConsumerConfig, "delivery")

    def reactive_for(self, consumer_name: str) -> ReactiveConsumerConfig:
        """The delivery settings, with the logical topic ``ksqldb.<consumer>`` in push mode."""
        assert self.reactive is not None
        if self.mode == "sink":
            return self.reactive
        return dataclasses.replace(self.reactive, topics=(PUSH_TOPIC_PREFIX + consumer_name,))


@dataclass(frozen=True, slots=True, kw_only=True)
class KsqlDbQueryConfig(KsqlDbConnection):
    push_timeout_ms: int = field(
        default=5000,
        metadata=doc("POST /ksqldb/active, push query without LIMIT: rows arriving within this time, then close."),
    )
    max_rows: int = field(default=10000, metadata=doc("Most rows one /ksqldb/active answer holds (more: 413)."))

    def __post_init__(self) -> None:
        super(KsqlDbQueryConfig, self).__post_init__()
        if self.push_timeout_ms < 1 or self.max_rows < 1:
            raise ValueError("push_timeout_ms and max_rows must be positive")
