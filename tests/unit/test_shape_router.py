"""Route matching by path shape picks the route Starlette's full scan picks, for every shipped route."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route, WebSocketRoute
from starlette.types import Message, Scope

from kafka_sidecar import Sidecar
from kafka_sidecar._http.app import create_app
from kafka_sidecar._http.routing import ShapeIndex, ShapeRouter, request_shape, route_shape

SHIPPED = Path(__file__).resolve().parents[2] / "chains.yml"
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")


async def endpoint(request: Request) -> Response:
    return Response(status_code=204)


def route(path: str, *methods: str) -> Route:
    return Route(path, endpoint, methods=list(methods or ["GET"]))


def first_match(routes: Sequence[BaseRoute], scope: Scope) -> BaseRoute | None:
    """What Starlette's router hands the request to: the first full match, else the first partial one."""
    partial = None
    for candidate in routes:
        match, _ = candidate.matches(scope)
        if match is Match.FULL:
            return candidate
        if match is Match.PARTIAL and partial is None:
            partial = candidate
    return partial


def http_scope(path: str, method: str = "GET", root_path: str = "") -> Scope:
    return {"type": "http", "path": path, "root_path": root_path, "method": method, "headers": [],
            "query_string": b""}  # fmt: skip


def example_path(template: str) -> str:
    """A concrete path the template matches: every parameter a plain segment."""
    return re.sub(r"\{([^}:]+)(:[^}]+)?\}", lambda m: "7" if m.group(2) == ":int" else "x1", template)


def test_shapes_of_requests_and_routes() -> None:
    assert request_shape("/") == ("", 1)
    assert request_shape("/topics/t") == ("topics", 2)
    assert route_shape(route("/")) == ("", 1)
    assert route_shape(route("/topics/{topic}/partitions/{partition:int}")) == ("topics", 4)
    assert route_shape(route("/v3/clusters/{c}/topics/{t}/records:batch")) == ("v3", 6)
    assert route_shape(route("/files/{rest:path}")) is None  # spans segments
    assert route_shape(route("/items/{id:uuid}/{n:float}")) == ("items", 3)
    assert route_shape(route("/{anything}/x")) is None  # any first segment
    assert route_shape(Mount("/static", routes=[route("/a")])) is None
    assert route_shape(WebSocketRoute("/ws", endpoint)) is None


def test_unshaped_routes_are_tried_in_their_place() -> None:
    catch_all = route("/{name}/info")
    files = route("/files/{rest:path}")
    routes = [route("/a/b"), catch_all, route("/files/{one}"), files, route("/x/info")]
    index = ShapeIndex(routes)
    assert index.candidates("/x/info") == (catch_all, files, routes[4])  # the catch-all first, as in the scan
    assert index.candidates("/files/a") == (catch_all, routes[2], files)
    assert index.candidates("/files/a/b/c") == (catch_all, files)  # no route of that shape: the unshaped ones
    assert first_match(index.candidates("/x/info"), http_scope("/x/info")) is catch_all


def test_every_shipped_route_is_found_as_the_full_scan_finds_it() -> None:
    app = create_app(Sidecar.from_file(SHIPPED), manage_lifecycle=False)
    routes = app.router.routes
    assert isinstance(app.router, ShapeRouter)
    index = ShapeIndex(routes)
    paths = {example_path(r.path) for r in routes if isinstance(r, Route)}
    paths |= {"/", "/nothing/here", "/topics", "/topics/t/extra/segments/beyond", "/admin", "/metrics/x"}
    checked = 0
    for path in sorted(paths):
        for method in METHODS:
            scope = http_scope(path, method)
            assert first_match(index.candidates(path), scope) is first_match(routes, scope), (method, path)
            checked += 1
    assert checked > 400
    records = index.candidates("/consumers/g/instances/i/records")
    assert len(records) < len(routes) / 8  # what the index is for: a handful of routes, not all of them


@pytest.mark.asyncio
async def test_the_router_answers_as_starlettes_does() -> None:
    seen: list[str] = []

    def named(name: str) -> Route:
        async def answer(request: Request) -> Response:
            seen.append(name)
            return Response(status_code=204)

        return Route(f"/{name}/{{id}}", answer, methods=["POST"])

    router = ShapeRouter([named("a"), named("b")], redirect_slashes=False)
    statuses: list[int] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status = message["status"]
            assert isinstance(status, int)
            statuses.append(status)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    for path, method in [("/b/1", "POST"), ("/b/1", "GET"), ("/c/1", "POST"), ("/b/1/2", "POST")]:
        scope = http_scope(path, method)
        await router(scope, receive, send)
    assert seen == ["b"]
    assert statuses == [204, 405, 404, 404]
    assert scope["router"] is router

    router.routes.append(named("c"))  # added later, as app.add_route does: indexed on the next request
    await router(http_scope("/c/9", "POST"), receive, send)
    assert seen == ["b", "c"]

    mounted = http_scope("/prefix/a/1", "POST", root_path="/prefix")  # under a prefix: the full scan
    await router(mounted, receive, send)
    assert seen == ["b", "c", "a"]
