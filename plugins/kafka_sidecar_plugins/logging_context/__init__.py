"""Structured logging with the exchange's context, and ``GET``/``POST /admin/logging``.

The ``logging-context`` middleware marks the exchange (route template or consumer name) in a context
variable and can write one access line per exchange. Its first instance installs, at start, a log
handler on the root logger with the context filter and the configured formatter (JSON by default);
it is removed at stop. ``/admin/logging`` reads and changes logger levels at run time (loopback only;
each change is an ``AdminAction`` on the event bus, so it is audited and counted).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TextIO

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from kafka_sidecar.plugin import (
    AdminAction,
    EventBus,
    Exchange,
    HandlerSpec,
    Next,
    Reply,
    Resources,
    SidecarView,
    StashKey,
    ValidationFailed,
    admin_route,
    hookimpl,
)
from kafka_sidecar_plugins.logging_context._format import LOG_EXCHANGE, ContextFilter, JsonFormatter, TextFormatter

LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET")
access_log = logging.getLogger("kafka_sidecar.access")
_INSTALLER: StashKey[object] = StashKey("logging-context.installer")


@dataclass(frozen=True, slots=True)
class LoggingContextConfig:
    format: Literal["json", "text"] = field(default="json", metadata={"doc": "Log line format: json or text."})
    install: bool = field(default=True, metadata={"doc": "Install the sidecar's log handler on the root logger."})
    level: str | None = field(default=None, metadata={"doc": "Root logger level at start (default: unchanged)."})
    replace_stream_handlers: bool = field(
        default=True,
        metadata={"doc": "While installed, detach the root logger's plain stream handlers (no double lines)."},
    )
    loggers: Mapping[str, str] = field(default_factory=dict, metadata={"doc": "Logger name -> level at start."})
    access_log: bool = field(default=False, metadata={"doc": "One INFO line per exchange on kafka_sidecar.access."})

    def __post_init__(self) -> None:
        levels = {f"loggers.{k}": v for k, v in self.loggers.items()}
        if self.level is not None:
            levels["level"] = self.level
        for name, level in levels.items():
            if level.upper() not in LEVELS:
                raise ValueError(f"{name}: {level!r} is not one of {', '.join(LEVELS)}")


def make_log_handler(fmt: Literal["json", "text"], stream: TextIO | None = None) -> logging.Handler:
    handler: logging.Handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    return handler


class LoggingContextHandler:
    def __init__(self, config: LoggingContextConfig, resources: Resources) -> None:
        self._config = config
        self._owner = config.install and resources.services.get(_INSTALLER) is None
        if self._owner:
            resources.services[_INSTALLER] = self
        self._installed: logging.Handler | None = None
        self._detached: list[logging.Handler] = []

    async def start(self) -> None:
        if not self._owner or self._installed is not None:
            return
        root = logging.getLogger()
        if self._config.replace_stream_handlers:
            # exactly StreamHandler (logging.basicConfig's), never subclasses such as test capture handlers
            self._detached = [h for h in root.handlers if type(h) is logging.StreamHandler]
            for handler in self._detached:
                root.removeHandler(handler)
        self._installed = make_log_handler(self._config.format)
        root.addHandler(self._installed)
        if self._config.level is not None:
            root.setLevel(self._config.level.upper())
        for name, level in self._config.loggers.items():
            logging.getLogger(name).setLevel(level.upper())

    async def stop(self) -> None:
        if self._installed is not None:
            root = logging.getLogger()
            root.removeHandler(self._installed)
            self._installed = None
            for handler in self._detached:
                root.addHandler(handler)
            self._detached = []

    async def __call__(self, exchange: Exchange, call_next: Next) -> Reply:
        token = LOG_EXCHANGE.set(exchange.name)
        started = time.perf_counter()
        status: int | str = "error"
        try:
            reply = await call_next(exchange)
            status = reply.status
            return reply
        finally:
            if self._config.access_log:
                where = f"{exchange.http().method} {exchange.name}" if exchange.request else exchange.name
                access_log.info("%s %s %.1fms", where, status, (time.perf_counter() - started) * 1000)
            LOG_EXCHANGE.reset(token)


def _levels() -> dict[str, object]:
    loggers = {
        name: logging.getLevelName(logger.level)
        for name, logger in sorted(logging.root.manager.loggerDict.items())
        if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET
    }
    return {"root": logging.getLevelName(logging.getLogger().level), "loggers": loggers}


def _requested_levels(body: object) -> dict[str, str]:
    if not isinstance(body, dict) or not isinstance(body.get("loggers"), dict) or not body["loggers"]:
        raise ValidationFailed('body must be {"loggers": {"<logger name or root>": "<LEVEL>"}}', field="loggers")
    wanted: dict[str, str] = {}
    for name, level in body["loggers"].items():
        if not isinstance(level, str) or level.upper() not in LEVELS:
            raise ValidationFailed(f"level must be one of {', '.join(LEVELS)}, got {level!r}", field=f"loggers.{name}")
        wanted[name] = level.upper()
    return wanted


def logging_routes(events: EventBus) -> list[BaseRoute]:
    async def endpoint(request: Request) -> Response:
        """Read (GET) or change (POST) log levels per logger at runtime."""
        if request.method == "POST":
            try:
                body = await request.json()
            except ValueError as exc:
                raise ValidationFailed(f"request body is not valid JSON: {exc}", field="body") from exc
            wanted = _requested_levels(body)
            client = request.client.host if request.client else None
            for name, level in wanted.items():
                logging.getLogger(None if name == "root" else name).setLevel(level)
                events.publish(AdminAction("set-log-level", name, level, client))
        return JSONResponse(_levels())

    return [admin_route("/admin/logging", endpoint, ["GET", "POST"])]


@hookimpl
def kafka_sidecar_register_handlers(register: Callable[[HandlerSpec[LoggingContextConfig]], None]) -> None:
    register(
        HandlerSpec(
            name="logging-context",
            factory=LoggingContextHandler,
            config_type=LoggingContextConfig,
            kind="middleware",
            description="Structured logs (JSON/text) carrying correlation, traceability and trace ids; /admin/logging.",
        )
    )


@hookimpl
def kafka_sidecar_routes(sidecar: SidecarView) -> Sequence[BaseRoute] | None:
    if not sidecar.handlers(LoggingContextHandler):
        return None
    return logging_routes(sidecar.resources.events)
