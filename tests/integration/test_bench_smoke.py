"""The benchmark suite's one command runs end to end (every scenario, a few records each) against the
test broker; the numbers are not checked here (benchmarks are not tests), only that every system of
every scenario moved records without errors and the plots were written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kafka
REPO = Path(__file__).resolve().parents[2]


def test_the_suite_runs_every_scenario_end_to_end(kafka_bootstrap: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "suite.py"), "--smoke", "--bootstrap", kafka_bootstrap,
         "--out", str(tmp_path)],
        cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"}, capture_output=True, text=True, timeout=150, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "suite.json").read_text(encoding="utf-8"))
    moved = {(row["scenario"], row["system"]) for row in result["rows"] if row["records"] > 0}
    for scenario in ("produce100", "produce1", "active-binary", "active-json", "reactive"):
        for system in ("sidecar shipped", "sidecar bare", "raw aiokafka"):
            assert (scenario, system) in moved, f"{scenario} / {system} moved no records"
    for scenario in ("active-binary", "active-json", "reactive"):  # the consumer limits' HTTP floor
        assert (scenario, "HTTP floor") in moved, f"{scenario} / HTTP floor moved no records"
    assert any(line.startswith(("MET", "MISS")) for line in result["goals"])
    limits = [line for line in result["goals"] if line.startswith("LIMIT consumer limit")]
    assert len(limits) == 3, limits
    assert all("x raw's read rate" in line for line in limits), limits
    assert (tmp_path / "suite-rate.png").stat().st_size > 0
    assert (tmp_path / "suite-cpu.png").stat().st_size > 0
