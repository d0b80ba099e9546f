"""Hook specifications: the whole contract between kafka-sidecar and its plugins.

Every hook is called at assembly time (start-up, ``kafka-sidecar check``, ``kafka-sidecar handlers``),
never per request or per record: plugins contribute handler types, serdes, config sections, shared
services, metrics exporters, dead-letter sinks and routes, and chains.yml decides which run where.
Hooks that look at the assembled sidecar get a read-only :class:`~kafka_sidecar.SidecarView`.
Call with keyword arguments only; an implementation may accept fewer arguments than the spec lists.
Each hook is documented in ``docs/plugin-hooks.md`` with its exact signature (a test enforces it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from kafka_sidecar._deadletter import DeadLetterSinkSpec
    from kafka_sidecar._metrics.service import MetricsExporterSpec
    from kafka_sidecar._registry import ConfigSection, HandlerSpec
    from kafka_sidecar._serdes.base import Serde
    from kafka_sidecar._services import ServiceSpec
    from kafka_sidecar._view import SidecarView

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
    ``kafka-sidecar handlers``. Failure policy (every ``register`` hook): a rejected registration or an
    implementation that raises is a ``PluginError`` naming the plugin and the hook; nothing is assembled.
    """


@hookspec
def kafka_sidecar_register_serdes(register: Callable[[Serde], None]) -> None:
    """Register record formats (serializer/deserializer pairs) by name, such as ``json`` or ``avro``.

    :param register: call it once per :class:`~kafka_sidecar.Serde`; a format name already
        registered is rejected, naming both plugins.

    Failure policy: as for every ``register`` hook (``PluginError`` naming the plugin; nothing assembled).
    """


@hookspec
def kafka_sidecar_register_config_sections(register: Callable[[ConfigSection], None]) -> None:
    """Register a top-level section of ``chains.yml`` that belongs to the plugin.

    :param register: call it with a :class:`~kafka_sidecar.ConfigSection` (a name and a frozen
        dataclass). The section is validated like core sections (unknown keys, types, locations)
        and available to handler factories as ``resources.section(ConfigType)``.

    Failure policy: as for every ``register`` hook; a section value that does not validate is a
    ``ConfigError`` with file:line:col, from ``check`` and ``run`` alike.
    """


@hookspec
def kafka_sidecar_register_services(register: Callable[[ServiceSpec[object]], None]) -> None:
    """Declare a shared service (a client, a sink, a cache) the core builds once per sidecar.

    :param register: call it with a :class:`~kafka_sidecar.ServiceSpec` (a ``StashKey`` and a
        ``factory(resources)``); a key registered twice is rejected, naming both plugins.

    Every declared service is built at assembly, in registration order, before any handler factory
    runs; handlers find it in ``resources.services[KEY]``. Failure policy: a factory that raises
    fails the assembly with a ``PluginError`` naming the service and the plugin.
    """


@hookspec
def kafka_sidecar_register_metrics_exporters(register: Callable[[MetricsExporterSpec], None]) -> None:
    """Register a metrics exporter type (Prometheus, InfluxDB, OpenTelemetry, a team's own) by name.

    :param register: call it with a :class:`~kafka_sidecar.MetricsExporterSpec`; a name registered
        twice is rejected, naming both plugins.

    The ``metrics.exporters`` list of ``chains.yml`` chooses which run; each chosen one is built once
    per sidecar with the sidecar's registry. Failure policy: an unknown name or a factory that raises
    fails the assembly; ``start`` failing fails the start; ``stop`` failing is logged and the others
    still stop; a push that fails at run time is the exporter's to count and log (never raised).
    """


@hookspec
def kafka_sidecar_register_dead_letter_sinks(register: Callable[[DeadLetterSinkSpec], None]) -> None:
    """Register a dead-letter sink by name (the ``kafka`` topic writer is registered this way too).

    :param register: call it with a :class:`~kafka_sidecar.DeadLetterSinkSpec`; a name registered
        twice is rejected, naming both plugins.

    A consumer's ``dead_letter_sink`` setting chooses one; it is built once per sidecar. Failure
    policy: a letter the sink does not report as stored (or a sink that raises) is not committed at
    the source; it is written again after a back-off until the sink stores it, so nothing is lost.
    """


@hookspec
def kafka_sidecar_routes(sidecar: SidecarView) -> Sequence[BaseRoute] | None:
    """Return extra Starlette routes to mount beside the chain routes (outside any chain).

    :param sidecar: a read-only view of the assembled sidecar (config, resources, routes, consumers).
    :return: routes, or None. Paths must not clash with chain routes.

    Failure policy: an exception fails building the app (the sidecar does not start).
    """


@hookspec
def kafka_sidecar_startup(sidecar: SidecarView) -> Awaitable[None] | None:
    """Called once when the sidecar starts: after handlers are started, before consumer sources start.

    :param sidecar: a read-only view of the assembled sidecar.
    :return: None, or an awaitable that the sidecar awaits before it reports ready.

    Failure policy: an exception fails the start.
    """


@hookspec
def kafka_sidecar_shutdown(sidecar: SidecarView) -> Awaitable[None] | None:
    """Called once when the sidecar stops, after traffic has drained and before handlers stop.

    :param sidecar: a read-only view of the assembled sidecar.
    :return: None, or an awaitable that the sidecar awaits.

    Failure policy: a failing awaitable is logged and the stop goes on.
    """
