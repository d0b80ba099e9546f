"""Embedding kafka-sidecar's chains in another Python service.

Two ways, both from the public API (``kafka_sidecar.__all__``), both from one ``chains.yml``:

(a) **Mount** the sidecar's ASGI app under a prefix of the host app: ``POST /kafka/producers/{topic}``
    behaves exactly like the sidecar's own ``POST /producers/{topic}`` (same chain, same problems).
(b) **Run a compiled chain in-process**: the host's ``POST /orders`` builds an :class:`Exchange` itself
    and awaits the compiled producer chain, with no HTTP hop at all.

The host owns the lifecycle: a mounted app's own lifespan is not run by Starlette, so the host's
lifespan starts and stops the sidecar (producer connect, handler start/stop, flush on shutdown).

Run it::

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 python examples/embedding/app.py --port 8000
    curl -s -XPOST localhost:8000/orders -d '{"id": "o-1", "item": "book"}' -H 'content-type: application/json'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from kafka_sidecar import Chain, Exchange, HttpRequest, Reply, Sidecar, create_app

HERE = Path(__file__).resolve().parent
PRODUCE_ROUTE = "/producers/{topic}"


def load_sidecar(config: Path = HERE / "chains.yml", env: Mapping[str, str] | None = None) -> Sidecar:
    """Load, validate and assemble the chains (nothing connects to Kafka until ``sidecar.start()``)."""
    return Sidecar.from_file(config, env=env)


async def produce_in_process(chain: Chain, topic: str, records: Sequence[Mapping[str, object]]) -> Reply:
    """Run the producer chain without HTTP: one exchange carrying the whole batch.

    The reply is what the HTTP route would answer: status 200 when every record was acknowledged,
    ``body["offsets"]`` per record in request order; a bad record gives a 4xx problem reply.
    """
    body = json.dumps({"records": list(records)}).encode("utf-8")
    request = HttpRequest(
        method="POST",
        path=PRODUCE_ROUTE.format(topic=topic),
        route=PRODUCE_ROUTE,
        path_params={"topic": topic},
        headers={"content-type": "application/json"},
        body=body,
        client_host="127.0.0.1",
    )
    return await chain(Exchange("http", PRODUCE_ROUTE, request))


def build_app(sidecar: Sidecar, *, orders_topic: str = "orders", prefix: str = "/kafka") -> Starlette:
    """The host service: its own routes, plus the sidecar mounted under ``prefix``."""
    produce = sidecar.chain_for("POST", PRODUCE_ROUTE)

    async def place_order(request: Request) -> Response:
        try:
            order = await request.json()
        except ValueError:
            order = None
        if not isinstance(order, dict) or not isinstance(order.get("id"), str):
            return JSONResponse({"detail": "an order is an object with a string 'id'", "field": "id"}, status_code=400)
        reply = await produce_in_process(produce, orders_topic, [{"key": order["id"], "value": order}])
        if reply.status != 200:
            # A problem reply from the chain (validation, Kafka unavailable): pass it on unchanged.
            return JSONResponse(reply.body, status_code=reply.status, media_type=reply.media_type)
        assert isinstance(reply.body, dict)
        placed = reply.body["offsets"][0]
        return JSONResponse({"order": order["id"], "partition": placed["partition"], "offset": placed["offset"]}, 202)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await sidecar.start()
        try:
            yield
        finally:
            await sidecar.stop()

    return Starlette(
        routes=[
            Route("/orders", place_order, methods=["POST"]),
            Mount(prefix, app=create_app(sidecar, manage_lifecycle=False)),
        ],
        lifespan=lifespan,
    )


def main(argv: Sequence[str] | None = None) -> int:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    parser = argparse.ArgumentParser(description="Example host service embedding kafka-sidecar chains.")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--config", type=Path, default=HERE / "chains.yml")
    parser.add_argument("--orders-topic", default=os.environ.get("ORDERS_TOPIC", "orders"))
    args = parser.parse_args(argv)
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    app = build_app(load_sidecar(args.config), orders_topic=args.orders_topic)
    asyncio.run(serve(app, config))  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
