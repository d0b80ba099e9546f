"""What one correlation header per record costs the Kafka clients themselves, with no sidecar code.

The shipped chain writes ``X-Correlation-Id`` (36 bytes of id) into every produced record's headers; the
bare terminal does not. ``bench/chain_ablation.py --variants correlation:to_records=false`` measures what
that costs the sidecar; this measures what it costs the raw clients, so the two can be compared:

* ``aiokafka``: one ``AIOKafkaProducer`` with the shipped ``chains.yml``'s producer settings; windows of
  ``--window`` records are sent (``send()``) and all their acknowledgements awaited, as a produce request
  of that many records would;
* ``librdkafka``: one ``confluent_kafka.Producer`` with the settings the sidecar's librdkafka engine uses
  (``rdkafka_producer_settings``): the same windows, one ``produce()`` per record with a delivery callback,
  ``poll()`` until the window is acknowledged.

Each client runs with no header and with the header (the same ``(name, value)`` pair on every record, as
the sidecar shares it), interleaved over ``--reps``; the figure is CPU µs per record (user+system of this
process, every thread, ``resource.getrusage``) over ``--records`` records, 1 KiB values, unkeyed::

    .venv/bin/python bench/header_cost_bench.py                      # starts its own broker
    .venv/bin/python bench/header_cost_bench.py --bootstrap 127.0.0.1:9092 --records 200000 --reps 3
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from common import REPO, kafka_bootstrap, machine_line, new_topic

from kafka_sidecar import build_blueprint
from kafka_sidecar._kafka.options import producer_kwargs
from kafka_sidecar._kafka.rdkafka import rdkafka_producer_settings

HEADER = [("X-Correlation-Id", b"3f2b8c1e-9a4d-4e7f-b5a6-0c1d2e3f4a5b")]
Run = Callable[[str, str, int, int, Sequence[tuple[str, bytes]] | None], Awaitable[float]]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def with_aiokafka(bootstrap: str, topic: str, records: int, window: int, headers: Any) -> float:
    kafka = build_blueprint(REPO / "chains.yml", env={"KAFKA_BOOTSTRAP_SERVERS": bootstrap}).config.kafka
    producer = AIOKafkaProducer(**producer_kwargs(kafka, "bench"))
    await producer.start()
    value = b"x" * 1024
    try:
        await (await producer.send(topic, value, headers=headers))  # connected, metadata known
        began = cpu_seconds()
        for _ in range(records // window):
            futures = [await producer.send(topic, value, headers=headers) for _ in range(window)]
            await asyncio.gather(*futures)
        return (cpu_seconds() - began) / (records // window * window) * 1e6
    finally:
        await producer.stop()


async def with_librdkafka(bootstrap: str, topic: str, records: int, window: int, headers: Any) -> float:
    from confluent_kafka import Producer

    kafka = build_blueprint(REPO / "chains.yml", env={"KAFKA_BOOTSTRAP_SERVERS": bootstrap}).config.kafka
    settings = rdkafka_producer_settings(kafka, "bench")
    settings.pop("logger")
    producer = Producer(settings)
    value = b"x" * 1024
    left = [0]

    def delivered(error: Any, message: Any) -> None:
        if error is not None:
            raise RuntimeError(f"not acknowledged: {error}")
        left[0] -= 1

    def send_window(count: int) -> None:
        left[0] = count
        for _ in range(count):
            producer.produce(topic, value, on_delivery=delivered, headers=headers)
        while left[0]:
            producer.poll(0.001)

    await asyncio.to_thread(send_window, 1)  # connected, metadata known
    began = cpu_seconds()
    for _ in range(records // window):
        send_window(window)  # on this thread: the loop has nothing else to do
    spent = (cpu_seconds() - began) / (records // window * window) * 1e6
    producer.flush(10)
    return spent


async def main(args: argparse.Namespace) -> None:
    print(machine_line())
    clients: dict[str, Run] = {"aiokafka": with_aiokafka, "librdkafka": with_librdkafka}
    with kafka_bootstrap(args.bootstrap) as bootstrap:
        topic = await new_topic(bootstrap, "header-cost", args.partitions)
        figures: dict[tuple[str, str], list[float]] = {}
        for rep in range(args.reps):
            for name in args.clients:
                order = [("none", None), ("header", HEADER)]
                for label, headers in order if rep % 2 == 0 else reversed(order):
                    started = time.monotonic()
                    spent = await clients[name](bootstrap, topic, args.records, args.window, headers)
                    figures.setdefault((name, label), []).append(spent)
                    print(
                        f"[rep {rep + 1}] {name:10} {label:6} {spent:6.2f} µs/rec ({time.monotonic() - started:.1f} s)"
                    )
        print(f"\nCPU µs per record, median of {args.reps} (min-max); {args.records} records, windows of {args.window}")
        for name in args.clients:
            none, header = (figures[(name, label)] for label in ("none", "header"))
            cost = statistics.median(header) - statistics.median(none)
            print(f"{name:10} none {statistics.median(none):6.2f} ({min(none):.2f}-{max(none):.2f})  "
                  f"header {statistics.median(header):6.2f} ({min(header):.2f}-{max(header):.2f})  "
                  f"header costs {cost:+.2f}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", default=None, help="default: $KAFKA_SIDECAR_BOOTSTRAP or a fresh broker")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--window", type=int, default=800, help="records in flight: 8 clients x 100 per request")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--clients", type=lambda t: t.split(","), default=["aiokafka", "librdkafka"])
    asyncio.run(main(parser.parse_args()))
