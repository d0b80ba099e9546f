"""Kafka records as they leave and arrive: frozen, byte-level, independent of any client library.

The produce path makes one :class:`OutgoingRecord` and one :class:`DeliveryReport` per record, so both
are frozen ``msgspec.Struct`` types: built in C (0.08 µs each against 0.7 to 0.8 µs for a frozen
dataclass; docs/benchmarks.md, "Produce path, fourth round") and not tracked by the cyclic GC (they hold
only text, bytes, numbers and tuples of those, so they can never be part of a cycle). They behave as the
frozen dataclasses they replaced: keyword or positional construction, equality, ``repr``, read-only
fields (``msgspec.structs.replace`` makes a changed copy).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import repeat
from operator import attrgetter
from typing import overload

import msgspec

Headers = tuple[tuple[str, bytes], ...]


class OutgoingRecord(msgspec.Struct, frozen=True, gc=False):
    """A fully serialized record, ready to be sent."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    partition: int | None = None
    timestamp_ms: int | None = None


class DeliveryReport(msgspec.Struct, frozen=True, gc=False):
    """What the broker said about one record; ``error_code`` 0 means acknowledged."""

    topic: str
    partition: int | None
    offset: int | None
    error_code: int = 0
    error: str | None = None
    timestamp_ms: int | None = None

    @property
    def acknowledged(self) -> bool:
        return self.error_code == 0 and self.offset is not None


_ERROR_CODE, _OFFSET_OF = attrgetter("error_code"), attrgetter("offset")


def count_acknowledged(reports: Sequence[DeliveryReport]) -> int:
    """How many of ``reports`` are acknowledged, counted in C: every one when all error codes are 0 and
    every offset is known (the usual case), else one property read per report."""
    codes = list(map(_ERROR_CODE, reports))
    if codes.count(0) == len(codes) and None not in map(_OFFSET_OF, reports):
        return len(codes)
    return sum(report.acknowledged for report in reports)


class ConsumedRecord(msgspec.Struct, frozen=True, gc=False):
    """A record read from Kafka, bytes untouched.

    Frozen and slotted like a frozen dataclass (positional or keyword construction, ``==``, ``hash``,
    ``msgspec.structs.replace`` for a copy), but built in C: a consumer makes one per fetched record, and a
    ``map`` over the client's record fields builds a whole batch without a Python frame per record.
    ``gc=False``: it holds only strings, ints, bytes and a tuple of (str, bytes), so it can never be part
    of a reference cycle and the cyclic collector never walks the buffered records."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()

    def header(self, name: str) -> bytes | None:
        """The last value of header ``name`` (case-insensitive), or None."""
        lowered = name.lower()
        found: bytes | None = None
        for key, value in self.headers:
            if key.lower() == lowered:
                found = value
        return found


class SharedPrefix(Sequence[bytes]):
    """Values that are one prefix and a suffix each (value ``i`` is ``prefix + suffixes[i]``), made only when
    read: the ids a batch lacks share their random part. A writer that knows the type may splice ``prefix``
    and ``suffixes`` itself, one concatenation per value instead of two (the reactive backend body)."""

    __slots__ = ("prefix", "suffixes")

    def __init__(self, prefix: bytes, suffixes: Sequence[bytes]) -> None:
        self.prefix = prefix
        self.suffixes = suffixes

    def __len__(self) -> int:
        return len(self.suffixes)

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> SharedPrefix: ...
    def __getitem__(self, index: int | slice) -> bytes | SharedPrefix:
        if isinstance(index, slice):
            return SharedPrefix(self.prefix, self.suffixes[index])
        return self.prefix + self.suffixes[index]

    def __iter__(self) -> Iterator[bytes]:
        return map(self.prefix.__add__, self.suffixes)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SharedPrefix):
            return self.prefix == other.prefix and list(self.suffixes) == list(other.suffixes)
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable-looking sequence, like list

    def __repr__(self) -> str:
        return f"SharedPrefix({self.prefix!r}, {len(self.suffixes)} suffixes)"


_TOPIC, _PARTITION, _OFFSET = attrgetter("topic"), attrgetter("partition"), attrgetter("offset")
RecordKey = tuple[str, int, int]
"""A consumed record's (topic, partition, offset): unique within a batch."""


def record_key(record: ConsumedRecord) -> RecordKey:
    return (record.topic, record.partition, record.offset)


