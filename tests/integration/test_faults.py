"""The short fault suite (the long one is bench/faults/run.py): the broker is SIGKILLed and restarted on
the same data directory twice while a real sidecar process produces and delivers reactively; with each
producer engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from kafka_sidecar_testing.broker import KafkaBroker, ensure_kafka_runtime
from kafka_sidecar_testing.faults import FaultPlan, run_faults

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]


async def test_broker_kills_lose_nothing_acknowledged_and_leave_nothing_stuck(
    tmp_path: Path, kafka_bootstrap: str, producer_engine: str
) -> None:
    broker = KafkaBroker(ensure_kafka_runtime(), tmp_path / "broker")
    broker.start()
    plan = FaultPlan(
        kills=2, traffic_s=12, down_s=1.5, settle_timeout_s=45,
        producer_engine=producer_engine, consumer_engine=producer_engine,
    )  # fmt: skip
    try:
        report = await run_faults(broker, tmp_path, plan)
    finally:
        broker.stop()
    summary = report.summary()
    assert report.kills == 2, summary
    assert report.acked > 0, summary
    assert report.lost == 0, summary
    assert report.stuck == 0, summary
    assert report.undelivered == 0, summary
    assert report.delivered == report.present, summary
