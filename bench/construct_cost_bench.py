"""CPU per construction of a per-request object: a frozen dataclass against a frozen ``msgspec.Struct``.

What the eighth round measured before making the objects every request builds (``HttpRequest``, ``Reply``,
``Produced``, ``CorrelationIds``, ``AuditRecord``, ...) ``msgspec.Struct``s: a frozen dataclass's generated
``__init__`` is Python code of its own, with one ``object.__setattr__`` per field; a Struct is built by
msgspec's C code, which every Struct shares. Warm, then with ``--cold MB`` written before each
construction (see ``request_cost_bench.py``). Not part of the test suite::

    .venv/bin/python bench/construct_cost_bench.py [--constructions 4000] [--cold 32]
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Any

import msgspec
from request_cost_bench import evictor, microseconds_each

THREE = [("a", str), ("b", str | None, None), ("c", bool, False)]
FIFTEEN_FIELDS = [("a", str), ("b", str), ("c", str), *((name, object, None) for name in "defghijkmnop")]
"""Field specs (name, type[, default]): each class below is built from one of them, once as a frozen
dataclass and once as a frozen Struct, so the two differ only in how they are made."""


def frozen_dataclass(name: str, fields: list[Any]) -> type:
    return dataclasses.make_dataclass(name, fields, frozen=True, slots=True)  # a third item is the default


def frozen_struct(name: str, fields: list[Any]) -> type:
    return msgspec.defstruct(name, fields, frozen=True)


Dataclass3, Struct3 = frozen_dataclass("Dataclass3", THREE), frozen_struct("Struct3", THREE)
Dataclass15, Struct15 = frozen_dataclass("Dataclass15", FIFTEEN_FIELDS), frozen_struct("Struct15", FIFTEEN_FIELDS)

FIFTEEN = ("PRODUCER", "svc", "SUCCESS", "topic", 0, 1, "cid", None, None, None, None, None, 5, "id")
CASES: dict[str, Callable[[], object]] = {
    "nothing (the call and the timer)": lambda: None,
    "frozen dataclass, 3 fields": lambda: Dataclass3("abc", None, True),
    "frozen msgspec.Struct, 3 fields": lambda: Struct3("abc", None, True),
    "frozen dataclass, 15 fields": lambda: Dataclass15(*FIFTEEN),
    "frozen msgspec.Struct, 15 fields": lambda: Struct15(*FIFTEEN),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--constructions", type=int, default=4000)
    parser.add_argument("--cold", type=int, default=32, metavar="MB", help="written before each cold construction")
    args = parser.parse_args()
    evict = evictor(args.cold)
    print(f"µs per construction, {args.constructions} each; cold: {args.cold} MiB written before each")
    print(f"{'':36} {'warm':>8} {'cold':>8}")
    for name, build in CASES.items():
        figures = [microseconds_each(args.constructions, build, before) for before in (None, evict)]
        print(f"{name:36} {figures[0]:8.2f} {figures[1]:8.2f}")


if __name__ == "__main__":
    main()
