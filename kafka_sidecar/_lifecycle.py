"""Calling plugins one implementation at a time, so one plugin's failure never hides another's.

Start-up and shutdown hooks are isolated: each implementation is called on its own; one that raises
(synchronously or when awaited) is logged with its plugin's name and the others still run. Plugin
routes are collected per plugin, so a clash names the plugin and what it clashes with. Handlers
built by factories are checked for the shape their place in a chain needs.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import pluggy

from kafka_sidecar._config.yaml_source import Loc
from kafka_sidecar._errors import ConfigError, ConfigProblem
from kafka_sidecar._http.admin import admin_routes, health_routes

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from kafka_sidecar._sidecar import Sidecar

log = logging.getLogger(__name__)
ALL_METHODS = "*"
_PARAM = re.compile(r"\{[^}]*\}")


def _kwargs(impl: pluggy.HookImpl, available: dict[str, Any]) -> dict[str, Any]:
    return {arg: available[arg] for arg in impl.argnames if arg in available}


async def call_lifecycle_hook(
    pm: pluggy.PluginManager,
    hook_name: str,
    sidecar: object,
    *,
    run: Callable[[str, Awaitable[object]], Awaitable[bool]] | None = None,
) -> dict[str, str]:
    """Call every implementation of ``hook_name`` in pluggy's order; return the failed plugins and why.

    ``sidecar`` is what the hook's ``sidecar`` argument receives. ``run(step, awaitable)`` awaits an
    implementation's awaitable (a shutdown budget: it logs and returns False on failure or overrun).
    A failure is one ERROR line naming the plugin and the exception; its traceback is logged at DEBUG."""
    failed: dict[str, str] = {}
    for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
        step = f"plugin {impl.plugin_name!r}: {hook_name}"
        try:
            result = impl.function(**_kwargs(impl, {"sidecar": sidecar}))
            if inspect.isawaitable(result):
                if run is None:
                    await result
                elif not await run(step, result):
                    failed[impl.plugin_name] = "see the log"  # run logged it
        except Exception as exc:
            log.error("%s failed: %r", step, exc, exc_info=log.isEnabledFor(logging.DEBUG))
            failed[impl.plugin_name] = repr(exc)
    return failed


def shape_problem(instance: object, role: str) -> str | None:
    """What is wrong with a built handler for its ``role`` (``middleware`` or ``terminal``), or None."""
    if not callable(instance):
        return f"{type(instance).__name__} {instance!r}, which is not callable"
    try:
        signature = inspect.signature(instance)
    except (TypeError, ValueError):
        return None  # a builtin without a signature: nothing to check
    wanted = ("exchange", "call_next") if role == "middleware" else ("exchange",)
    try:
        signature.bind(*wanted)
    except TypeError:
        return f"a callable with signature {signature}, but a {role} is called as handler({', '.join(wanted)})"
    return None


def _shape(path: str) -> str:
    """``/producers/{topic}`` and ``/producers/{name}`` match the same requests: compare them as equal."""
    return _PARAM.sub("{}", path.rstrip("/") or "/")


def _methods(route: object) -> set[str]:
    methods = getattr(route, "methods", None)
    if not methods:
        return {ALL_METHODS}  # a Mount or a route for every method
    return {m for m in methods if m != "HEAD"} or set(methods)


def collect_plugin_routes(sidecar: Sidecar, seen_by_plugins: object = None) -> tuple[BaseRoute, ...]:
    """Every plugin's extra routes; a path+method already served (chain, health, admin, another plugin)
    is a :class:`ConfigError` naming both, all clashes at once. Plugins get ``seen_by_plugins`` (default:
    the sidecar itself) as their ``sidecar`` argument."""
    blueprint = sidecar.blueprint
    taken: dict[tuple[str, str], str] = {}
    for route in [*health_routes(sidecar), *admin_routes(sidecar)]:
        for method in _methods(route):
            taken[(_shape(getattr(route, "path", "")), method)] = "the sidecar's own route"
    for index, decl in enumerate(blueprint.config.paths):
        for method in decl.all_methods():
            taken.setdefault((_shape(decl.path), method), f"paths[{index}]")
    problems: list[ConfigProblem] = []
    routes: list[BaseRoute] = []
    hook = sidecar.pm.hook.kafka_sidecar_routes
    fallback = Loc(blueprint.file, 1, 1)
    for impl in reversed(hook.get_hookimpls()):
        plugin = impl.plugin_name
        try:
            argument = sidecar if seen_by_plugins is None else seen_by_plugins
            offered = cast(Sequence["BaseRoute"], impl.function(**_kwargs(impl, {"sidecar": argument})) or ())
        except Exception as exc:
            problems.append(fallback.problem("plugins", f"plugin {plugin!r} failed in kafka_sidecar_routes: {exc!r}"))
            continue
        for route in offered:
            path = str(getattr(route, "path", ""))
            shape = _shape(path)
            methods = _methods(route)
            clashes = sorted(
                {
                    owner
                    for (taken_path, taken_method), owner in taken.items()
                    if taken_path == _shape(path)
                    and (ALL_METHODS in (taken_method, *methods) or taken_method in methods)
                }
            )
            if clashes:
                where = blueprint.locations.get(clashes[0], fallback)
                shown = ", ".join(sorted(methods))
                problems.append(
                    where.problem(
                        clashes[0] if clashes[0].startswith("paths[") else "plugins",
                        f"plugin {plugin!r} mounts {shown} {path}, already served by {' and '.join(clashes)}",
                    )
                )
                continue
            for method in methods:
                taken[(shape, method)] = f"plugin {plugin!r}"
            routes.append(route)
    if problems:
        raise ConfigError(problems)
    return tuple(routes)
