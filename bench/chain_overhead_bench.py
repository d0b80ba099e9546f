"""What the default chain of cross-cutting plugins costs on the produce path.

Two sidecars in one process, driven in turns through httpx's ASGI transport (no sockets):
``bare`` runs the producer terminal alone, ``full`` runs metrics, correlation, tracing, logging
context, audit and validation in front of it. Modes:

* ``fake`` (default): the shared producer is replaced by an in-memory seam that acknowledges at
  once, so the numbers isolate the chain's own cost (HTTP adapter included in both);
* ``--bootstrap HOST:PORT`` or ``--start-broker``: the real broker acknowledges every record.

``--otel-sdk`` additionally routes spans through the OpenTelemetry SDK (in-memory exporter) instead
of the API's no-op default. Not part of the test suite::

    .venv/bin/python bench/chain_overhead_bench.py [--requests 3000] [--records 1] [--start-broker]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path

from kafka_sidecar._records import DeliveryReport, OutgoingRecord
from kafka_sidecar.plugin import BulkOutcome, count_reports
from kafka_sidecar.testing import RunningSidecar, running_sidecar
from kafka_sidecar_plugins.audit import AUDIT_SINKS
from kafka_sidecar_plugins.tracing import TRACER_PROVIDER

FULL = "[metrics, correlation, tracing, logging, audit, validation]"


def config(chain: str, bootstrap: str, audit_topic: str) -> str:
    return f"""
kafka:
  bootstrap_servers: {bootstrap}
  connect_timeout_ms: 2000
handlers:
  metrics: {{use: metrics}}
  correlation: {{use: correlation}}
  tracing: {{use: tracing}}
  logging: {{use: logging-context, config: {{install: false}}}}
  audit: {{use: audit, config: {{topic: {audit_topic}}}}}
  validation: {{use: validation}}
chains:
  default: {chain}
paths:
  - path: /producers/{{topic}}
    method: POST
    exec: [default, producer]
