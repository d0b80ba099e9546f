"""Structured logging with the exchange's context, and ``GET``/``POST /admin/logging``.

The ``logging-context`` middleware marks the exchange (route template or consumer name) in a context
variable and can write one access line per exchange. When a sidecar's chains use it (with
``install: true``, the default), the plugin's startup hook installs a log handler on the root logger
with the context filter and the configured formatter (JSON by default), through the sidecar's own
:class:`~kafka_sidecar_plugins.logging_context._root.RootLogging` service; its shutdown hook restores
what was there before. Instances that install must agree on how (``check`` reports it otherwise).
``/admin/logging`` reads and changes logger levels at run time (loopback only; each change is an
``AdminAction`` on the event bus, so it is audited and counted).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from kafka_sidecar.plugin import (
    AdminAction,
    CheckContext,
    EventBus,
    Exchange,
    HandlerSpec,
    Next,
    Reply,
    Resources,
    ServiceSpec,
    SidecarView,
    StashKey,
    ValidationFailed,
    admin_route,
    hookimpl,
)
from kafka_sidecar_plugins.logging_context._format import LOG_EXCHANGE
from kafka_sidecar_plugins.logging_context._root import RootLogging, make_log_handler

LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET")
access_log = logging.getLogger("kafka_sidecar.access")
ROOT_LOGGING: StashKey[RootLogging] = StashKey("logging-context.root-logging")
"""The sidecar's :class:`RootLogging`: what its start installed on the root logger, for its stop to undo."""
__all__ = ["LoggingContextConfig", "LoggingContextHandler", "RootLogging", "make_log_handler"]


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

    def installation(self) -> tuple[object, ...]:
        """How this instance would set up root logging (instances that install must agree on it)."""
        return (self.format, self.replace_stream_handlers, self.level, dict(self.loggers))


class LoggingContextHandler:
    def __init__(self, config: LoggingContextConfig, resources: Resources) -> None:
        self.config = config

    async def __call__(self, exchange: Exchange, call_next: Next) -> Reply:
        token = LOG_EXCHANGE.set(exchange.name)
        started = time.perf_counter()
        status: int | str = "error"
        try:
            reply = await call_next(exchange)
            status = reply.status
            return reply
        finally:
            if self.config.access_log:
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


def check_logging_context(config: LoggingContextConfig, ctx: CheckContext) -> None:
    """Instances that install root logging must install it the same way (there is one root logger)."""
    blueprint = ctx.blueprint
    used = {name for route in blueprint.routes for name in route.links}
    used.update(name for consumer in blueprint.consumers for name in consumer.links)
    if not config.install or ctx.handler not in used:
        return
    for name, plan in blueprint.handlers.items():
        other = plan.config
        if name == ctx.handler or plan.spec.name != "logging-context" or name not in used:
            continue
        if isinstance(other, LoggingContextConfig) and other.install and other.installation() != config.installation():
            ctx.problem(
                "",
                f"installs root logging differently from logging-context instance {name!r} (format, level, "
                "loggers, replace_stream_handlers); make them equal, or set install: false on all but one",
            )
            return


@hookimpl
def kafka_sidecar_register_handlers(register: Callable[[HandlerSpec[LoggingContextConfig]], None]) -> None:
    register(
        HandlerSpec(
            name="logging-context",
            factory=LoggingContextHandler,
            config_type=LoggingContextConfig,
            kind="middleware",
            description="Structured logs (JSON/text) carrying correlation, traceability and trace ids; /admin/logging.",
            check=check_logging_context,
        )
    )


@hookimpl
def kafka_sidecar_register_services(register: Callable[[ServiceSpec[RootLogging]], None]) -> None:
    register(
        ServiceSpec(ROOT_LOGGING, lambda resources: RootLogging(), "what this sidecar installed on the root logger")
    )


def _installing(sidecar: SidecarView) -> LoggingContextConfig | None:
    """The root-logging settings of the sidecar's logging-context instances (checked to agree), if any install."""
    configs = [handler.config for handler in sidecar.handlers(LoggingContextHandler) if handler.config.install]
    return configs[0] if configs else None


@hookimpl
def kafka_sidecar_startup(sidecar: SidecarView) -> None:
    config = _installing(sidecar)
    if config is not None:
        sidecar.resources.services[ROOT_LOGGING].install(
            config.format,
            replace_stream_handlers=config.replace_stream_handlers,
            level=config.level,
            loggers=config.loggers,
        )


@hookimpl
def kafka_sidecar_shutdown(sidecar: SidecarView) -> None:
    sidecar.resources.services[ROOT_LOGGING].restore()


@hookimpl
def kafka_sidecar_routes(sidecar: SidecarView) -> Sequence[BaseRoute] | None:
    if not sidecar.handlers(LoggingContextHandler):
        return None
    return logging_routes(sidecar.resources.events)
