"""OpenAPI operation objects of the v3 routes."""

from __future__ import annotations

from collections.abc import Mapping

from kafka_sidecar_handlers.v3._routes import ADMIN_OPERATIONS, operation

_DATA = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": ["BINARY", "JSON", "STRING", "AVRO", "JSONSCHEMA", "PROTOBUF"]},
        "data": {},
        "schema_id": {"type": "integer"},
        "schema_version": {"type": "integer"},
        "subject": {"type": "string"},
        "subject_name_strategy": {"type": "string"},
        "schema": {"type": "string"},
    },
}
RECORD = {
    "type": "object",
    "properties": {
        "partition_id": {"type": "integer"},
        "headers": {
            "type": "array",
            "items": {"type": "object", "properties": {"name": {"type": "string"}, "value": {"type": "string"}}},
        },
        "key": _DATA,
        "value": _DATA,
        "timestamp": {"type": ["string", "integer"], "description": "ISO-8601 or epoch milliseconds"},
    },
}
_SUMMARIES = {
    "clusters": "The cluster this sidecar talks to (a list of one)",
    "cluster": "The cluster",
    "topics": "Topics of the cluster",
    "create_topic": "Create a topic (admin guard: admin token, or loopback callers only)",
    "topic": "A topic",
    "delete_topic": "Delete a topic (admin guard: admin token, or loopback callers only)",
    "partitions": "Partitions of a topic",
    "partition": "A partition",
    "topic_configs": "Configs of a topic",
    "produce": "Produce one record, or a stream of concatenated records (one result per record, in order)",
    "produce_batch": "Produce up to 10 records with ids; 207 with successes and failures",
    "groups": "Consumer groups",
    "group": "A consumer group",
    "consumers": "Consumers (members) of a group",
    "lags": "Lag of every partition the group has committed (log end offset - committed offset)",
    "lag_summary": "Total and largest lag of the group",
}
_BODIES: Mapping[str, dict[str, object]] = {
    "produce": {},  # one record or a stream of records: read by the handler, not a single JSON value
    "produce_batch": {
        "type": "object",
        "required": ["entries"],
        "properties": {"entries": {"type": "array", "items": {"type": "object", "required": ["id"]}}},
    },
    "create_topic": {
        "type": "object",
        "required": ["topic_name"],
        "properties": {
            "topic_name": {"type": "string"},
            "partitions_count": {"type": "integer", "minimum": 1},
            "replication_factor": {"type": "integer", "minimum": 1},
            "configs": {"type": "array", "items": {"type": "object"}},
        },
    },
}


_RELATED = {"type": "object", "properties": {"related": {"type": "string"}}}
_RESOURCE = {
    "type": "object",
    "required": ["kind", "metadata"],
    "properties": {
        "kind": {"type": "string"},
        "metadata": {"type": "object", "properties": {"self": {"type": "string"}, "resource_name": {"type": "string"}}},
        "cluster_id": {"type": "string"},
    },
}
_LIST = {
    "type": "object",
    "required": ["kind", "metadata", "data"],
    "properties": {
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "data": {"type": "array", "items": _RESOURCE},
    },
}
_SIZE = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "size": {"type": "integer"},
        "schema_id": {"type": "integer"},
        "subject": {"type": "string"},
        "schema_version": {"type": "integer"},
    },
}
RESULT = {
    "type": "object",
    "required": ["error_code"],
    "description": "one per record; a refused record has only error_code and message",
    "properties": {
        "error_code": {"type": "integer"},
        "message": {"type": "string"},
        "cluster_id": {"type": "string"},
        "topic_name": {"type": "string"},
        "partition_id": {"type": "integer"},
        "offset": {"type": "integer"},
        "timestamp": {"type": ["string", "null"]},
        "key": _SIZE,
        "value": _SIZE,
    },
}
_OK: Mapping[str, object] = {
    "produce": {**RESULT, "description": "one result per record, newline-separated, in the records' order"},
    "produce_batch": {
        "type": "object",
        "properties": {"successes": {"type": "array", "items": RESULT}, "failures": {"type": "array", "items": RESULT}},
    },
    **dict.fromkeys(("clusters", "topics", "partitions", "topic_configs", "groups", "consumers", "lags"), _LIST),
}


def describe_v3(route: str, method: str) -> Mapping[str, object] | None:
    op = operation(route, method)
    if op is None:
        return None
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    ok = "204" if op == "delete_topic" else "201" if op == "create_topic" else "207" if op == "produce_batch" else "200"
    responses: dict[str, object] = {ok: {"description": "OK"}}
    if ok != "204":
        responses[ok] = {"description": "OK", "content": {"application/json": {"schema": _OK.get(op, _RESOURCE)}}}
    for status in ("404", "415", "422", "503") if op not in ADMIN_OPERATIONS else ("401", "403", "404", "409", "422"):
        responses[status] = {"description": "problem (error_code = HTTP status, message)", "content": problem}
    described: dict[str, object] = {
        "operationId": "v3_" + method.lower() + "_" + "_".join(p.strip("{}") for p in route.split("/") if p),
        "summary": _SUMMARIES[op],
        "tags": ["REST Proxy v3"],
        "parameters": [
            {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for part in route.split("/")
            if part.startswith("{") and part.endswith("}")
        ],
        "responses": responses,
    }
    body = _BODIES.get(op)
    if body is not None:
        # x-error-code: validation answers as the terminal does (v3 error_code = HTTP status)
        schema = {**body, "x-error-code": 422} if body else body
        described["requestBody"] = {
            "required": op != "produce",  # produce reads a stream: the validation plugin sees no body
            "x-error-code": 415,
            "content": {"application/json": {"schema": schema}},
        }
    return described
