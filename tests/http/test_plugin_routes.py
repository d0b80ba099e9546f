"""The cross-cutting plugins in the real chain and app, in process, without a broker.

Kafka is unreachable here on purpose: everything asserted happens before or without the broker.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from kafka_sidecar.testing import RunningSidecar, running_sidecar

pytestmark = pytest.mark.asyncio

ORDER_SCHEMA = json.dumps({"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}})
ALL = ["metrics", "correlation", "tracing", "logging", "audit", "validation"]


def config(chain: list[str]) -> str:
    return f"""
kafka:
  bootstrap_servers: 127.0.0.1:1
  connect_timeout_ms: 200
handlers:
  metrics: {{use: metrics}}
  correlation: {{use: correlation}}
  tracing: {{use: tracing}}
  logging: {{use: logging-context, config: {{install: false}}}}
  audit: {{use: audit, config: {{target: log}}}}
  validation:
    use: validation
    config:
      topic_schemas: {{orders: '{ORDER_SCHEMA}'}}
chains:
  default: [{", ".join(chain)}]
paths:
  - path: /producers/{{topic}}
    method: POST
    exec: [default, producer]
  - path: /topics/{{topic}}/partitions/{{partition}}
    method: POST
    exec: [default, producer]
"""


@asynccontextmanager
async def sidecar(tmp_path: Path, chain: list[str]) -> AsyncIterator[RunningSidecar]:
    async with running_sidecar(config(chain), tmp_path, wait_for_kafka=0) as rs:
        yield rs


async def test_openapi_describes_every_mounted_route_with_problem_responses(tmp_path: Path) -> None:
    async with sidecar(tmp_path, ALL) as rs:
        response = await rs.client.get("/openapi.json")
        docs = await rs.client.get("/docs")
        routes = {getattr(r, "path", None) for r in rs.client._transport.app.routes}  # type: ignore[attr-defined]
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.1")
    produce = doc["paths"]["/producers/{topic}"]["post"]
    assert produce["requestBody"]["content"]["application/json"]["schema"]["required"] == ["records"]
    assert {"200", "207", "422", "503", "default"} <= set(produce["responses"])
    assert "/topics/{topic}/partitions/{partition}" in doc["paths"]
    for path in routes - {None}:
        assert path in doc["paths"], f"{path} is mounted but not described"
    for item in doc["paths"].values():
        for operation in item.values():
            assert operation["responses"]["default"] == {"$ref": "#/components/responses/Problem"}
    assert "Problem" in doc["components"]["schemas"]
    assert docs.status_code == 200
    assert "openapi.json" in docs.text
    assert docs.headers["content-type"].startswith("text/html")


async def test_validation_errors_are_problems_naming_the_field_with_ids_and_metrics(tmp_path: Path) -> None:
    async with sidecar(tmp_path, ALL) as rs:
        bad_schema = await rs.client.post("/producers/orders", json={"records": [{"value": {"id": 5}}]})
        bad_body = await rs.client.post("/producers/orders", json={"records": [{"value": {}, "partiton": 1}]})
        bad_type = await rs.client.post("/producers/orders", content=b"x", headers={"content-type": "text/plain"})
        metrics = await rs.client.get("/metrics")
    assert bad_schema.status_code == 422
    assert bad_schema.json()["field"] == "records[0].value.id"
    assert bad_schema.headers["content-type"] == "application/problem+json"
    assert bad_schema.headers["x-correlation-id"]
    assert bad_body.json()["field"] == "records[0].partiton"
    assert bad_type.status_code == 415
    assert bad_type.json()["field"] == "Content-Type"
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'kafka_sidecar_http_requests_total{method="POST",route="/producers/{topic}",status="422"} 2' in metrics.text
    assert 'kafka_sidecar_http_requests_total{method="POST",route="/producers/{topic}",status="415"} 1' in metrics.text


async def test_admin_logging_reads_and_changes_levels(tmp_path: Path) -> None:
    async with sidecar(tmp_path, ALL) as rs:
        before = await rs.client.get("/admin/logging")
        changed = await rs.client.post("/admin/logging", json={"loggers": {"kafka_sidecar.test_plugin": "debug"}})
        bad = await rs.client.post("/admin/logging", json={"loggers": {"x": "LOUD"}})
        metrics = (await rs.client.get("/metrics")).text
    assert before.status_code == 200
    assert "root" in before.json()
    assert changed.json()["loggers"]["kafka_sidecar.test_plugin"] == "DEBUG"
    assert bad.status_code == 422
    assert bad.json()["field"] == "loggers.x"
    assert 'kafka_sidecar_admin_actions_total{action="set-log-level"} 1' in metrics


async def test_admin_logging_refuses_non_loopback_callers(tmp_path: Path) -> None:
    async with running_sidecar(config(ALL), tmp_path, wait_for_kafka=0, client_host="10.1.2.3") as rs:
        response = await rs.client.post("/admin/logging", json={"loggers": {"root": "DEBUG"}})
    assert response.status_code == 403


@pytest.mark.parametrize("removed", ["metrics", "correlation", "logging", "validation"])
async def test_removing_a_plugin_from_the_chain_removes_its_effect(tmp_path: Path, removed: str) -> None:
    chain = [name for name in ALL if name != removed]
    async with sidecar(tmp_path, chain) as rs:
        metrics = await rs.client.get("/metrics")
        logging_admin = await rs.client.get("/admin/logging")
        produce = await rs.client.post("/producers/orders", json={"records": [{"value": {"id": 5}}]})
    assert (metrics.status_code == 404) is (removed == "metrics")
    assert (logging_admin.status_code == 404) is (removed == "logging")
    assert ("x-correlation-id" not in produce.headers) is (removed == "correlation")
    # without validation the bad value reaches the producer, which cannot reach Kafka here
    assert produce.status_code == (503 if removed == "validation" else 422)
