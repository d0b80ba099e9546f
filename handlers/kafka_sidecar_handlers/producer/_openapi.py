"""The producer's OpenAPI 3.1 operation: what ``POST /producers/{topic}`` and the v2 routes accept and answer.

The request schema is generated from the parser's msgspec structs (``_request.py``); the validation
plugin checks requests against it before the producer runs, and the producer still checks everything itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from kafka_sidecar.plugin import HANDLER_CHECKED, TOPIC_NAME_PATTERN
from kafka_sidecar_handlers.producer._request import FORMAT_ORDINALS, request_schema

FORMATS = FORMAT_ORDINALS
MEDIA_TYPES = (
    "application/json",
    "application/vnd.kafka+json",
    "application/vnd.kafka.v2+json",
    *(f"application/vnd.kafka.{fmt}.v2+json" for fmt in FORMATS),
)
PROBLEM = {"$ref": "#/components/responses/Problem"}

PRODUCE_REQUEST = request_schema()
"""Derived from the parser's own declaration (:class:`ProduceRequest`), so the two cannot drift."""
PRODUCE_RESPONSE = {
    "type": "object",
    "required": ["offsets"],
    "properties": {
        "offsets": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "partition": {"type": ["integer", "null"]},
                    "offset": {"type": ["integer", "null"]},
                    "timestamp": {"type": ["integer", "null"]},
                    "error_code": {"type": ["integer", "null"]},
                    "error": {"type": ["string", "null"]},
                },
            },
        },
        "key_schema_id": {"type": ["integer", "null"]},
        "value_schema_id": {"type": ["integer", "null"]},
    },
}


def describe_produce(path: str, method: str) -> Mapping[str, object] | None:
    """The operation object for a produce route (``describe`` of the producer's HandlerSpec)."""
    if method.upper() != "POST":
        return None
    parameters: list[dict[str, object]] = [
        {
            "name": "topic",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": TOPIC_NAME_PATTERN},
            "description": "Topic to produce to.",
        }
    ]
    if "{partition}" in path:
        parameters.append(
            {
                "name": "partition",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
                "description": "Partition every record goes to.",
            }
        )
    parameters.append(
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
            "description": "A retry with the same key (and body) within the window gets the first request's "
            "outcome instead of producing again.",
        }
    )
    response = {"content": {media: {"schema": PRODUCE_RESPONSE} for media in MEDIA_TYPES[:3]}}
    return {
        "summary": "Produce a batch of records",
        "description": "Answers after the broker acknowledged or refused every record: 200 all acknowledged, "
        "207 some were not (see each error_code), 503 Kafka wrote none of them (code kafka-unavailable: safe to "
        "retry), 504 none acknowledged in time and some may still be written (code kafka-outcome-unknown: retry "
        "with the same Idempotency-Key).",
        "operationId": "produce" + path.replace("/", "_").replace("{", "").replace("}", ""),
        "tags": ["producer"],
        "parameters": parameters,
        # the producer checks all of it itself (msgspec structs the request schema is generated from), with
        # the same statuses and fields: tests/integration/test_rest_proxy_plugin_neutral.py
        HANDLER_CHECKED: True,
        "requestBody": {
            "required": True,
            "content": {media: {"schema": PRODUCE_REQUEST} for media in MEDIA_TYPES},
        },
        "responses": {
            "200": {"description": "Every record acknowledged.", **response},
            "207": {"description": "Some records not acknowledged (per-record error_code).", **response},
            **dict.fromkeys(("400", "404", "408", "409", "413", "415", "422", "429", "502", "503", "504"), PROBLEM),
        },
    }
