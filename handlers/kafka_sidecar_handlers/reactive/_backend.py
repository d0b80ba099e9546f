"""The delivery contract with the backend: request body, the HTTP call, and reading the reply.

Request: ``POST`` ``{"consumer": name, "records": [{topic, partition, offset, timestamp, key, value,
headers}]}``. Reply (2xx): no body = every record succeeded; otherwise one of

* ``{"statuses": [{"partition", "offset" | "index", "status", "error"?}]}`` (``results`` also accepted)
  or the same list at the top level; records left out are RETRY (as in Dapr's bulk contract);
* ``{"status": "SUCCESS" | ...}``: one status for the whole batch;
* the Java sidecar's ``RecordProcessedResult`` list (``processed``, ``stacktrace``, ``record``):
  ``processed: true`` is SUCCESS, ``false`` is DEADLETTER with the stack trace as the error.

Anything else is a malformed reply: :class:`UpstreamUnavailable` (``reason: malformed``), so the batch
is retried, never a crash. Non-2xx, timeouts and transport errors raise the same error with their reason.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter
from typing import cast

import httpcore
import httpx
import msgspec

from kafka_sidecar.plugin import (
    ConsumedRecord,
    DeliveryStatus,
    Headers,
    RecordOutcome,
    SharedPrefix,
    UniformOutcomes,
    UpstreamUnavailable,
    headers_to_text,
)
from kafka_sidecar.plugin import json_dumps as dumps

log = logging.getLogger(__name__)

STATUSES: frozenset[str] = frozenset({"SUCCESS", "RETRY", "DROP", "DEADLETTER"})
REASON_CONNECT = "connect"
"""The request never reached the backend: no attempt is counted, delivery waits for it."""
REASON_TIMEOUT = "timeout"
REASON_STATUS = "status"
REASON_MALFORMED = "malformed"
REASON_TRANSPORT = "transport"
MAX_ERROR_TEXT = 2000
_HEADERS = attrgetter("headers")


class MalformedReply(ValueError):
    """The backend's 2xx body cannot be matched to the batch."""


def unavailable(reason: str, detail: str) -> UpstreamUnavailable:
    return UpstreamUnavailable(detail, extra={"reason": reason})


def failure_reason(exc: BaseException) -> str | None:
    """The ``reason`` of a backend failure raised here, or None for any other exception."""
    if isinstance(exc, UpstreamUnavailable):
        reason = exc.extra.get("reason")
        return reason if isinstance(reason, str) else None
    return None


@dataclass(frozen=True, slots=True)
class RawJson:
    """A key or value whose bytes are already valid UTF-8 JSON text: spliced into the body, not re-encoded."""

    text: bytes

    @staticmethod
    def of(data: bytes) -> RawJson | None:
        """``data`` (which ``json.loads`` accepted) if it can be spliced as is; None if it needs re-encoding."""
        if data[:3] == b"\xef\xbb\xbf" or b"\x00" in data[:4]:
            return None  # a BOM or UTF-16/32: valid for json.loads, not inside a UTF-8 body
        return RawJson(data)


def _json_bytes(data: object) -> bytes:
    return data.text if isinstance(data, RawJson) else dumps(data)


def record_entry(record: ConsumedRecord, key: object, value: object, added: Headers = ()) -> bytes:
    """One record of the request body: topic, partition, offset, timestamp, headers (fetched, then
    ``added`` by middleware), key, value (JSON written in C by msgspec; JSON text that decoded fine is
    spliced as it is)."""
    return b"".join((_entry_head(record, added), _json_bytes(key), b',"value":', _json_bytes(value), b"}"))


def record_entry_as_is(record: ConsumedRecord, added: Headers = ()) -> bytes:
    """:func:`record_entry` of a record whose key and value are known to be JSON text or null (checked for
    the whole batch): their bytes spliced as they are."""
    return _entry_as_is_with(record, _headers_json(record, added))


_PLAIN_CHARS = bytes(range(0x20, 0x7F)).replace(b'"', b"").replace(b"\\", b"")
"""Printable ASCII without quote or backslash: JSON string content as it is (deleted by ``translate``
in C, so text made only of these leaves nothing; half the time of a regular expression's match)."""
_TOPIC, _PARTITION, _OFFSET = attrgetter("topic"), attrgetter("partition"), attrgetter("offset")
_TIMESTAMP, _KEY, _VALUE = attrgetter("timestamp_ms"), attrgetter("key"), attrgetter("value")
_NULL = msgspec.Raw(b"null")
_NO_HEADERS = msgspec.Raw(b"{}")


