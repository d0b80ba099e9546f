"""Settings of one reactive consumer (``use: reactive-consumer``): validated once, frozen.

Every field is documented in its metadata and in ``docs/reactive-consumer.md``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from kafka_sidecar.plugin import DEFAULT_SUFFIX, doc

ConcurrencyMode = Literal["partition", "key"]
OffsetReset = Literal["earliest", "latest"]
IsolationLevel = Literal["read_committed", "read_uncommitted"]
RequestFormat = Literal["sidecar", "java"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter; after the last attempt: dead letter."""

    max_attempts: int = field(default=5, metadata=doc("Deliveries of a record before it goes to the DLQ (>= 1)."))
    initial_backoff_ms: int = field(default=200, metadata=doc("Wait before the second attempt."))
    multiplier: float = field(default=2.0, metadata=doc("Each further wait is this many times longer."))
    max_backoff_ms: int = field(default=30000, metadata=doc("Cap on one wait."))
    jitter: float = field(default=0.2, metadata=doc("Random spread of each wait, 0..1 (0.2 = +-20%)."))

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("retry.max_attempts must be at least 1")
        if self.initial_backoff_ms < 0 or self.max_backoff_ms < 0:
            raise ValueError("retry backoffs must not be negative")
        if self.multiplier < 1:
            raise ValueError("retry.multiplier must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("retry.jitter must be between 0 and 1")

    def backoff_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.initial_backoff_ms * self.multiplier ** max(attempt - 1, 0), self.max_backoff_ms)
        spread = (rng or random).uniform(-self.jitter, self.jitter) if self.jitter else 0.0
        return max(0.0, min(base * (1 + spread), self.max_backoff_ms)) / 1000


@dataclass(frozen=True, slots=True)
class ReactiveConsumerConfig:
    group: str = field(metadata=doc("Consumer group id (offsets are committed for this group)."))
    backend_url: str = field(metadata=doc("Base URL of the backend (http:// or https://), e.g. http://127.0.0.1:8080."))
    topics: tuple[str, ...] = field(
        default=(), metadata=doc("Topics to consume. Give this or topic_pattern, not both.")
    )
    topic_pattern: str | None = field(default=None, metadata=doc("Regular expression of topics to consume."))
    backend_path: str = field(default="/", metadata=doc("Path the batches are POSTed to."))
    request_format: RequestFormat = field(
        default="sidecar",
        metadata=doc("sidecar: {consumer, records: [...]}; java: the bare record array the Java sidecar sends."),
    )
    backend_headers: Mapping[str, str] = field(
        default_factory=dict,
        metadata=doc(
            "Static HTTP headers sent with every backend call (credential-like ones are masked in /admin/config)."
        ),
    )
    backend_token: str | None = field(
        default=None, metadata=doc("Sent as 'Authorization: Bearer <token>' to the backend.", secret=True)
    )
    backend_health_url: str | None = field(
        default=None,
        metadata=doc(
            "GET URL; while it fails (error or status >= 400) delivery pauses; it starts after the first good check."
        ),
    )
    health_interval_ms: int = field(default=1000, metadata=doc("How often the health URL is checked."))
    request_timeout_ms: int = field(default=30000, metadata=doc("Longest wait for one backend reply."))
    key_format: str = field(
        default="json",
        metadata=doc("Format the keys are decoded with (json, what the producer writes by default; checked at plan)."),
    )
    value_format: str = field(
        default="json",
        metadata=doc("Format the values are decoded with (any registered format; checked at plan time)."),
    )
    batch_max_records: int = field(default=500, metadata=doc("Most records in one backend call."))
    batch_max_bytes: int = field(
        default=1048576,
        metadata=doc("Most key+value bytes in one backend call (a single larger record is sent alone)."),
    )
    batch_max_wait_ms: int = field(default=20, metadata=doc("How long a short batch waits to fill up."))
    concurrency: ConcurrencyMode = field(
        default="partition",
        metadata=doc("partition: one batch at a time per partition; key: per-key order, keys in parallel lanes."),
    )
    key_lanes: int = field(default=8, metadata=doc("Parallel lanes per partition in key mode."))
    max_buffered_records: int = field(
        default=5000, metadata=doc("Per partition: fetched but undelivered records before fetching pauses.")
    )
    fetch_max_records: int = field(
        default=2000,
        metadata=doc("Most records one poll of the Kafka client returns (all partitions); batches are cut from them."),
    )
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    dead_letter_suffix: str = field(default=DEFAULT_SUFFIX, metadata=doc("Dead-letter topic = topic + suffix."))
    dead_letter_sink: str = field(
        default="kafka",
        metadata=doc("Where dead letters go: a sink registered by name (`kafka`: the dead-letter topic)."),
    )
    auto_offset_reset: OffsetReset = field(default="earliest", metadata=doc("Where a new group starts."))
    isolation_level: IsolationLevel = field(
        default="read_committed",
        metadata=doc(
            "read_committed: records of aborted (or still open) transactions never reach the backend; "
            "read_uncommitted: every record as soon as it is written."
        ),
    )
    drain_timeout_ms: int = field(
        default=10000, metadata=doc("On stop or revoke: how long in-flight batches may finish.")
    )
    commit_interval_ms: int = field(
        default=50,
        metadata=doc(
            "Shortest time between two offset commits: progress made meanwhile joins the next commit "
            "(0: one commit per finished batch). Only final records are ever committed."
        ),
    )
    session_timeout_ms: int = field(default=10000, metadata=doc("Group session timeout."))
    heartbeat_interval_ms: int = field(default=3000, metadata=doc("Group heartbeat interval."))
    max_partition_fetch_bytes: int = field(default=1048576, metadata=doc("Fetch size per partition."))
    lag_interval_ms: int = field(
        default=5000, metadata=doc("How often lag is reported to the metrics plugin (when it is in a chain).")
    )

    def __post_init__(self) -> None:
        if bool(self.topics) == bool(self.topic_pattern):
            raise ValueError("give exactly one of 'topics' (a list) or 'topic_pattern'")
        if self.backend_token is not None and any(name.lower() == "authorization" for name in self.backend_headers):
            raise ValueError(
                "backend_token and an Authorization header in backend_headers would send two Authorization "
                "headers: set one of them"
            )
        if not self.backend_url.startswith(("http://", "https://")):
            raise ValueError(f"backend_url must be an http(s) URL, got {self.backend_url!r}")
        if not self.backend_path.startswith("/"):
            raise ValueError("backend_path must start with '/'")
        for name in ("batch_max_records", "batch_max_bytes", "key_lanes", "max_buffered_records", "fetch_max_records"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("batch_max_wait_ms", "drain_timeout_ms", "commit_interval_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.request_timeout_ms < 1 or self.health_interval_ms < 1 or self.lag_interval_ms < 1:
            raise ValueError("request_timeout_ms, health_interval_ms and lag_interval_ms must be positive")
        if not self.dead_letter_suffix:
            raise ValueError("dead_letter_suffix must not be empty")

    @property
    def endpoint(self) -> str:
        return self.backend_url.rstrip("/") + self.backend_path

    @property
    def lanes(self) -> int:
        return self.key_lanes if self.concurrency == "key" else 1
