"""The console's page and JSON routes in process, without a broker: guard, assets, validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kafka_sidecar.testing.sidecar import running_sidecar
from kafka_sidecar_plugins.console._history import History

pytestmark = pytest.mark.asyncio

CONFIG = """
kafka: {bootstrap_servers: "127.0.0.1:1", connect_timeout_ms: 200}
handlers:
  sink:
    use: reactive-consumer
    config: {topics: [orders], group: g, backend_url: "http://127.0.0.1:1"}
consumers:
  orders: {exec: [sink], enabled: false}
paths:
  - {path: "/producers/{topic}", method: POST, exec: [producer]}
"""


async def test_page_and_assets_are_served_to_loopback_callers_with_a_strict_policy(tmp_path: Path) -> None:
    async with running_sidecar(CONFIG, tmp_path, wait_for_kafka=0) as rs:
        page = await rs.client.get("/admin/ui")
        script = await rs.client.get("/admin/ui/console.js")
        style = await rs.client.get("/admin/ui/console.css")
        unknown = await rs.client.get("/admin/ui/secrets.txt")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/admin/ui/console.js"' in page.text
    assert "http://" not in page.text
    assert "https://" not in page.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert ".innerHTML" not in script.text  # sidecar data reaches the page as text only
    assert style.status_code == 200
    assert unknown.status_code == 404
    assert unknown.json()["field"] == "asset"


async def test_console_routes_are_admin_guarded(tmp_path: Path) -> None:
    async with running_sidecar(CONFIG, tmp_path, wait_for_kafka=0, client_host="10.1.2.3") as rs:
        for path in ("/admin/ui", "/admin/ui/console.js", "/admin/console/producer", "/admin/console/active",
                     "/admin/console/history",
                     "/admin/console/reactive/orders/dead-letters"):  # fmt: skip
            response = await rs.client.get(path)
            assert response.status_code == 403, path
            assert "loopback" in response.json()["detail"]


async def test_producer_state_and_empty_active_list_and_dead_letter_validation(tmp_path: Path) -> None:
    async with running_sidecar(CONFIG, tmp_path, wait_for_kafka=0) as rs:
        producer = (await rs.client.get("/admin/console/producer")).json()
        active = (await rs.client.get("/admin/console/active")).json()
        history = (await rs.client.get("/admin/console/history")).json()
        unknown = await rs.client.get("/admin/console/reactive/nope/dead-letters")
        bad_limit = await rs.client.get("/admin/console/reactive/orders/dead-letters?limit=0")
    assert producer["connected"] is False
    assert producer["bootstrap_servers"] == "127.0.0.1:1"
    assert active == {"instances": []}
    assert history == {"interval_s": 5.0, "samples": []}  # no running reactive consumer: nothing sampled
    assert unknown.status_code == 404
    assert "no reactive consumer 'nope'" in unknown.json()["detail"]
    assert bad_limit.status_code == 422
    assert bad_limit.json()["field"] == "limit"


async def test_history_sums_lag_and_deliveries_per_consumer_and_keeps_the_last_samples() -> None:
    replies: list[dict[str, Any]] = [
        {"partitions": [{"lag": 3, "delivered": 10}, {"lag": None, "delivered": 5}]},
        {"partitions": []},
    ]

    async def orders() -> dict[str, Any]:
        return replies.pop(0)

    history = History({"orders": orders}, keep=1)
    await history.sample()
    assert [s["consumers"] for s in history.samples] == [{"orders": {"lag": 3, "delivered": 15}}]
    await history.sample()
    assert [s["consumers"] for s in history.samples] == [{"orders": {"lag": 0, "delivered": 0}}]
