"""Fault injection: SIGKILL the broker and restart it on the same data directory while a real sidecar
process produces (HTTP clients, through the audit plugin) and delivers reactively (to a real HTTP
backend), then count by sequence number.

Produce: every sequence number is sent with an ``Idempotency-Key`` and retried until acknowledged
(503 "not written" and 504 "outcome unknown" alike) or the deadline passes. *acked* answered 200,
*present* found in the topic afterwards, *lost* acked but not present, *duplicated* extra copies in the
topic, *stuck* never acknowledged by the deadline.

Reactive: the consumer pushes the same topic to a backend; *undelivered* present in the topic but never
delivered by the deadline (stuck), *redelivered* delivered more than once (allowed: at-least-once).

Used by ``bench/faults/run.py`` (long runs, figures for docs/reliability.md) and by the short CI test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from starlette.responses import Response

from kafka_sidecar_testing.backend import Backend, serving
from kafka_sidecar_testing.broker import KafkaBroker
from kafka_sidecar_testing.process import SidecarProcess
from kafka_sidecar_testing.topics import create_topic

SIDECAR_CONFIG = """\
server:
  port: ${{SIDECAR_PORT}}
  shutdown_timeout_s: 10
kafka:
  bootstrap_servers: {bootstrap}
  connect_timeout_ms: 2000
  producer:
    request_timeout_ms: {request_timeout_ms}
    health_check_interval_ms: 500
    engine: {producer_engine}
  consumer:
    engine: {consumer_engine}
handlers:
  audit:  # the setting of issue 11: audit records to a topic of their own while batches are in flight
    use: audit
    config: {{target: kafka, topic: {topic}-audit}}
  faults-in:
    use: reactive-consumer
    config:
      topics: [{topic}]
      group: {group}
      backend_url: {backend_url}
      backend_path: /deliver
      batch_max_records: 50
      retry: {{max_attempts: 1000, initial_backoff_ms: 100, max_backoff_ms: 1000}}
paths:
  - {{path: "/producers/{{topic}}", method: POST, exec: [audit, producer]}}
consumers:
  faults:
    exec: [faults-in]
"""


@dataclass
class FaultPlan:
    kills: int = 3
    traffic_s: float = 30.0
    down_s: float = 2.0
    clients: int = 4
    batch: int = 10
    partitions: int = 3
    settle_timeout_s: float = 90.0
    request_timeout_ms: int = 5000
    producer_engine: str = "aiokafka"
    """``kafka.producer.engine`` of the sidecar under test (``librdkafka`` needs its extra)."""
    consumer_engine: str = "aiokafka"
    """``kafka.consumer.engine`` of its reactive consumer (``librdkafka`` needs its extra)."""


@dataclass
class FaultReport:
    kills: int = 0
    restart_s: list[float] = field(default_factory=list)
    sent: int = 0
    acked: int = 0
    present: int = 0
    lost: int = 0
    duplicated: int = 0
    stuck: int = 0
    delivered: int = 0
    undelivered: int = 0
    redelivered: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    rebuilds: int = 0
    """Producers the sidecar rebuilt after a fatal error (from its log)."""
    elapsed_s: float = 0.0

    def summary(self) -> dict[str, object]:
        return {
            "kills": self.kills,
            "restart_s": [round(s, 1) for s in self.restart_s],
            "produce": {
                "sent": self.sent, "acked": self.acked, "present": self.present,
                "lost": self.lost, "duplicated": self.duplicated, "stuck": self.stuck,
            },
            "reactive": {"delivered": self.delivered, "undelivered": self.undelivered, "redelivered": self.redelivered},
            "answers": dict(sorted(self.answers.items())),
            "producer_rebuilds": self.rebuilds,
            "elapsed_s": round(self.elapsed_s, 1),
        }  # fmt: skip


class _SequenceCount:
    """The fault backend's reply: accepts every batch and counts each delivered sequence number."""

    def __init__(self) -> None:
        self.delivered: Counter[int] = Counter()
        self.target: set[int] = set()
        self.complete = asyncio.Event()
        """Set once every sequence number in ``target`` was delivered."""

    def expect(self, target: set[int]) -> None:
        self.target = target
        self._check()

    async def __call__(self, body: dict[str, Any]) -> Response:
        for record in body["records"]:
            self.delivered[int(record["value"]["seq"])] += 1
        self._check()
        return Response(status_code=200)

    def _check(self) -> None:
        if self.target and self.target <= self.delivered.keys():
            self.complete.set()


