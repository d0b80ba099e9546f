"""CPU per request of the chain's plugin hooks and of the HTTP adapter, without a broker or a server.

A trivial terminal (it answers ``{"ok": 1}`` at once) behind the shipped plugins, one at a time and all
together, each called ``--requests`` times in this process:

* **chain**: the compiled chain called with an exchange (the plugins' per-request hooks alone);
* **app**: the whole ASGI app (Starlette, the request/response adapter, the limits, the chain) called with
  a scope, a one-message body and a ``send`` that drops what it gets; no server and no socket.

With ``--cold MB``, that much memory is written between two calls (outside the measured time), so each
call finds the CPU caches taken by someone else, as a sidecar answering 500 requests a second does: the
broker and the clients share its cores between two requests. Code and data a request touches then cost
what they cost from memory: the real server's per-request chain cost (``bench/chain_ablation.py
--scenario produce1``) is 3-4 times the warm figure, and this mode reproduces that in process.

The audit plugin's writer (one Kafka record per request) and the HTTP server are not in these figures:
the suite's ``produce1`` scenario has both. Run another checkout first on ``PYTHONPATH`` for a
before/after. Not part of the test suite::

    .venv/bin/python bench/request_cost_bench.py [--requests 20000] [--cold 32]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kafka_sidecar import Sidecar
from kafka_sidecar._http.app import create_app
from kafka_sidecar._runtime import loop_factory
from kafka_sidecar.plugin import Exchange, HandlerSpec, HttpRequest, Reply, hookimpl

PLUGINS = {
    "metrics": "{use: metrics}",
    "correlation": "{use: correlation}",
    "tracing": "{use: tracing}",
    "logging": "{use: logging-context, config: {format: json, install: false}}",
    "audit": "{use: audit, config: {target: log}}",
    "validation": "{use: validation}",
}
BODY = b'{"records":[{"key":"key-0","value":"' + b"x" * 1024 + b'"}]}'
HEADERS = {"host": "127.0.0.1:8442", "content-type": "application/json", "content-length": str(len(BODY))}


class Answer:
    def __init__(self, config: object, resources: object) -> None:
        pass

    async def __call__(self, exchange: Exchange) -> Reply:
        return Reply(body={"ok": 1})


class AnswerPlugin:
    @hookimpl
    def kafka_sidecar_register_handlers(self, register: Callable[[HandlerSpec[object]], None]) -> None:
        register(HandlerSpec(name="answer", factory=Answer, kind="terminal"))


def config(chain: list[str]) -> str:
    handlers = "".join(f"  {name}: {PLUGINS[name]}\n" for name in chain) + "  answer: {use: answer}\n"
    exec_ = ", ".join([*chain, "answer"])
    return (
        'kafka: {bootstrap_servers: "127.0.0.1:1"}\n'
        f"handlers:\n{handlers}"
        f'paths:\n  - {{path: "/producers/{{topic}}", method: POST, exec: [{exec_}]}}\n'
    )


def per_call(count: int, run: Callable[[], Any], evict: Callable[[], None] | None = None) -> Callable[[], Any]:
    async def measure() -> float:
        for _ in range(count // 10):
            await run()
        if evict is None:
            started = time.process_time()
            for _ in range(count):
                await run()
            return (time.process_time() - started) / count * 1e6
        spent = 0
        for _ in range(count):
            evict()
            started_ns = time.process_time_ns()
            await run()
            spent += time.process_time_ns() - started_ns
        return spent / count / 1e3

    return measure


def evictor(megabytes: int) -> Callable[[], None] | None:
    """Writes one byte per cache line of ``megabytes`` MiB: what was cached before is gone after."""
    if megabytes <= 0:
        return None
    junk = bytearray(megabytes << 20)
    line = bytes(len(junk) // 64)

    def evict() -> None:
        junk[::64] = line

    return evict


def microseconds_each(count: int, call: Callable[[], object], before: Callable[[], None] | None = None) -> float:
    """µs per ``call()``, averaged over ``count`` calls; ``before()`` (an eviction) runs untimed before each."""
    spent = 0
    for _ in range(count):
        if before is not None:
            before()
        started = time.perf_counter_ns()
        call()
        spent += time.perf_counter_ns() - started
    return spent / count / 1e3


async def measure(chain: list[str], folder: Path, count: int, cold: int, app_too: bool) -> tuple[float, float]:
    path = folder / "chains.yml"
    path.write_text(config(chain), encoding="utf-8")
    sidecar = Sidecar.from_file(path, extra_plugins=[(AnswerPlugin(), "answer")])
    app = create_app(sidecar, manage_lifecycle=False)
    await sidecar.start()
    try:
        compiled = sidecar.routes[0].chain
        request = HttpRequest(
            "POST", "/producers/t", "/producers/{topic}", {"topic": "t"}, {}, HEADERS, BODY, "127.0.0.1"
        )

        async def through_chain() -> None:
            await compiled(Exchange("http", "/producers/{topic}", request))

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": "/producers/t", "raw_path": b"/producers/t", "query_string": b"", "root_path": "",
            "headers": [(k.encode(), v.encode()) for k, v in HEADERS.items()],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8442),
        }  # fmt: skip

        async def send(message: object) -> None:
            pass

        async def through_app() -> None:
            messages = [{"type": "http.request", "body": BODY, "more_body": False}]

            async def receive() -> dict[str, object]:
                return messages.pop()

            await app(dict(scope), receive, send)

        evict = evictor(cold)
        in_chain = await per_call(count, through_chain, evict)()
        return in_chain, (await per_call(count, through_app, evict)() if app_too else math.nan)
    finally:
        await sidecar.stop()


async def main(args: argparse.Namespace) -> None:
    chosen = args.plugins or [*PLUGINS, "all"]
    variants = [[], *([name] if name != "all" else list(PLUGINS) for name in chosen)]
    with tempfile.TemporaryDirectory() as folder:
        results = [
            (chain, await measure(chain, Path(folder), args.requests, args.cold, not args.chain_only))
            for chain in variants
        ]
    base_chain, base_app = results[0][1]
    caches = f"caches evicted ({args.cold} MiB written) before each" if args.cold else "warm caches"
    print(f"CPU µs per request, {args.requests} requests each (trivial terminal, no broker, no server; {caches})")
    print(f"{'chain':52} {'chain':>8} {'+hooks':>8} {'app':>8}")
    for chain, (in_chain, in_app) in results:
        name = " + ".join(chain) or "(terminal only)"
        print(f"{name:52} {in_chain:8.1f} {in_chain - base_chain:8.1f} {in_app:8.1f}")
    if not args.chain_only:
        print(f"HTTP adapter and Starlette (app - chain, terminal only): {base_app - base_chain:.1f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--cold", type=int, default=0, metavar="MB", help="evict the caches before each call")
    parser.add_argument("--chain-only", action="store_true", help="measure the chain alone, not the ASGI app")
    parser.add_argument(
        "--plugins",
        type=lambda t: t.split(","),
        default=None,
        metavar="NAME,...",
        help=f"only these plugins, each alone (of {', '.join(PLUGINS)}; 'all': them all together); "
        "default: each, then all",
    )
    arguments = parser.parse_args()
    unknown = set(arguments.plugins or ()) - {*PLUGINS, "all"}
    if unknown:
        parser.error(f"--plugins: unknown {', '.join(sorted(unknown))}; the shipped ones are {', '.join(PLUGINS)}")
    factory = loop_factory()
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main(arguments))
