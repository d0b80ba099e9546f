"""Log records that carry the exchange's ids: a filter that stamps them, JSON and text formatters.

The ids come from context variables (the correlation plugin's ``LOG_IDS`` and OpenTelemetry's current
span), so they follow the exchange across awaits and into consumer tasks, like light-4j's MDC.
"""

from __future__ import annotations

import json
import logging
import time
from contextvars import ContextVar

from opentelemetry import trace

from kafka_sidecar.plugin import LOG_IDS

LOG_EXCHANGE: ContextVar[str | None] = ContextVar("kafka_sidecar_log_exchange", default=None)
"""The exchange being handled (route template or consumer name)."""
CONTEXT_FIELDS = ("correlation_id", "traceability_id", "trace_id", "span_id", "exchange")


class ContextFilter(logging.Filter):
    """Adds ``correlation_id``, ``traceability_id``, ``trace_id``, ``span_id`` and ``exchange`` to records."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = LOG_IDS.get()
        record.correlation_id = ids.correlation_id if ids is not None and ids.correlation_id else None
        record.traceability_id = ids.traceability_id if ids is not None else None
        span_context = trace.get_current_span().get_span_context()
        record.trace_id = f"{span_context.trace_id:032x}" if span_context.is_valid else None
        record.span_id = f"{span_context.span_id:016x}" if span_context.is_valid else None
        record.exchange = LOG_EXCHANGE.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; context fields appear only when set."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                body[name] = value
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger [cId=.. tId=.. traceId=..] message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(context)s%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            f"{label}={value}"
            for label, value in (
                ("cId", getattr(record, "correlation_id", None)),
                ("tId", getattr(record, "traceability_id", None)),
                ("traceId", getattr(record, "trace_id", None)),
            )
            if value
        ]
        record.context = f"[{' '.join(parts)}] " if parts else ""
        return super().format(record)
