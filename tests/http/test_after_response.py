"""``Exchange.after_response``: jobs a handler leaves for after its HTTP response (the active consumer reads
the next reply ahead with it). Driven through the sidecar's own ASGI app, no broker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kafka_sidecar import Sidecar
from kafka_sidecar._http.app import create_app
from kafka_sidecar._http.endpoint import AFTER_RESPONSE_FAILURES
from kafka_sidecar.plugin import Exchange, HandlerSpec, Reply, hookimpl

YAML = """\
kafka: {bootstrap_servers: "127.0.0.1:1"}
handlers:
  answer: {use: answer-later}
paths:
  - {path: /work, method: POST, exec: [answer]}
"""


class AnswerLater:
    """A terminal answering at once and leaving three jobs; the second fails."""

    runs: list[str]
    sent: list[dict[str, Any]]

    def __init__(self, config: object, resources: object) -> None:
        pass

    async def __call__(self, exchange: Exchange) -> Reply:
        async def first() -> None:
            AnswerLater.runs.append(f"first, after {[m['type'] for m in AnswerLater.sent]}")

        async def failing() -> None:
            raise RuntimeError("a job went wrong")

        async def last() -> None:
            AnswerLater.runs.append("last")

        for job in (first, failing, last):
            exchange.after_response(job)
        return Reply(body={"answered": True})


class Plugin:
    @hookimpl
    def kafka_sidecar_register_handlers(self, register: Callable[[HandlerSpec[object]], None]) -> None:
        register(HandlerSpec(name="answer-later", factory=AnswerLater, kind="terminal"))


async def post(app: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    AnswerLater.sent, AnswerLater.runs = sent, []
    messages = [{"type": "http.request", "body": b"{}", "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/work", "raw_path": b"/work", "query_string": b"", "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8442),
    }  # fmt: skip
    await app(scope, receive, send)
    return sent


@pytest.mark.asyncio
async def test_jobs_run_in_order_once_the_whole_response_was_sent_and_a_failing_one_is_logged_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "chains.yml"
    path.write_text(YAML, encoding="utf-8")
    sidecar = Sidecar.from_file(path, extra_plugins=[(Plugin(), "after")])
    app = create_app(sidecar, manage_lifecycle=False)
    await sidecar.start()
    try:
        with caplog.at_level(logging.ERROR):
            sent = await post(app)
    finally:
        await sidecar.stop()
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b'{"answered":true}'
    assert AnswerLater.runs == ["first, after ['http.response.start', 'http.response.body']", "last"]
    assert "a job run after the response to /work failed" in caplog.text
    assert "a job went wrong" in caplog.text
    failures = sidecar.resources.metrics.registry.counter(AFTER_RESPONSE_FAILURES, "", ("route",))
    assert failures.value("/work") == 1, "a failing job is counted, not only logged"


def test_a_consumer_exchange_has_no_response_to_follow() -> None:
    async def job() -> None:
        raise AssertionError("never run")

    with pytest.raises(TypeError, match="consumer exchange"):
        Exchange("consumer", "orders").after_response(job)
