"""Routes of the console: the page and its assets under ``/admin/ui``, JSON under ``/admin/console``."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from kafka_sidecar.plugin import NotFound, ValidationFailed, admin_page_route, admin_route
from kafka_sidecar_plugins.console._deadletters import newest_dead_letters
from kafka_sidecar_plugins.console._history import History
from kafka_sidecar_plugins.console._sources import reactive_sources
from kafka_sidecar_plugins.console._state import active_instances, producer_state

if TYPE_CHECKING:
    from kafka_sidecar.plugin import SidecarView

ASSETS = {"console.js": "text/javascript", "console.css": "text/css"}
MAX_LETTERS = 200
PAGE_HEADERS = {
    "cache-control": "no-store",
    # Everything the page loads comes from the sidecar itself; nothing inline runs.
    "content-security-policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
}


def _asset(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


def console_routes(sidecar: SidecarView, history: History) -> list[BaseRoute]:
    page = _asset("index.html")
    assets = {name: _asset(name) for name in ASSETS}

    async def index(request: Request) -> Response:
        """The admin console (a browser page)."""
        return Response(page, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    index.response_media_type = "text/html"  # type: ignore[attr-defined]  # for /openapi.json

    async def asset(request: Request) -> Response:
        """A static asset of the admin console."""
        name = request.path_params["asset"]
        if name not in assets:
            raise NotFound(f"no console asset {name!r}", field="asset")
        return Response(assets[name], media_type=ASSETS[name], headers=PAGE_HEADERS)

    async def producer(request: Request) -> Response:
        """The shared producer's connection state."""
        return JSONResponse(producer_state(sidecar))

    async def lag_history(request: Request) -> Response:
        """Total lag and delivered count of every reactive consumer over the last minutes."""
        return JSONResponse(history.snapshot())

    async def active(request: Request) -> Response:
        """Every live active-consumer instance with its partitions, position and lag."""
        return JSONResponse({"instances": active_instances(sidecar)})

    async def dead_letters(request: Request) -> Response:
        """The newest dead letters of a reactive consumer, with their error headers."""
        raw = request.query_params.get("limit", "50")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LETTERS:
            raise ValidationFailed(f"must be an integer from 1 to {MAX_LETTERS}", field="limit")
        name = request.path_params["name"]
        sources = reactive_sources(sidecar)
        source = sources.get(name)
        if source is None:
            known = ", ".join(sorted(sources)) or "none"
            raise NotFound(f"no reactive consumer {name!r} (known: {known})", field="name")
        topics = source.dead_letter_topics()
        partitions_for = sidecar.resources.producer.partitions_for
        found = await newest_dead_letters(sidecar.config.kafka, topics, int(raw), partitions_for)
        return JSONResponse({"consumer": name, **found})

    return [
        admin_page_route("/admin/ui", index, ["GET"]),
        admin_page_route("/admin/ui/{asset}", asset, ["GET"]),
        admin_route("/admin/console/producer", producer, ["GET"]),
        admin_route("/admin/console/active", active, ["GET"]),
        admin_route("/admin/console/history", lag_history, ["GET"]),
        admin_route("/admin/console/reactive/{name}/dead-letters", dead_letters, ["GET"]),
    ]
