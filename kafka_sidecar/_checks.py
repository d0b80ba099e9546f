"""The plan-time ``check`` step of a handler type: semantic validation of a built config.

A :class:`~kafka_sidecar.HandlerSpec` may name ``check(config, ctx)``. The blueprint calls it once per
declared instance, after the config was converted and the chains were resolved, for
``kafka-sidecar check`` and ``kafka-sidecar run`` alike. It reports problems through ``ctx`` (each is
located at the offending YAML node) and may return a normalised config (for example with relative
file paths resolved against the config file's folder), which is what the factory then receives.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kafka_sidecar._config.convert import join_path, nearest
from kafka_sidecar._config.yaml_source import Loc
from kafka_sidecar._errors import ConfigProblem
from kafka_sidecar._extras import FORMAT_EXTRAS, has_modules, install_hint

if TYPE_CHECKING:
    from kafka_sidecar._blueprint import Blueprint


@dataclass(frozen=True, slots=True)
class RouteUse:
    """One ``paths`` entry that ends in the checked handler: ``paths[index]``, its path and methods."""

    index: int
    path: str
    methods: tuple[str, ...]


class CheckContext:
    """What a handler's ``check`` step may know and where its problems go."""

    def __init__(
        self,
        *,
        handler: str,
        formats: Collection[str],
        dead_letter_sinks: Collection[str],
        routes: tuple[RouteUse, ...],
        config_dir: Path,
        config_path: str,
        locate: Callable[[str], Loc],
        route_loc: Callable[[int], Loc],
        problems: list[ConfigProblem],
        blueprint: Blueprint,
    ) -> None:
        self.handler = handler
        """The instance name in ``chains.yml`` (a declared handler, or the type name used directly)."""
        self.formats = frozenset(formats)
        """Names of every registered record format (serde)."""
        self.dead_letter_sinks = frozenset(dead_letter_sinks)
        """Names of every registered dead-letter sink."""
        self.routes = routes
        """Routes this instance terminates (empty for middleware and sources)."""
        self.config_dir = config_dir
        """The folder of the config file: relative paths in a handler's config are resolved against it."""
        self.blueprint = blueprint
        """The whole plan (handlers with their configs, routes, consumers), for checks across handlers,
        such as "a processor's output topic has a consumer". Configs in it are not yet checked."""
        self._config_path = config_path
        self._locate = locate
        self._route_loc = route_loc
        self._problems = problems

    def resolve(self, path: str) -> Path:
        """``path`` as an absolute path; a relative one is taken from the config file's folder."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else (self.config_dir / candidate).resolve()

    def problem(self, field: str, message: str, suggestion: str | None = None) -> None:
        """Report a problem with ``field``, dotted and relative to the handler's config (``topic_schemas.orders``,
        ``public_key_files.0`` for a list item); empty for the config as a whole."""
        path = self._config_path
        for step in (s for s in field.split(".") if s):
            path = join_path(path, int(step) if step.isdigit() else step)
        self._problems.append(self._locate(field).problem(path, message, suggestion))

    def route_problem(self, route: RouteUse, message: str, suggestion: str | None = None) -> None:
        """Report that ``route`` is one this handler cannot serve (located at ``paths[i].path``)."""
        where = self._route_loc(route.index)
        self._problems.append(where.problem(f"paths[{route.index}].path", message, suggestion))

    def require_extra(self, extra: str, *modules: str) -> bool:
        """Report (on the handler's config) that ``modules`` need ``kafka-sidecar[extra]``; True if present."""
        if has_modules(*modules):
            return True
        needed = ", ".join(modules)
        self.problem("", f"handler {self.handler!r} needs the optional dependency {needed}: {install_hint(extra)}")
        return False

    def check_format(self, field: str, name: str) -> None:
        """Report ``field`` when the record format ``name`` is not registered."""
        if name.lower() not in self.formats:
            extra = FORMAT_EXTRAS.get(name.lower())
            if extra is not None:
                self.problem(field, f"record format {name!r} needs an optional dependency: {install_hint(extra)}")
                return
            known = ", ".join(sorted(self.formats))
            message = f"no record format {name!r} is registered (known: {known})"
            self.problem(field, message, nearest(name, self.formats))
