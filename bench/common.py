"""Shared pieces of the benchmarks: a broker, topics, a sidecar process, payloads, a lean HTTP client, stats.

Nothing here runs on import. The broker is ``$KAFKA_SIDECAR_BOOTSTRAP`` (or ``--bootstrap``) when given,
else a fresh single-node broker from ``kafka_sidecar_testing.broker`` (jars cached after the first run).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kafka_sidecar_testing.broker import KafkaBroker, create_topic, ensure_kafka_runtime
from kafka_sidecar_testing.net import free_port
from kafka_sidecar_testing.process import stop_process

REPO = Path(__file__).resolve().parents[1]
BOOTSTRAP_ENV = "KAFKA_SIDECAR_BOOTSTRAP"
KIB = 1024


@contextlib.contextmanager
def kafka_bootstrap(given: str | None = None) -> Iterator[str]:
    """Bootstrap servers of a broker for the run: the given/env one, or a local broker started here."""
    external = given or os.environ.get(BOOTSTRAP_ENV, "").strip()
    if external:
        yield external
        return
    broker = KafkaBroker(ensure_kafka_runtime())
    broker.start(timeout=120)
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


async def new_topic(bootstrap: str, prefix: str, partitions: int) -> str:
    name = f"bench-{prefix}-{os.getpid()}-{time.monotonic_ns()}"
    await create_topic(bootstrap, name, partitions)
    return name


def payload(size: int = KIB, index: int = 0) -> str:
    """``size`` printable ASCII characters (so the record value is exactly ``size`` bytes), varying by index."""
    stem = f"{index:012d}-"
    return (stem * (size // len(stem) + 1))[:size]


@dataclass(frozen=True, slots=True)
class ServerProcess:
    """An HTTP server process on loopback that a bench drives: where it listens, its log and its pid."""

    base_url: str
    port: int
    log_path: Path
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU time the process and its children have used so far (Linux ``/proc``)."""
        return tree_cpu_seconds(self.pid)


@dataclass(frozen=True, slots=True)
class SidecarProcess(ServerProcess):
    """A ``kafka-sidecar run`` process (or a config served by another ASGI server, bench/serve_engine.py)."""


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and every live descendant (a server's worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        cpu = process_cpu_seconds(current)
        total += 0.0 if math.isnan(cpu) else cpu
        todo.extend(children.get(current, ()))
    return total


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid``, from ``/proc/<pid>/stat``; NaN where unavailable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return math.nan
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def sidecar_process(
    config: Path,
    bootstrap: str,
    log_dir: Path,
    *,
    ready_timeout: float = 60,
    env_extra: Mapping[str, str] | None = None,
    name: str = "sidecar",
    engine: str = "hypercorn",
) -> Iterator[SidecarProcess]:
    """Run ``kafka-sidecar run -c CONFIG`` (or, for another ``engine``, ``bench/serve_engine.py``) on a free
    loopback port until the block exits (SIGTERM)."""
    port = free_port()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SIDECAR_PORT": str(port), **(env_extra or {})}
    log_path = log_dir / f"{name}.log"
    cli = Path(sys.executable).with_name("kafka-sidecar")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(cli), "run", "-c", str(config), "--log-level", "WARNING"] if engine == "hypercorn"
            else [sys.executable, str(REPO / "bench" / "serve_engine.py"), engine, str(config)],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_http_ready(port, process, ready_timeout)
            yield SidecarProcess(f"http://127.0.0.1:{port}", port, log_path, process.pid)
        finally:
            stop_process(process, 30)


def wait_http_ready(
    port: int,
    process: subprocess.Popen[bytes],
    timeout: float,
    path: str = "/health/ready",
    what: str = "kafka-sidecar",
) -> None:
    """Poll ``GET path`` until it answers 200 or 204 (synchronously, so this works inside or outside an event
    loop); fails when ``process`` exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before it was ready")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", path)
            if connection.getresponse().status in (200, 204):
                return
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.2)  # poll interval of a deadline-bounded readiness wait
    raise RuntimeError(f"{what} was not ready within {timeout}s")


class HttpConnection:
    """A minimal HTTP/1.1 keep-alive client connection.

    Benchmarks measure the sidecar, not a client library: this sends a request and reads a
    ``Content-Length`` response with asyncio streams and almost no overhead of its own.
    """

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> HttpConnection:
        self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        return self

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()

    async def __aenter__(self) -> HttpConnection:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(
        self, method: str, path: str, body: bytes = b"", content_type: str = "application/json", extra: str = ""
    ) -> tuple[int, bytes]:
        """``extra``: more header lines, each ending in CRLF. A response saying ``Connection: close`` (the
        server's keep-alive request limit, Hypercorn's 1000) makes the next request open a new connection."""
        if self._reader is None or self._writer is None:
            await self.connect()
        assert self._reader is not None
        assert self._writer is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n{extra}"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self._writer.write(head.encode("ascii") + body)
        status_line = await self._reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length, closing = 0, False
        while True:
            line = await self._reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            header = name.strip().lower()
            if header == b"content-length":
                length = int(value.strip())
            elif header == b"connection":
                closing = value.strip().lower() == b"close"
        answer = await self._reader.readexactly(length) if length else b""
        if closing:
            await self.close()
            self._reader = self._writer = None
        return status, answer


async def open_connection(base_url: str) -> HttpConnection:
    """A connected :class:`HttpConnection` to ``http://host:port``; close it with ``await conn.close()``."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    return await HttpConnection(host, int(port)).connect()


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (``q`` in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(frozen=True, slots=True)
class Result:
    """One scenario's outcome. Latency is per request (one batch, until every record is acknowledged)."""

    name: str
    batch: int
    clients: int
    seconds: float
    records: int
    requests: int
    errors: int
    latencies_ms: tuple[float, ...]
    cpu_seconds: float = math.nan
    """CPU time of the process doing the producing (the sidecar, or the bench process for raw aiokafka)."""

    @property
    def cpu_ms_per_batch(self) -> float:
        return self.cpu_seconds * 1000 / self.requests if self.requests else math.nan

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 99)


def make_result(
    name: str, batch: int, clients: int, seconds: float, latencies: list[float], errors: int, cpu_seconds: float
) -> Result:
    ordered = tuple(sorted(latencies))
    return Result(name, batch, clients, seconds, len(ordered) * batch, len(ordered), errors, ordered, cpu_seconds)


def machine_line() -> str:
    cpus = os.cpu_count() or 0
    return f"{platform.node()} · {platform.machine()} · {cpus} CPU(s) · Python {platform.python_version()}"


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"
