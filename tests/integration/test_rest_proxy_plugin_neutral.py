"""Every cross-cutting plugin can be removed from (or added to) the chain without changing any v2/v3 status or code."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from kafka_sidecar.testing import running_sidecar
from kafka_sidecar_testing.pytest_plugin import TopicFactory

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

SHIPPED = (Path(__file__).resolve().parents[2] / "chains.yml").read_text(encoding="utf-8")
DEFAULT = "default: [metrics, correlation, tracing, logging, audit, validation]"
PLUGINS = ("metrics", "correlation", "tracing", "logging", "audit", "validation")
V2 = "application/vnd.kafka.v2+json"
V2J = "application/vnd.kafka.json.v2+json"
JSON = "application/json"


async def outcomes(client: httpx.AsyncClient, topic: str) -> list[tuple[str, int, object]]:
    """(what, status, error_code) for a fixed set of good and bad v2/v3 requests."""
    cluster = (await client.get("/v3/clusters")).json()["data"][0]["cluster_id"]
    v3 = f"/v3/clusters/{cluster}"
    group = f"neutral-{topic}"
    requests: list[tuple[str, str, str, object, str]] = [
        ("v2 produce", "POST", f"/topics/{topic}", {"records": [{"value": {"a": 1}}]}, V2J),
        ("v2 produce bad field", "POST", f"/topics/{topic}", {"records": [{"valu": 1}]}, V2J),
        ("v2 produce bad media", "POST", f"/topics/{topic}", {"records": []}, "text/plain"),
        ("v2 produce no media", "POST", f"/topics/{topic}", {"records": [{"value": 1}]}, ""),
        ("v2 produce bad header", "POST", f"/topics/{topic}", {"records": [{"value": 1, "headers": {"h": 5}}]}, V2J),
        ("v2 produce nameless header", "POST", f"/topics/{topic}",
         {"records": [{"value": 1, "headers": [{"value": "AA=="}]}]}, V2J),
        ("v2 produce bad stamp", "POST", f"/topics/{topic}", {"records": [{"value": 1, "timestamp": "soon"}]}, V2J),
        ("v2 produce no records", "POST", f"/topics/{topic}", {"records": []}, V2J),
        ("v2 produce bad format", "POST", f"/topics/{topic}", {"valueFormat": "xml", "records": [{"value": 1}]},
         JSON),
        ("v2 produce bad partition", "POST", f"/topics/{topic}/partitions/x1", {"records": [{"value": 1}]}, V2J),
        ("v2 produce bad topic", "POST", "/topics/bad%20topic", {"records": [{"value": 1}]}, V2J),
        ("v2 create bad reset", "POST", f"/consumers/{group}", {"auto.offset.reset": 5}, V2),
        ("v2 create bad reset word", "POST", f"/consumers/{group}", {"auto.offset.reset": "often"}, V2),
        ("v2 create", "POST", f"/consumers/{group}", {"name": "i", "format": "json"}, V2J),
        ("v2 create twice", "POST", f"/consumers/{group}", {"name": "i"}, V2),
        ("v2 subscribe bad", "POST", f"/consumers/{group}/instances/i/subscription", {"topics": "x"}, V2),
        ("v2 subscribe", "POST", f"/consumers/{group}/instances/i/subscription", {"topics": [topic]}, V2),
        ("v2 commit bad", "POST", f"/consumers/{group}/instances/i/offsets", {"offsets": [{"topic": topic}]}, V2),
        ("v2 seek bad stamp", "POST", f"/consumers/{group}/instances/i/positions",
         {"timestamps": [{"topic": topic, "partition": 0, "timestamp": "soon"}]}, V2),
        ("v2 consumer bad media", "POST", f"/consumers/{group}/instances/i/subscription", {"topics": []}, "text/plain"),
        ("v2 unknown instance", "GET", f"/consumers/{group}/instances/nobody/records", None, ""),
        ("v2 delete", "DELETE", f"/consumers/{group}/instances/i", None, ""),
        ("v2 topic", "GET", f"/topics/{topic}", None, ""),
        ("v2 unknown topic", "GET", "/topics/surely-not-a-topic", None, ""),
        ("v2 unknown partition", "GET", f"/topics/{topic}/partitions/9", None, ""),
        ("v3 produce", "POST", f"{v3}/topics/{topic}/records", {"value": {"type": "JSON", "data": 1}}, JSON),
        ("v3 produce bad type", "POST", f"{v3}/topics/{topic}/records", {"value": {"type": "XML"}}, JSON),
        ("v3 produce bad media", "POST", f"{v3}/topics/{topic}/records", {"value": {}}, "text/plain"),
        ("v3 batch bad", "POST", f"{v3}/topics/{topic}/records:batch", {"entries": "x"}, JSON),
        ("v3 unknown topic", "GET", f"{v3}/topics/surely-not-a-topic", None, ""),
        ("v3 unknown group", "GET", f"{v3}/consumer-groups/surely-not-a-group/lags", None, ""),
    ]  # fmt: skip
    out: list[tuple[str, int, object]] = []
    for what, method, path, body, media in requests:
        headers = {"content-type": media} if media else {}
        content = json.dumps(body).encode() if body is not None else None
        response = await client.request(method, path, content=content, headers=headers)
        code = response.json().get("error_code") if response.status_code >= 400 else None
        out.append((what, response.status_code, code))
    return out


VALIDATION = "    use: validation "
RECHECK = "validation rechecking"
"""The shipped chain with the validation plugin checking the producer's routes too (which the producer
declares it checks itself): both must answer the same."""


@pytest.mark.parametrize("removed", [None, *PLUGINS, RECHECK])
async def test_removing_a_plugin_changes_no_status_or_error_code(
    tmp_path: Path, kafka_bootstrap: str, topic_factory: TopicFactory, removed: str | None
) -> None:
    topic = await topic_factory.create()
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    async with running_sidecar(SHIPPED.replace(DEFAULT, "default: []"), _dir(tmp_path, "bare"), env=env) as bare:
        await group_coordinator_ready(bare.client)
        baseline = await outcomes(bare.client, topic)
    kept = [p for p in PLUGINS if p != removed]
    chain = SHIPPED.replace(DEFAULT, f"default: [{', '.join(kept)}]")
    if removed == RECHECK:
        assert SHIPPED.count(VALIDATION) == 1
        chain = chain.replace(VALIDATION, "    config: {recheck_handler_checked: true}\n" + VALIDATION)
    topic2 = await topic_factory.create()
    async with running_sidecar(chain, _dir(tmp_path, "chain"), env=env) as with_plugins:
        measured = await outcomes(with_plugins.client, topic2)
    assert [(w, s, c) for w, s, c in measured] == [(w, s, c) for w, s, c in baseline]
    assert {w: s for w, s, _ in baseline}["v2 create bad reset"] == 422
    assert {w: c for w, _, c in baseline}["v2 create bad reset"] == 42204


async def group_coordinator_ready(client: httpx.AsyncClient, deadline_s: float = 30.0) -> None:
    """Until a fresh broker has its group coordinator (``__consumer_offsets``), a group's lag is rightly a 503
    (retry later); the comparison needs the broker past that, or the first system asked gets the 503."""
    cluster = (await client.get("/v3/clusters")).json()["data"][0]["cluster_id"]
    lags = f"/v3/clusters/{cluster}/consumer-groups/surely-not-a-group/lags"
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    status = 503
    while loop.time() < end:
        status = (await client.get(lags)).status_code
        if status != 503:
            break
        await asyncio.sleep(0.2)
    assert status == 404, f"the group coordinator did not answer within {deadline_s} s (last status {status})"


def _dir(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir(exist_ok=True)
    return path
