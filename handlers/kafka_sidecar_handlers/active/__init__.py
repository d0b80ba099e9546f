"""The active consumer terminal: the Confluent REST Proxy v2 consumer API plus the Java sidecar's spellings.

One handler instance serves every active-consumer route in ``chains.yml`` and dispatches on the route
and method (see :mod:`kafka_sidecar_handlers.active._routes`). It owns the live consumer instances;
requests to one instance are serialized by that instance's lock (a second poll waits for the
first), while instances never wait on each other. ``docs/active-consumer.md`` is the user guide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

from kafka_sidecar.plugin import (
    V2_MEDIA_TYPE,
    Exchange,
    HandlerSpec,
    HttpRequest,
    MethodNotAllowed,
    Reply,
    Resources,
    ValidationFailed,
    hookimpl,
)
from kafka_sidecar_handlers.active import _deadletter as active_deadletter
from kafka_sidecar_handlers.active._check import check_active
from kafka_sidecar_handlers.active._instance import ActiveInstance, not_found
from kafka_sidecar_handlers.active._instances import InstanceManager, ManagerSettings
from kafka_sidecar_handlers.active._records import (
    PollLimits,
    gather,
    owned_pairs,
    prepare_next,
    render,
    take_prepared,
)
from kafka_sidecar_handlers.active._requests import (
    CreateDefaults,
    check_content_type,
    parse_create,
    parse_offsets,
    parse_partitions,
    parse_seek,
    parse_subscription,
    partitions_from_query,
    query_int,
    response_media_type,
)
from kafka_sidecar_handlers.active._routes import describe, operation

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ActiveConsumerConfig:
    instance_timeout_ms: int = field(
        default=300000, metadata={"doc": "An instance unused this long is closed and leaves its group."}
    )
    max_instances: int = field(default=100, metadata={"doc": "Most live instances; one more is a 429 (v2 42901)."})
    request_max_bytes: int = field(
        default=64 * MIB, metadata={"doc": "Upper bound of a records reply (key+value bytes); caps max_bytes."}
    )
    request_timeout_ms: int = field(
        default=1000, metadata={"doc": "Default consumer.request.timeout.ms: longest a records poll waits."}
    )
    max_request_timeout_ms: int = field(
        default=60000, metadata={"doc": "Largest consumer.request.timeout.ms an instance may ask for."}
    )
    fetch_min_bytes: int = field(
        default=1,
        metadata={"doc": "Default fetch.min.bytes: answer once this many bytes are in; -1 waits for the timeout."},
    )
    format: str = field(default="binary", metadata={"doc": "Format of instances created without one (v2: binary)."})
    auto_offset_reset: Literal["earliest", "latest", "none"] = field(
        default="latest", metadata={"doc": "Default auto.offset.reset."}
    )
    auto_commit_enable: bool = field(default=False, metadata={"doc": "Default auto.commit.enable."})
    auto_commit_interval_ms: int = field(
        default=5000, metadata={"doc": "Auto-commit instances commit what they returned at most this often."}
    )
    max_poll_records: int = field(default=500, metadata={"doc": "Records fetched from Kafka per internal poll."})
    read_ahead: bool = field(
        default=True,
        metadata={"doc": "After each records reply, fetch and write the next one while the client reads it."},
    )
    session_timeout_ms: int = field(default=10000, metadata={"doc": "Group session timeout of instances."})
    heartbeat_interval_ms: int = field(default=1000, metadata={"doc": "Group heartbeat interval of instances."})
    start_timeout_ms: int = field(default=10000, metadata={"doc": "How long creating an instance may wait for Kafka."})
    dead_letter_suffix: str | None = field(
        default=None, metadata={"doc": "Dead-letter topic suffix; default: the shared writer's (.dlq)."}
    )
    dead_letter_format: str = field(
        default="json", metadata={"doc": "Format used to turn handed-back keys and values into bytes."}
    )
    max_dead_letters: int = field(default=1000, metadata={"doc": "Most records in one dead-letter request."})
    commit_reply: Literal["confluent", "java-sidecar"] = field(
        default="confluent",
        metadata={
            "doc": "Body of POST .../offsets: confluent = a JSON array of {topic, partition, consumed, committed}; "
            'java-sidecar = {"offsets": [the same entries]}, as the Java sidecar answered.'
        },
    )
    base_uri: str | None = field(
        default=None, metadata={"doc": "Prefix of base_uri in create replies; default: from the Host header."}
    )

    def __post_init__(self) -> None:
        for name in ("instance_timeout_ms", "max_instances", "request_max_bytes", "max_request_timeout_ms",
                     "max_poll_records", "max_dead_letters", "start_timeout_ms"):  # fmt: skip
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.fetch_min_bytes < -1 or self.fetch_min_bytes == 0:
            raise ValueError("fetch_min_bytes must be -1 or positive")


class ActiveConsumerHandler:
    def __init__(self, config: ActiveConsumerConfig, resources: Resources) -> None:
        self._config = config
        self._serdes = resources.serdes
        self._dead_letters = resources.dead_letters
        self.manager = InstanceManager(
            resources.config.kafka,
            ManagerSettings(
                instance_timeout_s=config.instance_timeout_ms / 1000,
                max_instances=config.max_instances,
                max_poll_records=config.max_poll_records,
                auto_commit_interval_s=config.auto_commit_interval_ms / 1000,
                session_timeout_ms=config.session_timeout_ms,
                heartbeat_interval_ms=config.heartbeat_interval_ms,
                start_timeout_s=config.start_timeout_ms / 1000,
                name_prefix=f"rest-consumer-{resources.config.service.id}",
            ),
        )

    async def start(self) -> None:
        self.manager.start()

    async def stop(self) -> None:
        await self.manager.close_all()

    async def __call__(self, exchange: Exchange) -> Reply:
        request = exchange.http()
        op = operation(request.route, request.method)
        if op is None:
            raise MethodNotAllowed(
                f"{request.method} {request.route} is not an active-consumer operation", field="method"
            )
        check_content_type(request.content_type, request.body)
        if op == "create":
            return await self._create(exchange)
        if op == "dead_letter":
            return await self._dead_letter(exchange)
        group, name = _instance_params(request)
        if op == "delete":
            await self.manager.delete(group, name)
            return Reply(status=204)
        instance = self.manager.get(group, name)
        async with instance.lock:
            if instance.closed:
                raise not_found(instance.key)
            try:
                return await self._on_instance(op, instance, exchange)
            finally:
                instance.touch()

    async def _create(self, exchange: Exchange) -> Reply:
        request = exchange.http()
        group = request.path_params.get("group") or next(iter(request.path_params.values()), "")
        if not group:
            raise ValidationFailed("the consumer group is missing from the path", field="group")
        config = self._config
        defaults = CreateDefaults(
            config.format, config.auto_offset_reset, config.auto_commit_enable,
            config.fetch_min_bytes, config.request_timeout_ms,
        )  # fmt: skip
        created = parse_create(exchange.json_body(), defaults, frozenset(self._serdes.names()))
        if created.request_timeout_ms > config.max_request_timeout_ms:
            raise ValidationFailed(
                f"consumer.request.timeout.ms may be at most {config.max_request_timeout_ms}",
                field="consumer.request.timeout.ms",
                v2_error_code=42204,
            )
        instance = await self.manager.create(group, created)
        base = config.base_uri or f"http://{request.headers.get('host', 'localhost')}"
        body = {
            "instance_id": instance.key.name,
            "base_uri": f"{base.rstrip('/')}{request.path.rstrip('/')}/instances/{instance.key.name}",
        }
        return Reply(status=200, body=body, media_type=_control_media_type(request))

    async def _on_instance(self, op: str, instance: ActiveInstance, exchange: Exchange) -> Reply:
        request = exchange.http()
        media = _control_media_type(request)
        if op == "records":
            return await self._records(instance, exchange)
        if op == "subscribe":
            instance.subscribe(parse_subscription(exchange.json_body()))
        elif op == "subscription":
            return Reply(body={"topics": instance.subscription()}, media_type=media)
        elif op == "unsubscribe":
            await instance.unsubscribe()
        elif op == "assign":
            instance.assign(parse_partitions(exchange.json_body(), required=True))
        elif op == "assignments":
            assigned = [{"topic": tp.topic, "partition": tp.partition} for tp in sorted(instance.assigned())]
            return Reply(body={"partitions": assigned}, media_type=media)
        elif op == "seek":
            await instance.seek(*parse_seek(exchange.json_body()))
        elif op in ("seek_beginning", "seek_end"):
            where = "beginning" if op == "seek_beginning" else "end"
            await instance.seek_to(where, parse_partitions(exchange.json_body(), required=False))
        elif op == "commit":
            committed = await instance.commit(parse_offsets(exchange.json_body(), required=False))
            body: object = committed if self._config.commit_reply == "confluent" else {"offsets": committed}
            return Reply(body=body, media_type=media)
        elif op == "committed":
            partitions = parse_partitions(exchange.json_body(), required=False) + partitions_from_query(request.query)
            return Reply(body={"offsets": await instance.committed(partitions)}, media_type=media)
        return Reply(status=204)

    async def _records(self, instance: ActiveInstance, exchange: Exchange) -> Reply:
        request = exchange.http()
        settings = instance.settings
        media = response_media_type(request.headers.get("accept", ""), (settings.key_format, settings.value_format))
        timeout = query_int(request.query, "timeout")
        wait_ms = settings.request_timeout_ms if timeout is None else min(timeout, settings.request_timeout_ms)
        asked = query_int(request.query, "max_bytes", "maxBytes")
        max_bytes = self._config.request_max_bytes if asked is None else min(asked, self._config.request_max_bytes)
        if max_bytes <= 0:
            raise ValidationFailed("must be a positive number of bytes", field="max_bytes")
        limits = PollLimits(wait_ms / 1000, max_bytes, settings.fetch_min_bytes, self._config.max_poll_records)
        await instance.maybe_auto_commit()
        body: object
        prepared = take_prepared(instance, limits)
        if prepared is not None:
            instance.mark_delivered_up_to(prepared.last_offsets)
            body = prepared.body
        else:
            records = await gather(instance, limits)
            rendered = await render(
                instance,
                records,
                self._serdes.get(settings.key_format, field="keyFormat"),
                self._serdes.get(settings.value_format, field="valueFormat"),
            )
            kept, body = owned_pairs(instance, records[: len(rendered)], rendered)
            instance.mark_delivered(kept)
        await instance.follow_positions()
        if self._config.read_ahead:  # the next reply is fetched and written while the client reads this one
            exchange.after_response(
                partial(prepare_next, instance, limits.max_poll_records, settings.key_format, settings.value_format)
            )
        return Reply(body=body, media_type=media)

    async def _dead_letter(self, exchange: Exchange) -> Reply:
        request = exchange.http()
        parsed = active_deadletter.parse_request(exchange.json_body(), request.query, self._config.max_dead_letters)
        suffix = self._config.dead_letter_suffix or self._dead_letters.suffix
        letters = await active_deadletter.build_letters(
            parsed, self._serdes, self._config.dead_letter_format, suffix, consumer="active"
        )
        status, landed = await active_deadletter.write(self._dead_letters, letters, suffix)
        return Reply(status=status, body=landed if parsed.array else {"dead_letters": landed})


def _instance_params(request: HttpRequest) -> tuple[str, str]:
    params = request.path_params
    group = params.get("group", "")
    name = params.get("instance") or params.get("name") or ""
    if not group or not name:
        raise ValidationFailed("active-consumer routes need {group} and {instance} path parameters", field="path")
    return group, name


def _control_media_type(request: HttpRequest) -> str:
    """``application/json`` for a caller accepting just that; otherwise the v2 type, as Confluent answers ``*/*``."""
    accept = request.headers.get("accept", "")
    wanted = {part.split(";", 1)[0].strip().lower() for part in accept.split(",") if part.strip()}
    if wanted == {"application/json"} and "vnd.kafka" not in request.content_type:
        return "application/json"
    return V2_MEDIA_TYPE


@hookimpl
def kafka_sidecar_register_handlers(register: Callable[[HandlerSpec[ActiveConsumerConfig]], None]) -> None:
    register(
        HandlerSpec(
            name="active-consumer",
            factory=ActiveConsumerHandler,
            config_type=ActiveConsumerConfig,
            kind="terminal",
            check=check_active,
            description="REST Proxy v2 consumer instances: create, subscribe/assign, poll, seek, commit, dead-letter.",
            describe=describe,
        )
    )
