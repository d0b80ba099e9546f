"""Active consumer against the real broker: lifecycle, offsets, headers, v2 compatibility, limits."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from test_reactive_isolation import _committed_aborted_committed

from kafka_sidecar._view import sidecar_view
from kafka_sidecar.testing import RunningSidecar, running_sidecar
from kafka_sidecar_handlers.active import ActiveConsumerHandler
from kafka_sidecar_plugins.console._state import active_instances
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
    config: {max_instances: 4, instance_timeout_ms: 60000, request_timeout_ms: 500, session_timeout_ms: 6000}
paths:
  - {path: "/topics/{topic}", method: POST, exec: [producer]}
  - {path: "/consumers/{group}", method: POST, exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}", method: DELETE, exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}/subscription", methods: [POST, GET, DELETE], exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}/subscriptions", methods: [POST, GET, DELETE], exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}/assignments", methods: [POST, GET], exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}/records", method: GET, exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}/offsets", methods: [POST, GET, PUT], exec: [active]}
"""
V2 = "application/vnd.kafka.v2+json"


@pytest_asyncio.fixture
async def sidecar(tmp_path: Path, kafka_bootstrap: str, consumer_engine: str) -> AsyncIterator[RunningSidecar]:
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "CONSUMER_ENGINE": consumer_engine}
    async with running_sidecar(CONFIG, tmp_path, env=env) as running:
        yield running


async def create(client: httpx.AsyncClient, group: str, **body: Any) -> str:
    response = await client.post(f"/consumers/{group}", json=body, headers={"content-type": V2})
    assert response.status_code == 200, response.text
    return f"/consumers/{group}/instances/{response.json()['instance_id']}"


async def instance_locked(sidecar: RunningSidecar, base: str, deadline_s: float = 10.0) -> None:
    """Wait (bounded) until the instance at ``base`` (``/consumers/{group}/instances/{name}``) is locked."""
    _, _, group, _, name = base.split("/")
    (handler,) = [i for i in sidecar.sidecar.instances.values() if isinstance(i, ActiveConsumerHandler)]
    instance = handler.manager.get(group, name)
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not instance.lock.locked():
        assert loop.time() < end, f"{base} was never locked"
        await asyncio.sleep(0.001)


async def poll_until(
    client: httpx.AsyncClient, base: str, count: int, accept: str = "application/json", deadline_s: float = 20.0
) -> list[dict[str, Any]]:
    """Poll until ``count`` records arrived (bounded); a real client's loop."""
    got: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while len(got) < count and loop.time() < end:
        response = await client.get(f"{base}/records", params={"timeout": 500}, headers={"accept": accept})
        assert response.status_code == 200, response.text
        got.extend(response.json())
    assert len(got) >= count, f"only {len(got)} of {count} records arrived"
    return got


