"""What hooks see of the assembled sidecar: a narrow, read-only view instead of the whole object.

``kafka_sidecar_routes``, ``kafka_sidecar_startup`` and ``kafka_sidecar_shutdown`` receive a
:class:`SidecarView`. Plugins read the validated config, the shared resources, which handlers each
route and consumer runs, and the handler instances of a type they own; they cannot reach the plugin
manager, the blueprint or the lifecycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from kafka_sidecar._chain import LinkInfo
from kafka_sidecar._config.model import SidecarConfig

if TYPE_CHECKING:
    from kafka_sidecar._blueprint import Blueprint
    from kafka_sidecar._resources import Resources
    from kafka_sidecar._sidecar import Sidecar

T = TypeVar("T")
Describe = Callable[[str, str], Mapping[str, object] | None]


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """One chain route of ``chains.yml``: its template, methods and handlers (outermost first)."""

    path: str
    methods: tuple[str, ...]
    links: tuple[LinkInfo, ...]
    terminal_description: str = ""
    describe: Describe | None = None
    """The terminal's ``HandlerSpec.describe``: the OpenAPI operation of ``(path, method)``, if it has one."""

    @property
    def terminal(self) -> LinkInfo:
        return self.links[-1]

    def uses(self, type_name: str) -> bool:
        """True when a handler of type ``type_name`` runs on this route."""
        return any(link.type_name == type_name for link in self.links)


@dataclass(frozen=True, slots=True)
class ConsumerInfo:
    """One consumer pipeline: its name, handlers (the source last) and the source instance."""

    name: str
    links: tuple[LinkInfo, ...]
    source: object

    def uses(self, type_name: str) -> bool:
        return any(link.type_name == type_name for link in self.links)


@dataclass(frozen=True, slots=True)
class SidecarView:
    """The assembled sidecar as hooks see it (read-only)."""

    config: SidecarConfig
    resources: Resources
    routes: tuple[RouteInfo, ...]
    consumers: tuple[ConsumerInfo, ...]
    _instances: Mapping[str, object]

    def handlers(self, handler_type: type[T]) -> tuple[T, ...]:
        """Every handler instance of ``handler_type`` (a plugin finds its own handlers this way)."""
        return tuple(i for i in self._instances.values() if isinstance(i, handler_type))


def route_infos(blueprint: Blueprint) -> tuple[RouteInfo, ...]:
    """The chain routes of a blueprint, known before any handler is built."""
    infos = []
    for route in blueprint.routes:
        plans = [blueprint.handlers[name] for name in route.links]
        terminal = plans[-1]
        infos.append(
            RouteInfo(
                route.path,
                route.methods,
                tuple(LinkInfo(plan.name, plan.spec.name) for plan in plans),
                terminal.spec.description,
                terminal.spec.describe,
            )
        )
    return tuple(infos)


def sidecar_view(sidecar: Sidecar) -> SidecarView:
    consumers = tuple(ConsumerInfo(c.plan.name, tuple(c.chain.links), c.source) for c in sidecar.consumers)
    return SidecarView(sidecar.config, sidecar.resources, sidecar.resources.routes, consumers, dict(sidecar.instances))
