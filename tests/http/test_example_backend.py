"""examples/backend/backend.py: the example backend speaks the reactive consumer's batch contract."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from kafka_sidecar_testing.modules import load_module

BACKEND_FILE = Path(__file__).resolve().parents[2] / "examples" / "backend" / "backend.py"


backend = load_module(BACKEND_FILE, "kafka_sidecar_example_backend")


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=backend.build_app(keep=10)), base_url="http://b")


@pytest.mark.asyncio
async def test_a_batch_is_acknowledged_record_by_record_and_kept() -> None:
    batch = {
        "consumer": "orders",
        "records": [
            {"topic": "t", "partition": 0, "offset": 7, "timestamp": 1, "key": "k", "value": {"a": 1}, "headers": {}},
            {"topic": "t", "partition": 2, "offset": 3, "timestamp": 2, "key": None, "value": "v", "headers": {}},
        ],
    }
    async with _client() as client:
        assert (await client.get("/health")).json() == {"status": "UP"}
        answer = await client.post("/kafka/records", json=batch)
        kept = (await client.get("/records")).json()["records"]
    assert answer.status_code == 200
    assert answer.json() == {
        "results": [
            {"topic": "t", "partition": 0, "offset": 7, "status": "SUCCESS"},
            {"topic": "t", "partition": 2, "offset": 3, "status": "SUCCESS"},
        ]
    }
    assert [(r["consumer"], r["offset"], r["value"]) for r in kept] == [("orders", 7, {"a": 1}), ("orders", 3, "v")]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"nope", "body"),
        (b"[]", "body"),
        (b'{"records": []}', "consumer"),
        (b'{"consumer": "c", "records": {}}', "records"),
        (b'{"consumer": "c", "records": [{"topic": "t", "partition": 0}]}', "records[0].offset"),
        (b'{"consumer": "c", "records": [{"topic": "t", "partition": "0", "offset": 1}]}', "records[0].partition"),
    ],
)
async def test_a_malformed_batch_is_a_400_naming_the_field(body: bytes, field: str) -> None:
    async with _client() as client:
        answer = await client.post("/kafka/records", content=body, headers={"content-type": "application/json"})
        kept = (await client.get("/records")).json()["records"]
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == field
    assert kept == []
