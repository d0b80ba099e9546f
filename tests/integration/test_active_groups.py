"""Active consumer against the real broker: group membership, seeking, manual assignment, expiry, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_sidecar.testing import RunningSidecar, running_sidecar
from kafka_sidecar_testing.pytest_plugin import TopicFactory
from kafka_sidecar_testing.topics import produce_raw

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

CONFIG = """\
kafka:
  bootstrap_servers: ${KAFKA_BOOTSTRAP_SERVERS}
  consumer:
    engine: ${CONSUMER_ENGINE:aiokafka}
handlers:
  active:
    use: active-consumer
    config:
      instance_timeout_ms: 1500
      request_timeout_ms: 500
      session_timeout_ms: 6000
      heartbeat_interval_ms: 300
paths:
  - {path: "/consumers/{group}", method: POST, exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}", method: DELETE, exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}/subscription", methods: [POST, GET, DELETE], exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}/assignments", methods: [POST, GET], exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}/positions", method: POST, exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}/positions/beginning", method: POST, exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}/positions/end", method: POST, exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}/positions/first", method: POST, exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}/records", method: GET, exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}/offsets", methods: [POST, GET], exec: [active]}
"""


@pytest_asyncio.fixture
async def sidecar(tmp_path: Path, kafka_bootstrap: str, consumer_engine: str) -> AsyncIterator[RunningSidecar]:
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "CONSUMER_ENGINE": consumer_engine}
    async with running_sidecar(CONFIG, tmp_path, env=env) as running:
        yield running


async def create(client: httpx.AsyncClient, group: str, **body: Any) -> str:
    response = await client.post(f"/consumers/{group}", json={"format": "string", **body})
    assert response.status_code == 200, response.text
    return f"/consumers/{group}/instances/{response.json()['instance_id']}"


async def eventually(check: Callable[[], Awaitable[bool]], what: str, deadline_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while loop.time() < end:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def records(client: httpx.AsyncClient, base: str, timeout: int = 300) -> list[dict[str, Any]]:
    response = await client.get(f"{base}/records", params={"timeout": timeout})
    assert response.status_code == 200, response.text
    return list(response.json())


async def assigned(client: httpx.AsyncClient, base: str) -> set[int]:
    response = await client.get(f"{base}/assignments")
    assert response.status_code == 200, response.text
    return {p["partition"] for p in response.json()["partitions"]}


async def test_two_instances_split_partitions_then_one_takes_all(
    sidecar: RunningSidecar, kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create(partitions=4)
    group = TopicFactory.unique_name("g")
    client = sidecar.client
    first = await create(client, group, name="a", **{"auto.offset.reset": "earliest"})
    second = await create(client, group, name="b", **{"auto.offset.reset": "earliest"})
    for base in (first, second):
        assert (await client.post(f"{base}/subscription", json={"topics": [topic]})).status_code == 204

    async def split() -> bool:
        await asyncio.gather(records(client, first, 100), records(client, second, 100))
        a, b = await assigned(client, first), await assigned(client, second)
        return len(a) == 2 and len(b) == 2 and a | b == {0, 1, 2, 3}

    await eventually(split, "the group to split four partitions two and two")
    assert (await client.delete(second)).status_code == 204

    async def all_to_first() -> bool:
        await records(client, first, 100)
        return await assigned(client, first) == {0, 1, 2, 3}

    await eventually(all_to_first, "the remaining instance to own all partitions")
    await produce_raw(kafka_bootstrap, topic, [{"value": b"v", "partition": p} for p in range(4)])
    got: list[dict[str, Any]] = []

    async def all_records() -> bool:
        got.extend(await records(client, first))
        return len(got) >= 4

    await eventually(all_records, "records of every partition")
    assert sorted(r["partition"] for r in got) == [0, 1, 2, 3]


async def test_seek_offset_timestamp_beginning_end_with_manual_assignment(
    sidecar: RunningSidecar, kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create(partitions=2)
    base_ts = 1_600_000_000_000
    await produce_raw(
        kafka_bootstrap,
        topic,
        [{"value": f"m{n}".encode(), "partition": 1, "timestamp_ms": base_ts + n} for n in range(10)],
    )
    client = sidecar.client
    base = await create(client, TopicFactory.unique_name("g"))
    tp1 = {"topic": topic, "partition": 1}
    response = await client.post(f"{base}/assignments", json={"partitions": [tp1]})
    assert response.status_code == 204, response.text
    assert await assigned(client, base) == {1}

    async def offsets_after(path: str, body: dict[str, Any]) -> list[int]:
        response = await client.post(f"{base}/{path}", json=body)
        assert response.status_code == 204, response.text
        found: list[int] = []

        async def some() -> bool:
            found.extend(r["offset"] for r in await records(client, base))
            return bool(found)

        await eventually(some, f"records after {path}", 10)
        return found

    assert (await offsets_after("positions", {"offsets": [{**tp1, "offset": 7}]}))[0] == 7
    stamp = {"timestamps": [{**tp1, "timestamp": base_ts + 4}]}
    assert (await offsets_after("positions", stamp))[0] == 4
    assert (await offsets_after("positions/beginning", {"partitions": [tp1]}))[0] == 0
    assert (await offsets_after("positions/first", {}))[0] == 0  # Java alias; empty body: all assigned
    response = await client.post(f"{base}/positions/end", json={"partitions": [tp1]})
    assert response.status_code == 204
    assert await records(client, base) == []
    await produce_raw(kafka_bootstrap, topic, [{"value": b"late", "partition": 1}])
    late: list[dict[str, Any]] = []

    async def got_late() -> bool:
        late.extend(await records(client, base))
        return bool(late)

    await eventually(got_late, "the record produced after seeking to the end")
    assert [(r["offset"], r["value"]) for r in late] == [(10, "late")]
    unassigned = await client.post(
        f"{base}/positions", json={"offsets": [{"topic": topic, "partition": 0, "offset": 0}]}
    )
    assert unassigned.status_code == 409
    assert unassigned.json()["error_code"] == 40903


async def test_idle_instance_expires_and_leaves_group(
    sidecar: RunningSidecar, kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create(partitions=1)
    group = TopicFactory.unique_name("g")
    client = sidecar.client
    base = await create(client, group, **{"auto.offset.reset": "earliest"})
    await client.post(f"{base}/subscription", json={"topics": [topic]})
    await eventually(lambda: _has_assignment(client, base), "the instance to join its group")

    manager = sidecar.sidecar.instances["active"].manager  # type: ignore[attr-defined]

    async def gone() -> bool:  # looks without touching the instance (a request would keep it alive)
        return len(manager) == 0

    await eventually(gone, "the idle instance to expire", 10)
    assert (await client.get(f"{base}/assignments")).json()["error_code"] == 40403
    # It left the group: a plain consumer in the same group gets the partition at once.
    other = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, group_id=group, session_timeout_ms=6000)
    await other.start()
    try:

        async def joined() -> bool:
            await other.getmany(timeout_ms=100)
            return bool(other.assignment() == {TopicPartition(topic, 0)})

        await eventually(joined, "a new member to get the partition", 5)
    finally:
        await other.stop()


async def _has_assignment(client: httpx.AsyncClient, base: str) -> bool:
    await records(client, base, 100)
    return bool(await assigned(client, base))


async def test_sidecar_stop_closes_instances(
    tmp_path: Path, kafka_bootstrap: str, topic_factory: TopicFactory, consumer_engine: str
) -> None:
    topic = await topic_factory.create(partitions=1)
    group = TopicFactory.unique_name("g")
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "CONSUMER_ENGINE": consumer_engine}
    async with running_sidecar(CONFIG.replace("1500", "600000"), tmp_path, env=env) as running:
        base = await create(running.client, group, **{"auto.offset.reset": "earliest"})
        await running.client.post(f"{base}/subscription", json={"topics": [topic]})
        await eventually(lambda: _has_assignment(running.client, base), "the instance to join its group")
        handler = running.sidecar.instances["active"]
    assert len(handler.manager) == 0  # type: ignore[attr-defined]
    other = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, group_id=group, session_timeout_ms=6000)
    await other.start()
    try:

        async def joined() -> bool:
            await other.getmany(timeout_ms=100)
            return bool(other.assignment())

        await eventually(joined, "the partition to be free at once (the closed instance left the group)", 5)
    finally:
        await other.stop()


@pytest_asyncio.fixture
async def patient(tmp_path: Path, kafka_bootstrap: str, consumer_engine: str) -> AsyncIterator[RunningSidecar]:
    """Instances that never expire during a test and auto-commit only when a rebalance (or close) makes them."""
    config = CONFIG.replace("1500", "600000").replace(
        "heartbeat_interval_ms: 300", "heartbeat_interval_ms: 300\n      auto_commit_interval_ms: 600000"
    )
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "CONSUMER_ENGINE": consumer_engine}
    async with running_sidecar(config, tmp_path, env=env) as running:
        yield running


async def test_unsubscribing_hands_the_partitions_to_the_group_without_another_poll(
    patient: RunningSidecar, kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create(partitions=1)
    group = TopicFactory.unique_name("g")
    client = patient.client
    base = await create(client, group)
    await client.post(f"{base}/subscription", json={"topics": [topic]})
    await eventually(lambda: _has_assignment(client, base), "the instance to join its group")
    assert (await client.delete(f"{base}/subscription")).status_code == 204
    assert await assigned(client, base) == set()
    other = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, session_timeout_ms=6000)
    await other.start()
    other.subscribe([topic])
    try:

        async def joined() -> bool:  # the instance is not polled again, and lives on (no expiry)
            await other.getmany(timeout_ms=100)
            return bool(other.assignment() == {TopicPartition(topic, 0)})

        # Well within the session timeout (6 s): the instance left the group, it was not evicted. A bound
        # around the whole wait, as one getmany() blocks while the group rebalances.
        async with asyncio.timeout(3):
            await eventually(joined, "the group to give the partition to a new member", 3)
    finally:
        await other.stop()


async def test_an_auto_commit_instance_commits_what_it_returned_before_a_rebalance_takes_it(
    patient: RunningSidecar, kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create(partitions=2)
    await produce_raw(kafka_bootstrap, topic, [{"value": b"v%d" % n, "partition": n % 2} for n in range(10)])
    group = TopicFactory.unique_name("g")
    client = patient.client
    base = await create(client, group, **{"auto.offset.reset": "earliest", "auto.commit.enable": "true"})
    await client.post(f"{base}/subscription", json={"topics": [topic]})
    got: list[dict[str, Any]] = []

    async def all_returned() -> bool:
        got.extend(await records(client, base))
        return len(got) >= 10

    await eventually(all_returned, "the instance to return every record")
    other = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=group, session_timeout_ms=6000, enable_auto_commit=False
    )
    await other.start()  # subscribed after start: start() would wait for the group's rebalance, which waits for a poll
    other.subscribe([topic])

    async def keep_polling() -> None:  # a librdkafka instance takes part in a rebalance while it is polled
        while True:
            await records(client, base, 100)

    poller = asyncio.create_task(keep_polling())
    try:

        async def split() -> bool:
            await other.getmany(timeout_ms=100)
            return len(other.assignment()) == 1 and len(await assigned(client, base)) == 1

        await eventually(split, "the group to split the two partitions")
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)
        (taken,) = other.assignment()
        assert await other.committed(taken) == 5, "the revoked partition's returned records were committed"
        assert await other.getmany(timeout_ms=500) == {}, "nothing is read twice"
    finally:
        poller.cancel()
        await other.stop()


async def test_resubscribing_right_after_unsubscribing_hands_out_every_record_again(
    patient: RunningSidecar, kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create(partitions=1)
    await produce_raw(kafka_bootstrap, topic, [{"value": b"v%d" % n} for n in range(20)])
    client = patient.client
    base = await create(client, TopicFactory.unique_name("g"), **{"auto.offset.reset": "earliest"})
    await client.post(f"{base}/subscription", json={"topics": [topic]})
    await eventually(lambda: _has_assignment(client, base), "the instance to join its group")
    assert (await client.delete(f"{base}/subscription")).status_code == 204
    assert (await client.post(f"{base}/subscription", json={"topics": [topic]})).status_code == 204
    offsets: list[int] = []

    async def all_again() -> bool:  # nothing was committed: the new assignment starts at the beginning
        offsets.extend(r["offset"] for r in await records(client, base))
        return len(offsets) >= 20

    await eventually(all_again, "every record after subscribing again")
    assert offsets == list(range(20))
