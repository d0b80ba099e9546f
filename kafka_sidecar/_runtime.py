"""Process-level settings for a long-lived server: the event loop, the garbage collector and glibc's malloc.

Measured in ``bench/suite.py`` (docs/benchmarks.md): freezing the start-up heap and raising the
young-generation threshold cut the collector's work under load (every produced record used to start
collections over objects that live as long as the process); uvloop's loop is used when it is
installed (the ``fast`` extra), else asyncio's own. glibc's malloc is told to keep large blocks in its
heap (:func:`tune_malloc`), so a reply of several hundred KiB does not cost a fresh mapping and its page
faults every time.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import importlib.util
import os
import platform
from collections.abc import Callable, Mapping

GC_THRESHOLDS = (2_000, 10, 10)
"""Generation 0 collects after 2,000 net allocations (CPython's default is 700). Measured on the reactive
path: (2000, 10, 10) with the frozen start-up heap: -8 % CPU per record, same peak RSS as untuned;
(10000, 10, 10): -11 % CPU but +25-80 MB peak RSS (cyclic garbage lives longer), so not taken."""


def tune_gc() -> None:
    """Move everything alive now (modules, config, plugins) out of the collector's sight; collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


MALLOC_MMAP_THRESHOLD = 16 * 1024 * 1024
"""Blocks below 16 MiB come from malloc's heap. glibc's default starts at 128 KiB and only moves above a
size once a block *larger* than it was freed: a server writing replies of one size (0.7 MB for 500
records of 1 KiB) then maps and unmaps each one, zero-filling it page by page: measured 0.5-0.9 minor
faults and about 1 µs of CPU per record on the active consumer's binary path (docs/benchmarks.md)."""
MALLOC_TRIM_THRESHOLD = 32 * 1024 * 1024
"""Free memory at the top of the heap is given back to the system above 32 MiB (glibc: 128 KiB once the
mmap threshold is set), so a reply's memory is reused by the next one rather than returned and faulted in
again. RSS stays bounded: at most this much above what is in use."""
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MALLOC_ENVIRONMENT = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def tune_malloc(environ: Mapping[str, str] = os.environ) -> bool:
    """Set glibc's mmap and trim thresholds (:data:`MALLOC_MMAP_THRESHOLD`, :data:`MALLOC_TRIM_THRESHOLD`);
    True when set. Left alone on other C libraries and when the environment already tunes malloc."""
    if platform.libc_ver()[0] != "glibc" or any(name in environ for name in _MALLOC_ENVIRONMENT):
        return False
    libc = ctypes.CDLL(None)
    return bool(
        libc.mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)
        and libc.mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD)
    )


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
