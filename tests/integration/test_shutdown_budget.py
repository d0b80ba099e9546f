"""One shutdown budget: SIGTERM with a reactive consumer stuck on a hanging backend, while audit records are
queued for a broker that no longer answers, still exits within ``server.shutdown_timeout_s``; what could not
be written is counted and logged once."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import pytest
from starlette.responses import Response
from test_reactive_support import Backend, new_group, produce, serving, wait_for

from kafka_sidecar_testing.process import SidecarProcess
from kafka_sidecar_testing.pytest_plugin import TopicFactory

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

BUDGET_S = 4


async def test_sigterm_exits_within_the_budget_although_everything_hangs(
    tmp_path: Path, kafka_bootstrap: str, consumer_engine: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory.create()
    hang = asyncio.Event()

    async def never_answer(body: dict[str, object]) -> Response:
        await hang.wait()
        return Response(status_code=200)

    backend = Backend(reply=never_answer)
    consumer = {
        "topics": [topic], "group": new_group(), "backend_url": backend.url, "backend_path": "/deliver",
        "request_timeout_ms": 120000, "drain_timeout_ms": 120000, "session_timeout_ms": 6000,
    }  # fmt: skip
    config = (
        f"server:\n  port: ${{SIDECAR_PORT}}\n  shutdown_timeout_s: {BUDGET_S}\n"
        "kafka:\n  bootstrap_servers: ${KAFKA_BOOTSTRAP_SERVERS}\n"
        f"  consumer: {{engine: {consumer_engine}}}\n"
        "handlers:\n"
        f"  in: {{use: reactive-consumer, config: {json.dumps(consumer)}}}\n"
        "  audit: {use: audit, config: {target: kafka, topic: audit-budget}}\n"
        "consumers: {c: {exec: [audit, in]}}\n"
    )
    async with serving(backend):
        sidecar = SidecarProcess(config, tmp_path, {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap})
        await asyncio.to_thread(sidecar.start, "/health/ready")
        try:
            await produce(kafka_bootstrap, topic, [b'{"n": 1}', b'{"n": 2}'])
            await wait_for(lambda: len(backend.calls) > 0, 30, "a batch stuck in the backend")
            assert sidecar.process is not None
            started = time.monotonic()
            sidecar.process.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(sidecar.process.wait, BUDGET_S + 20)
            elapsed = time.monotonic() - started
        finally:
            hang.set()
            sidecar.stop()
    assert code == 0, sidecar.log()[-3000:]
    # The budget plus the interpreter's own exit; far below the 120 s the consumer's settings would allow.
    assert elapsed < BUDGET_S + 2.5, (
        f"exit took {elapsed:.1f}s with shutdown_timeout_s {BUDGET_S}\n{sidecar.log()[-3000:]}"
    )
    assert "shutdown budget" in sidecar.log(), "the step that ran out of time is named"
