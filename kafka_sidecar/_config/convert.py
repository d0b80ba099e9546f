"""Turning a positioned YAML tree into frozen dataclasses, collecting every problem on the way.

Supported field types: ``str``, ``int``, ``float``, ``bool``, ``Literal[...]``, ``Enum`` subclasses,
``X | None``, unions, ``tuple[X, ...]``, ``Mapping[str, X]``, nested dataclasses and ``object``
(kept as plain data). Unknown keys are problems with the nearest valid name; so are missing
required fields. Field metadata: ``doc`` (shown in docs), ``secret`` (masked wherever shown),
``aliases`` (other accepted spellings), ``file`` (a path to a file: a relative one is taken from the
config file's folder, never the working directory, and a file that cannot be read is a problem at
the value's position).
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import os
import types
import typing
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from kafka_sidecar._config.yaml_source import Interpolated, Loc, YamlList, YamlMap
from kafka_sidecar._errors import ConfigProblem

T = TypeVar("T")


class _Invalid:
    """Marker for a value that could not be converted (the problem is already recorded)."""


INVALID: Any = _Invalid()


def nearest(name: str, candidates: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def join_path(parent: str, child: str | int) -> str:
    if isinstance(child, int):
        return f"{parent}[{child}]"
    return f"{parent}.{child}" if parent else child


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def field_names(cls: type) -> dict[str, str]:
    """Accepted spelling -> field name, aliases included (``init=False`` fields are derived, not keys)."""
    names: dict[str, str] = {}
    for field in dataclasses.fields(cls):
        if not field.init:
            continue  # derived in __post_init__, not a key
        names[field.name] = field.name
        for alias in field.metadata.get("aliases", ()):
            names[alias] = field.name
    return names


def convert(value: Any, target: Any, path: str, loc: Loc, problems: list[ConfigProblem]) -> Any:
    """Convert ``value`` to ``target``; on failure record a problem and return :data:`INVALID`."""
    if isinstance(value, YamlMap | YamlList):
        loc = value.loc
    origin = typing.get_origin(target)
    if target is Any or target is object:
        return value  # kept with its positions, for whoever validates it later
    if dataclasses.is_dataclass(target) and isinstance(target, type):
        return _to_dataclass(value, target, path, loc, problems)
    if origin is typing.Union or origin is types.UnionType:
        return _to_union(value, target, path, loc, problems)
    if origin is typing.Literal:
        allowed = typing.get_args(target)
        if value in allowed:
            return value
        text = ", ".join(repr(a) for a in allowed)
        suggestion = nearest(str(value), [str(a) for a in allowed])
        problems.append(loc.problem(path, f"must be one of {text}, got {value!r}", suggestion))
        return INVALID
    if origin in (tuple, list):
        return _to_tuple(value, target, path, loc, problems)
    if origin in (dict, Mapping, typing.Mapping) or target is dict:
        return _to_mapping(value, target, path, loc, problems)
    if isinstance(target, type) and issubclass(target, enum.Enum):
        try:
            return target(value)
        except ValueError:
            allowed_values = [str(m.value) for m in target]
            problems.append(
                loc.problem(
                    path,
                    f"must be one of {', '.join(allowed_values)}, got {value!r}",
                    nearest(str(value), allowed_values),
                )
            )
            return INVALID
    return _to_scalar(value, target, path, loc, problems)


def plain(value: Any) -> Any:
    """The same data without positions: plain dicts, lists and strings."""
    if isinstance(value, YamlMap):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, YamlList):
        return [plain(v) for v in value]
    if isinstance(value, Interpolated):
        return str(value)
    return value


_SCALAR_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _to_scalar(value: Any, target: Any, path: str, loc: Loc, problems: list[ConfigProblem]) -> Any:
    if target is type(None):
        if value is None:
            return None
    elif target is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, Interpolated) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif target is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, Interpolated) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif target is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, Interpolated):
            try:
                return float(value)
            except ValueError:
                pass
    elif target is str:
        if isinstance(value, str):
            return str(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    else:
        raise TypeError(f"unsupported config field type {target!r} at {path}")
    expected = _SCALAR_NAMES.get(target, "null")
    problems.append(loc.problem(path, f"must be {expected}, got {_describe(value)}"))
    return INVALID


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return f"{type(value).__name__} {value!r}"


def _to_union(value: Any, target: Any, path: str, loc: Loc, problems: list[ConfigProblem]) -> Any:
    options = typing.get_args(target)
    if value is None and type(None) in options:
        return None
    attempts: list[ConfigProblem] = []
    for option in options:
        if option is type(None):
            continue
        trial: list[ConfigProblem] = []
        result = convert(value, option, path, loc, trial)
        if not trial:
            return result
        attempts.extend(trial)
    if len(options) == 2 and type(None) in options:
        problems.extend(attempts)
    else:
        names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
        problems.append(loc.problem(path, f"must be {names}, got {_describe(value)}"))
    return INVALID


def _to_tuple(value: Any, target: Any, path: str, loc: Loc, problems: list[ConfigProblem]) -> Any:
    if not isinstance(value, list):
        problems.append(loc.problem(path, f"must be a list, got {_describe(value)}"))
        return INVALID
    args = typing.get_args(target)
    item_type = args[0] if args else Any
    items = []
    for index, item in enumerate(value):
        item_loc = value.loc_of(index) if isinstance(value, YamlList) else loc
        items.append(convert(item, item_type, join_path(path, index), item_loc, problems))
    return tuple(items)


def _to_mapping(value: Any, target: Any, path: str, loc: Loc, problems: list[ConfigProblem]) -> Any:
    if not isinstance(value, dict):
        problems.append(loc.problem(path, f"must be a mapping, got {_describe(value)}"))
        return INVALID
    args = typing.get_args(target)
    value_type = args[1] if len(args) == 2 else Any
    result = {}
    for key, item in value.items():
        item_loc = value.loc_of(key) if isinstance(value, YamlMap) else loc
        result[str(key)] = convert(item, value_type, join_path(path, str(key)), item_loc, problems)
    return result


def _to_dataclass(value: Any, cls: type, path: str, loc: Loc, problems: list[ConfigProblem]) -> Any:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        problems.append(loc.problem(path, f"must be a mapping, got {_describe(value)}"))
        return INVALID
    spellings = field_names(cls)
    hints = _hints(cls)
    files = _file_fields(cls)
    kwargs: dict[str, Any] = {}
    before = len(problems)
    for key, item in value.items():
        key_loc = value.key_locs.get(key, loc) if isinstance(value, YamlMap) else loc
        name = spellings.get(key)
        if name is None:
            problems.append(key_loc.problem(join_path(path, key), "unknown key", nearest(key, spellings)))
            continue
        item_loc = value.loc_of(key) if isinstance(value, YamlMap) else loc
        kwargs[name] = convert(item, hints[name], join_path(path, key), item_loc, problems)
        if name in files and isinstance(kwargs[name], str):
            kwargs[name] = _readable_file(kwargs[name], join_path(path, key), item_loc, problems)
    for field in dataclasses.fields(cls):
        missing = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        missing = missing and field.init
        if missing and field.name not in kwargs:
            problems.append(loc.problem(join_path(path, field.name), "is required"))
    if len(problems) > before or any(v is INVALID for v in kwargs.values()):
        return INVALID
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        problems.append(loc.problem(path, str(exc)))
        return INVALID


@cache
def _file_fields(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls) if f.metadata.get("file"))


def config_relative(path: str, loc: Loc) -> str:
    """``path`` made absolute: a relative one is taken from the folder of the file ``loc`` points into."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or loc.file.startswith("<"):  # ``<config>``: no file to be relative to
        return str(candidate)
    return str((Path(loc.file).resolve().parent / candidate).resolve())