class AddedHeaders:
    """Headers middleware adds to the consumed records of one batch, without copying the records.

    A consumer exchange carries one (``exchange.added_headers``); the reactive consumer keeps the same
    one for every attempt of a batch, so what a plugin added on the first attempt (a generated
    correlation id) is still there on a retry. The backend body, the dead-letter copy and the audit
    record read a record's headers through :meth:`headers`: the fetched ones first, then the added ones
    (for a repeated name the last wins). Records are keyed by (topic, partition, offset).

    The first :meth:`add_each` of a batch is kept as one column (the records, the name, the values)
    until something asks for a single record's headers; a writer that walks the same records in order
    reads it position by position (:meth:`column`), with no per-record key or tuple at all.
    """

    __slots__ = ("_added", "_column")

    def __init__(self) -> None:
        self._added: dict[RecordKey, Headers] = {}
        self._column: tuple[Sequence[ConsumedRecord], str, Sequence[bytes]] | None = None

    def __bool__(self) -> bool:
        return self._column is not None or bool(self._added)

    def __len__(self) -> int:
        return len(self._keyed())

    def column(self, records: Sequence[ConsumedRecord]) -> tuple[str, Sequence[bytes]] | None:
        """``(name, values)`` when the only added headers are one header for each of exactly ``records``
        (the same sequence object), the value at the record's position; else None."""
        column = self._column
        if column is not None and column[0] is records:
            return column[1], column[2]
        return None

    def _keyed(self) -> dict[RecordKey, Headers]:
        """The headers by record key (a column kept so far is spread out first)."""
        column = self._column
        if column is not None:
            self._column = None
            records, name, values = column
            keys = zip(map(_TOPIC, records), map(_PARTITION, records), map(_OFFSET, records), strict=True)
            self._added.update(zip(keys, zip(zip(repeat(name), values), strict=False), strict=True))
        return self._added

    def add(self, record: ConsumedRecord, name: str, value: bytes) -> None:
        """Add header ``name`` to ``record`` (after the ones it was fetched with and the ones added before)."""
        added = self._keyed()
        key = record_key(record)
        added[key] = (*added.get(key, ()), (name, value))

    def add_each(self, records: Sequence[ConsumedRecord], name: str, values: Sequence[bytes]) -> None:
        """Header ``name`` for each of ``records``, with the value at the same position in ``values``."""
        if len(records) != len(values):
            raise ValueError(f"add_each: {len(records)} records but {len(values)} values (zip)")
        if self._column is None and not self._added:  # the first header of the batch: kept as a column
            self._column = (records, name, values)
            return
        added = self._keyed()
        for record, value in zip(records, values, strict=True):
            key = (record.topic, record.partition, record.offset)
            previous = added.get(key)
            added[key] = ((name, value),) if previous is None else (*previous, (name, value))

    def of(self, record: ConsumedRecord) -> Headers:
        """Only the headers added to ``record`` (empty if none)."""
        if not self:
            return ()
        return self._keyed().get((record.topic, record.partition, record.offset), ())

    def of_key(self, key: RecordKey) -> Headers:
        """Only the headers added to the record at ``key`` (empty if none)."""
        return self._keyed().get(key, ()) if self else ()

    def headers(self, record: ConsumedRecord) -> Headers:
        """The record's headers as fetched, then the added ones."""
        added = self.of(record)
        return record.headers + added if added else record.headers

    def header(self, record: ConsumedRecord, name: str) -> bytes | None:
        """The last value of header ``name`` (case-insensitive) among fetched and added headers, or None."""
        lowered = name.lower()
        found: bytes | None = None
        for key, value in self.headers(record):
            if key.lower() == lowered:
                found = value
        return found

    def applied(self, record: ConsumedRecord) -> ConsumedRecord:
        """A copy of ``record`` carrying its added headers (``record`` itself when none were added), for
        whatever keeps the record beyond the batch (a dead-letter sink, an event)."""
        added = self.of(record)
        if not added:
            return record
        return ConsumedRecord(record.topic, record.partition, record.offset, record.timestamp_ms, record.key,
                              record.value, record.headers + added)  # fmt: skip


def headers_to_text(headers: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    """Header bytes as text for JSON output; undecodable bytes are replaced, never dropped."""
    return {key: value.decode("utf-8", "replace") for key, value in headers}
