"""The reactive consumer's start-up checks and life without a broker (no broker needed)."""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from kafka_sidecar._errors import ConfigError
from kafka_sidecar._sidecar import Sidecar
from kafka_sidecar.testing import running_sidecar

BASE = "/admin/consumers/reactive/orders"


def _yaml(**config: Any) -> str:
    values = {"topics": ["orders"], "group": "g", "backend_url": "http://127.0.0.1:9", **config}
    return textwrap.dedent(
        f"""\
        kafka:
          bootstrap_servers: ${{KAFKA_BOOTSTRAP_SERVERS}}
        handlers:
          orders-in:
            use: reactive-consumer
            config: {json.dumps(values)}
        consumers:
          orders:
            exec: [orders-in]
        """
    )


def test_unknown_format_fails_at_plan_time_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "chains.yml"
    path.write_text(_yaml(value_format="nope"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Sidecar.from_file(path, env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    (problem,) = caught.value.problems
    assert (problem.line, problem.path) == (6, "handlers.orders-in.config.value_format")
    assert "no record format 'nope'" in problem.message


def test_config_errors_name_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "chains.yml"
    path.write_text(_yaml(topic_pattern="o.*", retry={"max_attempts": 0}), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Sidecar.from_file(path, env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    text = str(caught.value)
    assert "chains.yml" in text
    assert "max_attempts must be at least 1" in text


@pytest.mark.asyncio
async def test_runs_and_stops_cleanly_while_kafka_is_down(tmp_path: Path) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    async with running_sidecar(_yaml(), tmp_path, env=env, wait_for_kafka=0) as rs:
        deadline = time.monotonic() + 20
        while True:
            status = (await rs.client.get(BASE)).json()
            if status["last_error"]:
                break
            assert time.monotonic() < deadline, status
            await asyncio.sleep(0.05)
        assert status["state"] == "connecting"
        assert "cannot connect" in status["last_error"]
        assert status["partitions"] == []
        paused = await rs.client.post(f"{BASE}/pause")
        assert paused.status_code == 409
        assert paused.json()["code"] == "conflict"
        listing = await rs.client.get("/admin/consumers/reactive")
        assert [c["name"] for c in listing.json()["consumers"]] == ["orders"]
        stopping = asyncio.create_task(rs.sidecar.consumers[0].source.stop())
        await asyncio.wait_for(stopping, 10)
        assert (await rs.client.get(BASE)).json()["state"] == "stopped"