class _Entry(msgspec.Struct, gc=False):
    """One record of the request body, its JSON parts spliced as they are (``msgspec.Raw``)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    headers: msgspec.Raw
    key: msgspec.Raw
    value: msgspec.Raw


class _Body(msgspec.Struct, gc=False):
    consumer: str
    records: list[_Entry]


_encode = msgspec.json.Encoder().encode


def as_is_body(
    consumer: str,
    records: Sequence[ConsumedRecord],
    column: tuple[str, Sequence[bytes]] | None = None,
    java: bool = False,
) -> bytes | None:
    """:func:`request_body` over the entries of :func:`record_entry_as_is`, written in C: the entries are
    msgspec structs built by ``map`` over the record fields (no Python frame per record) and encoded by
    one call. For records fetched without headers, with either no added headers or one added header per
    record (``column``: the name, and the values by position) whose values are all plain text (checked
    once over the batch); every value JSON text (a tombstone falls back), every key JSON text or every key
    null. None when the batch is not like that; the caller then writes the entries record by record."""
    if any(map(_HEADERS, records)):
        return None
    values = list(map(_VALUE, records))
    if None in values:
        return None
    fetched_keys = list(map(_KEY, records))
    keys: Iterable[msgspec.Raw] = map(msgspec.Raw, fetched_keys)
    if None in fetched_keys:
        if fetched_keys.count(None) != len(fetched_keys):
            return None  # some keys null, some not: record by record
        keys = repeat(_NULL, len(values))
    headers: Iterable[msgspec.Raw]
    if column is None:
        headers = repeat(_NO_HEADERS, len(values))
    else:
        name, texts = column
        opening = b"{" + dumps(name) + b':"'
        if isinstance(texts, SharedPrefix):  # generated ids: the shared part spliced once, one join per record
            if texts.prefix.translate(None, _PLAIN_CHARS):
                return None
            opening, texts = opening + texts.prefix, texts.suffixes
        if b"".join(texts).translate(None, _PLAIN_CHARS):
            return None
        headers = map(msgspec.Raw, map(b"".join, zip(repeat(opening), texts, repeat(b'"}'))))
    entries = list(map(_Entry, map(_TOPIC, records), map(_PARTITION, records), map(_OFFSET, records),
                       map(_TIMESTAMP, records), headers, keys, map(msgspec.Raw, values)))  # fmt: skip
    return _encode(entries) if java else _encode(_Body(consumer, entries))


def _entry_as_is_with(record: ConsumedRecord, headers: bytes) -> bytes:
    key, value = record.key, record.value
    return b"".join((_head(record, headers), b"null" if key is None else key, b',"value":',
                     b"null" if value is None else value, b"}"))  # fmt: skip


def _entry_head(record: ConsumedRecord, added: Headers) -> bytes:
    return _head(record, _headers_json(record, added))


def _headers_json(record: ConsumedRecord, added: Headers) -> bytes:
    fetched = record.headers
    if added:
        return dumps(headers_to_text(fetched + added if fetched else added))
    return dumps(headers_to_text(fetched)) if fetched else b"{}"


def _head(record: ConsumedRecord, headers: bytes) -> bytes:
    return b'{"topic":%b,"partition":%d,"offset":%d,"timestamp":%d,"headers":%b,"key":' % (
        dumps(record.topic), record.partition, record.offset, record.timestamp_ms, headers,
    )  # fmt: skip


def request_body(consumer: str, entries: Sequence[bytes], java: bool = False) -> bytes:
    """``{"consumer": ..., "records": [...]}``, or with ``java`` the bare array the Java sidecar sends."""
    if java:
        return b"".join((b"[", b",".join(entries), b"]"))
    return b"".join((b'{"consumer":', dumps(consumer), b',"records":[', b",".join(entries), b"]}"))


_UNREACHABLE = (httpcore.ConnectError, httpcore.ConnectTimeout)
_TRANSPORT_ERRORS = (
    httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError, httpcore.ProxyError,
    httpcore.UnsupportedProtocol,
)  # fmt: skip


class BackendClient:
    """One connection pool per reactive consumer: httpcore, the HTTP/1.1 engine under httpx, called directly.

    A batch is one POST with a ready body; httpx's client layer (redirects, auth, cookies, event hooks,
    proxies from the environment) has nothing to do there and cost about a third of the CPU of each call
    (docs/benchmarks.md). TLS is verified as httpx does (``httpx.create_ssl_context``: system or
    ``SSL_CERT_FILE`` certificates). The backend is always called directly: ``HTTP(S)_PROXY`` variables
    are not applied to it."""

    def __init__(
        self, endpoint: str, timeout_s: float, headers: Mapping[str, str], health_url: str | None = None
    ) -> None:
        self.endpoint = endpoint
        self.health_url = health_url
        self._headers = {"content-type": "application/json", "user-agent": "kafka-sidecar-reactive", **headers}
        self._timeouts = {"timeout": dict.fromkeys(("connect", "read", "write", "pool"), timeout_s)}
        self._pool = httpcore.AsyncConnectionPool(  # httpx's defaults: pool limits and keep-alive expiry
            ssl_context=httpx.create_ssl_context(), max_connections=100, max_keepalive_connections=20,
            keepalive_expiry=5.0,
        )  # fmt: skip

    async def close(self) -> None:
        await self._pool.aclose()

    async def deliver(
        self, body: bytes, records: Sequence[ConsumedRecord], extra_headers: Mapping[str, str]
    ) -> Sequence[RecordOutcome]:
        """POST one batch and read the per-record outcomes; raises UpstreamUnavailable to retry."""
        headers = list({**self._headers, **extra_headers}.items())
        try:
            response = await self._pool.request(
                "POST", self.endpoint, headers=headers, content=body, extensions=self._timeouts
            )
        except _UNREACHABLE as exc:
            raise unavailable(REASON_CONNECT, f"backend {self.endpoint} is unreachable: {exc}") from exc
        except httpcore.TimeoutException as exc:
            raise unavailable(REASON_TIMEOUT, f"backend {self.endpoint} did not answer in time") from exc
        except _TRANSPORT_ERRORS as exc:
            raise unavailable(REASON_TRANSPORT, f"backend call failed: {type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status < 300:
            snippet = response.content[:200].decode("utf-8", "replace")
            raise unavailable(REASON_STATUS, f"backend answered HTTP {response.status}: {snippet}")
        try:
            return parse_reply(response.content, records)
        except MalformedReply as exc:
            log.error("backend %s sent a malformed reply (the batch will be retried): %s", self.endpoint, exc)
            raise unavailable(REASON_MALFORMED, f"malformed backend reply: {exc}") from exc

    async def healthy(self) -> bool:
        if self.health_url is None:
            return True
        try:
            response = await self._pool.request("GET", self.health_url, extensions=self._timeouts)
        except _TRANSPORT_ERRORS:
            return False
        return response.status < 400


def parse_reply(content: bytes, records: Sequence[ConsumedRecord]) -> Sequence[RecordOutcome]:
    """Outcomes in the order of ``records`` (one :class:`UniformOutcomes` when the reply speaks for the
    whole batch); raises :class:`MalformedReply`."""
    if not content.strip():
        return UniformOutcomes(records, "SUCCESS")
    try:
        data: object = json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedReply(f"not JSON: {exc}") from exc
    if isinstance(data, dict):
        entries = data.get("statuses", data.get("results"))
        if entries is None and "status" in data:
            status = _status(data.get("status"), "status")
            return UniformOutcomes(records, status, _error(data.get("error")))
        data = entries
    if not isinstance(data, list):
        raise MalformedReply("expected a list of statuses, an object with 'statuses', or {'status': ...}")
    return _match(cast("list[object]", data), records)


def _match(entries: list[object], records: Sequence[ConsumedRecord]) -> tuple[RecordOutcome, ...]:
    by_position = {(r.topic, r.partition, r.offset): i for i, r in enumerate(records)}
    by_offset: dict[tuple[int, int], int] = {}
    for i, r in enumerate(records):
        by_offset.setdefault((r.partition, r.offset), i)
    found: dict[int, tuple[DeliveryStatus, str | None]] = {}
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise MalformedReply(f"entry {n} is not an object")
        index = _locate(entry, n, len(entries), records, by_position, by_offset)
        if index in found:
            raise MalformedReply(f"entry {n} repeats record {index}")
        found[index] = _entry_outcome(entry, n)
    return tuple(
        RecordOutcome(r, *found[i]) if i in found else RecordOutcome(r, "RETRY", "no status in the reply")
        for i, r in enumerate(records)
    )


def _locate(
    entry: dict[str, object],
    n: int,
    count: int,
    records: Sequence[ConsumedRecord],
    by_position: dict[tuple[str, int, int], int],
    by_offset: dict[tuple[int, int], int],
) -> int:
    source = entry.get("record") if isinstance(entry.get("record"), dict) else entry
    assert isinstance(source, dict)
    partition, offset = source.get("partition"), source.get("offset")
    if _is_int(partition) and _is_int(offset):
        topic = source.get("topic")
        key = (topic, partition, offset)
        index = by_position.get(key) if isinstance(topic, str) else by_offset.get((partition, offset))  # type: ignore[arg-type]
        if index is None:
            raise MalformedReply(f"entry {n} names partition {partition} offset {offset}, which is not in the batch")
        return index
    index_value = entry.get("index")
    if _is_int(index_value):
        assert isinstance(index_value, int)
        if not 0 <= index_value < len(records):
            raise MalformedReply(f"entry {n} has index {index_value}, outside the batch of {len(records)}")
        return index_value
    if count == len(records):
        return n
    raise MalformedReply(
        f"entry {n} has no partition+offset or index, and the reply has {count} entries for {len(records)} records"
    )


def _entry_outcome(entry: dict[str, object], n: int) -> tuple[DeliveryStatus, str | None]:
    if "status" in entry:
        return _status(entry["status"], f"[{n}].status"), _error(entry.get("error"))
    processed = entry.get("processed")
    if isinstance(processed, bool):
        if processed:
            return "SUCCESS", None
        return "DEADLETTER", _error(entry.get("stacktrace") or entry.get("error") or "backend: processed=false")
    raise MalformedReply(f"entry {n} has neither 'status' nor a boolean 'processed'")


def _status(value: object, where: str) -> DeliveryStatus:
    if isinstance(value, str) and value.upper() in STATUSES:
        return cast("DeliveryStatus", value.upper())
    raise MalformedReply(f"{where} is {value!r}, not one of {', '.join(sorted(STATUSES))}")


def _error(value: object) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:MAX_ERROR_TEXT]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
