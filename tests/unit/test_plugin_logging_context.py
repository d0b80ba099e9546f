"""Logging context alone: ids follow the exchange across awaits and into tasks; JSON and text lines."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider

from kafka_sidecar._config.model import KafkaConfig, SidecarConfig
from kafka_sidecar._exchange import Exchange, HttpRequest, Reply
from kafka_sidecar._kafka.producer import ProducerService
from kafka_sidecar._resources import Resources
from kafka_sidecar._serdes.base import SerdeRegistry
from kafka_sidecar_plugins.correlation import CorrelationConfig, CorrelationHandler
from kafka_sidecar_plugins.logging_context import LoggingContextConfig, LoggingContextHandler, make_log_handler
from kafka_sidecar_plugins.logging_context._format import LOG_EXCHANGE

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


@pytest.mark.asyncio
async def test_the_first_instance_installs_one_root_handler_and_removes_it() -> None:
    res = resources()
    first = LoggingContextHandler(LoggingContextConfig(level="WARNING", loggers={LOGGER + ".x": "DEBUG"}), res)
    second = LoggingContextHandler(LoggingContextConfig(), res)
    root = logging.getLogger()
    plain = logging.StreamHandler()  # what logging.basicConfig (the CLI) installs
    root.addHandler(plain)
    before, level = list(root.handlers), root.level
    try:
        await first.start()
        await second.start()
        assert plain not in root.handlers
        assert len(root.handlers) == len(before)
        assert root.level == logging.WARNING
        assert logging.getLogger(LOGGER + ".x").level == logging.DEBUG
    finally:
        await second.stop()
        await first.stop()
        root.setLevel(level)
        restored = list(root.handlers)
        root.removeHandler(plain)
    assert restored == before


def test_bad_levels_are_rejected_in_config() -> None:
    with pytest.raises(ValueError, match=r"loggers\.a"):
        LoggingContextConfig(loggers={"a": "LOUD"})
