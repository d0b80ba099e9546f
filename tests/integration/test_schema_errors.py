"""Every error path of the schema formats, against a real broker and a real registry.

Registry outages are made by cutting a TCP relay that sits between the sidecar and the registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from schema_support import end_offset, schema_sidecar, unique

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

POINT = {
    "type": "record",
    "name": "Point",
    "namespace": "errors.test",
    "fields": [{"name": "x", "type": "int"}, {"name": "tags", "type": {"type": "array", "items": "string"}}],
}


class Relay:
    """Forwards TCP to the registry until cut; cutting also drops live (pooled) connections."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()


@contextlib.asynccontextmanager
async def relayed(registry_url: str) -> AsyncIterator[tuple[Relay, str]]:
    parts = urlsplit(registry_url)
    relay = Relay(parts.hostname or "127.0.0.1", parts.port or 80)
    await relay.start()
    try:
        yield relay, urlunsplit(parts._replace(netloc=f"127.0.0.1:{relay.port}"))
    finally:
        with contextlib.suppress(Exception):
            await relay.cut()


def problem(response: Any, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["field"] == field, body
    return body


async def test_bad_record_rejects_whole_batch_naming_index_and_path(
    kafka_bootstrap: str, topic_factory: Any, schema_registry_url: str, tmp_path: Path
) -> None:
    topic = await topic_factory.create()
    records = [{"value": {"x": 1, "tags": []}}, {"value": {"x": 2, "tags": ["a", 3]}}]
    async with schema_sidecar(kafka_bootstrap, schema_registry_url, tmp_path) as rs:
        avro = await rs.client.post(
            f"/producers/{topic}", json={"valueFormat": "avro", "valueSchema": json.dumps(POINT), "records": records}
        )
        problem(avro, 422, "records[1].value.tags[1]")
        schema = {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"a": {"type": "object", "properties": {"b": {"type": "integer"}}}},
        }
        js = await rs.client.post(
            f"/producers/{topic}",
            json={
                "valueFormat": "jsonschema",
                "valueSchema": json.dumps(schema),
                "records": [{"value": {"a": {"b": 1}}}, {"value": {"a": {"b": 1}}}, {"value": {"a": {"b": "no"}}}],
            },
        )
        problem(js, 422, "records[2].value.a.b")
        proto = 'syntax = "proto3";\nmessage P { int32 n = 1; }\n'
        pb = await rs.client.post(
            f"/producers/{topic}",
            json={"valueFormat": "protobuf", "valueSchema": proto, "records": [{"value": {"n": "many"}}]},
        )
        problem(pb, 422, "records[0].value.n")
    assert await end_offset(kafka_bootstrap, topic) == 0  # nothing of any rejected batch was produced


