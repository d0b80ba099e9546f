"""The produce routes in-process: validation, media types and limits, all answered before Kafka is touched."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from kafka_sidecar.testing import running_sidecar
from kafka_sidecar_testing.leak_scan import SecretWatch

CONFIG = """\
server:
  max_body_bytes: 2048
kafka:
  bootstrap_servers: 127.0.0.1:1
  connect_timeout_ms: 200
  producer: {engine: "${PRODUCER_ENGINE:aiokafka}"}
  security:
    sasl_password: hunter2-secret
handlers:
  producer: {use: producer, config: {max_records: 5}}
paths:
  - {path: "/producers/{topic}", method: POST, exec: [producer]}
  - {path: "/topics/{topic}", method: POST, exec: [producer]}
  - {path: "/topics/{topic}/partitions/{partition}", method: POST, exec: [producer]}
"""


@pytest.fixture(autouse=True)
def _watch_secrets(secret_watch: SecretWatch) -> None:
    """Registers the SASL password in CONFIG for the whole-run leak check (tests/zz_final)."""
    secret_watch.add("hunter2-secret")


@pytest_asyncio.fixture(params=["aiokafka", "librdkafka"])
async def client(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    """The sidecar with each producer engine (``kafka.producer.engine``), with no broker to reach."""
    async with running_sidecar(CONFIG, tmp_path, env={"PRODUCER_ENGINE": request.param}, wait_for_kafka=0) as running:
        yield running.client


def assert_problem(response: httpx.Response, status: int, field: str | None) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["error_code"], int)
    assert body["message"] == body["detail"]
    if field is not None:
        assert body["field"] == field
    return dict(body)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "records"),
        ({"records": []}, "records"),
        ({"records": [{"value": 1}, {"value": 2, "partitoin": 1}]}, "records[1].partitoin"),
        ({"records": [{"value": 1, "partition": -1}]}, "records[0].partition"),
        ({"records": [{"value": 1, "timestamp": "now"}]}, "records[0].timestamp"),
        ({"records": [{"value": 1, "headers": {"a": 1}}]}, "records[0].headers.a"),
        ({"records": [{"value": 1, "headers": [{"name": "a", "value": "%%"}]}]}, "records[0].headers[0].value"),
        ({"records": [{"value": 1}], "valueFormat": "yaml"}, "valueFormat"),
        ({"records": [{"value": 1}], "valueSchemaId": 3, "valueSchemaVersion": 1}, "valueSchemaId"),
        ({"records": [{"value": 1}], "valueSchema": "{}"}, "valueSchema"),
        ({"records": [{"value": 5}], "valueFormat": "string"}, "records[0].value"),
        ({"records": [{"value": i} for i in range(6)]}, "records"),
        ([1, 2], "body"),
        ({"records": [{"value": 1}, {"value": 2, "timestamp": 2**63}]}, "records[1].timestamp"),
        ({"records": [{"value": 1}, {"value": 2, "headers": {"\ud800": "x"}}]}, "records[1].headers.\\ud800"),
        ({"records": [{"value": 1}, {"value": 2, "correlationId": "\ud800"}]}, "records[1].correlationId"),
        ({"records": [{"value": "a"}, {"value": "\ud800"}], "valueFormat": "string"}, "records[1].value"),
        # the first problem in record order wins, whichever column it is in (keys and values are encoded
        # column by column while nothing fails)
        ({"records": [{}, {"value": 5}], "valueFormat": "string"}, "records[0].value"),
        ({"records": [{"value": "a"}, {"key": 5, "value": "b"}], "keyFormat": "string"}, "records[1].key"),
        (
            {"records": [{"value": "a", "headers": {"h": 1}}, {"value": 5}], "valueFormat": "string"},
            "records[0].headers.h",
        ),
        ({"records": [{"value": 5}, {"value": "a", "headers": {"h": 1}}], "valueFormat": "string"}, "records[0].value"),
        ({"records": [{"value": 1}, {"value": 2, "headers": 0}]}, "records[1].headers"),  # falsy, still checked
    ],
)
async def test_bad_bodies_are_4xx_naming_the_field(client: httpx.AsyncClient, body: object, field: str) -> None:
    # json.dumps escapes lone surrogates (valid JSON text); httpx's json= would fail to encode them
    content = json.dumps(body).encode()
    response = await client.post("/producers/orders", content=content, headers={"content-type": "application/json"})
    problem = assert_problem(response, response.status_code, field)
    assert 400 <= int(str(problem["status"])) < 500


@pytest.mark.asyncio
async def test_malformed_json_names_the_body(client: httpx.AsyncClient) -> None:
    headers = {"content-type": "application/json"}
    response = await client.post("/producers/orders", content=b"{not json", headers=headers)
    assert_problem(response, 422, "body")


@pytest.mark.asyncio
async def test_illegal_topic_name(client: httpx.AsyncClient) -> None:
    response = await client.post("/producers/bad%20topic", json={"records": [{"value": 1}]})
    assert_problem(response, 422, "topic")


@pytest.mark.asyncio
async def test_v2_binary_media_type_decodes_base64(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/topics/orders",
        json={"records": [{"value": "not base64!"}]},
        headers={"content-type": "application/vnd.kafka.binary.v2+json"},
    )
    assert_problem(response, 422, "records[0].value")


@pytest.mark.asyncio
async def test_media_type_contradicting_body_format(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/topics/orders",
        json={"records": [{"value": 1}], "valueFormat": "binary"},
        headers={"content-type": "application/vnd.kafka.json.v2+json"},
    )
    assert_problem(response, 422, "valueFormat")


@pytest.mark.asyncio
async def test_unsupported_media_type(client: httpx.AsyncClient) -> None:
    response = await client.post("/producers/orders", content=b"value=1", headers={"content-type": "text/plain"})
    assert_problem(response, 415, "Content-Type")


@pytest.mark.asyncio
async def test_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/producers/orders", json={"records": [{"value": "x" * 4096}]})
    assert_problem(response, 413, "body")


@pytest.mark.asyncio
async def test_valid_request_without_kafka_is_503_not_a_hang(client: httpx.AsyncClient) -> None:
    response = await client.post("/producers/orders", json={"records": [{"value": {"a": 1}}]})
    problem = assert_problem(response, 503, None)
    assert problem["code"] == "kafka-unavailable"
    assert "127.0.0.1:1" in str(problem["detail"])


@pytest.mark.asyncio
async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/nowhere"), 404, "path")
    assert_problem(await client.get("/producers/orders"), 405, "method")


@pytest.mark.asyncio
async def test_health(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).json() == {"status": "UP"}
    ready = await client.get("/health/ready")
    assert_problem(ready, 503, None)


@pytest.mark.asyncio
async def test_admin_routes_show_chains_and_mask_secrets(client: httpx.AsyncClient) -> None:
    chains = (await client.get("/admin/chains")).json()
    assert {"methods": ["POST"], "path": "/producers/{topic}", "chain": [{"name": "producer", "type": "producer"}]} in (
        chains["routes"]
    )
    config = await client.get("/admin/config")
    assert config.status_code == 200
    assert "hunter2-secret" not in config.text
    assert config.json()["kafka"]["security"]["sasl_password"] == "****"


@pytest.mark.asyncio
async def test_admin_routes_refuse_non_loopback_callers(tmp_path: Path) -> None:
    async with running_sidecar(CONFIG, tmp_path, env={}, wait_for_kafka=0, client_host="10.1.2.3") as running:
        assert_problem(await running.client.get("/admin/chains"), 403, None)
        assert (await running.client.get("/health/live")).status_code == 200
