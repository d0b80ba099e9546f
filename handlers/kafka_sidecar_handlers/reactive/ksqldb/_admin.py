"""Control API of the ksqlDB consumers, under ``/admin/ksqldb`` (admin guard; every change an AdminAction).

``GET  /admin/ksqldb``                       every ksqlDB consumer with its status
``GET  /admin/ksqldb/{name}``                mode, state, query id, columns, rows, resubscribes, gap flag, errors
``POST /admin/ksqldb/{name}/pause``          push: stop reading and delivering; sink: the reactive pause
``POST /admin/ksqldb/{name}/resume``         the reverse
``POST /admin/ksqldb/{name}/restart``        ``{"auto_offset_reset": "earliest"|"latest"}`` optional: start over
``POST /admin/ksqldb/{name}/seek``           sink: the reactive seek; push + resume: ``{"position": "beginning"}``
``POST /admin/ksqldb/{name}/replay``         the reactive dead-letter replay (202 + job)
``GET  /admin/ksqldb/{name}/replay/{job}``   its progress
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from kafka_sidecar.plugin import Conflict, NotFound, ValidationFailed, admin_route
from kafka_sidecar.plugin import json_object_body as json_body
from kafka_sidecar_handlers.reactive._admin import named, publish_action
from kafka_sidecar_handlers.reactive._control import SeekRequest, parse_partitions, parse_seek

if TYPE_CHECKING:
    from kafka_sidecar_handlers.reactive.ksqldb._consumer import KsqlDbConsumer

BASE = "/admin/ksqldb"


class KsqlDbAdmin:
    def __init__(self, consumers: Mapping[str, KsqlDbConsumer]) -> None:
        self._consumers = consumers

    def routes(self) -> list[BaseRoute]:
        return [
            admin_route(BASE, self.list_all, ["GET"]),
            admin_route(BASE + "/{name}", self.show, ["GET"]),
            admin_route(BASE + "/{name}/pause", self.pause, ["POST"]),
            admin_route(BASE + "/{name}/resume", self.resume, ["POST"]),
            admin_route(BASE + "/{name}/restart", self.restart, ["POST"]),
            admin_route(BASE + "/{name}/seek", self.seek, ["POST"]),
            admin_route(BASE + "/{name}/replay", self.replay, ["POST"]),
            admin_route(BASE + "/{name}/replay/{job}", self.replay_status, ["GET"]),
        ]

    def _consumer(self, request: Request) -> KsqlDbConsumer:
        return named(self._consumers, request, "ksqlDB consumer")

    def _publish(self, consumer: KsqlDbConsumer, request: Request, action: str, detail: str) -> None:
        target = f"ksqldb-consumer/{consumer.name}"
        publish_action(consumer.events, request, f"ksqldb-consumer.{action}", target, detail)

    async def list_all(self, request: Request) -> Response:
        """Every ksqlDB consumer with mode, state, query, row counters and gap flag."""
        return JSONResponse({"consumers": [await c.status() for _, c in sorted(self._consumers.items())]})

    async def show(self, request: Request) -> Response:
        """One ksqlDB consumer's mode, state, query id, columns, rows, resubscribes, gap flag and last error."""
        return JSONResponse(await self._consumer(request).status())

    async def pause(self, request: Request) -> Response:
        """Pause a ksqlDB consumer (push: stop reading the stream, ksqlDB is held back by flow control)."""
        return await self._set_paused(request, True)

    async def resume(self, request: Request) -> Response:
        """Resume a paused ksqlDB consumer."""
        return await self._set_paused(request, False)

    async def _set_paused(self, request: Request, paused: bool) -> Response:
        consumer = self._consumer(request)
        if consumer.push is not None:
            consumer.push.set_paused(paused)
        elif consumer.delivery is not None and consumer.delivery.runtime is not None:
            consumer.delivery.pause(None, paused)
        else:
            raise Conflict(f"ksqlDB consumer {consumer.name!r} is {consumer.current_state}; nothing to pause yet")
        self._publish(consumer, request, "pause" if paused else "resume", consumer.config.mode)
        return JSONResponse({"consumer": consumer.name, "paused": paused})

    async def restart(self, request: Request) -> Response:
        """Close the query, run the statements again (idempotently) and start over; optional offset reset."""
        consumer = self._consumer(request)
        body = await json_body(request)
        reset = body.get("auto_offset_reset")
        if reset not in (None, "earliest", "latest"):
            raise ValidationFailed("auto_offset_reset must be 'earliest' or 'latest'", field="auto_offset_reset")
        await consumer.restart(reset)
        self._publish(consumer, request, "restart", f"auto_offset_reset={reset}")
        return JSONResponse({"consumer": consumer.name, "state": consumer.current_state}, status_code=202)

    async def seek(self, request: Request) -> Response:
        """Sink: the reactive seek. Push with resume: restart from the beginning of the source."""
        consumer = self._consumer(request)
        body = await json_body(request)
        if consumer.config.mode == "push":
            if consumer.config.resume != "source-offsets":
                raise Conflict("push mode without resume has no position to seek (use restart with auto_offset_reset)")
            if body.get("position") != "beginning":
                raise ValidationFailed("push mode seeks only to {'position': 'beginning'}", field="position")
            await consumer.restart("earliest")
            self._publish(consumer, request, "seek", "beginning")
            return JSONResponse({"consumer": consumer.name, "position": "beginning"})
        if consumer.delivery is None:
            raise Conflict(f"ksqlDB consumer {consumer.name!r} is {consumer.current_state}; not consuming yet")
        target = parse_seek(body)
        result = await consumer.delivery.seek(SeekRequest(parse_partitions(body), target))
        self._publish(consumer, request, "seek", target.kind)
        rows = [{"topic": r.topic, "partition": r.partition, "offset": o} for r, o in result.items()]
        return JSONResponse({"consumer": consumer.name, "partitions": rows})

    async def replay(self, request: Request) -> Response:
        """Replay the consumer's dead-letter topic through the backend (202 + job)."""
        consumer = self._consumer(request)
        if consumer.delivery is None:
            raise Conflict(f"ksqlDB consumer {consumer.name!r} is {consumer.current_state}; not delivering yet")
        body = await json_body(request)
        job = await consumer.delivery.start_replay(body)
        self._publish(consumer, request, "dlq-replay", json.dumps(body, sort_keys=True))
        return JSONResponse(job.snapshot(), status_code=202)

    async def replay_status(self, request: Request) -> Response:
        """Progress and counts of a dead-letter replay job."""
        consumer = self._consumer(request)
        job = consumer.delivery.replays.get(request.path_params["job"]) if consumer.delivery is not None else None
        if job is None:
            raise NotFound(f"no replay job {request.path_params['job']!r}", field="job")
        return JSONResponse(job.snapshot())
