"""The benchmark suite's Strimzi peer gets the sidecar's producer settings, listens on loopback only, and its
rows give the ``>= 2x Strimzi`` verdicts. The bridge itself is not built here (its source is not on Maven
Central): bench/strimzi.py says how; docs/benchmarks.md has a run with it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kafka_sidecar import build_blueprint
from kafka_sidecar._kafka.options import producer_kwargs

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from report import STRIMZI, check_goals  # noqa: E402
from strimzi import bridge_home, bridge_properties  # noqa: E402
from suite import SHIPPED, Row  # noqa: E402


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_the_bridge_produces_with_the_shipped_configs_producer_settings() -> None:
    kafka = build_blueprint(REPO / "chains.yml", env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}).config.kafka
    props = _properties(bridge_properties("127.0.0.1:9092", 8089, producer_kwargs(kafka, "bench")))
    assert props["kafka.bootstrap.servers"] == "127.0.0.1:9092"
    assert props["kafka.producer.acks"] == "all"
    assert props["kafka.producer.enable.idempotence"] == "true"
    assert props["kafka.producer.linger.ms"] == str(kafka.producer.linger_ms)
    assert props["kafka.producer.batch.size"] == str(kafka.producer.max_batch_size) == "131072"
    assert (props["http.host"], props["http.port"]) == ("127.0.0.1", "8089")


def test_a_folder_without_the_bridge_jar_is_refused_with_what_to_build(tmp_path: Path) -> None:
    (tmp_path / "libs").mkdir()
    with pytest.raises(SystemExit, match=r"build the bridge as bench/strimzi\.py says"):
        bridge_home(tmp_path)
    (tmp_path / "libs" / "io.strimzi.kafka-bridge-0.33.1.jar").write_bytes(b"")
    assert bridge_home(tmp_path) == tmp_path


def test_the_strimzi_goal_is_judged_on_records_per_second() -> None:
    def row(scenario: str, system: str, records: int, cpu_seconds: float) -> Row:
        return Row(scenario, system, 1, records=records, seconds=1.0, cpu_seconds=cpu_seconds)

    rows = [
        row("produce100", SHIPPED, 60_000, 1.0), row("produce100", STRIMZI, 20_000, 1.2),
        row("active-binary", SHIPPED, 100_000, 0.5), row("active-binary", STRIMZI, 75_000, 0.8),
        row("active-binary", f"{SHIPPED} (uvicorn)", 160_000, 0.6),
    ]  # fmt: skip
    verdicts = [line for line in check_goals(rows) if " strimzi: " in line]
    assert verdicts[0].startswith("MET  strimzi: produce100 3.00x the records/s at 3.60x less CPU"), verdicts
    assert verdicts[1].startswith("MISS strimzi: active-binary 1.33x"), verdicts
    assert verdicts[2].startswith("MET  strimzi: active-binary sidecar shipped (uvicorn) 2.13x"), verdicts
    assert verdicts[3].startswith("n/a  strimzi: active-json"), verdicts
