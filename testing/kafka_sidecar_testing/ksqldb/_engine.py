"""The test server's engine: a metastore of streams and tables, persistent queries and transient queries, on Kafka.

* Persistent queries (``CREATE STREAM x AS SELECT ... EMIT CHANGES``) consume the source topic in their own
  consumer group (``_confluent-ksql-default_query_<ID>``), project and filter each JSON value, produce to the
  sink topic (same partition, same key) and commit after the broker acknowledged: at-least-once, like ksqlDB's
  default ``processing.guarantee``. They survive restarts of the test server: accepted statements are kept in a
  command log (ksqlDB's command topic) and replayed at start.
* Push queries read every partition of the source without a group (a new "application" per subscription, as
  transient queries are), from ``auto.offset.reset`` (default ``latest``), and may select the pseudo columns
  ``ROWTIME``, ``ROWPARTITION`` and ``ROWOFFSET``.
* Pull queries read the topic up to its end offsets; over a table only the latest row per key counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import operator
import random
import struct
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from kafka_sidecar._tasks import cancel_and_wait
from kafka_sidecar_testing.ksqldb._sql import (
    Column,
    CreateSource,
    Describe,
    DropSource,
    ListThings,
    Parsed,
    Predicate,
    Select,
    Terminate,
    parse,
)
from kafka_sidecar_testing.topics import create_topic

log = logging.getLogger(__name__)
PSEUDO_TYPES = {"ROWTIME": "BIGINT", "ROWPARTITION": "INTEGER", "ROWOFFSET": "BIGINT"}


class StatementError(Exception):
    """A statement ksqlDB would reject with ``statement_error`` (40001)."""


@dataclass(frozen=True, slots=True)
class Source:
    kind: str  # STREAM | TABLE
    name: str
    topic: str
    columns: tuple[Column, ...]
    statement: str
    partitions: int
    value_format: str = "JSON"

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        if name in PSEUDO_TYPES:
            return Column(name, PSEUDO_TYPES[name])
        raise StatementError(f"Column '{name}' cannot be resolved.")


@dataclass(slots=True)
class PersistentQuery:
    id: str
    sink: str
    select: Select
    statement: str
    properties: dict[str, Any]
    task: asyncio.Task[None] | None = None


@dataclass(frozen=True, slots=True)
class Projection:
    """Which columns a query returns, and how each value is found in a record."""

    source: Source
    columns: tuple[Column, ...]
    where: tuple[Predicate, ...]

    def row(self, record: Any) -> list[object] | None:
        """The projected row of a Kafka record, or None (filtered out, tombstone or undecodable)."""
        if record.value is None:
            return None
        try:
            value = json.loads(record.value)
        except ValueError:
            log.warning("test ksqlDB: undecodable JSON at %s-%d@%d", record.topic, record.partition, record.offset)
            return None
        if not isinstance(value, dict):
            return None
        fields = {str(k).upper(): v for k, v in value.items()}
        env: dict[str, object] = {}
        for column in self.source.columns:
            if column.key:
                env[column.name] = _key_value(column, record.key)
            else:
                env[column.name] = _coerce(column, fields.get(column.name))
        env.update(ROWTIME=record.timestamp, ROWPARTITION=record.partition, ROWOFFSET=record.offset)
        if not all(_holds(p, env.get(p.column)) for p in self.where):
            return None
        return [env.get(c.name) for c in self.columns]


def _key_value(column: Column, key: bytes | None) -> object:
    if key is None:
        return None
    if column.type == "STRING":
        return key.decode("utf-8", "replace")
    if column.type == "INTEGER" and len(key) == 4:
        return struct.unpack(">i", key)[0]
    if column.type == "BIGINT" and len(key) == 8:
        return struct.unpack(">q", key)[0]
    return key.decode("utf-8", "replace")


def _coerce(column: Column, value: object) -> object:
    if column.type == "DOUBLE" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _holds(predicate: Predicate, value: object) -> bool:
    if value is None or predicate.value is None:
        return False
    try:
        return bool(_OPERATORS[predicate.op](value, predicate.value))
    except TypeError:
        return False


@dataclass
class Engine:
    bootstrap: str
    command_log: Path | None = None
    service_id: str = "default_"
    sources: dict[str, Source] = field(default_factory=dict)
    queries: dict[str, PersistentQuery] = field(default_factory=dict)
    transient: dict[str, asyncio.Event] = field(default_factory=dict)
    sequence: int = 0

    async def start(self) -> None:
        """Replay the command log: streams, tables and persistent queries come back as they were."""
        if self.command_log is None or not self.command_log.exists():
            return
        for line in self.command_log.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                for parsed in parse(entry["sql"]):
                    await self.execute(parsed, entry.get("properties") or {}, replay=True)

    async def close(self) -> None:
        for event in self.transient.values():
            event.set()
        for query in self.queries.values():
            await cancel_and_wait(query.task)

    # -- statements ------------------------------------------------------------------------------

    async def execute(self, parsed: Parsed, properties: dict[str, Any], *, replay: bool = False) -> dict[str, object]:
        statement = parsed.statement
        text = parsed.text
        entity: dict[str, object]
        if isinstance(statement, CreateSource):
            entity = await self._create(statement, text, properties)
        elif isinstance(statement, DropSource):
            entity = self._drop(statement, text)
        elif isinstance(statement, Terminate):
            entity = await self._terminate(statement, text)
        elif isinstance(statement, ListThings):
            return self._list(statement, text)
        elif isinstance(statement, Describe):
            return self._describe(statement, text)
        else:
            raise StatementError(
                "The following statement types should be issued to the websocket endpoint '/query':\n"
                "\t* PRINT\n\t* SELECT"
            )
        if not replay and self.command_log is not None and entity.get("_changed"):
            with self.command_log.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"sql": text, "properties": properties}) + "\n")
        entity.pop("_changed", None)
        return entity

    def _status(self, text: str, command_id: str, message: str, query_id: str | None = None) -> dict[str, object]:
        self.sequence += 1
        return {
            "@type": "currentStatus",
            "statementText": text,
            "commandId": command_id,
            "commandStatus": {"status": "SUCCESS", "message": message, "queryId": query_id},
            "commandSequenceNumber": self.sequence,
            "warnings": [],
            "_changed": True,
        }

    async def _create(self, stmt: CreateSource, text: str, properties: dict[str, Any]) -> dict[str, object]:
        noun = stmt.kind.lower()
        command_id = f"{noun}/`{stmt.name}`/create"
        existing = self.sources.get(stmt.name)
        if existing is not None and not stmt.or_replace:
            message = f"Cannot add {noun} '{stmt.name}': A {existing.kind.lower()} with the same name already exists"
            if stmt.if_not_exists:
                status = self._status(text, command_id, message)
                status["_changed"] = False
                return status
            raise StatementError(message)
        value_format = stmt.properties.get("VALUE_FORMAT", stmt.properties.get("FORMAT", "JSON")).upper()
        if value_format != "JSON":
            raise StatementError(f"VALUE_FORMAT '{value_format}' is not supported by the ksqlDB test server")
        if stmt.as_select is not None:
            return await self._create_as(stmt, text, properties, command_id)
        if "KAFKA_TOPIC" not in stmt.properties:
            raise StatementError('Missing required property "KAFKA_TOPIC" which has no default value.')
        if stmt.kind == "TABLE" and not any(c.key for c in stmt.columns):
            raise StatementError("Tables require a PRIMARY KEY. Please define the PRIMARY KEY.")
        topic = stmt.properties["KAFKA_TOPIC"]
        partitions = await self._ensure_topic(topic, stmt.properties.get("PARTITIONS"), stmt.kind)
        columns = tuple(c for c in stmt.columns if c.key) + tuple(c for c in stmt.columns if not c.key)
        self.sources[stmt.name] = Source(stmt.kind, stmt.name, topic, columns, text, partitions)
        return self._status(text, command_id, f"{stmt.kind.title()} created")

    async def _create_as(
        self, stmt: CreateSource, text: str, properties: dict[str, Any], command_id: str
    ) -> dict[str, object]:
        select = stmt.as_select
        assert select is not None
        source = self._source(select.source)
        projection = self.projection(source, select)
        topic = stmt.properties.get("KAFKA_TOPIC", stmt.name)
        partitions = await self._ensure_topic(topic, stmt.properties.get("PARTITIONS") or str(source.partitions),
                                              stmt.kind)  # fmt: skip
        self.sources[stmt.name] = Source(stmt.kind, stmt.name, topic, projection.columns, text, partitions)
        query_id = f"C{stmt.kind[0]}AS_{stmt.name}_{self.sequence + 1}"
        query = PersistentQuery(query_id, stmt.name, select, text, dict(properties))
        query.task = asyncio.create_task(self._run_persistent(query, projection, topic), name=f"ksql-{query_id}")
        self.queries[query_id] = query
        return self._status(text, command_id, f"Created query with ID {query_id}", query_id)

    def _drop(self, stmt: DropSource, text: str) -> dict[str, object]:
        source = self.sources.get(stmt.name)
        command_id = f"{stmt.kind.lower()}/`{stmt.name}`/drop"
        if source is None:
            if stmt.if_exists:
                status = self._status(text, command_id, f"Source {stmt.name} does not exist.")
                status["_changed"] = False
                return status
            raise StatementError(f"Source {stmt.name} does not exist.")
        writers = [q.id for q in self.queries.values() if q.sink == stmt.name]
        if writers:
            raise StatementError(
                f"Cannot drop {stmt.name}.\nThe following queries write into this source: [{', '.join(writers)}].\n"
                f"You need to terminate them before dropping {stmt.name}."
            )
        del self.sources[stmt.name]
        return self._status(text, command_id, f"Source `{stmt.name}` (topic: {source.topic}) was dropped.")

    async def _terminate(self, stmt: Terminate, text: str) -> dict[str, object]:
        query = self.queries.pop(stmt.query_id, None)
        if query is None:
            raise StatementError(f"Unknown queryId: {stmt.query_id}")
        await cancel_and_wait(query.task)
        return self._status(text, f"terminate/{stmt.query_id}/execute", "Query terminated.")

    def _list(self, stmt: ListThings, text: str) -> dict[str, object]:
        if stmt.what == "QUERIES":
            queries = [
                {"queryString": q.statement, "sinks": [q.sink], "sinkKafkaTopics": [self.sources[q.sink].topic],
                 "id": q.id, "statusCount": {"RUNNING": 1}, "queryType": "PERSISTENT", "state": "RUNNING"}
                for q in self.queries.values() if q.sink in self.sources
            ]  # fmt: skip
            return {"@type": "queries", "statementText": text, "queries": queries, "warnings": []}
        kind = stmt.what[:-1]
        items = [
            {"type": kind, "name": s.name, "topic": s.topic, "keyFormat": "KAFKA", "valueFormat": s.value_format,
             "isWindowed": False}
            for s in self.sources.values() if s.kind == kind
        ]  # fmt: skip
        key = stmt.what.lower()
        return {"@type": key, "statementText": text, key: items, "warnings": []}

    def _describe(self, stmt: Describe, text: str) -> dict[str, object]:
        source = self._source(stmt.name)
        fields = [
            {"name": c.name, "schema": {"type": c.type.split("<")[0].split("(")[0], "fields": None,
                                        "memberSchema": None}} | ({"type": "KEY"} if c.key else {})
            for c in source.columns
        ]  # fmt: skip
        description = {
            "name": source.name,
            "windowType": None,
            "readQueries": [],
            "writeQueries": [
                {"queryString": q.statement, "sinks": [q.sink], "id": q.id, "state": "RUNNING"}
                for q in self.queries.values()
                if q.sink == source.name
            ],
            "fields": fields,
            "type": source.kind,
            "timestamp": "",
            "statistics": "",
            "errorStats": "",
            "extended": False,
            "keyFormat": "KAFKA",
            "valueFormat": source.value_format,
            "topic": source.topic,
            "partitions": source.partitions,
            "replication": 1,
            "statement": source.statement,
            "sourceConstraints": [],
        }
        return {"@type": "sourceDescription", "statementText": text, "sourceDescription": description, "warnings": []}

    def _source(self, name: str) -> Source:
        source = self.sources.get(name)
        if source is None:
            raise StatementError(f"{name} does not exist.")
        return source

    def projection(self, source: Source, select: Select) -> Projection:
        every = tuple(c.name for c in source.columns)
        wanted = select.columns if select.columns is not None else ("*",)
        names = tuple(n for c in wanted for n in (every if c == "*" else (c,)))
        columns = tuple(source.column(n) for n in names)
        for predicate in select.where:
            source.column(predicate.column)
        return Projection(source, columns, select.where)

    async def _ensure_topic(self, topic: str, partitions: str | None, kind: str) -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
        await consumer.start()
        try:
            existing = await _partitions(consumer, topic)
        finally:
            await consumer.stop()
        if existing:
            return len(existing)
        if partitions is None:
            raise StatementError(
                f"Topic '{topic}' does not exist. If you want to create a new topic for the {kind.lower()} please "
                "re-run the statement providing the required 'PARTITIONS' configuration in the WITH clause "
                "(and, optionally, 'REPLICAS')."
            )
        await create_topic(self.bootstrap, topic, int(partitions), exist_ok=True)
        return int(partitions)

    # -- persistent queries ----------------------------------------------------------------------

    async def _run_persistent(self, query: PersistentQuery, projection: Projection, sink_topic: str) -> None:
        reset = str(query.properties.get("auto.offset.reset", "latest"))
        wait = 0.2
        while True:
            consumer = AIOKafkaConsumer(
                projection.source.topic,
                bootstrap_servers=self.bootstrap,
                group_id=f"_confluent-ksql-{self.service_id}query_{query.id}",
                enable_auto_commit=False,
                auto_offset_reset=reset,
            )
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True)
            try:
                await consumer.start()
                await producer.start()
                await self._pump(consumer, producer, projection, sink_topic)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("test ksqlDB: query %s failed (%s); restarting", query.id, exc)
                await asyncio.sleep(wait)
                wait = min(wait * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()
                with contextlib.suppress(Exception):
                    await producer.stop()

    async def _pump(self, consumer: Any, producer: Any, projection: Projection, sink_topic: str) -> None:
        value_columns = [(i, c.name) for i, c in enumerate(projection.columns) if not c.key]
        key_index = next((i for i, c in enumerate(projection.columns) if c.key), None)
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            sends = []
            for messages in batch.values():
                for record in messages:
                    row = projection.row(record)
                    if row is None:
                        continue
                    value = json.dumps({name: row[i] for i, name in value_columns}, separators=(",", ":")).encode()
                    key = record.key if key_index is not None else None
                    sends.append(await producer.send(sink_topic, value=value, key=key, partition=record.partition,
                                                     timestamp_ms=record.timestamp))  # fmt: skip
            if sends:
                await asyncio.gather(*sends)
            if batch:
                await consumer.commit()

    # -- transient queries -----------------------------------------------------------------------

    def new_query_id(self, source: str, *, pull: bool) -> str:
        if pull:
            return f"query_{random.getrandbits(40)}"
        return f"transient_{source}_{random.getrandbits(62)}"

    async def push(
        self, projection: Projection, properties: dict[str, Any], closed: asyncio.Event, poll_ms: int = 200
    ) -> AsyncGenerator[list[list[object]]]:
        """Batches of rows as they arrive (an empty batch when a poll found nothing), until ``closed``.

        The first (empty) batch comes once the reader is positioned.
        """
        async with self._reader(projection.source.topic) as (consumer, tps):
            if str(properties.get("auto.offset.reset", "latest")) == "earliest":
                await consumer.seek_to_beginning(*tps)
            else:
                await consumer.seek_to_end(*tps)
                for tp in tps:  # pin "latest" now, not at the first fetch
                    await consumer.position(tp)
            yield []  # positioned: the caller may announce the query (rows produced from now on are seen)
            while not closed.is_set():
                batch = await consumer.getmany(timeout_ms=poll_ms, max_records=200)
                rows: list[list[object]] = []
                for tp in sorted(batch):
                    for record in batch[tp]:
                        row = projection.row(record)
                        if row is not None:
                            rows.append(row)
                yield rows

    async def pull(self, projection: Projection) -> list[list[object]]:
        """Rows of the source up to its current end; over a table the latest row per key."""
        async with self._reader(projection.source.topic) as (consumer, tps):
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            latest: dict[object, Any] = {}
            rows: list[list[object]] = []
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                batch = await consumer.getmany(timeout_ms=200)
                for tp in sorted(batch):
                    for record in batch[tp]:
                        if record.offset >= ends[tp]:
                            continue
                        if projection.source.kind == "TABLE":
                            latest[(record.partition, record.key)] = record
                        else:
                            row = projection.row(record)
                            if row is not None:
                                rows.append(row)
            if projection.source.kind == "TABLE":
                for record in latest.values():
                    row = projection.row(record)
                    if row is not None:
                        rows.append(row)
            return rows

    @contextlib.asynccontextmanager
    async def _reader(self, topic: str) -> AsyncIterator[tuple[Any, list[TopicPartition]]]:
        """A group-less consumer assigned every partition of ``topic`` (a transient query's reader)."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in sorted(await _partitions(consumer, topic))]
            consumer.assign(tps)
            yield consumer, tps
        finally:
            await consumer.stop()


async def _partitions(consumer: Any, topic: str) -> set[int]:
    cluster = await consumer._client.fetch_all_metadata()  # fresh metadata, not the consumer's cached view
    return set(cluster.partitions_for_topic(topic) or ())
