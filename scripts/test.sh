#!/usr/bin/env bash
# Lint, types and the whole test suite against a real Apache Kafka broker.
# On a fresh machine this installs everything it needs: the Python venv and dependencies, the Kafka
# broker jars from Maven Central (cached under ~/.cache/kafka-sidecar), and Debian's chromium and
# chromium-driver for the admin console's browser test. Extra arguments go to pytest.
# Each step says what it does and what it downloads; their timings are printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/steps.sh
source scripts/steps.sh
trap step_summary EXIT
LOGS="$(mktemp -d "${TMPDIR:-/tmp}/kafka-sidecar-test.XXXXXX")"
CACHE="${KAFKA_SIDECAR_CACHE:-$HOME/.cache/kafka-sidecar}"

PYTHON=${PYTHON:-python3}
step "Python environment (.venv)"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "kafka-sidecar needs Python >= 3.11")'
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  echo "new .venv: installing about 70 packages from PyPI (~300 MB installed; pip's cache makes later runs fast)"
fi
quietly "$LOGS/pip-self.log" .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip
# The runtime package with its test extras, and the test harness (broker, fixtures, test servers), which is a
# distribution of its own (testing/) so that the runtime wheel and the image never carry it.
quietly "$LOGS/pip.log" .venv/bin/python -m pip install --disable-pip-version-check -e '.[test,bench]' -e ./testing -c constraints.txt
echo "pip: $(pip_downloads "$LOGS/pip.log"); $(.venv/bin/python -m pip list --disable-pip-version-check 2>/dev/null | tail -n +3 | wc -l) packages installed, .venv is $(size_of .venv)"

step "quixstreams venv for the stream processor tests (.venv-streams)"
# quixstreams (the `streams` extra) pins confluent-kafka below the test extra's, so it gets a venv of its
# own, which the tests use through the processor's `python:` option.
if [ ! -x .venv-streams/bin/python ]; then
  "$PYTHON" -m venv .venv-streams
  echo "new .venv-streams: installing kafka-sidecar[streams] (quixstreams, confluent-kafka, rocksdict; ~130 MB)"
fi
quietly "$LOGS/pip-streams.log" .venv-streams/bin/python -m pip install --disable-pip-version-check -e '.[streams]'
echo "quixstreams $(.venv-streams/bin/python -c 'import importlib.metadata as m; print(m.version("quixstreams"))' 2>/dev/null), .venv-streams is $(size_of .venv-streams)"

step "Kafka broker runtime (Maven Central)"
if [ ! -d "$CACHE"/kafka-*/libs ] 2>/dev/null; then
  echo "downloading the Kafka broker jars once (~45 MB) into $CACHE"
fi
LIBS="$(.venv/bin/python -m kafka_sidecar_testing.broker_cli fetch)"
echo "broker jars: $LIBS ($(size_of "$LIBS"))"

step "browser for the admin console test (Debian chromium, chromium-driver)"
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  echo "present: $(chromium --version 2>/dev/null | head -n 1)"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing chromium and chromium-driver with apt-get (about 120 MB to download: chromium, chromium-common, chromium-driver; log: $LOGS/apt.log)"
  quietly "$LOGS/apt-update.log" apt-get update -q
  quietly "$LOGS/apt.log" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver
  grep -E '^(Need to get|After this operation)' "$LOGS/apt.log" || true
  echo "installed: $(chromium --version 2>/dev/null | head -n 1)"
else
  echo "chromium/chromedriver missing and not root: the browser tests will skip (and fail when CI is set)"
fi

step "toolchains for the Node.js and Go examples"
echo "node $(node --version 2>/dev/null || echo missing), $(go version 2>/dev/null || echo 'go missing') (standard library only: nothing to download)"

step "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
step "mypy --strict"
.venv/bin/mypy
step "pytest (the schema-registry tests download Apicurio Registry once, ~300 MB, into $CACHE)"
# Coverage floor: the line+branch coverage last measured, less a point for run-to-run spread (the whole
# suite gave 89.3-89.6 % on 2026-12-04, `CI=true ./scripts/test.sh`). It only ever rises: raise it when
# coverage grows, never lower it.
COVERAGE_FLOOR=88
if [ "$#" -eq 0 ]; then
  .venv/bin/pytest --cov --cov-report=term --cov-fail-under="$COVERAGE_FLOOR"
else
  .venv/bin/pytest "$@"  # a chosen subset: no coverage floor
fi
