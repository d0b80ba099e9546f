"""CPU µs per record of the Kafka clients a reactive consumer could read with, in one process, no HTTP.

Fills a topic (1 KiB records, round-robin over the partitions) once, then reads all of it from the
beginning with each client and reports CPU (user+system of this process, every thread, from
``resource.getrusage``) per record and records/s:

* ``aiokafka getmany``: a raw ``AIOKafkaConsumer`` (batches of ``--batch``), records untouched;
* ``confluent consume``: ``confluent_kafka.Consumer.consume(num_messages=N)`` in a thread of its own,
  messages untouched (their count handed to the event loop);
* ``engine aiokafka`` / ``engine librdkafka``: the reactive consumer's own clients
  (``kafka.consumer.engine``) in a fresh group, ``fetch()`` after ``fetch()``: consumed records per
  partition on the event loop, what the runtime gets.

``loop µs`` is the part spent on the event loop's thread (and, for the librdkafka engine, on the thread
that owns ``consume()`` and converts there): the Python side that one core must carry; the rest is the
client's own C threads.

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

from kafka_sidecar._config.model import ConsumerSettings, KafkaConfig
from kafka_sidecar_handlers.reactive._client import ConsumerClient
from kafka_sidecar_handlers.reactive._config import ReactiveConsumerConfig
from kafka_sidecar_handlers.reactive._rdkafka import RdKafkaClient
from kafka_sidecar_handlers.reactive._runtime import FETCH_TIMEOUT_MS, ConsumerRuntime, engine_client


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Meter:
    """Counts records from the first batch on (that batch is not counted: connection set-up excluded)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.seen = 0
        self.counted = 0
        self.began = self.cpu = self.loop_cpu = 0.0
        self.loop_cpu_seconds = float("nan")

    def add(self, count: int) -> None:
        if count and not self.seen:
            self.began, self.cpu, self.loop_cpu = time.perf_counter(), cpu_seconds(), time.thread_time()
        elif count:
            self.counted += count
        self.seen += count

    @property
    def done(self) -> bool:
        return self.seen >= self.total

    def stop(self, extra_thread_cpu: float = 0.0) -> None:
        """The window ends (on the event loop's thread); ``extra_thread_cpu``: another Python thread's part."""
        self.seconds, self.cpu = time.perf_counter() - self.began, cpu_seconds() - self.cpu
        self.loop_cpu_seconds = time.thread_time() - self.loop_cpu + extra_thread_cpu

    def result(self) -> tuple[float, float, float]:
        """(records/s, CPU µs per record, of which on the Python threads)."""
        per = 1e6 / max(self.counted, 1)
        return self.counted / self.seconds, self.cpu * per, self.loop_cpu_seconds * per


async def read_aiokafka(bootstrap: str, topic: str, partitions: int, total: int, batch: int) -> Meter:
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
                meter.add(len(messages))
        meter.stop()
        return meter
    finally:
        await consumer.stop()


class _Listener:
    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        return None


def read_with_engine(engine: str) -> Callable[..., Any]:
    async def read(bootstrap: str, topic: str, partitions: int, total: int, batch: int) -> Meter:
        kafka = KafkaConfig(bootstrap_servers=bootstrap, consumer=ConsumerSettings(engine=engine))  # type: ignore[arg-type]
        config = ReactiveConsumerConfig(
            group=f"bench-{uuid.uuid4().hex[:8]}", backend_url="http://127.0.0.1:9", topics=(topic,),
            fetch_max_records=batch,
        )  # fmt: skip
        client: ConsumerClient = engine_client(ConsumerRuntime("bench", config, kafka, lambda t, p: None))  # type: ignore[arg-type,return-value]
        client.subscribe(config.topics, None, _Listener())
        await client.start()
        meter = Meter(total)
        owner_cpu = 0.0
        try:
            while not meter.done:
                fetched = await client.fetch(FETCH_TIMEOUT_MS)
                if fetched and not meter.seen and isinstance(client, RdKafkaClient):
                    owner_cpu = -await client.thread_cpu_seconds()
                for records in fetched.values():
                    meter.add(len(records))
            if isinstance(client, RdKafkaClient):
                owner_cpu += await client.thread_cpu_seconds()
            meter.stop(owner_cpu)
            return meter
        finally:
            await client.stop()

    return read


async def read_confluent(bootstrap: str, topic: str, partitions: int, total: int, batch: int) -> Meter:
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

    def on_loop(count: int) -> None:
        meter.add(count)
        if meter.done:
            finished.set()

    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            messages = consumer.consume(num_messages=batch, timeout=0.2)
            if not messages:
                continue
            loop.call_soon_threadsafe(on_loop, len(messages))

    thread = threading.Thread(target=run, name="bench-consume", daemon=True)
    thread.start()
    try:
        await asyncio.wait_for(finished.wait(), 300)
        meter.stop()  # the consuming thread's own CPU is not split out here
        meter.loop_cpu_seconds = float("nan")
        return meter
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 5)
        await asyncio.to_thread(consumer.close)


READERS: dict[str, Callable[..., Any]] = {
    "aiokafka getmany": read_aiokafka,
    "confluent consume": read_confluent,
    "engine aiokafka": read_with_engine("aiokafka"),
    "engine librdkafka": read_with_engine("librdkafka"),
}


async def main_async(args: argparse.Namespace, bootstrap: str) -> None:
    topic = await new_topic(bootstrap, "client-bench", args.partitions)
    value = b"x" * args.record_size
    await consuming.fill_topic(bootstrap, topic, args.records, lambda n: value, partitions=args.partitions)
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in READERS}
    for rep in range(args.reps):
        for name, reader in READERS.items():
            meter = await reader(bootstrap, topic, args.partitions, args.records, args.batch)
            rate, cpu, loop_cpu = meter.result()
            results[name].append((rate, cpu, loop_cpu))
            print(f"[rep {rep + 1}] {name:20} {rate:10,.0f} rec/s {cpu:6.2f} CPU µs/rec (loop {loop_cpu:5.2f})",
                  flush=True)  # fmt: skip
    print(
        f"\nmedians of {args.reps} reps, {args.records:,} x {args.record_size} B records, {args.partitions} partitions"
    )
    for name, found in results.items():
        rate, cpu, loop_cpu = (statistics.median(row[i] for row in found) for i in range(3))
        print(f"{name:20} {rate:10,.0f} rec/s {cpu:6.2f} CPU µs/rec (loop {loop_cpu:5.2f})")


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
