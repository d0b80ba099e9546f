"""A real, single-node Apache Kafka broker (KRaft) for tests, run from jars on Maven Central.

The broker jars are resolved once with Maven from the template pom shipped next to this
module (``kafka-runtime/pom.xml``) and cached on disk; :class:`KafkaBroker` then formats a
fresh KRaft storage directory and launches ``kafka.Kafka`` with ``java -cp '<libs>/*'``.
Everything listens on 127.0.0.1 only.

Command line::

    python -m kafka_sidecar_testing.broker_cli fetch            # download jars, print the libs dir
    python -m kafka_sidecar_testing.broker_cli run [--port N]   # foreground broker, prints bootstrap=...

Importing this module has no side effects; aiokafka is only imported by :func:`create_topic`.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self

from kafka_sidecar._kafka.java_properties import escape_property
from kafka_sidecar_testing.kafka_runtime import (
    _TAIL_CHARS,
    DEFAULT_KAFKA_VERSION,
    BrokerError,
    MissingToolError,
    _resource_text,
    _tail,
    default_cache_dir,
    ensure_kafka_runtime,
    find_java,
    find_maven,
)
from kafka_sidecar_testing.net import free_port as _free_port
from kafka_sidecar_testing.topics import create_topic

__all__ = [
    "DEFAULT_KAFKA_VERSION",
    "STARTED_MESSAGE",
    "BrokerError",
    "KafkaBroker",
    "Listener",
    "MissingToolError",
    "create_topic",
    "default_cache_dir",
    "ensure_kafka_runtime",
    "find_java",
    "find_maven",
]


STARTED_MESSAGE: Final = "Kafka Server started"
"""INFO line logged by ``kafka.server.KafkaRaftServer`` once the broker serves requests."""

DEFAULT_HEAP_OPTIONS: Final = ("-Xms128m", "-Xmx512m")
# Start-up oriented JVM flags: C1 only and the serial collector start noticeably faster on a
# small machine than the G1/C2 defaults, and a test broker never runs long enough for C2 to pay off.
DEFAULT_JVM_OPTIONS: Final = (
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Xshare:auto",
    "-Djava.awt.headless=true",
)
LOOPBACK: Final = "127.0.0.1"

_LISTENER_NAME_RE: Final = re.compile(r"^[A-Z][A-Z0-9_]*$")
_SECURITY_PROTOCOLS: Final = frozenset({"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"})
_RESERVED_LISTENERS: Final = frozenset({"PLAINTEXT", "CONTROLLER"})
# Keys the broker derives itself; extra listeners go through ``extra_listeners`` instead.
_RESERVED_PROPERTIES: Final = frozenset(
    {
        "process.roles",
        "node.id",
        "controller.quorum.voters",
        "controller.quorum.bootstrap.servers",
        "controller.listener.names",
        "listeners",
        "advertised.listeners",
        "listener.security.protocol.map",
        "log.dirs",
    }
)
_GC_SELECTION: Final = re.compile(r"-XX:\+Use\w+GC")
_ADDRESS_IN_USE: Final = "Address already in use"
_POLL_INTERVAL: Final = 0.1
_STOP_TIMEOUT: Final = 30.0


@dataclass(frozen=True)
class Listener:
    """An additional broker listener, e.g. ``Listener("SSL", "SSL")``.

    ``port=0`` picks a free loopback port at start. Listener-specific settings go into
    ``extra_properties`` with the usual ``listener.name.<lower-case name>.`` prefix.
    """

    name: str
    security_protocol: str = "PLAINTEXT"
    port: int = 0

    def __post_init__(self) -> None:
        if not _LISTENER_NAME_RE.fullmatch(self.name):
            raise ValueError(f"listener name must be upper-case [A-Z0-9_]: {self.name!r}")
        if self.name in _RESERVED_LISTENERS:
            raise ValueError(f"listener name {self.name!r} is used by the broker itself")
        if self.security_protocol not in _SECURITY_PROTOCOLS:
            raise ValueError(
                f"unknown security protocol {self.security_protocol!r}; expected one of {sorted(_SECURITY_PROTOCOLS)}"
            )
        if not 0 <= self.port <= 65535:
            raise ValueError(f"bad port {self.port}")


def _pick_ports(count: int, taken: set[int]) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = _free_port()
        if port not in taken and port not in ports:
            ports.append(port)
    return ports


def _cluster_id() -> str:
    """A random cluster id in Kafka's format (URL-safe base64 of 16 bytes, unpadded).

    Like Kafka's own ``Uuid.randomUuid()``, ids starting with ``-`` are rejected: the
    StorageTool's argument parser would read them as an option.
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not text.startswith("-"):
            return text


