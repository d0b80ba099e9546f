"""Supervises one child process: start, log lines, readiness, stop (SIGTERM then SIGKILL), restarts.

The child runs in its own session (its own process group), so signals reach the whole process tree and
never the sidecar. A crash is followed by a restart after a capped exponential backoff, within a budget
of restarts per window; once the budget is spent the processor is ``failed`` until an operator starts it
again. Nothing the child does can raise into the sidecar: every failure becomes state and a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import re
import signal
import sys
import time
import typing
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from kafka_sidecar_handlers.streams._config import RestartPolicy

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    """Linux: a ``preexec_fn`` asking the kernel to SIGTERM the child when the sidecar dies, even by SIGKILL.

    libc is loaded here, in the parent, so the function run between fork and exec only makes one call.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    prctl = libc.prctl

    def set_death_signal() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return set_death_signal


State = Literal["stopped", "starting", "running", "backoff", "stopping", "failed"]
STATES: tuple[State, ...] = typing.get_args(State)
LINE_LIMIT = 1 << 20
_STACK_FRAME = re.compile(r"\s+(at |\.\.\. \d+ more|File \")")
"""A frame of a Java or Python stack trace: not what an exit is summed up by."""


@dataclass(frozen=True, slots=True)
class Launch:
    """How to start the child once; ``cleanup`` runs after it exited (e.g. removes a secrets file)."""

    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: str | None = None
    cleanup: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class ExitInfo:
    code: int | None
    signal: str | None
    at: float
    ran_s: float
    error: str | None
    """The last line the child wrote to stderr (or stdout) before it exited, if any."""

    def describe(self) -> str:
        how = f"signal {self.signal}" if self.signal else f"exit code {self.code}"
        return f"{how} after {self.ran_s:.1f}s" + (f": {self.error}" if self.error else "")


@dataclass(frozen=True, slots=True)
class LogLine:
    at: float
    stream: str
    text: str