async def test_lifecycle_commit_and_resume_in_new_instance(
    sidecar: RunningSidecar, kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create(partitions=1)
    group = TopicFactory.unique_name("g")
    await produce_raw(kafka_bootstrap, topic, [{"value": json.dumps({"n": n}).encode()} for n in range(6)])
    client = sidecar.client
    base = await create(client, group, name="first", format="json", **{"auto.offset.reset": "earliest",
                                                                        "auto.commit.enable": "false"})  # fmt: skip
    response = await client.post(f"{base}/subscription", json={"topics": [topic]})
    assert response.status_code == 204
    assert (await client.get(f"{base}/subscription")).json() == {"topics": [topic]}
    records = await poll_until(client, base, 6)
    assert [r["value"] for r in records[:6]] == [{"n": n} for n in range(6)]
    # Commit the third record: Confluent semantics store offset + 1 (the next record to read).
    response = await client.post(f"{base}/offsets", json={"offsets": [{"topic": topic, "partition": 0, "offset": 2}]})
    assert response.status_code == 200, response.text
    committed = await client.request("GET", f"{base}/offsets", json={"partitions": [{"topic": topic, "partition": 0}]})
    assert committed.json()["offsets"] == [{"topic": topic, "partition": 0, "offset": 3, "metadata": ""}]
    assert (await client.delete(base)).status_code == 204
    assert (await client.get(f"{base}/records")).status_code == 404

    second = await create(client, group, name="second", format="json")
    await client.post(f"{second}/subscription", json={"topics": [topic]})
    resumed = await poll_until(client, second, 3)
    assert [r["value"]["n"] for r in resumed] == [3, 4, 5]
    (shown,) = active_instances(sidecar_view(sidecar.sidecar))  # what the admin console shows of it
    assert shown["partitions"] == [{"topic": topic, "partition": 0, "delivered_to": 6, "end_offset": 6, "lag": 0}]
    # Empty body commits everything returned so far (offset 5 -> committed 6).
    assert (await client.post(f"{second}/offsets")).status_code == 200
    query = await client.get(f"{second}/offsets", params={"partitions": f"{topic}:0"})
    assert query.json()["offsets"][0]["offset"] == 6
    await client.delete(second)


async def test_an_empty_body_commit_reaches_past_a_trailing_transaction_marker(
    sidecar: RunningSidecar, kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    """Records at offsets 0, 2 and 4, each followed by its transaction's marker: the log ends at 6."""
    topic = await topic_factory.create(partitions=1)
    await _committed_aborted_committed(kafka_bootstrap, topic)
    client = sidecar.client
    base = await create(client, TopicFactory.unique_name("g"), format="json", autoOffsetReset="earliest",
                        autoCommitEnable=False)  # fmt: skip
    await client.post(f"{base}/subscription", json={"topics": [topic]})
    records = await poll_until(client, base, 3)
    assert [r["offset"] for r in records] == [0, 2, 4]
    response = await client.post(f"{base}/offsets")
    assert response.status_code == 200, response.text
    assert response.json() == [{"topic": topic, "partition": 0, "consumed": 5, "committed": 6}]
    query = await client.get(f"{base}/offsets", params={"partitions": f"{topic}:0"})
    assert query.json()["offsets"][0]["offset"] == 6  # lag 0: nothing is left to read
    await client.delete(base)


async def test_manual_commit_instance_never_commits_unasked(
    sidecar: RunningSidecar, kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create(partitions=1)
    group = TopicFactory.unique_name("g")
    await produce_raw(kafka_bootstrap, topic, [{"value": b'"x"'} for _ in range(3)])
    client = sidecar.client
    base = await create(client, group, format="json", autoOffsetReset="earliest", autoCommitEnable=False)
    await client.post(f"{base}/subscriptions", json={"topics": [topic]})
    await poll_until(client, base, 3)
    await client.delete(base)  # the poll reply "never reached the backend": nothing was committed
    again = await create(client, group, format="json", autoOffsetReset="earliest")
    await client.post(f"{again}/subscription", json={"topics": [topic]})
    assert [r["offset"] for r in await poll_until(client, again, 3)] == [0, 1, 2]


async def test_headers_timestamps_and_v2_binary_media_type(
    sidecar: RunningSidecar, kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create(partitions=1)
    stamp = 1_700_000_000_123
    await produce_raw(
        kafka_bootstrap,
        topic,
        [{"key": b"\x00k", "value": b"\xffv", "headers": [("trace", b"abc"), ("X-Correlation-Id", b"c-1")],
          "timestamp_ms": stamp}],
    )  # fmt: skip
    client = sidecar.client
    base = await create(client, TopicFactory.unique_name("g"), format="binary", **{"auto.offset.reset": "earliest"})
    await client.post(f"{base}/subscription", json={"topics": [topic]}, headers={"content-type": V2})
    [record] = await poll_until(client, base, 1, accept="application/vnd.kafka.binary.v2+json")
    assert base64.b64decode(record["key"]) == b"\x00k"
    assert base64.b64decode(record["value"]) == b"\xffv"
    assert record["headers"] == {"trace": "abc", "X-Correlation-Id": "c-1"}
    assert record["timestamp"] == stamp
    assert (record["topic"], record["partition"], record["offset"]) == (topic, 0, 0)
    wrong = await client.get(f"{base}/records", headers={"accept": "application/vnd.kafka.json.v2+json"})
    assert wrong.status_code == 406
    assert wrong.json()["error_code"] == 40601


async def test_confluent_documented_v2_sequence(sidecar: RunningSidecar, topic_factory: TopicFactory) -> None:
    """The request sequence of Confluent's v2 quick start (JSON), sent unchanged."""
    topic = await topic_factory.create(partitions=1)
    client = sidecar.client
    produced = await client.post(
        f"/topics/{topic}",
        content=json.dumps({"records": [{"value": {"foo": "bar"}}]}),
        headers={"content-type": "application/vnd.kafka.json.v2+json"},
    )
    assert produced.status_code == 200, produced.text
    created = await client.post(
        "/consumers/my_json_consumer",
        content='{"name": "my_consumer_instance", "format": "json", "auto.offset.reset": "earliest"}',
        headers={"content-type": V2},
    )
    assert created.status_code == 200, created.text
    assert created.headers["content-type"].startswith(V2)
    base = "/consumers/my_json_consumer/instances/my_consumer_instance"
    assert created.json() == {"instance_id": "my_consumer_instance", "base_uri": f"http://sidecar{base}"}
    subscribed = await client.post(f"{base}/subscription", content=json.dumps({"topics": [topic]}),
                                   headers={"content-type": V2})  # fmt: skip
    assert subscribed.status_code == 204
    records = await poll_until(client, base, 1, accept="application/vnd.kafka.json.v2+json")
    assert records[0]["value"] == {"foo": "bar"}
    assert records[0]["key"] is None
    deleted = await client.delete(base, headers={"content-type": V2})
    assert deleted.status_code == 204


async def test_unknown_instance_duplicate_and_cap(sidecar: RunningSidecar) -> None:
    client = sidecar.client
    missing = await client.get("/consumers/nogroup/instances/nobody/records")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == 40403
    group = TopicFactory.unique_name("g")
    await create(client, group, name="dup")
    duplicate = await client.post(f"/consumers/{group}", json={"name": "dup"})
    assert duplicate.status_code == 409
    assert duplicate.json()["error_code"] == 40902
    for index in range(3):
        await create(client, group, name=f"fill-{index}")
    capped = await client.post(f"/consumers/{group}", json={"name": "one-too-many"})
    assert capped.status_code == 429
    assert capped.json()["error_code"] == 42901
    await client.delete(f"/consumers/{group}/instances/dup")
    await create(client, group, name="after-delete")


async def test_concurrent_polls_never_interleave(
    sidecar: RunningSidecar, kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create(partitions=1)
    await produce_raw(kafka_bootstrap, topic, [{"value": str(n).encode()} for n in range(200)])
    client = sidecar.client
    base = await create(client, TopicFactory.unique_name("g"), format="string", **{"auto.offset.reset": "earliest"})
    await client.post(f"{base}/subscription", json={"topics": [topic]})
    seen: list[int] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + 20
    while len(seen) < 200 and loop.time() < end:
        replies = await asyncio.gather(
            *(client.get(f"{base}/records", params={"timeout": 300, "max_bytes": 40}) for _ in range(4))
        )
        for reply in replies:
            assert reply.status_code == 200, reply.text
            offsets = [r["offset"] for r in reply.json()]
            assert offsets == list(range(offsets[0], offsets[0] + len(offsets))) if offsets else True
            seen.extend(offsets)
    assert sorted(seen) == list(range(200)), "every record exactly once across concurrent polls"


async def test_bad_instance_bodies_name_the_field(sidecar: RunningSidecar) -> None:
    client = sidecar.client
    base = await create(client, TopicFactory.unique_name("g"), format="json")
    cases = [
        ("POST", "subscription", {"topics": "orders"}, "topics"),
        ("POST", "subscription", {"topic_pattern": "(["}, "topic_pattern"),
        ("POST", "assignments", {"partitions": [{"topic": "t", "partition": "0"}]}, "partitions[0].partition"),
        ("POST", "offsets", {"offsets": [{"topic": "t", "partition": 0, "offset": -1}]}, "offsets[0].offset"),
        ("GET", "offsets", {"partitions": "t:0"}, "partitions"),
    ]
    for method, tail, body, field in cases:
        response = await client.request(method, f"{base}/{tail}", json=body)
        assert response.status_code == 422, (tail, response.text)
        assert response.json()["field"] == field
    bad_query = await client.get(f"{base}/records", params={"timeout": "soon"})
    assert (bad_query.status_code, bad_query.json()["field"]) == (422, "timeout")
    not_json = await client.post(f"{base}/subscription", content=b"{", headers={"content-type": V2})
    assert (not_json.status_code, not_json.json()["field"]) == (422, "body")
    unsubscribed = await client.get(f"{base}/records")
    assert (unsubscribed.status_code, unsubscribed.json()["error_code"]) == (409, 40903)


async def test_a_long_poll_on_one_instance_never_blocks_another(
    sidecar: RunningSidecar, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create(partitions=1)
    client = sidecar.client
    slow = await create(client, TopicFactory.unique_name("g"), **{"fetch.min.bytes": -1})
    other = await create(client, TopicFactory.unique_name("g"))
    await client.post(f"{slow}/subscription", json={"topics": [topic]})
    long_poll = asyncio.create_task(client.get(f"{slow}/records", params={"timeout": 500}))
    await instance_locked(sidecar, slow)  # the long poll now holds its instance's lock
    assert (await client.post(f"{other}/subscription", json={"topics": [topic]})).status_code == 204
    assert (await client.get(f"{other}/subscription")).json() == {"topics": [topic]}
    assert not long_poll.done(), "the other instance answered while the long poll was still waiting"
    assert (await long_poll).status_code == 200


async def test_a_topic_pattern_subscription_reads_the_matching_topic(
    sidecar: RunningSidecar, kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create(partitions=1)
    other = await topic_factory.create(partitions=1)
    await produce_raw(kafka_bootstrap, topic, [{"value": json.dumps({"n": n}).encode()} for n in range(3)])
    await produce_raw(kafka_bootstrap, other, [{"value": b'"not matched"'}])
    client = sidecar.client
    base = await create(client, TopicFactory.unique_name("g"), format="json", **{"auto.offset.reset": "earliest"})
    pattern = topic[: len(topic) - 4] + ".*"  # matches the topic (unique names differ well before the end)
    assert not other.startswith(pattern[:-2])
    response = await client.post(f"{base}/subscription", json={"topic_pattern": pattern})
    assert response.status_code == 204, response.text
    records = await poll_until(client, base, 3)
    assert [(r["topic"], r["value"]) for r in records] == [(topic, {"n": n}) for n in range(3)]
    assert (await client.get(f"{base}/subscription")).json() == {"topics": [topic]}
    await client.delete(base)
