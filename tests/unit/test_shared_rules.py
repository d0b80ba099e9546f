"""Rules several handlers share are declared once, in the core: Kafka's topic-name rule (the producer, the
REST Proxy consumer API and the OpenAPI schema of the produce route answer the same for the same name)
and the REST Proxy v2 media types (the producer and the consumer API read them through one parser)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from kafka_sidecar.plugin import (
    NotAcceptable,
    UnsupportedMediaType,
    ValidationFailed,
    checked_topic_name,
    v2_embedded_format,
    v2_media_type,
)
from kafka_sidecar_handlers.active._requests import response_media_type, topic_name
from kafka_sidecar_handlers.producer._openapi import describe_produce
from kafka_sidecar_handlers.producer._request import media_format

NAMES = ["orders", "a.b_c-D9", "x" * 249, "x" * 250, "", "has space", "ä", "a/b", ".", "..", "...", "-"]


def schema_pattern() -> str:
    operation: Any = describe_produce("/producers/{topic}", "POST")
    [parameter] = [p for p in operation["parameters"] if p["name"] == "topic"]
    pattern: str = parameter["schema"]["pattern"]
    return pattern


@pytest.mark.parametrize("name", NAMES)
def test_every_place_answers_the_same(name: str) -> None:
    def accepted(check: Any) -> bool:
        try:
            check(name, "topic")
        except ValidationFailed as exc:
            return exc.field != "topic"  # refused, naming the field (else counted as accepted: a mismatch)
        return True

    legal = accepted(checked_topic_name)
    assert accepted(topic_name) == legal
    if name not in (".", ".."):  # refused beside the pattern (a JSON Schema pattern cannot say it simply)
        assert (re.search(schema_pattern(), name) is not None) == legal


@pytest.mark.parametrize(
    ("media", "embedded"),
    [
        ("application/vnd.kafka.avro.v2+json", "avro"),
        ("application/vnd.kafka.jsonschema.v2+json", "jsonschema"),
        ("application/vnd.kafka.v2+json", ""),
        ("application/json", None),
        ("application/vnd.kafka+json", None),
        ("application/vnd.kafka.v2json", None),
        ("application/vnd.kafka.avro.v3+json", None),
    ],
)
def test_v2_media_types_are_read_once(media: str, embedded: str | None) -> None:
    assert v2_embedded_format(media) == embedded
    if embedded:
        assert v2_media_type(embedded) == media
        assert media_format(media) == embedded  # the producer's reading
        assert response_media_type(media, (embedded, embedded)) == media  # the consumer API's
        with pytest.raises(NotAcceptable):
            response_media_type(media, ("binary", "binary"))
    elif embedded == "":
        assert media_format(media) == "json"
    elif media not in ("application/json", "application/vnd.kafka+json"):
        with pytest.raises(UnsupportedMediaType):
            media_format(media)
