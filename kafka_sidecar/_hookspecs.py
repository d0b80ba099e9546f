"""Hook specifications: the whole contract between kafka-sidecar and its plugins.

Every hook is called at assembly time (start-up, ``kafka-sidecar check``, ``kafka-sidecar handlers``),
never per request or per record: plugins contribute handler types, serdes, config sections and
routes, and chains.yml decides which handlers run where. Call with keyword arguments only; an
implementation may accept fewer arguments than the spec lists. Each hook is documented in
``docs/plugin-hooks.md`` with its exact signature (a test enforces it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from kafka_sidecar._registry import ConfigSection, HandlerSpec
    from kafka_sidecar._serdes.base import Serde
    from kafka_sidecar._sidecar import Sidecar

PROJECT = "kafka_sidecar"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def kafka_sidecar_register_handlers(register: Callable[[HandlerSpec[object]], None]) -> None:
    """Register handler types that ``chains.yml`` can use.

    :param register: call it once per :class:`~kafka_sidecar.HandlerSpec`. It rejects a type name
        already registered (naming both plugins), a config type that is not a dataclass, and a
        factory that is not callable.

    Called once while the sidecar is assembled. The plugin that registers is remembered and shown by
    ``kafka-sidecar handlers``.
    """


@hookspec
def kafka_sidecar_register_serdes(register: Callable[[Serde], None]) -> None:
    """Register record formats (serializer/deserializer pairs) by name, such as ``json`` or ``avro``.

    :param register: call it once per :class:`~kafka_sidecar.Serde`; a format name already
        registered is rejected, naming both plugins.
    """


@hookspec
def kafka_sidecar_register_config_sections(register: Callable[[ConfigSection], None]) -> None:
    """Register a top-level section of ``chains.yml`` that belongs to the plugin.

    :param register: call it with a :class:`~kafka_sidecar.ConfigSection` (a name and a frozen
        dataclass). The section is validated like core sections (unknown keys, types, locations)
        and available to handler factories as ``resources.section(ConfigType)``.
    """


@hookspec
def kafka_sidecar_routes(sidecar: Sidecar) -> Sequence[BaseRoute] | None:
    """Return extra Starlette routes to mount beside the chain routes (outside any chain).

    :param sidecar: the assembled sidecar (config, resources, compiled chains).
    :return: routes, or None. Paths must not clash with chain routes.
    """


@hookspec
def kafka_sidecar_startup(sidecar: Sidecar) -> Awaitable[None] | None:
    """Called once when the sidecar starts: after handlers are started, before consumer sources start.

    :param sidecar: the assembled sidecar.
    :return: None, or an awaitable that the sidecar awaits before it reports ready.
    """


@hookspec
def kafka_sidecar_shutdown(sidecar: Sidecar) -> Awaitable[None] | None:
    """Called once when the sidecar stops, after traffic has drained and before handlers stop.

    :param sidecar: the assembled sidecar.
    :return: None, or an awaitable that the sidecar awaits.
    """
