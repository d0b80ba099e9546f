"""Kafka's topic-name rule is declared once: the producer, the REST Proxy consumer API and the OpenAPI
schema of the produce route all answer the same for the same name."""

from __future__ import annotations

import re
from typing import Any

import pytest

from kafka_sidecar.plugin import ValidationFailed, checked_topic_name
from kafka_sidecar_handlers.active._requests import topic_name
from kafka_sidecar_handlers.producer._openapi import describe_produce

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
