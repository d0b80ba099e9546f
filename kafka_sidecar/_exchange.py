"""The unit that flows through a chain: an :class:`Exchange` in, a :class:`Reply` out.

One HTTP request (with its whole batch of records) or one consumed batch is one exchange, so
per-record work never pays per-handler overhead. Handlers keep no state of their own between
exchanges; what they share travels on ``exchange.stash`` under typed keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, overload

import msgspec

from kafka_sidecar._records import AddedHeaders, ConsumedRecord, DeliveryReport, OutgoingRecord, count_acknowledged
from kafka_sidecar._stash import Stash, StashKey
from kafka_sidecar._strict_json import parse_json_body

ExchangeKind = Literal["http", "consumer"]


class HttpRequest(msgspec.Struct, frozen=True):
    """What the HTTP caller sent. Header names are lower-case.

    Like :class:`Reply` and :class:`Produced`, a frozen ``msgspec.Struct``, built in C once per request (a
    frozen dataclass's generated ``__init__`` cost about 5 µs per request with the CPU caches cold:
    docs/benchmarks.md, eighth round): fields, positional or keyword construction, ``==``; a changed copy is
    ``msgspec.structs.replace`` (``dataclasses.replace`` does not apply).
    """

    method: str
    path: str
    route: str
    path_params: Mapping[str, str] = msgspec.field(default_factory=dict)
    query: Mapping[str, str] = msgspec.field(default_factory=dict)
    headers: Mapping[str, str] = msgspec.field(default_factory=dict)
    body: bytes = b""
    client_host: str | None = None

    @property
    def has_body(self) -> bool:
        """A body other than whitespace (``body.strip()`` without copying the body: stops at its first byte
        that is not whitespace)."""
        return bool(self.body) and not self.body.isspace()

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-case ('' when absent)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


class Reply(msgspec.Struct, frozen=True):
    """What a chain answers. ``body`` is JSON-serialisable, or bytes sent as they are. A frozen
    ``msgspec.Struct`` (see :class:`HttpRequest`)."""

    status: int = 200
    body: object = None
    media_type: str = "application/json"
    headers: Mapping[str, str] = msgspec.field(default_factory=dict)


_JSON_BODY: StashKey[object] = StashKey("json-body")
RESPONSE_HEADERS: StashKey[dict[str, str]] = StashKey("response-headers")
"""Headers that middleware wants on the HTTP response; the HTTP adapter adds them."""
AFTER_RESPONSE: StashKey[list[Callable[[], Awaitable[None]]]] = StashKey("after-response")
"""Jobs the HTTP adapter runs once the response has been sent (see :meth:`Exchange.after_response`)."""
OUTGOING_HEADERS: StashKey[list[tuple[str, bytes]]] = StashKey("outgoing-record-headers")
"""Headers middleware wants on every record produced by this exchange (a per-record value wins)."""


@dataclass(slots=True, eq=False)
class Exchange:
    """One request or one consumed batch on its way through a chain."""

    kind: ExchangeKind
    name: str
    request: HttpRequest | None = None
    records: Sequence[ConsumedRecord] = ()
    stash: Stash = field(default_factory=Stash)
    added_headers: AddedHeaders = field(default_factory=AddedHeaders)
    """Consumer exchanges: headers middleware adds to ``records`` without copying them (see
    :class:`~kafka_sidecar._records.AddedHeaders`); what the backend, dead letters and audit see."""

    def http(self) -> HttpRequest:
        """The HTTP request; a programming error to ask for on a consumer exchange."""
        if self.request is None:
            raise TypeError(f"exchange {self.name!r} is a {self.kind} exchange, not an HTTP request")
        return self.request

    def json_body(self) -> object:
        """The request body parsed as JSON, once per exchange; an empty body is ``None``.

        Raises only :class:`~kafka_sidecar._errors.RequestError`: a body that is not strict JSON in
        UTF-8 (duplicate keys, nesting too deep, a lone surrogate, a non-JSON content type) is a 4xx
        naming the field.
        """
        if _JSON_BODY in self.stash:
            return self.stash[_JSON_BODY]
        request = self.http()
        parsed = parse_json_body(request.body, request.headers.get("content-type", "")) if request.has_body else None
        self.stash[_JSON_BODY] = parsed
        return parsed

    def add_response_header(self, name: str, value: str) -> None:
        self.stash.setdefault(RESPONSE_HEADERS, {})[name] = value

    def after_response(self, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job()`` once this exchange's HTTP response has been sent, off the request's critical path
        (work for the caller's next request, done while the caller reads this one's answer).

        Jobs run in the order given, after the last byte of a normal (non-streamed) response has been
        handed to the server; the connection's next request may already be served meanwhile, so a job
        shares state with it only under a lock. A failing job is logged, never seen by the caller. The
        ASGI test client waits for the jobs before it returns the response. HTTP exchanges only.
        """
        self.http()
        self.stash.setdefault(AFTER_RESPONSE, []).append(job)

    def add_record_header(self, name: str, value: bytes) -> None:
        self.stash.setdefault(OUTGOING_HEADERS, []).append((name, value))


