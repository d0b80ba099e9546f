"""Fuzzing the produce API from its served description, against the real broker (full default chain).

Requests are generated from the request schema in ``/openapi.json`` (seeded, so a failure replays),
half of them then broken (a required field dropped, an unknown one added, a value of the wrong type).
Every answer must be a status the description lists, never a 5xx, and its body must match the
described schema: the produce response for 200/207, the Problem schema for errors.
"""

from __future__ import annotations

import random
import string
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from kafka_sidecar.testing import running_sidecar

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

SEED = 20261126
CASES = 150
CONFIG = """
kafka:
  bootstrap_servers: ${KAFKA_BOOTSTRAP_SERVERS}
handlers:
  metrics: {use: metrics}
  correlation: {use: correlation}
  tracing: {use: tracing}
  logging: {use: logging-context, config: {install: false}}
  audit: {use: audit, config: {target: log}}
  validation: {use: validation}
chains:
  default: [metrics, correlation, tracing, logging, audit, validation]
paths:
  - path: /producers/{topic}
    method: POST
    exec: [default, producer]
  - path: /topics/{topic}/partitions/{partition}
    method: POST
    exec: [default, producer]
"""


def generate(schema: Any, rng: random.Random, depth: int = 0) -> object:
    """A value that satisfies the (simple) schema: types, properties, required, items, bounds, enums."""
    if not isinstance(schema, dict) or (not schema.get("type") and "oneOf" not in schema):
        return rng.choice([None, 0, 1.5, "text", True, {"a": [1, "b"]}, [1, None]])
    if "oneOf" in schema:
        return generate(rng.choice(schema["oneOf"]), rng, depth)
    kind = schema["type"]
    if isinstance(kind, list):
        kind = rng.choice(kind)
    if kind == "object":
        properties = schema.get("properties", {})
        out = {name: generate(properties.get(name, {}), rng, depth + 1) for name in schema.get("required", ())}
        for name, sub in properties.items():
            if name not in out and depth < 3 and rng.random() < (0.04 if depth == 0 else 0.3):
                out[name] = generate(sub, rng, depth + 1)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and rng.random() < 0.5:
            out[_word(rng)] = generate(extra, rng, depth + 1)
        return out
    if kind == "array":
        low = schema.get("minItems", 0)
        return [generate(schema.get("items", {}), rng, depth + 1) for _ in range(rng.randint(low, low + 3))]
    if kind == "integer":
        return rng.randint(schema.get("minimum", -3), schema.get("maximum", 5))
    if kind == "string":
        if schema.get("contentEncoding") == "base64":
            return rng.choice(["AA==", "aGVsbG8=", "not base64!"])
        return _word(rng, schema.get("minLength", 0))
    if kind == "boolean":
        return rng.random() < 0.5
    return None


def _word(rng: random.Random, min_length: int = 0) -> str:
    return "".join(rng.choice(string.ascii_letters + "-_.é ") for _ in range(rng.randint(max(1, min_length), 12)))


def mutate(body: object, rng: random.Random) -> object:
    """Break one thing: drop a key, add an unknown key, or put a wrong-typed value somewhere."""
    containers: list[dict[str, Any] | list[Any]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict | list):
            containers.append(node)
            for child in node.values() if isinstance(node, dict) else node:
                walk(child)

    walk(body)
    target = rng.choice(containers) if containers else None
    if target is None:
        return rng.choice([[], "x", 3])
    action = rng.choice(["drop", "add", "retype"])
    if isinstance(target, dict):
        keys = list(target)
        if action == "drop" and keys:
            del target[rng.choice(keys)]
        elif action == "add" or not keys:
            target[_word(rng)] = 1
        else:
            target[rng.choice(keys)] = rng.choice([-1, "x", [], {}, None, 1e300, True])
    elif target:
        target[rng.randrange(len(target))] = rng.choice([-1, "x", [], None, True])
    else:
        target.append(rng.choice([-1, "x", [], None]))
    return body


def without_keyless_tombstones(body: object) -> object:
    """Give a value to records with neither key nor value: that case is the known bug tested below."""
    records = body.get("records") if isinstance(body, dict) else None
    for record in records if isinstance(records, list) else ():
        if isinstance(record, dict) and record.get("key") is None and record.get("value") is None:
            record["value"] = "v"
    return body


async def test_generated_requests_never_5xx_and_always_match_the_description(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create(partitions=2)
    rng = random.Random(SEED)
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    seen: dict[int, int] = {}
    async with running_sidecar(CONFIG, tmp_path, env=env) as rs:
        doc = (await rs.client.get("/openapi.json")).json()
        problem = Draft202012Validator(doc["components"]["schemas"]["Problem"])
        for case in range(CASES):
            route = rng.choice(["/producers/{topic}", "/topics/{topic}/partitions/{partition}"])
            operation = doc["paths"][route]["post"]
            media = rng.choice(list(operation["requestBody"]["content"]))
            body = generate(operation["requestBody"]["content"][media]["schema"], rng)
            if rng.random() < 0.5:
                body = mutate(body, rng)
            body = without_keyless_tombstones(body)
            target = topic if rng.random() < 0.9 else rng.choice(["no-such-topic-" + _word(rng), "bad topic", ".."])
            url = route.replace("{topic}", target).replace("{partition}", rng.choice(["0", "1", "7", "x"]))
            response = await rs.client.post(url, json=body, headers={"content-type": media})
            status = response.status_code
            seen[status] = seen.get(status, 0) + 1
            where = f"case {case} (seed {SEED}): POST {url} {media} {body!r} -> {status} {response.text[:300]}"
            assert status < 500, where
            assert str(status) in operation["responses"], where
            if status >= 400:
                assert response.headers["content-type"] == "application/problem+json", where
                problem.validate(response.json())
            else:
                described = operation["responses"][str(status)]["content"]
                answered = response.headers["content-type"].split(";")[0]
                assert answered in described, where
                Draft202012Validator(described[answered]["schema"]).validate(response.json())
    # the generator reaches both success and rejection
    assert seen.get(200, 0) > 0, seen
    assert sum(n for s, n in seen.items() if s >= 400) > 0, seen


async def test_a_record_with_neither_key_nor_value_is_not_a_500(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create(partitions=1)
    async with running_sidecar(CONFIG, tmp_path, env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}) as rs:
        response = await rs.client.post(f"/producers/{topic}", json={"records": [{}]})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "records[0].value"
