"""Plan-time check of a producer instance: its default formats exist and its routes can be served."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kafka_sidecar import CheckContext

if TYPE_CHECKING:
    from kafka_sidecar_handlers.producer import ProducerConfig


def check_producer(config: ProducerConfig, ctx: CheckContext) -> None:
    ctx.check_format("key_format", config.key_format)
    ctx.check_format("value_format", config.value_format)
    for route in ctx.routes:
        if "{topic}" not in route.path:
            ctx.route_problem(route, "the producer needs the topic in the path: a {topic} parameter")
        others = [method for method in route.methods if method != "POST"]
        if others:
            ctx.route_problem(route, f"the producer serves POST only, not {', '.join(others)}")
