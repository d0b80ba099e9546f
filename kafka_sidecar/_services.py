"""Shared services declared once by a plugin and built by the core at assembly.

A plugin that shares something between its handlers (a client, a sink, a cache) declares it through
``kafka_sidecar_register_services`` with a :class:`ServiceSpec`; the core builds every declared
service once, before any handler factory runs, and handlers look it up with ``resources.services[KEY]``.
No service depends on which handler happens to be built first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from kafka_sidecar._stash import StashKey

if TYPE_CHECKING:
    from kafka_sidecar._resources import Resources

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ServiceSpec(Generic[T]):
    """``factory(resources)`` builds the service stored under ``key`` (once per sidecar).

    The factory may read config sections, the producer and services declared before it. A factory
    that raises fails the assembly (like a handler factory), naming the plugin.
    """

    key: StashKey[T]
    factory: Callable[[Resources], T]
    description: str = ""
