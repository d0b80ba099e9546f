"""Long-lived things handlers share: settings, the shared producer, record formats, metrics,
dead-letter sinks and plugin-declared services. Built once per sidecar by :func:`assemble_resources`.

To add a shared core service, give :class:`Resources` one more keyword argument with a default and
build it in :func:`assemble_resources`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from kafka_sidecar._config.model import SidecarConfig
from kafka_sidecar._config.yaml_source import Loc
from kafka_sidecar._deadletter import DeadLetterSinks, DeadLetterSinkSpec, DeadLetterWriter
from kafka_sidecar._errors import ConfigError, PluginError
from kafka_sidecar._events import EventBus
from kafka_sidecar._idempotency import IdempotencyCache
from kafka_sidecar._kafka.producer import ProducerService
from kafka_sidecar._kafka.rdkafka import producer_service
from kafka_sidecar._metrics.registry import MetricsRegistry
from kafka_sidecar._metrics.service import Metrics, MetricsExporterSpec, MetricsSettings
from kafka_sidecar._plugins import call_register_hook
from kafka_sidecar._registry import Duplicate, Provider, Registered, Registry
from kafka_sidecar._serdes.base import SerdeRegistry
from kafka_sidecar._services import ServiceSpec
from kafka_sidecar._stash import Stash
from kafka_sidecar._view import RouteInfo, route_infos

if TYPE_CHECKING:
    from kafka_sidecar._blueprint import Blueprint

T = TypeVar("T")
log = logging.getLogger(__name__)
METRICS_HANDLER_TYPE = "metrics"
"""Chains running a handler of this type turn metrics export on when ``metrics.enabled`` is unset."""


class Resources:
    """Handed to every handler factory. One per sidecar; no globals."""

    def __init__(
        self,
        config: SidecarConfig,
        serdes: SerdeRegistry,
        producer: ProducerService,
        internal_producer: ProducerService | None = None,
        *,
        metrics: Metrics | None = None,
        routes: tuple[RouteInfo, ...] = (),
        dead_letter_sinks: Sequence[DeadLetterSinkSpec] = (),
    ) -> None:
        self.config = config
        self.serdes = serdes
        self.producer = producer
        """The business producer: only records callers asked for."""
        self.internal_producer = internal_producer or producer_service(
            config.kafka, role="internal-producer", patient=True
        )
        """The sidecar's own traffic (audit, dead letters), with its own producer id, so a problem there
        (a missing audit topic, say) never breaks the business producer's sequence state."""
        self.events = EventBus()
        """Out-of-chain events (dead letters, admin actions) for audit and metrics to subscribe to."""
        self.dead_letters = DeadLetterWriter(self.internal_producer, self.events)
        """The Kafka dead-letter writer (the ``kafka`` sink, on the internal producer), also used by the
        active consumer's DLQ route."""
        self.dead_letter_sinks = DeadLetterSinks(self, dead_letter_sinks)
        """Registered dead-letter sinks by name (``dead_letter_sinks.get("kafka")``)."""
        self.metrics = metrics if metrics is not None else Metrics()
        """The sidecar's metrics registry and exporters (``metrics.registry``, ``metrics.enabled``)."""
        self.routes = routes
        """The chain routes of chains.yml, known before any handler is built (OpenAPI, validation)."""
        settings = config.kafka.producer
        self.idempotency = IdempotencyCache(settings.idempotency_window_s, settings.idempotency_max_keys)
        """Outcomes of produce requests by ``Idempotency-Key``, shared by every producer route."""
        self.services = Stash()
        """Services plugins declared (``kafka_sidecar_register_services``), by StashKey."""
        self._cleanups: list[Callable[[], Awaitable[None]]] = []

    def section(self, config_type: type[T]) -> T:
        """The validated config of a plugin-registered section, by its dataclass type."""
        for value in self.config.sections.values():
            if type(value) is config_type:
                return value
        raise LookupError(f"no config section of type {config_type.__name__} is registered")

    def on_close(self, cleanup: Callable[[], Awaitable[None]]) -> None:
        """Run ``cleanup`` when the sidecar stops (last registered runs first)."""
        self._cleanups.append(cleanup)

    async def close(self) -> None:
        while self._cleanups:
            cleanup = self._cleanups.pop()
            try:
                await cleanup()
            except Exception:
                log.exception("a resource cleanup failed")


