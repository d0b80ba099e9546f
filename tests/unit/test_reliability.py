"""Reliability pieces without a broker: Idempotency-Key cache, strict JSON bodies, masked config, the
one shutdown budget."""

from __future__ import annotations

import asyncio
import json
import logging
import textwrap
from pathlib import Path

import pytest

from kafka_sidecar._errors import (
    ConfigError,
    Conflict,
    KafkaOutcomeUnknown,
    KafkaUnavailable,
    RequestError,
    UnsupportedMediaType,
    ValidationFailed,
)
from kafka_sidecar._exchange import Reply
from kafka_sidecar._http.admin import masked
from kafka_sidecar._idempotency import IdempotencyCache, idempotency_key
from kafka_sidecar._shutdown import ShutdownBudget
from kafka_sidecar._sidecar import Sidecar
from kafka_sidecar._strict_json import parse_json_body

# -- Idempotency-Key ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.asyncio
async def test_a_key_runs_the_produce_once_and_replays_its_reply() -> None:
    cache = IdempotencyCache(60, 100)
    calls = 0

    async def produce() -> Reply:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        return Reply(200, {"n": calls})

    replies = await asyncio.gather(*(cache.run("k", b"f", produce, 5) for _ in range(4)))
    assert calls == 1
    assert {r.body["n"] for r in replies if isinstance(r.body, dict)} == {1}
    with pytest.raises(Conflict):
        await cache.run("k", b"other body", produce, 5)


@pytest.mark.asyncio
async def test_not_written_outcomes_are_forgotten_and_unknown_ones_kept() -> None:
    cache = IdempotencyCache(60, 100)
    attempts: list[str] = []

    async def unavailable() -> Reply:
        attempts.append("503")
        raise KafkaUnavailable("down; nothing was written")

    for _ in range(2):
        with pytest.raises(KafkaUnavailable):
            await cache.run("a", b"f", unavailable, 5)
    assert attempts == ["503", "503"], "nothing was written, so a retry tries again"

    gate = asyncio.Event()

    async def slow() -> Reply:
        attempts.append("slow")
        await gate.wait()
        return Reply(200, "late ack")

    with pytest.raises(KafkaOutcomeUnknown):
        await cache.run("b", b"f", slow, 0.05)
    gate.set()
    late = await cache.run("b", b"f", slow, 5)
    assert late.body == "late ack", "the retry learns the real outcome of the first attempt"
    assert attempts.count("slow") == 1


@pytest.mark.asyncio
async def test_memory_is_bounded_by_count_and_window() -> None:
    clock = Clock()
    cache = IdempotencyCache(10, 3, clock=clock)

    async def ok() -> Reply:
        return Reply(200)

    for key in "abcde":
        await cache.run(key, b"f", ok, 1)
    assert len(cache) == 3
    clock.now = 11
    await cache.run("f", b"f", ok, 1)
    assert len(cache) == 1


def test_idempotency_key_header_is_validated() -> None:
    assert idempotency_key({}) is None
    assert idempotency_key({"idempotency-key": "abc"}) == "abc"
    for bad in ("", "x" * 256, "a\nb", "caf\xe9"):  # printable ASCII only, as /openapi.json describes it
        with pytest.raises(ValidationFailed):
            idempotency_key({"idempotency-key": bad})


# -- strict JSON -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "content_type", "error", "field"),
    [
        (b'{"a":1,"a":2}', "application/json", RequestError, "a"),
        (b"[" * 100_000, "application/json", ValidationFailed, "body"),
        (rb'{"records":[{"headers":{"h":"\ud800"}}]}', "application/json", ValidationFailed, "records[0].headers.h"),
        (b'{"v":1e999}', "application/json", ValidationFailed, "v"),
        (b'{"a":{"b":[1,-1E+400]}}', "application/json", ValidationFailed, "a.b[1]"),
        (b'{"v":1' + b"0" * 400 + b".5}", "application/json", ValidationFailed, "v"),  # no exponent
        (b'{"v":Infinity}', "application/json", ValidationFailed, "body"),
        (b'{"v":"\xff"}', "application/json", ValidationFailed, "body"),
        (b"{}", "", UnsupportedMediaType, "Content-Type"),
        (b"{}", "text/plain", UnsupportedMediaType, "Content-Type"),
        (b"{}", "application/json; charset=utf-16", UnsupportedMediaType, "Content-Type"),
    ],
)
def test_strict_json_bodies(raw: bytes, content_type: str, error: type[Exception], field: str) -> None:
    with pytest.raises(error) as caught:
        parse_json_body(raw, content_type)
    assert getattr(caught.value, "field", None) == field


def test_strict_json_accepts_what_is_valid() -> None:
    emoji = rb'{"v":"\ud83d\ude00","n":1e300}'
    assert parse_json_body(emoji, "application/vnd.kafka.json.v2+json; charset=UTF-8") == {"v": "😀", "n": 1e300}
    big = b'{"i":1' + b"0" * 400 + b',"text":"e+999 1e999"}'  # a huge int is exact; strings are text
    assert parse_json_body(big, "application/json") == {"i": 10**400, "text": "e+999 1e999"}


# -- masked config -----------------------------------------------------------------------------


def test_credential_like_backend_headers_are_masked() -> None:
    shown = masked(
        {
            "backend_headers": {
                "Authorization": "Bearer abc",
                "X-Api-Key": "k",
                "X-Auth-Token": "t",
                "Cookie": "s=1",
                "X-Tenant": "acme",
            }
        }
    )
    assert shown["backend_headers"] == {
        "Authorization": "****",
        "X-Api-Key": "****",
        "X-Auth-Token": "****",
        "Cookie": "****",
        "X-Tenant": "acme",
    }


def test_backend_token_with_an_authorization_header_is_a_config_error(tmp_path: Path) -> None:
    values = {
        "topics": ["orders"],
        "group": "g",
        "backend_url": "http://127.0.0.1:9",
        "backend_token": "t0ken",
        "backend_headers": {"authorization": "Basic x"},
    }
    path = tmp_path / "chains.yml"
    path.write_text(
        textwrap.dedent(
            f"""\
            handlers:
              orders-in: {{use: reactive-consumer, config: {json.dumps(values)}}}
            consumers:
              orders: {{exec: [orders-in]}}
            """
        ),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="two Authorization"):
        Sidecar.from_file(path)


# -- shutdown budget ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_step_past_the_budget_is_cancelled_and_named(caplog: pytest.LogCaptureFixture) -> None:
    budget = ShutdownBudget(0.2)
    never = asyncio.Event()
    with caplog.at_level(logging.ERROR):
        assert not await budget.run("stopping a stuck consumer", never.wait())
    assert "stopping a stuck consumer" in caplog.text
    assert budget.remaining() == 0.0
    assert not await budget.run("the next step", asyncio.sleep(10)), "a spent budget leaves no time"
