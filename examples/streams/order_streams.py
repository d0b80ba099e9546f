"""A quixstreams application run by the sidecar (``use: stream-processor``, ``runtime: python``).

The sidecar's runner builds the ``Application`` (brokers, TLS/SASL, consumer group, exactly-once, state
dir) and calls :func:`build` with it; this module only defines what to compute:

* ``order-counts``: per customer (the record key), the running number of orders (a state store);
* ``order-totals``: per customer and 10-second tumbling window, the summed amount, emitted once the
  window has closed.

Topic names come from the environment (the processor's ``env:``), with the demo's names as defaults.
Input values are JSON objects ``{"id": ..., "amount": ...}`` keyed by customer.
"""

from __future__ import annotations

import os
from typing import Any

WINDOW_MS = 10_000


def count(value: dict[str, Any], state: Any) -> dict[str, Any]:
    """Orders seen so far for this record's key, kept in the state store (changelogged, exactly-once)."""
    seen = int(state.get("count", 0)) + 1
    state.set("count", seen)
    return {"id": value["id"], "count": seen}


def window_result(window: dict[str, Any]) -> dict[str, Any]:
    return {"start": window["start"], "end": window["end"], "total": window["value"]}


def build(app: Any) -> None:
    orders = app.topic(os.environ.get("ORDERS_TOPIC", "orders"), key_deserializer="str", value_deserializer="json")
    counts = app.topic(os.environ.get("COUNTS_TOPIC", "order-counts"), key_serializer="str", value_serializer="json")
    totals = app.topic(os.environ.get("TOTALS_TOPIC", "order-totals"), key_serializer="str", value_serializer="json")
    stream = app.dataframe(orders)
    stream.apply(count, stateful=True).to_topic(counts)
    windows = stream.apply(lambda value: value["amount"]).tumbling_window(duration_ms=WINDOW_MS).sum().final()
    windows.apply(window_result).to_topic(totals)
