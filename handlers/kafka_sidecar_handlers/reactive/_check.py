"""Plan-time check of a reactive consumer: its key and value formats exist."""

from __future__ import annotations

from kafka_sidecar import CheckContext
from kafka_sidecar_handlers.reactive._config import ReactiveConsumerConfig


def check_reactive(config: ReactiveConsumerConfig, ctx: CheckContext) -> None:
    ctx.check_format("key_format", config.key_format)
    ctx.check_format("value_format", config.value_format)
    if config.dead_letter_sink not in ctx.dead_letter_sinks:
        registered = ", ".join(sorted(ctx.dead_letter_sinks))
        ctx.problem("dead_letter_sink", f"no dead-letter sink {config.dead_letter_sink!r} (registered: {registered})")
