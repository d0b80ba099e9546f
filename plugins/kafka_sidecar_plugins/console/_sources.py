"""What the console needs from the handlers it shows, as protocols: it imports no handler package.

A reactive consumer (a ``reactive-consumer`` source) reports its state and names its dead-letter
topics; an active-consumer handler has a ``manager`` listing its live instances.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from kafka_sidecar.plugin import SidecarView


@runtime_checkable
class ReactiveSource(Protocol):
    async def status(self) -> Mapping[str, Any]: ...

    def dead_letter_topics(self) -> list[str]: ...


class LiveInstances(Protocol):
    def live(self) -> Sequence[Any]: ...


@runtime_checkable
class ActiveHandler(Protocol):
    manager: LiveInstances


def reactive_sources(sidecar: SidecarView) -> dict[str, ReactiveSource]:
    """The reactive consumers of the config, by consumer name."""
    return {
        c.name: c.source
        for c in sidecar.consumers
        if c.uses("reactive-consumer") and isinstance(c.source, ReactiveSource)
    }


def active_handlers(sidecar: SidecarView) -> list[ActiveHandler]:
    return [h for h in sidecar.handlers(object) if isinstance(h, ActiveHandler)]
