"""A sidecar as a real process (``python -m kafka_sidecar run``) on a loopback port, for tests and benches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from kafka_sidecar_testing.net import free_port


class SidecarProcess:
    """Writes ``config_yaml`` (``${SIDECAR_PORT}`` is filled in) and runs it until :meth:`stop`."""

    def __init__(
        self,
        config_yaml: str,
        directory: Path,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.args = tuple(args)
        """Extra arguments of ``run`` (``--log-level DEBUG``)."""
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.config_path = directory / "chains.yml"
        self.config_path.write_text(textwrap.dedent(config_yaml), encoding="utf-8")
        self.log_path = directory / "sidecar.log"
        self._env = {**os.environ, **(env or {}), "SIDECAR_PORT": str(self.port)}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready_path: str | None = "/health/live", timeout: float = 60.0) -> None:
        """Start the process and wait until ``ready_path`` answers 200 (``None``: do not wait)."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kafka_sidecar", "run", "-c", str(self.config_path), *self.args],
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        if ready_path is None:
            return
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"sidecar exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.base_url + ready_path, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sidecar did not answer {ready_path} within {timeout}s:\n{self.log()}")
            time.sleep(0.1)  # polling a condition with a deadline

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        stop_process(process, timeout)
        return process.returncode

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextmanager
def sidecar_process(
    config_yaml: str,
    directory: Path,
    *,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    ready: bool = True,
) -> Iterator[SidecarProcess]:
    """A :class:`SidecarProcess` started and, with ``ready``, serving ``/health/ready`` (broker connected)."""
    sidecar = SidecarProcess(config_yaml, directory, env, args)
    sidecar.start("/health/ready" if ready else None)
    try:
        yield sidecar
    finally:
        sidecar.stop()


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL if ``process`` has not exited ``timeout`` seconds later (nothing if it has ended)."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
