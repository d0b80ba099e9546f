"""kafka.producer.engine: the engine setting picks the producer service, librdkafka's settings mirror
aiokafka's, a missing extra is a located config problem; Kafka's murmur2 partitioner."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from kafka_sidecar._blueprint import build_blueprint
from kafka_sidecar._config.model import KafkaConfig, ProducerSettings, SecuritySettings
from kafka_sidecar._errors import ConfigError
from kafka_sidecar._kafka.partitioner import Murmur2Partitioner, murmur2, partition_for
from kafka_sidecar._kafka.producer import ProducerService
from kafka_sidecar._kafka.rdkafka import RdKafkaProducerService, producer_service, rdkafka_producer_settings
from kafka_sidecar.cli import main

# Kafka's own test vectors (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java, testMurmur2),
# as the signed 32-bit ints Java prints.
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def test_the_engine_setting_picks_the_producer_service() -> None:
    assert type(producer_service(KafkaConfig())) is ProducerService
    rd = producer_service(KafkaConfig(producer=ProducerSettings(engine="librdkafka")), "internal", patient=True)
    assert isinstance(rd, RdKafkaProducerService)
    assert rd.engine == "librdkafka"
    assert rd._patient


def test_librdkafka_settings_mirror_the_aiokafka_ones(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret\n", encoding="utf-8")
    kafka = KafkaConfig(
        bootstrap_servers="b1:9093,b2:9093",
        producer=ProducerSettings(acks="1", linger_ms=7, max_batch_size=65536, request_timeout_ms=9000),
        security=SecuritySettings(
            protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="u",
            sasl_password_file=str(password), ssl_check_hostname=False,
        ),
    )  # fmt: skip
    settings = rdkafka_producer_settings(kafka, "producer")
    assert settings["bootstrap.servers"] == "b1:9093,b2:9093"
    assert (settings["acks"], settings["linger.ms"], settings["batch.size"]) == ("1", 7, 65536)
    assert settings["request.timeout.ms"] == 9000
    assert settings["message.timeout.ms"] == 300_000, "a record lives as long as an Idempotency-Key waits for it"
    assert settings["enable.idempotence"] is True
    assert settings["partitioner"] == "murmur2_random", "the Java client's partitioner, as aiokafka's"
    assert settings["security.protocol"] == "SASL_SSL"
    assert (settings["sasl.mechanism"], settings["sasl.username"], settings["sasl.password"]) == (
        "SCRAM-SHA-512", "u", "s3cret",
    )  # fmt: skip
    assert settings["ssl.endpoint.identification.algorithm"] == "none"
    assert rdkafka_producer_settings(KafkaConfig(), "producer")["acks"] == "all"


@pytest.mark.parametrize(
    ("section", "line"),
    [
        ("producer", "  producer:\n    linger_ms: 5\n    engine: librdkafka\n"),
        ("consumer", "  consumer:\n    engine: librdkafka\n"),
    ],
)
def test_a_librdkafka_engine_without_its_extra_is_a_located_config_problem(
    section: str, line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """kafka.producer.engine and kafka.consumer.engine alike: refused at load and by `check`, at the section."""
    for loaded in [m for m in sys.modules if m == "confluent_kafka" or m.startswith("confluent_kafka.")]:
        monkeypatch.delitem(sys.modules, loaded)
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)  # as on a machine without the extra
    path = tmp_path / "chains.yml"
    path.write_text(
        "kafka:\n  bootstrap_servers: 127.0.0.1:9\n" + line
        + 'paths:\n  - {path: "/producers/{topic}", method: POST, exec: [producer]}\n',
        encoding="utf-8",
    )  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        build_blueprint(path, env={})
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.path) == (str(path), 4, f"kafka.{section}")
    assert problem.column > 0
    assert "pip install 'kafka-sidecar[librdkafka]'" in problem.message
    assert main(["check", str(path)]) == 2
    assert "kafka-sidecar[librdkafka]" in capsys.readouterr().err


def test_murmur2_gives_the_java_clients_hashes() -> None:
    for key, java in JAVA_MURMUR2.items():
        assert murmur2(key) == java & 0xFFFFFFFF, key


@given(st.binary(max_size=200))
def test_murmur2_equals_aiokafkas(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


@given(st.binary(min_size=1, max_size=64), st.integers(min_value=1, max_value=64))
def test_the_partitioner_picks_the_java_clients_partition_cached_or_not(key: bytes, partitions: int) -> None:
    partitioner = Murmur2Partitioner(cached_keys=4)
    expected = (aiokafka_murmur2(key) & 0x7FFFFFFF) % partitions
    assert partition_for(key, partitions) == expected
    every = list(range(partitions))
    assert partitioner(key, every, every) == expected
    assert partitioner(key, every, every[:1]) == expected, "a key's partition ignores availability"


def test_unkeyed_records_go_to_an_available_partition() -> None:
    partitioner = Murmur2Partitioner()
    assert {partitioner(None, [0, 1, 2], [2]) for _ in range(20)} == {2}
    assert {partitioner(None, [0, 1, 2], []) for _ in range(200)} == {0, 1, 2}
