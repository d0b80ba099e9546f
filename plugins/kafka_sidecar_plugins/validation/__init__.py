"""The ``openapi-validation`` middleware: requests are checked against the served description.

Before the terminal runs: the Content-Type against the operation's request media types (415), path,
query and header parameters against their schemas, and the JSON body against the request schema
(422). Every error names the field (``records[2].partition``). A deployment's per-topic JSON Schemas
for record values are enforced on produce routes (routes with a ``{topic}``).

The plugin never changes what the API answers, only how early: every check here is one the terminal
makes too, with the same status, and a schema node may declare the REST Proxy v2 ``error_code`` its
terminal uses with ``x-error-code`` (the create-consumer properties say 42204, as Confluent does).
Request media types are the ones the operation lists (the active consumer lists every v2 type).
An operation whose handler declares it checks all of that itself (``x-checked-by-handler``: the
producer's, whose request schema is generated from the structs it parses with) is not checked a second
time here, unless ``recheck_handler_checked`` says so or the request's topic has a value schema (checked
here after the request itself, so a request's own errors still come first).

Every schema is compiled once by jsonschema-rs (Draft 2020-12, in Rust), which answers "valid?"; the
pure-Python jsonschema walks an instance only when it is invalid, to name the field in the same words
as before.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs
from jsonschema.exceptions import ValidationError

from kafka_sidecar.plugin import (
    HANDLER_CHECKED,
    Exchange,
    HandlerSpec,
    HttpRequest,
    Next,
    Reply,
    Resources,
    UnsupportedMediaType,
    ValidationFailed,
    build_document,
    document_title,
    find_operation,
    hookimpl,
    v2_embedded_format,
)
from kafka_sidecar_plugins.validation._check import check_validation
from kafka_sidecar_plugins.validation._schema import Schema, load_schema

log = logging.getLogger(__name__)
JSON_VALUE_FORMATS = frozenset({"json", "jsonschema"})
ERROR_CODE_KEYWORD = "x-error-code"
"""OpenAPI extension on a schema node: the v2 ``error_code`` of a failure at or under that node."""


@dataclass(frozen=True, slots=True)
class ValidationConfig:
    media_types: bool = field(default=True, metadata={"doc": "Reject request media types the route does not accept."})
    parameters: bool = field(default=True, metadata={"doc": "Validate path, query and header parameters."})
    bodies: bool = field(default=True, metadata={"doc": "Validate JSON request bodies against the route's schema."})
    recheck_handler_checked: bool = field(
        default=False,
        metadata={
            "doc": "Also check operations whose handler declares it checks them itself (`x-checked-by-handler`: "
            "same status, field and code); off, such a request is checked once, by its handler."
        },
    )
    topic_schemas: Mapping[str, str] = field(
        default_factory=dict,
        metadata={"doc": "Topic -> JSON Schema for record values: a file path or inline JSON text."},
    )


def field_name(error: ValidationError) -> str:
    """``records[2].headers.x`` from a jsonschema error, including a missing or unexpected property."""
    text = ""
    for part in error.absolute_path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    instance = error.instance
    extra: str | None = None
    required = error.validator_value if error.validator == "required" else None
    if isinstance(required, list) and isinstance(instance, dict):
        extra = next((name for name in required if name not in instance), None)
    elif error.validator == "additionalProperties" and isinstance(instance, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = next((name for name in instance if name not in known), None)
    if extra is not None:
        text = f"{text}.{extra}" if text else extra
    return text


def message_of(error: ValidationError) -> str:
    """The error's message, with the nearest known name for an unexpected property (a typo)."""
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        unexpected = [name for name in error.instance if name not in known]
        close = difflib.get_close_matches(unexpected[0], list(known), n=1) if unexpected else []
        if close:
            return f"{error.message} (did you mean {close[0]!r}?)"
    return error.message


def declared_error_code(root: Mapping[str, Any] | bool, error: ValidationError) -> int | None:
    """The innermost ``x-error-code`` on the schema path of ``error`` (``None`` when none is declared)."""
    node: object = root
    found: int | None = None
    for step in error.absolute_schema_path:
        if isinstance(node, Mapping):
            code = node.get(ERROR_CODE_KEYWORD)
            found = code if isinstance(code, int) else found
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        else:
            break
    return found


def _prefixed(prefix: str, name: str) -> str:
    if not name:
        return prefix
    return f"{prefix}{name}" if name.startswith("[") else f"{prefix}.{name}"


