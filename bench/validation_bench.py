"""Validating a valid 100-record produce body against the served request schema: jsonschema-rs vs jsonschema;
with ``--hook``, the validation middleware's CPU per one-record produce request, checking the producer's
operation itself (``recheck_handler_checked``) or leaving it to the producer, which declares it checks it.

    .venv/bin/python bench/validation_bench.py
    PYTHONPATH=<old checkout>:<old checkout>/handlers:<old checkout>/plugins .venv/bin/python bench/validation_bench.py
    .venv/bin/python bench/validation_bench.py --hook [--cold 32]     # --cold MB: caches evicted before each call

The second form measures an older checkout (one that still has the hand-written compiled check,
``validation/_compile.py``, which it then times too).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import time
import timeit

import jsonschema_rs
from jsonschema import Draft202012Validator

import kafka_sidecar_plugins.openapi  # noqa: F401 - loads the plugins in their import order
from kafka_sidecar._chain import LinkInfo
from kafka_sidecar._config.model import KafkaConfig, SidecarConfig
from kafka_sidecar._exchange import Exchange, HttpRequest, Reply
from kafka_sidecar._kafka.producer import ProducerService
from kafka_sidecar._resources import Resources
from kafka_sidecar._serdes.base import SerdeRegistry
from kafka_sidecar._view import RouteInfo
from kafka_sidecar_handlers.producer._openapi import PRODUCE_REQUEST, describe_produce
from kafka_sidecar_plugins.validation import ValidationConfig, ValidationHandler

BODY = {
    "keyFormat": "string",
    "valueFormat": "string",
    "records": [{"key": f"key-{i}", "value": "x" * 1024, "headers": {"a": "b"}} for i in range(100)],
}


def per_call_us(check: object, number: int = 2000) -> float:
    assert callable(check)
    assert check(BODY), "the body must be valid"
    return timeit.timeit(lambda: check(BODY), number=number) / number * 1e6


async def _answer(exchange: Exchange) -> Reply:
    return Reply(200)


async def hook_us(recheck: bool, calls: int, cold_mb: int) -> float:
    """CPU µs per call of the middleware on ``POST /producers/{topic}`` with one 1 KiB JSON record (body
    parsed beforehand: the producer parses it anyway)."""
    route = "/producers/{topic}"
    routes = (RouteInfo(route, ("POST",), (LinkInfo("producer", "producer"),), describe=describe_produce),)
    resources = Resources(SidecarConfig(), SerdeRegistry(), ProducerService(KafkaConfig()), routes=routes)
    handler = ValidationHandler(ValidationConfig(recheck_handler_checked=recheck), resources)
    body = json.dumps({"records": [{"value": {"a": "x" * 1010}}]}).encode()
    headers = {"content-type": "application/vnd.kafka.json.v2+json"}
    exchanges = [
        Exchange("http", route, HttpRequest("POST", "/producers/orders", route, {"topic": "orders"}, {}, headers, body))
        for _ in range(calls)
    ]
    for exchange in exchanges:
        exchange.json_body()
    await handler(exchanges[0], _answer)  # compiles the route's validators
    evict, spare = bytearray(cold_mb << 20), [bytes([1]) * (cold_mb << 20), bytes([2]) * (cold_mb << 20)]
    spent = 0
    for exchange in exchanges:
        if cold_mb:
            evict[:] = spare[0]
            spare.reverse()
        started = time.process_time_ns()
        await handler(exchange, _answer)
        spent += time.process_time_ns() - started
    return spent / calls / 1000


async def hooks(cold_mb: int, rounds: int = 3) -> None:
    calls = 2000 if cold_mb else 20000
    for _ in range(rounds):  # interleaved
        twice = await hook_us(True, calls, cold_mb)
        once = await hook_us(False, calls, cold_mb)
        print(f"validation hook, one-record produce{f', caches evicted ({cold_mb} MiB)' if cold_mb else ''}: "
              f"checked here too {twice:6.1f} µs, left to the producer {once:6.1f} µs")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--hook", action="store_true", help="the middleware per one-record produce request")
    parser.add_argument("--cold", type=int, default=0, metavar="MB", help="with --hook: evict the caches first")
    args = parser.parse_args()
    if args.hook:
        asyncio.run(hooks(args.cold))
        return
    print(f"jsonschema-rs:        {per_call_us(jsonschema_rs.validator_for(PRODUCE_REQUEST).is_valid):8.1f} µs")
    print(f"jsonschema (Python):  {per_call_us(Draft202012Validator(PRODUCE_REQUEST).is_valid, 50):8.1f} µs")
    try:
        compile_check = importlib.import_module("kafka_sidecar_plugins.validation._compile").compile_check
    except ImportError:
        return
    check = compile_check(PRODUCE_REQUEST)
    if check is not None:
        print(f"hand-compiled check:  {per_call_us(check):8.1f} µs")


if __name__ == "__main__":
    main()
