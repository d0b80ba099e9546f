"""From a config file to a validated plan: plugins discovered, names resolved, nothing started.

``kafka-sidecar check`` stops here; :class:`~kafka_sidecar._sidecar.Sidecar` builds on it. Every
problem (YAML, types, unknown names, cycles, misplaced terminals) is collected into one ConfigError.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pluggy

from kafka_sidecar._checks import CheckContext, RouteUse
from kafka_sidecar._config.bind import bind_problem
from kafka_sidecar._config.convert import INVALID, convert, join_path, nearest
from kafka_sidecar._config.loader import parse_config, plugins_section, read_tree
from kafka_sidecar._config.model import HandlerDecl, SidecarConfig
from kafka_sidecar._config.yaml_source import Loc, YamlList, YamlMap
from kafka_sidecar._errors import ConfigError, ConfigProblem
from kafka_sidecar._plugins import call_register_hook, make_plugin_manager
from kafka_sidecar._registry import ConfigSection, Duplicate, HandlerSpec, Provider, Registry, check_handler_spec
from kafka_sidecar._resources import (
    Registrations,
    collect_registrations,
    metrics_enabled,
    metrics_settings,
    unknown_exporter_message,
)
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
    registrations: Registrations
    """Services, metrics exporters and dead-letter sinks; ``duplicates`` holds every name two plugins
    registered (handler types, formats and sections too), kept aside for the plan to report, located."""


@dataclass(frozen=True, slots=True)
class Blueprint:
    file: str
    config: SidecarConfig
    catalog: Catalog
    handlers: Mapping[str, HandlerPlan]
    routes: tuple[RoutePlan, ...]
    consumers: tuple[ConsumerPlan, ...]
    locations: Mapping[str, Loc] = field(default_factory=dict)
    """Where each handler instance was declared (or, for a type used directly, first used)."""


def discover(
    *,
    dirs: Sequence[str | Path] = (),
    block: Iterable[str] = (),
    entry_points: bool = True,
    extra_plugins: Iterable[tuple[object, str]] = (),
) -> Catalog:
    """Load plugins and collect their registrations (no config needed)."""
    pm = make_plugin_manager(dirs=dirs, block=block, entry_points=entry_points, extra=extra_plugins)
    duplicates: list[Duplicate] = []  # reported by the plan, located, for check and run alike
    handlers: Registry[HandlerSpec[Any]] = Registry("handler type", duplicates)
    serdes = SerdeRegistry(duplicates)
    sections: Registry[ConfigSection] = Registry("config section", duplicates)

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
    registrations = collect_registrations(pm)
    registrations = replace(registrations, duplicates=(*duplicates, *registrations.duplicates))
    return Catalog(pm, handlers, serdes, sections, registrations)


def build_blueprint(
    path: str | Path,
    *,
    env: Mapping[str, str] | None = None,
    extra_plugin_dirs: Sequence[str | Path] = (),
    extra_plugins: Iterable[tuple[object, str]] = (),
) -> Blueprint:
    """Read, validate and resolve ``path``; raise one :class:`ConfigError` listing every problem."""
    file = str(path)
    config_dir = Path(path).resolve().parent
    tree, problems = read_tree(path, env)
    plugins = plugins_section(tree, file, problems)
    dirs = [config_dir / d for d in plugins.dirs] + [Path(d) for d in extra_plugin_dirs]
    catalog = discover(dirs=dirs, block=plugins.block, entry_points=plugins.entry_points, extra_plugins=extra_plugins)
    section_types = {s.spec.name: s.spec.config_type for s in catalog.sections}
    config = parse_config(tree, file, section_types, problems)
    if config is None:
        raise ConfigError(problems)
    resolver = _Resolver(file, tree, config, catalog, problems, config_dir)
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
        self,
        file: str,
        tree: Any,
        config: SidecarConfig,
        catalog: Catalog,
        problems: list[ConfigProblem],
        config_dir: Path,
    ) -> None:
        self.file = file
        self.config_dir = config_dir
        self.locations: dict[str, Loc] = {}
        self._served: dict[str, list[RouteUse]] = {}
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
        self._check_server()
        planned = Blueprint(
            self.file, self.config, self.catalog, dict(self.plans), routes, consumers, dict(self.locations)
        )
        self._check_handlers(planned)
        self._check_registrations(planned)
        return replace(planned, handlers=dict(self.plans), locations=dict(self.locations))

    def _check_server(self) -> None:
        problem = bind_problem(self.config.server, self.where("server", "host"))
        if problem is not None:
            self.problems.append(problem)

    def _check_registrations(self, planned: Blueprint) -> None:
        """What ``assemble_resources`` would refuse: any name two plugins registered (a handler type, format,
        section, service, exporter or sink), and (when metrics are exported) an exporter name nobody registered."""
        registered = self.catalog.registrations
        settings = metrics_settings(self.config)
        listed = {name: index for index, name in enumerate(settings.exporters)}
        for duplicate in registered.duplicates:
            index = listed.get(duplicate.name) if duplicate.what == "metrics exporter" else None
            users = [n for n, p in self.plans.items() if p.spec.name == duplicate.name]
            if index is not None:
                loc, path = self.where("metrics", "exporters", index), f"metrics.exporters[{index}]"
            elif duplicate.what == "handler type" and users:  # where the config uses the clashing type
                loc, path = self.locations[users[0]], users[0]
            else:
                loc, path = self.where("plugins", "dirs"), "plugins"
            self.problems.append(loc.problem(path, duplicate.message))
        if not metrics_enabled(planned, settings):
            return
        exporters = registered.metrics_exporters
        for index, name in enumerate(settings.exporters):
            path = f"metrics.exporters[{index}]"
            self.locations[path] = self.where("metrics", "exporters", index)
            if name not in exporters:
                message = unknown_exporter_message(name, exporters)
                self.problems.append(self.locations[path].problem(path, message, nearest(name, exporters.names())))

    def _check_handlers(self, planned: Blueprint) -> None:
        """Each spec's ``check`` step on every enabled instance (a disabled one never runs, so ``run`` would
        not fail on it either); a returned config replaces the built one."""
        formats = self.catalog.serdes.names()
        sinks = self.catalog.registrations.dead_letter_sinks.names()
        for name, plan in list(self.plans.items()):
            if plan.spec.check is None or not plan.enabled:
                continue
            declared = name in self.config.handlers

            def locate(field: str, _name: str = name, _declared: bool = declared) -> Loc:
                if not _declared:
                    return self.locations[_name]
                steps = [int(s) if s.isdigit() else s for s in field.split(".") if s]
                return _locate(self.tree, "handlers", _name, "config", *steps) or self.locations[_name]

            ctx = CheckContext(
                handler=name,
                formats=formats,
                dead_letter_sinks=sinks,
                routes=tuple(self._served.get(name, ())),
                config_dir=self.config_dir,
                config_path=f"handlers.{name}.config" if declared else name,
                locate=locate,
                route_loc=lambda index: self.where("paths", index, "path"),
                problems=self.problems,
                blueprint=planned,
            )
            try:
                checked = plan.spec.check(plan.config, ctx)
            except Exception as exc:
                self.problems.append(
                    self.locations[name].problem(
                        name, f"the check of handler type {plan.spec.name!r} ({plan.provider}) failed: {exc!r}"
                    )
                )
                continue
            if checked is not None and checked is not plan.config:
                self.plans[name] = replace(plan, config=checked)

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
        self.locations[name] = self.where("handlers", name)
        if config is not INVALID:
            self.plans[name] = HandlerPlan(name, registered.spec, registered.provider, config, decl.enabled)

    def _plan_implicit(self, type_name: str, loc: Loc, path: str) -> bool:
        registered = self.catalog.handlers.get(type_name)
        if registered is None:
            return False
        if type_name in self.plans:
            return True
        config = convert(None, registered.spec.config_type, path, loc, self.problems)
        self.locations.setdefault(type_name, loc)
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
            self.locations[f"paths[{index}]"] = self.where("paths", index)
            if links:
                routes.append(RoutePlan(decl.path, methods, links))
                self._served.setdefault(links[-1], []).append(RouteUse(index, decl.path, methods))
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
