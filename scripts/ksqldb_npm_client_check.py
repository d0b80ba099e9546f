"""On demand (not in the suite): the npm ``ksqldb-client`` against the ksqlDB test server, in each framing.

    .venv/bin/python scripts/ksqldb_npm_client_check.py [--bootstrap HOST:PORT]

Needs ``node`` and ``npm`` (the client is installed into a temporary folder from the npm registry). The
client parses every HTTP/2 DATA frame of a push query as one JSON row, as ksqlDB's Vert.x writer sends
them. So with ``row`` framing it must read every row, and with ``coalesced`` framing it is expected to fail.
That is the trap the sidecar avoids by reading lines (docs/ksqldb-consumer.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer

from kafka_sidecar_testing.ksqldb import KsqlDbTestServer
from kafka_sidecar_testing.topics import create_topic

CLIENT = "ksqldb-client@1.0.5"
SCRIPT = """
const KsqldbClient = require("ksqldb-client");
const [port, stream] = process.argv.slice(2);
(async () => {
  const client = new KsqldbClient({host: "http://127.0.0.1", port: Number(port)});
  await client.connect();
  const pulled = await client.query(`SELECT N FROM ${stream};`);
  const rows = [];
  const pushed = await client.streamQuery(`SELECT N FROM ${stream} EMIT CHANGES LIMIT 5;`, (data) => {
    rows.push(...(data.rows || []));
  }, {properties: {"auto.offset.reset": "earliest"}});
  console.log(JSON.stringify({pull: pulled.data && pulled.data.rows, pullError: String(pulled.error || ""),
                              push: rows, pushError: String(pushed.error || "")}));
  await client.disconnect();
})().catch((e) => { console.log(JSON.stringify({crash: String(e)})); process.exit(0); });
"""


async def _main(args: argparse.Namespace) -> int:
    bootstrap = args.bootstrap or os.environ.get("KAFKA_SIDECAR_BOOTSTRAP")
    broker = None
    if not bootstrap:
        from kafka_sidecar_testing import broker as harness

        broker = harness.KafkaBroker(harness.ensure_kafka_runtime())
        broker.start(timeout=120)
        bootstrap = broker.bootstrap_servers
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            install = ["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", tmp, CLIENT]
            await asyncio.to_thread(subprocess.run, install, check=True)
            (folder / "check.js").write_text(SCRIPT, encoding="utf-8")
            topic, stream = f"npm-{uuid.uuid4().hex[:8]}", f"NPM_{uuid.uuid4().hex[:8]}".upper()
            await create_topic(bootstrap, topic, 1)
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
            await producer.start()
            for n in range(5):
                await producer.send_and_wait(topic, json.dumps({"n": n}).encode())
            await producer.stop()
            async with KsqlDbTestServer(bootstrap) as server:
                async with httpx.AsyncClient() as client:
                    ddl = f"CREATE STREAM {stream} (N INT) WITH (KAFKA_TOPIC='{topic}', VALUE_FORMAT='JSON');"
                    (await client.post(f"{server.url}/ksql", json={"ksql": ddl})).raise_for_status()
                results = {}
                for framing in ("row", "coalesced"):
                    server.switches.framing = framing
                    node = ["node", str(folder / "check.js"), str(server.port), stream]
                    done = await asyncio.create_subprocess_exec(
                        *node, cwd=tmp, env={**os.environ, "NODE_PATH": str(folder / "node_modules")},
                        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                    )  # fmt: skip
                    out, err = await asyncio.wait_for(done.communicate(), 60)
                    errors = [line for line in err.decode().splitlines() if "Error" in line]
                    found = out.decode().strip().splitlines()
                    if done.returncode or not found:
                        results[framing] = json.dumps({"crash": errors[0] if errors else f"exit {done.returncode}"})
                    else:
                        results[framing] = found[-1]
                    print(f"{framing:>9}: {results[framing]}")
        row = json.loads(results["row"])
        want = [{"N": n} for n in range(5)]  # the client turns rows into objects itself
        ok = row.get("pull") == want and row.get("push") == want
        print("row framing: the npm client reads every row" if ok else "row framing: MISMATCH")
        return 0 if ok else 1
    finally:
        if broker is not None:
            broker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default=None)
    return asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
