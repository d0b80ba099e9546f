"""Which active-consumer operation a route is, and its OpenAPI operation object.

Routes are recognised by shape, not by exact text, so a deployment may mount them under its own
paths in ``chains.yml``: ``.../{group}`` (create), ``.../{group}/instances/{instance}`` (delete), and
that followed by ``subscription(s)``, ``assignments``, ``positions[/beginning|end|first|last]``,
``records`` or ``offsets``; ``.../deadLetter/active`` is the dead-letter endpoint.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from kafka_sidecar.plugin import V2_MEDIA_TYPE
from kafka_sidecar_handlers.active._requests import REQUEST_MEDIA_TYPES

OPERATIONS: Mapping[tuple[str, str], str] = {
    ("create", "POST"): "create",
    ("instance", "DELETE"): "delete",
    ("subscription", "POST"): "subscribe",
    ("subscription", "GET"): "subscription",
    ("subscription", "DELETE"): "unsubscribe",
    ("assignments", "POST"): "assign",
    ("assignments", "GET"): "assignments",
    ("positions", "POST"): "seek",
    ("beginning", "POST"): "seek_beginning",
    ("end", "POST"): "seek_end",
    ("records", "GET"): "records",
    ("offsets", "POST"): "commit",
    ("offsets", "GET"): "committed",
    ("offsets", "PUT"): "committed",
    ("deadletter", "POST"): "dead_letter",
}
_TAILS = {
    "subscription": "subscription", "subscriptions": "subscription", "assignments": "assignments",
    "positions": "positions", "records": "records", "offsets": "offsets",
}  # fmt: skip
_SEEK_TO = {"beginning": "beginning", "first": "beginning", "end": "end", "last": "end"}


def resource(route: str) -> str | None:
    parts = [p for p in route.split("/") if p]
    if len(parts) >= 2 and parts[-2] == "deadLetter" and parts[-1] == "active":
        return "deadletter"
    if "instances" not in parts:
        return "create" if parts and parts[-1].startswith("{") else None
    tail = parts[parts.index("instances") + 2 :]
    if not tail:
        return "instance"
    if len(tail) == 1:
        return _TAILS.get(tail[0])
    if len(tail) == 2 and tail[0] == "positions":
        return _SEEK_TO.get(tail[1])
    return None


@functools.cache  # routes come from chains.yml and methods from their route: a handful of pairs
def operation(route: str, method: str) -> str | None:
    found = resource(route)
    return OPERATIONS.get((found, method.upper())) if found else None


# -- OpenAPI ----------------------------------------------------------------------------------------

_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_PROBLEM_CONTENT = {media: {"schema": _PROBLEM} for media in ("application/problem+json", V2_MEDIA_TYPE)}

_TP = {
    "type": "object",
    "required": ["topic", "partition"],
    "properties": {"topic": {"type": "string"}, "partition": {"type": "integer", "minimum": 0}},
}
_PARTITIONS = {"type": "object", "properties": {"partitions": {"type": "array", "items": _TP}}}
_OFFSET = {
    "type": "object",
    "required": ["topic", "partition", "offset"],
    "properties": {
        "topic": {"type": "string"},
        "partition": {"type": "integer", "minimum": 0},
        "offset": {"type": "integer", "minimum": 0},
        "metadata": {"type": "string"},
    },
}
_RECORD = {
    "type": "object",
    "properties": {
        "topic": {"type": "string"},
        "key": {},
        "value": {},
        "partition": {"type": "integer"},
        "offset": {"type": "integer"},
        "timestamp": {"type": "integer", "description": "epoch milliseconds"},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
_INVALID_CONFIG: dict[str, object] = {"x-error-code": 42204}  # the terminal's (and Confluent's) code for a bad setting
_CREATE_SETTINGS: dict[str, dict[str, object]] = {
    "name": {"type": "string", "description": "instance name (Java sidecar: `id`); generated if absent"},
    "format": {"type": "string", "description": "any registered format: json, binary, string, ..."},
    "keyFormat": {"type": "string"},
    "valueFormat": {"type": "string"},
    "auto.offset.reset": {"type": "string", "description": "earliest|latest|none (also smallest|largest)"},
    "auto.commit.enable": {"type": ["boolean", "string"]},
    "fetch.min.bytes": {"type": ["integer", "string"]},
    "consumer.request.timeout.ms": {"type": ["integer", "string"]},
    "autoOffsetReset": {"type": "string"},
    "autoCommitEnable": {"type": ["boolean", "string"]},
    "responseMinBytes": {"type": ["integer", "string"]},
    "requestWaitMs": {"type": ["integer", "string"]},
}
_CREATE = {
    "type": "object",
    "properties": {name: {**schema, **_INVALID_CONFIG} for name, schema in _CREATE_SETTINGS.items()},
}
_SUBSCRIPTION = {
    "type": "object",
    "properties": {"topics": {"type": "array", "items": {"type": "string"}}, "topic_pattern": {"type": "string"}},
}
_SEEK = {
    "type": "object",
    "properties": {
        "offsets": {"type": "array", "items": _OFFSET},
        "timestamps": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["topic", "partition", "timestamp"],
                "properties": {
                    "timestamp": {
                        "type": ["integer", "string"],
                        "description": "epoch milliseconds or ISO-8601 (2026-12-01T18:39:15.890Z)",
                    }
                },
            },
        },
    },
}
_DEAD_LETTERS = {
    "oneOf": [
        {"type": "array", "items": {"type": "object", "properties": {"record": _RECORD, "stacktrace": {}}}},
        {"type": "object", "properties": {"records": {"type": "array"}, "format": {"type": "string"}}},
    ]
}
_SUMMARIES = {
    "create": ("Create a consumer instance in a group", _CREATE),
    "delete": ("Delete a consumer instance (it leaves the group)", None),
    "subscribe": ("Subscribe to topics or a topic pattern", _SUBSCRIPTION),
    "subscription": ("Topics the instance is subscribed to", None),
    "unsubscribe": ("Unsubscribe from all topics", None),
    "assign": ("Assign partitions manually", _PARTITIONS),
    "assignments": ("Partitions assigned to the instance", None),
    "seek": ("Seek to offsets and/or timestamps", _SEEK),
    "seek_beginning": ("Seek to the beginning of partitions (all assigned when none given)", _PARTITIONS),
    "seek_end": ("Seek to the end of partitions (all assigned when none given)", _PARTITIONS),
    "records": ("Long-poll records", None),
    "commit": (
        "Commit offsets: each entry commits offset+1; an empty body commits all records returned",
        {"type": "object", "properties": {"offsets": {"type": "array", "items": _OFFSET}}},
    ),
    "committed": ("Committed offsets (the next offset the group reads)", _PARTITIONS),
    "dead_letter": ("Write records the backend could not process to their dead-letter topics", _DEAD_LETTERS),
}
_COMMITTED = {
    "type": "object",
    "properties": {
        "topic": {"type": "string"},
        "partition": {"type": "integer"},
        "consumed": {"type": "integer"},
        "committed": {"type": "integer"},
    },
}
_OK_BODIES: Mapping[str, object] = {
    "create": {"type": "object", "properties": {"instance_id": {"type": "string"}, "base_uri": {"type": "string"}}},
    "subscription": {"type": "object", "properties": {"topics": {"type": "array", "items": {"type": "string"}}}},
    "assignments": _PARTITIONS,
    "records": {"type": "array", "items": _RECORD},
    "commit": {
        "oneOf": [
            {
                "type": "array",
                "description": "Confluent's CommitOffsetsResponse (commit_reply: confluent)",
                "items": _COMMITTED,
            },
            {
                "type": "object",
                "description": "the Java sidecar's (commit_reply: java-sidecar)",
                "properties": {"offsets": {"type": "array", "items": _COMMITTED}},
            },
        ]
    },
    "committed": {"type": "object", "properties": {"offsets": {"type": "array", "items": _OFFSET}}},
    "dead_letter": {"type": "array", "items": {"type": "object"}},
}
_PROBLEMS: Mapping[str, tuple[str, ...]] = {
    "create": ("409", "415", "422", "429", "503"),
    "records": ("404", "406", "409", "422", "503"),
    "dead_letter": ("415", "422", "503"),
}


def _parameters(route: str, op: str) -> list[dict[str, object]]:
    params: list[dict[str, object]] = [
        {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
        for part in route.split("/")
        if part.startswith("{") and part.endswith("}")
    ]
    if op == "records":
        params += [
            {"name": "timeout", "in": "query", "schema": {"type": "integer"}, "description": "ms to wait at most"},
            {"name": "max_bytes", "in": "query", "schema": {"type": "integer"}, "description": "alias maxBytes"},
        ]
    if op == "committed":
        params.append(
            {"name": "partitions", "in": "query", "schema": {"type": "string"}, "example": "orders:0,orders:1"}
        )
    if op == "commit":
        params.append({"name": "async", "in": "query", "schema": {"type": "boolean"}})
    if op == "dead_letter":
        params.append({"name": "format", "in": "query", "schema": {"type": "string"}})
    return params


def _operation_id(route: str, method: str) -> str:
    """Unique per route and method (aliases such as ``/subscriptions`` get their own)."""
    words = [part.strip("{}") for part in route.split("/") if part]
    return "activeConsumer_" + "_".join([method.lower(), *words])


def describe(route: str, method: str) -> Mapping[str, object] | None:
    op = operation(route, method)
    if op is None:
        return None
    summary, body = _SUMMARIES[op]
    responses: dict[str, object] = {}
    ok_body = _OK_BODIES.get(op)
    if ok_body is None:
        responses["204"] = {"description": "done"}
    else:
        media = "application/vnd.kafka.v2+json" if op != "records" else "application/vnd.kafka.json.v2+json"
        responses["200"] = {"description": "OK", "content": {"application/json": {"schema": ok_body},
                                                               media: {"schema": ok_body}}}  # fmt: skip
    if op == "dead_letter":
        responses["207"] = {"description": "some dead letters were not stored (see each error_code)"}
    for status in _PROBLEMS.get(op, ("404", "409", "422", "503")):
        responses[status] = {
            "description": "problem (RFC 9457 with v2 error_code/message)",
            "content": _PROBLEM_CONTENT,
        }
    operation_object: dict[str, object] = {
        "operationId": _operation_id(route, method),
        "summary": summary,
        "tags": ["active consumer"],
        "parameters": _parameters(route, op),
        "responses": responses,
    }
    if body is not None:
        operation_object["requestBody"] = {
            "required": op not in ("seek_beginning", "seek_end", "committed", "create", "commit"),
            "content": {media: {"schema": body} for media in sorted(REQUEST_MEDIA_TYPES)},
        }
    return operation_object
