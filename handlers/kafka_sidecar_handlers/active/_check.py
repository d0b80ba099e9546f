"""Plan-time check of an active-consumer instance: formats exist, every route is an operation."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from kafka_sidecar import CheckContext
from kafka_sidecar_handlers.active._routes import OPERATIONS, operation, resource

if TYPE_CHECKING:
    from kafka_sidecar_handlers.active import ActiveConsumerConfig

_TAIL_WORDS = ("subscription", "subscriptions", "assignments", "positions", "records", "offsets", "instances")


def check_active(config: ActiveConsumerConfig, ctx: CheckContext) -> None:
    ctx.check_format("format", config.format)
    ctx.check_format("dead_letter_format", config.dead_letter_format)
    for route in ctx.routes:
        found = resource(route.path)
        if found is None:
            last = route.path.rstrip("/").rsplit("/", 1)[-1]
            ctx.route_problem(
                route,
                f"{route.path} is not an active-consumer route (see docs/active-consumer.md)",
                next(iter(difflib.get_close_matches(last, _TAIL_WORDS, n=1)), None),
            )
            continue
        wrong = [method for method in route.methods if operation(route.path, method) is None]
        if wrong:
            allowed = sorted(method for (res, method) in OPERATIONS if res == found)
            ctx.route_problem(
                route, f"the active consumer does not serve {', '.join(wrong)} here; it serves {', '.join(allowed)}"
            )
