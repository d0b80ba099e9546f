"""scripts/steps.sh, which test.sh and demo.sh use: numbered steps, quiet commands, timings at the end."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[2]


def bash(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail\nsource scripts/steps.sh\ntrap step_summary EXIT\n{script}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_steps_are_numbered_and_timed_at_exit(tmp_path: Path) -> None:
    done = bash(f'step "install"\nquietly {tmp_path}/log echo noisy-output\nstep "lint"\ntrue')
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "==> [1] install" in done.stdout
    assert "==> [2] lint" in done.stdout
    assert "noisy-output" not in done.stdout  # kept in the log, not shown
    assert (tmp_path / "log").read_text() == "noisy-output\n"
    timings = lines[lines.index("step timings") + 1 :]
    assert [line.split("s  ", 1)[1] for line in timings] == ["install", "lint", "total"]


def test_a_failing_quiet_command_shows_its_output_and_the_timings_still_print(tmp_path: Path) -> None:
    done = bash(f'step "install"\nquietly {tmp_path}/log sh -c "echo the-real-error; exit 3"')
    assert done.returncode == 3
    assert "the-real-error" in done.stderr
    assert "step timings" in done.stdout


def test_pip_downloads_sums_what_pip_logged(tmp_path: Path) -> None:
    log = tmp_path / "pip.log"
    log.write_text(
        "Collecting six\n  Downloading six-1.17.0-py2.py3-none-any.whl (11 kB)\n"
        "  Downloading aiokafka-0.12.0-cp311-manylinux.whl (1.2 MB)\n"
        "  Using cached httpx-0.28.1-py3-none-any.whl (73 kB)\n",
        encoding="utf-8",
    )
    done = bash(f"pip_downloads {log}")
    assert done.stdout.strip() == "downloaded 2 file(s), 1.2 MB (1 from pip's cache)"
