"""From a config file to a validated plan: plugins discovered, names resolved, nothing started.

``kafka-sidecar check`` stops here; :class:`~kafka_sidecar._sidecar.Sidecar` builds on it. Every
problem (YAML, types, unknown names, cycles, misplaced terminals) is collected into one ConfigError.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy

from kafka_sidecar._config.convert import INVALID, convert, join_path, nearest
from kafka_sidecar._config.loader import parse_config, plugins_section, read_tree
from kafka_sidecar._config.model import HandlerDecl, SidecarConfig
from kafka_sidecar._config.yaml_source import Loc, YamlList, YamlMap
from kafka_sidecar._errors import ConfigError, ConfigProblem
from kafka_sidecar._plugins import call_register_hook, make_plugin_manager
from kafka_sidecar._registry import ConfigSection, HandlerSpec, Provider, Registry, check_handler_spec
from kafka_sidecar._serdes.base import SerdeRegistry


@dataclass(frozen=True, slots=True)
class HandlerPlan:
    """One handler instance: its name in chains.yml, its type, and its validated config."""

    name: str
    spec: HandlerSpec[Any]
    provider: Provider
    config: object
    enabled: bool


@dataclass(frozen=True, slots=True)
class RoutePlan:
    path: str
    methods: tuple[str, ...]
    links: tuple[str, ...]
    """Enabled handler instance names, outermost first; the last is the terminal."""


@dataclass(frozen=True, slots=True)
class ConsumerPlan:
    name: str
    links: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Catalog:
    """Everything plugins registered, with who registered it."""

    pm: pluggy.PluginManager
    handlers: Registry[HandlerSpec[Any]]
    serdes: SerdeRegistry
    sections: Registry[ConfigSection]


@dataclass(frozen=True, slots=True)
class Blueprint:
    file: str
    config: SidecarConfig
    catalog: Catalog
    handlers: Mapping[str, HandlerPlan]
    routes: tuple[RoutePlan, ...]
    consumers: tuple[ConsumerPlan, ...]


def discover(
    *,
    dirs: Sequence[str | Path] = (),
    block: Iterable[str] = (),
    entry_points: bool = True,
    extra_plugins: Iterable[tuple[object, str]] = (),
) -> Catalog:
    """Load plugins and collect their registrations (no config needed)."""
    pm = make_plugin_manager(dirs=dirs, block=block, entry_points=entry_points, extra=extra_plugins)
    handlers: Registry[HandlerSpec[Any]] = Registry("handler type")
    serdes = SerdeRegistry()
    sections: Registry[ConfigSection] = Registry("config section")

    def add_handler(item: object, provider: Provider) -> None:
        spec = check_handler_spec(item, provider)
        handlers.add(spec.name, spec, provider)

    def add_section(item: object, provider: Provider) -> None:
        if not isinstance(item, ConfigSection):
            raise ConfigError([ConfigProblem("<plugins>", 1, 1, provider.plugin, f"{item!r} is not a ConfigSection")])
        sections.add(item.name, item, provider)

    call_register_hook(pm, "kafka_sidecar_register_handlers", add_handler)
    call_register_hook(pm, "kafka_sidecar_register_serdes", serdes.add)
    call_register_hook(pm, "kafka_sidecar_register_config_sections", add_section)
    return Catalog(pm, handlers, serdes, sections)


def build_blueprint(
    path: str | Path,
    *,
    env: Mapping[str, str] | None = None,
    extra_plugin_dirs: Sequence[str | Path] = (),
    extra_plugins: Iterable[tuple[object, str]] = (),
) -> Blueprint:
    """Read, validate and resolve ``path``; raise one :class:`ConfigError` listing every problem."""
    file = str(path)
    tree, problems = read_tree(path, env)
    plugins = plugins_section(tree, file, problems)
    base = Path(path).resolve().parent
    dirs = [base / d for d in plugins.dirs] + [Path(d) for d in extra_plugin_dirs]
    catalog = discover(dirs=dirs, block=plugins.block, entry_points=plugins.entry_points, extra_plugins=extra_plugins)
    section_types = {s.spec.name: s.spec.config_type for s in catalog.sections}
    config = parse_config(tree, file, section_types, problems)
    if config is None:
        raise ConfigError(problems)
    resolver = _Resolver(file, tree, config, catalog, problems)
    blueprint = resolver.resolve()
    if problems:
        raise ConfigError(problems)
    return blueprint


def _locate(tree: Any, *steps: str | int) -> Loc | None:
    """Where ``tree[steps[0]][steps[1]]...`` stood in the file, as deep as the path exists."""
    node, loc = tree, None
    for step in steps:
        if isinstance(node, YamlMap) and isinstance(step, str) and step in node:
            loc, node = node.loc_of(step), node[step]
            continue
        if isinstance(node, YamlList) and isinstance(step, int) and step < len(node):
            loc, node = node.loc_of(step), node[step]
            continue
        break
    return loc


def _dotted(steps: Sequence[str | int]) -> str:
    path = ""
    for step in steps:
        path = join_path(path, step)
    return path


class _Resolver:
    def __init__(
        self, file: str, tree: Any, config: SidecarConfig, catalog: Catalog, problems: list[ConfigProblem]
    ) -> None:
        self.file = file
        self.tree = tree
        self.config = config
        self.catalog = catalog
        self.problems = problems
        self.plans: dict[str, HandlerPlan] = {}
        self._flat_chains: dict[str, tuple[str, ...]] = {}

    def where(self, *steps: str | int) -> Loc:
        return _locate(self.tree, *steps) or Loc(self.file, 1, 1)

    def resolve(self) -> Blueprint:
        for name, decl in self.config.handlers.items():
            self._plan_declared(name, decl)
        for name in self.config.chains:
            self._flatten_chain(name, ())
        routes = self._routes()
        consumers = self._consumers()
        blueprint = Blueprint(self.file, self.config, self.catalog, dict(self.plans), routes, consumers)
        self._cross_check(blueprint)
        return blueprint

    def _cross_check(self, blueprint: Blueprint) -> None:
        """Each handler type's own checks against the whole config (e.g. a processor's outputs are consumed)."""
        sources = {c.name: self.plans[c.links[-1]].config for c in blueprint.consumers}
        for name, plan in self.plans.items():
            if plan.spec.check is None or not plan.enabled:
                continue
            for steps, message in plan.spec.check(name, plan.config, sources):
                self.problems.append(self.where(*steps).problem(_dotted(steps), message))

    def _plan_declared(self, name: str, decl: HandlerDecl) -> None:
        registered = self.catalog.handlers.get(decl.use)
        if registered is None:
            self.problems.append(
                self.where("handlers", name, "use").problem(
                    f"handlers.{name}.use",
                    f"no handler type {decl.use!r} is registered (see: kafka-sidecar handlers)",
                    nearest(decl.use, self.catalog.handlers.names()),
                )
            )
            return
        loc = self.where("handlers", name, "config") if decl.config is not None else self.where("handlers", name)
        config = convert(decl.config, registered.spec.config_type, f"handlers.{name}.config", loc, self.problems)
        if config is not INVALID:
            self.plans[name] = HandlerPlan(name, registered.spec, registered.provider, config, decl.enabled)

    def _plan_implicit(self, type_name: str, loc: Loc, path: str) -> bool:
        registered = self.catalog.handlers.get(type_name)
        if registered is None:
            return False
        config = convert(None, registered.spec.config_type, path, loc, self.problems)
        if config is not INVALID:
            self.plans[type_name] = HandlerPlan(type_name, registered.spec, registered.provider, config, True)
        return True

    def _flatten_chain(self, name: str, stack: tuple[str, ...]) -> tuple[str, ...]:
        if name in self._flat_chains:
            return self._flat_chains[name]
        if name in stack:
            cycle = " -> ".join((*stack, name))
            self.problems.append(self.where("chains", name).problem(f"chains.{name}", f"chain cycle: {cycle}"))
            return ()
        flat = self._flatten(self.config.chains[name], ("chains", name), (*stack, name))
        self._flat_chains[name] = flat
        return flat

    def _flatten(self, names: Sequence[str], where: tuple[str | int, ...], stack: tuple[str, ...]) -> tuple[str, ...]:
        flat: list[str] = []
        for index, name in enumerate(names):
            path = join_path(_dotted(where), index)
            if name in self.config.chains:
                flat.extend(self._flatten_chain(name, stack))
            elif name in self.config.handlers or self._plan_implicit(name, self.where(*where, index), path):
                flat.append(name)
            else:
                known = [*self.config.chains, *self.config.handlers, *self.catalog.handlers.names()]
                self.problems.append(
                    self.where(*where, index).problem(
                        path, f"{name!r} is neither a chain nor a handler", nearest(name, known)
                    )
                )
        return tuple(flat)

    def _enabled_links(self, names: Sequence[str], where: tuple[str | int, ...], terminal_kind: str) -> tuple[str, ...]:
        links = tuple(n for n in names if n in self.plans and self.plans[n].enabled)
        path = _dotted(where)
        loc = self.where(*where)
        if not links:
            if any(n not in self.plans for n in names) or not names:
                return ()  # the unknown names were reported already
            self.problems.append(loc.problem(path, f"has no enabled {terminal_kind} handler at the end"))
            return ()
        *middle, last = links
        if self.plans[last].spec.kind != terminal_kind:
            self.problems.append(
                loc.problem(
                    path,
                    f"must end with a {terminal_kind} handler, but {last!r} is a {self.plans[last].spec.kind}",
                )
            )
        for name in middle:
            if self.plans[name].spec.kind != "middleware":
                self.problems.append(
                    loc.problem(path, f"{name!r} is a {self.plans[name].spec.kind} handler; only the last may be one")
                )
        if len(set(links)) != len(links):
            self.problems.append(loc.problem(path, "lists the same handler twice"))
        return links

    def _routes(self) -> tuple[RoutePlan, ...]:
        routes: list[RoutePlan] = []
        seen: dict[tuple[str, str], int] = {}
        for index, decl in enumerate(self.config.paths):
            where: tuple[str | int, ...] = ("paths", index, "exec")
            methods = decl.all_methods()
            if not methods:
                self.problems.append(
                    self.where("paths", index).problem(f"paths[{index}]", "needs 'method' or 'methods'")
                )
            if not decl.path.startswith("/"):
                self.problems.append(
                    self.where("paths", index, "path").problem(f"paths[{index}].path", "must start with '/'")
                )
            for method in methods:
                first = seen.setdefault((decl.path, method), index)
                if first != index:
                    self.problems.append(
                        self.where("paths", index).problem(
                            f"paths[{index}]", f"{method} {decl.path} is already served by paths[{first}]"
                        )
                    )
            links = self._enabled_links(self._flatten(decl.exec, where, ()), where, "terminal")
            if links:
                routes.append(RoutePlan(decl.path, methods, links))
        return tuple(routes)

    def _consumers(self) -> tuple[ConsumerPlan, ...]:
        consumers: list[ConsumerPlan] = []
        for name, decl in self.config.consumers.items():
            if not decl.enabled:
                continue
            where: tuple[str | int, ...] = ("consumers", name, "exec")
            links = self._enabled_links(self._flatten(decl.exec, where, ()), where, "source")
            if links:
                consumers.append(ConsumerPlan(name, links))
        return tuple(consumers)
