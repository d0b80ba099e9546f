"""Schema resolution and caching shared by the avro, jsonschema and protobuf formats.

Produce-side resolution order (as the Java sidecar): schema id; subject + version; raw schema (look
up, register when ``auto_register``); latest version of the subject. Everything is cached: schemas by
id, subject/version, lookups of raw schemas, compiled schemas by id, and ``latest`` for a TTL, so the
steady state makes no registry round trip. When the registry is down, cached entries (even an
expired ``latest``) keep working; anything uncached is a 503.

With metrics exported (``resources.metrics.enabled``) every cache lookup is counted in
``kafka_sidecar_schema_cache_lookups_total{cache, result}`` and every failed registry call in
``kafka_sidecar_schema_registry_errors_total{operation, kind}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from kafka_sidecar.plugin import SerializeContext, UnsupportedMediaType, UpstreamUnavailable, ValidationFailed
from kafka_sidecar_plugins.schema_registry._cache import BoundedCache
from kafka_sidecar_plugins.schema_registry._client import (
    RegisteredSchema,
    RegistryConflict,
    RegistryNotFound,
    RegistryRejected,
    SchemaRegistryClient,
    SubjectVersion,
)
from kafka_sidecar_plugins.schema_registry._config import STRATEGY_ALIASES, SchemaRegistryConfig, SubjectStrategy
from kafka_sidecar_plugins.schema_registry._format import SchemaFormat

if TYPE_CHECKING:
    from kafka_sidecar.plugin import Counter, MetricsRegistry

T = TypeVar("T")
CACHE_LOOKUPS = "kafka_sidecar_schema_cache_lookups_total"
REGISTRY_ERRORS = "kafka_sidecar_schema_registry_errors_total"

V2_KEY_SCHEMA_MISSING = 42201
V2_VALUE_SCHEMA_MISSING = 42202


def error_kind(exc: BaseException) -> str:
    """A bounded label for a failed registry call."""
    if isinstance(exc, UpstreamUnavailable):
        return "unavailable"
    if isinstance(exc, RegistryNotFound):
        return "not_found"
    if isinstance(exc, RegistryConflict):
        return "conflict"
    if isinstance(exc, RegistryRejected):
        return "rejected"
    return "other"


class SchemaTypeMismatch(ValueError):
    """A schema id names a schema of another type than the format in use."""


class SchemaService:
    """The registry client plus every cache; one per sidecar."""

    def __init__(
        self, config: SchemaRegistryConfig, client: SchemaRegistryClient, metrics: MetricsRegistry | None = None
    ) -> None:
        self.config = config
        self.client = client
        self._errors: Counter | None = None
        size = config.cache_size
        self._by_id: BoundedCache[int, RegisteredSchema] = BoundedCache(size)
        self._versions: BoundedCache[tuple[str, int], SubjectVersion] = BoundedCache(size)
        self._latest: BoundedCache[str, SubjectVersion] = BoundedCache(size, ttl=config.latest_ttl_seconds)
        self._lookups: BoundedCache[tuple[str, str, str], int] = BoundedCache(size)
        self._parsed: BoundedCache[tuple[str, int], object] = BoundedCache(size)
        self._parsed_raw: BoundedCache[tuple[str, str], object] = BoundedCache(size)
        if metrics is not None:
            self.use_metrics(metrics)

    def use_metrics(self, metrics: MetricsRegistry) -> None:
        """Count cache lookups and registry errors into ``metrics`` from now on."""
        lookups = metrics.counter(CACHE_LOOKUPS, "Schema cache lookups by cache and result.", ("cache", "result"))
        self._by_id.observe = _counting(lookups, "schema_by_id")
        self._versions.observe = _counting(lookups, "subject_version")
        self._latest.observe = _counting(lookups, "latest")
        self._lookups.observe = _counting(lookups, "lookup")
        self._parsed.observe = _counting(lookups, "parsed")
        self._parsed_raw.observe = _counting(lookups, "parsed_raw")
        self._errors = metrics.counter(
            REGISTRY_ERRORS, "Failed schema registry calls by operation and kind.", ("operation", "kind")
        )

    async def _ask(self, operation: str, call: Awaitable[T]) -> T:
        """Await a registry call, counting its failure."""
        try:
            return await call
        except Exception as exc:
            if self._errors is not None:
                self._errors.inc(operation, error_kind(exc))
            raise

    async def aclose(self) -> None:
        await self.client.aclose()

    # --- reading schemas -------------------------------------------------------------------------

    async def schema_by_id(self, schema_id: int) -> RegisteredSchema:
        cached = self._by_id.get(schema_id)
        if cached is None:
            cached = await self._ask("schema_by_id", self.client.schema_by_id(schema_id))
            self._by_id.put(schema_id, cached)
        return cached

    async def subject_version(self, subject: str, version: int) -> SubjectVersion:
        cached = self._versions.get((subject, version))
        if cached is None:
            cached = await self._ask("version", self.client.version(subject, version))
            self._remember(cached)
        return cached

    async def latest(self, subject: str) -> SubjectVersion:
        cached = self._latest.get(subject)
        if cached is not None:
            return cached
        try:
            found = await self._ask("latest", self.client.version(subject, "latest"))
        except UpstreamUnavailable:
            stale = self._latest.get_stale(subject)
            if stale is None:
                raise
            return stale
        self._latest.put(subject, found)
        self._remember(found)
        return found

    def _remember(self, found: SubjectVersion) -> None:
        self._versions.put((found.subject, found.version), found)
        self._by_id.put(found.schema_id, found.schema)

    async def references(self, schema: RegisteredSchema) -> dict[str, RegisteredSchema]:
        """Every schema ``schema`` references, transitively, by reference name (dependencies first)."""
        out: dict[str, RegisteredSchema] = {}

        async def walk(current: RegisteredSchema, depth: int) -> None:
            if depth > 32:
                raise ValueError("schema references nest deeper than 32 levels (a cycle?)")
            for ref in current.references:
                if ref.name in out:
                    continue
                found = await self.subject_version(ref.subject, ref.version)
                await walk(found.schema, depth + 1)
                out[ref.name] = found.schema

        await walk(schema, 0)
        return out

    async def parsed_by_id(self, fmt: SchemaFormat, schema_id: int) -> object:
        """The compiled schema for ``schema_id``; raises SchemaTypeMismatch or ValueError."""
        key = (fmt.name, schema_id)
        parsed = self._parsed.get(key)
        if parsed is None:
            schema = await self.schema_by_id(schema_id)
            if schema.schema_type != fmt.schema_type:
                raise SchemaTypeMismatch(f"schema {schema_id} is {schema.schema_type}, not {fmt.schema_type}")
            parsed = fmt.parse(schema, await self.references(schema), self.config)
            self._parsed.put(key, parsed)
        return parsed

    # --- produce-side resolution -----------------------------------------------------------------

    async def resolve(self, fmt: SchemaFormat, context: SerializeContext) -> tuple[int, object]:
        """``(schema_id, compiled schema)`` for a produce request's key or value."""
        ref = context.schema
        role = context.role
        prefix = context.field_prefix
        if ref.schema_id is not None:
            field = f"{prefix}{role}SchemaId"
            return ref.schema_id, await self._parsed_or_field_error(fmt, ref.schema_id, field)
        strategy = self._strategy(ref.subject_strategy, f"{prefix}{role}SubjectNameStrategy")
        if ref.version is not None:
            if ref.schema is not None:
                raise ValidationFailed(
                    f"{role}SchemaVersion cannot be combined with {role}Schema: give one way to find the schema",
                    field=f"{prefix}{role}SchemaVersion",
                )
            subject = ref.subject or self._subject_without_schema(context, strategy)
            field = f"{prefix}{role}SchemaVersion"
            try:
                found = await self.subject_version(subject, ref.version)
            except RegistryNotFound as exc:
                raise ValidationFailed(
                    f"subject {subject!r} has no version {ref.version}: {exc.detail}",
                    field=field,
                    v2_error_code=exc.registry_code,
                ) from exc
            return found.schema_id, await self._parsed_or_field_error(fmt, found.schema_id, field)
        if ref.schema is not None:
            return await self._resolve_raw(fmt, context, ref.schema, strategy)
        subject = ref.subject or self._subject_without_schema(context, strategy)
        try:
            found = await self.latest(subject)
        except RegistryNotFound as exc:
            raise ValidationFailed(
                f"no schema given and subject {subject!r} has none registered; send {role}Schema or "
                f"{role}SchemaId ({exc.detail})",
                field=f"{prefix}{role}Schema",
                # REST Proxy v2: a key or value without its schema is 42201 / 42202, whatever the registry said
                v2_error_code=V2_KEY_SCHEMA_MISSING if role == "key" else V2_VALUE_SCHEMA_MISSING,
            ) from exc
        return found.schema_id, await self._parsed_or_field_error(fmt, found.schema_id, f"{prefix}{role}SchemaSubject")

    async def _parsed_or_field_error(self, fmt: SchemaFormat, schema_id: int, field: str) -> object:
        try:
            return await self.parsed_by_id(fmt, schema_id)
        except RegistryNotFound as exc:
            raise ValidationFailed(
                f"schema id {schema_id} is not in the registry", field=field, v2_error_code=exc.registry_code
            ) from exc
        except (SchemaTypeMismatch, ValueError) as exc:
            raise ValidationFailed(f"schema {schema_id} cannot be used for {fmt.name}: {exc}", field=field) from exc

    async def _resolve_raw(
        self, fmt: SchemaFormat, context: SerializeContext, text: str, strategy: SubjectStrategy
    ) -> tuple[int, object]:
        field = f"{context.field_prefix}{context.role}Schema"
        parsed = self._parsed_raw.get((fmt.name, text))
        if parsed is None:
            try:
                parsed = fmt.parse(RegisteredSchema(text, fmt.schema_type), {}, self.config)
            except ValueError as exc:
                raise ValidationFailed(f"is not a valid {fmt.name} schema: {exc}", field=field) from exc
            self._parsed_raw.put((fmt.name, text), parsed)
        subject = context.schema.subject or self._subject(context, strategy, fmt.record_name(parsed), field)
        key = (subject, fmt.schema_type, text)
        schema_id = self._lookups.get(key)
        if schema_id is None:
            schema = RegisteredSchema(text, fmt.schema_type)
            schema_id = await self._lookup_or_register(subject, schema, field)
            self._lookups.put(key, schema_id)
            self._parsed.put((fmt.name, schema_id), parsed)
            self._by_id.put(schema_id, schema)
        return schema_id, parsed

    async def _lookup_or_register(self, subject: str, schema: RegisteredSchema, field: str) -> int:
        try:
            return (await self._ask("lookup", self.client.lookup(subject, schema))).schema_id
        except RegistryNotFound as exc:
            if not self.config.auto_register:
                raise ValidationFailed(
                    f"schema is not registered under subject {subject!r} and auto_register is off",
                    field=field,
                    v2_error_code=exc.registry_code,
                ) from exc
        try:
            return await self._ask("register", self.client.register(subject, schema))
        except RegistryConflict as exc:
            raise RegistryConflict(f"incompatible with subject {subject!r}: {exc.detail}", field=field) from exc
        except RegistryRejected as exc:
            raise ValidationFailed(f"registry rejected the schema: {exc.detail}", field=field) from exc

    def _strategy(self, requested: str | None, field: str) -> SubjectStrategy:
        if requested is None:
            return self.config.subject_strategy
        found = STRATEGY_ALIASES.get(requested.replace("-", "").replace(" ", "").lower())
        if found is None:
            found = STRATEGY_ALIASES.get(requested.lower())
        if found is None:
            raise ValidationFailed(
                f"unknown subject name strategy {requested!r}; use TopicNameStrategy, RecordNameStrategy "
                "or TopicRecordNameStrategy",
                field=field,
            )
        return found

    def _subject_without_schema(self, context: SerializeContext, strategy: SubjectStrategy) -> str:
        return self._subject(context, strategy, None, f"{context.field_prefix}{context.role}SchemaSubject")

    @staticmethod
    def _subject(context: SerializeContext, strategy: SubjectStrategy, record: str | None, field: str) -> str:
        if strategy == "topic":
            return f"{context.topic}-{context.role}"
        if record is None:
            raise ValidationFailed(
                f"the {strategy} subject strategy needs a record name: send a raw schema that names its record "
                f"or {context.role}SchemaSubject",
                field=field,
            )
        return record if strategy == "record" else f"{context.topic}-{record}"


