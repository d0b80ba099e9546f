"""Record headers as clients send them in JSON request bodies (produce and dead-letter routes)."""

from __future__ import annotations

import base64
import binascii

from kafka_sidecar._errors import ValidationFailed


def parse_headers(raw: object, where: str) -> tuple[tuple[str, bytes], ...]:
    """A map of text values (Java sidecar) or a v3 list of ``{name, value}`` with base64 values."""
    if raw is None:
        return ()
    if isinstance(raw, dict):
        out = []
        for name, value in raw.items():
            if not isinstance(value, str):
                raise ValidationFailed(f"header value must be a string, got {value!r}", field=f"{where}.{name}")
            out.append((str(name), value.encode("utf-8")))
        return tuple(out)
    if isinstance(raw, list):
        out = []
        for index, entry in enumerate(raw):
            spot = f"{where}[{index}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
                raise ValidationFailed("must be an object with a 'name' and a base64 'value'", field=spot)
            value = entry.get("value")
            if value is None:
                out.append((entry["name"], b""))
                continue
            if not isinstance(value, str):
                raise ValidationFailed("value must be a base64 string", field=f"{spot}.value")
            try:
                out.append((entry["name"], base64.b64decode(value, validate=True)))
            except (binascii.Error, ValueError) as exc:
                raise ValidationFailed(f"value is not valid base64: {exc}", field=f"{spot}.value") from exc
        return tuple(out)
    raise ValidationFailed("headers must be an object of strings or a list of {name, value}", field=where)
