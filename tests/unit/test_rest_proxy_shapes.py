"""REST Proxy pieces without a broker: error media type, route shapes, v3 record parsing, x-error-code."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from kafka_sidecar._errors import ValidationFailed
from kafka_sidecar._http.problems import error_media_type
from kafka_sidecar.plugin import openapi_path
from kafka_sidecar_handlers.metadata._openapi import operation as metadata_operation
from kafka_sidecar_handlers.v3._produce import iso, parse_record
from kafka_sidecar_handlers.v3._routes import operation as v3_operation
from kafka_sidecar_handlers.v3._routes import target
from kafka_sidecar_handlers.v3._stream import JsonValues
from kafka_sidecar_plugins.validation import declared_error_code


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        ("", "application/problem+json"),
        ("*/*", "application/problem+json"),
        ("application/vnd.kafka.v2+json", "application/vnd.kafka.v2+json"),
        ("application/vnd.kafka.json.v2+json", "application/vnd.kafka.v2+json"),
        ("application/vnd.kafka.v1+json, application/vnd.kafka+json; q=0.9, application/json; q=0.8",
         "application/vnd.kafka.v2+json"),
        ("application/json", "application/json"),
        ("application/json;q=0.5, application/problem+json", "application/problem+json"),
        ("application/problem+json, application/vnd.kafka.v2+json", "application/problem+json"),
        ("text/html", "application/problem+json"),
    ],
)  # fmt: skip
def test_error_media_type_is_negotiated_from_accept(accept: str, media: str) -> None:
    assert error_media_type(accept) == media


@pytest.mark.parametrize(
    ("route", "op"),
    [
        ("/", "root"),
        ("/brokers", "brokers"),
        ("/topics", "topics"),
        ("/topics/{topic}", "topic"),
        ("/topics/{topic}/partitions", "partitions"),
        ("/topics/{topic}/partitions/{partition}", "partition"),
        ("/topics/{topic}/partitions/{partition}/offsets", "partition_offsets"),
        ("/kafka/topics/{t}", "topic"),
        ("/consumers/{group}", None),
    ],
)
def test_metadata_routes_are_recognised_by_shape(route: str, op: str | None) -> None:
    assert metadata_operation(route, "GET") == op
    assert metadata_operation(route, "POST") == ("root" if route == "/" else None)  # Confluent serves POST /


def test_v3_routes_and_their_path_values() -> None:
    assert openapi_path("/v3/clusters/{cluster_id}/topics/{topic_name}/records:batch").endswith("records:batch")
    route = "/v3/clusters/{cluster_id}/consumer-groups/{consumer_group_id}/lag-summary"
    assert v3_operation(route, "GET") == "lag_summary"
    assert v3_operation("/v3/clusters/{c}/topics/{t}/records:batch", "POST") == "produce_batch"
    assert v3_operation("/v3/clusters/{c}/topics/{t}", "DELETE") == "delete_topic"
    assert v3_operation("/v3/clusters/{c}/topics/{t}", "PUT") is None
    assert target(route, "/v3/clusters/abc/consumer-groups/g1/lag-summary").values == ("abc", "g1")


def test_a_stream_yields_each_json_value_once_complete_even_across_chunks() -> None:
    values = JsonValues(1000)
    assert values.feed(b'{"a":1}{"b"') == [{"a": 1}]
    assert values.feed(b':2}\n {"c":"\xc3') == [{"b": 2}]  # a UTF-8 character split across chunks
    assert values.feed(b'\xa9"}\n') == [{"c": "\u00e9"}]
    assert values.leftover() == ""
    values.feed(b'{"d": ')
    assert values.leftover() == '{"d":'
    with pytest.raises(ValidationFailed):
        JsonValues(10).feed(b'{"a": "' + b"x" * 20)


def test_v3_record_fields_types_and_schema_inference() -> None:
    record = parse_record(
        {"partition_id": 2, "key": {"type": "string", "data": "k"}, "value": {"schema_id": 7, "data": {"x": 1}},
         "headers": [{"name": "h", "value": "dg=="}], "timestamp": "2026-12-01T18:39:15.890Z"},
        "",
    )  # fmt: skip
    assert (record.partition, record.key.type, record.value.type) == (2, "STRING", "AVRO")
    assert record.value.schema.schema_id == 7
    assert record.headers == (("h", b"v"),)
    assert iso(record.timestamp_ms) == "2026-12-01T18:39:15.890Z"
    for bad, field in [
        ({"value": {"type": "XML", "data": 1}}, "value.type"),
        ({"value": {"type": "JSON", "schema_id": 1}}, "value.type"),
        ({"partition_id": -1}, "record.partition_id"),
        ({"colour": 1}, "colour"),
        ({"timestamp": "later"}, "timestamp"),
    ]:
        with pytest.raises(ValidationFailed) as caught:
            parse_record(bad, "")
        assert caught.value.field == field


def test_x_error_code_of_the_innermost_schema_node_is_the_errors_v2_code() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string", "x-error-code": 42204}, "b": {"type": "integer"}},
        "x-error-code": 42200,
    }
    validator = Draft202012Validator(schema)
    inner = best_match(validator.iter_errors({"a": 5}))
    outer = best_match(validator.iter_errors({"b": "x"}))
    assert inner is not None
    assert outer is not None
    assert declared_error_code(schema, inner) == 42204
    assert declared_error_code(schema, outer) == 42200
    plain = best_match(Draft202012Validator({"type": "object"}).iter_errors(1))
    assert plain is not None
    assert declared_error_code({"type": "object"}, plain) is None
