"""OpenAPI: ``GET /openapi.json`` and a browsable ``GET /docs``.

The description covers every route actually mounted by the current ``chains.yml`` (composed by the
core from the terminals' ``describe``, the same description the ``validation`` middleware enforces),
the health/admin routes and every plugin route. Block the plugin (``plugins.block: [openapi]``) to
serve neither route.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from kafka_sidecar.plugin import MountedRoute, SidecarView, build_document, document_title, hookimpl

__all__ = ["mounted_routes", "openapi_routes"]

DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .8em;text-align:left}}
code{{font-weight:bold}}</style></head>
<body><h1>{title}</h1><p>The machine-readable description: <a href="openapi.json">openapi.json</a></p>
<table id="ops"><thead><tr><th>Method</th><th>Path</th><th>Summary</th><th>Responses</th></tr></thead>
<tbody></tbody></table>
<script>
fetch("openapi.json").then(r => r.json()).then(doc => {{
  const body = document.querySelector("#ops tbody");
  for (const [path, item] of Object.entries(doc.paths)) {{
    for (const [method, op] of Object.entries(item)) {{
      const row = body.insertRow();
      row.insertCell().innerHTML = "<code>" + method.toUpperCase() + "</code>";
      row.insertCell().textContent = path;
      row.insertCell().textContent = op.summary || "";
      row.insertCell().textContent = Object.keys(op.responses || {{}}).join(", ");
    }}
  }}
}});
</script></body></html>
"""


def mounted_routes(routes: Sequence[BaseRoute]) -> list[MountedRoute]:
    """Every plain route of the app, for routes no terminal describes.

    An endpoint may say what it answers with ``response_media_type`` (default ``application/json``) and
    ``response_status`` (default ``"200"``) attributes.
    """
    found = []
    for route in routes:
        if isinstance(route, Route):
            media = getattr(route.endpoint, "response_media_type", "application/json")
            status = getattr(route.endpoint, "response_status", "200")
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                doc = (route.endpoint.__doc__ or "").strip().splitlines()
                summary = doc[0].rstrip(".") if doc else f"{method} {route.path}"
                found.append(MountedRoute(route.path, method, summary, media, status))
    return found


def openapi_routes(sidecar: SidecarView) -> list[BaseRoute]:
    cache: dict[str, dict[str, Any]] = {}

    async def openapi_json(request: Request) -> Response:
        """This OpenAPI description of every mounted route."""
        if "doc" not in cache:
            title = document_title(sidecar.config.service.id)
            cache["doc"] = build_document(title, sidecar.routes, mounted_routes(request.app.routes))
        return JSONResponse(cache["doc"])

    async def docs(request: Request) -> Response:
        """A browsable page of the OpenAPI description."""
        return HTMLResponse(DOCS_PAGE.format(title=html.escape(document_title(sidecar.config.service.id))))

    docs.response_media_type = "text/html"  # type: ignore[attr-defined]
    return [Route("/openapi.json", openapi_json, methods=["GET"]), Route("/docs", docs, methods=["GET"])]


@hookimpl
def kafka_sidecar_routes(sidecar: SidecarView) -> Sequence[BaseRoute] | None:
    return openapi_routes(sidecar)
