"""Active consumer reading ahead (``read_ahead``, on by default) against the real broker: every record
exactly once and in order, and what was read ahead never counts as delivered."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from kafka_sidecar.testing import running_sidecar
from kafka_sidecar_handlers.active import ActiveConsumerHandler
from kafka_sidecar_testing.pytest_plugin import TopicFactory
from kafka_sidecar_testing.topics import produce_raw

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

CONFIG = """\
kafka:
  bootstrap_servers: ${{KAFKA_BOOTSTRAP_SERVERS}}
  consumer:
    engine: ${{CONSUMER_ENGINE:aiokafka}}
handlers:
  active:
    use: active-consumer
    config: {{max_poll_records: 7, request_timeout_ms: 500, session_timeout_ms: 6000, read_ahead: {read_ahead}}}
paths:
  - {{path: "/consumers/{{group}}", method: POST, exec: [active]}}
  - {{path: "/consumers/{{group}}/instances/{{instance}}", method: DELETE, exec: [active]}}
  - {{path: "/consumers/{{group}}/instances/{{instance}}/subscription", method: POST, exec: [active]}}
  - {{path: "/consumers/{{group}}/instances/{{instance}}/records", method: GET, exec: [active]}}
  - {{path: "/consumers/{{group}}/instances/{{instance}}/offsets", methods: [POST, GET], exec: [active]}}
"""
V2 = "application/vnd.kafka.v2+json"
PARTITIONS, PER_PARTITION = 3, 40


@pytest.mark.parametrize("read_ahead", ["true", "false"])
@pytest.mark.parametrize("fmt", ["binary", "json"])
async def test_every_record_once_in_order_and_an_empty_commit_covers_only_what_was_returned(
    tmp_path: Path, kafka_bootstrap: str, topic_factory: TopicFactory, read_ahead: str, fmt: str, consumer_engine: str
) -> None:
    topic = await topic_factory.create(partitions=PARTITIONS)
    values = [b'{"n":%d}' % n for n in range(PARTITIONS * PER_PARTITION)]
    await produce_raw(kafka_bootstrap, topic, [{"value": v, "partition": n % PARTITIONS} for n, v in enumerate(values)])
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "CONSUMER_ENGINE": consumer_engine}
    async with running_sidecar(CONFIG.format(read_ahead=read_ahead), tmp_path, env=env) as sidecar:
        client = sidecar.client
        group = TopicFactory.unique_name("g")
        created = await client.post(
            f"/consumers/{group}",
            json={"format": fmt, "auto.offset.reset": "earliest", "auto.commit.enable": "false"},
            headers={"content-type": V2},
        )
        name = created.json()["instance_id"]
        base = f"/consumers/{group}/instances/{name}"
        assert (await client.post(f"{base}/subscription", json={"topics": [topic]})).status_code == 204
        accept = {"accept": f"application/vnd.kafka.{fmt}.v2+json"}
        got: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        end = loop.time() + 30
        while len(got) < len(values) // 2 and loop.time() < end:  # half of it, a few records per reply
            response = await client.get(f"{base}/records", params={"timeout": 500}, headers=accept)
            assert response.status_code == 200, response.text
            got.extend(response.json())
        (handler,) = [i for i in sidecar.sidecar.instances.values() if isinstance(i, ActiveConsumerHandler)]
        instance = handler.manager.get(group, name)
        if read_ahead == "false":
            assert instance.buffer.prepared is None, "switched off: nothing is read ahead"
        returned = {p: max(r["offset"] for r in got if r["partition"] == p) + 1 for p in {r["partition"] for r in got}}
        committed = (await client.post(f"{base}/offsets")).json()
        assert {c["partition"]: c["committed"] for c in committed} == returned, "nothing read ahead is committed"

        while len(got) < len(values) and loop.time() < end:
            response = await client.get(f"{base}/records", params={"timeout": 500}, headers=accept)
            got.extend(response.json())
        for partition in range(PARTITIONS):
            offsets = [r["offset"] for r in got if r["partition"] == partition]
            assert offsets == list(range(PER_PARTITION)), f"partition {partition}: each record once, in order"
        if fmt == "json":
            assert sorted(r["value"]["n"] for r in got) == list(range(len(values)))
        await client.delete(base)
