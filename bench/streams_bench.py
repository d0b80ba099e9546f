"""Stream processor throughput: the example quixstreams app run by the sidecar vs the same app run standalone.

Both runs process the same pre-produced input (JSON orders, keyed by customer) from the beginning with
exactly-once, each in a fresh consumer group, in a child process of this script:

* **sidecar**: the child exactly as the ``stream-processor`` handler launches it (``python_launch``: the
  shipped runner, given the spec and settings in its environment, builds the Application);
* **standalone**: a plain script building the same ``Application`` and calling ``run()``.

Measured from the engine's "started" log line to the moment the group's committed offsets reach the
input's end: records/s, and child CPU (user + sys, including start-up) per record.

    .venv/bin/python bench/streams_bench.py [--records 20000] [--keys 100] [--python .venv-streams/bin/python]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from common import REPO, kafka_bootstrap, new_topic

from kafka_sidecar._config.model import KafkaConfig
from kafka_sidecar_handlers.streams._config import StreamProcessorConfig
from kafka_sidecar_handlers.streams._launch import PYTHON_READY, python_launch

APP = REPO / "examples" / "streams" / "order_streams.py"
STANDALONE = textwrap.dedent(
    """
    import importlib.util, sys
    from quixstreams import Application
    spec = importlib.util.spec_from_file_location("order_streams", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = Application(broker_address=sys.argv[2], consumer_group=sys.argv[3], state_dir=sys.argv[4],
                      processing_guarantee="exactly-once", auto_offset_reset="earliest", commit_interval=1.0)
    module.build(app)
    app.run()
    """
)


async def produce_input(bootstrap: str, topic: str, records: int, keys: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=262144)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, json.dumps({"id": i, "amount": i % 97}).encode(), key=f"c{i % keys}".encode())
            for i in range(records)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def committed_total(admin: AIOKafkaAdminClient, group: str) -> int:
    offsets = await admin.list_consumer_group_offsets(group)
    return sum(meta.offset for meta in offsets.values() if meta.offset > 0)


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def run_one(
    name: str, argv: list[str], env: dict[str, str], bootstrap: str, group: str, records: int
) -> tuple[float, float]:
    """Start the child, wait for "started", then for the group to commit every record; SIGTERM it."""
    cpu_before = child_cpu()
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True
    )
    assert process.stdout is not None
    while True:
        line = await asyncio.wait_for(process.stdout.readline(), 120)
        if not line:
            raise RuntimeError(f"{name}: the engine exited before it started")
        if PYTHON_READY.encode() in line:
            break
    started = time.perf_counter()
    drain = asyncio.create_task(process.stdout.read())  # keep the pipe empty (the sidecar pumps it into its log)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        while True:
            if await committed_total(admin, group) >= records:
                break
            await asyncio.sleep(0.05)  # polling the broker's view of the group
    finally:
        await admin.close()
    elapsed = time.perf_counter() - started
    os.killpg(process.pid, signal.SIGTERM)
    await process.wait()
    await drain
    return elapsed, child_cpu() - cpu_before


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--python", default=str(REPO / ".venv-streams" / "bin" / "python"))
    parser.add_argument("--bootstrap", default=None)
    args = parser.parse_args()
    with kafka_bootstrap(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory() as work:
        orders = await new_topic(bootstrap, "orders", 2)
        await produce_input(bootstrap, orders, args.records, args.keys)
        results = {}
        for name in ("standalone", "sidecar", "standalone", "sidecar"):  # alternate: the broker warms up
            group = f"bench-{name}-{time.monotonic_ns()}"
            outputs = {"COUNTS_TOPIC": await new_topic(bootstrap, "counts", 2),
                       "TOTALS_TOPIC": await new_topic(bootstrap, "totals", 2), "ORDERS_TOPIC": orders}  # fmt: skip
            state = str(Path(work) / group)
            if name == "sidecar":
                config = StreamProcessorConfig(
                    application_id=group, app=f"{APP}:build", python=args.python, state_dir=state, env=outputs
                )
                launch = python_launch(name, config, KafkaConfig(bootstrap_servers=bootstrap))
                argv, env = list(launch.argv), dict(launch.env)
            else:
                script = Path(work) / "standalone.py"
                script.write_text(STANDALONE, encoding="utf-8")
                argv = [args.python, str(script), str(APP), bootstrap, group, state]
                env = {**os.environ, **outputs}
            elapsed, cpu = await run_one(name, argv, env, bootstrap, group, args.records)
            results[name] = (elapsed, cpu)  # the second (warm) run of each is kept
            print(f"{name:<11} {args.records / elapsed:9.0f} records/s  {elapsed:6.2f} s  "
                  f"child CPU {cpu:6.2f} s = {cpu / args.records * 1e6:6.1f} µs/record (incl. start-up)")  # fmt: skip
        ratio = results["standalone"][0] / results["sidecar"][0]
        print(f"sidecar / standalone throughput: {ratio:.2f}  ({sys.platform}, {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    asyncio.run(main())
