"""``POST .../records`` (one record or a stream) and ``POST .../records:batch`` of the v3 API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from kafka_sidecar.plugin import (
    PRODUCED,
    REQUEST_BODY_STREAM,
    RESPONSE_STREAM,
    Exchange,
    Produced,
    Reply,
    Resources,
    ValidationFailed,
)
from kafka_sidecar_handlers.v3._produce import Encoder, parse_record, result
from kafka_sidecar_handlers.v3._stream import JsonValues, StreamProducer, Target


class RecordsRoute:
    def __init__(self, resources: Resources, max_batch_entries: int, max_groups: int) -> None:
        self._resources = resources
        self._max_batch_entries = max_batch_entries
        self._max_groups = max_groups

    async def batch(self, exchange: Exchange, topic: str, cluster_id: str) -> Reply:
        """``records:batch``: up to ``max_batch_entries`` records with ids; 207 with successes and failures."""
        body = exchange.json_body()
        entries = body.get("entries") if isinstance(body, dict) else None
        if not isinstance(entries, list) or not entries or len(entries) > self._max_batch_entries:
            raise ValidationFailed(
                f"'entries' must be a list of 1 to {self._max_batch_entries} records", field="entries"
            )
        ids: list[str] = []
        records = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not entry["id"]:
                raise ValidationFailed("each entry needs a non-empty string 'id'", field=f"entries[{index}].id")
            ids.append(entry["id"])
            records.append(parse_record({k: v for k, v in entry.items() if k != "id"}, f"entries[{index}]"))
        if len(set(ids)) != len(ids):
            raise ValidationFailed("entry ids must be distinct", field="entries")
        producer = self._resources.producer
        partitions = await producer.partitions_for(topic)
        encoder = Encoder(topic, self._resources.serdes)
        outgoing = []
        for index, record in enumerate(records):
            if record.partition is not None and record.partition not in partitions:
                raise ValidationFailed(
                    f"partition {record.partition} does not exist (topic has {len(partitions)})",
                    field=f"entries[{index}].partition_id",
                )
            outgoing.append(await encoder.encode(record, f"entries[{index}]"))
        reports = await producer.send_batch(outgoing)
        exchange.stash[PRODUCED] = Produced(topic, tuple(outgoing), tuple(reports))
        results = [
            result(cluster_id, topic, r, o, rep, encoder.schema_ids(r))
            for r, o, rep in zip(records, outgoing, reports, strict=True)
        ]
        return Reply(status=207, body=_batch_body(ids, results))

    async def stream(self, exchange: Exchange, topic: str, cluster_id: str) -> Reply:
        """One record or many: read as they arrive, one result line each, in order, once the broker answered."""
        request = exchange.http()
        chunks = exchange.stash.get(REQUEST_BODY_STREAM) or _one_chunk(request.body)
        stream = exchange.stash.get(RESPONSE_STREAM)
        collected: list[bytes] = []

        async def write(piece: bytes) -> None:
            if stream is not None:
                await stream.write(piece)
            else:
                collected.append(piece)

        def started() -> None:
            if stream is not None:
                stream.start(200, "application/json")

        partitions = frozenset(await self._resources.producer.partitions_for(topic))
        producer = StreamProducer(
            Target(cluster_id, topic, partitions), self._resources.producer, self._resources.serdes
        )
        values = JsonValues(self._resources.config.server.max_body_bytes)
        try:
            await producer.run(chunks, values, write, started)
        finally:
            sent = producer.sent
            exchange.stash[PRODUCED] = Produced(topic, tuple(sent.records), tuple(sent.reports))
        return Reply(status=200, body=None if stream is not None else b"".join(collected))


async def _one_chunk(body: bytes) -> AsyncIterator[bytes]:
    yield body


def _batch_body(ids: list[str], results: list[dict[str, Any]]) -> dict[str, object]:
    successes = [{"id": i, **r} for i, r in zip(ids, results, strict=True) if r["error_code"] == 200]
    failures = [{"id": i, **r} for i, r in zip(ids, results, strict=True) if r["error_code"] != 200]
    return {"successes": successes, "failures": failures}
