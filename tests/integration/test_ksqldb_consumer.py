"""The ksqlDB consumer against the ksqlDB test server and the real broker: start-up, statements, sink and push."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from ksqldb_support import ServerProcess, ksql, ksqldb_server, name, stays, until
from starlette.responses import Response
from test_reactive_support import Backend, new_group, produce, serving, statuses

from kafka_sidecar._events import AdminAction, BatchFetched
from kafka_sidecar.testing import running_sidecar
from kafka_sidecar_testing.leak_scan import SecretWatch
from kafka_sidecar_testing.net import free_port
from kafka_sidecar_testing.pki import make_ca
from kafka_sidecar_testing.topics import create_topic

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]
ADMIN = "/admin/ksqldb/views"
CONNECTION_KEYS = {"ca_file", "client_certfile", "client_keyfile", "basic_auth_user", "basic_auth_password_file"}
FAST_RETRY = {"max_attempts": 3, "initial_backoff_ms": 10, "max_backoff_ms": 50, "jitter": 0.1}


def ksql_yaml(server: str, backend: Backend, *, chain: str = "views-ksql", **config: Any) -> str:
    """A chains.yml with one ksqlDB consumer ``views`` (its chain: ``chain``) and the ``/ksqldb/active`` route."""
    delivery = {
        "group": new_group(),
        "backend_url": backend.url,
        "backend_path": "/rows",
        "batch_max_wait_ms": 5,
        "request_timeout_ms": 3000,
        "drain_timeout_ms": 2000,
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 500,
        "retry": FAST_RETRY,
    }
    delivery.update(config.pop("delivery", {}))
    consumer = {"server": server, "reconnect_initial_ms": 50, "reconnect_max_ms": 300, "delivery": delivery}
    consumer.update(config)
    query = {"server": server, "push_timeout_ms": 800, "request_timeout_ms": 3000}
    query.update({k: v for k, v in consumer.items() if k in CONNECTION_KEYS})
    return (
        "kafka:\n  bootstrap_servers: ${KAFKA_BOOTSTRAP_SERVERS}\n"
        "handlers:\n"
        f"  views-ksql:\n    use: ksqldb-consumer\n    config: {json.dumps(consumer)}\n"
        f"  ksql-query:\n    use: ksqldb-query\n    config: {json.dumps(query)}\n"
        "  metrics:\n    use: metrics\n"
        "paths:\n  - {path: /ksqldb/active, method: POST, exec: [ksql-query]}\n"
        f"consumers:\n  views:\n    exec: [{chain}]\n"
    )


def stream_ddl(stream: str, topic: str, partitions: int = 1) -> str:
    return (
        f"CREATE STREAM IF NOT EXISTS {stream} (ID STRING KEY, N INT) "
        f"WITH (KAFKA_TOPIC='{topic}', VALUE_FORMAT='JSON', PARTITIONS={partitions});"
    )


def rows(count: int, start: int = 0) -> list[bytes | None]:
    return [json.dumps({"n": n}).encode() for n in range(start, start + count)]


def keys(count: int, start: int = 0) -> list[bytes | None]:
    return [f"k{n}".encode() for n in range(start, start + count)]


def delivered_n(backend: Backend) -> list[int]:
    return [int(r["value"]["N"]) for r in backend.records()]


async def status(client: Any) -> dict[str, Any]:
    reply = await client.get(ADMIN)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def test_ksqldb_down_at_start_then_up_push_rows_reach_the_backend_as_objects(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create()
    stream = name("VIEWS")
    port = free_port()
    backend = Backend()
    config = ksql_yaml(f"http://127.0.0.1:{port}", backend, mode="push", statements=[stream_ddl(stream, topic)],
                       query=f"SELECT ID, N FROM {stream} EMIT CHANGES;",
                       properties={"auto.offset.reset": "earliest"})  # fmt: skip
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    async with serving(backend), running_sidecar(config, tmp_path, env=env) as rs:
        fetched: list[BatchFetched] = []  # what the tracing plugin turns into receive spans
        rs.sidecar.resources.events.subscribe(BatchFetched, fetched.append)
        assert (await rs.client.get("/health/ready")).status_code == 200  # the sidecar does not wait for ksqlDB
        first = await status(rs.client)
        assert first["state"] == "connecting"
        assert first["last_error"]
        await produce(kafka_bootstrap, topic, rows(3), keys=keys(3))
        async with ksqldb_server(kafka_bootstrap, port=port):
            await until(lambda: len(backend.records()) == 3, 20, "three rows at the backend")
            # the backend holds the rows before its reply reaches the sidecar, which counts them only then
            await until(_status_has(rs.client, "rows_delivered", 3), 10, "three rows counted as delivered")
            seen = await status(rs.client)
    assert [r["value"] for r in backend.records()] == [{"ID": f"k{n}", "N": n} for n in range(3)]
    record = backend.records()[0]
    assert record["topic"] == "ksqldb.views"
    assert backend.calls[0]["consumer"] == "views"  # the reactive consumer's body shape
    assert seen["mode"] == "push"
    assert seen["state"] == "streaming"
    assert seen["columns"]["columnNames"] == ["ID", "N"]
    assert seen["columns"]["columnTypes"] == ["STRING", "INTEGER"]
    assert seen["query_id"].startswith(f"transient_{stream}_")
    assert seen["rows_received"] == 3
    assert seen["rows_delivered"] == 3
    assert seen["gap_possible"] is False
    assert {e.consumer for e in fetched} == {"views"}
    assert sum(count for e in fetched for _, _, count in e.partitions) == 3


async def test_statement_error_fails_with_ksqldb_message_then_restart_reruns_idempotently(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path
) -> None:
    source, sink = name("SRC"), name("SINK")
    source_topic = f"src-{uuid.uuid4().hex[:8]}"  # does not exist yet: the CREATE without PARTITIONS fails
    sink_topic = f"sink-{uuid.uuid4().hex[:8]}"
    statement = stream_ddl(source, source_topic).replace(", PARTITIONS=1", "")
    query = (f"CREATE STREAM IF NOT EXISTS {sink} WITH (KAFKA_TOPIC='{sink_topic}') AS "
             f"SELECT ID, N FROM {source} WHERE N > 0 EMIT CHANGES;")  # fmt: skip
    backend = Backend()
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    async with ksqldb_server(kafka_bootstrap) as server, serving(backend):
        config = ksql_yaml(server.url, backend, statements=[statement], query=query, sink_topic=sink_topic,
                           properties={"auto.offset.reset": "earliest"})  # fmt: skip
        async with running_sidecar(config, tmp_path, env=env) as rs:
            actions: list[AdminAction] = []
            rs.sidecar.resources.events.subscribe(AdminAction, actions.append)
            await until(lambda: rs.sidecar.consumers[0].source.state == "failed", 20, "state failed")  # type: ignore[attr-defined]
            failed = await status(rs.client)
            assert failed["state"] == "failed"
            assert failed["last_error"].startswith(f"Topic '{source_topic}' does not exist.")
            assert failed["ksqldb_error_code"] == 40001

            await _create_topic(kafka_bootstrap, source_topic)
            for _ in range(2):  # restart runs the statements again; IF NOT EXISTS keeps it idempotent
                reply = await rs.client.post(f"{ADMIN}/restart")
                assert reply.status_code == 202, reply.text
                await until(lambda: rs.sidecar.consumers[0].source.current_state == "running", 20, "running")  # type: ignore[attr-defined]
            await produce(kafka_bootstrap, source_topic, rows(4), keys=keys(4))
            await until(lambda: sorted(delivered_n(backend)) == [1, 2, 3], 20, "the sink rows")
            await until(_status_has(rs.client, "rows_delivered", 3), 10, "three rows counted as delivered")
            running = await status(rs.client)
            listed = (await ksql(server.url, "LIST STREAMS;")).json()[0]["streams"]
            queries = (await ksql(server.url, "LIST QUERIES;")).json()[0]["queries"]
    assert running["state"] == "running"
    assert running["last_error"] is None
    assert running["query_id"] == queries[0]["id"]
    assert running["sink_topic"] == sink_topic
    assert running["rows_delivered"] == 3
    assert running["rows_received"] == 3
    assert sorted(s["name"] for s in listed) == sorted([source, sink])
    assert len(queries) == 1  # the persistent query was created once
    assert [a.action for a in actions] == ["ksqldb-consumer.restart"] * 2
    assert {r["topic"] for r in backend.records()} == {sink_topic}


async def _create_topic(bootstrap: str, topic: str) -> None:
    await create_topic(bootstrap, topic, 1)


@pytest.mark.parametrize("resume", ["none", "source-offsets"])
async def test_push_mode_survives_a_killed_ksqldb(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path, resume: str
) -> None:
    """SIGKILL the test server mid-stream: without resume the status flags a possible gap (rows produced while
    it was down are missed); with resume nothing is missing and nothing below the checkpoint comes twice."""
    topic = await topic_factory.create()
    stream = name("VIEWS")
    server = ServerProcess(kafka_bootstrap, tmp_path / "commands.jsonl")
    server.start()
    backend = Backend()
    config = ksql_yaml(server.url, backend, mode="push", statements=[stream_ddl(stream, topic)],
                       query=f"SELECT ID, N FROM {stream} EMIT CHANGES;", resume=resume,
                       checkpoint_topic=f"ckpt-{uuid.uuid4().hex[:8]}")  # fmt: skip
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    try:
        async with serving(backend), running_sidecar(config, tmp_path, env=env) as rs:
            await until(lambda: rs.sidecar.consumers[0].source.current_state == "streaming", 20, "streaming")  # type: ignore[attr-defined]
            await produce(kafka_bootstrap, topic, rows(5), keys=keys(5))
            await until(lambda: len(backend.records()) == 5, 20, "rows 0-4")
            if resume == "source-offsets":
                await until(_checkpoint_is(rs.client, {"0": 5}), 10, "the checkpoint to cover rows 0-4")
            server.kill()
            await produce(kafka_bootstrap, topic, rows(5, 5), keys=keys(5, 5))  # while ksqlDB is down
            await until(_status_has(rs.client, "state", "backoff"), 10, "the consumer to notice")
            server.start()
            await until(_status_has(rs.client, "state", "streaming"), 20, "streaming again")
            await produce(kafka_bootstrap, topic, rows(5, 10), keys=keys(5, 10))
            want = 15 if resume == "source-offsets" else 10
            await until(lambda: len(backend.records()) >= want and 14 in delivered_n(backend), 20, "rows 10-14")
            final = await status(rs.client)
    finally:
        server.stop()
    got = delivered_n(backend)
    assert final["resubscribes"] >= 1
    if resume == "none":
        assert final["gap_possible"] is True
        assert got == [0, 1, 2, 3, 4, 10, 11, 12, 13, 14]  # rows 5-9 arrived while it was down: missed
    else:
        assert final["gap_possible"] is False
        assert got == list(range(15))  # nothing missing, nothing duplicated
        assert final["rows_skipped_below_checkpoint"] >= 5
        assert [r["offset"] for r in backend.records()] == list(range(15))  # source offsets (ROWOFFSET)


def _status_has(client: Any, key: str, value: object) -> Any:
    async def check() -> bool:
        return bool((await status(client)).get(key) == value)

    return check


def _checkpoint_is(client: Any, want: dict[str, int]) -> Any:
    return _status_has(client, "checkpoint", want)


@pytest.mark.parametrize(("framing", "http_version"), [("coalesced", "2"), ("split", "2"), ("split", "1.1")])
async def test_coalesced_and_split_frames_parse_into_rows(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path, framing: str, http_version: str
) -> None:
    topic = await topic_factory.create()
    stream = name("FRAMES")
    backend = Backend()
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    await produce(kafka_bootstrap, topic, [json.dumps({"n": n, "pad": "x" * n}).encode() for n in range(50)])
    async with ksqldb_server(kafka_bootstrap) as server, serving(backend):
        server.switches.framing = framing
        config = ksql_yaml(server.url, backend, mode="push", statements=[stream_ddl(stream, topic)],
                           query=f"SELECT N FROM {stream} EMIT CHANGES;", http_version=http_version,
                           properties={"auto.offset.reset": "earliest"})  # fmt: skip
        async with running_sidecar(config, tmp_path, env=env):
            await until(lambda: len(backend.records()) == 50, 20, "fifty rows")
    assert [r["value"] for r in backend.records()] == [{"N": n} for n in range(50)]


async def test_slow_backend_keeps_buffered_rows_bounded(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create()
    stream = name("SLOW")
    limit = 20

    async def slow(body: dict[str, Any]) -> Response:
        await asyncio.sleep(0.05)
        return Response(status_code=200)

    backend = Backend(reply=slow)
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    await produce(kafka_bootstrap, topic, rows(400))
    async with ksqldb_server(kafka_bootstrap) as server, serving(backend):
        config = ksql_yaml(server.url, backend, mode="push", statements=[stream_ddl(stream, topic)],
                           query=f"SELECT N FROM {stream} EMIT CHANGES;", properties={"auto.offset.reset": "earliest"},
                           delivery={"max_buffered_records": limit, "batch_max_records": 5})  # fmt: skip
        async with running_sidecar(config, tmp_path, env=env) as rs:
            consumer = rs.sidecar.consumers[0].source
            samples: list[tuple[int, int, int]] = []
            while len(backend.records()) < 120:  # sample while the backlog is large
                push = consumer.push  # type: ignore[attr-defined]
                if push is not None:
                    delivered = sum(w.stats.delivered for w in push.workers.values())
                    samples.append((push.rows_received, delivered, sum(w.buffered for w in push.workers.values())))
                await asyncio.sleep(0.02)
            await until(lambda: len(backend.records()) == 400, 60, "every row")
    assert len(samples) > 20
    assert max(buffered for _, _, buffered in samples) <= limit
    # received but not yet delivered: the buffer, one batch in flight and one network read; never the backlog
    assert max(received - delivered for received, delivered, _ in samples) < 100
    assert delivered_n(backend) == list(range(400))


async def test_control_api_pause_resume_seek_and_metrics(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create()
    stream = name("CTRL")
    backend = Backend()
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    async with ksqldb_server(kafka_bootstrap) as server, serving(backend):
        query = f"SELECT N FROM {stream} EMIT CHANGES;"
        config = ksql_yaml(server.url, backend, chain="metrics, views-ksql", mode="push",
                           statements=[stream_ddl(stream, topic)], query=query)  # fmt: skip
        async with running_sidecar(config, tmp_path, env=env) as rs:
            actions: list[AdminAction] = []
            rs.sidecar.resources.events.subscribe(AdminAction, actions.append)
            await until(_status_has(rs.client, "state", "streaming"), 20, "streaming")
            await produce(kafka_bootstrap, topic, rows(2))
            await until(lambda: len(backend.records()) == 2, 20, "two rows")
            assert (await rs.client.post(f"{ADMIN}/pause")).status_code == 200
            await produce(kafka_bootstrap, topic, rows(3, 2))
            await until(_status_has(rs.client, "state", "paused"), 10, "paused")
            paused = await status(rs.client)
            assert len(backend.records()) == 2  # nothing delivered while paused
            assert (await rs.client.post(f"{ADMIN}/resume")).status_code == 200
            await until(lambda: len(backend.records()) == 5, 20, "the rows held while paused")
            seek = await rs.client.post(f"{ADMIN}/seek", json={"position": "beginning"})
            unknown = await rs.client.get("/admin/ksqldb/nope")
            listed = (await rs.client.get("/admin/ksqldb")).json()
            delivered_line = 'kafka_sidecar_ksqldb_rows_total{consumer="views",stage="delivered"} 5'

            async def reported() -> bool:
                return delivered_line in (await rs.client.get("/metrics")).text

            await until(reported, 5, "the metrics report")
            metrics = await rs.client.get("/metrics")
    assert paused["paused"] is True
    assert seek.status_code == 409  # push without resume has no position
    assert seek.headers["content-type"] == "application/problem+json"
    assert unknown.status_code == 404
    assert [c["name"] for c in listed["consumers"]] == ["views"]
    assert [a.action for a in actions] == ["ksqldb-consumer.pause", "ksqldb-consumer.resume"]
    assert all(a.target == "ksqldb-consumer/views" for a in actions)
    assert delivered_line in metrics.text
    assert 'kafka_sidecar_ksqldb_state{consumer="views",state="streaming"} 1' in metrics.text


async def test_https_with_client_certificate_and_basic_auth_password_file(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path, secret_watch: SecretWatch
) -> None:
    """TLS (ALPN h2), mutual TLS and basic auth from a file; the password shows up nowhere (the suite-wide
    secret watch also scans every log line)."""
    ca = make_ca(tmp_path / "pki", "ksqldb-ca")
    server_cert = ca.issue(tmp_path / "pki", "ksqldb", hosts=("127.0.0.1", "localhost"))
    client_cert = ca.issue(tmp_path / "pki", "sidecar", server=False, client=True)
    password = f"pw-{uuid.uuid4().hex}"
    password_file = tmp_path / "ksqldb-password"
    password_file.write_text(password + "\n", encoding="utf-8")
    secret_watch.add_basic_auth("sidecar", password)
    topic = await topic_factory.create()
    stream = name("TLS")
    backend = Backend()
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    tls = {"certfile": server_cert.certfile, "keyfile": server_cert.keyfile, "client_ca": ca.certfile}
    async with ksqldb_server(kafka_bootstrap, **tls) as server, serving(backend):
        server.switches.users = {"sidecar": password}
        config = ksql_yaml(server.url, backend, mode="push", statements=[stream_ddl(stream, topic)],
                           query=f"SELECT N FROM {stream} EMIT CHANGES;", properties={"auto.offset.reset": "earliest"},
                           ca_file=str(ca.certfile), client_certfile=str(client_cert.certfile),
                           client_keyfile=str(client_cert.keyfile), basic_auth_user="sidecar",
                           basic_auth_password_file=str(password_file))  # fmt: skip
        await produce(kafka_bootstrap, topic, rows(2))
        async with running_sidecar(config, tmp_path, env=env) as rs:
            await until(lambda: len(backend.records()) == 2, 20, "rows over TLS")
            shown = json.dumps([await status(rs.client), (await rs.client.get("/admin/config")).json()])
            server.switches.users = {"sidecar": "another"}  # the sidecar's password is wrong now
            reply = await rs.client.post("/ksqldb/active", json={"query": f"SELECT N FROM {stream};"})
    assert server.url.startswith("https://")
    assert password not in shown
    assert reply.status_code == 503  # not the caller's fault
    assert reply.json()["ksqldb_error_code"] == 40100
    assert password not in reply.text


async def test_push_mode_dead_letters_and_their_replay(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create()
    stream = name("DLQ")
    suffix = f".dlq-{uuid.uuid4().hex[:6]}"
    accept = {"now": False}

    async def reply(body: dict[str, Any]) -> Response:
        return statuses(body, lambda r: "SUCCESS" if accept["now"] or r["value"]["N"] % 2 else "DEADLETTER")

    backend = Backend(reply=reply)
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    await produce(kafka_bootstrap, topic, rows(4))
    async with ksqldb_server(kafka_bootstrap) as server, serving(backend):
        config = ksql_yaml(server.url, backend, mode="push", statements=[stream_ddl(stream, topic)],
                           query=f"SELECT N FROM {stream} EMIT CHANGES;", properties={"auto.offset.reset": "earliest"},
                           delivery={"dead_letter_suffix": suffix})  # fmt: skip
        async with running_sidecar(config, tmp_path, env=env) as rs:
            await until(_status_has(rs.client, "rows_dead_lettered", 2), 20, "two dead letters")
            accept["now"] = True
            calls = len(backend.calls)
            started = await rs.client.post(f"{ADMIN}/replay", json={})
            assert started.status_code == 202, started.text
            job_url = f"{ADMIN}/replay/{started.json()['id']}"

            async def finished() -> bool:
                return (await rs.client.get(job_url)).json()["state"] not in ("starting", "running")

            await until(finished, 20, "the replay job")
            job = (await rs.client.get(job_url)).json()
    assert job["state"] == "done", job
    assert job["outcomes"] == {"SUCCESS": 2}
    replayed = [r for call in backend.calls[calls:] for r in call["records"]]
    assert [r["value"] for r in replayed] == [{"N": 0}, {"N": 2}]
    assert {r["topic"] for r in replayed} == {f"ksqldb.views{suffix}"}


async def test_sink_mode_restart_with_offset_reset_and_seek_deliver_again(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path
) -> None:
    source_topic = await topic_factory.create()
    source, sink = name("SRC"), name("SINK")
    sink_topic = f"sink-{uuid.uuid4().hex[:8]}"
    query = (f"CREATE STREAM IF NOT EXISTS {sink} WITH (KAFKA_TOPIC='{sink_topic}') AS "
             f"SELECT ID, N FROM {source} EMIT CHANGES;")  # fmt: skip
    backend = Backend()
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    async with ksqldb_server(kafka_bootstrap) as server, serving(backend):
        config = ksql_yaml(server.url, backend, statements=[stream_ddl(source, source_topic)], query=query,
                           sink_topic=sink_topic, properties={"auto.offset.reset": "earliest"})  # fmt: skip
        async with running_sidecar(config, tmp_path, env=env) as rs:
            await produce(kafka_bootstrap, source_topic, rows(3), keys=keys(3))
            await until(lambda: delivered_n(backend) == [0, 1, 2], 20, "the rows")
            restart = await rs.client.post(f"{ADMIN}/restart", json={"auto_offset_reset": "earliest"})
            assert restart.status_code == 202, restart.text
            await until(lambda: delivered_n(backend) == [0, 1, 2] * 2, 20, "the rows again after the reset")
            await until(_status_has(rs.client, "state", "running"), 20, "running")
            seek = await rs.client.post(f"{ADMIN}/seek", json={"position": "beginning"})
            assert seek.status_code == 200, seek.text
            await until(lambda: delivered_n(backend) == [0, 1, 2] * 3, 20, "the rows again after the seek")
    assert seek.json()["partitions"] == [{"topic": sink_topic, "partition": 0, "offset": 0}]


async def test_a_rejected_push_query_fails_with_ksqldb_message(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path
) -> None:
    backend = Backend()
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    async with ksqldb_server(kafka_bootstrap) as server, serving(backend):
        config = ksql_yaml(server.url, backend, mode="push", query="SELECT N FROM NO_SUCH_STREAM EMIT CHANGES;")
        async with running_sidecar(config, tmp_path, env=env) as rs:
            await until(_status_has(rs.client, "state", "failed"), 20, "state failed")
            failed = await status(rs.client)
            asked = server.api.queries_started
            assert asked == 1
            await stays(lambda: server.api.queries_started == asked, 1.0)  # a rejected query is not retried
    assert failed["last_error"] == "NO_SUCH_STREAM does not exist."
    assert failed["ksqldb_error_code"] == 40001
