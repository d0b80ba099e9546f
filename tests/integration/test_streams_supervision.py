"""Supervision of a ``command`` processor: crash loop and restart budget, readiness, properties file, stop."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from streams_support import EXAMPLE_APP, metric, produce_keyed, status, wait_status

from kafka_sidecar._events import AdminAction
from kafka_sidecar.testing import running_sidecar
from kafka_sidecar_testing.net import free_port

pytestmark = [pytest.mark.kafka]

CRASH = "import sys; print('loading topology'); print('boom: no such topic', file=sys.stderr); sys.exit(3)"
# Prints what it was given, then waits for SIGTERM (the default action ends it).
SHOW = (
    "import os, stat, sys, time; p = os.environ['KAFKA_SIDECAR_PROPERTIES'];"
    "print('mode', oct(stat.S_IMODE(os.stat(p).st_mode)), 'arg', sys.argv[1] == p, flush=True);"
    "print('props', sorted(l.split('=')[0] for l in open(p)), flush=True); print('path', p, flush=True);"
    "time.sleep(600)"
)


def chains(bootstrap: str, name: str, command: list[str], *, metrics: bool = False, **extra: str) -> str:
    args = ", ".join(f"'{a}'" if "'" not in a else f'"{a}"' for a in command)
    more = "".join(f"\n      {key}: {value}" for key, value in extra.items())
    return f"""
kafka: {{bootstrap_servers: "{bootstrap}"}}
handlers:
  {name}:
    use: stream-processor
    config:
      application_id: {name}-app
      runtime: command
      command: [{args}]
      expose: false{more}
  metrics: {{use: metrics}}
consumers:
  {name}: {{exec: [{"metrics, " if metrics else ""}{name}]}}
"""


@pytest.mark.asyncio
async def test_a_crash_looping_processor_spends_its_budget_then_fails_and_readiness_says_so(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    yaml = chains(
        kafka_bootstrap, "looping", [sys.executable, "-c", CRASH], metrics=True,
        restart="{initial_backoff_ms: 50, max_backoff_ms: 200, max_restarts: 3}",
    )  # fmt: skip
    async with running_sidecar(yaml, tmp_path) as running:
        client = running.client
        failed = await wait_status(client, "looping", lambda s: s["state"] == "failed", 30, "failed")
        assert failed["restarts"] == 3
        assert failed["last_exit"]["code"] == 3
        assert failed["last_exit"]["error"] == "boom: no such topic"
        assert "3 restarts within 3600s" in failed["last_error"]
        assert [line["text"] for line in failed["last_lines"]].count("loading topology") == 4
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert "stream processor 'looping' is failed" in ready.json()["detail"]
        assert not running.sidecar.instances["looping"].supervisor.active  # type: ignore[attr-defined]

        metrics = (await client.get("/metrics")).text
        assert metric(metrics, "kafka_sidecar_processor_restarts_total", processor="looping") == 3
        assert metric(metrics, "kafka_sidecar_processor_up", processor="looping") == 0

        events: list[AdminAction] = []
        running.sidecar.resources.events.subscribe(AdminAction, events.append)
        started = await client.post("/admin/processors/looping/start")  # an operator's start: a fresh budget
        assert started.status_code == 200
        again = await wait_status(client, "looping", lambda s: s["state"] == "failed" and s["restarts"] == 6, 30, "")
        assert again["last_exit"]["code"] == 3
        actions = [e.action for e in events if e.target == "stream-processor/looping"]
        assert actions[0] == "stream-processor.start"
        assert actions.count("stream-processor.backoff") == 3
        assert actions[-1] == "stream-processor.failed"


@pytest.mark.asyncio
async def test_command_gets_a_private_properties_file_removed_when_it_stops(
    kafka_bootstrap: str, tmp_path: Path, caplog: Any
) -> None:
    yaml = chains(kafka_bootstrap, "show", [sys.executable, "-c", SHOW, "{properties}"], ready_after_ms="100")
    async with running_sidecar(yaml, tmp_path) as running:
        client = running.client
        seen = await wait_status(client, "show", lambda s: len(s["last_lines"]) >= 3, 30, "the child's output")
        assert seen["last_lines"][0]["text"] == "mode 0o600 arg True"
        keys = seen["last_lines"][1]["text"]
        assert "'bootstrap.servers'" in keys
        assert "'application.id'" in keys
        assert "'processing.guarantee'" in keys
        path = Path(seen["last_lines"][2]["text"].removeprefix("path "))
        assert await asyncio.to_thread(path.is_file)
        paths = (await client.get("/openapi.json")).json()["paths"]
        summaries = {(p, m): op["summary"] for p, ops in paths.items() if "processors" in p for m, op in ops.items()}
        assert summaries[("/admin/processors/{name}/reset", "post")].startswith("Reset a stopped processor")
        assert len(summaries) == 6, summaries
        stopped = await client.post("/admin/processors/show/stop")
        assert stopped.json()["state"] == "stopped"
        after = await status(client, "show")
        assert after["last_exit"]["signal"] == "SIGTERM"
        assert after["pid"] is None
        assert not await asyncio.to_thread(path.parent.exists), "the properties file and its folder are removed at stop"
    tagged = [r for r in caplog.records if r.name == "kafka_sidecar.streams.show"]
    assert any(r.getMessage() == "[show] mode 0o600 arg True" and r.processor == "show" for r in tagged)


@pytest.mark.asyncio
async def test_a_python_processor_without_quixstreams_fails_with_a_clear_error(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The sidecar's own venv has no quixstreams (it lives in .venv-streams): the runner says what to do."""
    yaml = f"""
kafka: {{bootstrap_servers: "{kafka_bootstrap}"}}
handlers:
  noquix:
    use: stream-processor
    config:
      application_id: noquix
      app: "{EXAMPLE_APP}:build"
      python: "{sys.executable}"
      expose: false
      restart: {{max_restarts: 0}}
consumers:
  noquix: {{exec: [noquix]}}
"""
    async with running_sidecar(yaml, tmp_path) as running:
        failed = await wait_status(running.client, "noquix", lambda s: s["state"] == "failed", 30, "failed")
    assert failed["last_exit"]["code"] == 1
    assert "quixstreams is not installed for" in failed["last_exit"]["error"]
    assert "point the processor's 'python:' at a venv that has it" in failed["last_exit"]["error"]


