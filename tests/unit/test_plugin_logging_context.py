"""Logging context alone: ids follow the exchange across awaits and into tasks; JSON and text lines."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from kafka_sidecar._config.model import KafkaConfig, SidecarConfig
from kafka_sidecar._exchange import Exchange, HttpRequest, Reply
from kafka_sidecar._kafka.producer import ProducerService
from kafka_sidecar._resources import Resources
from kafka_sidecar._serdes.base import SerdeRegistry
from kafka_sidecar._sidecar import Sidecar
from kafka_sidecar.cli import main
from kafka_sidecar_plugins.correlation import CorrelationConfig, CorrelationHandler
from kafka_sidecar_plugins.logging_context import LoggingContextConfig, LoggingContextHandler, make_log_handler
from kafka_sidecar_plugins.logging_context._format import LOG_EXCHANGE
from kafka_sidecar_plugins.logging_context._root import ContextLogHandler

LOGGER = "test.plugin.logging"


def resources() -> Resources:
    return Resources(SidecarConfig(), SerdeRegistry(), ProducerService(KafkaConfig()))


@pytest.fixture
def captured() -> tuple[logging.Logger, io.StringIO, logging.Handler]:
    stream = io.StringIO()
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.INFO)
    return logger, stream, make_log_handler("json", stream)


class LoggingTerminal:
    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    async def __call__(self, exchange: Exchange) -> Reply:
        await asyncio.sleep(0)
        self.logger.info("inside the terminal")

        async def background() -> None:
            await asyncio.sleep(0)
            self.logger.info("inside a task started by the terminal")

        await asyncio.create_task(background())
        return Reply(200)


@pytest.mark.asyncio
async def test_json_lines_carry_the_ids_of_the_exchange_across_awaits_and_tasks(
    captured: tuple[logging.Logger, io.StringIO, logging.Handler],
) -> None:
    logger, stream, log_handler = captured
    logger.addHandler(log_handler)
    try:
        res = resources()
        correlation = CorrelationHandler(CorrelationConfig(), res)
        logging_context = LoggingContextHandler(LoggingContextConfig(install=False), res)
        tracer = TracerProvider().get_tracer("t")
        request = HttpRequest(
            "POST", "/producers/o", "/producers/{topic}", {"topic": "o"}, {}, {"x-correlation-id": "cid-7"}
        )
        terminal = LoggingTerminal(logger)

        async def chain(exchange: Exchange) -> Reply:
            return await logging_context(exchange, terminal)

        with tracer.start_as_current_span("server") as span:
            await correlation(Exchange("http", "/producers/{topic}", request), chain)
            trace_id = f"{span.get_span_context().trace_id:032x}"
        logger.info("after the exchange")
    finally:
        logger.removeHandler(log_handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    inside = [line for line in lines if line["message"].startswith("inside")]
    assert len(inside) == 2
    for line in inside:
        assert line["correlation_id"] == "cid-7"
        assert line["trace_id"] == trace_id
        assert line["exchange"] == "/producers/{topic}"
        assert line["level"] == "INFO"
        assert line["logger"] == LOGGER
    after = lines[-1]
    assert after["message"] == "after the exchange"
    assert "correlation_id" not in after
    assert "exchange" not in after
    assert LOG_EXCHANGE.get() is None


def test_text_format_shows_the_ids() -> None:
    stream = io.StringIO()
    log_handler = make_log_handler("text", stream)
    logger = logging.getLogger(LOGGER + ".text")
    logger.setLevel(logging.INFO)
    logger.addHandler(log_handler)
    try:
        tracer = TracerProvider().get_tracer("t")
        with tracer.start_as_current_span("s") as span:
            logger.info("hello %s", "world")
        logger.info("no context")
    finally:
        logger.removeHandler(log_handler)
    first, second = stream.getvalue().splitlines()
    assert f"[traceId={span.get_span_context().trace_id:032x}] hello world" in first
    assert second.endswith(f"INFO {LOGGER}.text no context")


SIDECAR = """\
kafka: {bootstrap_servers: "127.0.0.1:1"}
handlers:
  logging: {use: logging-context, config: {level: ERROR, loggers: {test.plugin.logging.x: DEBUG}}}
paths:
  - {path: "/producers/{topic}", method: POST, exec: [logging, producer]}
"""


def build_sidecar(folder: Path, text: str = SIDECAR) -> Sidecar:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "chains.yml").write_text(text, encoding="utf-8")
    return Sidecar.from_file(folder / "chains.yml")


@pytest.fixture
def plain_root() -> Iterator[logging.Handler]:
    """The root logger as ``logging.basicConfig`` (the CLI) leaves it, put back as it was afterwards."""
    root = logging.getLogger()
    plain = logging.StreamHandler()
    root.addHandler(plain)
    x_logger = logging.getLogger(LOGGER + ".x")
    level, x_level = root.level, x_logger.level
    root.setLevel(logging.WARNING)
    try:
        yield plain
    finally:
        root.removeHandler(plain)
        root.setLevel(level)
        x_logger.setLevel(x_level)


def context_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if isinstance(h, ContextLogHandler)]


@pytest.mark.asyncio
@pytest.mark.parametrize("stop_order", ["last-started-first", "first-started-first"])
async def test_two_sidecars_in_one_process_install_once_and_stop_restores(
    tmp_path: Path, plain_root: logging.Handler, stop_order: str
) -> None:
    root = logging.getLogger()
    plain, before, level = plain_root, list(root.handlers), root.level
    one, two = build_sidecar(tmp_path / "one"), build_sidecar(tmp_path / "two")
    assert not context_handlers()  # assembly (and check) installs nothing

    await one.start()
    await two.start()
    try:
        assert len(context_handlers()) == 1  # every line written once, not once per sidecar
        assert plain not in root.handlers
        assert root.level == logging.ERROR
        assert logging.getLogger(LOGGER + ".x").level == logging.DEBUG
    finally:
        first, second = (two, one) if stop_order == "last-started-first" else (one, two)
        await first.stop()
        if stop_order == "last-started-first":
            assert len(context_handlers()) == 1  # the first sidecar's installation stays while it runs
        await second.stop()
    assert sorted(map(id, root.handlers)) == sorted(map(id, before))  # the same handlers (re-added at the end)
    assert root.level == level
    assert logging.getLogger(LOGGER + ".x").level == logging.NOTSET


@pytest.mark.asyncio
async def test_a_sidecar_with_install_false_leaves_root_logging_alone(
    tmp_path: Path, plain_root: logging.Handler
) -> None:
    before, level = list(logging.getLogger().handlers), logging.getLogger().level
    sidecar = build_sidecar(tmp_path, SIDECAR.replace("{level: ERROR,", "{install: false, level: ERROR,"))
    await sidecar.start()
    try:
        assert logging.getLogger().handlers == before
        assert logging.getLogger().level == level
    finally:
        await sidecar.stop()


def test_instances_that_install_differently_are_a_check_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    two_ways = SIDECAR.replace(
        "paths:",
        "  text-logs: {use: logging-context, config: {format: text}}\npaths:\n"
        '  - {path: "/other/{topic}", method: POST, exec: [text-logs, producer]}',
    )
    (tmp_path / "chains.yml").write_text(two_ways, encoding="utf-8")
    assert main(["check", str(tmp_path / "chains.yml")]) == 2
    err = capsys.readouterr().err
    assert "handlers.logging.config  installs root logging differently from logging-context instance 'text-logs'" in err


def test_bad_levels_are_rejected_in_config() -> None:
    with pytest.raises(ValueError, match=r"loggers\.a"):
        LoggingContextConfig(loggers={"a": "LOUD"})
