#!/usr/bin/env bash
# Lint, types and the whole test suite against a real Apache Kafka broker.
# On a fresh machine this installs everything it needs: the Python venv and dependencies, and the
# Kafka broker jars from Maven Central (cached under ~/.cache/kafka-sidecar). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "kafka-sidecar needs Python >= 3.11")'
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,bench]'

echo "== Kafka broker runtime (Maven Central)"
.venv/bin/python -m kafka_sidecar.testing.broker fetch

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest "$@"
