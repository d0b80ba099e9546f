"""The root logging one sidecar installs at start and takes back at stop, and nothing else.

Each sidecar gets its own :class:`RootLogging` (a service built at assembly); the plugin's startup hook
installs through it and its shutdown hook restores. Nothing is remembered at module level: the only
process-wide state is the root logger itself, which is where a second sidecar in the same process
(embedding) sees that a context handler is already installed, and leaves it, so every line is
written once. A stop undoes exactly what its sidecar changed, in reverse order; a level is put back
only if it still has the value this sidecar set (if someone changed it since, theirs stands).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from functools import partial
from typing import Literal, TextIO

from kafka_sidecar_plugins.logging_context._format import ContextFilter, JsonFormatter, TextFormatter

log = logging.getLogger(__name__)


class ContextLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stream handler the logging-context plugin installs on the root logger (found by its type)."""


def make_log_handler(fmt: Literal["json", "text"], stream: TextIO | None = None) -> logging.Handler:
    handler = ContextLogHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    return handler


class RootLogging:
    """What one sidecar changed on the process's logging, so that its stop can undo exactly that."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []
        self.installed = False

    def install(
        self,
        fmt: Literal["json", "text"],
        *,
        replace_stream_handlers: bool,
        level: str | None,
        loggers: Mapping[str, str],
    ) -> None:
        if self.installed:
            return
        self.installed = True
        root = logging.getLogger()
        if any(isinstance(h, ContextLogHandler) for h in root.handlers):
            log.debug("a context log handler is installed already (another sidecar in this process); kept")
        else:
            if replace_stream_handlers:
                # exactly StreamHandler (logging.basicConfig's), never subclasses such as test capture handlers
                for plain in [h for h in root.handlers if type(h) is logging.StreamHandler]:
                    root.removeHandler(plain)
                    self._undo.append(partial(root.addHandler, plain))
            handler = make_log_handler(fmt)
            root.addHandler(handler)
            self._undo.append(partial(root.removeHandler, handler))
        levels = {**({"": level} if level is not None else {}), **loggers}
        for name, wanted in levels.items():
            logger = logging.getLogger(name or None)
            previous = logger.level
            logger.setLevel(wanted.upper())
            self._undo.append(_level_restorer(logger, previous, logger.level))

    def restore(self) -> None:
        while self._undo:
            self._undo.pop()()
        self.installed = False


def _level_restorer(logger: logging.Logger, previous: int, set_to: int) -> Callable[[], None]:
    def restore() -> None:
        if logger.level == set_to:
            logger.setLevel(previous)

    return restore
