"""The locked-down HTTP side: admin token and port, request limits, masked config. No broker needed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from kafka_sidecar._exchange import Exchange, Reply
from kafka_sidecar._hookspecs import hookimpl
from kafka_sidecar._registry import HandlerSpec
from kafka_sidecar.testing import RunningSidecar, running_sidecar
from kafka_sidecar_testing.leak_scan import SecretWatch

ADMIN_TOKEN = "admin-token-6f1e0c7d9b2a4e51"
SASL_SECRET = "sasl-secret-b8c4a1d2e3f4"


@pytest.fixture(autouse=True)
def _watch_secrets(secret_watch: SecretWatch) -> None:
    """Registers the admin token and SASL password for the whole-run leak check (tests/zz_final)."""
    secret_watch.add(ADMIN_TOKEN)
    secret_watch.add(SASL_SECRET)


BASE = """\
server:
{server}
kafka:
  bootstrap_servers: 127.0.0.1:1
  connect_timeout_ms: 200
  security:
    protocol: SASL_SSL
    sasl_mechanism: SCRAM-SHA-256
    sasl_username: svc
    sasl_password: ${{TEST_SASL_SECRET}}
handlers:
  producer: {{use: producer}}
  gate: {{use: gate}}
paths:
  - {{path: "/producers/{{topic}}", method: POST, exec: [producer]}}
  - {{path: "/slow", method: GET, exec: [gate]}}
