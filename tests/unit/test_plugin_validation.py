"""The validation middleware alone, against the producer's described operation; fake terminal."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from kafka_sidecar._chain import LinkInfo
from kafka_sidecar._config.model import KafkaConfig, SidecarConfig
from kafka_sidecar._errors import UnsupportedMediaType, ValidationFailed
from kafka_sidecar._exchange import Exchange, HttpRequest, Reply
from kafka_sidecar._kafka.producer import ProducerService
from kafka_sidecar._openapi import HANDLER_CHECKED, find_operation, openapi_path
from kafka_sidecar._resources import Resources
from kafka_sidecar._serdes.base import SerdeRegistry
from kafka_sidecar._view import RouteInfo
from kafka_sidecar_handlers.producer._openapi import describe_produce
from kafka_sidecar_plugins.validation import ValidationConfig, ValidationHandler

ROUTES = ("/producers/{topic}", "/topics/{topic}/partitions/{partition}")
ORDER_SCHEMA = {
    "type": "object",
    "required": ["id", "amount"],
    "properties": {"id": {"type": "string"}, "amount": {"type": "number", "minimum": 0}},
}


def handler(**config: Any) -> ValidationHandler:
    """The plugin over the producer's described routes; it rechecks them unless told otherwise (the producer
    declares ``x-checked-by-handler``, and these tests are about the plugin's own checks)."""
    config.setdefault("recheck_handler_checked", True)
    links = (LinkInfo("producer", "producer"),)
    routes = tuple(RouteInfo(route, ("POST",), links, describe=describe_produce) for route in ROUTES)
    res = Resources(SidecarConfig(), SerdeRegistry(), ProducerService(KafkaConfig()), routes=routes)
    return ValidationHandler(ValidationConfig(**config), res)


def exchange(
    body: object, content_type: str | None = "application/json", route: str = ROUTES[0], **params: str
) -> Exchange:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": content_type} if content_type else {}
    path_params = params or {"topic": "orders"}
    request = HttpRequest("POST", "/x", route, path_params, {}, headers, raw)
    return Exchange("http", route, request)


class Terminal:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, exchange: Exchange) -> Reply:
        self.calls += 1
        return Reply(200)


async def rejected(h: ValidationHandler, ex: Exchange) -> ValidationFailed | UnsupportedMediaType:
    terminal = Terminal()
    with pytest.raises((ValidationFailed, UnsupportedMediaType)) as caught:
        await h(ex, terminal)
    assert terminal.calls == 0
    assert isinstance(caught.value, ValidationFailed | UnsupportedMediaType)
    return caught.value


@pytest.mark.asyncio
async def test_a_valid_request_reaches_the_terminal() -> None:
    terminal = Terminal()
    await handler()(exchange({"records": [{"key": "k", "value": {"a": 1}, "partition": 0}]}), terminal)
    await handler()(exchange({"records": [{"value": "AA=="}]}, "application/vnd.kafka.binary.v2+json"), terminal)
    assert terminal.calls == 2


@pytest.mark.asyncio
async def test_a_body_without_content_type_is_415() -> None:
    error = await rejected(handler(), exchange({"records": [{"value": 1}]}, content_type=None))
    assert isinstance(error, UnsupportedMediaType)
    assert error.field == "Content-Type"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "records"),
        ({"records": []}, "records"),
        ({"records": [{"value": 1}], "extra": 1}, "extra"),
        ({"records": [{"value": 1}, {"value": 2, "partition": -1}]}, "records[1].partition"),
        ({"records": [{"value": 1, "colour": "red"}]}, "records[0].colour"),
        ({"records": [{"value": 1, "headers": {"h": 5}}]}, "records[0].headers.h"),
        ({"records": [{"value": 1, "correlationId": ""}]}, "records[0].correlationId"),
    ],
)
async def test_body_errors_name_the_field(body: object, field: str) -> None:
    error = await rejected(handler(), exchange(body))
    assert error.status == 422
    assert error.field == field


@pytest.mark.asyncio
async def test_an_unaccepted_media_type_is_415() -> None:
    error = await rejected(handler(), exchange({"records": [{"value": 1}]}, content_type="text/plain"))
    assert error.status == 415
    assert error.field == "Content-Type"


@pytest.mark.asyncio
async def test_parameters_are_checked() -> None:
    ex = exchange({"records": [{"value": 1}]}, route=ROUTES[1], topic="orders", partition="x1")
    assert (await rejected(handler(), ex)).field == "partition"
    assert (await rejected(handler(), exchange({"records": [{"value": 1}]}, topic="bad topic!"))).field == "topic"


@pytest.mark.asyncio
async def test_invalid_json_is_422_on_body() -> None:
    assert (await rejected(handler(), exchange(b"{nope"))).field == "body"


