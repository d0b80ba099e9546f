"""CPU per request of finding the route: Starlette's scan of every route against the sidecar's shape index.

The shipped ``chains.yml``'s app (every route the sidecar serves, about 70), one request path at a time:
Starlette's router tries each route in order until one matches; ``ShapeRouter`` tries only the routes
filed under the path's shape (first segment, number of segments). Warm, then with ``--cold MB`` written
between two lookups (what a server at a few hundred requests a second finds; see
``request_cost_bench.py``). No broker, no server. Not part of the test suite::

    .venv/bin/python bench/route_match_bench.py [--lookups 2000] [--cold 32]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from request_cost_bench import evictor, microseconds_each
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from kafka_sidecar import Sidecar
from kafka_sidecar._http.app import create_app
from kafka_sidecar._http.routing import ShapeIndex

REQUESTS = [
    ("POST", "/producers/t"),
    ("POST", "/topics/t"),
    ("POST", "/v3/clusters/c/topics/t/records"),
    ("GET", "/consumers/g/instances/i/records"),
    ("POST", "/consumers/g/instances/i/offsets"),
    ("GET", "/metrics"),
]


def find(routes: Sequence[BaseRoute], scope: Scope) -> BaseRoute | None:
    for route in routes:
        if route.matches(scope)[0] is Match.FULL:
            return route
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--cold", type=int, default=32, metavar="MB", help="evicted before each cold lookup")
    args = parser.parse_args()
    app = create_app(Sidecar.from_file(Path(__file__).resolve().parents[1] / "chains.yml"), manage_lifecycle=False)
    routes = app.router.routes
    index = ShapeIndex(routes)
    evict = evictor(args.cold)
    print(f"µs per lookup, {args.lookups} each; {len(routes)} routes; cold: {args.cold} MiB written before each")
    print(f"{'request':44} {'tried':>5} {'scan warm':>10} {'shape warm':>11} {'scan cold':>10} {'shape cold':>11}")
    for method, path in REQUESTS:
        scope: Scope = {"type": "http", "path": path, "root_path": "", "method": method, "headers": []}
        candidates = index.candidates(path)
        found = find(routes, scope)
        if found is None or find(candidates, scope) is not found:
            raise SystemExit(f"{method} {path}: the index finds another route than the scan")

        def scan(scope: Scope = scope) -> object:
            return find(routes, scope)

        def shaped(scope: Scope = scope, path: str = path) -> object:
            return find(index.candidates(path), scope)  # the lookup in the index counted

        figures = [microseconds_each(args.lookups, call, before) for before in (None, evict) for call in (scan, shaped)]
        tried = f"{routes.index(found) + 1}/{candidates.index(found) + 1}"
        print(f"{method + ' ' + path:44} {tried:>5} " + " ".join(f"{f:10.1f}" for f in figures))


if __name__ == "__main__":
    main()
