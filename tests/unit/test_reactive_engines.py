"""kafka.consumer.engine: the engine setting picks the reactive consumer's Kafka client; librdkafka's
messages become the same consumed records as aiokafka's (headers, missing timestamps, null key/value),
grouped per partition in order; librdkafka's settings mirror the reactive config; a missing extra is a
located config problem that ``kafka-sidecar check`` reports; the librdkafka engine's pause gate holds a
paused partition's records in order and pauses librdkafka only past its limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from confluent_kafka import KafkaError, Message

from kafka_sidecar._config.model import ConsumerSettings, KafkaConfig, SecuritySettings
from kafka_sidecar._errors import KafkaUnavailable
from kafka_sidecar._kafka.rdkafka_messages import (
    anchored_pattern,
    grouped_records,
    rd_partition,
    split_errors,
    to_records,
)
from kafka_sidecar._records import ConsumedRecord
from kafka_sidecar_handlers.reactive._aiokafka import AiokafkaClient
from kafka_sidecar_handlers.reactive._config import ReactiveConsumerConfig
from kafka_sidecar_handlers.reactive._partition import PartitionWorker
from kafka_sidecar_handlers.reactive._rdkafka import RdKafkaClient, rdkafka_consumer_settings
from kafka_sidecar_handlers.reactive._rdkafka_gate import FetchGate
from kafka_sidecar_handlers.reactive._runtime import ConsumerRuntime, engine_client

CONFIG = ReactiveConsumerConfig(group="g", backend_url="http://127.0.0.1:9", topics=("orders",))


def message(
    partition: int,
    offset: int,
    *,
    key: bytes | None = b'"k"',
    value: bytes | None = b"{}",
    headers: list[tuple[str, str | bytes | None]] | None = None,
    timestamp: tuple[int, int] = (1, 1700),
) -> Message:
    return Message(
        topic="orders", partition=partition, offset=offset, key=key, value=value, headers=headers, timestamp=timestamp
    )


def test_plain_messages_become_consumed_records_in_order() -> None:
    messages = [message(0, 5), message(0, 6, key=None, value=None), message(0, 7, timestamp=(0, -1))]
    assert to_records(messages, ConsumedRecord) == [
        ConsumedRecord("orders", 0, 5, 1700, b'"k"', b"{}"),
        ConsumedRecord("orders", 0, 6, 1700, None, None),  # null key and value (a tombstone) stay None
        ConsumedRecord("orders", 0, 7, -1, b'"k"', b"{}"),  # no timestamp from the broker: -1, as on aiokafka
    ]


def test_headers_are_kept_and_a_null_header_value_becomes_empty_bytes() -> None:
    messages = [message(0, 1), message(0, 2, headers=[("a", b"x"), ("b", None), ("a", b"y")])]
    records = to_records(messages, ConsumedRecord)
    assert records[0].headers == ()
    assert records[1].headers == (("a", b"x"), ("b", b""), ("a", b"y"))
    assert records[1].header("A") == b"y"
    assert records[1] == ConsumedRecord("orders", 0, 2, 1700, b'"k"', b"{}", (("a", b"x"), ("b", b""), ("a", b"y")))


def test_records_are_grouped_per_partition_keeping_each_partitions_order() -> None:
    interleaved = [message(1, 10), message(1, 11), message(0, 3), message(1, 12), message(2, 0), message(0, 4)]
    grouped = grouped_records(interleaved, ConsumedRecord)
    assert {tp: [r.offset for r in records] for tp, records in grouped.items()} == {
        TopicPartition("orders", 1): [10, 11, 12],
        TopicPartition("orders", 0): [3, 4],
        TopicPartition("orders", 2): [0],
    }
    assert all(isinstance(tp, TopicPartition) for tp in grouped)
    assert grouped_records([], ConsumedRecord) == {}


def test_error_events_are_told_apart_from_records() -> None:
    error = Message(error=KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
    records, errors = split_errors([message(0, 1), error, message(0, 2)])
    assert [m.offset() for m in records] == [1, 2]
    assert [e.code() for e in errors] == [KafkaError.UNKNOWN_TOPIC_OR_PART]
    plain = [message(0, 1)]
    assert split_errors(plain) == (plain, [])


def test_librdkafka_settings_mirror_the_reactive_config_and_the_shared_security(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret\n", encoding="utf-8")
    kafka = KafkaConfig(
        bootstrap_servers="b1:9093",
        metadata_max_age_ms=60000,
        security=SecuritySettings(
            protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256", sasl_username="u", sasl_password_file=str(password)
        ),
    )
    config = ReactiveConsumerConfig(
        group="orders-service", backend_url="http://127.0.0.1:9", topics=("orders",), auto_offset_reset="latest",
        isolation_level="read_uncommitted", session_timeout_ms=7000, heartbeat_interval_ms=700,
        max_partition_fetch_bytes=65536,
    )  # fmt: skip
    settings = rdkafka_consumer_settings("orders", config, kafka)
    assert settings["group.id"] == "orders-service"
    assert settings["enable.auto.commit"] is False, "only the runtime commits, and only final records"
    assert settings["enable.auto.offset.store"] is False
    assert (settings["auto.offset.reset"], settings["isolation.level"]) == ("latest", "read_uncommitted")
    assert (settings["session.timeout.ms"], settings["heartbeat.interval.ms"]) == (7000, 700)
    assert settings["max.partition.fetch.bytes"] == 65536
    assert settings["topic.metadata.refresh.interval.ms"] == 60000
    assert settings["queued.min.messages"] == 2 * config.fetch_max_records  # prefetch bounded by the config
    assert (settings["bootstrap.servers"], settings["client.id"]) == ("b1:9093", "kafka-sidecar-reactive-orders")
    assert (settings["security.protocol"], settings["sasl.mechanism"]) == ("SASL_SSL", "SCRAM-SHA-256")
    assert (settings["sasl.username"], settings["sasl.password"]) == ("u", "s3cret")
    assert rdkafka_consumer_settings("o", CONFIG, KafkaConfig())["isolation.level"] == "read_committed"


def test_a_topic_pattern_is_anchored_at_the_start_like_aiokafkas_match() -> None:
    assert anchored_pattern(r"orders\..*") == r"^(orders\..*)"
    assert anchored_pattern("^orders-[0-9]+$") == "^orders-[0-9]+$"


@pytest.mark.asyncio
async def test_the_engine_setting_picks_the_client() -> None:
    def no_workers(topic: str, partition: int) -> PartitionWorker:
        raise AssertionError("not started")

    default = engine_client(ConsumerRuntime("o", CONFIG, KafkaConfig(), no_workers))
    assert isinstance(default, AiokafkaClient)
    assert default.engine == "aiokafka"
    kafka = KafkaConfig(consumer=ConsumerSettings(engine="librdkafka"))
    chosen = engine_client(ConsumerRuntime("o", CONFIG, kafka, no_workers))
    assert isinstance(chosen, RdKafkaClient)
    assert chosen.engine == "librdkafka"


class RecordingClient:
    """Stands in for the librdkafka consumer under a FetchGate: records pause/resume/seek, knows positions."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []
        self.positions: dict[int, int] = {}

    def pause(self, partitions: list[Any]) -> None:
        self.calls += [("pause", p.partition, -1) for p in partitions]

    def resume(self, partitions: list[Any]) -> None:
        self.calls += [("resume", p.partition, -1) for p in partitions]

    def position(self, partitions: list[Any]) -> list[Any]:
        return [rd_partition(TopicPartition(p.topic, p.partition), self.positions.get(p.partition, -1001))
                for p in partitions]  # fmt: skip

    def seek(self, partition: Any) -> None:
        self.calls.append(("seek", partition.partition, partition.offset))


