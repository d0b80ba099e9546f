"""A real Confluent-compatible schema registry for tests: Apicurio Registry from Maven Central.

``io.apicurio:apicurio-registry-app:<version>:tar.gz:all`` (a Quarkus fast-jar) is fetched once with
``mvn dependency:copy`` into ``$KAFKA_SIDECAR_CACHE`` (default ``~/.cache/kafka-sidecar``), unpacked,
and run with ``java -jar quarkus-run.jar`` on a free 127.0.0.1 port with in-memory storage. The
Confluent API is at ``http://127.0.0.1:<port>/apis/ccompat/v7``; it is ready when ``GET /subjects``
answers 200.

Version notes (verified 2026-11-26): 3.0.x cannot be fetched with Maven (its parent POM is missing
from Central); 3.3.x is complete but needs Java 21+, so a JDK 21+ is looked up beside the default
``java`` (``$KAFKA_SIDECAR_REGISTRY_JAVA``, ``$JAVA_HOME``, ``/usr/lib/jvm/*``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from kafka_sidecar_testing.broker import MissingToolError, default_cache_dir, find_maven
from kafka_sidecar_testing.net import exclusive_lock as _exclusive_lock
from kafka_sidecar_testing.net import free_port as _free_port

APICURIO_VERSION = "3.3.3"
CCOMPAT_PATH = "/apis/ccompat/v7"
JAVA_ENV = "KAFKA_SIDECAR_REGISTRY_JAVA"
MIN_JAVA = 21


class RegistryStartError(RuntimeError):
    """The registry did not become ready."""


def java_major(java: str) -> int | None:
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r'version "(\d+)', done.stderr + done.stdout)
    return int(found.group(1)) if found else None


def find_java(min_major: int = MIN_JAVA) -> str:
    """A ``java`` of at least ``min_major``; raises MissingToolError naming what was tried."""
    candidates = [os.environ.get(JAVA_ENV, "")]
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    candidates.append(shutil.which("java") or "")
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        candidates.extend(str(p / "bin" / "java") for p in sorted(jvm.iterdir(), reverse=True))
    tried = []
    for candidate in dict.fromkeys(c for c in candidates if c):
        major = java_major(candidate)
        tried.append(f"{candidate} ({major})")
        if major is not None and major >= min_major:
            return candidate
    raise MissingToolError(
        f"Apicurio Registry {APICURIO_VERSION} needs Java {min_major}+; tried {', '.join(tried) or 'nothing'}; "
        f"set ${JAVA_ENV}"
    )


def ensure_apicurio(version: str = APICURIO_VERSION, cache: Path | None = None) -> Path:
    """The unpacked application folder (holding ``quarkus-run.jar``), downloading it once."""
    base = (cache or default_cache_dir()) / "apicurio"
    app = base / f"app-{version}"
    if (app / "quarkus-run.jar").is_file():
        return app
    with _exclusive_lock(base / f".lock-{version}"):
        if (app / "quarkus-run.jar").is_file():  # another process finished it while we waited
            return app
        archive = base / f"apicurio-registry-app-{version}-all.tar.gz"
        if not archive.is_file():
            _download(version, base)
        partial = base / f"app-{version}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        with tarfile.open(archive) as tar:
            tar.extractall(partial, filter="data")
        partial.rename(app)
    return app


def _download(version: str, base: Path) -> None:
    mvn = find_maven()
    if mvn is None:
        raise MissingToolError("Maven ('mvn') is needed to fetch Apicurio Registry from Maven Central")
    command = [
        mvn, "-B", "-q", "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy",
        f"-Dartifact=io.apicurio:apicurio-registry-app:{version}:tar.gz:all", f"-DoutputDirectory={base}",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0 or not (base / f"apicurio-registry-app-{version}-all.tar.gz").is_file():
        raise RegistryStartError(f"mvn could not fetch Apicurio {version}: {done.stdout[-2000:]}{done.stderr[-2000:]}")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/subjects", timeout=2) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


class ApicurioRegistry:
    """One Apicurio process with in-memory storage; ``url`` is the ccompat base URL."""

    def __init__(self, app: Path, java: str, work_dir: Path) -> None:
        self._app = app
        self._java = java
        self._work_dir = work_dir
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.startup_seconds = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{CCOMPAT_PATH}"

    @property
    def log_path(self) -> Path:
        return self._work_dir / "apicurio.log"

    def start(self, timeout: float = 120.0) -> None:
        self.port = _free_port()
        self._work_dir.mkdir(parents=True, exist_ok=True)
        command = [
            self._java, "-Xms64m", "-Xmx512m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
            f"-Dquarkus.http.port={self.port}", "-Dquarkus.http.host=127.0.0.1",
            f"-Dquarkus.management.port={_free_port()}", "-Dquarkus.management.host=127.0.0.1",
            "-Dquarkus.log.level=WARN", "-jar", str(self._app / "quarkus-run.jar"),
        ]  # fmt: skip
        began = time.monotonic()
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self._work_dir)
        deadline = began + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RegistryStartError(f"Apicurio exited with {self._process.returncode}: {self.log_tail()}")
            if _ready(self.url):
                self.startup_seconds = time.monotonic() - began
                return
            time.sleep(0.2)  # polling the readiness condition, not synchronising on time
        self.stop()
        raise RegistryStartError(f"Apicurio not ready after {timeout}s: {self.log_tail()}")

    def log_tail(self, limit: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-limit:]
        return ""

    def stop(self) -> None:
        """Stop the process (the registry can be stopped mid-test to check registry-down behaviour)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def apicurio_registry(work_dir: Path, version: str = APICURIO_VERSION) -> Iterator[ApicurioRegistry]:
    registry = ApicurioRegistry(ensure_apicurio(version), find_java(), work_dir)
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()
