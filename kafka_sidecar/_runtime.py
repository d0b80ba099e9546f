"""Process-level settings for a long-lived server: the event loop and the garbage collector.

Measured in ``bench/suite.py`` (docs/benchmarks.md): freezing the start-up heap and raising the
young-generation threshold cut the collector's work under load (every produced record used to start
collections over objects that live as long as the process); uvloop's loop is used when it is
installed (the ``fast`` extra), else asyncio's own.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
from collections.abc import Callable

GC_THRESHOLDS = (2_000, 10, 10)
"""Generation 0 collects after 2,000 net allocations (CPython's default is 700). Measured on the reactive
path: (2000, 10, 10) with the frozen start-up heap: -8 % CPU per record, same peak RSS as untuned;
(10000, 10, 10): -11 % CPU but +25-80 MB peak RSS (cyclic garbage lives longer), so not taken."""


def tune_gc() -> None:
    """Move everything alive now (modules, config, plugins) out of the collector's sight; collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def freeze_started_heap() -> None:
    """Once the sidecar has started: what the start built (Kafka clients, caches, the server) lives as long
    as the process too; freeze it, so no collection walks it again (a full collection over it measured
    15-30 ms, a pause in some request's latency)."""
    gc.collect()
    gc.freeze()


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop factory when uvloop is installed, else None (asyncio's default loop)."""
    if importlib.util.find_spec("uvloop") is None:
        return None
    import uvloop

    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
