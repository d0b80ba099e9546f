"""The compiled onion: order, short-circuit, errors travelling outward, frozen after compile."""

from __future__ import annotations

import pytest

from kafka_sidecar._chain import LinkInfo, Next, compile_chain
from kafka_sidecar._errors import ValidationFailed
from kafka_sidecar._exchange import Exchange, Reply
from kafka_sidecar._http.problems import problem_reply
from kafka_sidecar._stash import StashKey

TRAIL: StashKey[list[str]] = StashKey("trail")


class Recorder:
    def __init__(self, name: str) -> None:
        self.name = name

    async def __call__(self, exchange: Exchange, call_next: Next) -> Reply:
        exchange.stash.setdefault(TRAIL, []).append(f"{self.name}:in")
        reply = await call_next(exchange)
        exchange.stash[TRAIL].append(f"{self.name}:out")
        return reply


class ShortCircuit:
    async def __call__(self, exchange: Exchange, call_next: Next) -> Reply:
        return Reply(status=401, body={"denied": True})


class Terminal:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, exchange: Exchange) -> Reply:
        self.calls += 1
        exchange.stash.setdefault(TRAIL, []).append("terminal")
        return Reply(body={"ok": True})


class Failing:
    async def __call__(self, exchange: Exchange) -> Reply:
        raise ValidationFailed("bad value", field="records[0].value")


def info(name: str) -> LinkInfo:
    return LinkInfo(name, name)


@pytest.mark.asyncio
async def test_first_listed_middleware_is_outermost() -> None:
    terminal = Terminal()
    chain = compile_chain("c", [(info("a"), Recorder("a")), (info("b"), Recorder("b"))], (info("t"), terminal))
    exchange = Exchange("consumer", "c")
    reply = await chain(exchange)
    assert reply.body == {"ok": True}
    assert exchange.stash[TRAIL] == ["a:in", "b:in", "terminal", "b:out", "a:out"]
    assert [link.name for link in chain.links] == ["a", "b", "t"]


@pytest.mark.asyncio
async def test_short_circuit_skips_the_rest() -> None:
    terminal = Terminal()
    chain = compile_chain("c", [(info("a"), Recorder("a")), (info("s"), ShortCircuit())], (info("t"), terminal))
    exchange = Exchange("consumer", "c")
    reply = await chain(exchange)
    assert reply.status == 401
    assert terminal.calls == 0
    assert exchange.stash[TRAIL] == ["a:in", "a:out"]


@pytest.mark.asyncio
async def test_errors_travel_outward_to_the_boundary() -> None:
    seen: list[str] = []

    class Observer:
        async def __call__(self, exchange: Exchange, call_next: Next) -> Reply:
            try:
                return await call_next(exchange)
            except ValidationFailed:
                seen.append("observed")
                raise

    chain = compile_chain("c", [(info("o"), Observer())], (info("f"), Failing()), problem_reply)
    reply = await chain(Exchange("consumer", "c"))
    assert seen == ["observed"]
    assert reply.status == 422
    assert reply.media_type == "application/problem+json"
    assert isinstance(reply.body, dict)
    assert reply.body["field"] == "records[0].value"
    assert reply.body["code"] == "validation-failed"


@pytest.mark.asyncio
async def test_without_boundary_errors_propagate() -> None:
    chain = compile_chain("c", [], (info("f"), Failing()))
    with pytest.raises(ValidationFailed):
        await chain(Exchange("consumer", "c"))


def test_compiled_chain_is_frozen() -> None:
    chain = compile_chain("c", [], (info("t"), Terminal()))
    with pytest.raises(AttributeError):
        chain.name = "other"


@pytest.mark.asyncio
async def test_context_variables_set_by_middleware_survive_every_await() -> None:
    import asyncio
    import contextvars

    current: contextvars.ContextVar[str] = contextvars.ContextVar("current", default="unset")
    seen: list[str] = []

    class SetsContext:
        async def __call__(self, exchange: Exchange, call_next: Next) -> Reply:
            token = current.set("exchange-1")
            try:
                return await call_next(exchange)
            finally:
                current.reset(token)

    class ReadsAfterAwait:
        async def __call__(self, exchange: Exchange) -> Reply:
            await asyncio.sleep(0)
            seen.append(current.get())
            return Reply()

    chain = compile_chain("c", [(info("s"), SetsContext())], (info("r"), ReadsAfterAwait()))
    await chain(Exchange("consumer", "c"))
    assert seen == ["exchange-1"]
    assert current.get() == "unset"
