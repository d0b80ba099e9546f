"""``python -m kafka_sidecar_testing.ksqldb``: the ksqlDB test server in its own process (tests SIGKILL it)."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from kafka_sidecar_testing.ksqldb import KsqlDbTestServer


async def _serve(args: argparse.Namespace) -> None:
    server = KsqlDbTestServer(args.bootstrap, port=args.port, command_log=args.command_log)
    server.switches.framing = args.framing
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    try:
        await stop.wait()
    finally:
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="ksqlDB test server (not ksqlDB) on 127.0.0.1")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--command-log", type=Path, default=None)
    parser.add_argument("--framing", choices=["row", "coalesced", "split"], default="row")
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
