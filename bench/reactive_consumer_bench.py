"""Reactive consumer throughput vs a raw aiokafka consumer, on the same topic in the same run.

    .venv/bin/python bench/reactive_consumer_bench.py [--bootstrap HOST:PORT] [--records 60000] [--engine librdkafka]

Without ``--bootstrap`` (or ``$KAFKA_SIDECAR_BOOTSTRAP``) a local test broker is started. The topic
gets ``--partitions`` partitions of ``--records`` JSON records of about 1 KiB. Then:

1. raw: an ``AIOKafkaConsumer`` (no group) reads every record from the beginning; records/s.
2. sidecar: a reactive consumer (batch 500) delivers every record to a backend in another process
   that acknowledges at once (HTTP 200, no body); records/s from the first delivery to the last commit.

Prints both rates and their ratio. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from common import kafka_bootstrap
from consuming import DELIVERY_500, Window, ack_backend, fill_topic, in_process_consumer, read_raw, watch

from kafka_sidecar_testing.broker import create_topic


async def _sidecar_rate(
    bootstrap: str, topic: str, records: int, backend_port: int, value_format: str, engine: str
) -> Window:
    config = {
        "topics": [topic], "group": f"bench-{uuid.uuid4().hex[:8]}", "backend_url": f"http://127.0.0.1:{backend_port}",
        "value_format": value_format, **DELIVERY_500,
    }  # fmt: skip
    async with in_process_consumer(bootstrap, "reactive-consumer", config, engine=engine) as source:

        def workers() -> list[Any]:
            return list(source.runtime.workers.values()) if source.runtime is not None else []

        return await watch(
            lambda: sum(w.stats.delivered for w in workers()),
            records,
            done=lambda: all(w.last_committed == w.fetched_to for w in workers()),
        )


async def _main(args: argparse.Namespace) -> None:
    with kafka_bootstrap(args.bootstrap) as bootstrap, ack_backend() as port:
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        await create_topic(bootstrap, topic, args.partitions)
        began = time.perf_counter()
        pad = "x" * 1000
        value_of = lambda n: json.dumps({"n": n, "pad": pad}).encode()  # noqa: E731
        await fill_topic(bootstrap, topic, args.records, value_of, partitions=args.partitions)
        print(f"produced {args.records} x ~1 KiB records to {args.partitions} partitions "
              f"in {time.perf_counter() - began:.1f}s")  # fmt: skip
        raw = (await read_raw(bootstrap, topic, args.partitions, args.records)).rate
        print(f"raw aiokafka consumer read:      {raw:>10,.0f} records/s")
        window = await _sidecar_rate(bootstrap, topic, args.records, port, args.format, args.engine)
        reactive = window.rate
        print(f"reactive consumer delivered:     {reactive:>10,.0f} records/s  (batch 500, format {args.format}, "
              f"engine {args.engine}; {window.cpu_us_per_record:.1f} CPU µs/record in this process)")  # fmt: skip
        print(f"ratio reactive / raw:            {reactive / raw:>10.2f}")
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        await admin.delete_topics([topic])
        await admin.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--records", type=int, default=60000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--format", default="json", help="value_format of the reactive consumer (json, binary, ...)")
    parser.add_argument(
        "--engine", default="aiokafka", choices=("aiokafka", "librdkafka"), help="kafka.consumer.engine"
    )
    asyncio.run(_main(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
