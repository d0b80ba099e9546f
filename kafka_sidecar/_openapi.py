"""Composing the sidecar's OpenAPI 3.1 description from what is actually mounted.

Part of the core because two plugins need it (``openapi`` serves it, ``validation`` enforces it) and
the chain routes are known at assembly. Chain routes are described by their terminal's
``HandlerSpec.describe(path, method)``; a terminal without one gets a generic operation. Health,
admin, metrics and the description itself are added, and any other mounted route (a plugin's) gets a
generic operation, so nothing served is missing. Every operation lists problem responses
(``application/problem+json``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kafka_sidecar._http.problems import PROBLEM_MEDIA_TYPE
from kafka_sidecar._view import RouteInfo

OPENAPI_VERSION = "3.1.0"
_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")
PROBLEM_REF = {"$ref": "#/components/responses/Problem"}
HANDLER_CHECKED = "x-checked-by-handler"
"""OpenAPI extension on an operation: its handler checks every parameter, media type and body the operation
describes itself, with the same status, field and error code as a check against the description would give
(the validation plugin then need not check them a second time)."""

PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "field": {"type": "string", "description": "The offending field, header or parameter."},
        "error_code": {"type": "integer", "description": "REST Proxy v2 error code."},
        "message": {"type": "string", "description": "REST Proxy v2 message (same as detail)."},
    },
}
_JSON_ANY = {"description": "JSON", "content": {"application/json": {"schema": {}}}}

# Routes the sidecar mounts outside chains: (path, method, summary, tag, response description).
FIXED_ROUTES = (
    ("/health/live", "GET", "Liveness: the process answers", "health"),
    ("/health/ready", "GET", "Readiness: Kafka answers a metadata request", "health"),
    ("/admin/chains", "GET", "The compiled chains (admin)", "admin"),
    ("/admin/config", "GET", "The effective configuration, secrets masked (admin)", "admin"),
)


def openapi_path(path: str) -> str:
    """Starlette ``/x/{id:int}`` -> OpenAPI ``/x/{id}``."""
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def path_parameters(path: str) -> list[dict[str, object]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in _PARAM.findall(path)
    ]


@dataclass(frozen=True, slots=True)
class MountedRoute:
    """A route outside the chains, as the app mounts it."""

    path: str
    method: str
    summary: str
    media_type: str = "application/json"
    status: str = "200"


def generic_operation(
    path: str, method: str, summary: str, tag: str = "other", media_type: str = "application/json", status: str = "200"
) -> dict[str, Any]:
    response = _JSON_ANY if media_type == "application/json" else {
        "description": media_type, "content": {media_type: {"schema": {"type": "string"}}}
    }  # fmt: skip
    operation: dict[str, Any] = {
        "summary": summary or f"{method} {path}",
        "operationId": f"{method.lower()}{openapi_path(path)}".replace("/", "_").replace("{", "").replace("}", ""),
        "tags": [tag],
        "responses": {status: response},
    }
    params = path_parameters(path)
    if params:
        operation["parameters"] = params
    return operation


def _with_problems(operation: Mapping[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(dict(operation))
    responses = result.setdefault("responses", {})
    responses.setdefault("default", PROBLEM_REF)
    return result


class DocumentBuilder:
    """Accumulates operations; the first description of a (path, method) wins."""

    def __init__(self, title: str, version: str) -> None:
        self._doc: dict[str, Any] = {
            "openapi": OPENAPI_VERSION,
            "info": {"title": title, "version": version},
            "paths": {},
            "components": {
                "schemas": {"Problem": PROBLEM_SCHEMA},
                "responses": {
                    "Problem": {
                        "description": "An RFC 9457 problem",
                        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                    }
                },
            },
        }

    def add(self, path: str, method: str, operation: Mapping[str, Any]) -> None:
        item = self._doc["paths"].setdefault(openapi_path(path), {})
        item.setdefault(method.lower(), _with_problems(operation))

    def has(self, path: str, method: str) -> bool:
        return method.lower() in self._doc["paths"].get(openapi_path(path), {})

    def document(self) -> dict[str, Any]:
        return self._doc


def build_document(
    title: str, routes: Iterable[RouteInfo], extra_routes: Iterable[MountedRoute] = ()
) -> dict[str, Any]:
    """The description of every chain route, the fixed routes and ``extra_routes``."""
    builder = DocumentBuilder(title, "1")
    for route in routes:
        for method in route.methods:
            operation = route.describe(route.path, method) if route.describe else None
            if operation is None:
                operation = generic_operation(route.path, method, route.terminal_description, route.terminal.name)
            builder.add(route.path, method, operation)
    for path, method, summary, tag in FIXED_ROUTES:
        builder.add(path, method, generic_operation(path, method, summary, tag))
    for mounted in extra_routes:
        if not builder.has(mounted.path, mounted.method):
            operation = generic_operation(
                mounted.path, mounted.method, mounted.summary, "other", mounted.media_type, mounted.status
            )
            builder.add(mounted.path, mounted.method, operation)
    return builder.document()


def document_title(service_id: str) -> str:
    return f"kafka-sidecar ({service_id})"


def find_operation(document: Mapping[str, Any], route: str, method: str) -> Mapping[str, Any] | None:
    item = document.get("paths", {}).get(openapi_path(route))
    return item.get(method.lower()) if isinstance(item, Mapping) else None
