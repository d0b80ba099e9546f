"""Confluent REST Proxy v2 media types, parsed in one place (the producer, the consumer API, validation)."""

from __future__ import annotations

V2_MEDIA_TYPE = "application/vnd.kafka.v2+json"
"""The v2 media type without an embedded format (replies other than records, and v2 errors)."""
_PREFIX = "application/vnd.kafka."
_SUFFIX = ".v2+json"


def v2_embedded_format(media_type: str) -> str | None:
    """The format a v2 media type embeds: ``application/vnd.kafka.avro.v2+json`` -> ``avro``,
    ``application/vnd.kafka.v2+json`` -> ``""`` (none named); ``None`` for a type that is not v2."""
    if media_type.startswith(_PREFIX) and media_type.endswith(_SUFFIX) and len(media_type) >= len(V2_MEDIA_TYPE):
        return media_type[len(_PREFIX) : -len(_SUFFIX)]
    return None


def v2_media_type(embedded_format: str) -> str:
    """``avro`` -> ``application/vnd.kafka.avro.v2+json``."""
    return f"{_PREFIX}{embedded_format}{_SUFFIX}"
