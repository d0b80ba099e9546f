"""Control API of the stream processors, under ``/admin/processors`` (admin-guarded).

``GET  /admin/processors``                  every processor with its status
``GET  /admin/processors/{name}``           state, pid, uptime, restarts, last exit, last lines, lag
``POST /admin/processors/{name}/stop``      SIGTERM (SIGKILL after stop_timeout_ms); no restart
``POST /admin/processors/{name}/start``     start again (the restart budget starts afresh)
``POST /admin/processors/{name}/restart``   stop, then start
``POST /admin/processors/{name}/reset``     only while stopped: offsets to beginning/timestamp, state removed

Every change is published as an :class:`AdminAction` on the event bus.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from kafka_sidecar.plugin import AdminAction, NotFound, admin_route, json_object_body

if TYPE_CHECKING:
    from kafka_sidecar_handlers.streams._processor import StreamProcessor

BASE = "/admin/processors"


class ProcessorAdmin:
    def __init__(self, processors: Mapping[str, StreamProcessor]) -> None:
        self._processors = processors

    def routes(self) -> list[BaseRoute]:
        return [
            admin_route(BASE, self.list_all, ["GET"]),
            admin_route(BASE + "/{name}", self.show, ["GET"]),
            admin_route(BASE + "/{name}/stop", self.stop, ["POST"]),
            admin_route(BASE + "/{name}/start", self.start, ["POST"]),
            admin_route(BASE + "/{name}/restart", self.restart, ["POST"]),
            admin_route(BASE + "/{name}/reset", self.reset, ["POST"]),
        ]

    def _processor(self, request: Request) -> StreamProcessor:
        name = request.path_params["name"]
        processor = self._processors.get(name)
        if processor is None:
            known = ", ".join(sorted(self._processors)) or "none"
            raise NotFound(f"no stream processor {name!r} (known: {known})", field="name")
        return processor

    def _publish(self, processor: StreamProcessor, request: Request, action: str, detail: str = "") -> None:
        client = request.client.host if request.client else None
        processor.events.publish(AdminAction(action=f"stream-processor.{action}",
                                             target=f"stream-processor/{processor.name}", detail=detail,
                                             client=client))  # fmt: skip

    async def list_all(self, request: Request) -> Response:
        """Every stream processor with state, pid, restarts, last exit and group lag."""
        return JSONResponse({"processors": [await p.status() for _, p in sorted(self._processors.items())]})

    async def show(self, request: Request) -> Response:
        """One stream processor: state, pid, uptime, restarts, last exit, last log lines, lag per partition."""
        return JSONResponse(await self._processor(request).status())

    async def stop(self, request: Request) -> Response:
        """Stop a processor (SIGTERM, SIGKILL after stop_timeout_ms); it stays stopped until started."""
        processor = self._processor(request)
        await processor.operator_stop()
        self._publish(processor, request, "stop")
        return JSONResponse({"processor": processor.name, "state": processor.supervisor.state})

    async def start(self, request: Request) -> Response:
        """Start a stopped or failed processor; its restart budget starts afresh."""
        processor = self._processor(request)
        processor.operator_start()
        self._publish(processor, request, "start")
        return JSONResponse({"processor": processor.name, "state": processor.supervisor.state})

    async def restart(self, request: Request) -> Response:
        """Stop the processor, then start it again."""
        processor = self._processor(request)
        await processor.operator_stop()
        processor.operator_start()
        self._publish(processor, request, "restart")
        return JSONResponse({"processor": processor.name, "state": processor.supervisor.state})

    async def reset(self, request: Request) -> Response:
        """Reset a stopped processor: group offsets to the beginning or a timestamp, local state removed."""
        processor = self._processor(request)
        body = await json_object_body(request)
        result = await processor.reset(body)
        self._publish(processor, request, "reset", json.dumps(body, sort_keys=True))
        return JSONResponse(result)