def _counting(counter: Counter, cache: str) -> Callable[[str], None]:
    def observe(result: str) -> None:
        counter.inc(cache, result)

    return observe


class ServiceBinding:
    """Where the formats find the per-sidecar :class:`SchemaService` once start-up has created it.

    Formats are registered before configuration is read, so they hold this binding and wait (up to
    ``bind_timeout_seconds``) for the startup hook to fill it.
    """

    def __init__(self) -> None:
        self._service: SchemaService | None = None
        self._problem: str | None = None
        self._ready = asyncio.Event()
        self._timeout = 30.0

    def bind(self, service: SchemaService | None, *, problem: str | None = None, timeout: float = 30.0) -> None:
        self._service = service
        self._problem = problem
        self._timeout = timeout
        self._ready.set()

    @property
    def bound(self) -> SchemaService | None:
        """The service once bound (None before start-up or without a registry); for metrics and benchmarks."""
        return self._service

    async def get(self) -> SchemaService:
        if not self._ready.is_set():
            try:
                await asyncio.wait_for(self._ready.wait(), self._timeout)
            except TimeoutError as exc:
                raise UpstreamUnavailable(
                    "the schema registry client was not started", field="schema_registry"
                ) from exc
        if self._service is None:
            raise UnsupportedMediaType(
                self._problem or "schema formats need a schema registry: set schema_registry.urls",
                field="schema_registry",
            )
        return self._service
