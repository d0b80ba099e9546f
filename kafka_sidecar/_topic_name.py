"""What a legal Kafka topic name is, in one place: the produce route, the REST Proxy consumer API and the
OpenAPI schema all use it."""

from __future__ import annotations

import re

from kafka_sidecar._errors import ValidationFailed

TOPIC_NAME_PATTERN = "^[A-Za-z0-9._-]{1,249}$"
"""Kafka's legal characters and length, as a JSON Schema ``pattern``; ``.`` and ``..`` are also refused."""
_TOPIC_NAME = re.compile(TOPIC_NAME_PATTERN)


def checked_topic_name(value: object, field: str) -> str:
    """``value`` if it is a legal Kafka topic name, else a :class:`ValidationFailed` naming ``field``."""
    if not isinstance(value, str) or not _TOPIC_NAME.match(value) or value in (".", ".."):
        raise ValidationFailed(f"{value!r} is not a legal Kafka topic name", field=field)
    return value
