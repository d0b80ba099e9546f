"""CPU per record of the active consumer's own work for one ``GET .../records`` reply, without broker or HTTP.

    .venv/bin/python bench/active_reply_bench.py [--format binary|json] [--replies 200] [--reps 5]

aiokafka ``ConsumerRecord`` objects (3 partitions x 167 records of ~1 KiB, built before timing) go
through the handler's steps: ``gather`` (buffer), ``render`` (keys/values for the reply),
``owned_pairs``, ``mark_delivered`` and the reply encoder. Prints process CPU µs per record of each step
(best of ``--reps``). To compare with another checkout, run it with that checkout first on the path:
``PYTHONPATH=/other/handlers:/other .venv/bin/python bench/active_reply_bench.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from aiokafka.structs import ConsumerRecord, TopicPartition

import kafka_sidecar_handlers.active._records as records_module
from kafka_sidecar._json import dumps
from kafka_sidecar._serdes.builtin import BINARY, JSON
from kafka_sidecar_handlers.active._instance import ActiveInstance, InstanceKey
from kafka_sidecar_handlers.active._requests import CreateRequest

STEPS = ("gather", "render", "owned", "mark", "encode")
PARTITIONS = 3
PER_PARTITION = 167


def make_batches(fmt: str, count: int = 50) -> list[dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]]:
    pad = "x" * 994

    def record(partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
        value = json.dumps({"n": offset, "pad": pad}).encode() if fmt == "json" else f"{pad}{offset}".encode()
        return ConsumerRecord("t", partition, offset, 1_700_000_000_000, 0, None, value, None, -1, len(value), ())

    return [
        {TopicPartition("t", p): [record(p, n * 1000 + i) for i in range(PER_PARTITION)] for p in range(PARTITIONS)}
        for n in range(count)
    ]


class PrefetchedConsumer:
    """Hands out the prebuilt batches in turn (no broker)."""

    def __init__(self, batches: list[dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]]) -> None:
        self._batches = batches
        self._polls = 0

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, Any]:
        self._polls += 1
        return self._batches[self._polls % len(self._batches)]

    def subscription(self) -> set[str]:
        return {"t"}

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("t", p) for p in range(PARTITIONS)}


async def measure(fmt: str, replies: int, reps: int) -> list[float]:
    serde = JSON if fmt == "json" else BINARY
    settings = CreateRequest(None, fmt, fmt, "earliest", False, 1, 1000)
    instance = ActiveInstance(InstanceKey("g", "i"), settings, PrefetchedConsumer(make_batches(fmt)))
    limits = records_module.PollLimits(1.0, 8 * 1024 * 1024, 1, PARTITIONS * PER_PARTITION)
    clock = time.process_time
    best: list[float] | None = None
    for _ in range(reps):
        spent = [0.0] * len(STEPS)
        total = 0
        for _ in range(replies):
            t0 = clock()
            taken = await records_module.gather(instance, limits)
            t1 = clock()
            rendered = await records_module.render(instance, taken, serde, serde)
            t2 = clock()
            kept, body = records_module.owned_pairs(instance, taken[: len(rendered)], rendered)
            t3 = clock()
            instance.mark_delivered(kept)
            t4 = clock()
            dumps(body)
            t5 = clock()
            for index, seconds in enumerate((t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                spent[index] += seconds
            total += len(kept)
        per_record = [seconds * 1e6 / total for seconds in spent]
        if best is None or sum(per_record) < sum(best):
            best = per_record
    assert best is not None
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--format", choices=("binary", "json"), action="append")
    parser.add_argument("--replies", type=int, default=200)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    print(f"handlers from {records_module.__file__}")
    for fmt in args.format or ["binary", "json"]:
        steps = asyncio.run(measure(fmt, args.replies, args.reps))
        detail = "  ".join(f"{name} {value:.2f}" for name, value in zip(STEPS, steps, strict=True))
        print(f"{fmt:6}: {sum(steps):.2f} µs/record  ({detail})")


if __name__ == "__main__":
    main()
