"""jsonschema-rs (the fast "valid?" answer) agrees with jsonschema (which names the field) on what a body parses to."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from kafka_sidecar_handlers.producer._openapi import PRODUCE_REQUEST
from kafka_sidecar_plugins.validation._schema import Schema

TOPIC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "kind"],
    "additionalProperties": {"type": ["string", "null"]},
    "properties": {
        "id": {"type": "integer", "minimum": 1, "exclusiveMaximum": 1000},
        "kind": {"enum": ["a", "b"]},
        "tag": {"const": "x"},
        "ratio": {"type": "number", "maximum": 1.5, "exclusiveMinimum": 0},
        "name": {"type": "string", "minLength": 2, "maxLength": 4, "pattern": "^[a-z]+$"},
        "items": {"type": "array", "maxItems": 2, "items": {"anyOf": [{"type": "boolean"}, {"type": "null"}]}},
        "both": {"allOf": [{"type": "string"}, {"minLength": 1}]},
    },
}
SCALARS: list[object] = [None, True, False, 0, 1, -1, 2, 1.0, 1.5, 0.5, 999, 1000, "", "a", "ab", "abc1", "x", "b"]
KEYS = ["records", "key", "value", "partition", "headers", "timestamp", "correlationId", "traceabilityId"]
KEYS += ["keyFormat", "valueFormat", "name", "id", "kind", "tag", "ratio", "items", "both", "valueSchemaId", "zzz"]


def instance(rng: random.Random, depth: int = 0) -> object:
    choice = rng.random()
    if depth > 3 or choice < 0.45:
        return rng.choice(SCALARS)
    if choice < 0.7:
        return [instance(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(KEYS): instance(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def produce_like(rng: random.Random) -> object:
    """Mostly-valid produce bodies with one random mutation, so both answers are exercised."""
    records: list[object] = [
        {"key": f"k{i}", "value": {"n": i}, "partition": i, "headers": {"h": "v"}} for i in range(rng.randint(0, 3))
    ]
    body: dict[str, object] = {"records": records, "valueFormat": rng.choice(["json", 1, "", -1, True])}
    target: dict[str, object] = rng.choice([body, *[r for r in records if isinstance(r, dict)]])
    target[rng.choice(KEYS)] = instance(rng, 2)
    return json.loads(json.dumps(body))


def topic_like(rng: random.Random) -> object:
    value: dict[str, object] = {"id": rng.choice([1, 5, 999, 1000, 0, 1.0, 2.5]), "kind": rng.choice(["a", "b", "c"])}
    for _ in range(rng.randint(0, 2)):
        value[rng.choice(KEYS)] = instance(rng, 2)
    return value


Generator = Callable[[random.Random], object]


@pytest.mark.parametrize(
    ("schema", "near_valid"),
    [(PRODUCE_REQUEST, produce_like), (TOPIC_SCHEMA, topic_like)],
    ids=["produce-request", "topic-schema"],
)
def test_the_fast_check_answers_exactly_as_jsonschema(schema: dict[str, Any], near_valid: Generator) -> None:
    checked = Schema(schema)
    validator = Draft202012Validator(schema)
    rng = random.Random(20261126)
    answers = set()
    for _ in range(4000):
        value = json.loads(json.dumps(instance(rng) if rng.random() < 0.3 else near_valid(rng)))
        expected = validator.is_valid(value)
        assert (checked.error(value) is None) is expected, json.dumps(value)
        answers.add(expected)
    assert answers == {True, False}, "the generated instances must include valid and invalid ones"


@pytest.mark.parametrize(
    ("schema", "valid", "invalid"),
    [
        ({"$ref": "#/$defs/x", "$defs": {"x": {"type": "integer"}}}, 1, "a"),
        ({"type": "object", "patternProperties": {"^a": {"type": "string"}}}, {"ab": "x"}, {"ab": 1}),
        ({"enum": [1, 2]}, 2, 3),
        ({"not": {"type": "string"}}, 1, "s"),
        ({"type": "string", "format": "email"}, "not an email: formats only annotate, as in jsonschema", 1),
        ({"properties": {"a": {"if": {"type": "string"}, "then": {"minLength": 2}}}}, {"a": "ab"}, {"a": "b"}),
    ],
)
def test_every_2020_12_keyword_is_checked(schema: dict[str, Any], valid: object, invalid: object) -> None:
    checked = Schema(schema)
    assert checked.error(valid) is None
    error = checked.error(invalid)
    assert error is not None
    assert error.message, "jsonschema describes the failure"


def test_boolean_schemas() -> None:
    assert Schema(True).error({"x": 1}) is None
    assert Schema(False).error(None) is not None
