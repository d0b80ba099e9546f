"""``POST /ksqldb/active`` against the ksqlDB test server: pull and push queries, and every error mapping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ksqldb_support import create_stream, ksql, ksqldb_server, name, until
from test_ksqldb_consumer import ksql_yaml
from test_reactive_support import Backend, produce

from kafka_sidecar.testing import running_sidecar
from kafka_sidecar_testing.net import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]
PROBLEM = "application/problem+json"


def _config(server: str, max_rows: int = 10000) -> str:
    """The active route only: the consumer of ``ksql_yaml`` is switched off."""
    text = ksql_yaml(server, Backend(), mode="push", query="SELECT N FROM NONE EMIT CHANGES;")
    text = text.replace('"push_timeout_ms": 800', f'"push_timeout_ms": 800, "max_rows": {max_rows}')
    return text.replace("consumers:\n  views:\n    exec: [views-ksql]\n", "")


async def test_pull_and_push_queries_answer_rows_as_objects(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create()
    table, stream = name("USERS"), name("EVENTS")
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    async with ksqldb_server(kafka_bootstrap) as server, running_sidecar(_config(server.url), tmp_path, env=env) as rs:
        created = await ksql(server.url, f"CREATE TABLE {table} (ID STRING PRIMARY KEY, N INT) "
                                         f"WITH (KAFKA_TOPIC='{topic}', VALUE_FORMAT='JSON');")  # fmt: skip
        assert created.status_code == 200, created.text
        await create_stream(server.url, stream, topic, "ID STRING KEY, N INT")
        values: list[bytes | None] = [b'{"N": 1}', b'{"N": 2}', b'{"N": 3}']
        await produce(kafka_bootstrap, topic, values, keys=[b"a", b"b", b"a"])

        pull = await rs.client.post("/ksqldb/active", json={"query": f"SELECT ID, N FROM {table} WHERE ID = \\'a\\';"})
        push = {"queryType": "push", "offset": "earliest"}
        limited = await rs.client.post(
            "/ksqldb/active", json={"query": f"SELECT N FROM {stream} EMIT CHANGES LIMIT 2;", **push}
        )
        timed = await rs.client.post("/ksqldb/active", json={"query": f"SELECT ID FROM {stream} EMIT CHANGES;", **push})
        await until(lambda: not server.engine.transient, 5, "the push queries to be closed")
        described = (await rs.client.get("/openapi.json")).json()["paths"]
    assert described["/ksqldb/active"]["post"]["operationId"] == "ksqldb_active_query"
    assert {"400", "413", "422", "503", "504"} <= set(described["/ksqldb/active"]["post"]["responses"])
    assert described["/admin/ksqldb/{name}/restart"]["post"]["summary"].startswith("Close the query")
    assert pull.status_code == 200, pull.text
    assert pull.json() == [{"ID": "a", "N": 3}]  # a table: the latest row of key a
    assert limited.json() == [{"N": 1}, {"N": 2}]
    assert timed.json() == [{"ID": "a"}, {"ID": "b"}, {"ID": "a"}]  # what arrived within push_timeout_ms


async def test_errors_map_to_problems(kafka_bootstrap: str, topic_factory: Any, tmp_path: Path) -> None:
    topic = await topic_factory.create()
    stream = name("ERRS")
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    async with (
        ksqldb_server(kafka_bootstrap) as server,
        running_sidecar(_config(server.url, max_rows=2), tmp_path, env=env) as rs,
    ):
        await create_stream(server.url, stream, topic, "N INT")
        await produce(kafka_bootstrap, topic, [b'{"N": 1}', b'{"N": 2}', b'{"N": 3}'])
        too_many = await rs.client.post("/ksqldb/active", json={"query": f"SELECT N FROM {stream};"})
        rejected = await rs.client.post("/ksqldb/active", json={"query": "SELECT * FROM MISSING;"})
        invalid = await rs.client.post("/ksqldb/active", json={"query": "SELECT 1;", "queryType": "stream"})
        slow = await rs.client.post("/ksqldb/active", json={
            "query": f"SELECT N FROM {stream} EMIT CHANGES LIMIT 5;", "queryType": "push"})  # fmt: skip
        server.switches.ready = False
        not_ready = await rs.client.post("/ksqldb/active", json={"query": f"SELECT * FROM {stream};"})
    gone = free_port()
    async with running_sidecar(_config(f"http://127.0.0.1:{gone}"), tmp_path, env=env) as rs:
        unreachable = await rs.client.post("/ksqldb/active", json={"query": "SELECT * FROM X;"})

    assert too_many.status_code == 413
    assert "max_rows=2" in too_many.json()["detail"]
    assert rejected.status_code == 400
    assert rejected.headers["content-type"] == PROBLEM
    body = rejected.json()
    assert body["detail"] == "MISSING does not exist."
    assert body["ksqldb_error_code"] == 40001
    assert body["statement"] == "SELECT * FROM MISSING;"
    assert invalid.status_code == 422
    assert invalid.json()["field"] == "queryType"
    assert slow.status_code == 504  # a LIMIT that is not reached within request_timeout_ms
    assert slow.headers["content-type"] == PROBLEM
    assert not_ready.status_code == 503
    assert not_ready.json()["ksqldb_error_code"] == 50302
    assert unreachable.status_code == 503
    assert "unreachable" in unreachable.json()["detail"]
    assert json.dumps(unreachable.json()).count("password") == 0
