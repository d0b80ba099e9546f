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

from kafka_sidecar._hookspecs import hookimpl
from kafka_sidecar_plugins.console._routes import console_routes

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from kafka_sidecar._sidecar import Sidecar

__all__ = ["console_routes"]


@hookimpl
def kafka_sidecar_routes(sidecar: Sidecar) -> Sequence[BaseRoute] | None:
    return console_routes(sidecar)
