"""Kafka's own perf tools (``org.apache.kafka:kafka-tools``, the broker's version) from Maven Central.

``kafka-producer-perf-test`` and ``kafka-consumer-perf-test`` are the classes
``org.apache.kafka.tools.ProducerPerformance`` and ``ConsumerPerformance`` of that jar; with the
broker runtime's jars (:func:`~kafka_sidecar_testing.kafka_runtime.ensure_kafka_runtime`) on the class
path they run as they do in a Kafka distribution. Used by ``bench/``; cached next to the broker jars.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Final

from kafka_sidecar_testing.kafka_runtime import (
    DEFAULT_KAFKA_VERSION,
    MAVEN_DEPENDENCY_PLUGIN,
    BrokerError,
    MissingToolError,
    ensure_kafka_runtime,
    find_java,
    find_maven,
)
from kafka_sidecar_testing.net import exclusive_lock

PRODUCER_PERFORMANCE: Final = "org.apache.kafka.tools.ProducerPerformance"
CONSUMER_PERFORMANCE: Final = "org.apache.kafka.tools.ConsumerPerformance"


def ensure_kafka_tools(version: str = DEFAULT_KAFKA_VERSION) -> Path:
    """The ``kafka-tools-<version>.jar`` path, fetched with Maven on first use."""
    libs = ensure_kafka_runtime(version)
    tools_dir = libs.parent / "tools"
    jar = tools_dir / f"kafka-tools-{version}.jar"
    if jar.is_file():
        return jar
    with exclusive_lock(libs.parent.parent / f".kafka-tools-{version}.lock"):
        if jar.is_file():
            return jar
        mvn = find_maven()
        if mvn is None:
            raise MissingToolError("Maven ('mvn') is needed once to fetch org.apache.kafka:kafka-tools")
        tools_dir.mkdir(parents=True, exist_ok=True)
        command = [
            mvn, "-B", "-q", "-Dstyle.color=never", f"{MAVEN_DEPENDENCY_PLUGIN}:copy",
            f"-Dartifact=org.apache.kafka:kafka-tools:{version}", f"-DoutputDirectory={tools_dir}",
        ]  # fmt: skip
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not jar.is_file():
            raise BrokerError(
                f"Maven could not fetch kafka-tools {version}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
    return jar


def perf_tool_command(main_class: str, args: list[str], version: str = DEFAULT_KAFKA_VERSION) -> list[str]:
    """A ``java`` command line running one of the perf tools with ``args``."""
    java = find_java()
    if java is None:
        raise MissingToolError("a JDK ('java') is needed to run Kafka's perf tools")
    jar = ensure_kafka_tools(version)
    libs = ensure_kafka_runtime(version)
    log4j = libs.parent / "tools" / "log4j2-tools.properties"
    if not log4j.is_file():
        log4j.write_text("rootLogger.level = WARN\n", encoding="utf-8")
    classpath = f"{jar}:{libs}/*"
    return [java, "-Xmx512m", f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath, main_class, *args]
