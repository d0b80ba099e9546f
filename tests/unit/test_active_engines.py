"""The active consumer's librdkafka engine without a broker: the engine choice, its settings, its failures as
aiokafka's errors (so one instance code maps both engines to HTTP), and its records rendered like aiokafka's.
Its behaviour against a real broker is in tests/integration/test_active_*.py, run on both engines."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka import errors as kafka_errors
from aiokafka.structs import ConsumerRecord
from confluent_kafka import KafkaError, KafkaException, Message

from kafka_sidecar._config.model import ConsumerSettings, KafkaConfig
from kafka_sidecar._json import dumps
from kafka_sidecar._kafka.rdkafka_messages import grouped_records
from kafka_sidecar_handlers.active._instance import kafka_failure
from kafka_sidecar_handlers.active._instances import InstanceManager, ManagerSettings
from kafka_sidecar_handlers.active._rdkafka import (
    FetchedRecord,
    RdKafkaActiveConsumer,
    aiokafka_error,
    rdkafka_active_settings,
)
from kafka_sidecar_handlers.active._records import _render_at_once
from kafka_sidecar_handlers.active._requests import CreateRequest

SETTINGS = ManagerSettings(
    instance_timeout_s=600.0, max_instances=4, max_poll_records=250, auto_commit_interval_s=5.0,
    session_timeout_ms=7000, heartbeat_interval_ms=700, start_timeout_s=3.0,
)  # fmt: skip
REQUEST = CreateRequest(None, "binary", "json", "earliest", False, 1, 1000)


@pytest.mark.asyncio
async def test_the_consumer_engine_setting_picks_the_client_of_every_instance() -> None:
    default = InstanceManager(KafkaConfig(), SETTINGS).make_consumer("g", "a", REQUEST)
    assert isinstance(default, AIOKafkaConsumer)
    kafka = KafkaConfig(consumer=ConsumerSettings(engine="librdkafka"))
    chosen = InstanceManager(kafka, SETTINGS).make_consumer("g", "a", REQUEST)
    assert isinstance(chosen, RdKafkaActiveConsumer)


def test_librdkafka_settings_match_what_the_aiokafka_engine_is_given() -> None:
    kafka = KafkaConfig(bootstrap_servers="b1:9093", metadata_max_age_ms=60000)
    settings = rdkafka_active_settings(
        kafka, "orders-readers", "a", auto_offset_reset="earliest", session_timeout_ms=7000,
        heartbeat_interval_ms=700, max_poll_interval_ms=660000, max_poll_records=250,
    )  # fmt: skip
    options = InstanceManager(kafka, SETTINGS).consumer_options("orders-readers", "a", REQUEST)
    assert settings["group.id"] == options["group_id"] == "orders-readers"
    assert settings["enable.auto.commit"] is options["enable_auto_commit"] is False, "the instance commits itself"
    assert settings["enable.auto.offset.store"] is False
    assert settings["auto.offset.reset"] == options["auto_offset_reset"] == "earliest"
    assert settings["isolation.level"] == "read_uncommitted", "aiokafka's default, not librdkafka's"
    assert (settings["session.timeout.ms"], settings["heartbeat.interval.ms"]) == (7000, 700)
    assert settings["max.poll.interval.ms"] == options["max_poll_interval_ms"] == 660000
    assert settings["queued.min.messages"] == 500, "prefetch bounded by two polls' records"
    assert (settings["bootstrap.servers"], settings["client.id"]) == ("b1:9093", "kafka-sidecar-active-a")
    none = rdkafka_active_settings(
        kafka, "g", "a", auto_offset_reset="none", session_timeout_ms=1, heartbeat_interval_ms=1,
        max_poll_interval_ms=1, max_poll_records=1,
    )  # fmt: skip
    assert none["auto.offset.reset"] == "error", "librdkafka's word for 'none': fail instead of resetting"


@pytest.mark.parametrize(
    ("code", "kind", "status"),
    [
        (KafkaError.REBALANCE_IN_PROGRESS, kafka_errors.CommitFailedError, 409),
        (KafkaError.ILLEGAL_GENERATION, kafka_errors.CommitFailedError, 409),
        (KafkaError._STATE, kafka_errors.IllegalStateError, 409),
        (KafkaError._UNKNOWN_PARTITION, kafka_errors.IllegalStateError, 409),
        (KafkaError._TRANSPORT, kafka_errors.KafkaConnectionError, 503),
        (KafkaError._TIMED_OUT, kafka_errors.KafkaConnectionError, 503),
        (KafkaError.NOT_COORDINATOR, kafka_errors.NotCoordinatorError, 503),
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, kafka_errors.TopicAuthorizationFailedError, 502),
        (KafkaError._INVALID_ARG, kafka_errors.KafkaError, 502),
    ],
)
def test_librdkafka_failures_become_aiokafkas_errors_and_the_same_http_status(
    code: int, kind: type[Exception], status: int
) -> None:
    mapped = aiokafka_error(KafkaException(KafkaError(code, "why")), "commit failed")
    assert type(mapped) is kind
    assert "commit failed" in str(mapped)
    assert "why" in str(mapped)
    assert kafka_failure("commit failed", mapped).status == status


def test_anything_but_a_librdkafka_failure_is_left_as_it_is() -> None:
    error = ValueError("not Kafka's")
    assert aiokafka_error(error, "seek failed") is error


def test_librdkafka_records_render_exactly_like_aiokafkas() -> None:
    headers: list[tuple[str, str | bytes | None]] = [("trace", b"t1"), ("empty", None)]
    rows = [(0, 5, b"k1", b'{"n":1}', None), (1, 7, None, None, headers)]
    messages = [
        Message(topic="orders", partition=p, offset=o, key=k, value=v, headers=h, timestamp=(1, 1700 + o))
        for p, o, k, v, h in rows
    ]
    fetched = grouped_records(messages, FetchedRecord)
    assert list(fetched) == [TopicPartition("orders", 0), TopicPartition("orders", 1)]
    ours = [record for records in fetched.values() for record in records]
    theirs = [
        ConsumerRecord("orders", p, o, 1700 + o, 0, k, v, None, len(k or b""), len(v or b""),
                       [(name, value or b"") for name, value in h or []])
        for p, o, k, v, h in rows
    ]  # fmt: skip
    for key_format, value_format in [("binary", "binary"), ("binary", "json")]:
        mine = _render_at_once(ours, key_format, value_format)
        aiokafkas = _render_at_once(theirs, key_format, value_format)
        assert mine is not None
        assert aiokafkas is not None
        assert dumps(mine) == dumps(aiokafkas)
    assert ours[1].headers == (("trace", b"t1"), ("empty", b""))


@pytest.mark.asyncio
async def test_an_instance_that_cannot_reach_kafka_is_a_503_and_frees_its_name() -> None:
    from kafka_sidecar._errors import KafkaUnavailable
    from kafka_sidecar_testing.net import free_port

    kafka = KafkaConfig(bootstrap_servers=f"127.0.0.1:{free_port()}", consumer=ConsumerSettings(engine="librdkafka"))
    manager = InstanceManager(kafka, dataclasses.replace(SETTINGS, start_timeout_s=0.5))
    with pytest.raises(KafkaUnavailable, match="could not connect to Kafka"):
        await manager.create("g", REQUEST)
    assert len(manager) == 0, "the reserved name is released"


def test_librdkafka_errors_are_logged_once_per_code_and_interval(caplog: pytest.LogCaptureFixture) -> None:
    from kafka_sidecar.plugin import RdKafkaErrorLog

    log_error = RdKafkaErrorLog(logging.getLogger("probe"), "consumer instance a", interval_s=3600)
    with caplog.at_level(logging.WARNING, logger="probe"):
        for _ in range(3):
            log_error(KafkaError(KafkaError._TRANSPORT, "broker down"))
        log_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "all down"))
    assert [r.getMessage() for r in caplog.records] == [
        "consumer instance a: librdkafka: _TRANSPORT: broker down",
        "consumer instance a: librdkafka: _ALL_BROKERS_DOWN: all down",
    ]


def test_librdkafka_errors_left_out_are_counted_in_the_next_line(caplog: pytest.LogCaptureFixture) -> None:
    from confluent_kafka import KafkaError

    from kafka_sidecar.plugin import RdKafkaErrorLog

    now = [0.0]
    log_error = RdKafkaErrorLog(logging.getLogger("probe"), "consumer c", interval_s=30, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="probe"):
        for second in (0, 1, 2, 3, 31, 32, 70):
            now[0] = second
            log_error(KafkaError(KafkaError._TRANSPORT, "broker down"))
    assert [r.getMessage() for r in caplog.records] == [
        "consumer c: librdkafka: _TRANSPORT: broker down",
        "consumer c: librdkafka: _TRANSPORT: broker down (3 more since the last such line)",
        "consumer c: librdkafka: _TRANSPORT: broker down (1 more since the last such line)",
    ]
