"""The admin console: a browser page at ``/admin/ui`` over the admin JSON routes.

The page (``static/``: plain HTML, CSS and JavaScript written for this project, no CDN, charts drawn
as inline SVG by its own code) reads the existing admin routes (``/admin/chains``, ``/admin/config``,
``/admin/logging``, ``/admin/consumers/reactive``) and the few this plugin adds under
``/admin/console/``: the producer's state, every active-consumer instance, and a reactive consumer's
dead letters. Every route, the page itself included, goes through the admin guard. Block the plugin
(``plugins.block: [console]``) to serve none of it. ``docs/console.md`` is the user guide.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from kafka_sidecar.plugin import StashKey, hookimpl
from kafka_sidecar_plugins.console._history import History
from kafka_sidecar_plugins.console._routes import console_routes
from kafka_sidecar_plugins.console._sources import reactive_sources

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from kafka_sidecar.plugin import SidecarView

__all__ = ["HISTORY", "console_routes"]

HISTORY: StashKey[History] = StashKey("console-history")
"""The background sampler of lag and throughput, in ``resources.services``."""


def _history(sidecar: SidecarView) -> History:
    services = sidecar.resources.services
    if HISTORY not in services:
        sources = reactive_sources(sidecar)
        services[HISTORY] = History({name: source.status for name, source in sorted(sources.items())})
    return services[HISTORY]


@hookimpl
def kafka_sidecar_routes(sidecar: SidecarView) -> Sequence[BaseRoute] | None:
    return console_routes(sidecar, _history(sidecar))


@hookimpl
def kafka_sidecar_startup(sidecar: SidecarView) -> None:
    _history(sidecar).start()


@hookimpl
async def kafka_sidecar_shutdown(sidecar: SidecarView) -> None:
    await _history(sidecar).stop()
