"""Correlation ids shared by the correlation, audit and logging plugins: header names, the per-exchange
ids (set by the correlation middleware) and the logging context.

The context variable is the Python equivalent of light-4j's MDC: whatever runs inside an exchange
(including log calls in consumer tasks) sees the ids of that exchange, across awaits.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from kafka_sidecar._stash import StashKey

CORRELATION_HEADER = "X-Correlation-Id"
TRACEABILITY_HEADER = "X-Traceability-Id"


@dataclass(frozen=True, slots=True)
class CorrelationIds:
    """The ids of one exchange. For a consumed batch whose records disagree, the batch's own id."""

    correlation_id: str
    traceability_id: str | None = None
    generated: bool = False


CORRELATION: StashKey[CorrelationIds] = StashKey("correlation-ids")
"""Set by the correlation middleware; audit and logging read it."""

LOG_IDS: ContextVar[CorrelationIds | None] = ContextVar("kafka_sidecar_correlation_ids", default=None)
"""The ids of the exchange being handled in this task (None outside any exchange)."""
