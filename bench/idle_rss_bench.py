"""Resident memory of an idle ``kafka-sidecar run`` (the figure behind the Kubernetes example's requests).

Starts the sidecar with a config (default: the shipped ``chains.yml``) against a real broker, produces
one record so the producer and the plugins are warm, waits ``--idle`` seconds, then reads ``VmRSS`` and
``VmHWM`` from ``/proc/<pid>/status`` (Linux). Run from the repository root::

    .venv/bin/python bench/idle_rss_bench.py [--config chains.yml] [--idle 5] [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import REPO, kafka_bootstrap, sidecar_process


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in KiB."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "chains.yml")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds to stay idle before measuring")
    parser.add_argument("--bootstrap", default=None)
    args = parser.parse_args()
    with (
        kafka_bootstrap(args.bootstrap) as bootstrap,
        tempfile.TemporaryDirectory() as logs,
        sidecar_process(args.config, bootstrap, Path(logs)) as sidecar,
    ):
        body = json.dumps({"records": [{"key": "k", "value": {"n": 1}}]}).encode()
        request = urllib.request.Request(
            f"{sidecar.base_url}/producers/bench-rss", data=body, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200, response.status
        time.sleep(args.idle)  # the measurement is of an idle process: nothing to wait for
        memory = memory_kib(sidecar.pid)
    print(f"config {args.config.name}: VmRSS {memory['VmRSS']} kB ({memory['VmRSS'] / 1024:.0f} MiB), "
          f"VmHWM {memory['VmHWM']} kB, Python {sys.version.split()[0]}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