async def test_conflicts_and_unknown_references(
    kafka_bootstrap: str, topic_factory: Any, schema_registry_url: str, tmp_path: Path
) -> None:
    topic = await topic_factory.create()
    value = {"x": 1, "tags": []}
    async with schema_sidecar(kafka_bootstrap, schema_registry_url, tmp_path) as rs:
        post = rs.client.post
        ok = await post(
            f"/producers/{topic}",
            json={"valueFormat": "avro", "valueSchema": json.dumps(POINT), "records": [{"value": value}]},
        )
        schema_id = ok.json()["value_schema_id"]
        both = await post(
            f"/producers/{topic}",
            json={
                "valueFormat": "avro",
                "valueSchemaId": schema_id,
                "valueSchemaVersion": 1,
                "records": [{"value": value}],
            },
        )
        problem(both, 422, "valueSchemaId")
        both_schema = await post(
            f"/producers/{topic}",
            json={
                "valueFormat": "avro",
                "valueSchemaId": schema_id,
                "valueSchema": json.dumps(POINT),
                "records": [{"value": value}],
            },
        )
        problem(both_schema, 422, "valueSchemaId")
        unknown_subject = await post(
            f"/producers/{topic}",
            json={
                "valueFormat": "avro",
                "valueSchemaVersion": 1,
                "valueSchemaSubject": unique("nobody"),
                "records": [{"value": value}],
            },
        )
        assert problem(unknown_subject, 422, "valueSchemaVersion")["error_code"] == 40401
        unknown_version = await post(
            f"/producers/{topic}", json={"valueFormat": "avro", "valueSchemaVersion": 99, "records": [{"value": value}]}
        )
        assert problem(unknown_version, 422, "valueSchemaVersion")["error_code"] == 40402
        latest_unknown = await post(
            f"/producers/{unique('fresh')}", json={"valueFormat": "avro", "records": [{"value": value}]}
        )
        problem(latest_unknown, 422, "valueSchema")
        unknown_id = await post(
            f"/producers/{topic}",
            json={"valueFormat": "avro", "valueSchemaId": 2_000_000_000, "records": [{"value": value}]},
        )
        problem(unknown_id, 422, "valueSchemaId")
        wrong_type = await post(
            f"/producers/{topic}",
            json={"valueFormat": "protobuf", "valueSchemaId": schema_id, "records": [{"value": value}]},
        )
        problem(wrong_type, 422, "valueSchemaId")
        invalid = await post(
            f"/producers/{topic}",
            json={"valueFormat": "avro", "valueSchema": '{"type": "nope"}', "records": [{"value": value}]},
        )
        problem(invalid, 422, "valueSchema")
        key_needed = await post(
            f"/producers/{topic}",
            json={"keyFormat": "avro", "valueFormat": "avro", "records": [{"key": 1, "value": value}]},
        )
        problem(key_needed, 422, "keySchema")
    assert await end_offset(kafka_bootstrap, topic) == 1


async def test_registry_down_cached_schemas_work_uncached_give_503(
    kafka_bootstrap: str, topic_factory: Any, schema_registry_url: str, tmp_path: Path
) -> None:
    topic = await topic_factory.create()
    value = {"x": 1, "tags": ["t"]}
    other = {**POINT, "name": "Other"}
    async with relayed(schema_registry_url) as (relay, url), schema_sidecar(kafka_bootstrap, url, tmp_path) as rs:
        post = rs.client.post
        warm = await post(
            f"/producers/{topic}",
            json={"valueFormat": "avro", "valueSchema": json.dumps(POINT), "records": [{"value": value}]},
        )
        assert warm.status_code == 200, warm.text
        schema_id = warm.json()["value_schema_id"]
        latest = await post(f"/producers/{topic}", json={"valueFormat": "avro", "records": [{"value": value}]})
        assert latest.json()["value_schema_id"] == schema_id  # fetched now: cached for the outage below
        (record,) = [
            await rs.sidecar.resources.serdes.get("avro", field="f").decode(
                b"\x00" + schema_id.to_bytes(4, "big") + b"\x02\x00", topic, "value"
            )
        ]
        assert record == {"x": 1, "tags": []}
        await relay.cut()
        for body in ({"valueSchema": json.dumps(POINT)}, {"valueSchemaId": schema_id}, {}):
            again = await post(
                f"/producers/{topic}", json={"valueFormat": "avro", **body, "records": [{"value": value}]}
            )
            assert again.status_code == 200, (body, again.text)
            assert again.json()["value_schema_id"] == schema_id
        decoded = await rs.sidecar.resources.serdes.get("avro", field="f").decode(
            b"\x00" + schema_id.to_bytes(4, "big") + b"\x04\x02\x02a\x00", topic, "value"
        )
        assert decoded == {"x": 2, "tags": ["a"]}
        uncached = await post(
            f"/producers/{topic}",
            json={"valueFormat": "avro", "valueSchema": json.dumps(other), "records": [{"value": value}]},
        )
        body = problem(uncached, 503, "schema_registry")
        assert body["status"] == 503
    assert await end_offset(kafka_bootstrap, topic) == 5
