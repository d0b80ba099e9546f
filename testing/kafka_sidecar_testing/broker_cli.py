"""``python -m kafka_sidecar_testing.broker_cli fetch | run``: the harness from the command line."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from kafka_sidecar_testing.broker import KafkaBroker
from kafka_sidecar_testing.kafka_runtime import CACHE_ENV, DEFAULT_KAFKA_VERSION, BrokerError, ensure_kafka_runtime


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kafka_sidecar_testing.broker_cli",
        description="Fetch and run a real single-node Apache Kafka broker for tests.",
    )
    parser.add_argument("--kafka-version", default=DEFAULT_KAFKA_VERSION, help="default: %(default)s")
    parser.add_argument("--cache-dir", type=Path, default=None, help=f"default: ${CACHE_ENV} or ~/.cache/...")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="download the broker jars and print the libs directory")
    run = sub.add_parser("run", help="run a broker in the foreground until SIGTERM/SIGINT")
    run.add_argument("--port", type=int, default=0, help="client (PLAINTEXT) port; default: a free one")
    run.add_argument("--work-dir", type=Path, default=None, help="default: a temporary directory")
    run.add_argument("--timeout", type=float, default=90.0, help="start-up timeout in seconds")
    return parser


def _run_foreground(args: argparse.Namespace) -> int:
    libs = ensure_kafka_runtime(args.kafka_version, args.cache_dir)
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    broker = KafkaBroker(libs, args.work_dir, port=args.port)
    try:
        broker.start(timeout=args.timeout)
        print(f"bootstrap={broker.bootstrap_servers}", flush=True)
        # Wake up on a stop signal; the timeout only serves to notice a broker that died.
        while not stop_requested.wait(1.0):
            if not broker.is_running:
                print(f"Kafka exited unexpectedly:\n{broker.log_tail()}", file=sys.stderr, flush=True)
                return 1
        return 0
    finally:
        broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "fetch":
            print(ensure_kafka_runtime(args.kafka_version, args.cache_dir), flush=True)
            return 0
        return _run_foreground(args)
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
