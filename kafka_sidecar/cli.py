"""The ``kafka-sidecar`` command: ``run``, ``check`` and ``handlers``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from kafka_sidecar._blueprint import build_blueprint, discover
from kafka_sidecar._errors import ConfigError, PluginError
from kafka_sidecar._resources import dead_letter_sinks, metrics_exporters
from kafka_sidecar._runtime import loop_factory, tune_gc
from kafka_sidecar._server import check_bind, serve_sidecar
from kafka_sidecar._sidecar import Sidecar

DEFAULT_CONFIG = "chains.yml"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kafka-sidecar", description="Apache Kafka over HTTP on localhost.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="start the sidecar")
    run.add_argument("--config", "-c", default=DEFAULT_CONFIG, help="path to chains.yml (default: %(default)s)")
    run.add_argument("--plugins-dir", action="append", default=[], help="load every .py in DIR as a plugin")
    run.add_argument("--log-level", default="INFO")

    check = commands.add_parser("check", help="validate a config without touching Kafka")
    check.add_argument("config", help="path to chains.yml")
    check.add_argument("--plugins-dir", action="append", default=[])

    listing = commands.add_parser("handlers", help="list registered handler types, formats and their plugins")
    listing.add_argument("--plugins-dir", action="append", default=[])

    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run(Path(args.config), args.plugins_dir, args.log_level)
        if args.command == "check":
            return _check(Path(args.config), args.plugins_dir)
        return _list_handlers(args.plugins_dir)
    except ConfigError as exc:
        print(f"configuration has {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except PluginError as exc:
        print(f"plugin error: {exc}", file=sys.stderr)
        return 2


def _run(config: Path, plugins_dirs: list[str], log_level: str) -> int:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    sidecar = Sidecar.from_file(config, extra_plugin_dirs=plugins_dirs)
    tune_gc()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(serve_sidecar(sidecar))
    return 0


def _check(config: Path, plugins_dirs: list[str]) -> int:
    blueprint = build_blueprint(config, extra_plugin_dirs=plugins_dirs)
    check_bind(blueprint.config.server, blueprint.file)
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
    print("record formats:")
    for name, provider in catalog.serdes.providers():
        print(f"  {name:<24} {'':<10} {provider}")
    for title, registry in (
        ("metrics exporters:", metrics_exporters(catalog.pm)),
        ("dead-letter sinks:", dead_letter_sinks(catalog.pm)),
    ):
        print(title)
        for item in registry:
            print(f"  {item.spec.name:<24} {'':<10} {item.provider}")
    if any(True for _ in catalog.sections):
        print("config sections:")
        for section in catalog.sections:
            print(f"  {section.spec.name:<24} {section.provider}")
    return 0
