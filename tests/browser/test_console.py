"""The admin console in a real headless Chromium, against a real sidecar process and a real broker."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from PIL import Image
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from kafka_sidecar_testing.ksqldb import wait_listening
from kafka_sidecar_testing.leak_scan import SecretWatch
from kafka_sidecar_testing.net import free_port
from kafka_sidecar_testing.process import SidecarProcess, sidecar_process
from kafka_sidecar_testing.topics import produce_raw

pytestmark = pytest.mark.kafka
T = TypeVar("T")
POISON = '<b id="injected">poison</b>'
SCREENSHOT_ENV = "KAFKA_SIDECAR_CONSOLE_SCREENSHOT"


class Backend:
    """A stdlib HTTP backend: dead-letters records whose value carries ``poison`` until ``healed``."""

    def __init__(self) -> None:
        self.healed = False
        self.received: list[dict[str, Any]] = []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.end_headers()

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                statuses = []
                for record in body["records"]:
                    backend.received.append(record)
                    bad = "poison" in json.dumps(record["value"]) and not backend.healed
                    statuses.append({"partition": record["partition"], "offset": record["offset"],
                                     "status": "DEADLETTER" if bad else "SUCCESS",
                                     "error": "order total is negative" if bad else None})  # fmt: skip
                reply = json.dumps({"statuses": statuses}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def backend() -> Iterator[Backend]:
    served = Backend()
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        served.server.shutdown()
        served.server.server_close()
        thread.join(10)


def eventually(
    probe: Callable[[], T | None], what: str, timeout: float = 30.0, page_error: Callable[[], str] | None = None
) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = probe()
        except Exception:  # the page may be re-rendering under us
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            shown = f" (the page says: {page_error()})" if page_error is not None else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{shown}")
        time.sleep(0.1)


async def _broker_lag(bootstrap: str, topic: str, group: str) -> tuple[int, int]:
    """(end offset, committed offset) of partition 0, read from the broker."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        offsets = await admin.list_consumer_group_offsets(group)
        end = (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()
        await admin.close()
    meta = offsets.get(tp)
    return end, meta.offset if meta is not None else 0


def broker_lag(bootstrap: str, topic: str, group: str) -> tuple[int, int]:
    return asyncio.run(_broker_lag(bootstrap, topic, group))


def produce(bootstrap: str, topic: str, values: list[object]) -> None:
    records = [
        {"key": json.dumps(f"k{i}").encode(), "value": json.dumps(v).encode(), "partition": 0}
        for i, v in enumerate(values)
    ]
    asyncio.run(produce_raw(bootstrap, topic, records))


def click_in_table(browser: webdriver.Chrome, css: str) -> None:
    """Click a button in a table row; the page rebuilds its tables every 2 s, so a row found just before
    may be gone by the click (StaleElementReferenceException): find it again until the click lands."""

    def attempt() -> bool:
        browser.find_element(By.CSS_SELECTOR, css).click()
        return True

    eventually(attempt, f"a click on {css}", timeout=10)


def partition_row(browser: webdriver.Chrome, consumer: str, topic: str) -> WebElement:
    return browser.find_element(By.CSS_SELECTOR, f'#consumer-{consumer} tr[data-topic="{topic}"][data-partition="0"]')


def ui_lag(browser: webdriver.Chrome, topic: str) -> int | None:
    text = partition_row(browser, "orders", topic).find_element(By.CSS_SELECTOR, "td.lag").text
    return int(text.replace(",", "")) if text.replace(",", "").isdigit() else None


CONFIG = """\
server: {{host: 127.0.0.1, port: "${{SIDECAR_PORT}}"}}
kafka: {{bootstrap_servers: "{bootstrap}"}}
handlers:
  logging: {{use: logging-context, config: {{format: text}}}}
  orders-in:
    use: reactive-consumer
    config:
      topics: [{topic}]
      group: {group}
      backend_url: {backend}
      backend_path: /orders
      backend_health_url: {backend}/health
      lag_interval_ms: 500
      backend_token: console-test-secret
consumers:
  orders: {{exec: [logging, orders-in]}}
paths:
  - {{path: "/producers/{{topic}}", method: POST, exec: [logging, producer]}}
  - {{path: "/consumers/{{group}}", method: POST, exec: [active-consumer]}}
  - {{path: "/consumers/{{group}}/instances/{{instance}}/subscription", method: POST, exec: [active-consumer]}}
  - {{path: "/consumers/{{group}}/instances/{{instance}}/records", method: GET, exec: [active-consumer]}}
"""
V2 = {"content-type": "application/vnd.kafka.v2+json"}


def start_active_instance(sidecar: SidecarProcess, topic: str, records: int) -> str:
    """An active-consumer instance that has read ``records`` records of ``topic``; returns its group."""
    group = f"console-active-{uuid.uuid4().hex[:8]}"
    create = {"name": "reader", "format": "json", "auto.offset.reset": "earliest"}
    httpx.post(f"{sidecar.base_url}/consumers/{group}", json=create, headers=V2).raise_for_status()
    base = f"{sidecar.base_url}/consumers/{group}/instances/reader"
    httpx.post(f"{base}/subscription", json={"topics": [topic]}, headers=V2).raise_for_status()
    seen: list[Any] = []
    deadline = time.monotonic() + 30
    while len(seen) < records:
        assert time.monotonic() < deadline, f"the active instance read {len(seen)} records"
        polled = httpx.get(f"{base}/records?timeout=500", headers={"accept": "application/vnd.kafka.json.v2+json"})
        assert polled.status_code == 200, polled.text
        seen += polled.json()
    return group


def test_console_shows_lag_pauses_resumes_and_replays(
    browser: webdriver.Chrome,
    backend: Backend,
    topic_factory: Any,
    kafka_bootstrap: str,
    tmp_path: Path,
    secret_watch: SecretWatch,
) -> None:
    secret_watch.add("console-test-secret")  # the backend token: masked on the page, never in a log
    topic = topic_factory(partitions=1, prefix="console")
    group = f"console-{uuid.uuid4().hex[:8]}"
    config = CONFIG.format(bootstrap=kafka_bootstrap, topic=topic, group=group, backend=backend.url)
    produce(kafka_bootstrap, topic, [{"n": 1}, {"n": 2, "note": POISON}, {"n": 3}])
    with sidecar_process(config, tmp_path) as sidecar:
        eventually(lambda: broker_lag(kafka_bootstrap, topic, group) == (3, 3), "the first records committed")
        browser.get(sidecar.base_url + "/admin/ui")
        eventually(lambda: browser.find_element(By.CSS_SELECTOR, "body[data-ready=true]"), "the page's first poll")
        assert "producer connected" in browser.find_element(By.ID, "producer").text
        assert eventually(lambda: ui_lag(browser, topic) == 0, "lag 0 shown")

        # Pause from the page: new records wait in Kafka and the page shows the broker's lag.
        browser.find_element(By.CSS_SELECTOR, "#consumer-orders button.pause").click()
        eventually(lambda: browser.find_element(By.CSS_SELECTOR, "#consumer-orders[data-paused=true]"), "paused")
        delivered_before = len(backend.received)
        produce(kafka_bootstrap, topic, [{"n": n} for n in range(4, 9)])
        eventually(lambda: ui_lag(browser, topic) == 5, "lag 5 shown while paused")
        end, committed = broker_lag(kafka_bootstrap, topic, group)
        assert (end, committed) == (8, 3)
        assert ui_lag(browser, topic) == end - committed
        assert len(backend.received) == delivered_before

        # Resume: the records are delivered and the lag drops to the broker's 0.
        browser.find_element(By.CSS_SELECTOR, "#consumer-orders button.resume").click()
        eventually(lambda: broker_lag(kafka_bootstrap, topic, group) == (8, 8), "records committed after resume")
        eventually(lambda: ui_lag(browser, topic) == 0, "lag 0 shown after resume")

        # Dead letters: the poison record is listed with its error, its value shown as text, not HTML.
        browser.find_element(By.CSS_SELECTOR, "#consumer-orders details.dlq summary").click()
        browser.find_element(By.CSS_SELECTOR, "#consumer-orders button.dlq-load").click()
        row = eventually(
            lambda: browser.find_element(By.CSS_SELECTOR, "#consumer-orders .dlq-table tbody tr"),
            "a dead letter row",
            page_error=lambda: (
                browser.find_element(By.ID, "error").text
                + browser.find_element(By.CSS_SELECTOR, "#consumer-orders .dlq-status").text
            ),
        )
        assert row.find_element(By.CSS_SELECTOR, "td.error-text").text == "order total is negative"
        assert json.loads(row.find_element(By.CSS_SELECTOR, "td.value-text").text)["note"] == POISON
        assert browser.find_elements(By.ID, "injected") == []

        # Replay: the healed backend accepts it, and the page follows the job to the end.
        backend.healed = True
        replayed_before = sum("poison" in json.dumps(r["value"]) for r in backend.received)
        browser.find_element(By.CSS_SELECTOR, "#consumer-orders button.dlq-replay").click()
        eventually(
            lambda: browser.find_element(By.CSS_SELECTOR, "#consumer-orders[data-replay-state=done]"), "replay done"
        )
        status = browser.find_element(By.CSS_SELECTOR, "#consumer-orders .dlq-status").text
        assert "1/1 done" in status
        assert "SUCCESS 1" in status
        assert sum("poison" in json.dumps(r["value"]) for r in backend.received) == replayed_before + 1

        # Seek to the beginning from the page: every record is delivered again.
        delivered_before = len(backend.received)
        Select(browser.find_element(By.CSS_SELECTOR, "#consumer-orders .seek-kind")).select_by_value("beginning")
        browser.find_element(By.CSS_SELECTOR, "#consumer-orders form.seek button").click()
        result = eventually(lambda: browser.find_element(By.CSS_SELECTOR, "#consumer-orders .seek-result").text,
                            "the seek result")  # fmt: skip
        assert result == f"now at {topic}-0@0"
        eventually(lambda: len(backend.received) >= delivered_before + 8, "the records delivered again")

        # An active-consumer instance shows with the lag of what it has not read yet.
        group = start_active_instance(sidecar, topic, 8)
        produce(kafka_bootstrap, topic, [{"n": 9}])
        instance_row = f'#active-table tr[data-instance="{group}/reader"]'
        eventually(  # the group may still be settling: wait for the row to show the assigned partition
            lambda: f"{topic}-0" in browser.find_element(By.CSS_SELECTOR, instance_row).text,
            "the active instance row with its partition",
            page_error=lambda: browser.find_element(By.ID, "active-table").text,
        )
        active_lag = f'#active-table tr[data-instance="{group}/reader"] td.lag'
        eventually(
            lambda: browser.find_element(By.CSS_SELECTOR, active_lag).text == "1",
            "active lag 1",
            page_error=lambda: browser.find_element(By.ID, "active-table").text,
        )

        # Logging level from the page.
        browser.find_element(By.ID, "level-logger").clear()
        browser.find_element(By.ID, "level-logger").send_keys("kafka_sidecar_handlers")
        Select(browser.find_element(By.ID, "level-value")).select_by_visible_text("DEBUG")
        browser.find_element(By.CSS_SELECTOR, "#level-form button").click()
        level = eventually(
            lambda: browser.find_element(By.CSS_SELECTOR, '#levels-table tr[data-logger="kafka_sidecar_handlers"]'),
            "the new logger level row",
        )
        assert level.find_element(By.CSS_SELECTOR, "td.level").text == "DEBUG"

        # The rest of the page: chains, masked config, charts with points.
        assert "reactive-consumer" in browser.find_element(By.ID, "routes-table").text
        config_text = browser.find_element(By.ID, "config-json").text
        assert kafka_bootstrap in config_text
        assert "console-test-secret" not in config_text
        assert '"backend_token": "****"' in config_text
        eventually(lambda: int(browser.find_element(By.ID, "chart-lag").get_attribute("data-points") or 0) > 3,
                   "lag chart points")  # fmt: skip

        # The sidecar's own samples (every 5 s) catch up with what the page showed.
        def newest_sample() -> Any:
            return httpx.get(sidecar.base_url + "/admin/console/history").json()["samples"][-1]["consumers"]["orders"]

        eventually(lambda: newest_sample() == {"lag": 0, "delivered": 16}, "a history sample with every delivery")
        check_screenshot(browser, sidecar, tmp_path)


def check_screenshot(browser: webdriver.Chrome, sidecar: SidecarProcess, tmp_path: Path) -> None:
    browser.execute_script("window.scrollTo(0, 0)")
    shot = tmp_path / "console.png"
    assert browser.save_screenshot(str(shot))
    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert image.width >= 1000
        assert image.height >= 800
    assert colours is None or len(colours) > 20, f"the page rendered {len(colours or [])} colour(s) only"
    wanted = os.environ.get(SCREENSHOT_ENV)
    if wanted:
        Path(wanted).write_bytes(shot.read_bytes())


PROCESSOR_CONFIG = """\
server: {{host: 127.0.0.1, port: "${{SIDECAR_PORT}}"}}
kafka: {{bootstrap_servers: "{bootstrap}"}}
handlers:
  sleeper:
    use: stream-processor
    config:
      application_id: {app}
      runtime: command
      command: ["{python}", -c, "print('<i id=from-log>sleeper up</i>', flush=True); import time; time.sleep(600)"]
      expose: false
      state_dir: "{state}"
      input_topics: [{topic}]
consumers:
  sleeper: {{exec: [sleeper]}}
"""


def test_console_shows_a_stream_processor_and_stops_it(
    browser: webdriver.Chrome, kafka_bootstrap: str, tmp_path: Path, topic_factory: Any
) -> None:
    app = f"console-sleeper-{uuid.uuid4().hex[:8]}"
    state = tmp_path / "sleeper-state"
    config = PROCESSOR_CONFIG.format(
        bootstrap=kafka_bootstrap,
        app=app,
        python=sys.executable,
        state=state,
        topic=topic_factory(partitions=1, prefix="console-sleeper"),
    )
    with sidecar_process(config, tmp_path) as sidecar:
        browser.get(sidecar.base_url + "/admin/ui")
        row_css = '#processors-table tr[data-name="sleeper"]'

        def page_says() -> str:
            return browser.find_element(By.ID, "error").text + " | " + browser.find_element(By.ID, "processors").text

        row = eventually(lambda: browser.find_element(By.CSS_SELECTOR, row_css + '[data-state="running"]'),
                         "the processor row in state running", page_error=page_says)  # fmt: skip
        pid = int(row.find_element(By.CSS_SELECTOR, "td.pid").text)
        status = httpx.get(f"{sidecar.base_url}/admin/processors/sleeper").json()
        assert status["state"] == "running"
        assert status["pid"] == pid
        assert row.find_element(By.CSS_SELECTOR, "td.state").text == "running"
        assert row.find_element(By.CSS_SELECTOR, "td").text == "sleeper"
        eventually(lambda: "sleeper up" in browser.find_element(By.CSS_SELECTOR, row_css + " td.lines").text,
                   "the processor's last line", page_error=page_says)  # fmt: skip
        assert browser.find_elements(By.ID, "from-log") == []  # a log line is shown as text, not HTML
        assert "<i id=from-log>" in browser.find_element(By.CSS_SELECTOR, row_css + " td.lines").text
        assert browser.find_element(By.CSS_SELECTOR, "#ksqldb-table tbody").text == "none configured"

        click_in_table(browser, row_css + " button.reset")  # refused while running
        eventually(lambda: "stop it before a reset" in browser.find_element(By.ID, "error").text,
                   "the reset refused while running", page_error=page_says)  # fmt: skip

        click_in_table(browser, row_css + " button.stop")
        eventually(lambda: browser.find_element(By.CSS_SELECTOR, row_css + '[data-state="stopped"]'),
                   "the processor row in state stopped", page_error=page_says)  # fmt: skip
        assert httpx.get(f"{sidecar.base_url}/admin/processors/sleeper").json()["state"] == "stopped"
        eventually(lambda: not _alive(pid), f"process {pid} gone after stop")
        assert browser.find_element(By.CSS_SELECTOR, row_css + " td.pid").text == "\N{EN DASH}"  # none

        state.mkdir(parents=True, exist_ok=True)
        (state / "store.sst").write_bytes(b"local state")
        click_in_table(browser, row_css + " button.reset")
        eventually(lambda: not state.exists(), "the local state removed by Reset", page_error=page_says)
        assert not browser.find_element(By.ID, "error").is_displayed()

        click_in_table(browser, row_css + " button.start")
        again = eventually(lambda: browser.find_element(By.CSS_SELECTOR, row_css + '[data-state="running"]'),
                           "the processor row running again", page_error=page_says)  # fmt: skip
        assert int(again.find_element(By.CSS_SELECTOR, "td.pid").text) != pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # a zombie has exited


@pytest.fixture
def ksqldb_url(kafka_bootstrap: str) -> Iterator[str]:
    """The ksqlDB test server (protocol-faithful, not ksqlDB) in its own process, on the real broker."""
    port = free_port()
    module = "kafka_sidecar_testing.ksqldb"
    server = subprocess.Popen([sys.executable, "-m", module, "--bootstrap", kafka_bootstrap, "--port", str(port)])
    try:
        wait_listening(port, 20)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


def ksqldb_config(bootstrap: str, ksqldb: str, backend: str, topic: str) -> str:
    stream = f"VIEWS_{uuid.uuid4().hex[:8]}".upper()
    consumer = {
        "server": ksqldb,
        "mode": "push",
        "reconnect_initial_ms": 50,
        "reconnect_max_ms": 300,
        "statements": [
            f"CREATE STREAM IF NOT EXISTS {stream} (ID STRING KEY, N INT) "
            f"WITH (KAFKA_TOPIC='{topic}', VALUE_FORMAT='JSON', PARTITIONS=1);"
        ],
        "query": f"SELECT ID, N FROM {stream} EMIT CHANGES;",
        "delivery": {"group": f"console-ksql-{uuid.uuid4().hex[:8]}", "backend_url": backend,
                     "backend_path": "/rows", "batch_max_wait_ms": 5},
    }  # fmt: skip
    return (
        f'server: {{host: 127.0.0.1, port: "${{SIDECAR_PORT}}"}}\n'
        f'kafka: {{bootstrap_servers: "{bootstrap}"}}\n'
        f"handlers:\n  views:\n    use: ksqldb-consumer\n    config: {json.dumps(consumer)}\n"
        "consumers:\n  views: {exec: [views]}\n"
    )


def test_console_shows_a_ksqldb_consumer_and_pauses_and_resumes_it(
    browser: webdriver.Chrome, backend: Backend, ksqldb_url: str, topic_factory: Any, kafka_bootstrap: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    topic = topic_factory(partitions=1, prefix="console-ksql")
    config = ksqldb_config(kafka_bootstrap, ksqldb_url, backend.url, topic)
    with sidecar_process(config, tmp_path) as sidecar:
        browser.get(sidecar.base_url + "/admin/ui")
        row_css = '#ksqldb-table tr[data-name="views"]'

        def page_says() -> str:
            return browser.find_element(By.ID, "error").text + " | " + browser.find_element(By.ID, "ksqldb").text

        def shown(column: str) -> str:
            return browser.find_element(By.CSS_SELECTOR, f"{row_css} td.{column}").text

        eventually(lambda: browser.find_element(By.CSS_SELECTOR, row_css + '[data-state="streaming"]'),
                   "the ksqlDB row streaming", page_error=page_says)  # fmt: skip
        assert shown("query-id") not in ("", "\N{EN DASH}")
        produce(kafka_bootstrap, topic, [{"n": n} for n in range(3)])
        eventually(lambda: shown("delivered") == "3", "3 rows delivered shown", page_error=page_says)
        assert shown("received") == "3"
        assert len(backend.received) == 3
        assert shown("gap") == "no"

        click_in_table(browser, row_css + " button.pause")
        eventually(lambda: browser.find_element(By.CSS_SELECTOR, row_css + '[data-paused="true"]'), "paused shown",
                   page_error=page_says)  # fmt: skip
        assert shown("state") == "paused"
        assert httpx.get(f"{sidecar.base_url}/admin/ksqldb/views").json()["paused"] is True

        click_in_table(browser, row_css + " button.resume")
        eventually(lambda: browser.find_element(By.CSS_SELECTOR, row_css + '[data-paused="false"]'), "resumed shown",
                   page_error=page_says)  # fmt: skip
        produce(kafka_bootstrap, topic, [{"n": n} for n in range(3, 5)])
        eventually(lambda: shown("delivered") == "5", "5 rows delivered shown after resume", page_error=page_says)
        assert len(backend.received) == 5

        assert httpx.get(f"{sidecar.base_url}/admin/ksqldb/views").json()["restarts"] == 0
        click_in_table(browser, row_css + " button.restart")
        eventually(lambda: httpx.get(f"{sidecar.base_url}/admin/ksqldb/views").json()["restarts"] == 1,
                   "the restart done", page_error=page_says)  # fmt: skip
        eventually(lambda: browser.find_element(By.CSS_SELECTOR, row_css + '[data-state="streaming"]'),
                   "the ksqlDB row streaming after restart", page_error=page_says)  # fmt: skip

        before = len(backend.received)
        click_in_table(browser, row_css + " button.from-start")
        eventually(lambda: len(backend.received) >= before + 5, "the 5 rows delivered again from the start",
                   page_error=page_says)  # fmt: skip
        assert httpx.get(f"{sidecar.base_url}/admin/ksqldb/views").json()["restarts"] == 2


TOKEN_CONFIG = """\
server: {{host: 127.0.0.1, port: "${{SIDECAR_PORT}}", admin_token: "${{CONSOLE_ADMIN_TOKEN}}"}}
kafka: {{bootstrap_servers: "{bootstrap}"}}
paths:
  - {{path: "/producers/{{topic}}", method: POST, exec: [producer]}}
"""


def test_console_asks_for_the_admin_token_and_then_loads(
    browser: webdriver.Chrome, kafka_bootstrap: str, tmp_path: Path, secret_watch: SecretWatch
) -> None:
    token = f"console-admin-{uuid.uuid4().hex}"
    secret_watch.add(token)
    config = TOKEN_CONFIG.format(bootstrap=kafka_bootstrap)
    with sidecar_process(config, tmp_path, env={"CONSOLE_ADMIN_TOKEN": token}) as sidecar:
        # The data routes need the token; the page (no data) opens without it.
        assert httpx.get(f"{sidecar.base_url}/admin/console/producer").status_code == 401
        browser.get(sidecar.base_url + "/admin/ui")  # a new port: a new origin, an empty session storage

        def error_text() -> str:
            return browser.find_element(By.ID, "error").text

        eventually(lambda: "needs the admin token" in error_text(), "the page asking for the admin token")
        field = browser.find_element(By.ID, "token")
        assert "needed" in (field.get_attribute("class") or "")
        assert browser.find_element(By.CSS_SELECTOR, "#chains").text.count("/producers/") == 0

        field.send_keys("not-the-token-" + uuid.uuid4().hex)
        browser.execute_script("document.getElementById('token').dispatchEvent(new Event('change'))")
        eventually(lambda: "refused this admin token" in error_text(), "the page refusing a wrong token")

        field.clear()
        field.send_keys(token)
        browser.execute_script("document.getElementById('token').dispatchEvent(new Event('change'))")
        eventually(lambda: "/producers/" in browser.find_element(By.CSS_SELECTOR, "#chains").text,
                   "the chains table filled with the token", page_error=error_text)  # fmt: skip
        eventually(lambda: not browser.find_element(By.ID, "error").is_displayed(), "the token prompt cleared",
                   page_error=error_text)  # fmt: skip
        assert "needed" not in (field.get_attribute("class") or "")
        assert browser.execute_script("return window.sessionStorage.getItem('kafka-sidecar-admin-token')") == token
