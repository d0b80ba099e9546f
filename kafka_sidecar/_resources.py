"""Long-lived things handlers share: settings, the shared producer, record formats, plugin services."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from kafka_sidecar._config.model import SidecarConfig
from kafka_sidecar._deadletter import DeadLetterWriter
from kafka_sidecar._events import EventBus
from kafka_sidecar._kafka.producer import ProducerService
from kafka_sidecar._serdes.base import SerdeRegistry
from kafka_sidecar._stash import Stash

T = TypeVar("T")
log = logging.getLogger(__name__)


class Resources:
    """Handed to every handler factory. One per sidecar; no globals."""

    def __init__(
        self,
        config: SidecarConfig,
        serdes: SerdeRegistry,
        producer: ProducerService,
        internal_producer: ProducerService | None = None,
    ) -> None:
        self.config = config
        self.serdes = serdes
        self.producer = producer
        """The business producer: only records callers asked for."""
        self.internal_producer = internal_producer or ProducerService(
            config.kafka, role="internal-producer", patient=True
        )
        """The sidecar's own traffic (audit, dead letters), with its own producer id, so a problem there
        (a missing audit topic, say) never breaks the business producer's sequence state."""
        self.events = EventBus()
        """Out-of-chain events (dead letters, admin actions) for audit and metrics to subscribe to."""
        self.dead_letters = DeadLetterWriter(self.internal_producer, self.events)
        """The one dead-letter writer, shared by the active and the reactive consumer."""
        self.services = Stash()
        """Shared services plugins create once and look up by StashKey (a DLQ writer, a registry client)."""
        self._cleanups: list[Callable[[], Awaitable[None]]] = []

    def section(self, config_type: type[T]) -> T:
        """The validated config of a plugin-registered section, by its dataclass type."""
        for value in self.config.sections.values():
            if type(value) is config_type:
                return value
        raise LookupError(f"no config section of type {config_type.__name__} is registered")

    def on_close(self, cleanup: Callable[[], Awaitable[None]]) -> None:
        """Run ``cleanup`` when the sidecar stops (last registered runs first)."""
        self._cleanups.append(cleanup)

    async def close(self) -> None:
        while self._cleanups:
            cleanup = self._cleanups.pop()
            try:
                await cleanup()
            except Exception:
                log.exception("a resource cleanup failed")