class _Producers:
    """HTTP clients producing sequence numbers in batches, each retried with its Idempotency-Key."""

    def __init__(self, base_url: str, topic: str, plan: FaultPlan, report: FaultReport) -> None:
        self._url = f"{base_url}/producers/{topic}"
        self._plan = plan
        self._report = report
        self._next = 0
        self._run = uuid.uuid4().hex[:8]
        self.acked: set[int] = set()
        self.stop_new = asyncio.Event()
        self.deadline = float("inf")

    def _take(self) -> list[int]:
        first, self._next = self._next, self._next + self._plan.batch
        return list(range(first, self._next))

    async def client(self) -> None:
        async with httpx.AsyncClient(timeout=self._plan.request_timeout_ms / 1000 + 10) as http:
            while not self.stop_new.is_set():
                await self._send_until_acked(http, self._take())

    async def _send_until_acked(self, http: httpx.AsyncClient, seqs: list[int]) -> None:
        self._report.sent += len(seqs)
        pending = list(seqs)
        key = f"{self._run}-{pending[0]}"
        while pending and time.monotonic() < self.deadline:
            body = {"records": [{"value": {"seq": s}} for s in pending]}
            try:
                response = await http.post(self._url, json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError as exc:
                self._report.answers[type(exc).__name__] += 1
                await asyncio.sleep(0.2)  # back off before retrying the same key
                continue
            self._report.answers[str(response.status_code)] += 1
            if response.status_code in (200, 207):
                offsets = response.json()["offsets"]
                done = [s for s, entry in zip(pending, offsets, strict=True) if entry.get("error_code") is None]
                self.acked.update(done)
                if len(done) != len(pending):  # the rest again, as a new request (duplicates are counted)
                    pending = [s for s in pending if s not in set(done)]
                    key = f"{self._run}-{pending[0]}-{uuid.uuid4().hex[:6]}"
                else:
                    pending = []
            else:
                await asyncio.sleep(0.2)  # 503 / 504 / 429: retry the same key


async def _kill_and_restart(broker: KafkaBroker, plan: FaultPlan, report: FaultReport) -> None:
    interval = plan.traffic_s / (plan.kills + 1)
    for _ in range(plan.kills):
        await asyncio.sleep(interval)  # the fault schedule itself, not a synchronisation
        await asyncio.to_thread(broker.kill)
        report.kills += 1
        await asyncio.sleep(plan.down_s)  # the broker stays down this long
        began = time.monotonic()
        await asyncio.to_thread(broker.restart)
        report.restart_s.append(time.monotonic() - began)


async def _read_topic(bootstrap: str, topic: str, partitions: int, timeout: float = 60.0) -> Counter[int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    found: Counter[int] = Counter()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        deadline = time.monotonic() + timeout
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end")
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    found[int(json.loads(record.value)["seq"])] += 1
    finally:
        await consumer.stop()
    return found


async def run_faults(broker: KafkaBroker, workdir: Path, plan: FaultPlan) -> FaultReport:
    """Run ``plan`` against ``broker`` (started; killed and restarted here) and a fresh sidecar process."""
    report = FaultReport()
    began = time.monotonic()
    bootstrap = broker.bootstrap_servers
    topic = f"faults-{uuid.uuid4().hex[:8]}"
    await create_topic(bootstrap, topic, plan.partitions)
    deliveries = _SequenceCount()
    async with serving(Backend(reply=deliveries, keep=False)) as backend:
        config = SIDECAR_CONFIG.format(
            bootstrap=bootstrap, topic=topic, group=f"g-{topic}", backend_url=backend.url,
            request_timeout_ms=plan.request_timeout_ms, producer_engine=plan.producer_engine,
            consumer_engine=plan.consumer_engine,
        )  # fmt: skip
        sidecar = SidecarProcess(config, workdir)
        await asyncio.to_thread(sidecar.start, "/health/ready")
        try:
            producers = _Producers(sidecar.base_url, topic, plan, report)
            clients = [asyncio.create_task(producers.client()) for _ in range(plan.clients)]
            await _kill_and_restart(broker, plan, report)
            await asyncio.sleep(plan.traffic_s / (plan.kills + 1))  # traffic after the last restart
            producers.deadline = time.monotonic() + plan.settle_timeout_s
            producers.stop_new.set()
            await asyncio.gather(*clients)
            report.acked = len(producers.acked)
            report.stuck = report.sent - report.acked
            present = await _read_topic(bootstrap, topic, plan.partitions)
            report.present = len(present)
            report.lost = len(producers.acked - set(present))
            report.duplicated = sum(count - 1 for count in present.values())
            deliveries.expect(set(present))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(deliveries.complete.wait(), plan.settle_timeout_s)
            report.delivered = len(set(deliveries.delivered) & set(present))
            report.undelivered = len(set(present) - set(deliveries.delivered))
            report.redelivered = sum(copies - 1 for copies in deliveries.delivered.values())
        finally:
            await asyncio.to_thread(sidecar.stop)
            report.rebuilds = sidecar.log().count("rebuilding it with a new producer id")
    report.elapsed_s = time.monotonic() - began
    return report
