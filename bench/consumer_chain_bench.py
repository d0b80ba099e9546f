"""What each plugin of the shipped consumer chain costs per consumed record, in one process, no broker.

The shipped ``default-consumer`` chain (metrics, correlation, tracing, logging context, audit) is
compiled by a real sidecar in front of a bench source terminal, and every chain variant is fed the
same batches of 1 KiB JSON records (500 per batch by default, no fetched headers, as the reactive
suite's load generator writes them). The terminal does what the reactive consumer's terminal does
with what the chain left: it writes the backend body (``as_is_body``, with the correlation column when
there is one), reads the backend headers and answers ``SUCCESS`` for the whole batch; no HTTP call.
The audit's writer task runs against an in-memory producer seam that acknowledges at once (or, with
``--bootstrap``, writes to that broker through the real internal producer), and is given its turns
inside the measured CPU time.

Variants: ``none`` (terminal only), each plugin alone, ``all``, and ``all-<plugin>`` (all but one);
rounds interleave the variants so a busy machine slows them alike. The figure is process CPU µs per
record; a plugin's cost is its variant minus ``none``. Not part of the test suite::

    .venv/bin/python bench/consumer_chain_bench.py [--batches 400] [--batch 500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path

from chain_overhead_bench import use_fake_producer  # the in-memory producer seam (the audit writes)

from kafka_sidecar.plugin import (
    BACKEND_HEADERS,
    DELIVERED,
    Chain,
    ConsumedRecord,
    Exchange,
    HandlerSpec,
    Reply,
    Resources,
    UniformOutcomes,
    hookimpl,
)
from kafka_sidecar.testing import RunningSidecar, running_sidecar
from kafka_sidecar_handlers.reactive._backend import as_is_body
from kafka_sidecar_plugins.audit import AUDIT_SINKS

AUDIT_TOPIC = "sidecar-audit"
PLUGINS = ("metrics", "correlation", "tracing", "logging", "audit")
"""The shipped ``default-consumer`` chain (chains.yml), outermost first."""


class BenchSource:
    """A source terminal fed by the bench: writes the backend body and answers SUCCESS for the batch."""

    def __init__(self, config: object, resources: Resources) -> None:
        self.chain: Chain | None = None

    def attach(self, chain: Chain, consumer_name: str) -> None:
        self.chain = chain

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def __call__(self, exchange: Exchange) -> Reply:
        records = exchange.records
        added = exchange.added_headers
        body = as_is_body(exchange.name, records, added.column(records))
        if body is None:
            raise SystemExit("the bench batch fell off the as-is body writer")
        exchange.stash.get(BACKEND_HEADERS)
        exchange.stash[DELIVERED] = UniformOutcomes(records, "SUCCESS")
        return Reply(200, {"consumer": exchange.name})


class BenchPlugin:
    @hookimpl
    def kafka_sidecar_register_handlers(self, register: Callable[[HandlerSpec[object]], None]) -> None:
        register(HandlerSpec(name="bench-source", factory=BenchSource, kind="source"))


def config(chain: Sequence[str], bootstrap: str) -> str:
    return f"""
kafka:
  bootstrap_servers: {bootstrap}
  connect_timeout_ms: 2000
handlers:
  metrics: {{use: metrics}}
  correlation: {{use: correlation}}
  tracing: {{use: tracing}}
  logging: {{use: logging-context, config: {{format: json, install: false}}}}
  audit: {{use: audit, config: {{target: kafka, topic: {AUDIT_TOPIC}, key: hash}}}}
  source: {{use: bench-source}}
consumers:
  bench:
    exec: [{", ".join((*chain, "source"))}]
"""


def batches(count: int, size: int) -> list[tuple[ConsumedRecord, ...]]:
    value = b'{"n":%d,"text":"' + b"x" * 990 + b'"}'
    offset = 0
    out = []
    for _ in range(count):
        out.append(
            tuple(
                ConsumedRecord("bench", 0, offset + i, 1_760_000_000_000 + i, b'"k%d"' % (i % 97), value % i)
                for i in range(size)
            )
        )
        offset += size
    return out


async def run_round(rs: RunningSidecar, chain: Chain, work: list[tuple[ConsumedRecord, ...]]) -> float:
    """CPU seconds for every batch of ``work`` through ``chain``, the audit writer's turns included."""
    sinks = rs.sidecar.resources.services.get(AUDIT_SINKS)
    cpu = time.process_time()
    for records in work:
        exchange = Exchange(kind="consumer", name="bench", records=records)
        await chain(exchange)
        if exchange.stash.get(DELIVERED) is None:
            raise SystemExit("the chain answered without delivering")
        await asyncio.sleep(0)  # the audit writer's turn, as the event loop gives it between batches
    if sinks is not None and not await sinks.flushed(30):
        raise SystemExit("audit records not written within 30 s")
    return time.process_time() - cpu


async def main(args: argparse.Namespace) -> None:
    variants: dict[str, tuple[str, ...]] = {"none": ()}
    variants.update({name: (name,) for name in PLUGINS})
    variants["all"] = PLUGINS
    variants.update({f"all-{name}": tuple(p for p in PLUGINS if p != name) for name in PLUGINS})
    if args.only:
        variants = {name: variants[name] for name in ("none", *args.only.split(","))}
    work = batches(args.batches, args.batch)
    records = args.batches * args.batch
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    if args.bootstrap:
        from kafka_sidecar_testing.topics import create_topic

        await create_topic(args.bootstrap, AUDIT_TOPIC, 1, exist_ok=True)
    async with AsyncExitStack() as stack:
        chains: dict[str, tuple[RunningSidecar, Chain]] = {}
        for name, chain in variants.items():
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            rs = await stack.enter_async_context(
                running_sidecar(
                    config(chain, args.bootstrap or "127.0.0.1:1"),
                    folder,
                    wait_for_kafka=30 if args.bootstrap else 0,
                    extra_plugins=[(BenchPlugin(), "bench")],
                )
            )
            if not args.bootstrap:
                use_fake_producer(rs)
            source = rs.sidecar.consumers[0].source
            if not isinstance(source, BenchSource) or source.chain is None:
                raise SystemExit("the bench source was not attached to its chain")
            chains[name] = (rs, source.chain)
        for rs, compiled in chains.values():
            await run_round(rs, compiled, work[: max(1, len(work) // 10)])  # warm-up
        for _ in range(args.rounds):
            for name, (rs, compiled) in chains.items():
                cpu[name].append(await run_round(rs, compiled, work) / records * 1e6)
    base = statistics.median(cpu["none"])
    audit = f"audit to {args.bootstrap}" if args.bootstrap else "audit to a fake producer seam"
    print(f"consumer chain ({audit}), {args.batches} batches of {args.batch} records x {args.rounds} rounds")
    print("CPU us per record")
    print(f"  {'variant':12} {'median':>7} {'min':>7} {'max':>7} {'over none':>10}")
    for name, samples in cpu.items():
        med = statistics.median(samples)
        print(f"  {name:12} {med:7.3f} {min(samples):7.3f} {max(samples):7.3f} {med - base:+10.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bootstrap", default="", help="the audit writes to this broker (default: a fake seam)")
    parser.add_argument("--only", default="", help="comma-separated variants to run besides 'none' (e.g. all,audit)")
    asyncio.run(main(parser.parse_args()))
