"""Parsing active-consumer requests, route recognition and the OpenAPI operations."""

from __future__ import annotations

import pytest

from kafka_sidecar._errors import NotAcceptable, ValidationFailed
from kafka_sidecar_handlers.active._requests import (
    CreateDefaults,
    Partition,
    parse_create,
    parse_offsets,
    parse_partitions,
    parse_seek,
    parse_subscription,
    partitions_from_query,
    response_media_type,
)
from kafka_sidecar_handlers.active._routes import describe, operation

DEFAULTS = CreateDefaults("binary", "latest", False, 1, 1000)
FORMATS = frozenset({"json", "binary", "string", "avro"})


def test_v2_and_java_spellings_mean_the_same() -> None:
    v2 = parse_create(
        {"name": "c1", "format": "JSON", "auto.offset.reset": "smallest", "auto.commit.enable": "true",
         "fetch.min.bytes": "2048", "consumer.request.timeout.ms": 5000},
        DEFAULTS, FORMATS,
    )  # fmt: skip
    java = parse_create(
        {"id": "c1", "keyFormat": "json", "valueFormat": "json", "autoOffsetReset": "earliest",
         "autoCommitEnable": True, "responseMinBytes": 2048, "requestWaitMs": "5000"},
        DEFAULTS, FORMATS,
    )  # fmt: skip
    assert v2 == java
    assert (v2.key_format, v2.auto_offset_reset, v2.auto_commit_enable) == ("json", "earliest", True)


def test_defaults_fill_an_empty_body_and_formats_come_from_the_registry() -> None:
    created = parse_create(None, DEFAULTS, FORMATS)
    assert (created.name, created.value_format, created.fetch_min_bytes) == (None, "binary", 1)
    assert parse_create({"format": "avro"}, DEFAULTS, FORMATS).value_format == "avro"
    mixed = parse_create({"keyFormat": "string", "format": "json"}, DEFAULTS, FORMATS)
    assert (mixed.key_format, mixed.value_format) == ("string", "json")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"topics": []}, "topics"),
        ({"topics": ["ok", "bad topic"]}, "topics[1]"),
        ({"topic_pattern": "("}, "topic_pattern"),
        ({"topics": ["a"], "topic_pattern": "a.*"}, "topics"),
        ({"topic": "a"}, "topic"),
    ],
)
def test_bad_subscriptions_name_the_field(body: object, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_subscription(body)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("parse", "body", "field"),
    [
        (lambda b: parse_partitions(b, required=True), None, "body"),
        (lambda b: parse_partitions(b, required=True), {"partitions": [{"topic": "t"}]}, "partitions[0].partition"),
        (lambda b: parse_offsets(b, required=False), {"offsets": [{"topic": "t", "partition": 0}]},
         "offsets[0].offset"),
        (lambda b: parse_offsets(b, required=False), {"offsets": [{"topic": "t", "partition": 0, "offset": 1,
                                                                    "metadata": 5}]}, "offsets[0].metadata"),
        (parse_seek, {}, "offsets"),
        (parse_seek, {"timestamps": [{"topic": "t", "partition": 0, "timestamp": "x"}]}, "timestamps[0].timestamp"),
    ],
)  # fmt: skip
def test_bad_partition_and_offset_bodies_name_the_field(parse: object, body: object, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse(body)  # type: ignore[operator]
    assert caught.value.field == field


def test_partitions_from_query() -> None:
    assert partitions_from_query({"partitions": "a.b:0, a.b:3"}) == (Partition("a.b", 0), Partition("a.b", 3))
    assert partitions_from_query({"topic": "t", "partition": "2"}) == (Partition("t", 2),)
    with pytest.raises(ValidationFailed):
        partitions_from_query({"partitions": "t"})


def test_accept_header_picks_the_reply_media_type() -> None:
    formats = ("json", "json")
    assert response_media_type("", formats) == "application/vnd.kafka.json.v2+json"
    assert response_media_type("*/*", ("binary", "binary")) == "application/vnd.kafka.binary.v2+json"
    assert response_media_type("application/json", formats) == "application/json"
    assert response_media_type("application/vnd.kafka.json.v2+json", formats) == "application/vnd.kafka.json.v2+json"
    assert response_media_type("application/vnd.kafka.v2+json, */*", formats) == "application/vnd.kafka.v2+json"
    with pytest.raises(NotAcceptable) as caught:
        response_media_type("application/vnd.kafka.binary.v2+json", formats)
    assert caught.value.v2_error_code == 40601


@pytest.mark.parametrize(
    ("route", "method", "op"),
    [
        ("/consumers/{group}", "POST", "create"),
        ("/consumers/{group}/instances/{instance}", "DELETE", "delete"),
        ("/consumers/{group}/instances/{instance}/subscriptions", "POST", "subscribe"),
        ("/consumers/{group}/instances/{instance}/subscription", "DELETE", "unsubscribe"),
        ("/consumers/{group}/instances/{instance}/positions/last", "POST", "seek_end"),
        ("/consumers/{group}/instances/{instance}/positions/first", "POST", "seek_beginning"),
        ("/consumers/{group}/instances/{instance}/offsets", "PUT", "committed"),
        ("/consumers/{group}/instances/{instance}/records", "GET", "records"),
        ("/consumers/deadLetter/active", "POST", "dead_letter"),
        ("/consumers/{group}/instances/{instance}/records", "POST", None),
        ("/something/else", "GET", None),
    ],
)
def test_routes_are_recognised_by_shape(route: str, method: str, op: str | None) -> None:
    assert operation(route, method) == op


def test_describe_gives_an_operation_per_route() -> None:
    records = describe("/consumers/{group}/instances/{instance}/records", "GET")
    assert records is not None
    names = {p["name"] for p in records["parameters"]}  # type: ignore[attr-defined]
    assert {"group", "instance", "timeout", "max_bytes"} <= names
    assert {"200", "404", "406"} <= set(records["responses"])  # type: ignore[call-overload]
    create = describe("/consumers/{group}", "POST")
    assert create is not None
    assert "requestBody" in create
    assert describe("/consumers/{group}", "GET") is None


def test_operation_ids_are_unique_across_aliases() -> None:
    routes = [
        ("/consumers/{group}/instances/{instance}/subscription", "POST"),
        ("/consumers/{group}/instances/{instance}/subscriptions", "POST"),
        ("/consumers/{group}/instances/{instance}/positions/first", "POST"),
        ("/consumers/{group}/instances/{instance}/positions/beginning", "POST"),
        ("/consumers/{group}/instances/{instance}/offsets", "GET"),
        ("/consumers/{group}/instances/{instance}/offsets", "PUT"),
    ]
    ids = set()
    for route, method in routes:
        described = describe(route, method)
        assert described is not None
        ids.add(described["operationId"])
    assert len(ids) == len(routes)


@pytest.mark.parametrize(
    ("given", "millis"),
    [(1764614355890, 1764614355890), ("2025-12-01T18:39:15.890Z", 1764614355890), ("1970-01-01T00:00:01+00:00", 1000)],
)
def test_seek_timestamps_are_epoch_millis_or_iso_8601(given: object, millis: int) -> None:
    _, stamps = parse_seek({"timestamps": [{"topic": "t", "partition": 0, "timestamp": given}]})
    assert stamps[0].timestamp == millis


@pytest.mark.parametrize("given", ["yesterday", "2025-12-01T18:39:15", -5, True])
def test_seek_timestamps_that_are_neither_are_422_naming_the_field(given: object) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_seek({"timestamps": [{"topic": "t", "partition": 0, "timestamp": given}]})
    assert caught.value.field == "timestamps[0].timestamp"
