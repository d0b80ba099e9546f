"""glibc's malloc keeps reply-sized blocks in its heap once :func:`tune_malloc` ran (no fresh mapping per block)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from kafka_sidecar._runtime import tune_malloc

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")

# Allocates and frees blocks of 700 KB and more, each a little larger than the last (as a server writing
# replies of slightly varying sizes), and prints the minor page faults per block.
_ALLOCATE = """
import resource, sys
from kafka_sidecar._runtime import tune_malloc
print(tune_malloc() if sys.argv[1] == "tuned" else "untuned")
for _ in range(5):
    bytes(700_000)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for n in range(200):
    block = b"x" * (700_000 + 4096 * n)
    del block
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 200)
"""


def _faults_per_block(mode: str) -> tuple[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run(
        [sys.executable, "-c", _ALLOCATE, mode], capture_output=True, text=True, check=True, env=env, timeout=60
    ).stdout.split()
    return out[0], float(out[1])


def test_reply_sized_blocks_are_reused_from_the_heap_once_tuned() -> None:
    told, tuned = _faults_per_block("tuned")
    _, untuned = _faults_per_block("untuned")
    assert told == "True"
    assert tuned < 5, f"{tuned} page faults per 700 KB block after tune_malloc"
    assert untuned > 100, f"glibc's default was expected to map each block afresh ({untuned} faults per block)"


def test_an_environment_that_tunes_malloc_itself_is_left_alone() -> None:
    assert tune_malloc({"MALLOC_MMAP_THRESHOLD_": "1048576"}) is False
    assert tune_malloc({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"}) is False
