"""An async client for the Confluent Schema Registry REST subset (works with Apicurio ccompat, Karapace).

Every failure is an error of :mod:`kafka_sidecar._errors`: the registry not answering (connection,
timeout, 5xx, refused credentials) is :class:`UpstreamUnavailable` (503); a missing subject, version or
schema is :class:`RegistryNotFound`; an invalid schema is :class:`RegistryRejected`; an incompatible
one is :class:`RegistryConflict`. Callers re-raise the last three naming their request field.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from kafka_sidecar.plugin import Conflict, NotFound, UpstreamUnavailable, ValidationFailed
from kafka_sidecar_plugins.schema_registry._config import SchemaRegistryConfig

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryNotFound(NotFound):
    """40401 subject, 40402 version or 40403 schema not found (``registry_code`` tells which)."""

    @property
    def registry_code(self) -> int:
        return int(self.v2_error_code or 0)


class RegistryRejected(ValidationFailed):
    """42201 invalid schema, 42202 invalid version."""


class RegistryConflict(Conflict):
    """409: the schema is incompatible with the subject's earlier versions."""


@dataclass(frozen=True, slots=True)
class Reference:
    name: str
    subject: str
    version: int


@dataclass(frozen=True, slots=True)
class RegisteredSchema:
    """A schema as the registry stores it."""

    schema: str
    schema_type: str = "AVRO"
    references: tuple[Reference, ...] = ()


@dataclass(frozen=True, slots=True)
class SubjectVersion:
    subject: str
    version: int
    schema_id: int
    schema: RegisteredSchema


def build_ssl_context(config: SchemaRegistryConfig) -> ssl.SSLContext | bool:
    if config.ca_file is None and config.client_cert is None:
        return True
    context = ssl.create_default_context(cafile=config.ca_file)
    if config.client_cert is not None:
        context.load_cert_chain(config.client_cert, config.client_key)
    return context


def _auth_headers(config: SchemaRegistryConfig) -> dict[str, str]:
    headers = {"Accept": f"{MEDIA_TYPE}, application/json"}
    if config.bearer_token:
        headers["Authorization"] = f"Bearer {config.bearer_token}"
    return headers


class SchemaRegistryClient:
    """One pooled HTTP client; base URLs are tried in order, the last one that answered goes first."""

    def __init__(self, config: SchemaRegistryConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not config.urls:
            raise ValueError("schema_registry.urls is empty")
        if config.bearer_token and (config.username or config.password):
            raise ValueError("schema_registry: give either bearer_token or username/password, not both")
        self._urls = [url.rstrip("/") for url in config.urls]
        self._preferred = 0
        auth = httpx.BasicAuth(config.username, config.password or "") if config.username else None
        self._http = httpx.AsyncClient(
            auth=auth,
            headers=_auth_headers(config),
            timeout=httpx.Timeout(config.request_timeout, connect=config.connect_timeout),
            verify=build_ssl_context(config),
            transport=transport,
        )
        self.requests = 0
        """Requests sent (tests and benchmarks use it to check the cache)."""

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: Mapping[str, object] | None = None) -> Any:
        order = self._urls[self._preferred :] + self._urls[: self._preferred]
        last: str = "no URL tried"
        for url in order:
            self.requests += 1
            try:
                response = await self._http.request(
                    method,
                    url + path,
                    content=None if body is None else json.dumps(body),
                    headers=None if body is None else {"Content-Type": MEDIA_TYPE},
                )
            except httpx.HTTPError as exc:
                last = f"{url}: {type(exc).__name__} {exc}".strip()
                continue
            if response.status_code >= 500:
                last = f"{url}: HTTP {response.status_code} {response.text[:200]}"
                continue
            self._preferred = self._urls.index(url)
            return _result(response, method, path)
        raise UpstreamUnavailable(f"schema registry unavailable ({last})", field="schema_registry")

    async def schema_by_id(self, schema_id: int) -> RegisteredSchema:
        return _registered(await self._call("GET", f"/schemas/ids/{schema_id}"))

    async def version(self, subject: str, version: int | str) -> SubjectVersion:
        return _subject_version(await self._call("GET", f"/subjects/{_q(subject)}/versions/{version}"), subject)

    async def lookup(self, subject: str, schema: RegisteredSchema) -> SubjectVersion:
        return _subject_version(await self._call("POST", f"/subjects/{_q(subject)}", _schema_body(schema)), subject)

    async def register(self, subject: str, schema: RegisteredSchema) -> int:
        data = await self._call("POST", f"/subjects/{_q(subject)}/versions", _schema_body(schema))
        return int(data["id"])

    async def subjects(self) -> list[str]:
        return [str(s) for s in await self._call("GET", "/subjects")]


def _q(subject: str) -> str:
    return quote(subject, safe="")


def _schema_body(schema: RegisteredSchema) -> dict[str, object]:
    body: dict[str, object] = {"schema": schema.schema}
    if schema.schema_type != "AVRO":
        body["schemaType"] = schema.schema_type
    if schema.references:
        body["references"] = [{"name": r.name, "subject": r.subject, "version": r.version} for r in schema.references]
    return body


def _result(response: httpx.Response, method: str, path: str) -> Any:
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code < 300:
        if data is None:
            raise UpstreamUnavailable(f"schema registry sent a non-JSON answer to {method} {path}")
        return data
    code = data.get("error_code") if isinstance(data, dict) else None
    message = data.get("message") if isinstance(data, dict) else response.text[:200]
    detail = f"schema registry: {message} ({method} {path})"
    if response.status_code == 404:
        raise RegistryNotFound(detail, v2_error_code=code if isinstance(code, int) else 40400)
    if response.status_code == 409:
        raise RegistryConflict(detail, v2_error_code=409)
    if response.status_code == 422:
        raise RegistryRejected(detail, v2_error_code=code if isinstance(code, int) else 42201)
    if response.status_code in (401, 403):
        raise UpstreamUnavailable(f"schema registry refused our credentials: {message}", field="schema_registry")
    raise UpstreamUnavailable(f"schema registry answered HTTP {response.status_code}: {detail}")


def _registered(data: Any) -> RegisteredSchema:
    refs = tuple(Reference(str(r["name"]), str(r["subject"]), int(r["version"])) for r in data.get("references") or ())
    return RegisteredSchema(str(data["schema"]), str(data.get("schemaType") or "AVRO"), refs)


def _subject_version(data: Any, subject: str) -> SubjectVersion:
    return SubjectVersion(str(data.get("subject") or subject), int(data["version"]), int(data["id"]), _registered(data))
