"""The ``kafka-sidecar`` command: ``run``, ``check`` and ``handlers``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from kafka_sidecar._blueprint import build_blueprint, discover
from kafka_sidecar._errors import ConfigError, PluginError, StartFailed, StartupError
from kafka_sidecar._logs import LEVELS, OperatorLines, configure_logging
from kafka_sidecar._runtime import freeze_started_heap, loop_factory, tune_gc, tune_malloc
from kafka_sidecar._server import check_bind, serve_sidecar
from kafka_sidecar._sidecar import Sidecar
from kafka_sidecar._startup import explain_os_error, preflight

DEFAULT_CONFIG = "chains.yml"
SIGPIPE_EXIT = 141
START_FAILED_EXIT = 1


def _version() -> str:
    try:
        return version("kafka-sidecar")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kafka-sidecar", description="Apache Kafka over HTTP on localhost.")
    parser.add_argument("--version", action="version", version=f"kafka-sidecar {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="start the sidecar")
    run.add_argument("--config", "-c", default=DEFAULT_CONFIG, help="path to chains.yml (default: %(default)s)")
    run.add_argument("--plugins-dir", action="append", default=[], help="load every .py in DIR as a plugin")
    run.add_argument(
        "--log-level", default="INFO", type=str.upper, choices=LEVELS, help="default: %(default)s; DEBUG shows all"
    )

    check = commands.add_parser("check", help="validate a config as run would, without touching Kafka")
    check.add_argument("config", help="path to chains.yml")
    check.add_argument("--plugins-dir", action="append", default=[])

    listing = commands.add_parser("handlers", help="list registered handler types, formats and their plugins")
    listing.add_argument("--plugins-dir", action="append", default=[])

    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            code = _run(Path(args.config), args.plugins_dir, args.log_level)
        elif args.command == "check":
            code = _check(Path(args.config), args.plugins_dir)
        else:
            code = _list_handlers(args.plugins_dir)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at interpreter exit
        return code
    except ConfigError as exc:
        if len(exc.problems) == 1:
            print(f"configuration error: {exc.problems[0]}", file=sys.stderr)
            return 2
        print(f"configuration has {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except PluginError as exc:
        print(f"plugin error: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"kafka-sidecar cannot start: {exc}", file=sys.stderr)
        return 2
    except StartFailed as exc:  # what had started was stopped again; the log says which step failed
        print(f"kafka-sidecar failed to start: {exc}", file=sys.stderr)
        return START_FAILED_EXIT
    except BrokenPipeError:
        # stdout was closed early (`kafka-sidecar handlers | head`): stop quietly, as other tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return SIGPIPE_EXIT


def _run(config: Path, plugins_dirs: list[str], log_level: str) -> int:
    configure_logging(log_level)
    if not config.exists():
        raise StartupError(
            f"no config file {str(config)!r}", field="--config", fix="pass the path of your chains.yml with -c FILE"
        )
    lines = OperatorLines()
    blueprint = build_blueprint(config, extra_plugin_dirs=plugins_dirs, extra_plugins=[(lines, "operator-lines")])
    server = blueprint.config.server
    check_bind(server, blueprint.file)
    preflight(blueprint.config)
    sidecar = Sidecar(blueprint)
    tune_gc()
    tune_malloc()
    stop = TimedEvent()

    def ready() -> None:
        freeze_started_heap()
        lines.log_ready(sidecar.view)

    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(serve_sidecar(sidecar, shutdown=stop, on_ready=ready))
    except OSError as exc:
        explained = explain_os_error(exc, server)
        if explained is None:
            raise
        raise explained from exc
    lines.log_stopped(stop.set_at)
    return 0


class TimedEvent(asyncio.Event):
    """The stop event, remembering when it was set (by SIGTERM/SIGINT), for the "stopped" line."""

    set_at: float | None = None

    def set(self) -> None:
        if self.set_at is None:
            self.set_at = time.monotonic()
        super().set()


def _check(config: Path, plugins_dirs: list[str]) -> int:
    """Exactly ``run``'s assembly (plan, handler checks, factories, plugin routes), without starting."""
    sidecar = Sidecar.from_file(config, extra_plugin_dirs=plugins_dirs)
    asyncio.run(sidecar.resources.close())  # cleanups factories registered; nothing was started
    blueprint = sidecar.blueprint
    print(f"{config}: OK — {len(blueprint.routes)} route(s), {len(blueprint.consumers)} consumer(s)")
    for route in blueprint.routes:
        print(f"  {' '.join(route.methods):<6} {route.path}  ->  {' -> '.join(route.links)}")
    for consumer in blueprint.consumers:
        print(f"  consumer {consumer.name}  ->  {' -> '.join(consumer.links)}")
    return 0


def _list_handlers(plugins_dirs: list[str]) -> int:
    catalog = discover(dirs=plugins_dirs)
    print("handler types:")
    for registered in catalog.handlers:
        spec = registered.spec
        print(f"  {spec.name:<24} {spec.kind:<10} {registered.provider}")
        if spec.description:
            print(f"  {'':<24} {spec.description}")
    print("record formats:")
    for name, provider in catalog.serdes.providers():
        print(f"  {name:<24} {'':<10} {provider}")
    for title, registry in (
        ("metrics exporters:", catalog.registrations.metrics_exporters),
        ("dead-letter sinks:", catalog.registrations.dead_letter_sinks),
    ):
        print(title)
        for item in registry:
            print(f"  {item.spec.name:<24} {'':<10} {item.provider}")
    if any(True for _ in catalog.sections):
        print("config sections:")
        for section in catalog.sections:
            print(f"  {section.spec.name:<24} {section.provider}")
    for duplicate in catalog.registrations.duplicates:  # the first registration is listed above
        print(f"plugin error: {duplicate.message}", file=sys.stderr)
    return 2 if catalog.registrations.duplicates else 0
