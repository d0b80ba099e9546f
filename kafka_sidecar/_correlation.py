"""Correlation ids shared by the correlation, audit and logging plugins: header names, the per-exchange
ids (set by the correlation middleware) and the logging context.

The context variable is the Python equivalent of light-4j's MDC: whatever runs inside an exchange
(including log calls in consumer tasks) sees the ids of that exchange, across awaits.
"""

from __future__ import annotations

from contextvars import ContextVar

import msgspec

from kafka_sidecar._stash import StashKey

CORRELATION_HEADER = "X-Correlation-Id"
TRACEABILITY_HEADER = "X-Traceability-Id"


class CorrelationIds(msgspec.Struct, frozen=True, gc=False):
    """The ids of one exchange. For a consumed batch whose records disagree, the batch's own id.

    A frozen ``msgspec.Struct``, built in C once per exchange (a frozen dataclass's generated ``__init__``
    cost about 5 µs per request with the CPU caches cold: docs/benchmarks.md, eighth round): fields,
    positional or keyword construction, ``==`` and ``hash``; a changed copy is ``msgspec.structs.replace``.
    """

    correlation_id: str
    traceability_id: str | None = None
    generated: bool = False


CORRELATION: StashKey[CorrelationIds] = StashKey("correlation-ids")
"""Set by the correlation middleware; audit and logging read it."""

LOG_IDS: ContextVar[CorrelationIds | None] = ContextVar("kafka_sidecar_correlation_ids", default=None)
"""The ids of the exchange being handled in this task (None outside any exchange)."""
