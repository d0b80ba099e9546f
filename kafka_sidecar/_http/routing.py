"""Route matching by path shape: a request is matched only against the routes its path could match.

Starlette's router tries every route in order, one regular expression each: the sidecar has about 70
routes, so ``GET .../records`` (the 39th) paid 17 µs of matching per request with warm caches and 35
with cold ones (docs/benchmarks.md, eighth round, "Route matching"). Here each route is filed under its
shape, its first path segment and its number of segments (a parameter of Starlette's own ``str``,
``int``, ``float`` or ``uuid`` kinds matches one non-empty segment), and a request tries only the routes
filed under its own shape, in their order. A route whose shape is not fixed (a ``path`` parameter or a
convertor of the application's own, a parameter in the first segment, a mount, a plugin's own route
type) is tried for every request, in its place. So the first route that matches is
the one Starlette's full scan would find; the rest of the work (partial matches for 405, 404, lifespan)
is Starlette's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.convertors import FloatConvertor, IntegerConvertor, StringConvertor, UUIDConvertor
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Receive, Scope, Send

Shape = tuple[str, int]
"""A path's first segment and its number of segments: ``/topics/t`` is ``("topics", 2)``, ``/`` is ``("", 1)``."""

ONE_SEGMENT = (StringConvertor, IntegerConvertor, FloatConvertor, UUIDConvertor)
"""Starlette's convertors whose values never hold a ``/`` (and are never empty)."""


def request_shape(path: str) -> Shape:
    """The shape of a request path (which begins with ``/``)."""
    return path[1:].partition("/")[0], path.count("/")


def route_shape(route: BaseRoute) -> Shape | None:
    """The shape of every path ``route`` matches, or None when they have no one shape."""
    if type(route) is not Route:  # a mount, a websocket route, a plugin's own type: tried for every request
        return None
    if any(type(convertor) not in ONE_SEGMENT for convertor in route.param_convertors.values()):
        return None  # a path parameter (or an application's own convertor) may span segments
    path = route.path
    first = path[1:].partition("/")[0]
    if "{" in first:  # a parameter in the first segment matches any first segment
        return None
    return first, path.count("/")


class ShapeIndex:
    """The routes to try for each shape, in the router's order; the unshaped ones in every list."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.size = len(routes)
        shapes = [route_shape(route) for route in routes]
        self.unshaped = tuple(route for route, shape in zip(routes, shapes, strict=True) if shape is None)
        self._by_shape = {
            shape: tuple(route for route, other in zip(routes, shapes, strict=True) if other in (shape, None))
            for shape in set(shapes)
            if shape is not None
        }

    def candidates(self, path: str) -> tuple[BaseRoute, ...]:
        return self._by_shape.get(request_shape(path), self.unshaped)


class ShapeRouter(Router):
    """Starlette's router, trying for an HTTP request only the routes of its path's shape.

    The index is built with the router, at start-up, and again whenever the number of routes changes (a
    route added later, as ``app.add_route`` does). Behind a ``root_path`` (the app mounted under a prefix) the
    full scan runs, as does everything after no route matched (404, Starlette's slash redirect).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._index = ShapeIndex(self.routes)

    def _shape_index(self) -> ShapeIndex:
        if self._index.size != len(self.routes):
            self._index = ShapeIndex(self.routes)
        return self._index

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await super().app(scope, receive, send)
            return
        partial: BaseRoute | None = None
        partial_scope: Scope = {}
        for route in self._shape_index().candidates(scope["path"]):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope.setdefault("router", self)
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and partial is None:
                partial, partial_scope = route, child_scope
        if partial is None:  # no route matches: Starlette's own answer (404, or its slash redirect)
            await super().app(scope, receive, send)
            return
        scope.setdefault("router", self)
        scope["route"] = partial
        scope.update(partial_scope)
        await partial.handle(scope, receive, send)
