"""The console's page and JSON routes in process, without a broker: guard, assets, validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kafka_sidecar.testing import running_sidecar
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


COMPONENTS = """
kafka: {bootstrap_servers: "127.0.0.1:1", connect_timeout_ms: 200}
handlers:
  views:
    use: ksqldb-consumer
    config:
      server: http://127.0.0.1:1
      mode: push
      query: "SELECT * FROM PAGEVIEWS EMIT CHANGES;"
      delivery: {group: g, backend_url: "http://127.0.0.1:1", backend_path: /rows}
  enricher:
    use: stream-processor
    config:
      application_id: enricher-app
      runtime: command
      command: [python3, -c, "import time; time.sleep(600)"]
      expose: false
consumers:
  views: {exec: [views]}
  enricher: {exec: [enricher]}
"""
# What the page's ksqlDB and processor rows show, by the status key it reads.
KSQLDB_SHOWN = ("name", "mode", "state", "query_id", "rows_received", "rows_delivered", "resubscribes",
                "gap_possible", "paused", "last_error")  # fmt: skip
PROCESSOR_SHOWN = ("name", "runtime", "state", "pid", "uptime_s", "restarts", "last_exit", "last_error",
                   "last_lines", "lag")  # fmt: skip


async def test_page_has_ksqldb_and_processor_sections_wired_to_their_admin_routes(tmp_path: Path) -> None:
    async with running_sidecar(COMPONENTS, tmp_path, wait_for_kafka=0) as rs:
        page = (await rs.client.get("/admin/ui")).text
        script = (await rs.client.get("/admin/ui/console.js")).text
        ksqldb = (await rs.client.get("/admin/ksqldb")).json()["consumers"]
        processors = (await rs.client.get("/admin/processors")).json()["processors"]
    for table in ("ksqldb-table", "processors-table"):
        assert f'<table id="{table}">' in page
        assert f'"{table}", (row' in script
    assert 'href="#ksqldb"' in page
    assert 'href="#processors"' in page
    # The page polls both lists and posts the actions to each one's admin routes.
    assert 'fillRows("/admin/ksqldb", "consumers"' in script
    assert 'fillRows("/admin/processors", "processors"' in script
    assert '"/admin/ksqldb/" + encodeURIComponent(c.name), ["pause", "resume", "restart", FROM_START]' in script
    assert '"/admin/processors/" + encodeURIComponent(p.name), ["stop", "start", "restart", RESET]' in script
    assert 'path: "restart", body: {auto_offset_reset: "earliest"}' in script
    assert 'path: "reset", body: {to: "beginning"}' in script
    assert "refreshKsqldb(), refreshProcessors()" in script
    # Every status field the rows read is in what the routes return.
    assert [c["name"] for c in ksqldb] == ["views"]
    assert [p["name"] for p in processors] == ["enricher"]
    for key in KSQLDB_SHOWN:
        assert key in ksqldb[0], key
        assert f"c.{key}" in script, key
    for key in PROCESSOR_SHOWN:
        assert key in processors[0], key
        assert f"p.{key}" in script, key
    assert ksqldb[0]["mode"] == "push"
    assert processors[0]["runtime"] == "command"


async def test_ksqldb_and_processor_actions_from_the_page_reach_their_routes(tmp_path: Path) -> None:
    async with running_sidecar(COMPONENTS, tmp_path, wait_for_kafka=0) as rs:
        # The page's buttons post to these paths; a not-started consumer answers with a clear conflict.
        pause = await rs.client.post("/admin/ksqldb/views/pause", json={})
        unknown = await rs.client.post("/admin/processors/nope/stop", json={})
        guarded = [(await rs.client.get(p)).status_code for p in ("/admin/ksqldb", "/admin/processors")]
    assert pause.status_code == 409
    assert "nothing to pause yet" in pause.json()["detail"]
    assert unknown.status_code == 404
    assert "no stream processor 'nope'" in unknown.json()["detail"]
    assert guarded == [200, 200]
