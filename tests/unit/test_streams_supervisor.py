"""The process supervisor on its own (real child processes, no broker): stop escalation and stop races."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable

import pytest

from kafka_sidecar_handlers.streams._config import RestartPolicy
from kafka_sidecar_handlers.streams._supervisor import Launch, ProcessSupervisor
from kafka_sidecar_plugins.logging_context._format import ContextFilter, JsonFormatter

pytestmark = pytest.mark.asyncio

STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ignoring SIGTERM', flush=True);"
    "time.sleep(60)"
)


def supervisor(code: str, changes: list[str], *, stop_timeout_s: float = 0.5) -> ProcessSupervisor:
    return ProcessSupervisor(
        "p",
        lambda: Launch((sys.executable, "-c", code), {}),
        RestartPolicy(initial_backoff_ms=10, max_backoff_ms=10),
        stop_timeout_s=stop_timeout_s,
        ready_pattern="ignoring SIGTERM",
        ready_after_s=0,
        keep_lines=10,
        on_change=lambda state, detail: changes.append(state),
    )


async def until(condition: Callable[[], bool], timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)  # polling a condition with a deadline


async def test_a_child_ignoring_sigterm_is_killed_after_the_stop_timeout() -> None:
    changes: list[str] = []
    sup = supervisor(STUBBORN, changes)
    sup.start()
    await until(lambda: sup.state == "running")
    await sup.stop()
    assert sup.last_exit is not None
    assert sup.last_exit.signal == "SIGKILL"
    assert sup.state == "stopped"
    assert changes == ["starting", "running", "stopping", "exited", "stopped"]
    assert sup.restarts == 0


async def test_stop_right_after_start_leaves_no_child_running() -> None:
    changes: list[str] = []
    sup = supervisor("import time; print('ignoring SIGTERM', flush=True); time.sleep(60)", changes)
    sup.start()
    await asyncio.sleep(0)  # the supervision task has begun but the child may not exist yet
    await sup.stop()
    assert sup.state == "stopped"
    assert sup.pid is None
    assert not sup.active
    assert sup.restarts == 0


async def test_child_output_becomes_json_log_lines_carrying_the_processor() -> None:
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Keep()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("kafka_sidecar.streams.p")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        sup = supervisor("print('ignoring SIGTERM', flush=True)", [])
        sup.start()
        await until(lambda: sup.last_exit is not None)
        await sup.stop()
    finally:
        logger.removeHandler(handler)
    first = json.loads(lines[0])
    assert first["logger"] == "kafka_sidecar.streams.p"
    assert first["message"] == "[p] ignoring SIGTERM"


async def test_a_stop_cancelled_by_the_shutdown_budget_kills_the_child() -> None:
    changes: list[str] = []
    sup = supervisor(STUBBORN, changes, stop_timeout_s=30)
    sup.start()
    await until(lambda: sup.state == "running")
    stopping = asyncio.create_task(sup.stop())
    await until(lambda: sup.state == "stopping")
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    await until(lambda: not sup.active)
    assert sup.last_exit is not None
    assert sup.last_exit.signal == "SIGKILL"


JAVA_TRACE = r"""
import sys
sys.stderr.write('''Exception in thread "main" org.apache.kafka.common.KafkaException: Failed to create
\tat org.apache.kafka.streams.KafkaStreams.<init>(KafkaStreams.java:900)
Caused by: java.lang.ClassNotFoundException: org.jose4j.keys.resolvers.VerificationKeyResolver
\tat java.base/java.lang.ClassLoader.loadClass(ClassLoader.java:525)
\t... 32 more
''')
sys.exit(1)
"""


async def test_an_exit_is_summed_up_by_the_root_cause_of_a_stack_trace_not_its_last_frame() -> None:
    sup = supervisor(JAVA_TRACE, [])
    sup.start()
    await until(lambda: sup.last_exit is not None)
    first = sup.last_exit  # before a restart's exit replaces it
    await sup.stop()
    assert first is not None
    assert first.code == 1
    assert first.error == (
        "Caused by: java.lang.ClassNotFoundException: org.jose4j.keys.resolvers.VerificationKeyResolver"
    )