def fetched(partition: int, *offsets: int) -> dict[TopicPartition, list[ConsumedRecord]]:
    return {
        TopicPartition("orders", partition): [ConsumedRecord("orders", partition, o, 0, None, b"{}") for o in offsets]
    }


def offsets_of(out: dict[TopicPartition, list[ConsumedRecord]]) -> dict[int, list[int]]:
    return {tp.partition: [r.offset for r in records] for tp, records in out.items()}


def test_a_paused_partitions_records_are_held_in_order_and_handed_over_on_resume() -> None:
    rd = RecordingClient()
    gate = FetchGate(rd, hold_limit=4)
    p0, p1 = TopicPartition("orders", 0), TopicPartition("orders", 1)
    gate.apply({p0: True})
    assert offsets_of(gate.sift({**fetched(0, 1, 2), **fetched(1, 7)})) == {1: [7]}
    assert gate.holds(p0)
    assert not gate.holds(p1)
    assert not gate.releasable()
    assert offsets_of(gate.sift(fetched(0, 3))) == {}
    assert rd.calls == [], "below the limit nothing is paused in librdkafka (its prefetch is kept)"
    gate.apply({p0: False})
    assert gate.releasable()
    assert offsets_of(gate.sift(fetched(0, 4, 5))) == {0: [1, 2, 3, 4, 5]}  # held first, then the new ones
    assert not gate.holds(p0)
    assert rd.calls == []


