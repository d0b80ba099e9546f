"""Fidelity of the ksqlDB test server: golden bytes from ksqlDB's own tests, and a real third-party client.

Golden strings are copied from confluentinc/ksql (commit 354e3d1), the file named at each test.
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

import httpx
import pytest
from ksqldb_support import create_stream, ksql, ksqldb_server, name, until
from test_reactive_support import produce, read_all

from kafka_sidecar_testing.ksqldb import InjectedError

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]


def _masked(body: str) -> str:
    """What ksqlDB's RestApiTest does: ``replaceFirst("queryId\\":\\"[^\\"]*\\"", "queryId\\":\\"XYZ\\"")``."""
    start = body.index('queryId":"') + len('queryId":"')
    return body[:start] + "XYZ" + body[body.index('"', start) :]


async def test_pull_query_default_mime_matches_ksqldb_golden_bytes(kafka_bootstrap: str, topic_factory: Any) -> None:
    """RestApiTest.java:931-975 shouldExecutePullQueryAllEndpointsDefaultMIME (Accept */*, both endpoints, h1+h2)."""
    expected = (
        '{"queryId":"XYZ","columnNames":["COUNT","USERID"],"columnTypes":["BIGINT","STRING"]}\n'
        '[1,"USER_0"]\n'
        '[1,"USER_1"]\n'
        '[2,"USER_2"]\n'
        '[2,"USER_3"]\n'
        '[1,"USER_4"]\n'
    )
    topic = await topic_factory.create()
    table = name("AGG")
    async with ksqldb_server(kafka_bootstrap) as server:
        created = await ksql(server.url, f"CREATE TABLE {table} (USERID STRING PRIMARY KEY, COUNT BIGINT) "
                                         f"WITH (KAFKA_TOPIC='{topic}', VALUE_FORMAT='JSON');")  # fmt: skip
        assert created.status_code == 200, created.text
        counts = [1, 1, 2, 2, 1]
        await produce(kafka_bootstrap, topic, [b'{"COUNT": 0}'] * 5, keys=[f"USER_{i}".encode() for i in range(5)])
        await produce(kafka_bootstrap, topic, [json.dumps({"COUNT": c}).encode() for c in counts],
                      keys=[f"USER_{i}".encode() for i in range(5)])  # fmt: skip
        query = f"SELECT COUNT, USERID from {table};"
        for http2 in (False, True):
            async with httpx.AsyncClient(http1=not http2, http2=http2, timeout=20) as client:
                headers = {"accept": "*/*"}
                stream = await client.post(f"{server.url}/query-stream", json={"sql": query}, headers=headers)
                old = await client.post(f"{server.url}/query", json={"ksql": query}, headers=headers)
            assert stream.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
            assert _masked(stream.text) == expected
            assert _masked(old.text) == expected
            assert stream.headers["content-type"] == "application/vnd.ksqlapi.delimited.v1"


async def test_streamed_row_pull_matches_ksqldb_golden_bytes(kafka_bootstrap: str, topic_factory: Any) -> None:
    """JsonStreamedRowResponseWriterTest.java:196-218 shouldSucceedWithBuffering_twoRows_noTimeout (v1+json)."""
    expected = (
        '[{"header":{"queryId":"queryId","schema":"`A` INTEGER KEY, `B` DOUBLE, `C` ARRAY<STRING>"}},\n'
        '{"row":{"columns":[123,234.0,["hello"]]}},\n'
        '{"row":{"columns":[456,789.0,["bye"]]}}]'
    )
    topic = await topic_factory.create()
    stream = name()
    async with ksqldb_server(kafka_bootstrap) as server:
        await create_stream(server.url, stream, topic, "A INTEGER KEY, B DOUBLE, C ARRAY<STRING>")
        await produce(kafka_bootstrap, topic, [b'{"B": 234, "C": ["hello"]}', b'{"B": 789.0, "C": ["bye"]}'],
                      keys=[struct.pack(">i", 123), struct.pack(">i", 456)])  # fmt: skip
        async with httpx.AsyncClient(http1=False, http2=True, timeout=20) as client:
            response = await client.post(f"{server.url}/query-stream", json={"sql": f"SELECT * FROM {stream};"},
                                         headers={"accept": "application/vnd.ksql.v1+json"})  # fmt: skip
    assert response.headers["content-type"] == "application/vnd.ksql.v1+json"
    query_id = response.json()[0]["header"]["queryId"]
    assert response.text.replace(query_id, "queryId") == expected