class Produced(msgspec.Struct, frozen=True):
    """What a produce exchange sent and what the broker answered, record by record (same order). A frozen
    ``msgspec.Struct`` (see :class:`HttpRequest`)."""

    topic: str
    records: tuple[OutgoingRecord, ...]
    reports: tuple[DeliveryReport, ...]

    @property
    def acknowledged(self) -> int:
        """How many of ``reports`` the broker acknowledged (counted in C, no Python step per record)."""
        return count_acknowledged(self.reports)


PRODUCED: StashKey[Produced] = StashKey("produced")
"""Set by the producer terminal; audit and metrics middleware read it after ``call_next``."""


DeliveryStatus = Literal["SUCCESS", "RETRY", "DROP", "DEADLETTER"]


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """What the backend said about one consumed record."""

    record: ConsumedRecord
    status: DeliveryStatus
    error: str | None = None


class UniformOutcomes(Sequence[RecordOutcome]):
    """One status for every record of a batch (the backend answered for the whole batch): a sequence of
    :class:`RecordOutcome` made only when someone walks it. Readers that count may look at ``records``,
    ``status`` and ``error`` directly (one step per batch instead of one object per record)."""

    __slots__ = ("error", "records", "status")

    def __init__(self, records: Sequence[ConsumedRecord], status: DeliveryStatus, error: str | None = None) -> None:
        self.records = records
        self.status: DeliveryStatus = status
        self.error = error

    def __len__(self) -> int:
        return len(self.records)

    @overload
    def __getitem__(self, index: int) -> RecordOutcome: ...
    @overload
    def __getitem__(self, index: slice) -> UniformOutcomes: ...
    def __getitem__(self, index: int | slice) -> RecordOutcome | UniformOutcomes:
        if isinstance(index, slice):
            return UniformOutcomes(self.records[index], self.status, self.error)
        return RecordOutcome(self.records[index], self.status, self.error)

    def __iter__(self) -> Iterator[RecordOutcome]:
        status, error = self.status, self.error
        for record in self.records:
            yield RecordOutcome(record, status, error)

    def __repr__(self) -> str:
        return f"UniformOutcomes({len(self.records)} records, {self.status}, error={self.error!r})"


DELIVERED: StashKey[Sequence[RecordOutcome]] = StashKey("delivered")
"""Set by a consumer terminal after delivery; audit and metrics middleware read it after ``call_next``."""
BACKEND_HEADERS: StashKey[dict[str, str]] = StashKey("backend-headers")
"""HTTP headers middleware wants on the call to the backend (correlation ids, trace context, a token)."""


class ResponseStream:
    """A reply written piece by piece while the chain still runs (REST Proxy v3 streaming produce).

    The terminal calls :meth:`start` once it is sure of the status (nothing is sent before), then
    :meth:`write` for each piece; the HTTP adapter sends them as they come and ends the response when
    the chain returns. Middleware still sees the whole exchange: the chain returns only after the last
    write, so audit and metrics read the finished exchange as usual.
    """

    def __init__(self) -> None:
        self.status = 200
        self.media_type = "application/json"
        self.started = asyncio.Event()
        self._pieces: asyncio.Queue[bytes | None] = asyncio.Queue()

    def start(self, status: int = 200, media_type: str = "application/json") -> None:
        self.status, self.media_type = status, media_type
        self.started.set()

    async def write(self, piece: bytes) -> None:
        await self._pieces.put(piece)

    def close(self) -> None:
        self._pieces.put_nowait(None)

    async def pieces(self) -> AsyncIterator[bytes]:
        while (piece := await self._pieces.get()) is not None:
            yield piece


REQUEST_BODY_STREAM: StashKey[AsyncIterator[bytes]] = StashKey("request-body-stream")
"""The request body as it arrives, on a route whose terminal streams (``HttpRequest.body`` is then empty)."""
RESPONSE_STREAM: StashKey[ResponseStream] = StashKey("response-stream")
"""Where a streaming terminal writes its reply (see :class:`ResponseStream`)."""