@dataclass(frozen=True, slots=True)
class Registrations:
    """What plugins registered for the shared resources, collected once at plan time (``discover``).

    A name registered twice keeps its first registration and is listed in ``duplicates``, so the plan
    reports it as a located config problem for ``check`` and ``run`` alike."""

    services: Registry[ServiceSpec[Any]]
    metrics_exporters: Registry[MetricsExporterSpec]
    dead_letter_sinks: Registry[DeadLetterSinkSpec]
    duplicates: tuple[Duplicate, ...] = ()


def _collect(
    pm: pluggy.PluginManager,
    hook_name: str,
    what: str,
    item_type: type[Any],
    duplicates: list[Duplicate],
) -> Registry[Any]:
    """Every registration of ``hook_name``; a second one of a name goes to ``duplicates``."""
    found: Registry[Any] = Registry(what, duplicates)

    def accept(item: object, provider: Provider) -> None:
        if not isinstance(item, item_type):
            raise PluginError(
                f"plugin {provider} in {hook_name}: register() takes a {item_type.__name__}, got {item!r}"
            )
        found.add(item.key.name if isinstance(item, ServiceSpec) else item.name, item, provider)

    call_register_hook(pm, hook_name, accept)
    return found


def collect_registrations(pm: pluggy.PluginManager) -> Registrations:
    """Services, metrics exporters and dead-letter sinks, with duplicates collected (not raised)."""
    duplicates: list[Duplicate] = []
    services = _collect(pm, "kafka_sidecar_register_services", "service", ServiceSpec, duplicates)
    exporters = _collect(
        pm, "kafka_sidecar_register_metrics_exporters", "metrics exporter", MetricsExporterSpec, duplicates
    )
    sinks = _collect(pm, "kafka_sidecar_register_dead_letter_sinks", "dead-letter sink", DeadLetterSinkSpec, duplicates)
    return Registrations(services, exporters, sinks, tuple(duplicates))


def unknown_exporter_message(name: str, exporters: Registry[MetricsExporterSpec]) -> str:
    known = ", ".join(exporters.names()) or "none"
    return f"no metrics exporter {name!r} (registered: {known})"


def metrics_enabled(blueprint: Blueprint, settings: MetricsSettings) -> bool:
    if settings.enabled is not None:
        return settings.enabled
    used = {name for route in blueprint.routes for name in route.links}
    used.update(name for consumer in blueprint.consumers for name in consumer.links)
    return any(blueprint.handlers[name].spec.name == METRICS_HANDLER_TYPE for name in used)


def metrics_settings(config: SidecarConfig) -> MetricsSettings:
    """The ``metrics`` section (its defaults when the file has none)."""
    found = next((s for s in config.sections.values() if isinstance(s, MetricsSettings)), None)
    return found if found is not None else MetricsSettings()


def assemble_resources(blueprint: Blueprint) -> Resources:
    """Build the resources of one sidecar: metrics (with the chosen exporters), sinks and services."""
    config = blueprint.config
    settings = metrics_settings(config)
    registrations = blueprint.catalog.registrations
    if registrations.duplicates:  # the plan reports these, located; a hand-made blueprint still fails
        raise PluginError(registrations.duplicates[0].message)
    exporters = registrations.metrics_exporters
    sinks = registrations.dead_letter_sinks
    services = registrations.services
    metrics = Metrics(MetricsRegistry(settings.max_series), enabled=metrics_enabled(blueprint, settings))
    resources = Resources(
        config,
        blueprint.catalog.serdes,
        producer_service(config.kafka),
        metrics=metrics,
        routes=route_infos(blueprint),
        dead_letter_sinks=[registered.spec for registered in sinks],
    )
    for registered in services:
        spec: ServiceSpec[object] = registered.spec
        try:
            resources.services[spec.key] = spec.factory(resources)
        except ConfigError:
            raise
        except Exception as exc:
            raise PluginError(f"service {spec.key.name!r} from {registered.provider} failed to build: {exc!r}") from exc
    if metrics.enabled:
        for index, name in enumerate(settings.exporters):
            registered_exporter: Registered[MetricsExporterSpec] | None = exporters.get(name)
            if registered_exporter is None:  # the plan reports this; kept for a hand-made blueprint
                where = f"metrics.exporters[{index}]"
                loc = blueprint.locations.get(where) or Loc(blueprint.file, 1, 1)
                raise ConfigError([loc.problem(where, unknown_exporter_message(name, exporters))])
            exporter_spec: MetricsExporterSpec = registered_exporter.spec
            try:
                exporter = exporter_spec.factory(metrics.registry, resources)
            except Exception as exc:
                raise PluginError(
                    f"metrics exporter {name!r} from {registered_exporter.provider} failed to build: {exc}"
                ) from exc
            metrics.add_exporter(name, exporter)
    return resources