async def test_push_query_delimited_rows_match_ksqldb_golden_lines(kafka_bootstrap: str, topic_factory: Any) -> None:
    """RestApiTest.java:680-686: metadata line ending in the column names/types, then one array per row."""
    topic = await topic_factory.create()
    stream = name("PAGEVIEWS")
    async with ksqldb_server(kafka_bootstrap) as server:
        await create_stream(server.url, stream, topic, "USERID STRING, PAGEID STRING, VIEWTIME BIGINT")
        async with httpx.AsyncClient(http1=False, http2=True, timeout=20) as client:
            body = {"sql": f"SELECT USERID, PAGEID, VIEWTIME from {stream} EMIT CHANGES LIMIT 2;",
                    "properties": {"auto.offset.reset": "latest"}}  # fmt: skip
            async with client.stream("POST", f"{server.url}/query-stream", json=body) as response:
                lines = response.aiter_lines()
                header = await anext(lines)
                views: list[bytes | None] = [b'{"USERID":"USER_4","PAGEID":"PAGE_1","VIEWTIME":10}',
                         b'{"USERID":"USER_0","PAGEID":"PAGE_5","VIEWTIME":11}']  # fmt: skip
                await produce(kafka_bootstrap, topic, views)
                rows = [line async for line in lines]
    assert header.startswith('{"queryId":"transient_')
    assert header.endswith(',"columnNames":["USERID","PAGEID","VIEWTIME"],"columnTypes":["STRING","STRING","BIGINT"]}')
    assert rows == ['["USER_4","PAGE_1",10]', '["USER_0","PAGE_5",11]']


async def test_close_query_and_errors_use_ksqldb_error_bodies(kafka_bootstrap: str, topic_factory: Any) -> None:
    """ApiTest.java:449-465 shouldHandleUnknownQueryIDInCloseQuery; statement errors; the not-ready 503."""
    async with ksqldb_server(kafka_bootstrap) as server, httpx.AsyncClient(timeout=10) as client:
        unknown = await client.post(f"{server.url}/close-query", json={"queryId": "xyzfasgf"})
        assert unknown.status_code == 400
        assert unknown.json() == {"@type": "generic_error", "error_code": 40000, "message": "No query with id xyzfasgf"}
        bad = await ksql(server.url, "CREATE STREAM NOPE AS SELECT * FROM MISSING EMIT CHANGES;")
        assert bad.status_code == 400
        assert bad.json() == {"@type": "statement_error", "error_code": 40001, "message": "MISSING does not exist.",
                              "statementText": "CREATE STREAM NOPE AS SELECT * FROM MISSING EMIT CHANGES;",
                              "entities": []}  # fmt: skip
        server.switches.ready = False
        info = await client.get(f"{server.url}/info")
        assert info.status_code == 503
        assert info.json()["error_code"] == 50302
        server.switches.ready = True
        info = await client.get(f"{server.url}/info")
        assert info.json()["KsqlServerInfo"]["serverStatus"] == "RUNNING"


