"""A typed per-exchange store: handlers share state through ``StashKey[T]``, never free-form keys."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, final, overload

T = TypeVar("T")
D = TypeVar("D")


@final
class StashKey(Generic[T]):
    """A key whose value type is ``T``. Compare by identity; create one per concept, at module level."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"StashKey({self.name!r})"


@final
class Stash:
    """Values keyed by :class:`StashKey`; lives on one exchange and dies with it."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        # Typed through the annotated locals below, not typing.cast: a cast is a Python call, and every
        # exchange makes a few dozen of these lookups.
        self._values: dict[StashKey[Any], Any] = {}

    def __setitem__(self, key: StashKey[T], value: T) -> None:
        self._values[key] = value

    def __getitem__(self, key: StashKey[T]) -> T:
        value: T = self._values[key]
        return value

    @overload
    def get(self, key: StashKey[T]) -> T | None: ...
    @overload
    def get(self, key: StashKey[T], default: D) -> T | D: ...
    def get(self, key: StashKey[T], default: object = None) -> object:
        value: object = self._values.get(key, default)
        return value

    def setdefault(self, key: StashKey[T], default: T) -> T:
        value: T = self._values.setdefault(key, default)
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._values)
