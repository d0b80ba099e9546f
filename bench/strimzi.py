"""The Strimzi Kafka HTTP bridge (Java, Vert.x) as a peer in ``suite.py``: one JVM on a free loopback port
against the suite's broker, driven by the same load generator as the sidecar.

The bridge is not on Maven Central (``io/strimzi/kafka-bridge`` answers 404), and this repository commits no
third-party code or jars, so the suite runs a bridge distribution the caller built (``--strimzi DIR`` or
``$STRIMZI_BRIDGE_HOME``). From a checkout of github.com/strimzi/strimzi-kafka-bridge at the tag the issue
measured (every dependency comes from Maven Central; about 2.5 min on an empty ``~/.m2``)::

    git checkout 0.33.1
    mvn -B -DskipTests -Dcheckstyle.skip -Dspotbugs.skip -Dmaven.javadoc.skip -Dmaven.source.skip package
    # the distribution: target/kafka-bridge-0.33.1/kafka-bridge-0.33.1 (bin/, config/, libs/)

The bridge gets the sidecar's producer settings (acks, idempotence, linger, batch size), its consumer's
defaults (up to 500 records per ``GET .../records``, Kafka's ``max.poll.records``, as the sidecar's
``max_poll_records``), and its loggers at WARN (its default logs every request at INFO; the sidecar's access
log is off by default): the peer at its best, not at its defaults. The JVM runs with its own defaults (G1,
a quarter of RAM as the heap limit), as the bridge's start script runs it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from common import ServerProcess, wait_http_ready

from kafka_sidecar_testing.net import free_port
from kafka_sidecar_testing.process import stop_process

MAIN_CLASS = "io.strimzi.kafka.bridge.Application"
BRIDGE_JAR = "io.strimzi.kafka-bridge-*.jar"
HOME_ENV = "STRIMZI_BRIDGE_HOME"
QUIET_LOG4J = """\
name = BenchBridge
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %-5p [%t] %c{1} - %m%n
rootLogger.level = WARN
rootLogger.appenderRef.console.ref = STDOUT
"""


@dataclass(frozen=True, slots=True)
class BridgeProcess(ServerProcess):
    """A running bridge (its JVM's pid: CPU from ``/proc``, as for the sidecar) and the version it reports."""

    version: str = ""


def bridge_home(given: Path | None) -> Path | None:
    """``--strimzi DIR``, else ``$STRIMZI_BRIDGE_HOME``, else none (the suite then has no Strimzi rows); a
    directory without the bridge's jars is refused with what to build."""
    home = given or (Path(os.environ[HOME_ENV]) if os.environ.get(HOME_ENV) else None)
    if home is None:
        return None
    if not any((home / "libs").glob(BRIDGE_JAR)):
        raise SystemExit(f"{home}: no libs/{BRIDGE_JAR}; build the bridge as bench/strimzi.py says")
    return home


def bridge_version(home: Path) -> str:
    jar = next((home / "libs").glob(BRIDGE_JAR))
    return jar.stem.removeprefix("io.strimzi.kafka-bridge-")


def bridge_properties(bootstrap: str, port: int, producer: Mapping[str, object]) -> str:
    """The bridge's ``--config-file``: loopback only, the sidecar's producer settings (``producer_kwargs``
    of the shipped config, in aiokafka's names) in the Kafka client's names."""
    lines = {
        "bridge.id": "bench-bridge",
        "kafka.bootstrap.servers": bootstrap,
        "kafka.producer.acks": "all" if producer.get("acks") in ("all", -1) else str(producer.get("acks")),
        "kafka.producer.enable.idempotence": str(bool(producer.get("enable_idempotence", True))).lower(),
        "kafka.producer.linger.ms": str(producer.get("linger_ms", 5)),
        "kafka.producer.batch.size": str(producer.get("max_batch_size", 16384)),
        "http.host": "127.0.0.1",
        "http.port": str(port),
        "http.cors.enabled": "false",
        "http.consumer.enabled": "true",
        "http.producer.enabled": "true",
    }
    return "".join(f"{key}={value}\n" for key, value in lines.items())


@contextlib.contextmanager
def bridge_process(
    home: Path, bootstrap: str, work: Path, producer: Mapping[str, object], ready_timeout: float = 60
) -> Iterator[BridgeProcess]:
    """Run the bridge's JVM until the block exits (SIGTERM, then SIGKILL after 10 s)."""
    port = free_port()
    config, log4j, log_path = work / "strimzi.properties", work / "strimzi-log4j2.properties", work / "strimzi.log"
    config.write_text(bridge_properties(bootstrap, port, producer), encoding="utf-8")
    log4j.write_text(QUIET_LOG4J, encoding="utf-8")
    command = [
        "java", *os.environ.get("JAVA_OPTS", "").split(), f"-Dvertx.cacheDirBase={work / 'vertx-cache'}",
        f"-Dlog4j2.configurationFile=file:{log4j}", "-classpath", f"{home / 'libs'}/*", MAIN_CLASS,
        f"--config-file={config}",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http_ready(port, process, ready_timeout, "/healthy", f"the Strimzi bridge (log: {log_path})")
        yield BridgeProcess(f"http://127.0.0.1:{port}", port, log_path, process.pid, bridge_version(home))
    finally:
        stop_process(process, 10)
