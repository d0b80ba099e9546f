"""The curl walkthroughs that open docs/active-consumer.md and docs/reactive-consumer.md, run as written.

Each block marked ``<!-- walkthrough ... -->`` is extracted and run by bash (``set -euo pipefail``) at the
repository root against a real broker; only the variables the block itself reads (ports, topic,
group) are set, so nothing clashes with other tests.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from kafka_sidecar_testing.net import free_port
from kafka_sidecar_testing.process import sidecar_process

pytestmark = pytest.mark.kafka
ROOT = Path(__file__).parents[2]
BLOCK = re.compile(r"<!-- walkthrough[^>]*-->\n```bash\n(.*?)```", re.DOTALL)


def walkthrough(doc: str) -> str:
    blocks: list[str] = BLOCK.findall((ROOT / "docs" / doc).read_text(encoding="utf-8"))
    assert len(blocks) == 1, f"docs/{doc} should have one walkthrough block"
    return blocks[0]


def run_bash(script: str, env: dict[str, str], timeout: float = 120) -> str:
    """Run ``script``; on a timeout the whole process group (its background jobs too) is killed."""
    process = subprocess.Popen(
        ["bash", "-c", "set -euo pipefail\n" + script],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        raise AssertionError(f"the walkthrough did not finish in {timeout}s:\n{out}\n{err}") from None
    assert process.returncode == 0, f"exit {process.returncode}\n{out}\n{err}"
    return out


def json_lines(out: str) -> list[Any]:
    found = []
    for line in out.splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


def test_the_active_consumer_walkthrough_runs_as_written(
    tmp_path: Path, kafka_bootstrap: str, topic_factory: Any
) -> None:
    topic = topic_factory(partitions=1, prefix="walk-active")
    shipped = (ROOT / "chains.yml").read_text(encoding="utf-8")
    with sidecar_process(shipped, tmp_path, env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}) as sidecar:
        env = {"SIDECAR": sidecar.base_url, "TOPIC": topic, "GROUP": f"walk-{uuid.uuid4().hex[:8]}"}
        out = run_bash(walkthrough("active-consumer.md"), env)
    documents = json_lines(out)
    [records] = [d for d in documents if isinstance(d, list) and d and "value" in d[0]]
    assert [(r["key"], r["value"], r["headers"]["source"]) for r in records] == [("o1", {"total": 42}, "web")]
    [committed] = [d for d in documents if isinstance(d, list) and d and "committed" in d[0]]
    assert committed == [{"topic": topic, "partition": 0, "consumed": 0, "committed": 1}]


def test_the_reactive_consumer_walkthrough_runs_as_written(kafka_bootstrap: str, topic_factory: Any) -> None:
    topic = topic_factory(partitions=1, prefix="walk-reactive")
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "SIDECAR_PORT": str(free_port()),
        "BACKEND_PORT": str(free_port()), "TOPIC": topic, "DEMO_CONSUMER_GROUP": f"walk-{uuid.uuid4().hex[:8]}",
    }  # fmt: skip
    out = run_bash(walkthrough("reactive-consumer.md"), env)
    documents = json_lines(out)
    [received] = [d["records"] for d in documents if isinstance(d, dict) and "records" in d]
    assert [(r["consumer"], r["key"], r["value"], r["headers"]["source"]) for r in received] == [
        ("demo", "o1", {"total": 42}, "web")
    ]
    [status] = [d for d in documents if isinstance(d, dict) and d.get("name") == "demo"]
    assert [(p["committed"], p["lag"]) for p in status["partitions"]] == [(1, 0)]
