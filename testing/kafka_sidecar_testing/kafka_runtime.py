"""The Apache Kafka broker runtime: jars resolved from Maven Central with Maven, cached on disk."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Final

from kafka_sidecar_testing.net import exclusive_lock as _exclusive_lock

DEFAULT_KAFKA_VERSION: Final = "4.4.0"
"""Newest ``org.apache.kafka:kafka_2.13`` release verified to resolve from Maven Central."""
CACHE_ENV: Final = "KAFKA_SIDECAR_CACHE"
MAVEN_DEPENDENCY_PLUGIN: Final = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
_MARKER_NAME: Final = ".complete"
_RUNTIME_RESOURCES: Final = "kafka-runtime"
_VERSION_RE: Final = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.\-]*$")
_ANSI_ESCAPE: Final = re.compile(r"\x1b\[[0-9;]*m")
_TAIL_CHARS: Final = 6000


class BrokerError(RuntimeError):
    """The test broker (or its runtime download) could not be provided."""


class MissingToolError(BrokerError):
    """A required external tool (``java`` or ``mvn``) is not installed."""


# --------------------------------------------------------------------------------------------
# Runtime download
# --------------------------------------------------------------------------------------------


def find_java() -> str | None:
    """Path of the ``java`` executable: ``$JAVA_HOME/bin/java`` if present, else ``java`` on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("java")


def find_maven() -> str | None:
    """Path of the ``mvn`` executable on PATH."""
    return shutil.which("mvn")


def default_cache_dir() -> Path:
    """Base cache directory: ``$KAFKA_SIDECAR_CACHE``, else ``$XDG_CACHE_HOME/kafka-sidecar``,
    else ``~/.cache/kafka-sidecar``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "kafka-sidecar"


def _check_version(version: str) -> None:
    if not _VERSION_RE.fullmatch(version):
        raise ValueError(f"not a Kafka version: {version!r}")


def _resource_text(name: str) -> str:
    try:
        return (
            resources.files(__package__ or "kafka_sidecar_testing")
            .joinpath(_RUNTIME_RESOURCES, name)
            .read_text(encoding="utf-8")
        )
    except FileNotFoundError as exc:
        raise BrokerError(
            f"the Maven broker harness file {_RUNTIME_RESOURCES}/{name} is missing from this kafka-sidecar-testing "
            "install: reinstall it from the source checkout (pip install -e ./testing), or point "
            "KAFKA_SIDECAR_BOOTSTRAP at a broker of your own"
        ) from exc


def _tail(text: str, limit: int = _TAIL_CHARS) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _runtime_complete(version_dir: Path, libs: Path, version: str) -> bool:
    return (version_dir / _MARKER_NAME).is_file() and (libs / f"kafka_2.13-{version}.jar").is_file()


def ensure_kafka_runtime(
    version: str = DEFAULT_KAFKA_VERSION,
    cache_dir: Path | None = None,
    *,
    timeout: float = 1800.0,
) -> Path:
    """Return a directory holding the broker's runtime jars, downloading them on first use.

    The jars land in ``<cache_dir>/kafka-<version>/libs`` (``cache_dir`` defaults to
    :func:`default_cache_dir`). A marker file is written only after Maven succeeded, so an
    interrupted download is redone on the next call. Raises :class:`MissingToolError` if
    ``mvn`` is needed but missing, and :class:`BrokerError` with Maven's output on failure.
    """
    _check_version(version)
    base = (cache_dir if cache_dir is not None else default_cache_dir()).expanduser().resolve()
    version_dir = base / f"kafka-{version}"
    libs = version_dir / "libs"
    marker = version_dir / _MARKER_NAME
    if _runtime_complete(version_dir, libs, version):
        return libs

    with _exclusive_lock(base / f".kafka-{version}.lock"):
        if _runtime_complete(version_dir, libs, version):  # another process finished meanwhile
            return libs
        mvn = find_maven()
        if mvn is None:
            raise MissingToolError(
                f"Maven ('mvn') is not on PATH; it is needed once to download Kafka {version} into {libs}"
            )
        marker.unlink(missing_ok=True)
        shutil.rmtree(libs, ignore_errors=True)
        version_dir.mkdir(parents=True, exist_ok=True)
        (version_dir / "pom.xml").write_text(_resource_text("pom.xml"), encoding="utf-8")
        command = [
            mvn,
            "-B",
            "-q",
            "-U",  # re-check artifacts whose earlier download failed (Maven caches failures)
            "-Dstyle.color=never",
            f"-Dkafka.version={version}",
            f"{MAVEN_DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}",
        ]
        try:
            result = subprocess.run(
                command,
                cwd=version_dir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(f"Maven did not finish fetching Kafka {version} within {timeout:.0f}s") from exc
        output = _ANSI_ESCAPE.sub("", (result.stdout or "") + (result.stderr or ""))
        if result.returncode != 0:
            raise BrokerError(
                f"Maven failed (exit {result.returncode}) fetching Kafka {version} into {libs}.\n"
                f"Command: {' '.join(command)}\n--- Maven output (tail) ---\n{_tail(output)}"
            )
        if not (libs / f"kafka_2.13-{version}.jar").is_file():
            raise BrokerError(
                f"Maven succeeded but {libs} has no kafka_2.13-{version}.jar.\n"
                f"--- Maven output (tail) ---\n{_tail(output)}"
            )
        jars = sorted(p.name for p in libs.glob("*.jar"))
        marker.write_text("\n".join(jars) + "\n", encoding="utf-8")
    return libs


# --------------------------------------------------------------------------------------------
# Broker process
# --------------------------------------------------------------------------------------------