async def test_persistent_query_writes_filtered_projection_to_the_sink_topic(
    kafka_bootstrap: str, topic_factory: Any
) -> None:
    source_topic = await topic_factory.create(partitions=2)
    source, sink = name("SRC"), name("SINK")
    sink_topic = f"sink-{sink.lower()}"
    async with ksqldb_server(kafka_bootstrap) as server:
        await create_stream(server.url, source, source_topic, "ID STRING KEY, N INT, NOTE STRING", partitions=2)
        created = await ksql(
            server.url,
            f"CREATE STREAM IF NOT EXISTS {sink} WITH (KAFKA_TOPIC='{sink_topic}') AS "
            f"SELECT ID, N FROM {source} WHERE N >= 2 EMIT CHANGES;",
            {"auto.offset.reset": "earliest"},
        )
        assert created.status_code == 200, created.text
        status = created.json()[0]["commandStatus"]
        assert status["status"] == "SUCCESS"
        assert status["queryId"].startswith(f"CSAS_{sink}_")
        values: list[bytes | None] = [json.dumps({"n": n, "note": "x"}).encode() for n in range(5)]
        await produce(kafka_bootstrap, source_topic, values, keys=[f"k{n}".encode() for n in range(5)])
        found = await read_all(kafka_bootstrap, sink_topic, 3)
        described = await ksql(server.url, f"DESCRIBE {sink};")
        listed = await ksql(server.url, "LIST QUERIES;")
    assert sorted(json.loads(m.value)["N"] for m in found) == [2, 3, 4]
    assert all(set(json.loads(m.value)) == {"N"} and m.key.startswith(b"k") for m in found)
    assert described.json()[0]["sourceDescription"]["topic"] == sink_topic
    assert [q["id"] for q in listed.json()[0]["queries"]] == [status["queryId"]]


async def test_old_query_endpoint_sends_keepalive_newlines_and_final_message(
    kafka_bootstrap: str, topic_factory: Any
) -> None:
    """QueryStreamWriter.java:96-150: ``[`` header ``,\\n``, bare ``\\n`` while idle, rows, final message, ``]\\n``."""
    topic = await topic_factory.create()
    stream = name()
    async with ksqldb_server(kafka_bootstrap) as server:
        server.switches.keepalive_ms = 100
        await create_stream(server.url, stream, topic, "N INT")
        async with httpx.AsyncClient(timeout=20) as client:
            body = {"ksql": f"SELECT N FROM {stream} EMIT CHANGES LIMIT 1;"}
            headers = {"accept": "application/vnd.ksql.v1+json"}
            async with client.stream("POST", f"{server.url}/query", json=body, headers=headers) as response:
                received = b""
                async for chunk in response.aiter_bytes():
                    received += chunk
                    if received.count(b"\n") == 3 and b"row" not in received:  # header line + two keep-alives
                        await produce(kafka_bootstrap, topic, [b'{"N": 7}'])
    header, rest = received.split(b",\n", 1)
    assert json.loads(header[1:])["header"]["schema"] == "`N` INTEGER"
    assert rest.startswith(b"\n\n")
    assert rest.lstrip(b"\n") == b'{"row":{"columns":[7]}},\n{"finalMessage":"Limit Reached"}]\n'


@pytest.mark.parametrize("framing", ["row", "coalesced", "split"])
async def test_injected_error_ends_the_stream_in_each_format(
    kafka_bootstrap: str, topic_factory: Any, framing: str
) -> None:
    topic = await topic_factory.create()
    stream = name()
    async with ksqldb_server(kafka_bootstrap) as server:
        server.switches.framing = framing
        await create_stream(server.url, stream, topic, "N INT")
        await produce(kafka_bootstrap, topic, [json.dumps({"n": n}).encode() for n in range(3)])
        error = b'{"@type":"generic_error","error_code":50000,"message":"boom"}'
        expected_tail = {
            "application/vnd.ksqlapi.delimited.v1": b"[1]\n" + error + b"\n",
            "application/json": b",[1]," + error + b"]",
            "application/vnd.ksql.v1+json": b',\n{"row":{"columns":[1]}},\n{"errorMessage":' + error + b"}]",
        }
        async with httpx.AsyncClient(http1=False, http2=True, timeout=20) as client:
            for accept, tail in expected_tail.items():
                server.switches.inject_error = InjectedError("boom", after_rows=2)
                body = {"sql": f"SELECT N FROM {stream} EMIT CHANGES;", "properties": {"auto.offset.reset": "earliest"}}
                response = await client.post(f"{server.url}/query-stream", json=body, headers={"accept": accept})
                assert response.content.endswith(tail), (accept, response.content)


