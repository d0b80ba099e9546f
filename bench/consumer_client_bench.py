"""CPU µs per record of the Kafka clients a reactive consumer could read with, in one process, no HTTP.

Fills a topic (1 KiB records, round-robin over the partitions) once, then reads all of it from the
beginning with each client and reports CPU (user+system of this process, every thread, from
``resource.getrusage``) per record and records/s:

* ``aiokafka getmany``: a raw ``AIOKafkaConsumer`` (batches of ``--batch``), records untouched;
* ``aiokafka + ConsumedRecord``: the same, each batch converted as the aiokafka engine does;
* ``confluent consume``: ``confluent_kafka.Consumer.consume(num_messages=N)`` in a thread of its own;
* ``confluent + ConsumedRecord``: the same, each batch converted and grouped per partition as the
  librdkafka engine does, and handed to the event loop (``call_soon_threadsafe``).

    .venv/bin/python bench/consumer_client_bench.py --records 300000      # starts its own broker
    .venv/bin/python bench/consumer_client_bench.py --bootstrap 127.0.0.1:9092 --reps 3
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import consuming
from aiokafka import AIOKafkaConsumer, TopicPartition
from common import kafka_bootstrap, machine_line, new_topic

from kafka_sidecar_handlers.reactive._aiokafka import to_records
from kafka_sidecar_handlers.reactive._rdkafka_records import grouped_records


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Meter:
    """Counts records from the first batch on (that batch is not counted: connection set-up excluded)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.seen = 0
        self.counted = 0
        self.began = self.cpu = 0.0

    def add(self, count: int) -> None:
        if count and not self.seen:
            self.began, self.cpu = time.perf_counter(), cpu_seconds()
        elif count:
            self.counted += count
        self.seen += count

    @property
    def done(self) -> bool:
        return self.seen >= self.total

    def result(self) -> tuple[float, float]:
        """(records/s, CPU µs per record)."""
        seconds, cpu = time.perf_counter() - self.began, cpu_seconds() - self.cpu
        return self.counted / seconds, cpu * 1e6 / max(self.counted, 1)


async def read_aiokafka(bootstrap: str, topic: str, partitions: int, total: int, batch: int, convert: bool) -> Meter:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, max_poll_records=batch)
    await consumer.start()
    meter = Meter(total)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while not meter.done:
            fetched = await consumer.getmany(timeout_ms=1000, max_records=batch)
            for messages in fetched.values():
                meter.add(len(to_records(messages) if convert else messages))
        return meter
    finally:
        await consumer.stop()


async def read_confluent(bootstrap: str, topic: str, partitions: int, total: int, batch: int, convert: bool) -> Meter:
    from confluent_kafka import OFFSET_BEGINNING, Consumer
    from confluent_kafka import TopicPartition as RdPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
        }
    )
    consumer.assign([RdPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    meter = Meter(total)
    loop = asyncio.get_running_loop()
    finished = asyncio.Event()

    def on_loop(groups: dict[Any, list[Any]]) -> None:
        for records in groups.values():
            meter.add(len(records))
        if meter.done:
            finished.set()

    def on_loop_raw(count: int) -> None:
        meter.add(count)
        if meter.done:
            finished.set()

    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            messages = consumer.consume(num_messages=batch, timeout=0.2)
            if not messages:
                continue
            if convert:
                loop.call_soon_threadsafe(on_loop, grouped_records(messages))
            else:
                loop.call_soon_threadsafe(on_loop_raw, len(messages))

    thread = threading.Thread(target=run, name="bench-consume", daemon=True)
    thread.start()
    try:
        await asyncio.wait_for(finished.wait(), 300)
        return meter
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 5)
        await asyncio.to_thread(consumer.close)


READERS: dict[str, tuple[Callable[..., Any], bool]] = {
    "aiokafka getmany": (read_aiokafka, False),
    "aiokafka + ConsumedRecord": (read_aiokafka, True),
    "confluent consume": (read_confluent, False),
    "confluent + ConsumedRecord": (read_confluent, True),
}


async def main_async(args: argparse.Namespace, bootstrap: str) -> None:
    topic = await new_topic(bootstrap, "client-bench", args.partitions)
    value = b"x" * args.record_size
    await consuming.fill_topic(bootstrap, topic, args.records, lambda n: value, partitions=args.partitions)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in READERS}
    for rep in range(args.reps):
        for name, (reader, convert) in READERS.items():
            meter = await reader(bootstrap, topic, args.partitions, args.records, args.batch, convert)
            rate, cpu = meter.result()
            results[name].append((rate, cpu))
            print(f"[rep {rep + 1}] {name:28} {rate:10,.0f} rec/s {cpu:6.2f} CPU µs/rec", flush=True)
    print(
        f"\nmedians of {args.reps} reps, {args.records:,} x {args.record_size} B records, {args.partitions} partitions"
    )
    for name, found in results.items():
        rate = statistics.median(r for r, _ in found)
        cpu = statistics.median(c for _, c in found)
        print(f"{name:28} {rate:10,.0f} rec/s {cpu:6.2f} CPU µs/rec")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--bootstrap", default=None, help="use this broker (default: start one)")
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--record-size", type=int, default=1024)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2000, help="records per poll (fetch_max_records)")
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    print(f"machine: {machine_line()}")
    with kafka_bootstrap(args.bootstrap) as bootstrap:
        asyncio.run(main_async(args, bootstrap))


if __name__ == "__main__":
    main()
