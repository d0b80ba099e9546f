"""Active-consumer routes in-process, no broker: everything answered before a consumer is needed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from kafka_sidecar.testing import running_sidecar

CONFIG = """\
kafka:
  bootstrap_servers: 127.0.0.1:1
  connect_timeout_ms: 200
handlers:
  active:
    use: active-consumer
    config: {start_timeout_ms: 300, max_request_timeout_ms: 5000}
paths:
  - {path: "/consumers/{group}", method: POST, exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}", method: DELETE, exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}/records", method: GET, exec: [active]}
  - {path: "/consumers/{group}/instances/{instance}/offsets", methods: [POST, GET], exec: [active]}
  - {path: "/consumers/deadLetter/active", method: POST, exec: [active]}
"""


@pytest_asyncio.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running_sidecar(CONFIG, tmp_path, env={}, wait_for_kafka=0) as running:
        yield running.client


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "field", "v2_code"),
    [
        ([1], "body", 42200),
        ({"nmae": "x"}, "nmae", 42200),
        ({"name": "bad name!"}, "name", 42204),
        ({"format": "yaml"}, "format", 42204),
        ({"valueFormat": "yaml"}, "valueFormat", 42204),
        ({"auto.offset.reset": "oldest"}, "auto.offset.reset", 42204),
        ({"autoCommitEnable": "maybe"}, "autoCommitEnable", 42204),
        ({"fetch.min.bytes": -2}, "fetch.min.bytes", 42204),
        ({"consumer.request.timeout.ms": "soon"}, "consumer.request.timeout.ms", 42204),
        ({"consumer.request.timeout.ms": 60000}, "consumer.request.timeout.ms", 42204),
        ({"name": "a", "id": "b"}, "id", 42200),
    ],
)
async def test_bad_create_bodies_name_the_field(
    client: httpx.AsyncClient, body: object, field: str, v2_code: int
) -> None:
    response = await client.post("/consumers/g1", json=body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["field"] == field
    assert problem["error_code"] == v2_code
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.asyncio
async def test_unknown_instance_is_404_with_v2_code(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/consumers/g1/instances/ghost/records"),
        ("POST", "/consumers/g1/instances/ghost/offsets"),
        ("DELETE", "/consumers/g1/instances/ghost"),
    ]:
        response = await client.request(method, path)
        assert response.status_code == 404, (method, path, response.text)
        body = response.json()
        assert body["error_code"] == 40403
        assert body["message"] == body["detail"]


@pytest.mark.asyncio
async def test_broker_down_create_is_503_and_frees_the_name(client: httpx.AsyncClient) -> None:
    for _ in range(2):  # the second try is 503 again, not 409: the failed name was released
        response = await client.post("/consumers/g1", json={"name": "n1"})
        assert response.status_code == 503, response.text


@pytest.mark.asyncio
async def test_dead_letter_unknown_format_names_it(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/consumers/deadLetter/active", json=[{"record": {"topic": "t", "partition": 0, "offset": 0}, "format": "yaml"}]
    )
    assert response.status_code == 415, response.text
    assert response.json()["field"] == "[0].format"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("accept", "media"),
    [
        ("application/vnd.kafka.v2+json", "application/vnd.kafka.v2+json"),
        ("application/vnd.kafka.binary.v2+json", "application/vnd.kafka.v2+json"),
        ("*/*", "application/problem+json"),
        ("application/problem+json", "application/problem+json"),
    ],
)
async def test_a_v2_error_keeps_error_code_and_message_and_its_media_type_follows_accept(
    client: httpx.AsyncClient, accept: str, media: str
) -> None:
    response = await client.post("/consumers/g/instances/nobody/offsets/", json={}, headers={"accept": accept})
    assert response.status_code == 404, "a trailing slash is served (no 307)"
    assert response.headers["content-type"] == media
    assert (response.json()["error_code"], response.json()["message"]) == (40403, response.json()["detail"])


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "media",
    [
        "application/vnd.kafka.v2+json",
        "application/vnd.kafka.json.v2+json",
        "application/vnd.kafka.binary.v2+json",
        "application/vnd.kafka.avro.v2+json",
        "application/vnd.kafka.jsonschema.v2+json",
        "application/vnd.kafka.protobuf.v2+json",
        "application/json",
    ],
)
async def test_every_v2_media_type_is_accepted_by_consumer_routes(client: httpx.AsyncClient, media: str) -> None:
    response = await client.post(
        "/consumers/g/instances/nobody/offsets", content=b'{"offsets": []}', headers={"content-type": media}
    )
    assert (response.status_code, response.json()["error_code"]) == (404, 40403), "past the media type check"
    refused = await client.post(
        "/consumers/g/instances/nobody/offsets", content=b"{}", headers={"content-type": "text/plain"}
    )
    assert (refused.status_code, refused.json()["error_code"]) == (415, 41501)
