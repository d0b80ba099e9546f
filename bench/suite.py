"""Every scenario of the performance goals, side by side in one run, against one broker.

Systems: the sidecar with the shipped ``chains.yml`` and with the bare terminals
(``bench/chains-bare.yml``), each a real ``kafka-sidecar run`` process; raw aiokafka in this process;
Kafka's own perf tools (``ProducerPerformance``/``ConsumerPerformance`` from the broker version's
``kafka-tools`` jar); the Strimzi HTTP bridge (Java) when ``--strimzi DIR`` names a build of it
(bench/strimzi.py says how to build one). One load generator (:class:`common.HttpConnection`) drives every HTTP system.
CPU per record is user+system time of the system's processes from ``/proc`` over the measured window
(the load generator and the broker are not counted).

Scenarios (``--scenarios``): ``produce100`` (100 x 1 KiB records per request, 8 clients, closed loop),
``produce1`` (1 record per request, open loop at ``--rate`` requests/s, latency from the scheduled
send), ``active-binary``/``active-json`` (``GET .../records`` from the beginning of a filled topic),
``reactive`` (batches of 500 to an instant-ack backend), and the idle RSS of each sidecar process.

    .venv/bin/python bench/suite.py                        # everything, 1 rep, 10 s windows, plots in bench/results/
    .venv/bin/python bench/suite.py --reps 3 --out docs/benchmarks
    .venv/bin/python bench/suite.py --smoke                # a few records each, no Java tools (a test runs this)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import consuming
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from common import (
    REPO,
    HttpConnection,
    ServerProcess,
    SidecarProcess,
    kafka_bootstrap,
    load_average,
    machine_line,
    new_topic,
    open_connection,
    payload,
    percentile,
    process_cpu_seconds,
    sidecar_process,
)
from producer_bench import drive
from report import STRIMZI, check_goals, plot, table
from strimzi import BridgeProcess, bridge_home, bridge_process

from kafka_sidecar import build_blueprint
from kafka_sidecar._kafka.options import producer_kwargs
from kafka_sidecar_testing.kafka_tools import CONSUMER_PERFORMANCE, PRODUCER_PERFORMANCE, perf_tool_command
from kafka_sidecar_testing.ksqldb import wait_listening
from kafka_sidecar_testing.net import free_port
from kafka_sidecar_testing.process import stop_process

SHIPPED = "sidecar shipped"
BARE = "sidecar bare"
RAW = "raw aiokafka"
RDKAFKA = "raw confluent-kafka"
JAVA = "Kafka perf tool"
FLOOR = "HTTP floor"
"""The consumer paths' HTTP delivery alone (bench/http_floor.py): same bodies, no Kafka, no sidecar."""
ACTIVE_QUERY = "timeout=1000&max_bytes=8388608"
ALL_SCENARIOS = ("produce100", "produce1", "active-binary", "active-json", "reactive")
VARIANTS = ("uvicorn", "granian", "librdkafka", "bare+librdkafka", "uvicorn+librdkafka")
"""``--engines``: the shipped config (or ``bare+...`` the bare one) under another ASGI server
(uvicorn through ``server.engine``, granian through bench/serve_engine.py) and/or with the librdkafka Kafka
engines (``kafka.producer.engine`` and ``kafka.consumer.engine``), ``+``-joined; ``before+...`` runs the
variant from ``--before-src`` (an A/B in the same reps; that checkout must know the engine keys). Every
variant runs every scenario (``kafka.consumer.engine`` covers both the reactive and the active consumer)."""
CONFIGS = {SHIPPED: REPO / "chains.yml", BARE: REPO / "bench" / "chains-bare.yml"}
DEFAULT_ENGINES = {
    "SIDECAR_SERVER_ENGINE": "hypercorn", "SIDECAR_PRODUCER_ENGINE": "aiokafka", "SIDECAR_CONSUMER_ENGINE": "aiokafka",
}  # fmt: skip
"""What both configs run without a variant (the environment they read the engines from)."""
ENGINE_ENV = {
    "uvicorn": {"SIDECAR_SERVER_ENGINE": "uvicorn"},
    "librdkafka": {"SIDECAR_PRODUCER_ENGINE": "librdkafka", "SIDECAR_CONSUMER_ENGINE": "librdkafka"},
}


@dataclass(frozen=True, slots=True)
class ProduceApi:
    """How a system is asked to produce: the path (``{topic}`` filled in), the content type and the body of
    ``batch`` records of ``size`` bytes (the same keys and values for every API)."""

    path: str
    content_type: str
    body: Callable[[int, int], bytes]


@dataclass(slots=True)
class Row:
    """One system in one scenario in one rep."""

    scenario: str
    system: str
    rep: int
    records: int = 0
    seconds: float = math.nan
    cpu_seconds: float = math.nan
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    errors: int = 0
    rss_mb: float = math.nan
    peak_rss_mb: float = math.nan
    note: str = ""

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else math.nan

    @property
    def cpu_us_per_record(self) -> float:
        return self.cpu_seconds * 1e6 / self.records if self.records else math.nan


