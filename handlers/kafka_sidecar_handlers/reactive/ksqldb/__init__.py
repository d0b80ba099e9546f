"""The ksqlDB handlers: ``ksqldb-consumer`` (kind ``source``) and ``ksqldb-query`` (``POST /ksqldb/active``).

The consumer delivers a ksqlDB query's rows to the backend through the reactive consumer's delivery
path, in ``sink`` mode (a persistent query writes a topic; durable, at-least-once) or ``push`` mode (a
push query over HTTP/2). User guide, guarantees and the control API: ``docs/ksqldb-consumer.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute

from kafka_sidecar.plugin import HandlerSpec, hookimpl
from kafka_sidecar_handlers.reactive.ksqldb._active import KsqlDbQuery, describe
from kafka_sidecar_handlers.reactive.ksqldb._admin import KsqlDbAdmin
from kafka_sidecar_handlers.reactive.ksqldb._config import KsqlDbConsumerConfig, KsqlDbQueryConfig
from kafka_sidecar_handlers.reactive.ksqldb._consumer import KsqlDbConsumer

if TYPE_CHECKING:
    from kafka_sidecar.plugin import SidecarView

__all__ = ["KsqlDbConsumer", "KsqlDbQuery", "kafka_sidecar_register_handlers", "kafka_sidecar_routes"]


@hookimpl
def kafka_sidecar_register_handlers(register: Callable[[HandlerSpec[Any]], None]) -> None:
    register(
        HandlerSpec(
            name="ksqldb-consumer",
            factory=KsqlDbConsumer,
            config_type=KsqlDbConsumerConfig,
            kind="source",
            description="Deliver a ksqlDB query's rows to a backend (sink: durable via a topic; push: live).",
        )
    )
    register(
        HandlerSpec(
            name="ksqldb-query",
            factory=KsqlDbQuery,
            config_type=KsqlDbQueryConfig,
            kind="terminal",
            description="POST /ksqldb/active: a ksqlDB pull (or bounded push) query answered as JSON rows.",
            describe=describe,
        )
    )


@hookimpl
def kafka_sidecar_routes(sidecar: SidecarView) -> list[BaseRoute] | None:
    consumers = {c.name: c.source for c in sidecar.consumers if isinstance(c.source, KsqlDbConsumer)}
    return KsqlDbAdmin(consumers).routes()
