"""Control API of the reactive consumers, under ``/admin/consumers/reactive`` (loopback-guarded).

``GET  /admin/consumers/reactive``                      every reactive consumer with its state
``GET  /admin/consumers/reactive/{name}``               one consumer
``POST /admin/consumers/reactive/{name}/pause``         ``{"partitions": [...]}`` optional
``POST /admin/consumers/reactive/{name}/resume``        same
``POST /admin/consumers/reactive/{name}/seek``          ``{"partitions"?, "offset" | "timestamp" | "position"}``
``POST /admin/consumers/reactive/{name}/replay``        replay the dead-letter topic (202 + job)
``GET  /admin/consumers/reactive/{name}/replay/{id}``   replay progress and counts

Every change is published as an :class:`AdminAction` on the event bus.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from kafka_sidecar.plugin import (
    AdminAction,
    EventBus,
    NotFound,
    admin_route,
    json_object_body,
)
from kafka_sidecar_handlers.reactive._control import PartitionRef, SeekRequest, parse_partitions, parse_seek

if TYPE_CHECKING:
    from kafka_sidecar_handlers.reactive import ReactiveConsumer

BASE = "/admin/consumers/reactive"
T = TypeVar("T")


def _refs(refs: list[PartitionRef]) -> list[dict[str, object]]:
    return [{"topic": r.topic, "partition": r.partition} for r in refs]


def named(consumers: Mapping[str, T], request: Request, what: str) -> T:
    """The consumer the route's ``{name}`` names; a 404 listing the known ones otherwise."""
    name = request.path_params["name"]
    consumer = consumers.get(name)
    if consumer is None:
        known = ", ".join(sorted(consumers)) or "none"
        raise NotFound(f"no {what} {name!r} (known: {known})", field="name")
    return consumer


def publish_action(events: EventBus, request: Request, action: str, target: str, detail: str) -> None:
    """An admin action on a consumer, for audit and metrics (with the caller's address)."""
    client = request.client.host if request.client else None
    events.publish(AdminAction(action=action, target=target, detail=detail, client=client))


class ReactiveAdmin:
    def __init__(self, consumers: Mapping[str, ReactiveConsumer]) -> None:
        self._consumers = consumers

    def routes(self) -> list[BaseRoute]:
        return [
            admin_route(BASE, self.list_all, ["GET"]),
            admin_route(BASE + "/{name}", self.show, ["GET"]),
            admin_route(BASE + "/{name}/pause", self.pause, ["POST"]),
            admin_route(BASE + "/{name}/resume", self.resume, ["POST"]),
            admin_route(BASE + "/{name}/seek", self.seek, ["POST"]),
            admin_route(BASE + "/{name}/replay", self.replay, ["POST"]),
            admin_route(BASE + "/{name}/replay/{job}", self.replay_status, ["GET"]),
        ]

    def _consumer(self, request: Request) -> ReactiveConsumer:
        return named(self._consumers, request, "reactive consumer")

    def _publish(self, consumer: ReactiveConsumer, request: Request, action: str, detail: str) -> None:
        publish_action(consumer.events, request, action, f"reactive-consumer/{consumer.name}", detail)

    async def list_all(self, request: Request) -> Response:
        """Every reactive consumer with state, assignment, offsets, lag and counters."""
        return JSONResponse({"consumers": [await c.status() for _, c in sorted(self._consumers.items())]})

    async def show(self, request: Request) -> Response:
        """One reactive consumer's state, assignment, committed offsets, positions and lag."""
        return JSONResponse(await self._consumer(request).status())

    async def pause(self, request: Request) -> Response:
        """Pause delivery of a consumer, or of the partitions listed in the body."""
        return await self._set_paused(request, True)

    async def resume(self, request: Request) -> Response:
        """Resume delivery of a consumer, or of the partitions listed in the body."""
        return await self._set_paused(request, False)

    async def _set_paused(self, request: Request, paused: bool) -> Response:
        consumer = self._consumer(request)
        wanted = parse_partitions(await json_object_body(request))
        chosen = consumer.pause(list(wanted) if wanted is not None else None, paused)
        action = "pause" if paused else "resume"
        scope = "all partitions" if wanted is None else ", ".join(f"{r.topic}-{r.partition}" for r in chosen)
        self._publish(consumer, request, f"reactive-consumer.{action}", scope)
        return JSONResponse({"consumer": consumer.name, "paused": paused, "partitions": _refs(chosen)})

    async def seek(self, request: Request) -> Response:
        """Seek by offset, timestamp, beginning or end; applied between batches."""
        consumer = self._consumer(request)
        body = await json_object_body(request)
        wanted = parse_partitions(body)
        target = parse_seek(body)
        result = await consumer.seek(SeekRequest(wanted, target))
        detail = f"{target.kind}={target.value}" if target.value is not None else target.kind
        self._publish(consumer, request, "reactive-consumer.seek", detail)
        return JSONResponse(
            {
                "consumer": consumer.name,
                "partitions": [
                    {"topic": r.topic, "partition": r.partition, "offset": offset} for r, offset in result.items()
                ],
            }
        )

    async def replay(self, request: Request) -> Response:
        """Start replaying the dead-letter topic (all or a range) through the backend."""
        consumer = self._consumer(request)
        body = await json_object_body(request)
        job = await consumer.start_replay(body)
        self._publish(consumer, request, "reactive-consumer.dlq-replay", json.dumps(body, sort_keys=True))
        return JSONResponse(job.snapshot(), status_code=202)

    replay.response_status = "202"  # type: ignore[attr-defined]  # for /openapi.json

    async def replay_status(self, request: Request) -> Response:
        """Progress and counts of a dead-letter replay job."""
        consumer = self._consumer(request)
        job = consumer.replays.get(request.path_params["job"])
        if job is None:
            raise NotFound(f"no replay job {request.path_params['job']!r}", field="job")
        return JSONResponse(job.snapshot())