@pytest.mark.asyncio
async def test_per_topic_value_schemas_are_enforced_on_produce(tmp_path: Path) -> None:
    schema_file = tmp_path / "order.json"
    schema_file.write_text(json.dumps(ORDER_SCHEMA))
    h = handler(topic_schemas={"orders": str(schema_file), "inline": json.dumps({"type": "integer"})})
    good = {"records": [{"value": {"id": "a", "amount": 2}}]}
    terminal = Terminal()
    await h(exchange(good), terminal)
    await h(exchange({"records": [{"value": "anything"}]}, topic="other"), terminal)
    await h(exchange({"valueFormat": "binary", "records": [{"value": "AA=="}]}), terminal)
    assert terminal.calls == 3
    bad = {"records": [{"value": {"id": "a", "amount": 2}}, {"value": {"id": "b", "amount": -1}}]}
    error = await rejected(h, exchange(bad))
    assert error.field == "records[1].value.amount"
    assert "orders" in error.detail
    error = await rejected(h, exchange({"records": [{"value": {"amount": 1}}]}))
    assert error.field == "records[0].value.id"
    error = await rejected(h, exchange({"records": [{"value": "x"}]}, topic="inline"))
    assert error.field == "records[0].value"


def test_the_producer_declares_that_it_checks_its_requests_itself() -> None:
    for route in ROUTES:
        described = describe_produce(route, "POST")
        assert described is not None
        assert described[HANDLER_CHECKED] is True
    assert describe_produce(ROUTES[0], "GET") is None


@pytest.mark.asyncio
async def test_an_operation_its_handler_checks_is_checked_once_by_the_handler(tmp_path: Path) -> None:
    """Without ``recheck_handler_checked`` the plugin leaves the producer's checks to the producer (bad
    parameters, media type and body reach it), except on a topic with a value schema: there it checks the
    request first and then its values, so a request's own error still comes before its values'."""
    schema_file = tmp_path / "order.json"
    schema_file.write_text(json.dumps(ORDER_SCHEMA))
    h = handler(recheck_handler_checked=False, topic_schemas={"orders": str(schema_file)})
    terminal = Terminal()
    await h(exchange({"records": [{"value": 1, "colour": "red"}]}, topic="other"), terminal)
    await h(exchange({"records": [{"value": 1}]}, content_type="text/plain", topic="other"), terminal)
    await h(exchange({"records": [{"value": 1}]}, route=ROUTES[1], topic="other", partition="x1"), terminal)
    assert terminal.calls == 3
    error = await rejected(h, exchange({"records": [{"value": {"id": "a", "amount": -1}}]}))
    assert error.field == "records[0].value.amount"
    error = await rejected(h, exchange({"records": [{"value": {"amount": -1}, "colour": "red"}]}))
    assert error.field == "records[0].colour"


@pytest.mark.asyncio
async def test_an_operation_without_the_declaration_is_checked_by_the_plugin() -> None:
    def describe(path: str, method: str) -> dict[str, object]:
        operation = dict(describe_produce(path, method) or {})
        del operation[HANDLER_CHECKED]
        return operation

    links = (LinkInfo("team-terminal", "team-terminal"),)
    routes = (RouteInfo(ROUTES[0], ("POST",), links, describe=describe),)
    res = Resources(SidecarConfig(), SerdeRegistry(), ProducerService(KafkaConfig()), routes=routes)
    error = await rejected(ValidationHandler(ValidationConfig(), res), exchange({"records": [{"valu": 1}]}))
    assert error.field == "records[0].valu"


def test_a_broken_topic_schema_fails_at_assembly() -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        handler(topic_schemas={"orders": "{not json"})


def test_a_route_with_a_broken_described_schema_fails_at_assembly_not_on_its_first_request() -> None:
    def describe(path: str, method: str) -> dict[str, object]:
        return {"parameters": [{"name": "topic", "in": "path", "required": True, "schema": {"type": 5}}]}

    links = (LinkInfo("team-terminal", "team-terminal"),)
    routes = (RouteInfo("/team/{topic}", ("POST",), links, describe=describe),)
    res = Resources(SidecarConfig(), SerdeRegistry(), ProducerService(KafkaConfig()), routes=routes)
    expected = "POST /team/{topic}: the parameter 'topic' schema is not a JSON Schema"
    with pytest.raises(ValueError, match=re.escape(expected)):
        ValidationHandler(ValidationConfig(), res)


@pytest.mark.asyncio
async def test_consumer_exchanges_pass_untouched() -> None:
    terminal = Terminal()
    await handler()(Exchange("consumer", "c"), terminal)
    assert terminal.calls == 1


def test_starlette_converters_become_openapi_params() -> None:
    assert openapi_path("/a/{id:int}/b/{name}") == "/a/{id}/b/{name}"
    assert find_operation({"paths": {"/a/{id}": {"get": {"x": 1}}}}, "/a/{id:int}", "GET") == {"x": 1}