class ProcessSupervisor:
    def __init__(
        self,
        name: str,
        prepare: Callable[[], Launch],
        policy: RestartPolicy,
        *,
        stop_timeout_s: float,
        ready_pattern: str | None,
        ready_after_s: float,
        keep_lines: int,
        on_change: Callable[[str, str], None],
        on_line: Callable[[LogLine], None] | None = None,
    ) -> None:
        self.name = name
        self._prepare = prepare
        self._policy = policy
        self._stop_timeout = stop_timeout_s
        self._ready = re.compile(ready_pattern) if ready_pattern else None
        self._ready_after = ready_after_s
        self._on_change = on_change
        self._on_line = on_line
        self._log = logging.getLogger(f"kafka_sidecar.streams.{name}")
        self.state: State = "stopped"
        self.pid: int | None = None
        self.started_at: float | None = None
        self.restarts = 0
        self.last_exit: ExitInfo | None = None
        self.last_error: str | None = None
        self.lines: deque[LogLine] = deque(maxlen=keep_lines)
        self._restart_times: deque[float] = deque()
        self._crashes_in_a_row = 0
        self._process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._preexec = _die_with_parent()

    # -- control ---------------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, *, reset_budget: bool = False) -> None:
        """Start supervising (no-op while already supervising)."""
        if self.active:
            return
        if reset_budget:
            self._restart_times.clear()
            self._crashes_in_a_row = 0
        self._stopping = False
        self._wake.clear()
        self._task = asyncio.create_task(self._supervise(), name=f"stream-processor-{self.name}")

    async def stop(self) -> None:
        """SIGTERM to the child's process group, SIGKILL after the stop timeout; no restart."""
        self._stopping = True
        self._wake.set()
        task = self._task
        if task is None:
            return
        process = self._process
        if process is not None and process.returncode is None:
            self._set_state("stopping", "SIGTERM")
            self._signal(process, signal.SIGTERM)
        try:
            done, _ = await asyncio.wait({task}, timeout=self._stop_timeout)
        except asyncio.CancelledError:  # the sidecar's shutdown budget ran out: leave nothing running
            if self._process is not None:
                self._signal(self._process, signal.SIGKILL)
            raise
        if not done:
            self._log.warning("[%s] still running %.0fs after SIGTERM; SIGKILL", self.name, self._stop_timeout)
            if self._process is not None:
                self._signal(self._process, signal.SIGKILL)
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._task = None
        if self.state == "failed":
            self._set_state("stopped", "stopped by an operator")

    # -- the loop --------------------------------------------------------------------------------

    async def _supervise(self) -> None:
        while not self._stopping:
            ran_s = await self._run_once()
            if self._stop_requested():
                break
            if ran_s >= self._policy.healthy_after_ms / 1000:
                self._crashes_in_a_row = 0
            self._crashes_in_a_row += 1
            now = time.monotonic()
            window = self._policy.window_ms / 1000
            while self._restart_times and now - self._restart_times[0] > window:
                self._restart_times.popleft()
            if len(self._restart_times) >= self._policy.max_restarts:
                detail = f"{len(self._restart_times)} restarts within {window:.0f}s; giving up"
                self.last_error = f"{detail} (last: {self.last_exit.describe() if self.last_exit else 'unknown'})"
                self._set_state("failed", self.last_error)
                self._log.error("[%s] crash-looping: %s", self.name, self.last_error)
                return
            delay = self._policy.backoff_s(self._crashes_in_a_row)
            self._set_state("backoff", f"restart in {delay:.1f}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            if self._stop_requested():
                break
            self._restart_times.append(time.monotonic())
            self.restarts += 1
        self._set_state("stopped", "stopped")

    async def _run_once(self) -> float:
        started = time.monotonic()
        try:
            launch = self._prepare()
        except Exception as exc:
            self.last_error = f"cannot prepare the processor: {exc}"
            self._log.error("[%s] %s", self.name, self.last_error)
            self.last_exit = ExitInfo(None, None, time.time(), 0.0, self.last_error)
            return 0.0
        try:
            process = await asyncio.create_subprocess_exec(
                *launch.argv,
                env=dict(launch.env),
                cwd=launch.cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                preexec_fn=self._preexec,
                limit=LINE_LIMIT,
            )
        except OSError as exc:
            self.last_error = f"cannot start {launch.argv[0]!r}: {exc}"
            self._log.error("[%s] %s", self.name, self.last_error)
            self.last_exit = ExitInfo(None, None, time.time(), 0.0, self.last_error)
            if launch.cleanup is not None:
                launch.cleanup()
            return 0.0
        self._process = process
        if self._stopping:  # stop() came while the child was being started
            self._signal(process, signal.SIGTERM)
        self.pid = process.pid
        self.started_at = time.time()
        self._set_state("starting", f"pid {process.pid}")
        last_line: list[str] = []
        ready = asyncio.Event()
        pumps = [
            asyncio.create_task(self._pump(process.stdout, "stdout", last_line, ready, process.pid)),
            asyncio.create_task(self._pump(process.stderr, "stderr", last_line, ready, process.pid)),
        ]
        watcher = asyncio.create_task(self._await_ready(ready))
        try:
            code = await process.wait()
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            watcher.cancel()
            for pump in pumps:
                pump.cancel()
            if launch.cleanup is not None:
                try:
                    launch.cleanup()
                except OSError as exc:
                    self._log.warning("[%s] cleanup after exit failed: %s", self.name, exc)
        ran_s = time.monotonic() - started
        sig = signal.Signals(-code).name if code < 0 else None
        self.last_exit = ExitInfo(None if sig else code, sig, time.time(), ran_s, last_line[0] if last_line else None)
        self._process = None
        self.pid = None
        self.started_at = None
        if not self._stopping:
            self.last_error = self.last_exit.describe()
            self._log.warning("[%s] exited: %s", self.name, self.last_error)
        self._on_change("exited", self.last_exit.describe())
        return ran_s

    async def _await_ready(self, ready: asyncio.Event) -> None:
        if self._ready is None:
            await asyncio.sleep(self._ready_after)
        else:
            await ready.wait()
        if self.state == "starting":
            self._set_state("running", f"pid {self.pid}")

    async def _pump(
        self,
        stream: asyncio.StreamReader | None,
        name: str,
        last_line: list[str],
        ready: asyncio.Event,
        pid: int,
    ) -> None:
        if stream is None:
            return
        extra = {"processor": self.name, "pid": pid, "stream": name}
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line longer than LINE_LIMIT: keep going with what follows
                raw = await stream.read(LINE_LIMIT)
            if not raw:
                return
            text = raw.decode("utf-8", "replace").rstrip()
            if not text:
                continue
            line = LogLine(time.time(), name, text)
            self.lines.append(line)
            if (name == "stderr" or not last_line) and not _STACK_FRAME.match(text):
                last_line[:] = [text]  # a stack trace's last line is its root cause, not "... 32 more"
            if self._ready is not None and not ready.is_set() and self._ready.search(text):
                ready.set()
            self._log.info("[%s] %s", self.name, text, extra=extra)
            if self._on_line is not None:
                self._on_line(line)

    # -- pieces ----------------------------------------------------------------------------------

    def _stop_requested(self) -> bool:
        return self._stopping

    def _signal(self, process: asyncio.subprocess.Process, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)  # start_new_session: the child leads its own group

    def _set_state(self, state: State, detail: str) -> None:
        if state == self.state:
            return
        self.state = state
        self._on_change(state, detail)