"""


def use_fake_producer(rs: RunningSidecar) -> None:
    """Replace the broker round trip with an immediate acknowledgement (our own seam)."""
    offsets = iter(range(1 << 62))

    async def partitions_for(topic: str) -> set[int]:
        return {0}

    async def send_batch(
        records: Sequence[OutgoingRecord], *, ack_timeout: float | None = None
    ) -> list[DeliveryReport]:
        return [DeliveryReport(r.topic, 0, next(offsets)) for r in records]

    async def send_bulk(records: Sequence[OutgoingRecord], *, ack_timeout: float | None = None) -> BulkOutcome:
        return count_reports(await send_batch(records))

    # The business producer and the internal one (audit, dead letters) alike.
    for producer in (rs.sidecar.resources.producer, rs.sidecar.resources.internal_producer):
        producer.partitions_for = partitions_for  # type: ignore[method-assign]
        producer.send_batch = send_batch  # type: ignore[method-assign]
        producer.send_bulk = send_bulk  # type: ignore[method-assign]


async def run_round(
    rs: RunningSidecar, topic: str, body: Mapping[str, object], count: int, flush_every: int = 1
) -> tuple[list[float], float]:
    """Latency of each request, and the process CPU seconds of the round (audit writer work included).

    In-process requests never leave the event loop idle, so the audit writer is given its turn after
    every ``flush_every`` requests (outside the latency, inside the CPU time): no audit record is
    dropped. 1 writes one audit record per write (the worst case); 50 is what 500 req/s gives over
    the audit's 100 ms linger, 250 over its default 500 ms.
    """
    sinks = rs.sidecar.resources.services[AUDIT_SINKS]
    times = []
    cpu = time.process_time()
    for n in range(count):
        started = time.perf_counter()
        response = await rs.client.post(f"/producers/{topic}", json=body)
        times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"unexpected {response.status_code}: {response.text}")
        if (n + 1) % flush_every == 0 and not await sinks.flushed(30):
            raise SystemExit("audit records not written within 30 s")
    if not await sinks.flushed(30):
        raise SystemExit("audit records not written within 30 s")
    return times, time.process_time() - cpu


async def main(args: argparse.Namespace) -> None:
    broker = None
    bootstrap = args.bootstrap
    if args.start_broker:
        from kafka_sidecar_testing.broker import KafkaBroker, ensure_kafka_runtime

        broker = KafkaBroker(ensure_kafka_runtime())
        broker.start(timeout=120)
        bootstrap = broker.bootstrap_servers
    real = bootstrap is not None
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    audit_topic = f"bench-audit-{uuid.uuid4().hex[:8]}"
    try:
        if real:
            from kafka_sidecar_testing.broker import create_topic

            await create_topic(bootstrap, topic, 1)
            await create_topic(bootstrap, audit_topic, 1)
        async with AsyncExitStack() as stack:
            sidecars: dict[str, RunningSidecar] = {}
            for name, chain in (("bare", "[]"), ("full", FULL)):
                folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                sidecars[name] = await stack.enter_async_context(
                    running_sidecar(
                        config(chain, bootstrap or "127.0.0.1:1", audit_topic), folder, wait_for_kafka=30 if real else 0
                    )
                )
                if not real:
                    use_fake_producer(sidecars[name])
            if args.otel_sdk:
                from opentelemetry.sdk.trace import TracerProvider
                from opentelemetry.sdk.trace.export import SimpleSpanProcessor
                from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

                provider = TracerProvider()
                provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
                sidecars["full"].sidecar.resources.services[TRACER_PROVIDER] = provider
            body = {"records": [{"key": f"k{i}", "value": {"n": i, "text": "x" * 100}} for i in range(args.records)]}
            for rs in sidecars.values():
                await run_round(rs, topic, body, 200, args.flush_every)  # warm-up
            samples: dict[str, list[float]] = {"bare": [], "full": []}
            cpu: dict[str, float] = {"bare": 0.0, "full": 0.0}
            rounds = 10
            for _ in range(rounds):
                for name, rs in sidecars.items():
                    times, seconds = await run_round(rs, topic, body, args.requests // rounds, args.flush_every)
                    samples[name].extend(times)
                    cpu[name] += seconds
    finally:
        if broker is not None:
            broker.stop()
    mode = "real broker" if real else "fake producer seam"
    sdk = " + OTel SDK" if args.otel_sdk else " (OTel API no-op)"
    print(f"produce path, {args.records} record(s)/request, {len(samples['bare'])} requests each, {mode}{sdk}")
    medians = {}
    for name, times in samples.items():
        med = statistics.median(times) * 1e6
        p99 = statistics.quantiles(times, n=100)[98] * 1e6
        medians[name] = med
        per_request = cpu[name] / len(times) * 1e6
        print(
            f"  {name:4}: median {med:8.1f} us   mean {statistics.fmean(times) * 1e6:8.1f} us   p99 {p99:8.1f} us"
            f"   CPU {per_request:8.1f} us/request"
        )
    added = medians["full"] - medians["bare"]
    print(f"  full/bare median ratio {medians['full'] / medians['bare']:.2f}  (+{added:.1f} us per request)")
    added_cpu = (cpu["full"] - cpu["bare"]) / len(samples["full"]) * 1e6
    print(f"  full/bare CPU ratio {cpu['full'] / cpu['bare']:.2f}  (+{added_cpu:.1f} us CPU per request)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--records", type=int, default=1)
    parser.add_argument("--bootstrap", default=None, help="use this broker instead of the fake producer seam")
    parser.add_argument("--start-broker", action="store_true", help="start the test harness broker and use it")
    parser.add_argument("--flush-every", type=int, default=1, help="requests between audit flushes (default 1)")
    parser.add_argument("--otel-sdk", action="store_true", help="record spans with the OpenTelemetry SDK")
    asyncio.run(main(parser.parse_args()))