async def test_third_party_client_ksqldb_runs_unchanged(kafka_bootstrap: str, topic_factory: Any) -> None:
    """PyPI ``ksqldb`` 1.0.1 (httpx h2c + requests): DDL, a pull query, a push query and close-query."""
    from ksqldb import KSQLdbClient  # type: ignore[import-untyped]

    topic = await topic_factory.create()
    stream = name("THIRD")
    async with ksqldb_server(kafka_bootstrap) as server:
        client = KSQLdbClient(server.url)
        statement = f"CREATE STREAM {stream} (ID STRING KEY, N INT) WITH (KAFKA_TOPIC='{topic}', VALUE_FORMAT='JSON');"
        created = await asyncio.to_thread(client.ksql, statement)
        assert created[0]["commandStatus"]["status"] == "SUCCESS"
        listed = await asyncio.to_thread(client.ksql, "LIST STREAMS;")
        assert stream in [s["name"] for s in listed[0]["streams"]]
        await produce(kafka_bootstrap, topic, [b'{"N": 1}', b'{"N": 2}'], keys=[b"a", b"b"])
        pulled = await asyncio.to_thread(client.query_sync, f"SELECT ID, N FROM {stream};")
        assert pulled[0]["columnNames"] == ["ID", "N"]
        assert pulled[1:] == [["a", 1], ["b", 2]]
        pushed: list[Any] = []
        query = client.query_async(f"SELECT N FROM {stream} EMIT CHANGES;", {"auto.offset.reset": "earliest"})
        async for item in query:
            pushed.append(item)
            if len(pushed) == 3:
                assert await asyncio.to_thread(client.close_query, pushed[0]["queryId"]) is True
        assert pushed[1:] == [[1], [2]]
        await until(lambda: not server.engine.transient, 10, "the closed query to be forgotten")
        assert await asyncio.to_thread(client.close_query, pushed[0]["queryId"]) is False


async def test_framing_switch_one_row_per_frame_or_coalesced_or_split(kafka_bootstrap: str, topic_factory: Any) -> None:
    """``row``: each HTTP/2 DATA frame holds one line, as ksqlDB's Vert.x writes (clients parsing frames rely on
    it); ``coalesced``: frames hold several lines; ``split``: lines are cut across frames."""
    topic = await topic_factory.create()
    stream = name("FRAMES")
    frames: dict[str, list[bytes]] = {}
    async with ksqldb_server(kafka_bootstrap) as server:
        await create_stream(server.url, stream, topic, "N INT")
        await produce(kafka_bootstrap, topic, [json.dumps({"n": n}).encode() for n in range(20)])
        async with httpx.AsyncClient(http1=False, http2=True, timeout=20) as client:
            for framing in ("row", "coalesced", "split"):
                server.switches.framing = framing
                body = {"sql": f"SELECT N FROM {stream} EMIT CHANGES LIMIT 20;",
                        "properties": {"auto.offset.reset": "earliest"}}  # fmt: skip
                async with client.stream("POST", f"{server.url}/query-stream", json=body) as response:
                    frames[framing] = [chunk async for chunk in response.aiter_raw()]
    for framing, chunks in frames.items():
        lines = b"".join(chunks).split(b"\n")
        assert [json.loads(line) for line in lines[1:-1]] == [[n] for n in range(20)], framing
    assert all(chunk.count(b"\n") == 1 and chunk.endswith(b"\n") for chunk in frames["row"])
    assert len(frames["row"]) == 21
    assert any(chunk.count(b"\n") > 1 for chunk in frames["coalesced"])
    assert any(b"\n" not in chunk for chunk in frames["split"])
