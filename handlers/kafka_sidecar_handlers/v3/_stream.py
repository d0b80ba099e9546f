"""The v3 streaming produce: records read as they arrive, sent in groups, one result line each, in order.

Each network chunk's complete records form a group: the group is parsed and encoded (a bad record
becomes its own error result, the others still go), handed to the producer, and its results are
written, in the records' order, once the broker has answered every record of the group. At most
``max_groups`` groups are in flight; reading waits for the oldest when that many are, so a slow
broker slows the sender instead of filling memory.

A malformed JSON text cannot be skipped (where the next record starts is unknown), so it ends the
stream: its error result is the last line. Nothing is reported as produced unless the broker
acknowledged it.
"""

from __future__ import annotations

import asyncio
import codecs
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from kafka_sidecar.plugin import (
    DeliveryReport,
    OutgoingRecord,
    ProducerService,
    SerdeRegistry,
    SidecarError,
    ValidationFailed,
)
from kafka_sidecar_handlers.v3._produce import Encoder, RecordIn, parse_record, result

_decoder = json.JSONDecoder()
_WHITESPACE = " \t\r\n"


class JsonValues:
    """Complete JSON values out of a byte stream, as they arrive (UTF-8 split across chunks is fine)."""

    def __init__(self, max_pending_chars: int) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")()
        self._pending = ""
        self._max = max_pending_chars

    def feed(self, chunk: bytes) -> list[object]:
        try:
            text = self._pending + self._text.decode(chunk)
        except UnicodeDecodeError as exc:
            raise ValidationFailed(f"the body is not UTF-8: {exc}", field="body") from exc
        values: list[object] = []
        position, end = 0, len(text)
        while True:
            while position < end and text[position] in _WHITESPACE:
                position += 1
            if position >= end:
                break
            try:
                value, position = _decoder.raw_decode(text, position)
            except ValueError:
                break  # incomplete so far (or malformed: told apart at the end, or by size)
            values.append(value)
        self._pending = text[position:]
        if len(self._pending) > self._max:
            raise ValidationFailed(
                f"a record is malformed or longer than {self._max} characters: {self._pending[:80]!r}...", field="body"
            )
        return values

    def leftover(self) -> str:
        """Text after the last complete value once the stream has ended ('' when none)."""
        return (self._pending + self._text.decode(b"", final=True)).strip(_WHITESPACE)


@dataclass(slots=True)
class Sent:
    """What a stream produced: the records sent and the broker's answers, in order."""

    records: list[OutgoingRecord] = field(default_factory=list)
    reports: list[DeliveryReport] = field(default_factory=list)
    count: int = 0


def error_line(exc: SidecarError) -> dict[str, object]:
    return {"error_code": exc.status, "message": exc.detail}


def line(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


@dataclass(frozen=True, slots=True)
class Target:
    cluster_id: str
    topic: str
    partitions: frozenset[int]


class StreamProducer:
    """One streamed produce request."""

    def __init__(
        self, target: Target, producer: ProducerService, serdes: SerdeRegistry, *, max_groups: int = 64
    ) -> None:
        self._target = target
        self._producer = producer
        self._encoder = Encoder(target.topic, serdes)
        self._groups: asyncio.Queue[
            asyncio.Task[list[tuple[bytes, OutgoingRecord | None, DeliveryReport | None]]] | None
        ]
        self._groups = asyncio.Queue(maxsize=max_groups)
        self.sent = Sent()

    async def run(
        self, chunks: AsyncIterator[bytes], values: JsonValues, write: Callable[[bytes], Awaitable[None]],
        started: Callable[[], None],
    ) -> None:  # fmt: skip
        """Read every record, produce it, write every result; ``started`` is called before the first write."""
        writer = asyncio.ensure_future(self._write(write))
        first = True
        try:
            async for chunk in chunks:
                try:
                    batch = values.feed(chunk)
                except ValidationFailed as exc:
                    if first:
                        raise
                    await self._enqueue_done([line(error_line(exc))])
                    return
                if batch:
                    if first:
                        started()
                        first = False
                    await self._enqueue(batch)
            leftover = values.leftover()
            if leftover:
                broken = ValidationFailed(
                    f"record {self.sent.count} is not valid JSON: {leftover[:80]!r}", field="body"
                )
                if first:
                    raise broken
                await self._enqueue_done([line(error_line(broken))])
            elif first:
                raise ValidationFailed("the body holds no record", field="body")
        finally:
            await self._groups.put(None)
            await writer

    async def _enqueue(self, batch: Sequence[object]) -> None:
        start = self.sent.count
        self.sent.count += len(batch)
        await self._groups.put(asyncio.ensure_future(self._send(batch, start)))

    async def _enqueue_done(self, lines: list[bytes]) -> None:
        async def done() -> list[tuple[bytes, OutgoingRecord | None, DeliveryReport | None]]:
            return [(text, None, None) for text in lines]

        await self._groups.put(asyncio.ensure_future(done()))

    async def _send(
        self, batch: Sequence[object], start: int
    ) -> list[tuple[bytes, OutgoingRecord | None, DeliveryReport | None]]:
        prepared: list[tuple[RecordIn, OutgoingRecord, tuple[int | None, int | None]] | SidecarError] = []
        for offset, raw in enumerate(batch):
            where = f"[{start + offset}]"
            try:
                record = parse_record(raw, where)
                if record.partition is not None and record.partition not in self._target.partitions:
                    raise ValidationFailed(
                        f"partition {record.partition} does not exist (topic has {len(self._target.partitions)})",
                        field=f"{where}.partition_id",
                    )
                encoded = await self._encoder.encode(record, where)
                prepared.append((record, encoded, self._encoder.schema_ids(record)))
            except SidecarError as exc:
                prepared.append(exc)
        outgoing = [item[1] for item in prepared if not isinstance(item, SidecarError)]
        try:
            reports = iter(await self._producer.send_batch(outgoing) if outgoing else [])
        except SidecarError as exc:  # not connected, say: every record of the group gets the error
            return [(line(error_line(exc if isinstance(item, tuple) else item)), None, None) for item in prepared]
        out: list[tuple[bytes, OutgoingRecord | None, DeliveryReport | None]] = []
        for item in prepared:
            if isinstance(item, SidecarError):
                out.append((line(error_line(item)), None, None))
                continue
            record, sent, ids = item
            report = next(reports)
            answer = result(self._target.cluster_id, self._target.topic, record, sent, report, ids)
            out.append((line(answer), sent, report))
        return out

    async def _write(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        failure: BaseException | None = None
        while (group := await self._groups.get()) is not None:
            try:
                items = await group
            except Exception as exc:  # keep draining, so the reader never waits on a full queue
                failure = failure or exc
                continue
            if failure is not None:
                continue
            for text, sent, report in items:
                if sent is not None and report is not None:
                    self.sent.records.append(sent)
                    self.sent.reports.append(report)
                await write(text)
        if failure is not None:
            raise failure
