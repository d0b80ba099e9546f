"""CPU µs per record of turning librdkafka messages into records, as both consumers' librdkafka engines do
(``kafka_sidecar.plugin.rdkafka_records_by_partition``), against the accessors called through
``operator.methodcaller`` (how it was done before the tenth round). No broker: the messages are
confluent-kafka ``Message`` objects built in memory, 1 KiB values, runs of one partition as ``consume()``
returns them. Not part of the test suite.

Usage::

    .venv/bin/python bench/rdkafka_records_bench.py [--records 500] [--partitions 3] [--rounds 2000]
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from functools import partial
from itertools import groupby
from operator import attrgetter, itemgetter, methodcaller
from typing import Any

from aiokafka import TopicPartition
from confluent_kafka import Message

from kafka_sidecar.plugin import ConsumedRecord, rdkafka_records_by_partition

_BY_NAME = {name: methodcaller(name) for name in ("topic", "partition", "offset", "timestamp", "key", "value")}
_PLACE = attrgetter("topic", "partition")


def through_methodcaller(messages: list[Any], make: Callable[..., Any]) -> dict[TopicPartition, list[Any]]:
    """The same records, each accessor looked up and bound per message (``methodcaller``)."""
    got = _BY_NAME
    records = list(
        map(
            make,
            map(got["topic"], messages),
            map(got["partition"], messages),
            map(got["offset"], messages),
            map(itemgetter(1), map(got["timestamp"], messages)),
            map(got["key"], messages),
            map(got["value"], messages),
        )
    )
    grouped: dict[TopicPartition, list[Any]] = {}
    for place, run in groupby(records, _PLACE):
        grouped.setdefault(TopicPartition(*place), []).extend(run)
    return grouped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=500, help="messages per consume() (max_poll_records)")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    value = b"x" * 1024
    per_partition = args.records // args.partitions
    messages = [
        Message(topic="orders", partition=p, offset=o, key=None, value=value, headers=None, timestamp=(1, 1700 + o))
        for p in range(args.partitions)
        for o in range(per_partition)
    ]
    assert rdkafka_records_by_partition(messages, ConsumedRecord) == through_methodcaller(messages, ConsumedRecord)
    converters: list[tuple[str, Callable[[list[Any], Callable[..., Any]], dict[TopicPartition, list[Any]]]]] = [
        ("rdkafka_records_by_partition", rdkafka_records_by_partition),
        ("methodcaller accessors", through_methodcaller),
    ]
    for name, convert in converters:
        seconds = min(timeit.repeat(partial(convert, messages, ConsumedRecord), number=args.rounds, repeat=3))
        print(f"{name:30s} {seconds / args.rounds / len(messages) * 1e6:.3f} µs per record")


if __name__ == "__main__":
    main()
