"""examples/embedding/app.py against the real broker: the mounted sidecar app and an in-process chain."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from starlette.applications import Starlette

from kafka_sidecar_testing.modules import load_module
from kafka_sidecar_testing.pytest_plugin import TopicFactory

APP_FILE = Path(__file__).resolve().parents[2] / "examples" / "embedding" / "app.py"


example = load_module(APP_FILE, "kafka_sidecar_example_embedding")


async def _read(bootstrap: str, topic: str, count: int) -> list[tuple[bytes | None, bytes | None]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    got: list[tuple[bytes | None, bytes | None]] = []
    try:
        consumer.assign([TopicPartition(topic, 0)])
        async with asyncio.timeout(30):
            while len(got) < count:
                for messages in (await consumer.getmany(timeout_ms=500)).values():
                    got.extend((m.key, m.value) for m in messages)
    finally:
        await consumer.stop()
    return got


@pytest_asyncio.fixture
async def host(kafka_bootstrap: str, topic_factory: TopicFactory) -> AsyncIterator[tuple[Starlette, str]]:
    """The example host app, started through its own lifespan, with a fresh orders topic."""
    orders = await topic_factory.create(partitions=1, prefix="orders")
    sidecar = example.load_sidecar(env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap})
    app: Starlette = example.build_app(sidecar, orders_topic=orders)
    async with app.router.lifespan_context(app):
        assert await sidecar.resources.producer.wait_connected(30), sidecar.resources.producer.last_error
        yield app, orders


@pytest.mark.kafka
@pytest.mark.asyncio
async def test_mounted_sidecar_app_produces_under_the_prefix(
    host: tuple[Starlette, str], topic_factory: TopicFactory
) -> None:
    app, _ = host
    topic = await topic_factory.create(partitions=1, prefix="mounted")
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://host") as client:
        assert (await client.get("/kafka/health/ready")).status_code == 200
        ok = await client.post(
            f"/kafka/producers/{topic}", json={"records": [{"key": "a", "value": {"n": 1}}, {"key": "b", "value": 2}]}
        )
        bad = await client.post(f"/kafka/producers/{topic}", json={"records": [{"key": "c", "value": 1}, "nope"]})
    assert ok.status_code == 200, ok.text
    assert [entry["offset"] for entry in ok.json()["offsets"]] == [0, 1]
    assert bad.status_code in (400, 422), bad.text
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert "records[1]" in bad.json()["field"]
    # string keys (embedding/chains.yml sets key_format: string), compact JSON values; the bad batch produced nothing
    assert await _read(topic_factory.bootstrap_servers, topic, 2) == [(b"a", b'{"n":1}'), (b"b", b"2")]


@pytest.mark.kafka
@pytest.mark.asyncio
async def test_compiled_chain_runs_in_process(host: tuple[Starlette, str], topic_factory: TopicFactory) -> None:
    app, orders = host
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://host") as client:
        placed = await client.post("/orders", json={"id": "o-1", "item": "book"})
        rejected = await client.post("/orders", content=b"not json", headers={"content-type": "application/json"})
    assert placed.status_code == 202, placed.text
    assert placed.json() == {"order": "o-1", "partition": 0, "offset": 0}
    assert rejected.status_code == 400

    records = await _read(topic_factory.bootstrap_servers, orders, 1)
    assert records[0][0] == b"o-1"
    assert json.loads(records[0][1] or b"") == {"id": "o-1", "item": "book"}


@pytest.mark.kafka
@pytest.mark.asyncio
async def test_produce_in_process_returns_the_chain_reply(topic_factory: TopicFactory, kafka_bootstrap: str) -> None:
    topic = await topic_factory.create(partitions=1, prefix="direct")
    # No host app at all: load chains.yml, start the sidecar, await the compiled chain.
    sidecar = example.load_sidecar(env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap})
    await sidecar.start()
    try:
        assert await sidecar.resources.producer.wait_connected(30)
        chain = sidecar.chain_for("POST", "/producers/{topic}")
        reply = await example.produce_in_process(chain, topic, [{"key": "k", "value": [1, 2]}])
        invalid = await example.produce_in_process(chain, topic, [{"key": "k", "value": 1, "partition": 7}])
    finally:
        await sidecar.stop()
    assert reply.status == 200, reply.body
    assert isinstance(reply.body, dict)
    assert reply.body["offsets"][0]["offset"] == 0
    assert invalid.status in (400, 404, 422), invalid.body
    assert isinstance(invalid.body, dict)
    assert invalid.body["field"] == "records[0].partition"
    assert await _read(topic_factory.bootstrap_servers, topic, 1) == [(b"k", b"[1,2]")]