def _readable_file(value: str, path: str, loc: Loc, problems: list[ConfigProblem]) -> Any:
    resolved = config_relative(value, loc)
    if not os.path.exists(resolved):
        problems.append(
            loc.problem(path, f"file {resolved!r} does not exist (relative paths are from the config file's folder)")
        )
        return INVALID
    if not os.access(resolved, os.R_OK) or os.path.isdir(resolved):
        problems.append(loc.problem(path, f"cannot read {resolved!r}"))
        return INVALID
    return resolved


def convert_root(value: Any, cls: type[T], file: str, problems: list[ConfigProblem]) -> T | None:
    """Convert a whole document; ``None`` when anything was wrong (see ``problems``)."""
    result = convert(value, cls, "", Loc(file, 1, 1), problems)
    return None if result is INVALID else typing.cast("T", result)


def convert_nested(value: Any, cls: type[T], path: str) -> T:
    """Convert a nested settings mapping (kept as plain data in a handler's config, positions included) to
    ``cls``; raises ``ValueError`` listing every problem with its ``file:line:col`` (a handler's
    ``__post_init__`` raises it, so ``kafka-sidecar check`` reports it)."""
    problems: list[ConfigProblem] = []
    result = convert(value, cls, path, Loc("<config>", 1, 1), problems)
    if problems or result is INVALID:
        texts = []
        for problem in problems:
            hint = f" (did you mean {problem.suggestion!r}?)" if problem.suggestion else ""
            texts.append(f"{problem.path} {problem.message}{hint} at {problem.file}:{problem.line}:{problem.column}")
        raise ValueError("; ".join(texts) or f"{path} is invalid")
    return typing.cast("T", result)
