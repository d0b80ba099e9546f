"""The async onion: handler protocols and a chain compiled once, before the first exchange.

A middleware handler is ``async (exchange, call_next) -> Reply``; a terminal handler is
``async (exchange) -> Reply``. :func:`compile_chain` folds the middleware around the terminal in
reverse, so the first listed runs first, and wraps the whole in the error boundary (the outermost
link). The result is a frozen :class:`Chain`: nothing can be added to it afterwards.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, final, runtime_checkable

from kafka_sidecar._exchange import Exchange, Reply

Next = Callable[[Exchange], Awaitable[Reply]]
"""Calls the rest of the chain."""

ErrorBoundary = Callable[[Exchange, Exception], Reply]
"""Turns an exception that escaped the chain into a reply (the HTTP problem mapper, for example)."""


class Handler(Protocol):
    """Middleware: does its part, then awaits ``call_next`` (or answers without it, short-circuiting)."""

    async def __call__(self, exchange: Exchange, call_next: Next) -> Reply: ...


class Terminal(Protocol):
    """The last link: produces, consumes or delivers, and answers."""

    async def __call__(self, exchange: Exchange) -> Reply: ...


@runtime_checkable
class Lifecycle(Protocol):
    """Optional on any handler: started before the first exchange, stopped after the last."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """A named link, for display (``GET /admin/chains``) and error messages."""

    name: str
    type_name: str


@final
class Chain:
    """A compiled, immutable chain. Call it with an exchange."""

    __slots__ = ("_entry", "links", "name")

    def __init__(self, name: str, links: tuple[LinkInfo, ...], entry: Next) -> None:
        self.name = name
        self.links = links
        self._entry = entry

    def __call__(self, exchange: Exchange) -> Awaitable[Reply]:
        return self._entry(exchange)

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, "_entry"):
            raise AttributeError("a compiled chain cannot be changed")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"Chain({self.name!r}, {[link.name for link in self.links]})"


def compile_chain(
    name: str,
    middleware: Sequence[tuple[LinkInfo, Handler]],
    terminal: tuple[LinkInfo, Terminal],
    boundary: ErrorBoundary | None = None,
) -> Chain:
    """Fold ``middleware`` around ``terminal``; the first middleware listed is the outermost."""
    call: Next = terminal[1]
    for _info, handler in reversed(middleware):
        call = functools.partial(handler, call_next=call)
    if boundary is not None:
        call = _with_boundary(call, boundary)
    links = (*(info for info, _ in middleware), terminal[0])
    return Chain(name, links, call)


def _with_boundary(inner: Next, boundary: ErrorBoundary) -> Next:
    async def error_boundary(exchange: Exchange) -> Reply:
        try:
            return await inner(exchange)
        except Exception as exc:
            return boundary(exchange, exc)

    return error_boundary


@runtime_checkable
class SourceTerminal(Protocol):
    """The terminal of a consumer pipeline (kind ``source``).

    ``attach`` is called once at assembly with the compiled chain the source must feed; the source
    then reads batches itself (from ``start`` until ``stop``) and awaits ``chain(exchange)`` for each,
    which ends by calling the source's own ``__call__`` to deliver.
    """

    def attach(self, chain: Chain, consumer_name: str) -> None: ...

    async def __call__(self, exchange: Exchange) -> Reply: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
