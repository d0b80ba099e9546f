"""Which v2 metadata operation a route is (by shape), and its OpenAPI operation object."""

from __future__ import annotations

from collections.abc import Mapping

_REPLICA = {
    "type": "object",
    "properties": {"broker": {"type": "integer"}, "leader": {"type": "boolean"}, "in_sync": {"type": "boolean"}},
}
PARTITION = {
    "type": "object",
    "properties": {
        "partition": {"type": "integer"},
        "leader": {"type": "integer"},
        "replicas": {"type": "array", "items": _REPLICA},
    },
}
_OPERATIONS: Mapping[str, tuple[str, object, tuple[str, ...]]] = {
    "root": ("REST Proxy v2 root (an empty object)", {"type": "object"}, ()),
    "brokers": (
        "Broker ids of the cluster",
        {"type": "object", "properties": {"brokers": {"type": "array", "items": {"type": "integer"}}}},
        ("503",),
    ),
    "topics": ("Topic names", {"type": "array", "items": {"type": "string"}}, ("503",)),
    "topic": (
        "A topic: its configs and partitions (404 / 40401 unknown topic)",
        {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "configs": {"type": "object", "additionalProperties": {"type": "string"}},
                "partitions": {"type": "array", "items": PARTITION},
            },
        },
        ("404", "503"),
    ),
    "partitions": (
        "Partitions of a topic (404 / 40401 unknown topic)",
        {"type": "array", "items": PARTITION},
        ("404", "503"),
    ),
    "partition_offsets": (
        "Beginning and end offsets of a partition (404 / 40401 unknown topic, 40402 unknown partition)",
        {"type": "object", "properties": {"beginning_offset": {"type": "integer"}, "end_offset": {"type": "integer"}}},
        ("404", "422", "503"),
    ),
    "partition": (
        "One partition (404 / 40401 unknown topic, 40402 unknown partition)",
        PARTITION,
        ("404", "422", "503"),
    ),
}


def operation(route: str, method: str) -> str | None:
    parts = [p for p in route.split("/") if p]
    if not parts and method.upper() in ("GET", "POST"):
        return "root"  # Confluent answers POST / too ("for testing with posted entities")
    if method.upper() != "GET":
        return None
    if len(parts) >= 5 and parts[-1] == "offsets" and parts[-3] == "partitions" and parts[-5] == "topics":
        return "partition_offsets"
    if parts[-1] == "brokers":
        return "brokers"
    if parts[-1] == "topics":
        return "topics"
    if len(parts) >= 2 and parts[-2] == "topics" and parts[-1].startswith("{"):
        return "topic"
    if len(parts) >= 3 and parts[-1] == "partitions" and parts[-3] == "topics":
        return "partitions"
    if len(parts) >= 4 and parts[-2] == "partitions" and parts[-4] == "topics" and parts[-1].startswith("{"):
        return "partition"
    return None


def describe_metadata(route: str, method: str) -> Mapping[str, object] | None:
    op = operation(route, method)
    if op is None:
        return None
    summary, schema, problems = _OPERATIONS[op]
    problem = {"$ref": "#/components/schemas/Problem"}
    responses: dict[str, object] = {
        "200": {
            "description": "OK",
            "content": {media: {"schema": schema} for media in ("application/vnd.kafka.v2+json", "application/json")},
        }
    }
    for status in problems:
        responses[status] = {
            "description": "problem (v2 error_code/message at the top level)",
            "content": {
                "application/problem+json": {"schema": problem},
                "application/vnd.kafka.v2+json": {"schema": problem},
            },
        }
    words = [part.strip("{}") for part in route.split("/") if part] or ["root"]
    return {
        "operationId": f"metadata_{method.lower()}_" + "_".join(words),
        "summary": summary,
        "tags": ["metadata (REST Proxy v2)"],
        "parameters": [
            {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for part in route.split("/")
            if part.startswith("{") and part.endswith("}")
        ],
        "responses": responses,
    }
