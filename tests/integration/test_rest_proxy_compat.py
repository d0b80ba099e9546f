"""Confluent REST Proxy compatibility through the shipped chains.yml: v2 quickstart, metadata, v3 produce and lag."""

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
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from kafka_sidecar.testing import RunningSidecar, running_sidecar
from kafka_sidecar_testing.pytest_plugin import TopicFactory

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

SHIPPED = (Path(__file__).resolve().parents[2] / "chains.yml").read_text(encoding="utf-8")
V2 = "application/vnd.kafka.v2+json"
V2_JSON = "application/vnd.kafka.json.v2+json"
V2_BINARY = "application/vnd.kafka.binary.v2+json"


@pytest_asyncio.fixture
async def shipped(tmp_path: Path, kafka_bootstrap: str) -> AsyncIterator[RunningSidecar]:
    async with running_sidecar(SHIPPED, tmp_path, env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}) as running:
        yield running


async def end_offset_of(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


async def poll(client: httpx.AsyncClient, base: str, count: int, accept: str) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + 30
    while len(got) < count and loop.time() < end:
        response = await client.get(f"{base}/records", params={"timeout": 500}, headers={"accept": accept})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == accept
        got.extend(response.json())
    return got


async def test_v2_metadata_routes_have_confluents_shapes_and_codes(
    shipped: RunningSidecar, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create(partitions=2)
    client = shipped.client
    root = await client.get("/", headers={"accept": V2})
    assert (root.status_code, root.json(), root.headers["content-type"]) == (200, {}, V2)
    brokers = (await client.get("/brokers")).json()
    assert isinstance(brokers["brokers"], list)
    assert brokers["brokers"]
    assert topic in (await client.get("/topics")).json()
    assert topic in (await client.get("/topics/")).json(), "a trailing slash is served, not redirected"
    described = (await client.get(f"/topics/{topic}")).json()
    assert described["name"] == topic
    assert [p["partition"] for p in described["partitions"]] == [0, 1]
    assert described["configs"]["cleanup.policy"] == "delete"
    replica = described["partitions"][0]["replicas"][0]
    assert replica == {"broker": described["partitions"][0]["leader"], "leader": True, "in_sync": True}
    assert len((await client.get(f"/topics/{topic}/partitions")).json()) == 2
    assert (await client.get(f"/topics/{topic}/partitions/1")).json()["partition"] == 1
    await client.post(f"/topics/{topic}/partitions/1", json={"records": [{"value": 1}, {"value": 2}]})
    offsets = await client.get(f"/topics/{topic}/partitions/1/offsets")
    assert offsets.json() == {"beginning_offset": 0, "end_offset": 2}
    assert (await client.post("/", json={"a": "b"}, headers={"content-type": V2})).json() == {}
    missing = await client.get("/topics/no-such-topic-anywhere", headers={"accept": V2})
    assert (missing.status_code, missing.json()["error_code"], missing.headers["content-type"]) == (404, 40401, V2)
    no_partition = await client.get(f"/topics/{topic}/partitions/7")
    assert (no_partition.status_code, no_partition.json()["error_code"]) == (404, 40402)
    assert no_partition.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("create_type", [V2, V2_JSON, V2_BINARY, "application/json"])
async def test_v2_quickstart_json_consumer_lifecycle(
    shipped: RunningSidecar, topic_factory: TopicFactory, create_type: str
) -> None:
    """Confluent's quickstart: produce JSON, create a JSON consumer, subscribe, consume, commit, delete."""
    topic = await topic_factory.create()
    client = shipped.client
    group = f"qs-{topic}"
    produced = await client.post(
        f"/topics/{topic}",
        content=json.dumps({"records": [{"value": {"foo": "bar"}}]}),
        headers={"content-type": V2_JSON},
    )
    assert produced.status_code == 200, produced.text
    assert produced.headers["content-type"] == V2
    assert produced.json()["offsets"][0]["offset"] == 0
    created = await client.post(
        f"/consumers/{group}",
        content=json.dumps({"name": "ci", "format": "json", "auto.offset.reset": "earliest"}),
        headers={"content-type": create_type},
    )
    assert created.status_code == 200, created.text
    assert created.headers["content-type"] == V2, "httpx sends Accept: */*, answered with the v2 type as Confluent"
    base = f"/consumers/{group}/instances/ci"
    assert created.json()["base_uri"].endswith(base)
    subscribed = await client.post(f"{base}/subscription", content=json.dumps({"topics": [topic]}),
                                   headers={"content-type": create_type})  # fmt: skip
    assert subscribed.status_code == 204, subscribed.text
    records = await poll(client, base, 1, V2_JSON)
    assert [(r["topic"], r["value"], r["offset"]) for r in records] == [(topic, {"foo": "bar"}, 0)]
    committed = await client.post(
        f"{base}/offsets/",  # trailing slash answered, not redirected
        content=json.dumps({"offsets": [{"topic": topic, "partition": 0, "offset": 0}]}),
        headers={"content-type": create_type},
    )
    assert committed.status_code == 200, committed.text
    assert committed.json() == [{"topic": topic, "partition": 0, "consumed": 0, "committed": 1}]
    offsets = await client.request(
        "GET", f"{base}/offsets", content=json.dumps({"partitions": [{"topic": topic, "partition": 0}]}),
        headers={"content-type": create_type},
    )  # fmt: skip
    assert offsets.json() == {"offsets": [{"topic": topic, "partition": 0, "offset": 1, "metadata": ""}]}
    deleted = await client.delete(base, headers={"content-type": V2})
    assert deleted.status_code == 204


async def test_v2_binary_quickstart_accept_any_and_uncommitted_partitions_left_out(
    shipped: RunningSidecar, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create(partitions=2)
    client = shipped.client
    value = base64.b64encode(b"Kafka").decode()
    produced = await client.post(
        f"/topics/{topic}", content=json.dumps({"records": [{"value": value, "partition": 0}]}),
        headers={"content-type": V2_BINARY},
    )  # fmt: skip
    assert produced.status_code == 200, produced.text
    group = f"bin-{topic}"
    created = await client.post(f"/consumers/{group}", json={"name": "b", "format": "binary",
                                                             "auto.offset.reset": "earliest"},
                                headers={"content-type": V2_BINARY})  # fmt: skip
    assert created.status_code == 200, created.text
    base = f"/consumers/{group}/instances/b"
    assigned = await client.post(f"{base}/assignments", json={"partitions": [{"topic": topic, "partition": 0},
                                                                            {"topic": topic, "partition": 1}]},
                                 headers={"content-type": V2})  # fmt: skip
    assert assigned.status_code == 204
    records = await poll(client, base, 1, V2_BINARY)
    assert records[0]["value"] == value
    again = await client.get(f"{base}/records", params={"timeout": 100}, headers={"accept": "*/*"})
    assert again.headers["content-type"] == V2_BINARY
    assert (await client.post(f"{base}/offsets", headers={"content-type": V2})).status_code == 200
    offsets = await client.get(f"{base}/offsets", params={"partitions": f"{topic}:0,{topic}:1"})
    assert offsets.json()["offsets"] == [{"topic": topic, "partition": 0, "offset": 1, "metadata": ""}]
    # seek by an ISO-8601 timestamp, as Confluent's own tests send it
    seek = await client.post(
        f"{base}/positions",
        json={"timestamps": [{"topic": topic, "partition": 0, "timestamp": "2000-01-01T00:00:00.000Z"}]},
        headers={"content-type": V2},
    )
    assert seek.status_code == 204, seek.text
    assert (await poll(client, base, 1, V2_BINARY))[0]["offset"] == 0
    # max_bytes: a record larger than the limit is not returned
    await client.post(f"{base}/positions/beginning", json={}, headers={"content-type": V2})
    small = await client.get(f"{base}/records", params={"timeout": 300, "max_bytes": 2}, headers={"accept": V2_BINARY})
    assert (small.status_code, small.json()) == (200, [])
    await client.delete(base)


async def test_v2_error_codes_are_confluents_with_validation_in_the_chain(
    shipped: RunningSidecar, topic_factory: TopicFactory
) -> None:
    client = shipped.client
    bad_reset = await client.post("/consumers/g-err", json={"auto.offset.reset": 5}, headers={"accept": V2})
    assert (bad_reset.status_code, bad_reset.json()["error_code"]) == (422, 42204)
    assert bad_reset.headers["content-type"] == V2
    bad_word = await client.post("/consumers/g-err", json={"auto.offset.reset": "sometimes"})
    assert (bad_word.status_code, bad_word.json()["error_code"]) == (422, 42204)
    assert bad_word.headers["content-type"] == "application/problem+json"
    missing = await client.get("/consumers/g-err/instances/nobody/records", headers={"accept": V2})
    assert (missing.status_code, missing.json()["error_code"]) == (404, 40403)
    assert "message" in missing.json()


async def test_v2_pattern_subscription_first_poll_is_200(shipped: RunningSidecar, topic_factory: TopicFactory) -> None:
    topic = await topic_factory.create(prefix="pattern")
    client = shipped.client
    created = await client.post(f"/consumers/p-{topic}", json={"name": "p", "auto.offset.reset": "earliest"})
    base = f"/consumers/p-{topic}/instances/p"
    assert created.status_code == 200
    assert (await client.post(f"{base}/subscription", json={"topic_pattern": f"{topic}.*"})).status_code == 204
    first = await client.get(f"{base}/records", params={"timeout": 100})
    assert first.status_code == 200, first.text
    await client.delete(base)


async def test_v3_streamed_produce_of_10000_records_in_order_and_in_kafka(
    shipped: RunningSidecar, topic_factory: TopicFactory, kafka_bootstrap: str
) -> None:
    topic = await topic_factory.create()
    client = shipped.client
    cluster_id = (await client.get("/v3/clusters")).json()["data"][0]["cluster_id"]
    count = 10_000
    body = "\n".join(
        json.dumps({"key": {"type": "STRING", "data": f"k{i}"}, "value": {"type": "JSON", "data": {"n": i}}})
        for i in range(count)
    ).encode()

    async def chunks() -> AsyncIterator[bytes]:  # one connection, the records as a chunked stream
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = await client.post(
        f"/v3/clusters/{cluster_id}/topics/{topic}/records",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text[:500]
    results = [json.loads(line) for line in response.text.splitlines()]
    assert len(results) == count
    assert [r["offset"] for r in results] == list(range(count)), "one result per record, in order"
    assert all(r["error_code"] == 200 and r["topic_name"] == topic for r in results)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        seen: list[int] = []
        loop = asyncio.get_running_loop()
        end = loop.time() + 30
        while len(seen) < count and loop.time() < end:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                seen.extend(json.loads(m.value)["n"] for m in batch)
    finally:
        await consumer.stop()
    assert seen == list(range(count))


async def test_v3_single_record_batch_admin_reads_and_lag_equal_to_the_brokers(
    shipped: RunningSidecar, topic_factory: TopicFactory, kafka_bootstrap: str
) -> None:
    topic = await topic_factory.create(partitions=2)
    client = shipped.client
    cluster_id = (await client.get("/v3/clusters")).json()["data"][0]["cluster_id"]
    base = f"/v3/clusters/{cluster_id}"
    one = await client.post(
        f"{base}/topics/{topic}/records",
        json={"partition_id": 1, "headers": [{"name": "h", "value": base64.b64encode(b"v").decode()}],
              "value": {"type": "BINARY", "data": base64.b64encode(b"raw").decode()},
              "timestamp": "2026-12-01T18:39:15.890Z"},
    )  # fmt: skip
    assert one.status_code == 200, one.text
    assert one.headers["x-correlation-id"], "the chain's response headers are on a streamed reply too"
    assert (one.json()["partition_id"], one.json()["timestamp"]) == (1, "2026-12-01T18:39:15.890Z")
    assert one.json()["value"] == {"type": "BINARY", "size": 3}
    batch = await client.post(
        f"{base}/topics/{topic}/records:batch",
        json={"entries": [{"id": str(i), "partition_id": 0, "value": {"type": "JSON", "data": i}} for i in range(5)]},
    )
    assert batch.status_code == 207, batch.text
    assert [s["id"] for s in batch.json()["successes"]] == ["0", "1", "2", "3", "4"]
    assert (await client.get(f"{base}/topics/{topic}")).json()["partitions_count"] == 2
    assert len((await client.get(f"{base}/topics/{topic}/partitions")).json()["data"]) == 2
    configs = (await client.get(f"{base}/topics/{topic}/configs")).json()["data"]
    assert any(c["name"] == "retention.ms" for c in configs)
    missing = await client.get(f"{base}/topics/not-a-topic-here")
    assert (missing.status_code, missing.json()["error_code"]) == (404, 404)
    # a live group member owning both partitions, having committed 2 of the 5 records of partition 0
    group = f"lag-{topic}"
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, group_id=group, client_id="lag-probe", enable_auto_commit=False
    )
    await consumer.start()
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + 30
        while len(consumer.assignment()) < 2 and loop.time() < end:
            await consumer.getmany(timeout_ms=200)
        assert len(consumer.assignment()) == 2
        await consumer.commit({TopicPartition(topic, 0): 2})
        lags = (await client.get(f"{base}/consumer-groups/{group}/lags")).json()["data"]
        summary = (await client.get(f"{base}/consumer-groups/{group}/lag-summary")).json()
        consumers = (await client.get(f"{base}/consumer-groups/{group}/consumers")).json()["data"]
        described = (await client.get(f"{base}/consumer-groups/{group}")).json()
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            broker_committed = await admin.list_consumer_group_offsets(group)
        finally:
            await admin.close()
        broker_end = await consumer.end_offsets([TopicPartition(topic, 0)])
    finally:
        await consumer.stop()
    tp0 = TopicPartition(topic, 0)
    broker_lag = broker_end[tp0] - broker_committed[tp0].offset
    assert [(x["partition_id"], x["current_offset"], x["log_end_offset"], x["lag"]) for x in lags] == [
        (0, broker_committed[tp0].offset, broker_end[tp0], broker_lag)
    ]
    assert broker_lag == 3
    assert lags[0]["client_id"] == "lag-probe"
    assert lags[0]["consumer_id"] == consumers[0]["consumer_id"] != ""
    assert (summary["total_lag"], summary["max_lag"], summary["max_lag_partition_id"]) == (3, 3, 0)
    assert summary["max_lag_client_id"] == "lag-probe"
    assert (described["consumer_group_id"], described["state"]) == (group, "STABLE")


async def test_v3_create_and_delete_topic_behind_the_admin_guard(tmp_path: Path, kafka_bootstrap: str) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    name = TopicFactory.unique_name("v3create")
    async with running_sidecar(SHIPPED, tmp_path, env=env, client_host="10.1.2.3") as remote:
        cluster_id = (await remote.client.get("/v3/clusters")).json()["data"][0]["cluster_id"]
        refused = await remote.client.post(f"/v3/clusters/{cluster_id}/topics", json={"topic_name": name})
        assert (refused.status_code, refused.json()["error_code"]) == (403, 403)
    async with running_sidecar(SHIPPED, tmp_path, env=env) as local:
        topics = f"/v3/clusters/{cluster_id}/topics"
        created = await local.client.post(topics, json={"topic_name": name, "partitions_count": 3})
        assert created.status_code == 201, created.text
        assert created.json()["partitions_count"] == 3
        again = await local.client.post(topics, json={"topic_name": name})
        assert again.status_code == 409
        assert (await local.client.delete(f"{topics}/{name}")).status_code == 204


async def test_commit_reply_java_sidecar_shape_behind_a_switch(
    tmp_path: Path, kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create()
    config = SHIPPED.replace(
        "handlers:\n",
        "handlers:\n  active-consumer:\n    use: active-consumer\n    config: {commit_reply: java-sidecar}\n",
        1,
    )
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    async with running_sidecar(config, tmp_path, env=env) as running:
        client = running.client
        await client.post(f"/topics/{topic}", json={"records": [{"value": 1}]})
        created = await client.post(f"/consumers/j-{topic}", json={"name": "j", "auto.offset.reset": "earliest",
                                                                   "format": "json"})  # fmt: skip
        assert created.status_code == 200, created.text
        base = f"/consumers/j-{topic}/instances/j"
        await client.post(f"{base}/assignments", json={"partitions": [{"topic": topic, "partition": 0}]})
        assert len(await poll(client, base, 1, V2_JSON)) == 1
        committed = await client.post(
            f"{base}/offsets", json={"offsets": [{"topic": topic, "partition": 0, "offset": 0}]}
        )
        assert committed.json() == {"offsets": [{"topic": topic, "partition": 0, "consumed": 0, "committed": 1}]}
        await client.delete(base)


async def test_served_openapi_describes_every_new_route(shipped: RunningSidecar) -> None:
    document = (await shipped.client.get("/openapi.json")).json()
    for compiled in shipped.sidecar.routes:
        for method in compiled.plan.methods:
            operation = document["paths"][compiled.plan.path][method.lower()]
            assert operation["summary"], f"{method} {compiled.plan.path}"
    produce = document["paths"]["/v3/clusters/{cluster_id}/topics/{topic_name}/records"]["post"]
    assert produce["tags"] == ["REST Proxy v3"]
    assert "/topics/{topic}/partitions/{partition}" in document["paths"]
    create = document["paths"]["/consumers/{group}"]["post"]["requestBody"]["content"]
    assert "application/vnd.kafka.protobuf.v2+json" in create


async def test_avro_quickstart_42201_42202_and_v3_avro_produce(
    tmp_path: Path, kafka_bootstrap: str, schema_registry_url: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create()
    avro = "application/vnd.kafka.avro.v2+json"
    point = json.dumps({"type": "record", "name": "P", "fields": [{"name": "x", "type": "int"}]})
    config = SHIPPED.replace("plugins:\n", f'schema_registry:\n  urls: ["{schema_registry_url}"]\nplugins:\n', 1)
    async with running_sidecar(config, tmp_path, env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}) as running:
        client = running.client
        no_value = await client.post(
            f"/topics/{topic}", content=json.dumps({"records": [{"value": {"x": 1}}]}), headers={"content-type": avro}
        )
        assert (no_value.status_code, no_value.json()["error_code"]) == (422, 42202), no_value.text
        no_key = await client.post(
            f"/topics/{topic}",
            content=json.dumps({"value_schema": point, "records": [{"key": {"x": 1}, "value": {"x": 2}}]}),
            headers={"content-type": avro},
        )
        assert (no_key.status_code, no_key.json()["error_code"]) == (422, 42201), no_key.text
        # Confluent's Avro quickstart: produce with value_schema, then an avro consumer reads it back
        produced = await client.post(
            f"/topics/{topic}",
            content=json.dumps({"value_schema": point, "records": [{"value": {"x": 7}}]}),
            headers={"content-type": avro, "accept": V2},
        )
        assert produced.status_code == 200, produced.text
        assert isinstance(produced.json()["value_schema_id"], int)
        created = await client.post(
            f"/consumers/avro-{topic}", json={"name": "a", "format": "avro", "auto.offset.reset": "earliest"},
            headers={"content-type": V2},
        )  # fmt: skip
        assert created.status_code == 200, created.text
        base = f"/consumers/avro-{topic}/instances/a"
        await client.post(f"{base}/subscription", json={"topics": [topic]}, headers={"content-type": V2})
        records = await poll(client, base, 1, avro)
        assert records[0]["value"] == {"x": 7}
        await client.delete(base)
        cluster_id = (await client.get("/v3/clusters")).json()["data"][0]["cluster_id"]
        v3 = await client.post(
            f"/v3/clusters/{cluster_id}/topics/{topic}/records",
            json={"value": {"type": "AVRO", "schema": point, "data": {"x": 5}}},
        )
        assert v3.status_code == 200, v3.text
        value = v3.json()["value"]
        assert (value["type"], value["size"]) == ("AVRO", 6)  # magic byte + 4-byte schema id + zigzag 5
        assert v3.json()["offset"] == 1
        v3_records = f"/v3/clusters/{cluster_id}/topics/{topic}/records"
        by_id = await client.post(v3_records, json={"value": {"schema_id": value["schema_id"], "data": {"x": 6}}})
        assert by_id.json()["value"] == {"type": "AVRO", "size": 6, "schema_id": value["schema_id"]}, by_id.text
        by_version = await client.post(
            v3_records,
            json={"value": {"type": "AVRO", "subject": f"{topic}-value", "schema_version": 1, "data": {"x": 7}}},
        )
        assert by_version.json()["value"]["schema_id"] == value["schema_id"], by_version.text
        key_schema = json.dumps({"type": "object", "properties": {"k": {"type": "integer"}}})
        as_jsonschema = await client.post(
            v3_records, json={"key": {"type": "JSONSCHEMA", "schema": key_schema, "data": {"k": 1}}}
        )
        assert as_jsonschema.json()["key"]["type"] == "JSONSCHEMA", as_jsonschema.text
        bad = await client.post(
            v3_records, json={"value": {"schema_id": value["schema_id"], "data": {"x": "not an int"}}}
        )
        assert bad.status_code == 200, "a streamed result: the record's own error"
        assert bad.json()["error_code"] == 422
        assert bad.json()["message"]
        assert await end_offset_of(kafka_bootstrap, topic) == 5, "the refused record was not written"


async def test_new_get_routes_answer_what_the_served_description_says(
    shipped: RunningSidecar, topic_factory: TopicFactory, kafka_bootstrap: str
) -> None:
    from jsonschema import Draft202012Validator

    topic = await topic_factory.create(partitions=2)
    client = shipped.client
    document = (await client.get("/openapi.json")).json()
    cluster_id = (await client.get("/v3/clusters")).json()["data"][0]["cluster_id"]
    group = f"doc-{topic}"
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.commit({TopicPartition(topic, 0): 0})
    finally:
        await consumer.stop()
    values = {"topic": topic, "partition": "0", "cluster_id": cluster_id, "topic_name": topic,
              "partition_id": "0", "consumer_group_id": group}  # fmt: skip
    checked = 0
    for path, item in document["paths"].items():
        if "get" not in item or not (path in ("/", "/brokers") or path.startswith(("/topics", "/v3/"))):
            continue
        url = path
        for name, value in values.items():
            url = url.replace("{" + name + "}", value)
        response = await client.get(url)
        assert response.status_code == 200, f"{url}: {response.text}"
        schema = item["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        errors = list(Draft202012Validator(schema).iter_errors(response.json()))
        assert not errors, f"{url}: {errors[0].message}"
        checked += 1
    assert checked >= 19
