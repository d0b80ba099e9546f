"""Settings of one stream processor (``use: stream-processor``): validated once, frozen.

Every field is documented in its metadata and in ``docs/stream-processors.md``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from kafka_sidecar.plugin import doc

Runtime = Literal["python", "command"]
Guarantee = Literal["exactly-once", "at-least-once"]
OffsetReset = Literal["earliest", "latest"]


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Capped exponential backoff between restarts, and a budget of restarts per window."""

    initial_backoff_ms: int = field(default=1000, metadata=doc("Wait before the first restart after a crash."))
    max_backoff_ms: int = field(default=60000, metadata=doc("Cap on the wait; each crash in a row doubles it."))
    max_restarts: int = field(
        default=10, metadata=doc("Restarts allowed within window_ms; one more crash and the processor is failed.")
    )
    window_ms: int = field(default=3600000, metadata=doc("The window the restart budget counts over."))
    healthy_after_ms: int = field(
        default=60000, metadata=doc("A run this long resets the backoff to initial_backoff_ms.")
    )

    def __post_init__(self) -> None:
        if self.initial_backoff_ms < 0 or self.max_backoff_ms < self.initial_backoff_ms:
            raise ValueError("restart backoffs must satisfy 0 <= initial_backoff_ms <= max_backoff_ms")
        if self.max_restarts < 0 or self.window_ms <= 0:
            raise ValueError("restart.max_restarts must be >= 0 and restart.window_ms > 0")

    def backoff_s(self, crashes_in_a_row: int) -> float:
        """Seconds to wait before restart number ``crashes_in_a_row`` (1-based) of an unbroken crash run."""
        factor: int = 2 ** max(crashes_in_a_row - 1, 0)
        return float(min(self.initial_backoff_ms * factor, self.max_backoff_ms)) / 1000


@dataclass(frozen=True, slots=True)
class StreamProcessorConfig:
    application_id: str = field(
        metadata=doc("Consumer group of the processor (quixstreams consumer_group, Kafka Streams application.id).")
    )
    runtime: Runtime = field(default="python", metadata=doc("python (a quixstreams app) or command (anything)."))
    app: str | None = field(
        default=None,
        metadata=doc("python: 'module:function' or 'path/to/file.py:function'; the function gets the Application."),
    )
    python: str | None = field(
        default=None, metadata=doc("python: interpreter running the app (its own venv); default: the sidecar's.")
    )
    python_path: tuple[str, ...] = field(
        default=(),
        metadata=doc("python: folders put on the app's sys.path (relative: to the sidecar's cwd)."),
    )
    command: tuple[str, ...] = field(default=(), metadata=doc("command: the program and its arguments."))
    processing_guarantee: Guarantee = field(
        default="exactly-once", metadata=doc("exactly-once (transactions) or at-least-once.")
    )
    commit_interval_ms: int = field(
        default=1000, metadata=doc("How often the processor commits (quixstreams commit_interval, commit.interval.ms).")
    )
    auto_offset_reset: OffsetReset = field(default="earliest", metadata=doc("Where a new group starts reading."))
    state_dir: str | None = field(
        default=None, metadata=doc("Local state (RocksDB) folder; default: a folder per processor under the cwd.")
    )
    input_topics: tuple[str, ...] = field(
        default=(), metadata=doc("Topics the processor reads (reset and lag use them; default: the group's).")
    )
    output_topics: tuple[str, ...] = field(
        default=(), metadata=doc("Topics it writes; check requires a consumer of each, unless expose is false.")
    )
    expose: bool = field(
        default=True, metadata=doc("false: the outputs are for other services; no consumer in this sidecar needed.")
    )
    env: Mapping[str, str] = field(default_factory=dict, metadata=doc("Extra environment of the child process."))
    working_dir: str | None = field(default=None, metadata=doc("Working directory of the child (default: cwd)."))
    properties: Mapping[str, str] = field(
        default_factory=dict,
        metadata=doc("Extra client settings: command: into the properties file; python: the consumer's librdkafka."),
    )
    ready_pattern: str | None = field(
        default=None, metadata=doc("Regex on the child's output that marks it running (else: alive ready_after_ms).")
    )
    ready_after_ms: int = field(default=2000, metadata=doc("Alive this long without ready_pattern = running."))
    stop_timeout_ms: int = field(
        default=10000, metadata=doc("After SIGTERM, wait this long, then SIGKILL (keep it within the shutdown budget).")
    )
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    log_lines: int = field(default=50, metadata=doc("Last output lines kept for the status route."))
    lag_interval_ms: int = field(default=5000, metadata=doc("How often group lag is reported to metrics."))

    def __post_init__(self) -> None:
        if self.runtime == "python" and not self.app:
            raise ValueError("runtime python needs 'app' ('module:function' or 'file.py:function')")
        if self.runtime == "command" and not self.command:
            raise ValueError("runtime command needs 'command' (a list: program and arguments)")
        if self.runtime == "command" and (self.app or self.python):
            raise ValueError("'app' and 'python' belong to runtime python, not command")
        self._check_programs()
        if self.ready_pattern is not None:
            try:
                re.compile(self.ready_pattern)
            except re.error as exc:
                raise ValueError(f"ready_pattern is not a regular expression: {exc}") from exc
        if self.commit_interval_ms <= 0:
            raise ValueError("commit_interval_ms must be > 0")
        if self.stop_timeout_ms <= 0 or self.ready_after_ms < 0 or self.log_lines < 1:
            raise ValueError("stop_timeout_ms must be > 0, ready_after_ms >= 0 and log_lines >= 1")

    def _check_programs(self) -> None:
        """What ``run`` would fail to start, reported by ``check`` (relative paths: from the working directory)."""
        if self.python is not None and not os.access(self.python, os.X_OK):
            raise ValueError(f"python: {self.python!r} is not an executable interpreter")
        where = (self.app or "").rpartition(":")[0]
        if where.endswith(".py") and not os.path.isfile(where):
            raise ValueError(f"app: no file {where!r}")
        if self.command and shutil.which(self.command[0]) is None:
            raise ValueError(f"command: {self.command[0]!r} is not an executable program (nor on PATH)")
