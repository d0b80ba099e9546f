"""ksqlDB handler settings and stream parsing, without a broker: what ``kafka-sidecar check`` refuses."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kafka_sidecar._blueprint import build_blueprint
from kafka_sidecar._errors import ConfigError, ValidationFailed
from kafka_sidecar_handlers.reactive.ksqldb._active import parse_request
from kafka_sidecar_handlers.reactive.ksqldb._config import KsqlDbConsumerConfig, KsqlDbQueryConfig, not_row_preserving
from kafka_sidecar_handlers.reactive.ksqldb._consumer import created_name
from kafka_sidecar_handlers.reactive.ksqldb._rows import StreamError, parse_header, parse_line, with_source_offsets

DELIVERY = "{group: g, backend_url: 'http://127.0.0.1:8080', backend_path: /rows}"


def problems(tmp_path: Path, config: str) -> list[str]:
    path = tmp_path / "chains.yml"
    body = textwrap.indent(textwrap.dedent(config), "      ")
    text = f"handlers:\n  views:\n    use: ksqldb-consumer\n    config:\n{body}consumers:\n  views: {{exec: [views]}}\n"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        build_blueprint(path, env={})
    return [str(p).replace(str(path), "chains.yml") for p in caught.value.problems]


@pytest.mark.parametrize(
    "clause", ["GROUP BY ID", "WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY ID", "JOIN B ON A.ID = B.ID"]
)
def test_check_rejects_resume_for_queries_that_do_not_preserve_rows(tmp_path: Path, clause: str) -> None:
    found = problems(
        tmp_path,
        f"""\
        mode: push
        resume: source-offsets
        query: "SELECT ID, COUNT(*) FROM A {clause} EMIT CHANGES;"
        delivery: {DELIVERY}
        """,
    )
    assert len(found) == 1
    assert found[0].startswith("chains.yml:")
    assert "resume: source-offsets needs a row-preserving query" in found[0]


def test_check_reports_wrong_delivery_keys_with_their_positions(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
        query: "CREATE STREAM S2 AS SELECT * FROM S EMIT CHANGES;"
        sink_topic: s2
        delivery: {group: g, backend_url: 'http://127.0.0.1:8080', batch_max_recrods: 5}
        """,
    )
    assert len(found) == 1
    assert "delivery.batch_max_recrods unknown key" in found[0]
    assert "did you mean 'batch_max_records'" in found[0]


def test_check_needs_matching_query_per_mode_and_one_password_source(tmp_path: Path) -> None:
    assert (
        "mode sink: query must be a persistent query"
        in problems(
            tmp_path,
            f"""\
        query: "SELECT * FROM S EMIT CHANGES;"
        sink_topic: s
        delivery: {DELIVERY}
        """,
        )[0]
    )
    assert (
        "mode push: query must be a push query"
        in problems(
            tmp_path,
            f"""\
        mode: push
        query: "SELECT * FROM S;"
        delivery: {DELIVERY}
        """,
        )[0]
    )
    assert (
        "basic_auth_password or basic_auth_password_file, not both"
        in problems(
            tmp_path,
            f"""\
        mode: push
        query: "SELECT * FROM S EMIT CHANGES;"
        basic_auth_user: u
        basic_auth_password: secret-one
        basic_auth_password_file: /etc/hostname
        delivery: {DELIVERY}
        """,
        )[0]
    )


def test_push_mode_delivers_under_the_logical_topic_of_the_consumer() -> None:
    config = KsqlDbConsumerConfig(
        mode="push", query="SELECT A FROM S EMIT CHANGES;", delivery={"backend_url": "http://127.0.0.1:1"}
    )
    reactive = config.reactive_for("views")
    assert reactive.topics == ("ksqldb.views",)
    assert reactive.isolation_level == "read_committed"
    assert reactive.group == "ksqldb-push"


def test_row_preserving_detection_ignores_string_literals() -> None:
    assert not_row_preserving("SELECT * FROM S WHERE NOTE = 'group by join' EMIT CHANGES;") is None
    assert not_row_preserving("select a from s group  by a emit changes;") == "GROUP BY"


def test_source_offsets_are_added_to_the_select_list() -> None:
    assert with_source_offsets("SELECT A, B FROM S WHERE C = 'x from y' EMIT CHANGES;") == (
        "SELECT A, B, ROWPARTITION, ROWOFFSET FROM S WHERE C = 'x from y' EMIT CHANGES;"
    )


def test_stream_lines_rows_tokens_and_in_stream_errors() -> None:
    header = parse_header('{"queryId":"q1","columnNames":["A"],"columnTypes":["STRING"]}')
    assert header.column_names == ("A",)
    assert parse_line('["x"]') == ["x"]
    assert parse_line('{"continuationToken":"abc"}') is None
    assert parse_line("") is None
    with pytest.raises(StreamError) as caught:
        parse_line('{"@type":"generic_error","error_code":50000,"message":"boom"}')
    assert (caught.value.code, caught.value.message) == (50000, "boom")


def test_java_sidecar_request_body() -> None:
    sql, push, properties = parse_request(
        {"query": "SELECT * FROM T WHERE K = \\'a\\'", "queryType": "push", "offset": "earliest",
         "deserializationError": True, "tableScanEnable": False}
    )  # fmt: skip
    assert sql == "SELECT * FROM T WHERE K = 'a';"
    assert push is True
    assert properties == {
        "auto.offset.reset": "earliest",
        "fail.on.deserialization.error": True,
        "ksql.query.pull.table.scan.enabled": False,
    }
    with pytest.raises(ValidationFailed) as caught:
        parse_request({"query": ""})
    assert caught.value.field == "query"


def test_created_name() -> None:
    assert created_name("create stream if not exists views_by_user as select ...") == "VIEWS_BY_USER"
    assert created_name("CREATE OR REPLACE TABLE `MixedCase` AS SELECT ...") == "MixedCase"


def test_the_documented_configuration_is_valid(tmp_path: Path) -> None:
    docs = Path(__file__).parents[2] / "docs" / "ksqldb-consumer.md"
    example = docs.read_text(encoding="utf-8").split("```yaml\n", 1)[1].split("```", 1)[0]
    password = tmp_path / "password"
    password.write_text("not-a-real-password\n", encoding="utf-8")
    path = tmp_path / "chains.yml"
    chains = "chains:\n  default: []\n  default-consumer: []\n"
    path.write_text(example.replace("/run/secrets/ksqldb-password", str(password)) + chains, encoding="utf-8")
    blueprint = build_blueprint(path, env={"KSQLDB_USER": "reader"})
    config = blueprint.handlers["pageviews-ksql"].config
    assert isinstance(config, KsqlDbConsumerConfig)
    assert config.reactive_for("pageviews").topics == ("pageviews-by-user",)
    assert config.password() == "not-a-real-password"


def test_http2_without_h2_is_a_config_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "h2" else real(name, *a))
    with pytest.raises(ValueError, match=r"kafka-sidecar\[ksqldb\]"):
        KsqlDbQueryConfig()
    assert KsqlDbQueryConfig(http_version="1.1").http_version == "1.1"
