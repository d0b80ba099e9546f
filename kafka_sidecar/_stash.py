"""A typed per-exchange store: handlers share state through ``StashKey[T]``, never free-form keys."""

from __future__ import annotations

from typing import Generic, TypeVar, cast, final, overload

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
        self._values: dict[StashKey[object], object] = {}

    def __setitem__(self, key: StashKey[T], value: T) -> None:
        self._values[cast("StashKey[object]", key)] = value

    def __getitem__(self, key: StashKey[T]) -> T:
        return cast("T", self._values[cast("StashKey[object]", key)])

    @overload
    def get(self, key: StashKey[T]) -> T | None: ...
    @overload
    def get(self, key: StashKey[T], default: D) -> T | D: ...
    def get(self, key: StashKey[T], default: object = None) -> object:
        return self._values.get(cast("StashKey[object]", key), default)

    def setdefault(self, key: StashKey[T], default: T) -> T:
        return cast("T", self._values.setdefault(cast("StashKey[object]", key), default))

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._values)