def test_past_the_limit_librdkafka_pauses_and_a_resume_seeks_to_just_after_the_held_records() -> None:
    rd = RecordingClient()
    gate = FetchGate(rd, hold_limit=3)
    p0 = TopicPartition("orders", 0)
    gate.apply({p0: True})
    gate.sift(fetched(0, 10, 11, 12))
    assert rd.calls == [("pause", 0, -1)]
    gate.sift(fetched(0, 13))  # what was already consumed before the pause took effect is held too
    rd.positions[0] = 14
    gate.apply({p0: False})
    assert rd.calls[1:] == [("resume", 0, -1), ("seek", 0, 14)]  # the seek wakes librdkafka's fetcher
    assert offsets_of(gate.sift({})) == {0: [10, 11, 12, 13]}


def test_a_seek_drops_held_records_and_a_revoke_forgets_everything() -> None:
    rd = RecordingClient()
    gate = FetchGate(rd, hold_limit=2)
    p0, p1 = TopicPartition("orders", 0), TopicPartition("orders", 1)
    gate.apply({p0: True, p1: True})
    gate.sift({**fetched(0, 1, 2), **fetched(1, 5)})
    gate.drop_held(p0)
    assert not gate.holds(p0)
    assert rd.calls == [("pause", 0, -1), ("resume", 0, -1)]  # fetch again from wherever the seek goes
    assert offsets_of(gate.sift(fetched(0, 3))) == {}, "still paused by the runtime: held again"
    gate.forget([p0, p1])
    assert not gate.holds(p0)
    assert not gate.holds(p1)
    assert offsets_of(gate.sift({**fetched(0, 9), **fetched(1, 9)})) == {0: [9], 1: [9]}


class NoListener:
    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        raise AssertionError("never assigned")

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        raise AssertionError("never assigned")


@pytest.mark.asyncio
async def test_the_librdkafka_client_without_a_broker_fails_to_start_with_a_clear_error() -> None:
    from kafka_sidecar_handlers.reactive._rdkafka import rdkafka_client
    from kafka_sidecar_testing.net import free_port

    kafka = KafkaConfig(bootstrap_servers=f"127.0.0.1:{free_port()}", connect_timeout_ms=500)
    client = rdkafka_client("orders", CONFIG, kafka)
    client.subscribe(CONFIG.topics, None, NoListener())
    with pytest.raises(KafkaUnavailable, match="Kafka metadata request failed"):
        await client.start()  # the runtime retries with a back-off
    await client.stop()  # nothing started: nothing to close, no error
    with pytest.raises(KafkaUnavailable):
        await client.fetch(10)
