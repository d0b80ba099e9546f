"""Example out-of-tree kafka-sidecar plugin: the ``stamp`` middleware.

``stamp`` adds a configurable header to every record the exchange produces (through
``exchange.add_record_header``, so a header the caller set on a record itself still wins) and echoes
the stamp on the HTTP response. Declare it in ``chains.yml``::

    handlers:
      stamp:
        use: stamp
        config: {header: x-stamped-by, value: team-orders}
    chains:
      default: [stamp]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kafka_sidecar import Exchange, HandlerSpec, Next, Reply, Resources, hookimpl

__all__ = ["StampConfig", "StampHandler", "kafka_sidecar_register_handlers"]


@dataclass(frozen=True, slots=True)
class StampConfig:
    header: str = field(default="x-stamp", metadata={"doc": "Record header added to every produced record."})
    value: str = field(default="kafka-sidecar-example-stamp", metadata={"doc": "The header's value (UTF-8)."})
    response_header: str = field(default="X-Stamp", metadata={"doc": "HTTP response header echoing the value."})


class StampHandler:
    """Middleware; keeps only its configuration, nothing per request."""

    def __init__(self, config: StampConfig, resources: Resources) -> None:
        if not config.header:
            raise ValueError("stamp: 'header' must not be empty")
        self._header = config.header
        self._value = config.value.encode("utf-8")
        self._response_header = config.response_header
        self._response_value = config.value

    async def __call__(self, exchange: Exchange, call_next: Next) -> Reply:
        exchange.add_record_header(self._header, self._value)
        reply = await call_next(exchange)
        if self._response_header:
            exchange.add_response_header(self._response_header, self._response_value)
        return reply


@hookimpl
def kafka_sidecar_register_handlers(register: Callable[[HandlerSpec[StampConfig]], None]) -> None:
    register(
        HandlerSpec(
            name="stamp",
            factory=StampHandler,
            config_type=StampConfig,
            kind="middleware",
            description="Add a configurable header to every produced record (example out-of-tree plugin).",
        )
    )
