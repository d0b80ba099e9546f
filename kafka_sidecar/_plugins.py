"""Building the plugin manager: entry points, a deployment's plugins folder, and a block list.

There is no module-level manager: :func:`make_plugin_manager` builds one per sidecar (or per test).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from kafka_sidecar import _builtin
from kafka_sidecar import _hookspecs as hookspecs
from kafka_sidecar._errors import PluginError
from kafka_sidecar._registry import Provider

ENTRY_POINT_GROUP = "kafka_sidecar"
LOCAL_PLUGIN_PREFIX = "kafka_sidecar_local_plugins"


def make_plugin_manager(
    *,
    dirs: Sequence[str | Path] = (),
    block: Iterable[str] = (),
    entry_points: bool = True,
    extra: Iterable[tuple[object, str]] = (),
) -> pluggy.PluginManager:
    """A fresh manager with every discovered plugin registered and validated.

    :param dirs: folders whose every ``*.py`` file is loaded as a plugin named after the file.
    :param block: plugin names (entry point names or file stems) never to load.
    :param entry_points: load plugins from the ``kafka_sidecar`` entry point group.
    :param extra: ``(plugin object, name)`` pairs registered directly (embedding, tests).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in block:
        pm.set_blocked(name)
    _register(pm, _builtin, _builtin.PLUGIN_NAME)  # the core's own plugin (metrics section, the kafka DLQ sink)
    if entry_points:
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {getattr(exc, 'plugin', '?')!r} (entry point): {exc}") from exc
        except Exception as exc:
            raise PluginError(f"loading entry-point plugins failed: {exc!r}") from exc
    for folder in dirs:
        for module, name in _load_folder(Path(folder)):
            _register(pm, module, name)
    for plugin, name in extra:
        _register(pm, plugin, name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {getattr(exc, 'plugin', '?')!r}: {exc}") from exc
    _reject_wrappers(pm)
    return pm


def _reject_wrappers(pm: pluggy.PluginManager) -> None:
    """The core calls every hook one implementation at a time (to isolate failures and name the plugin),
    so a ``wrapper=True`` / ``hookwrapper=True`` implementation would never wrap anything."""
    for hook_name in hookspecs.CALLED_ONE_BY_ONE:
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.wrapper or impl.hookwrapper:
                raise PluginError(
                    f"plugin {impl.plugin_name!r}: {hook_name} is called one implementation at a time; "
                    "wrapper=True/hookwrapper=True implementations are not supported on it"
                )


def _register(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    if pm.is_blocked(name):
        return
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {name!r}: {exc}") from exc
    except ValueError as exc:
        raise PluginError(f"plugin {name!r} could not be registered: {exc}") from exc


def _load_folder(folder: Path) -> list[tuple[ModuleType, str]]:
    if not folder.is_dir():
        raise PluginError(f"plugins folder {str(folder)!r} does not exist or is not a folder")
    loaded = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module_name = f"{LOCAL_PLUGIN_PREFIX}.{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise PluginError(f"plugin file {str(path)!r} cannot be imported")
        module = importlib.util.module_from_spec(spec)
        module.__dict__["__kafka_sidecar_origin__"] = str(path)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(module_name, None)
            raise PluginError(f"plugin file {str(path)!r} failed to import: {exc!r}") from exc
        loaded.append((module, path.stem))
    return loaded


def provider_of(pm: pluggy.PluginManager, plugin: object) -> Provider:
    """Name the plugin and where it came from: a distribution, a file, or 'registered directly'."""
    name = pm.get_name(plugin) or repr(plugin)
    for dist_plugin, dist in pm.list_plugin_distinfo():
        if dist_plugin is plugin:
            return Provider(name, f"{dist.project_name} {dist.version}")
    origin = getattr(plugin, "__kafka_sidecar_origin__", None)
    if isinstance(origin, str):
        return Provider(name, origin)
    module_file = getattr(plugin, "__file__", None)
    return Provider(name, str(module_file) if module_file else "registered directly")


def call_register_hook(pm: pluggy.PluginManager, hook_name: str, accept: Callable[[object, Provider], None]) -> None:
    """Call a ``register``-style hook once per implementation, with a provider-bound callback.

    Binding the callback per implementation is how every registration knows its plugin.
    """
    caller = getattr(pm.hook, hook_name)
    for impl in caller.get_hookimpls():
        provider = provider_of(pm, impl.plugin)

        def register(item: object, _provider: Provider = provider) -> None:
            accept(item, _provider)

        kwargs: dict[str, Any] = {"register": register}
        try:
            impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(f"plugin {provider} failed in {hook_name}: {exc!r}") from exc
