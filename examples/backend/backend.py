"""A tiny example backend: the service a kafka-sidecar delivers consumed records to.

It speaks the reactive consumer's batch contract::

    POST /kafka/records
    {"consumer": "orders", "records": [{"topic", "partition", "offset", "timestamp", "key", "value", "headers"}]}
    -> 200 {"results": [{"topic": "orders", "partition": 0, "offset": 42, "status": "SUCCESS"}, ...]}

and answers ``GET /health``. Every record it gets is logged and kept (the last ``--keep`` of them) so
``GET /records`` shows what arrived. Run it with::

    python examples/backend/backend.py --port 8080

It binds 127.0.0.1 only: in a pod the sidecar reaches it over the shared loopback interface.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
from collections import deque
from collections.abc import Mapping, Sequence

from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger("example-backend")

RECORD_FIELDS = ("topic", "partition", "offset")


class BadBatch(Exception):
    """The request does not follow the batch contract; ``field`` names the offending part."""

    def __init__(self, detail: str, field: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


def _problem(error: BadBatch) -> Response:
    body = {"type": "about:blank", "title": "Bad Request", "status": 400, "detail": error.detail, "field": error.field}
    return JSONResponse(body, status_code=400, media_type="application/problem+json")


def parse_batch(payload: object) -> tuple[str, list[Mapping[str, object]]]:
    """Check the batch shape; return the consumer name and the records."""
    if not isinstance(payload, Mapping):
        raise BadBatch("the body must be a JSON object", "body")
    consumer = payload.get("consumer")
    if not isinstance(consumer, str) or not consumer:
        raise BadBatch("'consumer' must be a non-empty string", "consumer")
    records = payload.get("records")
    if not isinstance(records, list):
        raise BadBatch("'records' must be a list", "records")
    checked: list[Mapping[str, object]] = []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise BadBatch(f"records[{index}] must be an object", f"records[{index}]")
        for name in RECORD_FIELDS:
            if name not in record:
                raise BadBatch(f"records[{index}] has no '{name}'", f"records[{index}].{name}")
        for name in ("partition", "offset"):
            value = record[name]
            if not isinstance(value, int) or isinstance(value, bool):
                raise BadBatch(f"records[{index}].{name} must be an integer", f"records[{index}].{name}")
        checked.append(record)
    return consumer, checked


def build_app(keep: int = 100) -> Starlette:
    """The backend's ASGI app; received records are kept in a bounded, per-app buffer."""
    received: deque[dict[str, object]] = deque(maxlen=keep)

    async def accept_records(request: Request) -> Response:
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return _problem(BadBatch("the body is not valid JSON", "body"))
        try:
            consumer, records = parse_batch(payload)
        except BadBatch as error:
            return _problem(error)
        results: list[dict[str, object]] = []
        for record in records:
            log.info(
                "consumer=%s topic=%s partition=%s offset=%s key=%s value=%s headers=%s",
                consumer,
                record["topic"],
                record["partition"],
                record["offset"],
                json.dumps(record.get("key")),
                json.dumps(record.get("value")),
                json.dumps(record.get("headers")),
            )
            received.append({"consumer": consumer, **record})
            results.append(
                {
                    "topic": record["topic"],
                    "partition": record["partition"],
                    "offset": record["offset"],
                    "status": "SUCCESS",
                }
            )
        return JSONResponse({"results": results})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "UP"})

    async def list_records(request: Request) -> Response:
        return JSONResponse({"records": list(received)})

    return Starlette(
        routes=[
            Route("/kafka/records", accept_records, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/records", list_records, methods=["GET"]),
        ]
    )


async def _serve(port: int, keep: int) -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("example backend listening on http://127.0.0.1:%d", port)
    await serve(build_app(keep), config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Example backend for kafka-sidecar's reactive consumer.")
    parser.add_argument("--port", type=int, default=8080, help="loopback port (default: %(default)s)")
    parser.add_argument("--keep", type=int, default=100, help="how many received records GET /records shows")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(_serve(args.port, args.keep))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
