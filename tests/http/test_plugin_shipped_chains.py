"""The shipped chains.yml with every plugin in its default chain, in process, Kafka unreachable.

Every operation of the served description is called with empty and nonsense input: nothing may answer
a 5xx other than 503 (Kafka unreachable here), and every error is a problem body matching the
described Problem schema.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from kafka_sidecar.testing import running_sidecar

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.asyncio


async def test_shipped_default_chain_serves_a_complete_description_and_never_500s(tmp_path: Path) -> None:
    shipped = (REPO / "chains.yml").read_text(encoding="utf-8")
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "SIDECAR_PORT": "0"}
    async with running_sidecar(shipped, tmp_path, env=env, wait_for_kafka=0) as rs:
        chains = (await rs.client.get("/admin/chains")).json()
        produce_chain = next(r for r in chains["routes"] if r["path"] == "/producers/{topic}")["chain"]
        assert [link["type"] for link in produce_chain] == [
            "metrics", "correlation", "tracing", "logging-context", "audit", "validation", "producer",
        ]  # fmt: skip
        doc = (await rs.client.get("/openapi.json")).json()
        answers = []
        problems: list[object] = []
        for path, item in doc["paths"].items():
            concrete = path.replace("{", "x").replace("}", "")
            for method in item:
                for body in (None, b"{}", b'{"records": [{"value": 1}], "nonsense": true}', b"[1"):
                    response = await rs.client.request(
                        method.upper(), concrete, content=body, headers={"content-type": "application/json"}
                    )
                    answers.append((method, path, body, response.status_code, response.headers.get("content-type")))
                    if response.status_code >= 400:
                        problems.append(response.json())
    assert len(answers) >= 4 * 20
    problem_schema = Draft202012Validator(doc["components"]["schemas"]["Problem"])
    for problem in problems:
        problem_schema.validate(problem)
    for method, path, body, status, media in answers:
        assert status < 500 or status == 503, f"{method} {path} {body!r} answered {status}"
        if status >= 400:
            assert media == "application/problem+json", f"{method} {path} {body!r}: {status} {media}"


async def test_a_misspelt_field_gets_the_did_you_mean_hint_under_the_shipped_chain(tmp_path: Path) -> None:
    shipped = (REPO / "chains.yml").read_text(encoding="utf-8")
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "SIDECAR_PORT": "0"}
    async with running_sidecar(shipped, tmp_path, env=env, wait_for_kafka=0) as rs:
        response = await rs.client.post("/producers/t", json={"records": [{"value": 1, "partitoin": 0}]})
    assert response.status_code == 422
    problem = response.json()
    assert problem["field"] == "records[0].partitoin"
    assert "did you mean 'partition'?" in problem["detail"]