class KafkaBroker:
    """One single-node KRaft Kafka broker (combined broker + controller) on 127.0.0.1.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. With ``work_dir=None``
    a temporary directory is created on start and removed on stop; a given ``work_dir`` is
    kept, but its ``data`` subdirectory is recreated on every start.
    """

    def __init__(
        self,
        libs_dir: Path,
        work_dir: Path | None = None,
        *,
        extra_properties: Mapping[str, str] | None = None,
        extra_listeners: Sequence[Listener] = (),
        jvm_options: Sequence[str] = (),
        port: int = 0,
        java: str | None = None,
        keep_work_dir: bool = False,
    ) -> None:
        self.libs_dir = Path(libs_dir)
        self._given_work_dir = Path(work_dir) if work_dir is not None else None
        self.extra_properties: dict[str, str] = dict(extra_properties or {})
        clash = sorted(_RESERVED_PROPERTIES.intersection(self.extra_properties))
        if clash:
            raise ValueError(f"these properties are managed by KafkaBroker (use extra_listeners): {clash}")
        names = [listener.name for listener in extra_listeners]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate listener names: {names}")
        self.extra_listeners: tuple[Listener, ...] = tuple(extra_listeners)
        self.jvm_options: tuple[str, ...] = tuple(jvm_options)
        if not 0 <= port <= 65535:
            raise ValueError(f"bad port {port}")
        self._port = port
        self._java = java
        self._keep_work_dir = keep_work_dir

        self._work_dir: Path | None = None
        self._owns_work_dir = False
        self._process: subprocess.Popen[bytes] | None = None
        self._log_handle: IO[bytes] | None = None
        self._addresses: dict[str, int] = {}
        self._last_log = ""
        self.timings: dict[str, float] = {}
        """Seconds spent in the last start: ``format`` and ``start`` (launch to ready)."""

    # -- public API ---------------------------------------------------------------------------

    @property
    def work_dir(self) -> Path | None:
        return self._work_dir

    @property
    def log_path(self) -> Path | None:
        return self._work_dir / "kafka.log" if self._work_dir is not None else None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:<port>`` of the PLAINTEXT client listener."""
        return self.listener_address("PLAINTEXT")

    def listener_address(self, name: str) -> str:
        """``127.0.0.1:<port>`` of listener ``name`` (``PLAINTEXT``, ``CONTROLLER`` or an extra one)."""
        if not self._addresses:
            raise BrokerError("the broker is not started")
        try:
            return f"{LOOPBACK}:{self._addresses[name]}"
        except KeyError:
            raise KeyError(f"no listener named {name!r}; have {sorted(self._addresses)}") from None

    def start(self, timeout: float = 90.0) -> None:
        """Format fresh KRaft storage, launch the broker and wait until it logs that it started."""
        if self._process is not None:
            raise BrokerError("the broker is already started")
        java = self._java or find_java()
        if java is None:
            raise MissingToolError("Java ('java' on PATH or $JAVA_HOME/bin/java) is needed to run Kafka")
        if not any(self.libs_dir.glob("kafka_2.13-*.jar")):
            raise BrokerError(f"{self.libs_dir} holds no kafka_2.13 jar; run ensure_kafka_runtime() first")
        if self._given_work_dir is not None:
            self._given_work_dir.mkdir(parents=True, exist_ok=True)
            self._work_dir = self._given_work_dir.resolve()
            self._owns_work_dir = False
        else:
            self._work_dir = Path(tempfile.mkdtemp(prefix="kafka-sidecar-broker-"))
            self._owns_work_dir = not self._keep_work_dir

        deadline = time.monotonic() + timeout
        auto_ports = self._port == 0 and all(listener.port == 0 for listener in self.extra_listeners)
        attempts = 2 if auto_ports else 1
        try:
            for attempt in range(1, attempts + 1):
                try:
                    self._start_once(java, self._work_dir, deadline)
                    return
                except BrokerError as exc:
                    if attempt < attempts and _ADDRESS_IN_USE in str(exc):
                        continue
                    raise
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM the broker, wait up to 30 s, then kill it; remove a temporary work dir."""
        self._terminate()
        self._addresses = {}
        if self._work_dir is not None:
            self._last_log = self._read_log()
            if self._owns_work_dir:
                shutil.rmtree(self._work_dir, ignore_errors=True)
        self._work_dir = None
        self._owns_work_dir = False

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would; its data directory and ports stay for :meth:`restart`."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def restart(self, timeout: float = 90.0) -> None:
        """Start the broker again after :meth:`kill`: same ports, same data directory (not formatted)."""
        if self._process is not None or self._work_dir is None or not self._addresses:
            raise BrokerError("restart() follows kill() on a started broker")
        java = self._java or find_java()
        if java is None:
            raise MissingToolError("Java ('java' on PATH or $JAVA_HOME/bin/java) is needed to run Kafka")
        work_dir = self._work_dir
        log_path = work_dir / "kafka.log"
        seen = log_path.stat().st_size if log_path.exists() else 0
        self._log_handle = log_path.open("ab")
        began = time.monotonic()
        self._process = subprocess.Popen(
            [*self._java_command(java, work_dir), "kafka.Kafka", str(work_dir / "server.properties")],
            cwd=work_dir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_ready(log_path, began + timeout, seen)
        self.timings["restart"] = time.monotonic() - began

    def log_tail(self, limit: int = _TAIL_CHARS) -> str:
        """The end of the broker's console log (also available after :meth:`stop`)."""
        text = self._read_log() if self._work_dir is not None else self._last_log
        return _tail(text, limit)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running at {self.bootstrap_servers}" if self._addresses else "stopped"
        return f"<KafkaBroker {state} libs={self.libs_dir}>"

    # -- internals ----------------------------------------------------------------------------

    def _java_command(self, java: str, work_dir: Path) -> list[str]:
        defaults = list(DEFAULT_JVM_OPTIONS)
        if any(_GC_SELECTION.fullmatch(option) for option in self.jvm_options):
            # The JVM refuses two collectors; the caller's choice wins.
            defaults = [option for option in defaults if not _GC_SELECTION.fullmatch(option)]
        return [
            java,
            *DEFAULT_HEAP_OPTIONS,
            *defaults,
            *self.jvm_options,
            f"-Dlog4j2.configurationFile={work_dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={work_dir / 'logs'}",
            "-cp",
            f"{self.libs_dir.resolve()}{os.sep}*",
        ]

    def _assign_ports(self) -> None:
        fixed = {listener.port for listener in self.extra_listeners if listener.port}
        if self._port:
            fixed.add(self._port)
        free = iter(_pick_ports(2 + len(self.extra_listeners), fixed))
        addresses = {
            "PLAINTEXT": self._port or next(free),
            "CONTROLLER": next(free),
        }
        for listener in self.extra_listeners:
            addresses[listener.name] = listener.port or next(free)
        self._addresses = addresses

    def server_properties(self) -> dict[str, str]:
        """The ``server.properties`` content for the current port assignment."""
        if not self._addresses or self._work_dir is None:
            raise BrokerError("ports are assigned on start")
        ports = self._addresses
        client_listeners = [("PLAINTEXT", "PLAINTEXT")] + [
            (listener.name, listener.security_protocol) for listener in self.extra_listeners
        ]
        listeners = [f"{name}://{LOOPBACK}:{ports[name]}" for name, _ in client_listeners]
        protocol_map = ["CONTROLLER:PLAINTEXT"] + [f"{name}:{proto}" for name, proto in client_listeners]
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            # Static quorum: no --standalone needed at format time.
            "controller.quorum.voters": f"1@{LOOPBACK}:{ports['CONTROLLER']}",
            "controller.listener.names": "CONTROLLER",
            "listeners": ",".join([*listeners, f"CONTROLLER://{LOOPBACK}:{ports['CONTROLLER']}"]),
            "advertised.listeners": ",".join(listeners),
            "listener.security.protocol.map": ",".join(protocol_map),
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self._work_dir / "data"),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "delete.topic.enable": "true",
        }
        props.update(self.extra_properties)
        return props

    def _write_config(self, work_dir: Path) -> Path:
        lines = ["# generated by kafka_sidecar_testing.broker"]
        lines += [
            f"{escape_property(k, key=True)}={escape_property(v, key=False)}"
            for k, v in self.server_properties().items()
        ]
        path = work_dir / "server.properties"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        (work_dir / "log4j2.properties").write_text(_resource_text("log4j2.properties"), encoding="utf-8")
        return path

    def _start_once(self, java: str, work_dir: Path, deadline: float) -> None:
        self._assign_ports()
        shutil.rmtree(work_dir / "data", ignore_errors=True)
        (work_dir / "logs").mkdir(exist_ok=True)
        config = self._write_config(work_dir)
        base = self._java_command(java, work_dir)

        began = time.monotonic()
        try:
            fmt = subprocess.run(
                [*base, "kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(config)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=max(1.0, deadline - began),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError("formatting the KRaft storage timed out") from exc
        self.timings["format"] = time.monotonic() - began
        if fmt.returncode != 0:
            raise BrokerError(
                f"kafka.tools.StorageTool format failed (exit {fmt.returncode}):\n{_tail(fmt.stdout + fmt.stderr)}"
            )

        log_path = work_dir / "kafka.log"
        self._log_handle = log_path.open("wb")
        began = time.monotonic()
        self._process = subprocess.Popen(
            [*base, "kafka.Kafka", str(config)],
            cwd=work_dir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_ready(log_path, deadline)
        self.timings["start"] = time.monotonic() - began

    def _wait_until_ready(self, log_path: Path, deadline: float, log_offset: int = 0) -> None:
        process = self._process
        assert process is not None
        marker = STARTED_MESSAGE.encode()
        while True:
            # Condition-based readiness wait: the broker logs STARTED_MESSAGE once it serves.
            if marker in log_path.read_bytes()[log_offset:] and self._port_accepts(self._addresses["PLAINTEXT"]):
                return
            code = process.poll()
            if code is not None:
                self._terminate()
                tail = self.log_tail()
                hint = (
                    f" ({_ADDRESS_IN_USE}: a listener port {self._addresses} is taken)"
                    if _ADDRESS_IN_USE in tail
                    else ""
                )
                raise BrokerError(f"Kafka exited with code {code} during start-up{hint}:\n{tail}")
            if time.monotonic() > deadline:
                self._terminate()
                raise BrokerError(f"Kafka did not report '{STARTED_MESSAGE}' in time:\n{self.log_tail()}")
            time.sleep(_POLL_INTERVAL)

    @staticmethod
    def _port_accepts(port: int) -> bool:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=1.0):
                return True
        except OSError:
            return False

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def _read_log(self) -> str:
        path = self.log_path
        if path is None or not path.is_file():
            return self._last_log
        return path.read_bytes().decode("utf-8", errors="replace")