class _Operation:
    def __init__(self, operation: Mapping[str, Any]) -> None:
        self.handler_checked = operation.get(HANDLER_CHECKED) is True
        """Its handler checks all this itself, with the same answers (the producer, say)."""
        # (name, where, key to look up, required, schema, the schema's type); parameters of unknown location
        # are never present
        self.parameters: list[tuple[str, str, str, bool, Schema, object]] = [
            (
                p["name"],
                where,
                p["name"].lower() if where == "header" else p["name"],
                bool(p.get("required")),
                Schema(schema),
                schema.get("type") if isinstance(schema, Mapping) else None,
            )
            for p in operation.get("parameters", ())
            if isinstance(p, Mapping) and "name" in p
            for where, schema in ((p.get("in", "query"), p.get("schema", {})),)
        ]
        body = operation.get("requestBody") or {}
        self.body_required = bool(body.get("required"))
        code = body.get(ERROR_CODE_KEYWORD, 41501)
        self.media_type_code = code if isinstance(code, int) else 41501
        """The v2 code of a media type the operation does not list (its terminal's; REST Proxy v2: 41501)."""
        self.media: dict[str, Schema] = {
            media: Schema(spec.get("schema", {})) for media, spec in (body.get("content") or {}).items()
        }

    def check_parameters(self, request: HttpRequest) -> None:
        for name, where, key, required, schema, kind in self.parameters:
            if where == "path":
                raw = request.path_params.get(key)
            elif where == "query":
                raw = request.query.get(key)
            elif where == "header":
                raw = request.headers.get(key)
            else:
                raw = None
            if raw is None:
                if required:
                    raise ValidationFailed(f"{where} parameter {name!r} is required", field=name)
                continue
            error = schema.error(_coerce(raw, kind))
            if error is not None:
                raise ValidationFailed(f"{where} parameter {name!r}: {error.message}", field=name)

    def check_media_type(self, request: HttpRequest) -> str | None:
        if not self.media or (not request.has_body and not self.body_required):
            return None
        media = request.content_type or "application/json"
        if media not in self.media:
            raise UnsupportedMediaType(
                f"content type {media!r} is not accepted here; use one of: {', '.join(self.media)}",
                field="Content-Type",
                v2_error_code=self.media_type_code,
            )
        return media

    def check_body(self, exchange: Exchange, media: str | None) -> None:
        request = exchange.http()
        if not request.has_body:
            if self.body_required:
                raise ValidationFailed("a request body is required", field="body")
            return
        if media is None or not media.endswith("json"):
            return
        schema = self.media[media]
        if schema.schema in ({}, True):
            return  # accepts anything (a stream of JSON objects, say): nothing to parse
        error = schema.error(exchange.json_body())
        if error is not None:
            raise ValidationFailed(
                message_of(error),
                field=field_name(error) or "body",
                v2_error_code=declared_error_code(schema.schema, error),
            )


def _check_schemas(operation: Mapping[str, Any], where: str) -> None:
    """Every schema ``operation`` describes (parameters, request bodies) is a JSON Schema; ValueError naming
    the route and the schema otherwise."""
    body = operation.get("requestBody") or {}
    schemas = [(f"parameter {p.get('name')!r}", p.get("schema", {})) for p in operation.get("parameters", ())
               if isinstance(p, Mapping)]  # fmt: skip
    schemas += [
        (f"request body {media!r}", spec.get("schema", {})) for media, spec in (body.get("content") or {}).items()
    ]
    for name, schema in schemas:
        try:
            jsonschema_rs.meta.validate(schema)  # in Rust, microseconds (its meta-schema validator: ~1 MB, once)
        except (ValueError, jsonschema_rs.ReferencingError) as exc:
            reason = str(exc).split("\n", 1)[0]
            raise ValueError(f"{where}: the {name} schema is not a JSON Schema: {reason}") from None


def _coerce(raw: str, kind: object) -> object:
    """Path and query values are text; for a schema of ``kind`` integer/number/boolean, the parsed value."""
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
    except ValueError:
        return raw
    if kind == "boolean" and raw in ("true", "false"):
        return raw == "true"
    return raw


class ValidationHandler:
    def __init__(self, config: ValidationConfig, resources: Resources) -> None:
        self._config = config
        self._routes = resources.routes
        self._topics = {topic: load_schema(topic, source) for topic, source in config.topic_schemas.items()}
        self._operations: dict[tuple[str, str], _Operation | None] = {}
        # The described schemas are checked at assembly (and so in `check`), not on a route's first request;
        # their validators are compiled on that request: all 47 routes' compiled validators would hold about
        # 6 MB of the idle sidecar's RSS.
        self._document: Mapping[str, Any] = build_document(document_title(resources.config.service.id), self._routes)
        for route in self._routes:
            for method in route.methods:
                found = find_operation(self._document, route.path, method)
                if found is not None:
                    _check_schemas(found, f"{method} {route.path}")

    def _operation(self, route: str, method: str) -> _Operation | None:
        key = (route, method)
        if key not in self._operations:  # compiled on the route's first request
            found = find_operation(self._document, route, method)
            self._operations[key] = _Operation(found) if found is not None else None
        return self._operations[key]

    async def __call__(self, exchange: Exchange, call_next: Next) -> Reply:
        if exchange.kind != "http":
            return await call_next(exchange)
        request = exchange.http()
        operation = self._operation(request.route, request.method)
        topic = request.path_params.get("topic")
        values = self._topics.get(topic) if topic is not None else None
        # A request its handler checks itself is left to it, unless its values are checked here (then the
        # request is checked first, so its own errors come before its values', as the handler would order them).
        if operation is not None and (
            values is not None or self._config.recheck_handler_checked or not operation.handler_checked
        ):
            if self._config.parameters:
                operation.check_parameters(request)
            media = operation.check_media_type(request) if self._config.media_types else request.content_type
            if self._config.bodies:
                operation.check_body(exchange, media)
        if values is not None and topic is not None:
            self._check_values(exchange, values, topic)
        return await call_next(exchange)

    def _check_values(self, exchange: Exchange, schema: Schema, topic: str) -> None:
        body = exchange.json_body()
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            return
        fmt = body.get("valueFormat")
        media = exchange.http().content_type
        embedded = v2_embedded_format(media)
        if fmt is None and embedded is not None:
            fmt = embedded or "json"
        if fmt not in (None, *JSON_VALUE_FORMATS):
            return
        records: Sequence[object] = body["records"]
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                continue
            error = schema.error(record.get("value"))
            if error is not None:
                raise ValidationFailed(
                    f"value does not match the schema of topic {topic!r}: {error.message}",
                    field=_prefixed(f"records[{index}].value", field_name(error)),
                )


@hookimpl
def kafka_sidecar_register_handlers(register: Callable[[HandlerSpec[ValidationConfig]], None]) -> None:
    register(
        HandlerSpec(
            name="validation",
            factory=ValidationHandler,
            config_type=ValidationConfig,
            kind="middleware",
            check=check_validation,
            description="Validate requests against the served OpenAPI description and per-topic value schemas.",
        )
    )
