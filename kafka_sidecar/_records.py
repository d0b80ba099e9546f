"""Kafka records as they leave and arrive: frozen, byte-level, independent of any client library."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """A fully serialized record, ready to be sent."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    partition: int | None = None
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class DeliveryReport:
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


@dataclass(frozen=True, slots=True)
class ConsumedRecord:
    """A record read from Kafka, bytes untouched."""

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


def headers_to_text(headers: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    """Header bytes as text for JSON output; undecodable bytes are replaced, never dropped."""
    return {key: value.decode("utf-8", "replace") for key, value in headers}