def test_processors_die_with_a_sigkilled_sidecar(kafka_bootstrap: str, tmp_path: Path) -> None:
    port = free_port()
    pid_file = tmp_path / "child.pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    config = tmp_path / "chains.yml"
    config.write_text(
        f"server: {{port: {port}}}\n" + chains(kafka_bootstrap, "orphan", [sys.executable, "-c", code]),
        encoding="utf-8",
    )
    sidecar = subprocess.Popen(
        [sys.executable, "-m", "kafka_sidecar", "run", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (pid_file.is_file() and pid_file.read_text()):
            assert sidecar.poll() is None, "the sidecar exited"
            assert time.monotonic() < deadline, "the processor never started"
            time.sleep(0.05)
        child = int(pid_file.read_text())
        os.kill(sidecar.pid, signal.SIGKILL)
        sidecar.wait(timeout=10)
        while _alive(child):
            assert time.monotonic() < deadline + 10, "the processor outlived the SIGKILLed sidecar"
            time.sleep(0.05)
    finally:
        if sidecar.poll() is None:
            sidecar.kill()
            sidecar.wait(timeout=10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.asyncio
async def test_reset_to_a_timestamp_commits_the_first_offset_at_it_and_checks_its_input(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create(partitions=1, prefix="reset-in")
    base = int(time.time() * 1000) - 60_000
    await produce_keyed(kafka_bootstrap, topic, [("k", {"n": n}, base + n * 1000) for n in range(5)])
    state_dir = tmp_path / "state"
    yaml = chains(
        kafka_bootstrap, "resettable", [sys.executable, "-c", "import time; time.sleep(600)"],
        input_topics=f"[{topic}]", state_dir=f'"{state_dir}"', ready_after_ms="100",
    )  # fmt: skip
    async with running_sidecar(yaml, tmp_path) as running:
        client = running.client
        await asyncio.to_thread(state_dir.mkdir)
        refused = await client.post("/admin/processors/resettable/reset", json={"timestamp": base})
        assert refused.status_code == 409
        await client.post("/admin/processors/resettable/stop")
        bad = await client.post("/admin/processors/resettable/reset", json={"timestamp": "yesterday"})
        assert bad.status_code == 422
        assert bad.json()["field"] == "timestamp"
        unknown = await client.post("/admin/processors/resettable/reset", json={"offset": 3})
        assert unknown.status_code == 422
        assert unknown.json()["field"] == "offset"
        reset = await client.post("/admin/processors/resettable/reset", json={"timestamp": base + 2500})
        assert reset.status_code == 200, reset.text
        assert reset.json()["partitions"] == [{"topic": topic, "partition": 0, "offset": 3}]
        assert not await asyncio.to_thread(state_dir.exists)
        lag = (await status(client, "resettable"))["lag"]
        assert lag == [{"topic": topic, "partition": 0, "committed": 3, "end_offset": 5, "lag": 2}]
        first_pid = (await status(client, "resettable"))["pid"]
        assert first_pid is None
        await client.post("/admin/processors/resettable/restart")
        again = await wait_status(client, "resettable", lambda s: s["state"] == "running", 10, "running again")
        restarted = await client.post("/admin/processors/resettable/restart")
        assert restarted.status_code == 200
        third = await wait_status(client, "resettable", lambda s: s["state"] == "running", 10, "restarted")
        assert third["pid"] != again["pid"]
        assert third["restarts"] == 0, "an operator's restart is not a crash"
