"""What plugins register: handler types and config sections, each remembered with its provider."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

from kafka_sidecar._errors import PluginError

if TYPE_CHECKING:
    from kafka_sidecar._checks import CheckContext
    from kafka_sidecar._resources import Resources

C = TypeVar("C")
HandlerKind = Literal["middleware", "terminal", "source"]


@dataclass(frozen=True, slots=True)
class NoConfig:
    """The config type of a handler that takes no settings."""


@dataclass(frozen=True, slots=True)
class HandlerSpec(Generic[C]):
    """A handler type a plugin offers.

    ``kind``: ``middleware`` is ``async (exchange, call_next) -> Reply``; ``terminal`` is
    ``async (exchange) -> Reply`` and ends an HTTP path; ``source`` ends a consumer pipeline: it is a
    terminal that also feeds consumed batches into its compiled chain (see ``SourceTerminal``).
    The factory is called once per declared instance, at assembly, with the validated config.
    """

    name: str
    factory: Callable[[C, Resources], object]
    config_type: type[C] = NoConfig  # type: ignore[assignment]
    kind: HandlerKind = "middleware"
    description: str = ""
    describe: Callable[[str, str], Mapping[str, object] | None] | None = None
    """Terminals: ``describe(path, method)`` returns the OpenAPI operation object for a route they serve."""
    check: Callable[[C, CheckContext], C | None] | None = None
    """Plan-time semantic validation of one instance's config (``kafka-sidecar check`` runs it as ``run``
    does): report problems through the :class:`~kafka_sidecar.CheckContext`; return a normalised config
    (paths resolved) or None to keep it. It must not connect anywhere."""


@dataclass(frozen=True, slots=True)
class ConfigSection:
    """A top-level ``chains.yml`` section owned by a plugin."""

    name: str
    config_type: type[object]
    description: str = ""


@dataclass(frozen=True, slots=True)
class Provider:
    """Who registered something: the plugin name and, when known, its distribution or file."""

    plugin: str
    origin: str

    def __str__(self) -> str:
        return f"{self.plugin} ({self.origin})"


@dataclass(frozen=True, slots=True)
class Registered(Generic[C]):
    spec: C
    provider: Provider


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A name two plugins registered: ``what`` ("handler type", "record format", "service", ...), the name,
    and the message naming both registrants (plugin and distribution or file)."""

    what: str
    name: str
    message: str


class Registry(Generic[T]):
    """Name -> registered thing; a second registration of a name is a :class:`PluginError`, or, with
    ``duplicates``, noted there (the first registration is kept) for the plan to report, located."""

    def __init__(self, what: str, duplicates: list[Duplicate] | None = None) -> None:
        self._what = what
        self._items: dict[str, Registered[T]] = {}
        self._duplicates = duplicates

    def add(self, name: str, item: T, provider: Provider) -> None:
        if name in self._items:
            if self._duplicates is None:
                raise PluginError(self.duplicate_message(name, provider))
            self._duplicates.append(Duplicate(self._what, name, self.duplicate_message(name, provider)))
            return
        self._items[name] = Registered(item, provider)

    def duplicate_message(self, name: str, provider: Provider) -> str:
        """What a second registration of ``name`` (by ``provider``) is reported as."""
        first = self._items[name].provider
        return f"{self._what} {name!r} is registered twice: by {first} and by {provider}"

    def get(self, name: str) -> Registered[T] | None:
        return self._items.get(name)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __iter__(self) -> Iterator[Registered[T]]:
        return iter(self._items[name] for name in self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._items


def check_handler_spec(spec: object, provider: Provider) -> HandlerSpec[object]:
    """Validate a registration; errors name the plugin, the hook and the offending definition."""
    where = f"plugin {provider} in kafka_sidecar_register_handlers"
    if not isinstance(spec, HandlerSpec):
        raise PluginError(f"{where}: register() takes a HandlerSpec, got {spec!r}")
    if not spec.name or not spec.name.replace("-", "_").replace(".", "_").isidentifier():
        raise PluginError(f"{where}: handler name {spec.name!r} must be a non-empty identifier")
    if not callable(spec.factory):
        raise PluginError(f"{where}: handler {spec.name!r} has a factory that is not callable")
    config_type = spec.config_type
    if not (isinstance(config_type, type) and dataclasses.is_dataclass(config_type)):
        raise PluginError(f"{where}: handler {spec.name!r} config_type must be a dataclass, got {config_type!r}")
    if spec.check is not None and not callable(spec.check):
        raise PluginError(f"{where}: handler {spec.name!r} has a check that is not callable")
    if spec.kind not in ("middleware", "terminal", "source"):
        raise PluginError(f"{where}: handler {spec.name!r} has unknown kind {spec.kind!r}")
    return spec
