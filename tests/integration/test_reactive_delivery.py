"""Reactive consumer against a real broker and a real HTTP backend: delivery, statuses, DLQ, commits."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import Response
from test_reactive_support import (
    Backend,
    committed,
    end_offsets,
    json_values,
    new_group,
    produce,
    read_all,
    serving,
    sidecar_yaml,
    statuses,
    wait_committed,
    wait_for,
)

from kafka_sidecar._chain import Next
from kafka_sidecar._exchange import BACKEND_HEADERS, Exchange
from kafka_sidecar._exchange import Reply as ChainReply
from kafka_sidecar._hookspecs import hookimpl
from kafka_sidecar._registry import HandlerSpec
from kafka_sidecar.testing import running_sidecar
from kafka_sidecar_testing.leak_scan import SecretWatch

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]


@pytest.fixture(autouse=True)
def _watch_secrets(secret_watch: SecretWatch) -> None:
    """Registers the backend token for the whole-run leak check (tests/zz_final)."""
    secret_watch.add("s3cret")


async def test_every_record_delivered_in_order_and_committed(
    kafka_bootstrap: str, consumer_engine: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create(partitions=3)
    group = new_group()
    await produce(kafka_bootstrap, topic, json_values(150))
    backend = Backend()
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "CONSUMER_ENGINE": consumer_engine}
    config = sidecar_yaml(topic, group, backend, backend_token="s3cret", backend_headers={"x-team": "orders"})
    async with serving(backend), running_sidecar(config, tmp_path, env=env) as rs:
        await wait_for(lambda: len({(r["partition"], r["offset"]) for r in backend.records()}) >= 150, 30,
                       "150 distinct records")  # fmt: skip
        ends = await end_offsets(kafka_bootstrap, topic, 3)
        await wait_committed(kafka_bootstrap, group, ends)
        status = (await rs.client.get("/admin/consumers/reactive/orders")).json()
    per_partition = backend.offsets()
    assert sorted(per_partition) == [0, 1, 2]
    for partition, offsets in per_partition.items():
        assert offsets == sorted(offsets), f"partition {partition} out of order"
        assert offsets == list(range(ends[partition])), f"partition {partition} missing or repeated records"
    assert all(len(call["records"]) <= 20 for call in backend.calls)
    assert len(backend.calls) >= 150 // 20
    first = backend.records()[0]
    assert set(first) == {"topic", "partition", "offset", "timestamp", "key", "value", "headers"}
    assert isinstance(first["value"], dict)
    assert "n" in first["value"]
    assert backend.calls[0]["consumer"] == "orders"
    assert backend.headers[0]["authorization"] == "Bearer s3cret"
    assert backend.headers[0]["x-team"] == "orders"
    assert backend.headers[0]["content-type"] == "application/json"
    # the control API's lag and committed offsets are the broker's
    assert status["state"] == "running"
    assert status["engine"] == consumer_engine
    reported = {p["partition"]: p for p in status["partitions"]}
    for partition, end in ends.items():
        assert reported[partition]["committed"] == end
        assert reported[partition]["end_offset"] == end
        assert reported[partition]["lag"] == 0


async def test_mixed_statuses_dlq_and_drop(
    kafka_bootstrap: str, consumer_engine: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create(partitions=2)
    group = new_group()
    values = json_values(40)
    await produce(kafka_bootstrap, topic, values, headers=[("trace", b"abc")])
    seen_retry: dict[tuple[int, int], int] = {}

    def decide(record: dict[str, Any]) -> str:
        n = record["value"]["n"]
        if n % 4 == 1:
            return "DROP"
        if n % 4 == 2:
            return "DEADLETTER"
        if n == 3:
            key = (record["partition"], record["offset"])
            seen_retry[key] = seen_retry.get(key, 0) + 1
            return "RETRY"
        return "SUCCESS"

    async def reply(body: dict[str, Any]) -> Response:
        return statuses(body, decide)

    backend = Backend(reply=reply)
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "CONSUMER_ENGINE": consumer_engine}
    config = sidecar_yaml(topic, group, backend)
    async with serving(backend):
        async with running_sidecar(config, tmp_path, env=env):
            ends = await end_offsets(kafka_bootstrap, topic, 2)
            await wait_committed(kafka_bootstrap, group, ends)
        # n=3 was retried until the policy gave up (3 attempts), then dead-lettered
        assert list(seen_retry.values()) == [3]
        dlq = await read_all(kafka_bootstrap, f"{topic}.dlq", 11)
        assert len(dlq) == 11  # 10 DEADLETTER (n % 4 == 2) + 1 exhausted RETRY
        by_value = {json.loads(m.value)["n"]: m for m in dlq}
        assert sorted(by_value) == sorted([n for n in range(40) if n % 4 == 2] + [3])
        exhausted = dict(by_value[3].headers)
        assert exhausted["x-dlq-attempts"] == b"3"
        assert exhausted["x-dlq-source-topic"] == topic.encode()
        assert b"gave up after 3 attempts" in exhausted["x-dlq-error"]
        assert exhausted["trace"] == b"abc"
        assert by_value[3].value == values[3]  # original bytes
        letter = dict(by_value[2].headers)
        assert letter["x-dlq-attempts"] == b"1"
        assert int(letter["x-dlq-source-offset"]) >= 0
        assert letter["x-dlq-error"].startswith(b"error for")
        # a second sidecar in the same group gets nothing again: DROP and DLQ'd records were committed
        calls_before = len(backend.calls)
        await produce(kafka_bootstrap, topic, [json.dumps({"n": 100}).encode()], partition=0)
        async with running_sidecar(config, tmp_path, env=env):
            await wait_for(lambda: len(backend.calls) > calls_before, 20, "the new record")
            ends = await end_offsets(kafka_bootstrap, topic, 2)
            await wait_committed(kafka_bootstrap, group, ends)
        redelivered = [r for call in backend.calls[calls_before:] for r in call["records"]]
        assert [r["value"]["n"] for r in redelivered] == [100]


class StampPlugin:
    """A middleware seen on every delivery attempt: it counts them and sets a backend header."""

    def __init__(self) -> None:
        self.attempts = 0

    @hookimpl
    def kafka_sidecar_register_handlers(self, register: Any) -> None:
        plugin = self

        class Stamp:
            def __init__(self, config: object, resources: object) -> None:
                pass

            async def __call__(self, exchange: Exchange, call_next: Next) -> ChainReply:
                plugin.attempts += 1
                exchange.stash.setdefault(BACKEND_HEADERS, {})["x-attempt"] = str(plugin.attempts)
                return await call_next(exchange)

        register(HandlerSpec(name="stamp", factory=Stamp, kind="middleware"))


async def test_java_style_reply_and_undecodable_records(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create(partitions=1)
    group = new_group()
    await produce(kafka_bootstrap, topic, [b'{"n": 0}', b"\xffnot json", b'{"n": 2}', b'{"n": 3}'])

    async def reply(body: dict[str, Any]) -> Response:
        results = [
            {"record": r, "processed": r["value"]["n"] != 2, "stacktrace": "java.lang.IllegalStateException: n=2"}
            for r in body["records"]
        ]
        return Response(json.dumps(results), media_type="application/json")

    backend = Backend(reply=reply)
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    stamp = StampPlugin()
    config = sidecar_yaml(topic, group, backend, batch_max_wait_ms=300, request_format="java")
    config = config.replace("[orders-in]", "[stamp, orders-in]")
    async with serving(backend), running_sidecar(config, tmp_path, env=env, extra_plugins=[(stamp, "stamp")]):
        await wait_committed(kafka_bootstrap, group, {0: 4})
    assert [r["offset"] for r in backend.records()] == [0, 2, 3]  # the undecodable record never reached it
    assert all(call.get("java") for call in backend.calls)  # the Java sidecar's request: a bare array
    assert stamp.attempts == len(backend.calls) >= 1
    assert [h["x-attempt"] for h in backend.headers] == [str(n + 1) for n in range(len(backend.calls))]
    dlq = await read_all(kafka_bootstrap, f"{topic}.dlq", 2)
    letters = {int(dict(m.headers)["x-dlq-source-offset"]): m for m in dlq}
    assert sorted(letters) == [1, 2]
    assert letters[1].value == b"\xffnot json"
    assert dict(letters[1].headers)["x-dlq-error"].startswith(b"undecodable")
    assert dict(letters[2].headers)["x-dlq-error"] == b"java.lang.IllegalStateException: n=2"


async def test_key_mode_keeps_per_key_order_with_parallel_lanes(
    kafka_bootstrap: str, consumer_engine: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create(partitions=1, prefix="keyed")
    group = new_group()
    keys: list[bytes | None] = [f"k{n % 6}".encode() for n in range(60)]
    await produce(kafka_bootstrap, topic, json_values(60), partition=0, keys=keys)
    in_flight = 0
    most = 0

    async def reply(body: dict[str, Any]) -> Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.05)  # the backend takes a moment, so lanes overlap
        in_flight -= 1
        return Response(status_code=200)

    backend = Backend(reply=reply)
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "CONSUMER_ENGINE": consumer_engine}
    config = sidecar_yaml(
        "", group, backend, topics=None, topic_pattern=r"keyed-.*" + topic[-8:], concurrency="key", key_lanes=4,
        batch_max_records=5, key_format="string",
    )  # fmt: skip
    async with serving(backend), running_sidecar(config, tmp_path, env=env):
        await wait_committed(kafka_bootstrap, group, {0: 60})
    assert most > 1, "key lanes never ran in parallel"
    per_key: dict[str, list[int]] = {}
    for record in backend.records():
        per_key.setdefault(record["key"], []).append(record["offset"])
    assert sorted(per_key) == [f"k{n}" for n in range(6)]
    for key, offsets in per_key.items():
        assert offsets == sorted(offsets), f"key {key} out of order"
        assert offsets == list(range(int(key[1:]), 60, 6))


async def test_stop_drains_the_in_flight_batch_and_commits(
    kafka_bootstrap: str, consumer_engine: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create(partitions=1)
    group = new_group()
    await produce(kafka_bootstrap, topic, json_values(8), partition=0)
    answering = asyncio.Event()
    release = asyncio.Event()

    async def reply(body: dict[str, Any]) -> Response:
        answering.set()
        await release.wait()
        return Response(status_code=200)

    backend = Backend(reply=reply)
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "CONSUMER_ENGINE": consumer_engine}
    config = sidecar_yaml(topic, group, backend, batch_max_records=8, batch_max_wait_ms=500)
    async with serving(backend):
        async with running_sidecar(config, tmp_path, env=env) as rs:
            await asyncio.wait_for(answering.wait(), 20)
            assert await committed(kafka_bootstrap, group) == {}
            source: Any = rs.sidecar.consumers[0].source
            stopping = asyncio.create_task(source.stop())
            await wait_for(lambda: source.runtime.state == "stopping", 5, "stopping")
            assert not stopping.done()  # the stop waits for the batch the backend is still working on
            release.set()
            await asyncio.wait_for(stopping, 10)
        assert await committed(kafka_bootstrap, group) == {0: 8}
