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
CALLED_ONE_BY_ONE = (
    "kafka_sidecar_register_handlers",
    "kafka_sidecar_register_serdes",
    "kafka_sidecar_register_config_sections",
    "kafka_sidecar_register_services",
    "kafka_sidecar_register_metrics_exporters",
    "kafka_sidecar_register_dead_letter_sinks",
    "kafka_sidecar_routes",
    "kafka_sidecar_startup",
    "kafka_sidecar_shutdown",
)
"""Hooks the core calls implementation by implementation: wrapper implementations are rejected on them."""


@hookspec
def kafka_sidecar_register_handlers(register: Callable[[HandlerSpec[object]], None]) -> None:
    """Register handler types that ``chains.yml`` can use.

    :param register: call it once per :class:`~kafka_sidecar.HandlerSpec`. It rejects a config type
        that is not a dataclass and a factory that is not callable; a type name already registered
        is a configuration problem naming both plugins (``check`` and ``run`` alike, located).

    Called once while the sidecar is assembled. The plugin that registers is remembered and shown by
    ``kafka-sidecar handlers``.

    Failure policy: an implementation that raises, or registers something invalid, stops assembly
    with a :class:`~kafka_sidecar.PluginError` naming the plugin and the hook (``check`` and ``run``
    alike). Called one implementation at a time: ``wrapper`` implementations are rejected.
    """


@hookspec
def kafka_sidecar_register_serdes(register: Callable[[Serde], None]) -> None:
    """Register record formats (serializer/deserializer pairs) by name, such as ``json`` or ``avro``.

    :param register: call it once per :class:`~kafka_sidecar.Serde`; a format name already
        registered is a configuration problem naming both plugins.

    Failure policy: as for ``kafka_sidecar_register_handlers`` (a PluginError stops assembly).
    """


@hookspec
def kafka_sidecar_register_config_sections(register: Callable[[ConfigSection], None]) -> None:
    """Register a top-level section of ``chains.yml`` that belongs to the plugin.

    :param register: call it with a :class:`~kafka_sidecar.ConfigSection` (a name and a frozen
        dataclass). The section is validated like core sections (unknown keys, types, locations)
        and available to handler factories as ``resources.section(ConfigType)``.

    Failure policy: as for ``kafka_sidecar_register_handlers`` (a PluginError stops assembly); a
    section value that does not validate is a ``ConfigError`` with file:line:col, from ``check`` and
    ``run`` alike.
    """


@hookspec
def kafka_sidecar_register_services(register: Callable[[ServiceSpec[object]], None]) -> None:
    """Declare a shared service (a client, a sink, a cache) the core builds once per sidecar.

    :param register: call it with a :class:`~kafka_sidecar.ServiceSpec` (a ``StashKey`` and a
        ``factory(resources)``); a key registered twice is a configuration problem naming both plugins.

    Every declared service is built at assembly, in registration order, before any handler factory
    runs; handlers find it in ``resources.services[KEY]``. Failure policy: a factory that raises
    fails the assembly with a ``PluginError`` naming the service and the plugin.
    """


@hookspec
def kafka_sidecar_register_metrics_exporters(register: Callable[[MetricsExporterSpec], None]) -> None:
    """Register a metrics exporter type (Prometheus, InfluxDB, OpenTelemetry, a team's own) by name.

    :param register: call it with a :class:`~kafka_sidecar.MetricsExporterSpec`; a name registered
        twice is a configuration problem naming both plugins.

    The ``metrics.exporters`` list of ``chains.yml`` chooses which run; each chosen one is built once
    per sidecar with the sidecar's registry. Failure policy: an unknown name or a factory that raises
    fails the assembly; ``start`` failing fails the start; ``stop`` failing is logged and the others
    still stop; a push that fails at run time is the exporter's to count and log (never raised).
    """


@hookspec
def kafka_sidecar_register_dead_letter_sinks(register: Callable[[DeadLetterSinkSpec], None]) -> None:
    """Register a dead-letter sink by name (the ``kafka`` topic writer is registered this way too).

    :param register: call it with a :class:`~kafka_sidecar.DeadLetterSinkSpec`; a name registered
        twice is a configuration problem naming both plugins.

    A consumer's ``dead_letter_sink`` setting chooses one; it is built once per sidecar. Failure
    policy: a letter the sink does not report as stored (or a sink that raises) is not committed at
    the source; it is written again after a back-off until the sink stores it, so nothing is lost.
    """


@hookspec
def kafka_sidecar_routes(sidecar: SidecarView) -> Sequence[BaseRoute] | None:
    """Return extra Starlette routes to mount beside the chain routes (outside any chain).

    :param sidecar: a read-only view of the assembled sidecar (config, resources, routes, consumers).
    :return: routes, or None. Paths must not clash with chain routes.

    Failure policy: called once at assembly, one implementation at a time. A route whose path and
    method are already served (a chain route, a health/admin route, another plugin's) and an
    implementation that raises are configuration problems: ``kafka-sidecar check`` and ``run`` report
    every one of them at once (a ConfigError naming the plugin) and nothing starts.
    """


@hookspec
def kafka_sidecar_startup(sidecar: SidecarView) -> Awaitable[None] | None:
    """Called once when the sidecar starts: after handlers are started, before consumer sources start.

    :param sidecar: a read-only view of the assembled sidecar.
    :return: None, or an awaitable that the sidecar awaits before it reports ready.

    Failure policy: each implementation is called on its own; one that raises (or whose awaitable
    raises) is logged with its plugin's name and the others still run. Then, if any failed, start-up
    fails: what already started is stopped in reverse order (shutdown hooks included) and
    ``Sidecar.start()`` raises ``StartFailed`` naming the plugins. ``wrapper`` implementations are rejected.
    """


@hookspec
def kafka_sidecar_shutdown(sidecar: SidecarView) -> Awaitable[None] | None:
    """Called once when the sidecar stops, after traffic has drained and before handlers stop.

    :param sidecar: a read-only view of the assembled sidecar.
    :return: None, or an awaitable that the sidecar awaits.

    Failure policy: each implementation is called on its own; one that raises (or whose awaitable
    raises) is logged with its plugin's name and the others still run; handler stops, the producer
    flush and resource cleanups run after them regardless. ``wrapper`` implementations are rejected.
    """