@dataclass(frozen=True, slots=True)
class Variant:
    """How an ``--engines`` variant's sidecar runs: its config, ASGI server and environment."""

    config: Path
    server: str
    env: dict[str, str]


@dataclass(slots=True)
class Settings:
    duration: float
    warmup: float
    clients: int
    record_size: int
    rate: float
    consume_records: int
    partitions: int
    java: bool
    sidecar_env: dict[str, str]
    bootstrap: str
    work: Path
    kafka_kwargs: dict[str, object] = field(default_factory=dict)


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


async def end_offsets(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()  # metadata of a just-made topic
            partitions = consumer.partitions_for_topic(topic) or set()
        offsets = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return sum(offsets.values())
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------------------------------
# produce: 100 records per request, closed loop
# --------------------------------------------------------------------------------------------------


def produce_records(batch: int, size: int) -> list[dict[str, str]]:
    """The records every produce API is sent: ``batch`` string keys and ``size``-byte string values."""
    return [{"key": f"key-{i}", "value": payload(size, i)} for i in range(batch)]


def produce_body(batch: int, size: int) -> bytes:
    records = produce_records(batch, size)
    return json.dumps({"keyFormat": "string", "valueFormat": "string", "records": records}).encode()


def v2_json_body(batch: int, size: int) -> bytes:
    """REST Proxy v2's embedded JSON format: the same keys and values, each a JSON string."""
    return json.dumps({"records": produce_records(batch, size)}).encode()


SIDECAR_API = ProduceApi("/producers/{topic}", "application/json", produce_body)
"""The sidecar's own produce API (the Java sidecar's body), as every earlier figure measured it."""
V2_JSON_API = ProduceApi("/topics/{topic}", "application/vnd.kafka.json.v2+json", v2_json_body)
"""REST Proxy v2 produce with JSON values: what the Strimzi bridge offers."""


async def produce_http(s: Settings, system: ServerProcess, row: Row, batch: int, api: ProduceApi = SIDECAR_API) -> None:
    topic = await new_topic(s.bootstrap, "http", s.partitions)
    body, path = api.body(batch, s.record_size), api.path.format(topic=topic)
    connections: list[HttpConnection] = []
    failures: list[str] = []

    async def make_client() -> Callable[[], Awaitable[bool]]:
        conn = await open_connection(system.base_url)
        connections.append(conn)

        async def send() -> bool:
            status, answer = await conn.request("POST", path, body, api.content_type)
            if status != 200 and len(failures) < 3:
                failures.append(f"HTTP {status}: {answer[:200]!r}")
            return status == 200

        return send

    try:
        await drive(s.clients, s.warmup, make_client)
        cpu = system.cpu_seconds()
        elapsed, latencies, errors = await drive(s.clients, s.duration, make_client)
        row.cpu_seconds = system.cpu_seconds() - cpu
    finally:
        for conn in connections:
            await conn.close()
    fill_latency(row, latencies, elapsed, batch, errors, failures)


def fill_latency(row: Row, latencies: list[float], elapsed: float, batch: int, errors: int, notes: list[str]) -> None:
    ordered = sorted(latencies)
    row.records, row.seconds, row.errors = len(ordered) * batch, elapsed, errors
    row.p50_ms, row.p99_ms = percentile(ordered, 50), percentile(ordered, 99)
    row.note = "; ".join(notes)


async def in_process_drive(
    s: Settings,
    row: Row,
    batch: int,
    make_client: Callable[[], Awaitable[Callable[[], Awaitable[bool]]]],
    notes: list[str],
) -> None:
    """Warm up, then measure a client running in this process (its CPU is this process's)."""
    await drive(s.clients, s.warmup, make_client)
    cpu = time.process_time()
    elapsed, latencies, errors = await drive(s.clients, s.duration, make_client)
    row.cpu_seconds = time.process_time() - cpu
    fill_latency(row, latencies, elapsed, batch, errors, notes)


async def produce_raw(s: Settings, row: Row, batch: int) -> None:
    topic = await new_topic(s.bootstrap, "raw", s.partitions)
    records = [(f"key-{i}".encode(), payload(s.record_size, i).encode()) for i in range(batch)]
    producer = AIOKafkaProducer(**s.kafka_kwargs)
    await producer.start()
    try:

        async def make_client() -> Callable[[], Awaitable[bool]]:
            async def send() -> bool:
                futures = [await producer.send(topic, value=v, key=k) for k, v in records]
                outcomes = await asyncio.gather(*futures, return_exceptions=True)
                return not any(isinstance(o, BaseException) for o in outcomes)

            return send

        await in_process_drive(s, row, batch, make_client, [])
    finally:
        await producer.stop()


async def produce_confluent(s: Settings, row: Row, batch: int) -> None:
    """librdkafka (confluent-kafka) with the same settings and semantics: a batch counts when every record
    of it is acknowledged; one completion per batch (a counter in the delivery callback), delivery
    callbacks served by a polling thread."""
    from confluent_kafka import Producer

    topic = await new_topic(s.bootstrap, "rdkafka", s.partitions)
    records = [(f"key-{i}".encode(), payload(s.record_size, i).encode()) for i in range(batch)]
    producer = Producer({"bootstrap.servers": s.bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 5, "batch.size": s.kafka_kwargs["max_batch_size"]})  # fmt: skip
    loop = asyncio.get_running_loop()
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            producer.poll(0.05)

    poller = threading.Thread(target=poll, name="rdkafka-poll", daemon=True)
    poller.start()
    try:

        async def make_client() -> Callable[[], Awaitable[bool]]:
            async def send() -> bool:
                done: asyncio.Future[bool] = loop.create_future()
                left = [len(records), 0]

                def delivered(err: object, _msg: object) -> None:
                    left[0] -= 1
                    left[1] += err is not None
                    if left[0] == 0:
                        loop.call_soon_threadsafe(done.set_result, left[1] == 0)

                for k, v in records:
                    producer.produce(topic, value=v, key=k, on_delivery=delivered)
                return await done

            return send

        await in_process_drive(s, row, batch, make_client, ["librdkafka threads included"])
    finally:
        stop.set()
        poller.join(5)
        producer.flush(10)


async def produce_java(s: Settings, row: Row) -> None:
    topic = await new_topic(s.bootstrap, "java", s.partitions)
    batch = s.kafka_kwargs["max_batch_size"]
    props = [
        f"bootstrap.servers={s.bootstrap}",
        "acks=all",
        "enable.idempotence=true",
        "linger.ms=5",
        f"batch.size={batch}",
    ]
    args = ["--topic", topic, "--num-records", "1000000000", "--record-size", str(s.record_size),
            "--throughput", "-1", "--producer-props", *props]  # fmt: skip
    with java_process(perf_tool_command(PRODUCER_PERFORMANCE, args), s.work / "producer-perf.log") as pid:
        await asyncio.sleep(s.warmup + 2)  # JVM start-up, then the warm-up
        before, cpu, began = await end_offsets(s.bootstrap, topic), process_cpu_seconds(pid), time.perf_counter()
        await asyncio.sleep(s.duration)
        after, row.cpu_seconds = await end_offsets(s.bootstrap, topic), process_cpu_seconds(pid) - cpu
        row.seconds = time.perf_counter() - began
    row.records = after - before
    row.note = "records counted by the topic's end offsets"


@contextlib.contextmanager
def java_process(command: list[str], log: Path) -> Iterator[int]:
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process.pid
    finally:
        stop_process(process, 10)


# --------------------------------------------------------------------------------------------------
# produce: 1 record per request, open loop at a fixed rate
# --------------------------------------------------------------------------------------------------


async def open_loop(rate: float, seconds: float, send: Callable[[], Awaitable[bool]]) -> tuple[list[float], int]:
    """Start one ``send`` every 1/rate s; latency counts from the scheduled start (no coordinated omission)."""
    latencies: list[float] = []
    errors = 0
    tasks: set[asyncio.Task[None]] = set()
    began = time.perf_counter()

    async def one(scheduled: float) -> None:
        nonlocal errors
        if await send():
            latencies.append((time.perf_counter() - scheduled) * 1000)
        else:
            errors += 1

    n = 0
    while (scheduled := began + n / rate) < began + seconds:
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        n += 1
    if tasks:
        await asyncio.wait(tasks)
    return latencies, errors


async def measured_open_loop(
    s: Settings, row: Row, send: Callable[[], Awaitable[bool]], cpu_seconds: Callable[[], float]
) -> None:
    """Warm up, then one measured window of ``open_loop``; CPU from ``cpu_seconds`` of the system under test."""
    await open_loop(s.rate, s.warmup, send)
    cpu, began = cpu_seconds(), time.perf_counter()
    latencies, errors = await open_loop(s.rate, s.duration, send)
    row.cpu_seconds = cpu_seconds() - cpu
    fill_latency(row, latencies, time.perf_counter() - began, 1, errors, [])


async def produce1_http(s: Settings, system: ServerProcess, row: Row, api: ProduceApi = SIDECAR_API) -> None:
    topic = await new_topic(s.bootstrap, "http1", s.partitions)
    body, path = api.body(1, s.record_size), api.path.format(topic=topic)
    pool: asyncio.Queue[HttpConnection] = asyncio.Queue()
    connections = [await open_connection(system.base_url) for _ in range(32)]
    for conn in connections:
        pool.put_nowait(conn)

    async def send() -> bool:
        conn = await pool.get()
        try:
            status, _ = await conn.request("POST", path, body, api.content_type)
        finally:
            pool.put_nowait(conn)
        return status == 200

    try:
        await measured_open_loop(s, row, send, system.cpu_seconds)
    finally:
        for conn in connections:
            await conn.close()


async def produce1_raw(s: Settings, row: Row) -> None:
    topic = await new_topic(s.bootstrap, "raw1", s.partitions)
    key, value = b"key-0", payload(s.record_size).encode()
    producer = AIOKafkaProducer(**s.kafka_kwargs)
    await producer.start()

    async def send() -> bool:
        try:
            await (await producer.send(topic, value=value, key=key))
        except Exception:
            return False
        return True

    try:
        await measured_open_loop(s, row, send, time.process_time)
    finally:
        await producer.stop()


# --------------------------------------------------------------------------------------------------
# consumers
# --------------------------------------------------------------------------------------------------


async def fill_topic(s: Settings, prefix: str, json_values: bool) -> str:
    topic = await new_topic(s.bootstrap, prefix, s.partitions)
    pad = "x" * max(s.record_size - 30, 1)

    def value_of(n: int) -> bytes:
        return json.dumps({"n": n, "pad": pad}).encode() if json_values else payload(s.record_size, n).encode()

    await consuming.fill_topic(s.bootstrap, topic, s.consume_records, value_of, partitions=s.partitions)
    return topic


async def active_http(s: Settings, system: ServerProcess, row: Row, topic: str, fmt: str) -> bytes:
    group = f"bench-{uuid.uuid4().hex[:8]}"
    v2 = "application/vnd.kafka.v2+json"
    accept = f"Accept: application/vnd.kafka.{fmt}.v2+json\r\n"
    conn = await open_connection(system.base_url)
    try:
        create = json.dumps({"name": "reader", "format": fmt, "auto.offset.reset": "earliest"}).encode()
        status, answer = await conn.request("POST", f"/consumers/{group}", create, v2)
        if status != 200:
            raise RuntimeError(f"creating a consumer instance: HTTP {status} {answer[:200]!r}")
        base = f"/consumers/{group}/instances/{json.loads(answer)['instance_id']}"
        status, answer = await conn.request(
            "POST", f"{base}/subscription", json.dumps({"topics": [topic]}).encode(), v2
        )
        if status not in (200, 204):
            raise RuntimeError(f"subscribing: HTTP {status} {answer[:200]!r}")
        seen = first = replies = 0
        began: float | None = None
        cpu = 0.0
        sample = (0, b"")
        deadline = time.monotonic() + 120
        while first + seen < s.consume_records and time.monotonic() < deadline:
            status, answer = await conn.request("GET", f"{base}/records?{ACTIVE_QUERY}", extra=accept)
            if status != 200:
                row.errors += 1
                continue
            count = answer.count(b'"offset":')
            if count and began is None:  # the window starts with the first records (group join excluded)
                began, cpu, first = time.perf_counter(), system.cpu_seconds(), count
                continue
            seen += count
            replies += 1 if count else 0
            sample = max(sample, (count, answer))
        if began is None:
            raise RuntimeError("no records read")
        row.seconds = time.perf_counter() - began
        row.cpu_seconds = system.cpu_seconds() - cpu
        row.records = seen
        row.note = f"after the first reply ({first} records); {seen / max(replies, 1):,.0f} records per reply"
        await conn.request("DELETE", base, b"", v2)
    finally:
        await conn.close()
    return sample[1]


async def active_floor(s: Settings, row: Row, body: bytes, fmt: str) -> None:
    """The HTTP floor of GET records: the same reply body served by a minimal ASGI app on Hypercorn
    (bench/http_floor.py), driven by the same load generator; CPU from /proc of that process."""
    path = s.work / f"active-{fmt}-reply.json"
    path.write_bytes(body)
    per_reply = body.count(b'"offset":')
    port = free_port()
    command = [sys.executable, str(REPO / "bench" / "http_floor.py"), "serve", str(port), str(path)]
    with floor_process(command, port) as pid:
        accept = f"Accept: application/vnd.kafka.{fmt}.v2+json\r\n"
        async with await open_connection(f"http://127.0.0.1:{port}") as conn:
            await conn.request("GET", f"/records?{ACTIVE_QUERY}", extra=accept)  # connection set-up excluded
            requests = max(3, s.consume_records // max(per_reply, 1))
            began, cpu = time.perf_counter(), process_cpu_seconds(pid)
            for _ in range(requests):
                status, answer = await conn.request("GET", f"/records?{ACTIVE_QUERY}", extra=accept)
                row.errors += status != 200 or len(answer) != len(body)
            row.seconds = time.perf_counter() - began
            row.cpu_seconds = process_cpu_seconds(pid) - cpu
    row.records = requests * per_reply
    row.note = f"{per_reply:,} records ({len(body) / 1e6:.1f} MB) per reply, no Kafka"


@contextlib.contextmanager
def floor_process(command: list[str], port: int) -> Iterator[int]:
    """A floor server (bench/http_floor.py serve) until the block exits; yields its pid once it listens."""
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, 30)
        yield process.pid
    finally:
        process.terminate()
        process.wait(10)


async def consume_raw(s: Settings, row: Row, topic: str) -> None:
    """The fetch floor: a raw aiokafka consumer reading the topic (CPU per record of aiokafka alone)."""
    window = await consuming.read_raw(s.bootstrap, topic, s.partitions, s.consume_records)
    row.records, row.seconds, row.cpu_seconds = window.records, window.seconds, window.cpu_seconds


async def consume_java(s: Settings, row: Row, topic: str) -> None:
    args = ["--bootstrap-server", s.bootstrap, "--topic", topic, "--messages", str(s.consume_records),
            "--group", f"perf-{uuid.uuid4().hex[:8]}", "--timeout", "60000"]  # fmt: skip
    log = s.work / f"consumer-perf-{uuid.uuid4().hex[:6]}.log"
    process = await asyncio.create_subprocess_exec(
        *perf_tool_command(CONSUMER_PERFORMANCE, args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = await process.communicate()
    log.write_bytes(out)
    lines = [line for line in out.decode(errors="replace").splitlines() if re.match(r"^\d{4}-", line)]
    if not lines:
        raise RuntimeError(f"ConsumerPerformance printed no result; see {log}")
    fields = [f.strip() for f in lines[-1].split(",")]
    # start, end, MB, MB/s, nMsg, nMsg/s, rebalance ms, fetch ms, fetch MB/s, fetch nMsg/s
    row.records = int(fields[4])
    row.seconds = float(fields[7]) / 1000
    row.note = "fetch time from the tool's own report; CPU not measured (the JVM's start-up dominates)"


class Backend:
    """An instant-ack reactive backend (HTTP/1.1 keep-alive, 200 with no body) counting records; keeps the
    largest body it received (the reactive HTTP floor posts it again)."""

    def __init__(self) -> None:
        self.total = 0
        self.window = consuming.Window(0, math.nan, math.nan)
        """From the first request with records (its records not counted) to the last, with ``pid``'s CPU."""
        self.pid = 0
        self.sample = (0, b"")
        self._first: tuple[float, float, int] | None = None
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                count = body.count(b'"offset":')
                self.total += count
                if count > self.sample[0]:
                    self.sample = (count, body)
                if count and self.pid:  # measured at arrival: no polling interval in the window
                    now, cpu = time.perf_counter(), process_cpu_seconds(self.pid)
                    if self._first is None:
                        self._first = (now, cpu, self.total)
                    else:
                        first = self._first
                        self.window = consuming.Window(self.total - first[2], now - first[0], cpu - first[1])
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def reactive_sidecar(s: Settings, variant: Variant, row: Row, topic: str) -> bytes:
    """The sidecar's reactive consumer delivering the topic to :class:`Backend`; returns a full batch body."""
    backend = Backend()
    await backend.start()
    env = {
        **variant.env,
        "DEMO_CONSUMER_ENABLED": "true", "DEMO_TOPIC": topic, "DEMO_CONSUMER_GROUP": f"bench-{uuid.uuid4().hex[:8]}",
        "BACKEND_URL": f"http://127.0.0.1:{backend.port}",
    }  # fmt: skip
    try:
        with sidecar_process(
            variant.config, s.bootstrap, s.work, env_extra=env, name=f"reactive-{row.rep}", engine=variant.server
        ) as side:
            backend.pid = side.pid
            await consuming.watch(lambda: backend.total, s.consume_records)
            row.peak_rss_mb = rss_mb(side.pid, "VmHWM")
            row.note = await audit_drops(side)
    finally:
        await backend.stop()
    window = backend.window
    row.records, row.seconds, row.cpu_seconds = window.records, window.seconds, window.cpu_seconds
    return backend.sample[1]


async def reactive_floor(s: Settings, row: Row, body: bytes) -> None:
    """The HTTP floor of reactive delivery: the same batch body posted by httpx (the consumer's client) from
    a process of its own to the same instant-ack backend (bench/http_floor.py push)."""
    path = s.work / "reactive-batch.json"
    path.write_bytes(body)
    per_batch = body.count(b'"offset":')
    requests = max(3, s.consume_records // max(per_batch, 1))
    backend = Backend()
    await backend.start()
    try:
        command = [str(REPO / "bench" / "http_floor.py"), "push", f"http://127.0.0.1:{backend.port}", str(path)]
        process = await asyncio.create_subprocess_exec(sys.executable, *command, str(requests), stdout=subprocess.PIPE)
        out, _ = await process.communicate()
    finally:
        await backend.stop()
    result = json.loads(out)
    row.records = requests * per_batch
    row.seconds, row.cpu_seconds = result["seconds"], result["cpu_seconds"]
    row.note = f"{per_batch} records ({len(body) / 1e3:.0f} kB) per POST, no Kafka"


async def audit_drops(sidecar: SidecarProcess) -> str:
    """The audit plugin's written/dropped/failed counters from ``/metrics`` (shipped chain only), once they
    stop changing (audit records are written asynchronously)."""
    counts: dict[str, float] = {}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        async with await open_connection(sidecar.base_url) as conn:
            status, text = await conn.request("GET", "/metrics")
        if status != 200:
            return ""
        found = re.findall(rb'kafka_sidecar_audit_records_total\{[^}]*result="(\w+)"[^}]*\} ([0-9.e+]+)', text)
        now = {name.decode(): float(value) for name, value in found}
        if now and now == counts:
            break
        counts = now
        await asyncio.sleep(0.5)  # poll interval of a deadline-bounded wait for the counters to settle
    return f"audit written {counts.get('written', 0):.0f}, dropped {counts.get('dropped', 0):.0f}, failed " + (
        f"{counts.get('failed', 0):.0f}"
    )


# --------------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------------


async def run_rep(
    s: Settings,
    rep: int,
    scenarios: Sequence[str],
    sidecars: dict[str, SidecarProcess],
    engines: dict[str, SidecarProcess],
    variants: dict[str, Variant],
    bridge: BridgeProcess | None = None,
) -> list[Row]:
    rows: list[Row] = []

    def row(scenario: str, system: str) -> Row:
        new = Row(scenario, system, rep)
        rows.append(new)
        print(f"[rep {rep}] {scenario:13} {system:16}", end=" ", flush=True)
        return new

    def done(r: Row) -> None:
        print(f"{r.rate:10,.0f} rec/s  {r.cpu_us_per_record:7.1f} µs/rec  p99 {r.p99_ms:7.2f} ms  {r.note}", flush=True)

    if "produce100" in scenarios:
        for system, sidecar in (sidecars | engines).items():
            await produce_http(s, sidecar, r := row("produce100", system), 100)
            done(r)
        if bridge is not None:
            await produce_http(s, bridge, r := row("produce100", STRIMZI), 100, V2_JSON_API)
            done(r)
        await produce_raw(s, r := row("produce100", RAW), 100)
        done(r)
        await produce_confluent(s, r := row("produce100", RDKAFKA), 100)
        done(r)
        if s.java:
            await produce_java(s, r := row("produce100", JAVA))
            done(r)
    if "produce1" in scenarios:
        for system, sidecar in (sidecars | engines).items():
            await produce1_http(s, sidecar, r := row("produce1", system))
            done(r)
        if bridge is not None:
            await produce1_http(s, bridge, r := row("produce1", STRIMZI), V2_JSON_API)
            done(r)
        await produce1_raw(s, r := row("produce1", RAW))
        done(r)
    for fmt in ("binary", "json"):
        if f"active-{fmt}" not in scenarios:
            continue
        topic = await fill_topic(s, f"active-{fmt}", json_values=fmt == "json")
        reply = b""
        for system, sidecar in (sidecars | engines).items():
            reply = await active_http(s, sidecar, r := row(f"active-{fmt}", system), topic, fmt) or reply
            done(r)
        if bridge is not None:
            await active_http(s, bridge, r := row(f"active-{fmt}", STRIMZI), topic, fmt)
            done(r)
        await consume_raw(s, r := row(f"active-{fmt}", RAW), topic)
        done(r)
        if reply:
            await active_floor(s, r := row(f"active-{fmt}", FLOOR), reply, fmt)
            done(r)
        if s.java and fmt == "binary":
            await consume_java(s, r := row(f"active-{fmt}", JAVA), topic)
            done(r)
    if "reactive" in scenarios:
        topic = await fill_topic(s, "reactive", json_values=True)
        batch = b""
        for system in [*sidecars, *engines]:
            batch = await reactive_sidecar(s, variants[system], r := row("reactive", system), topic) or batch
            done(r)
        await consume_raw(s, r := row("reactive", RAW), topic)
        done(r)
        if batch:
            await reactive_floor(s, r := row("reactive", FLOOR), batch)
            done(r)
    for system, sidecar in sidecars.items():
        r = row("load", system)
        r.peak_rss_mb, r.rss_mb = rss_mb(sidecar.pid, "VmHWM"), rss_mb(sidecar.pid)
        r.note = await audit_drops(sidecar)
        print(f"RSS now {r.rss_mb:.1f} MB, peak {r.peak_rss_mb:.1f} MB; {r.note}", flush=True)
    if bridge is not None:
        r = row("load", STRIMZI)
        r.peak_rss_mb, r.rss_mb = rss_mb(bridge.pid, "VmHWM"), rss_mb(bridge.pid)
        print(f"RSS now {r.rss_mb:.1f} MB, peak {r.peak_rss_mb:.1f} MB", flush=True)
    return rows


async def warm_up_bridge(s: Settings, bridge: BridgeProcess, seconds: float) -> None:
    """The JVM's JIT compiles the bridge's paths during its first requests: ``seconds`` of produce 100, then
    one read of each active format, before the first measured rep (the sidecar needs none of this)."""
    if seconds <= 0:
        return
    print(f"warming up the Strimzi bridge {bridge.version} ({seconds:g} s of produce 100, then each active read)")
    warm = dataclasses.replace(s, duration=seconds, warmup=1.0, consume_records=20_000)
    topic = await fill_topic(warm, "strimzi-warm-up", json_values=True)
    await produce_http(warm, bridge, Row("warm-up", STRIMZI, 0), 100, V2_JSON_API)
    for fmt in ("binary", "json"):
        await active_http(warm, bridge, Row("warm-up", STRIMZI, 0), topic, fmt)


async def run(args: argparse.Namespace, bootstrap: str, work: Path) -> list[Row]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SIDECAR_PORT": "0"}
    settings = Settings(
        args.duration, args.warmup, args.clients, args.record_size, args.rate, args.consume_records,
        args.partitions, args.java, sidecar_env(args.sidecar_src), bootstrap, work,
        producer_kwargs(build_blueprint(CONFIGS[SHIPPED], env=env).config.kafka, "bench"),
    )  # fmt: skip
    rows: list[Row] = []
    variants = {
        system: Variant(CONFIGS[system], "hypercorn", {**settings.sidecar_env, **DEFAULT_ENGINES})
        for system in args.systems
    }
    for variant in args.engines:
        parts = variant.split("+")
        variants[variant_name(variant)] = Variant(
            CONFIGS[BARE if "bare" in parts else SHIPPED],
            "granian" if "granian" in parts else "hypercorn",  # uvicorn: server.engine
            {**(sidecar_env(args.before_src) if "before" in parts else settings.sidecar_env), **variant_env(variant)},
        )
    home = bridge_home(args.strimzi)
    with contextlib.ExitStack() as stack:
        bridge = stack.enter_context(bridge_process(home, bootstrap, work, settings.kafka_kwargs)) if home else None
        sidecars = {
            system: stack.enter_context(
                sidecar_process(
                    CONFIGS[system], bootstrap, work, name=system.split()[-1], env_extra=variants[system].env
                )
            )
            for system in args.systems
        }
        engines = {
            name: stack.enter_context(
                sidecar_process(
                    variant.config, bootstrap, work, name=name.replace(" ", "-"), engine=variant.server,
                    env_extra=variant.env,
                )
            )
            for name, variant in variants.items()
            if name not in sidecars
        }  # fmt: skip
        await asyncio.sleep(args.idle_wait)
        for system, sidecar in sidecars.items():
            rows.append(Row("idle", system, 0, rss_mb=rss_mb(sidecar.pid)))
            print(f"idle RSS {system}: {rows[-1].rss_mb:.1f} MB")
        if bridge is not None:
            rows.append(Row("idle", STRIMZI, 0, rss_mb=rss_mb(bridge.pid), note=f"version {bridge.version}"))
            print(f"idle RSS {STRIMZI}: {rows[-1].rss_mb:.1f} MB")
            await warm_up_bridge(settings, bridge, args.strimzi_warmup)
        for rep in range(1, args.reps + 1):
            rows.extend(await run_rep(settings, rep, args.scenarios, sidecars, engines, variants, bridge))
    return rows


def variant_name(variant: str) -> str:
    """``bare+librdkafka`` -> ``sidecar bare (librdkafka)``; ``uvicorn`` -> ``sidecar shipped (uvicorn)``."""
    parts = variant.split("+")
    system = BARE if "bare" in parts else SHIPPED
    return f"{system} ({'+'.join(p for p in parts if p != 'bare') or 'hypercorn'})"


def variant_env(variant: str) -> dict[str, str]:
    """The engines a variant names, as the environment both configs read them from (``SIDECAR_*_ENGINE``):
    ``uvicorn`` (``server.engine``, as the sidecar ships it, through ``kafka-sidecar run``), ``librdkafka``
    (``kafka.producer.engine`` and ``kafka.consumer.engine``); the rest stay at the defaults, whatever the
    caller's environment says."""
    env = dict(DEFAULT_ENGINES)
    for part in variant.split("+"):
        env.update(ENGINE_ENV.get(part, {}))
    return env


def sidecar_env(source: Path | None) -> dict[str, str]:
    """``--sidecar-src``: run the sidecar processes from another checkout (a "before" run), same venv."""
    if source is None:
        return {}
    paths = [str(source), str(source / "handlers"), str(source / "plugins"), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def median_rows(rows: Sequence[Row]) -> list[Row]:
    """One row per (scenario, system): the median of each figure over the reps."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        groups.setdefault((r.scenario, r.system), []).append(r)
    merged = []
    for (scenario, system), group in groups.items():
        m = Row(scenario, system, len(group))

        def med(get: Callable[[Row], float], group: list[Row] = group) -> float:
            values = [v for v in map(get, group) if not math.isnan(v)]
            return statistics.median(values) if values else math.nan

        rate, cpu = med(lambda r: r.rate), med(lambda r: r.cpu_us_per_record)
        m.seconds, m.records = 1.0, 0 if math.isnan(rate) else round(rate)
        m.cpu_seconds = cpu * m.records / 1e6 if not math.isnan(cpu) else math.nan
        m.p50_ms, m.p99_ms = med(lambda r: r.p50_ms), med(lambda r: r.p99_ms)
        m.rss_mb, m.peak_rss_mb = med(lambda r: r.rss_mb), med(lambda r: r.peak_rss_mb)
        m.errors = sum(r.errors for r in group)
        m.note = group[-1].note
        merged.append(m)
    return merged


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--bootstrap", default=None, help="use this broker (default: $KAFKA_SIDECAR_BOOTSTRAP or start one)"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per produce scenario")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--reps", type=int, default=1, help="interleaved repetitions (medians are reported)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rate", type=float, default=500.0, help="requests/s of the produce1 scenario")
    parser.add_argument("--record-size", type=int, default=1024)
    parser.add_argument("--consume-records", type=int, default=100_000, help="records in each consumer topic")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--scenarios", type=lambda t: t.split(","), default=list(ALL_SCENARIOS))
    parser.add_argument("--systems", type=lambda t: [s for s in (SHIPPED, BARE) if s.split()[-1] in t.split(",")],
                        default=[SHIPPED, BARE], help="sidecar configs: shipped,bare")  # fmt: skip
    parser.add_argument("--engines", type=lambda t: [e for e in t.split(",") if e], default=list(VARIANTS),
                        help="the shipped config under other ASGI servers")  # fmt: skip
    parser.add_argument("--no-java", dest="java", action="store_false", help="skip Kafka's perf tools")
    parser.add_argument("--idle-wait", type=float, default=5.0, help="seconds after start-up before idle RSS")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="where JSON and PNG plots go")
    parser.add_argument("--sidecar-src", type=Path, default=None,
                        help="run the sidecar processes from this checkout (a before/after run)")  # fmt: skip
    parser.add_argument("--before-src", type=Path, default=None,
                        help="the checkout an engine variant with 'before' runs (before+bare+librdkafka): "
                        "an A/B interleaved in every rep")  # fmt: skip
    parser.add_argument("--strimzi", type=Path, default=None,
                        help="a build of the Strimzi HTTP bridge (libs/; default $STRIMZI_BRIDGE_HOME): its rows "
                        "in produce100, produce1 and active (bench/strimzi.py says how to build one)")  # fmt: skip
    parser.add_argument("--strimzi-warmup", type=float, default=20.0,
                        help="seconds of load that warm the bridge's JVM before the first rep")  # fmt: skip
    parser.add_argument("--smoke", action="store_true", help="a few records per scenario, no Java tools")
    args = parser.parse_args(argv)
    if any("before" in variant.split("+") for variant in args.engines) and args.before_src is None:
        parser.error("an engine variant with 'before' needs --before-src")
    if args.smoke:
        args.duration, args.warmup, args.consume_records, args.java, args.idle_wait = 0.5, 0.2, 1000, False, 0.2
        args.engines = []
        args.rate, args.strimzi_warmup = 50.0, 1.0
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.datetime.now(datetime.UTC)
    print(f"machine: {machine_line()}")
    print(f"date: {started:%Y-%m-%d %H:%M} UTC · load average before: {load_average()}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    with (
        kafka_bootstrap(args.bootstrap) as bootstrap,
        tempfile.TemporaryDirectory(prefix="kafka-sidecar-suite-") as tmp,
    ):
        rows = asyncio.run(run(args, bootstrap, Path(tmp)))
    merged = median_rows(rows)
    print()
    print(table(merged))
    print()
    verdicts = check_goals(merged)
    for line in verdicts:
        print(line)
    print(f"load average after: {load_average()}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "suite.json").write_text(
        json.dumps(
            {
                "machine": machine_line(), "date": f"{started:%Y-%m-%d %H:%M} UTC", "argv": sys.argv[1:],
                "rows": [asdict(r) | {"rate": r.rate, "cpu_us_per_record": r.cpu_us_per_record} for r in rows],
                "goals": verdicts,
            },
            indent=1, default=str,
        ),
        encoding="utf-8",
    )  # fmt: skip
    for path in plot(merged, args.out):
        print(f"plot: {path}")
    bad = [r for r in rows if r.errors or (r.scenario not in ("idle", "load") and not r.records)]
    for r in bad:
        print(f"FAILED: {r.scenario} {r.system}: {r.errors} errors, {r.records} records {r.note}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