"""


class Gate:
    """A terminal that holds every request until released: makes concurrency observable."""

    def __init__(self) -> None:
        self.entered = 0
        self.changed = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, exchange: Exchange) -> Reply:
        self.entered += 1
        self.changed.set()
        await self.release.wait()
        return Reply(200, {"ok": True})

    @hookimpl
    def kafka_sidecar_register_handlers(self, register: Callable[[HandlerSpec[object]], None]) -> None:
        register(HandlerSpec("gate", factory=lambda config, resources: self, kind="terminal"))


def config(**server: object) -> str:
    lines = "\n".join(f"  {key}: {value}" for key, value in server.items()) or "  port: 0"
    return BASE.format(server=lines)


ENV = {"TEST_SASL_SECRET": SASL_SECRET}


def sidecar(
    yaml: str,
    tmp_path: Path,
    *,
    gate: Gate | None = None,
    env: dict[str, str] | None = None,
    client_host: str = "127.0.0.1",
) -> AbstractAsyncContextManager[RunningSidecar]:
    plugins = [(gate or Gate(), "gate")]
    return running_sidecar(
        yaml, tmp_path, env=env or ENV, wait_for_kafka=0, extra_plugins=plugins, client_host=client_host
    )


@pytest.mark.asyncio
async def test_admin_token_required_when_configured(tmp_path: Path) -> None:
    yaml = config(admin_token="${TEST_ADMIN_TOKEN}")
    env = {**ENV, "TEST_ADMIN_TOKEN": ADMIN_TOKEN}
    async with sidecar(yaml, tmp_path, env=env) as rs:
        missing = await rs.client.get("/admin/config")
        assert missing.status_code == 401
        assert missing.json()["field"] == "authorization"
        wrong = await rs.client.get("/admin/config", headers={"Authorization": "Bearer " + ADMIN_TOKEN[:-1] + "x"})
        assert wrong.status_code == 403
        basic = await rs.client.get("/admin/config", headers={"Authorization": "Basic " + ADMIN_TOKEN})
        assert basic.status_code == 401
        ok = await rs.client.get("/admin/config", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert ok.status_code == 200
        body = ok.text
    assert ADMIN_TOKEN not in body
    assert SASL_SECRET not in body
    shown = ok.json()
    assert shown["server"]["admin_token"] == "****"
    assert shown["kafka"]["security"]["sasl_password"] == "****"
    assert shown["kafka"]["security"]["sasl_username"] == "svc"


@pytest.mark.asyncio
async def test_admin_token_from_file_lets_remote_callers_in(tmp_path: Path) -> None:
    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN_TOKEN + "\n", encoding="utf-8")
    yaml = config(admin_token_file=str(token_file))
    async with sidecar(yaml, tmp_path, client_host="10.1.2.3") as rs:
        ok = await rs.client.get("/admin/chains", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert ok.status_code == 200
        token_file.write_text("", encoding="utf-8")  # an empty/unreadable file locks, never opens
        locked = await rs.client.get("/admin/chains", headers={"Authorization": "Bearer "})
        assert locked.status_code == 401
        assert (
            await rs.client.get("/admin/chains", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        ).status_code == 403


@pytest.mark.asyncio
async def test_console_page_opens_without_the_token_but_its_data_does_not(tmp_path: Path) -> None:
    """A browser cannot send a bearer token when it navigates: the page (no data) needs none, the JSON does."""
    yaml = config(admin_token="${TEST_ADMIN_TOKEN}")
    env = {**ENV, "TEST_ADMIN_TOKEN": ADMIN_TOKEN}
    async with sidecar(yaml, tmp_path, env=env, client_host="10.1.2.3") as rs:
        page = await rs.client.get("/admin/ui")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert (await rs.client.get("/admin/ui/console.js")).status_code == 200
        assert (await rs.client.get("/admin/console/producer")).status_code == 401
        assert (await rs.client.get("/admin/chains")).status_code == 401
        with_token = await rs.client.get("/admin/console/producer", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert with_token.status_code == 200
    async with sidecar(config(), tmp_path, client_host="10.1.2.3") as rs:  # no token: loopback only, page too
        assert (await rs.client.get("/admin/ui")).status_code == 403
    async with sidecar(
        config(port=18442, admin_port=18443, admin_token="${TEST_ADMIN_TOKEN}"), tmp_path, env=env
    ) as rs:
        assert (await rs.client.get("http://sidecar:18442/admin/ui")).status_code == 404
        assert (await rs.client.get("http://sidecar:18443/admin/ui")).status_code == 200


@pytest.mark.asyncio
async def test_without_token_admin_is_loopback_only(tmp_path: Path) -> None:
    async with sidecar(config(), tmp_path, client_host="10.1.2.3") as rs:
        assert (await rs.client.get("/admin/chains")).status_code == 403


@pytest.mark.asyncio
async def test_admin_port_separates_admin_from_business_routes(tmp_path: Path) -> None:
    async with sidecar(config(port=18442, admin_port=18443), tmp_path) as rs:
        on_main = await rs.client.get("http://sidecar:18442/admin/chains")
        assert on_main.status_code == 404
        on_admin = await rs.client.get("http://sidecar:18443/admin/chains")
        assert on_admin.status_code == 200
        business_on_admin = await rs.client.post("http://sidecar:18443/producers/t", json={"records": [{"value": 1}]})
        assert business_on_admin.status_code == 404
        assert (await rs.client.get("http://sidecar:18443/health/live")).status_code == 200
        assert (await rs.client.get("http://sidecar:18442/health/live")).status_code == 200


@pytest.mark.asyncio
async def test_too_many_records_is_413(tmp_path: Path) -> None:
    async with sidecar(config(max_records_per_request=3), tmp_path) as rs:
        response = await rs.client.post("/producers/t", json={"records": [{"value": i} for i in range(4)]})
    assert response.status_code == 413
    assert response.json()["field"] == "records"
    assert "4 records" in response.json()["detail"]


@pytest.mark.asyncio
async def test_oversized_headers_are_413(tmp_path: Path) -> None:
    async with sidecar(config(max_header_bytes=1024), tmp_path) as rs:
        big = await rs.client.post("/producers/t", json={"records": [{"value": 1}]}, headers={"X-Big": "x" * 2000})
        small = await rs.client.get("/health/live", headers={"X-Small": "x" * 100})
    assert big.status_code == 413
    assert big.json()["field"] == "headers"
    assert small.status_code == 200


@pytest.mark.asyncio
async def test_concurrent_requests_over_the_limit_get_429(tmp_path: Path) -> None:
    gate = Gate()
    yaml = config(max_concurrent_requests=2)
    async with sidecar(yaml, tmp_path, gate=gate) as rs:
        held = [asyncio.create_task(rs.client.get("/slow")) for _ in range(2)]
        async with asyncio.timeout(10):
            while gate.entered < 2:
                gate.changed.clear()
                await gate.changed.wait()
        refused = await rs.client.get("/slow")
        health = await rs.client.get("/health/live")  # probes are never refused
        gate.release.set()
        done = await asyncio.gather(*held)
        after = await rs.client.get("/slow")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert health.status_code == 200
    assert [r.status_code for r in done] == [200, 200]
    assert after.status_code == 200


def test_bad_limits_are_config_errors(tmp_path: Path) -> None:
    from kafka_sidecar._errors import ConfigError
    from kafka_sidecar._sidecar import Sidecar

    path = tmp_path / "chains.yml"
    path.write_text(config(admin_port=8442, admin_token="short"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Sidecar.from_file(path, env=ENV)
    assert "admin_port" in str(caught.value)
