"""What the audit writer costs per audit record, in one process: building it, and writing it to Kafka.

The audit plugin's ``AuditSink`` is fed what the audit middleware queues for one-record produce
requests (one batch-granularity audit record each), ``--burst`` of them at a time (500 req/s over an
audit ``linger_ms`` of 100 is 50, of 500 is 250), then drained; the figure is process CPU µs per audit
record (the producer's own sender task and librdkafka's threads included: they are this process's).
The writer builds records in slices of ``WRITE_SLICE`` per turn of the event loop (``--slice`` to change
it) and hands each write to the producer's ``send_bulk``. Stages:

* ``build``: the sink's writer against a producer seam that acknowledges at once (ids, JSON, the
  writer's tasks and wakeups; no Kafka client);
* ``aiokafka`` / ``librdkafka``: the writer through the real internal producer of that engine
  (``kafka.producer.engine``), to ``--bootstrap`` (or ``$KAFKA_SIDECAR_BOOTSTRAP``, or a harness
  broker started here);
* ``direct-<engine>``: the same number of ready-made audit records handed straight to that producer's
  ``send_batch`` (no sink): the client's own floor, record by record;
* ``bulk-<engine>``: the same records handed straight to its ``send_bulk`` (what the writer uses: on aiokafka
  one batch per partition);
* ``--settings "linger_ms=50;compression_type=lz4;acks=1,enable_idempotence=false"``: besides, the writer
  through an internal producer (first engine of ``--engines``) with those ``kafka.producer`` settings, one
  stage per ``;``-separated variant (what the audit's own producer settings change).

Rounds interleave the stages. Not part of the test suite::

    .venv/bin/python bench/audit_writer_bench.py [--records 20000] [--burst 50] [--rounds 5] \
        [--bootstrap HOST:PORT | --build-only]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from functools import partial

from common import kafka_bootstrap, new_topic

from kafka_sidecar._config.model import KafkaConfig, ProducerSettings
from kafka_sidecar._kafka.rdkafka import producer_service
from kafka_sidecar._metrics.service import Metrics
from kafka_sidecar._records import DeliveryReport, OutgoingRecord
from kafka_sidecar.plugin import BulkOutcome, ProducerService, count_reports
from kafka_sidecar_plugins.audit._sink import (
    WRITE_SLICE,
    AuditRecord,
    AuditSink,
    DeferredRecords,
    audit_json,
)


class AckAtOnce:
    """A producer seam acknowledging every record at once (the writer's own cost, no client)."""

    def __init__(self) -> None:
        self._offsets = iter(range(1 << 62))

    async def send_batch(
        self, records: Sequence[OutgoingRecord], *, ack_timeout: float | None = None
    ) -> list[DeliveryReport]:
        return [DeliveryReport(r.topic, 0, next(self._offsets)) for r in records]

    async def send_bulk(self, records: Sequence[OutgoingRecord], *, ack_timeout: float | None = None) -> BulkOutcome:
        return count_reports(await self.send_batch(records))


def request_audit(n: int) -> DeferredRecords:
    """What the audit middleware queues for a one-record produce request (granularity batch)."""
    cid = str(uuid.uuid4())

    def build(count: int) -> Iterator[AuditRecord]:
        yield AuditRecord(
            "PRODUCER",
            "bench-service",
            "SUCCESS",
            topic="orders",
            partition=0,
            offset=n,
            correlation_id=cid,
            traceability_id=None,
            timestamp_ms=1_700_000_000_000 + n,
            batch={"records": 1, "failed": 0, "offsets": {"0": [n, n]}},
        )

    return DeferredRecords(1, build)


async def through_sink(producer: object, topic: str, records: int, burst: int, write_slice: int) -> float:
    """CPU seconds for ``records`` audit records through a sink (queued ``burst`` at a time, then drained)."""
    sink = AuditSink(producer, Metrics(), target="kafka", topic=topic, queue_size=10000, write_slice=write_slice)  # type: ignore[arg-type]
    await sink.start()
    cpu = time.process_time()
    for start in range(0, records, burst):
        for n in range(start, min(start + burst, records)):
            sink.submit_deferred(request_audit(n))
        if not await sink.flushed(60):
            raise SystemExit("audit records not written within 60 s")
    spent = time.process_time() - cpu
    await sink.stop()
    if sink.dropped or sink.failed or sink.written != records:
        raise SystemExit(f"written {sink.written}, failed {sink.failed}, dropped {sink.dropped}")
    return spent


async def direct(producer: ProducerService, topic: str, records: int, burst: int, bulk: bool = False) -> float:
    """CPU seconds for the same audit records handed straight to ``send_batch`` (the client's floor), or with
    ``bulk`` to ``send_bulk``."""
    texts = audit_json([record for n in range(records) for record in request_audit(n).build(1)], 0)
    made = [OutgoingRecord(topic, str(uuid.uuid4()).encode(), text) for text in texts]
    cpu = time.process_time()
    for start in range(0, records, burst):
        part = made[start : start + burst]
        outcome = await producer.send_bulk(part) if bulk else count_reports(await producer.send_batch(part))
        if outcome.failed:
            raise SystemExit(f"not acknowledged: {outcome.error}")
    return time.process_time() - cpu


async def measure(args: argparse.Namespace, bootstrap: str | None) -> dict[str, list[float]]:
    """CPU µs per audit record of each stage, one figure per round."""
    producers: dict[str, ProducerService] = {}
    topic = await new_topic(bootstrap, "audit", 1) if bootstrap else "audit"
    try:
        variants = {engine: {"engine": engine} for engine in args.engines.split(",")}
        first = args.engines.split(",")[0]
        for variant in filter(None, args.settings.split(";")):
            pairs = (pair.split("=", 1) for pair in variant.split(","))
            settings: dict[str, object] = {k: int(v) if v.isdigit() else {"true": True, "false": False}.get(v, v)
                                           for k, v in pairs}  # fmt: skip
            variants[f"{first}:{variant}"] = {"engine": first, **settings}
        for name, settings in variants.items() if bootstrap else ():
            kafka = KafkaConfig(bootstrap_servers=bootstrap or "", producer=ProducerSettings(**settings))  # type: ignore[arg-type]
            producer = producers[name] = producer_service(kafka, role="internal-producer", patient=True)
            await producer.start()
            if not await producer.wait_connected(30):
                raise SystemExit(f"{name}: broker not reachable")
        stages: dict[str, Callable[[], Awaitable[float]]] = {
            "build": partial(through_sink, AckAtOnce(), topic, args.records, args.burst, args.slice or WRITE_SLICE)
        }
        for name, producer in producers.items():
            stages[name] = partial(through_sink, producer, topic, args.records, args.burst, args.slice or WRITE_SLICE)
            if ":" not in name:  # an engine, not a settings variant
                stages[f"direct-{name}"] = partial(direct, producer, topic, args.records, args.burst)
                stages[f"bulk-{name}"] = partial(direct, producer, topic, args.records, args.burst, bulk=True)
        for run in stages.values():  # warm-up
            await run()
        cpu: dict[str, list[float]] = {name: [] for name in stages}
        for _ in range(args.rounds):
            for name, run in stages.items():
                cpu[name].append(await run() / args.records * 1e6)
        return cpu
    finally:
        for producer in producers.values():
            await producer.stop()


async def main(args: argparse.Namespace) -> None:
    if args.build_only:
        cpu = await measure(args, None)
    else:
        with kafka_bootstrap(args.bootstrap) as bootstrap:
            cpu = await measure(args, bootstrap)
    print(f"audit writer, {args.records} audit records per round, {args.burst} queued at a time, {args.rounds} rounds")
    for name, values in cpu.items():
        spread = f"{min(values):6.2f} to {max(values):6.2f}"
        print(f"  {name:20} CPU µs per audit record: median {statistics.median(values):6.2f}  ({spread})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--slice", type=int, default=0, help="records built per turn (default: WRITE_SLICE)")
    parser.add_argument("--engines", default="aiokafka,librdkafka")
    parser.add_argument("--settings", default="", help="';'-separated kafka.producer variants (k=v,k=v)")
    parser.add_argument("--bootstrap", default=None, help="default: $KAFKA_SIDECAR_BOOTSTRAP, or a broker started here")
    parser.add_argument("--build-only", action="store_true", help="only the writer against the seam (no broker)")
    asyncio.run(main(parser.parse_args()))
