"""Which v3 operation a route is, recognised by shape after ``.../clusters``, and its path values by position."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# (literal words after "clusters", with "*" for a path parameter) -> operation, per method
_SHAPES: Mapping[tuple[str, ...], Mapping[str, str]] = {
    (): {"GET": "clusters"},
    ("*",): {"GET": "cluster"},
    ("*", "topics"): {"GET": "topics", "POST": "create_topic"},
    ("*", "topics", "*"): {"GET": "topic", "DELETE": "delete_topic"},
    ("*", "topics", "*", "partitions"): {"GET": "partitions"},
    ("*", "topics", "*", "partitions", "*"): {"GET": "partition"},
    ("*", "topics", "*", "configs"): {"GET": "topic_configs"},
    ("*", "topics", "*", "records"): {"POST": "produce"},
    ("*", "topics", "*", "records:batch"): {"POST": "produce_batch"},
    ("*", "consumer-groups"): {"GET": "groups"},
    ("*", "consumer-groups", "*"): {"GET": "group"},
    ("*", "consumer-groups", "*", "consumers"): {"GET": "consumers"},
    ("*", "consumer-groups", "*", "lags"): {"GET": "lags"},
    ("*", "consumer-groups", "*", "lag-summary"): {"GET": "lag_summary"},
}
ADMIN_OPERATIONS = frozenset({"create_topic", "delete_topic"})


def _shape(route: str) -> tuple[str, ...] | None:
    parts = [p for p in route.split("/") if p]
    if "clusters" not in parts:
        return None
    tail = parts[parts.index("clusters") + 1 :]
    return tuple("*" if p.startswith("{") and p.endswith("}") else p for p in tail)


def operation(route: str, method: str) -> str | None:
    shape = _shape(route)
    return None if shape is None else _SHAPES.get(shape, {}).get(method.upper())


@dataclass(frozen=True, slots=True)
class Target:
    """The path values of a v3 request: cluster, then topic or group, then partition."""

    values: Sequence[str]

    def at(self, index: int) -> str:
        return self.values[index] if index < len(self.values) else ""


def target(route: str, path: str) -> Target:
    route_parts = [p for p in route.split("/") if p]
    path_parts = [p for p in path.split("/") if p]
    values = [
        value
        for name, value in zip(route_parts, path_parts, strict=False)
        if name.startswith("{") and name.endswith("}")
    ]
    return Target(tuple(values))
