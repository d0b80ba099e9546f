"""Logging of ``kafka-sidecar run``: levels, third-party noise, and the operator's start and stop lines.

At INFO and above, libraries say only what an operator needs: httpx's line per backend call and
health check, aiokafka's group chatter, and messages the sidecar already reports better (an
unreachable broker, a topic being auto-created, a coordinator moving) are left out. ``--log-level
DEBUG`` shows everything.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kafka_sidecar._hookspecs import hookimpl

if TYPE_CHECKING:
    from kafka_sidecar._view import SidecarView

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

QUIET_LOGGERS = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "aiokafka": logging.WARNING}
"""Loggers held at WARNING unless the level is DEBUG."""

NOISE = {
    # a topic the sidecar writes to for the first time is being auto-created
    "aiokafka.cluster": ("not found in cluster metadata",),
    # the producer reports an unreachable broker itself, once, naming the config key
    "aiokafka": ("Unable connect to",),
    # group coordinators move or start up; the client retries and the sidecar reports lasting trouble
    "aiokafka.consumer.group_coordinator": (
        "GroupCoordinatorNotAvailableError", "Marking the coordinator dead", "NotCoordinatorForGroupError",
    ),
    # replaced by the sidecar's own "ready:" line
    "hypercorn.error": ("Running on ",),
}  # fmt: skip
"""Message fragments dropped from these loggers unless the level is DEBUG."""

log = logging.getLogger("kafka_sidecar")


class DropMessages(logging.Filter):
    def __init__(self, fragments: tuple[str, ...]) -> None:
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(fragment in message for fragment in self.fragments)


def configure_logging(level: str) -> None:
    """Root level and format; third-party loggers quieted unless ``level`` is DEBUG."""
    logging.basicConfig(level=level, format=FORMAT)
    if level == "DEBUG":
        return
    for name, quiet in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(quiet)
    for name, fragments in NOISE.items():
        logging.getLogger(name).addFilter(DropMessages(fragments))


@dataclass
class OperatorLines:
    """A plugin of the ``run`` command: one line when the sidecar is ready, one when it has stopped.

    The ready line is not a startup hook: hooks run before the start is known to have succeeded."""

    stopping_since: float | None = None
    """When the shutdown hook ran (traffic drained by then); monotonic."""
    drained: list[str] = field(default_factory=list)

    def log_ready(self, sidecar: SidecarView) -> None:
        """The ready line: called once the whole start (handlers, startup hooks, sources) has completed."""
        server = sidecar.config.server
        scheme = "https" if server.tls_certfile else "http"
        host = f"[{server.host}]" if ":" in server.host else server.host
        admin = f" (admin routes on port {server.admin_port} only)" if server.admin_port is not None else ""
        consumers = ", ".join(c.name for c in sidecar.consumers) or "none"
        chains = ", ".join(sidecar.config.chains) or "none"
        log.info("ready: %s://%s:%s%s, broker %s, chains: %s, %d route(s), consumers: %s", scheme, host, server.port,
                 admin, sidecar.config.kafka.bootstrap_servers, chains, len(sidecar.routes), consumers)  # fmt: skip

    @hookimpl
    def kafka_sidecar_shutdown(self, sidecar: SidecarView) -> None:
        self.stopping_since = time.monotonic()
        self.drained = ["HTTP requests finished"]
        if sidecar.consumers:
            names = ", ".join(c.name for c in sidecar.consumers)
            self.drained.append(f"consumers {names} finished their batches, committed and left their groups")
        if any(route.uses("active-consumer") for route in sidecar.routes):
            self.drained.append("active-consumer instances closed")
        self.drained.append("producer flushed")

    def log_stopped(self, signalled_at: float | None) -> None:
        """The stop line; ``signalled_at`` is when the stop signal came (monotonic), if one did."""
        began = signalled_at if signalled_at is not None else self.stopping_since
        took = f" {time.monotonic() - began:.1f} s after the stop signal" if began is not None else ""
        log.info("stopped%s: %s", took, "; ".join(self.drained) or "nothing was running")
