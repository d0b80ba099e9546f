"""Registry client and schema resolution against an in-test HTTP double (httpx.MockTransport).

The double answers the Confluent REST subset; tests against a real registry are in
tests/integration/test_schema_*.py.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from kafka_sidecar._errors import Conflict, UnsupportedMediaType, UpstreamUnavailable, ValidationFailed
from kafka_sidecar._serdes.base import SchemaRef, SerializeContext
from kafka_sidecar_plugins.schema_registry._avro import AvroFormat
from kafka_sidecar_plugins.schema_registry._client import SchemaRegistryClient
from kafka_sidecar_plugins.schema_registry._config import SchemaRegistryConfig
from kafka_sidecar_plugins.schema_registry._service import SchemaService, ServiceBinding
from kafka_sidecar_testing.leak_scan import SecretWatch

SR_USER = "sr-user"
SR_PASSWORD = "sr-basic-pass-91c2"
SR_BEARER = "sr-bearer-tok-5e7a"


@pytest.fixture(autouse=True)
def _watch_secrets(secret_watch: SecretWatch) -> None:
    """Registers the schema-registry credentials for the whole-run leak check (tests/zz_final)."""
    secret_watch.add_basic_auth(SR_USER, SR_PASSWORD)
    secret_watch.add(SR_BEARER)


RECORD = json.dumps({"type": "record", "name": "Rec", "namespace": "ns", "fields": [{"name": "a", "type": "int"}]})
RECORD_V2 = json.dumps(
    {
        "type": "record",
        "name": "Rec",
        "namespace": "ns",
        "fields": [{"name": "a", "type": "int"}, {"name": "b", "type": "string", "default": ""}],
    }
)


class Double:
    """A tiny registry: subjects -> list of schema texts; ids assigned in registration order."""

    def __init__(self) -> None:
        self.schemas: list[str] = []
        self.subjects: dict[str, list[int]] = {}
        self.calls: list[str] = []
        self.down = False
        self.conflict = False
        self.requests: list[httpx.Request] = []

    def add(self, subject: str, text: str) -> int:
        if text not in self.schemas:
            self.schemas.append(text)
        schema_id = self.schemas.index(text) + 1
        versions = self.subjects.setdefault(subject, [])
        if schema_id not in versions:
            versions.append(schema_id)
        return schema_id

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.calls.append(f"{request.method} {request.url.path}")
        if self.down:
            raise httpx.ConnectError("refused", request=request)
        parts = request.url.path.removeprefix("/base").strip("/").split("/")
        if parts[:2] == ["schemas", "ids"]:
            index = int(parts[2]) - 1
            if 0 <= index < len(self.schemas):
                return httpx.Response(200, json={"schema": self.schemas[index]})
            return httpx.Response(404, json={"error_code": 40403, "message": "Schema not found"})
        subject = parts[1]
        versions = self.subjects.get(subject)
        if request.method == "POST" and len(parts) == 3:
            if self.conflict:
                return httpx.Response(409, json={"error_code": 409, "message": "incompatible"})
            return httpx.Response(200, json={"id": self.add(subject, json.loads(request.content)["schema"])})
        if versions is None:
            return httpx.Response(404, json={"error_code": 40401, "message": "Subject not found"})
        if request.method == "POST":
            text = json.loads(request.content)["schema"]
            if text in self.schemas and self.schemas.index(text) + 1 in versions:
                schema_id = self.schemas.index(text) + 1
                return httpx.Response(
                    200,
                    json={
                        "subject": subject,
                        "id": schema_id,
                        "version": versions.index(schema_id) + 1,
                        "schema": text,
                    },
                )
            return httpx.Response(404, json={"error_code": 40403, "message": "Schema not found"})
        version = len(versions) if parts[3] == "latest" else int(parts[3])
        if not 1 <= version <= len(versions):
            return httpx.Response(404, json={"error_code": 40402, "message": "Version not found"})
        schema_id = versions[version - 1]
        return httpx.Response(
            200, json={"subject": subject, "version": version, "id": schema_id, "schema": self.schemas[schema_id - 1]}
        )


def service(double: Double, **options: object) -> SchemaService:
    config = SchemaRegistryConfig(urls=("http://registry.test",), **options)  # type: ignore[arg-type]
    return SchemaService(config, SchemaRegistryClient(config, transport=httpx.MockTransport(double.handle)))


def ctx(**ref: object) -> SerializeContext:
    return SerializeContext("orders", "value", SchemaRef(**ref))  # type: ignore[arg-type]


AVRO = AvroFormat()


@pytest.mark.asyncio
async def test_resolution_order_and_no_round_trip_in_steady_state() -> None:
    double = Double()
    double.add("orders-value", RECORD)
    v2 = double.add("orders-value", RECORD_V2)
    svc = service(double)
    assert (await svc.resolve(AVRO, ctx(schema_id=1)))[0] == 1
    assert (await svc.resolve(AVRO, ctx(version=2)))[0] == v2
    assert (await svc.resolve(AVRO, ctx(schema=RECORD)))[0] == 1
    assert (await svc.resolve(AVRO, ctx()))[0] == v2  # latest
    before = len(double.calls)
    for ref in ({"schema_id": 1}, {"version": 2}, {"schema": RECORD}, {}):
        await svc.resolve(AVRO, ctx(**ref))
    assert double.calls[before:] == []


@pytest.mark.asyncio
async def test_raw_schema_registered_when_missing_and_rejected_when_auto_register_off() -> None:
    double = Double()
    svc = service(double)
    schema_id, _ = await svc.resolve(AVRO, ctx(schema=RECORD))
    assert double.subjects == {"orders-value": [schema_id]}
    strict = service(Double(), auto_register=False)
    with pytest.raises(ValidationFailed) as caught:
        await strict.resolve(AVRO, ctx(schema=RECORD))
    assert caught.value.field == "valueSchema"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("strategy", "subject"),
    [("RecordNameStrategy", "ns.Rec"), ("TopicRecordNameStrategy", "orders-ns.Rec"), ("topic", "orders-value")],
)
async def test_subject_name_strategies(strategy: str, subject: str) -> None:
    double = Double()
    await service(double).resolve(AVRO, ctx(schema=RECORD, subject_strategy=strategy))
    assert list(double.subjects) == [subject]


@pytest.mark.asyncio
async def test_config_default_strategy_and_unknown_strategy() -> None:
    double = Double()
    await service(double, subject_strategy="record").resolve(AVRO, ctx(schema=RECORD))
    assert list(double.subjects) == ["ns.Rec"]
    with pytest.raises(ValidationFailed) as caught:
        await service(double).resolve(AVRO, ctx(schema=RECORD, subject_strategy="Bogus"))
    assert caught.value.field == "valueSubjectNameStrategy"


@pytest.mark.asyncio
async def test_not_found_paths_name_the_request_field() -> None:
    double = Double()
    double.add("orders-value", RECORD)
    svc = service(double)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"schema_id": 99}, "valueSchemaId"),
        ({"version": 5}, "valueSchemaVersion"),
        ({"subject": "nope"}, "valueSchema"),
        ({"version": 1, "subject": "nope"}, "valueSchemaVersion"),
    ]
    for ref, field in cases:
        with pytest.raises(ValidationFailed) as caught:
            await svc.resolve(AVRO, ctx(**ref))
        assert caught.value.status == 422
        assert caught.value.field == field


@pytest.mark.asyncio
async def test_invalid_raw_schema_and_incompatible_schema() -> None:
    double = Double()
    with pytest.raises(ValidationFailed) as caught:
        await service(double).resolve(AVRO, ctx(schema='{"type": "nope"}'))
    assert caught.value.field == "valueSchema"
    double.conflict = True
    with pytest.raises(Conflict) as conflict:
        await service(double).resolve(AVRO, ctx(schema=RECORD))
    assert conflict.value.status == 409
    assert conflict.value.field == "valueSchema"


@pytest.mark.asyncio
async def test_registry_down_cached_keeps_working_uncached_is_503() -> None:
    double = Double()
    double.add("orders-value", RECORD)
    svc = service(double, latest_ttl_seconds=0.0)
    await svc.resolve(AVRO, ctx(schema_id=1))
    await svc.resolve(AVRO, ctx())
    double.down = True
    assert (await svc.resolve(AVRO, ctx(schema_id=1)))[0] == 1
    assert (await svc.resolve(AVRO, ctx()))[0] == 1  # expired latest, registry down: stale value used
    with pytest.raises(UpstreamUnavailable) as caught:
        await svc.resolve(AVRO, ctx(schema=RECORD_V2))
    assert caught.value.status == 503


@pytest.mark.asyncio
async def test_failover_to_second_url_and_credentials() -> None:
    double = Double()
    double.add("s", RECORD)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "dead.test":
            raise httpx.ConnectError("refused", request=request)
        return double.handle(request)

    config = SchemaRegistryConfig(
        urls=("http://dead.test", "http://live.test/base/"), username=SR_USER, password=SR_PASSWORD
    )
    client = SchemaRegistryClient(config, transport=httpx.MockTransport(handler))
    assert (await client.schema_by_id(1)).schema == RECORD
    assert (await client.schema_by_id(1)).schema == RECORD
    assert client.requests == 3  # dead, live, then live first
    assert double.requests[-1].url.path == "/base/schemas/ids/1"
    assert (
        double.requests[-1].headers["authorization"]
        == "Basic " + base64.b64encode(f"{SR_USER}:{SR_PASSWORD}".encode()).decode()
    )
    bearer = SchemaRegistryClient(
        SchemaRegistryConfig(urls=("http://live.test",), bearer_token=SR_BEARER), transport=httpx.MockTransport(handler)
    )
    await bearer.schema_by_id(1)
    assert double.requests[-1].headers["authorization"] == f"Bearer {SR_BEARER}"


def test_bearer_and_basic_together_rejected() -> None:
    with pytest.raises(ValueError, match="either"):
        SchemaRegistryClient(SchemaRegistryConfig(urls=("http://x",), bearer_token="t", username="u"))


@pytest.mark.asyncio
async def test_unbound_binding_without_registry_is_415() -> None:
    binding = ServiceBinding()
    binding.bind(None, problem="no registry")
    with pytest.raises(UnsupportedMediaType):
        await binding.get()
