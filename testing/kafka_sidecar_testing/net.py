"""Small helpers the test harness, the tests and the benchmarks share: free ports and a file lock."""

from __future__ import annotations

import contextlib
import fcntl
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (bind-then-close: a tiny race remains, callers retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """An inter-process lock, so parallel test processes do not download or unpack into the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def wait_ready(base_url: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 30) -> None:
    """Poll ``base_url/health/ready`` until it answers 200; fail with the log if the process exits or time runs out."""
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{base_url}/health/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "sidecar did not become ready"
        time.sleep(0.1)  # polling a condition with a deadline
