"""Whole-test-run secret leak detection: a registry of test secrets, a log capture, and scanners.

The test suite registers every secret it hands to the sidecar (:meth:`SecretWatch.add`), a
:class:`CapturingHandler` on the root logger keeps every formatted log line of the run, and a final
test calls :func:`scan_lines` and :func:`scan_topics` (every record of every topic on a broker) and
fails with the :class:`Leak` list. Nothing here runs at import time; aiokafka is imported lazily.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "CapturingHandler",
    "Leak",
    "SecretWatch",
    "TopicScan",
    "mask",
    "scan_bytes",
    "scan_lines",
    "scan_topics",
]

MIN_SECRET_LENGTH: Final = 6
"""Shorter values cannot be grepped for without false positives, so registering one is an error."""

JWT_PATTERN: Final = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")
"""Any signed JWT: caught even when the test that minted it could not register it."""

_STANDARD_RECORD_KEYS: Final = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def mask(secret: str) -> str:
    """Enough of a secret to find it in the test source, never all of it."""
    return f"{secret[:3]}…({len(secret)} chars)"


@dataclass(frozen=True)
class Needle:
    """One byte string to look for; ``label`` says which secret (masked) and in which form."""

    data: bytes
    label: str


@dataclass(frozen=True)
class Leak:
    """A secret found somewhere it must never be: ``where`` names the logger or topic/partition/offset/field."""

    secret: str
    where: str

    def __str__(self) -> str:
        return f"{self.secret} found in {self.where}"


class SecretWatch:
    """The session's registry of test secrets, plus the captured log lines (thread safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._needles: dict[bytes, str] = {}
        self.lines: list[tuple[str, str]] = []  # (logger name, formatted line incl. extras/traceback)

    def add(self, secret: str) -> None:
        """Register ``secret`` (and its base64 form, as a bearer/basic credential might carry it)."""
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"test secret {secret[:1]!r}… is shorter than {MIN_SECRET_LENGTH} chars: ungreppable")
        raw = secret.encode()
        with self._lock:
            self._needles.setdefault(raw, mask(secret))
            self._needles.setdefault(base64.b64encode(raw), f"{mask(secret)} as base64")

    def add_basic_auth(self, user: str, password: str) -> None:
        """Register a basic-auth password and the ``base64(user:password)`` an Authorization header carries."""
        self.add(password)
        with self._lock:
            encoded = base64.b64encode(f"{user}:{password}".encode())
            self._needles.setdefault(encoded, f"{mask(password)} as basic-auth base64")

    @property
    def needles(self) -> tuple[Needle, ...]:
        with self._lock:
            return tuple(Needle(data, label) for data, label in self._needles.items())

    def record_line(self, logger: str, line: str) -> None:
        self.lines.append((logger, line))  # list.append is atomic; no lock on the hot path


class CapturingHandler(logging.Handler):
    """Keeps every formatted record: INFO and above from all loggers, DEBUG too from ``debug_prefixes``."""

    def __init__(self, watch: SecretWatch, debug_prefixes: Sequence[str]) -> None:
        super().__init__(logging.DEBUG)
        self.watch = watch
        self.debug_prefixes = tuple(debug_prefixes)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.INFO and not record.name.startswith(self.debug_prefixes):
            return
        try:
            line = self.format(record)
        except Exception:  # a broken log call must not hide what it carried
            line = f"{record.msg!r} % {record.args!r}"
        extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD_RECORD_KEYS}
        if extras:
            line += f" extra={extras!r}"
        self.watch.record_line(record.name, line)


def scan_bytes(haystack: bytes, needles: Iterable[Needle], where: str) -> list[Leak]:
    """Every needle (and any JWT) inside ``haystack``, each reported as found at ``where``."""
    leaks = [Leak(needle.label, where) for needle in needles if needle.data in haystack]
    leaks += [Leak(f"a JWT {mask(m.group().decode())}", where) for m in JWT_PATTERN.finditer(haystack)]
    return leaks


def log_file_lines(base: Path, pattern: str = "*.log") -> tuple[int, list[tuple[str, str]]]:
    """(file count, (where, line) pairs) of every log file under ``base``: what sidecar processes logged."""
    files = sorted(path for path in base.rglob(pattern) if path.is_file())
    lines = [
        (f"file {path.relative_to(base)}", line)
        for path in files
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
    ]
    return len(files), lines


def scan_lines(lines: Iterable[tuple[str, str]], needles: Sequence[Needle]) -> list[Leak]:
    """Leaks in captured log lines; ``where`` is ``log line N (logger NAME)``."""
    leaks: list[Leak] = []
    for number, (logger, line) in enumerate(lines, 1):
        leaks += scan_bytes(line.encode(errors="replace"), needles, f"log line {number} (logger {logger})")
    return leaks


def scan_record(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
    needles: Sequence[Needle],
) -> list[Leak]:
    """Leaks in one Kafka record's key, value, header names and header values."""
    at = f"topic {topic} partition {partition} offset {offset}"
    leaks = scan_bytes(key or b"", needles, f"{at} key")
    leaks += scan_bytes(value or b"", needles, f"{at} value")
    for name, header_value in headers:
        leaks += scan_bytes(name.encode() + b"\0" + (header_value or b""), needles, f"{at} header {name!r}")
    return leaks


@dataclass(frozen=True)
class TopicScan:
    """What :func:`scan_topics` read: counts to prove it looked, ``unfinished`` partitions it could not finish."""

    topics: tuple[str, ...]
    records: int
    leaks: tuple[Leak, ...]
    unfinished: tuple[str, ...]


async def scan_topics(bootstrap: str, needles: Sequence[Needle], *, timeout: float = 60.0) -> TopicScan:
    """Read every non-internal topic on ``bootstrap`` from the beginning to its current end offsets."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        request_timeout_ms=int(timeout * 1000),
    )
    deadline = time.monotonic() + timeout
    leaks: list[Leak] = []
    records = 0
    async with asyncio.timeout(timeout + 30):
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
        await admin.start()
        try:
            described = [t for t in await admin.describe_topics() if not t.get("is_internal")]
        finally:
            await admin.close()
        topics = tuple(sorted(str(t["topic"]) for t in described))
        partitions = [TopicPartition(str(t["topic"]), int(p["partition"])) for t in described for p in t["partitions"]]
        await consumer.start()
        try:
            consumer.assign(partitions)
            ends = await consumer.end_offsets(partitions) if partitions else {}
            if partitions:
                await consumer.seek_to_beginning(*partitions)
            pending = {tp for tp, end in ends.items() if end > 0}
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)  # everything below the end offset was deleted/compacted away
            while pending and time.monotonic() < deadline:
                batch = await consumer.getmany(*pending, timeout_ms=500, max_records=5000)
                for tp, part in batch.items():
                    for r in part:
                        if r.offset < ends[tp]:
                            records += 1
                            leaks += scan_record(tp.topic, tp.partition, r.offset, r.key, r.value, r.headers, needles)
                for tp in list(pending):
                    if await consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
                        consumer.pause(tp)
        finally:
            await consumer.stop()
    unfinished = tuple(sorted(f"{tp.topic}[{tp.partition}]" for tp in pending))
    return TopicScan(topics, records, tuple(leaks), unfinished)
