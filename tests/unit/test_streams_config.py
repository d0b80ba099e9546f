"""Stream-processor config: check-time problems with locations, and the Kafka settings handed to the child."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kafka_sidecar._blueprint import build_blueprint
from kafka_sidecar._config.model import KafkaConfig, SecuritySettings
from kafka_sidecar._errors import ConfigError
from kafka_sidecar._kafka.client_settings import librdkafka_settings
from kafka_sidecar._kafka.java_properties import properties_text
from kafka_sidecar_handlers.streams._config import RestartPolicy, StreamProcessorConfig
from kafka_sidecar_handlers.streams._offsets import is_internal_topic
from kafka_sidecar_handlers.streams._settings import java_properties

CHAINS = """\
handlers:
  totals:
    use: stream-processor
    config:
      application_id: totals
      app: "apps.totals:build"
      output_topics: [order-counts, order-totals]
      expose: {expose}
  results:
    use: reactive-consumer
    config: {{topics: [order-counts], group: results, backend_url: "http://127.0.0.1:1"}}
consumers:
  totals: {{exec: [totals]}}
  results: {{exec: [results]}}
"""


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "chains.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        build_blueprint(path, env={})
    return [str(p).replace(str(path), "chains.yml") for p in caught.value.problems]


def test_an_output_topic_without_a_consumer_is_a_check_error_with_its_location(tmp_path: Path) -> None:
    assert _problems(tmp_path, CHAINS.format(expose="true")) == [
        "chains.yml:7:37  handlers.totals.config.output_topics[1]  output topic 'order-totals' has no consumer in"
        " this sidecar: add a reactive-consumer reading it (isolation_level: read_committed) or set expose: false"
    ]


def test_expose_false_allows_outputs_meant_for_other_services(tmp_path: Path) -> None:
    path = tmp_path / "chains.yml"
    path.write_text(CHAINS.format(expose="false"), encoding="utf-8")
    blueprint = build_blueprint(path, env={})
    assert [c.name for c in blueprint.consumers] == ["totals", "results"]


def test_runtime_settings_are_validated(tmp_path: Path) -> None:
    text = """\
handlers:
  p: {use: stream-processor, config: {application_id: p, runtime: command}}
consumers:
  p: {exec: [p]}
"""
    [problem] = _problems(tmp_path, text)
    assert problem.startswith("chains.yml:2:38  handlers.p.config")
    assert "runtime command needs 'command'" in problem


def test_restart_backoff_doubles_up_to_the_cap() -> None:
    policy = RestartPolicy(initial_backoff_ms=100, max_backoff_ms=500)
    assert [policy.backoff_s(n) for n in (1, 2, 3, 4, 10)] == [0.1, 0.2, 0.4, 0.5, 0.5]


def test_sasl_ssl_settings_reach_both_client_dialects(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    security = SecuritySettings(
        protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="svc", sasl_password='p"w=1',
        ssl_cafile=str(ca),
    )  # fmt: skip
    kafka = KafkaConfig(bootstrap_servers="b:9093", security=security)
    rd = librdkafka_settings(kafka, "totals")
    assert rd["sasl.password"] == 'p"w=1'
    assert rd["ssl.ca.location"] == str(ca)
    assert rd["ssl.endpoint.identification.algorithm"] == "https"
    config = StreamProcessorConfig(application_id="totals", runtime="command", command=("java",))
    props = java_properties(kafka, config, tmp_path)
    assert props["sasl.jaas.config"] == (
        'org.apache.kafka.common.security.scram.ScramLoginModule required username="svc" password="p\\"w=1";'
    )
    assert props["processing.guarantee"] == "exactly_once_v2"
    assert props["ssl.truststore.type"] == "PEM"
    text = properties_text(props)
    assert 'password="p\\\\"w=1";' in text  # java.util.Properties: '\' escaped; '=' in a value needs none
    assert "bootstrap.servers=b:9093\n" in text


def test_check_reports_programs_run_could_not_start(tmp_path: Path) -> None:
    text = """\
handlers:
  a: {use: stream-processor, config: {application_id: a, app: "missing/app.py:build", expose: false}}
  b: {use: stream-processor, config: {application_id: b, app: "m:f", python: /no/such/python, expose: false}}
  c: {use: stream-processor, config: {application_id: c, runtime: command, command: [no-such-program-x]}}
consumers:
  a: {exec: [a]}
  b: {exec: [b]}
  c: {exec: [c]}
"""
    problems = _problems(tmp_path, text)
    assert len(problems) == 3
    assert "app: no file 'missing/app.py'" in problems[0]
    assert "python: '/no/such/python' is not an executable interpreter" in problems[1]
    assert "command: 'no-such-program-x' is not an executable program" in problems[2]
    assert all(p.startswith(f"chains.yml:{line}:") for p, line in zip(problems, (2, 3, 4), strict=True))


def test_reset_deletes_only_the_engines_internal_topics_of_its_own_application() -> None:
    assert is_internal_topic("changelog__totals--orders--default", "totals")
    assert is_internal_topic("repartition__totals--orders--by_customer", "totals")
    assert is_internal_topic("totals-KSTREAM-AGGREGATE-STATE-STORE-0000000001-changelog", "totals")
    assert is_internal_topic("totals-KSTREAM-KEY-SELECT-0000000002-repartition", "totals")
    assert not is_internal_topic("changelog__totals-v2--orders--default", "totals")
    assert not is_internal_topic("totals", "totals")
    assert not is_internal_topic("totals-output", "totals")
    assert not is_internal_topic("order-totals-changelog", "totals")


def test_a_command_processor_gets_the_token_endpoint_allowed_through_java_tool_options() -> None:
    from kafka_sidecar_handlers.streams._launch import command_launch

    security = SecuritySettings(
        protocol="SASL_SSL",
        sasl_mechanism="OAUTHBEARER",
        oauth_token_endpoint="https://idp.test/token",
        oauth_client_id="svc",
        oauth_client_secret="x",
    )
    kafka = KafkaConfig(bootstrap_servers="b:9093", security=security)
    allowed = "-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=https://idp.test/token"
    config = StreamProcessorConfig(application_id="app", runtime="command", command=("java", "{properties}"))
    launch = command_launch("p", config, kafka)
    try:
        assert launch.env["JAVA_TOOL_OPTIONS"].split() == [*_given_options(), allowed]
    finally:
        assert launch.cleanup is not None
        launch.cleanup()
    own = StreamProcessorConfig(
        application_id="app",
        runtime="command",
        command=("java", "{properties}"),
        env={"JAVA_TOOL_OPTIONS": "-Xmx1g -Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=https://other/token"},
    )
    launch = command_launch("p", own, kafka)
    try:  # the deployment's own list is left alone
        assert launch.env["JAVA_TOOL_OPTIONS"] == own.env["JAVA_TOOL_OPTIONS"]
    finally:
        assert launch.cleanup is not None
        launch.cleanup()


def _given_options() -> list[str]:
    return os.environ.get("JAVA_TOOL_OPTIONS", "").split()
