"""The Python, Node.js and Go examples against a real sidecar (the shipped chains.yml) and broker.

Each language's backend receives the reactive consumer's batches and answers per-record statuses;
each language's client produces over HTTP and runs the active-consumer loop. With the shipped
config's defaults, a record comes back from both consumers with the key, value and headers it was
produced with (the defaults round-trip).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_reactive_support import read_all

from kafka_sidecar_testing.net import free_port
from kafka_sidecar_testing.process import sidecar_process

pytestmark = pytest.mark.kafka
ROOT = Path(__file__).parents[2]
SENT: list[dict[str, Any]] = [
    {"key": "o1", "value": {"item": "book", "qty": 1, "note": "ünïcode ✓"}, "headers": {"source": "web"}},
    {"key": {"customer": 7}, "value": [1, 2.5, None, "x"], "headers": {"source": "app", "trace": "t-1"}},
]
FAILING = {"key": "o3", "value": {"item": "pen", "fail": True}, "headers": {"source": "web"}}


@dataclass(frozen=True)
class Language:
    name: str
    command: list[str]
    """The service command line, before the subcommand's own arguments."""
    answers_statuses: bool = True


def build(name: str, tmp_path: Path) -> Language:
    if name == "python":
        return Language(name, [sys.executable, str(ROOT / "examples/backend/backend.py")], answers_statuses=False)
    tool = "node" if name == "node" else "go"
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not on PATH; the {name} example needs it", pytrace=False)
    if name == "node":
        script = ROOT / "examples/node/service.mjs"
        subprocess.run(["node", "--check", str(script)], check=True)
        return Language(name, ["node", str(script)])
    binary = tmp_path / "go-service"
    subprocess.run(
        ["go", "build", "-o", str(binary), "."], cwd=ROOT / "examples/go", check=True, env=_go_env(), timeout=300
    )
    return Language(name, [str(binary)])


def _go_env() -> dict[str, str]:
    return {**os.environ, "GOTOOLCHAIN": "local"}  # the installed Go; nothing is downloaded


@pytest.fixture
def backend_of(tmp_path: Path) -> Iterator[Callable[[Language], str]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(language: Language) -> str:
        port = free_port()
        log = (tmp_path / f"{language.name}-backend.log").open("wb")
        args = ["--port", str(port)] if language.name == "python" else ["backend", "--port", str(port)]
        started.append(subprocess.Popen([*language.command, *args], stdout=log, stderr=subprocess.STDOUT))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert started[-1].poll() is None, (tmp_path / f"{language.name}-backend.log").read_text()
            try:
                if httpx.get(url + "/health").status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the backend did not start"
            time.sleep(0.1)  # polling a condition with a deadline

    yield start
    for process in started:
        process.terminate()
        process.wait(10)


def client(language: Language, *args: str) -> list[Any]:
    """Run the language's client subcommand; its stdout is one JSON document per line."""
    done = subprocess.run([*language.command, *args], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def python_client(sidecar: str, topic: str, group: str, count: int) -> tuple[Any, list[Any]]:
    """What a Python service does with httpx: produce, then the active-consumer loop."""
    produced = httpx.post(f"{sidecar}/producers/{topic}", json={"records": SENT}).json()
    v2 = {"content-type": "application/vnd.kafka.v2+json"}
    create = {"name": "py", "format": "json", "auto.offset.reset": "earliest"}
    base = httpx.post(f"{sidecar}/consumers/{group}", json=create, headers=v2).json()["base_uri"]
    httpx.post(f"{base}/subscription", json={"topics": [topic]}, headers=v2).raise_for_status()
    records: list[Any] = []
    deadline = time.monotonic() + 30
    while len(records) < count and time.monotonic() < deadline:
        records += httpx.get(
            f"{base}/records?timeout=1000", headers={"accept": "application/vnd.kafka.json.v2+json"}
        ).json()
    httpx.post(f"{base}/offsets", headers=v2).raise_for_status()
    httpx.delete(base, headers=v2).raise_for_status()
    return produced, records


def _dead_letters(bootstrap: str, topic: str) -> list[Any]:
    return asyncio.run(read_all(bootstrap, topic, 1, timeout=30))


def assert_round_trip(received: list[dict[str, Any]]) -> None:
    """Key, value and the sent headers come back unchanged; the sidecar adds only its id headers."""
    assert [(r["key"], r["value"]) for r in received] == [(s["key"], s["value"]) for s in SENT]
    for record, sent in zip(received, SENT, strict=True):
        assert {k: record["headers"][k] for k in sent["headers"]} == sent["headers"]
        assert set(record["headers"]) - set(sent["headers"]) <= {"X-Correlation-Id", "X-Traceability-Id"}


@pytest.mark.timeout(300)  # a cold Go build cache compiles the standard library first (about a minute)
@pytest.mark.parametrize("name", ["python", "node", "go"])
def test_language_example_round_trips_through_both_consumers(
    name: str, tmp_path: Path, kafka_bootstrap: str, topic_factory: Any, backend_of: Callable[[Language], str]
) -> None:
    language = build(name, tmp_path)
    topic = topic_factory(partitions=1, prefix=f"lang-{name}")
    backend = backend_of(language)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "BACKEND_URL": backend, "DEMO_CONSUMER_ENABLED": "true",
        "DEMO_TOPIC": topic, "DEMO_CONSUMER_GROUP": f"reactive-{uuid.uuid4().hex[:8]}",
    }  # fmt: skip
    shipped = (ROOT / "chains.yml").read_text(encoding="utf-8")
    group = f"active-{uuid.uuid4().hex[:8]}"
    with sidecar_process(shipped, tmp_path / "sidecar", env=env) as sidecar:
        if name == "python":
            produced, consumed = python_client(sidecar.base_url, topic, group, len(SENT))
        else:
            sent = [json.dumps(r) for r in SENT]
            [produced] = client(language, "produce", "--sidecar", sidecar.base_url, "--topic", topic, *sent)
            consumed = client(language, "consume", "--sidecar", sidecar.base_url, "--topic", topic, "--group", group,
                              "--count", str(len(SENT)))  # fmt: skip
        assert [o["offset"] for o in produced["offsets"]] == [0, 1]
        assert_round_trip(consumed)

        deadline = time.monotonic() + 30
        while len(delivered := httpx.get(backend + "/records").json()["records"]) < len(SENT):
            assert time.monotonic() < deadline, f"the reactive consumer delivered {delivered}"
            time.sleep(0.1)  # polling a condition with a deadline
        assert_round_trip(delivered)
        assert {r["consumer"] for r in delivered} == {"demo"}

        if language.answers_statuses:
            httpx.post(f"{sidecar.base_url}/producers/{topic}", json={"records": [FAILING]}).raise_for_status()
            [letter] = _dead_letters(kafka_bootstrap, topic + ".dlq")
            assert json.loads(letter.key) == FAILING["key"]
            assert dict(letter.headers)["x-dlq-error"] == b"the order asked to fail"
            logged = [line for line in sidecar.log().splitlines() if "dead-lettered" in line]
            assert len(logged) == 1, sidecar.log()
            assert f"consumer demo: dead-lettered {topic}-0@2 -> {topic}.dlq-0@0 after 1 attempt(s)" in logged[0]
            assert "after 1 attempt(s): the order asked to fail" in logged[0]
