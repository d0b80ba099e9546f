"""``java.util.Properties`` text: what Java Kafka programs (a broker, a Kafka Streams app) read their settings from."""

from __future__ import annotations

from collections.abc import Mapping


def escape_property(text: str, *, key: bool) -> str:
    """One key or value escaped for a ``.properties`` line (backslash, line breaks, separators, comments)."""
    out: list[str] = []
    for index, char in enumerate(text):
        if char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif char in "=: #!" and (key or (char in " #!" and index == 0)):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def properties_text(properties: Mapping[str, str]) -> str:
    """``key=value`` lines, sorted by key, each escaped."""
    return "".join(
        f"{escape_property(k, key=True)}={escape_property(v, key=False)}\n" for k, v in sorted(properties.items())
    )
