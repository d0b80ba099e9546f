"""Reading YAML with positions: duplicate keys rejected, ``${VAR}`` / ``${VAR:default}`` resolved.

Mappings load as :class:`YamlMap` and sequences as :class:`YamlList`; both remember where each key
and item stood, so every later problem can be reported as ``file:line:col``. Problems are
collected, never raised one at a time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from kafka_sidecar._errors import ConfigProblem


@dataclass(frozen=True, slots=True)
class Loc:
    file: str
    line: int
    column: int

    @classmethod
    def of(cls, file: str, mark: yaml.Mark | None) -> Loc:
        if mark is None:
            return cls(file, 1, 1)
        return cls(file, mark.line + 1, mark.column + 1)

    def problem(self, path: str, message: str, suggestion: str | None = None) -> ConfigProblem:
        return ConfigProblem(self.file, self.line, self.column, path, message, suggestion)


class YamlMap(dict[str, Any]):
    """A mapping that knows where it, each key and each value stood."""

    loc: Loc
    key_locs: dict[str, Loc]
    value_locs: dict[str, Loc]

    def loc_of(self, key: str) -> Loc:
        return self.value_locs.get(key, self.key_locs.get(key, self.loc))


class YamlList(list[Any]):
    """A sequence that knows where it and each item stood."""

    loc: Loc
    item_locs: list[Loc]

    def loc_of(self, index: int) -> Loc:
        return self.item_locs[index] if index < len(self.item_locs) else self.loc


class Interpolated(str):
    """A string that came from ``${...}``: the converter may read it as a number or a boolean."""

    __slots__ = ()


_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")


def loc_of(value: object, fallback: Loc) -> Loc:
    return value.loc if isinstance(value, YamlMap | YamlList) else fallback


def load_yaml(text: str, file: str, env: Mapping[str, str] | None = None) -> tuple[Any, list[ConfigProblem]]:
    """Parse ``text``; return the tree and every problem found (syntax, duplicates, missing variables)."""
    environ = os.environ if env is None else env
    problems: list[ConfigProblem] = []
    loader = _MarkedLoader(text, file, environ, problems)
    try:
        tree = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        loc = Loc.of(file, exc.problem_mark)
        problems.append(loc.problem("", f"YAML syntax error: {exc.problem}"))
        return None, problems
    finally:
        loader.dispose()
    return tree, problems


class _MarkedLoader(yaml.SafeLoader):
    def __init__(self, text: str, file: str, env: Mapping[str, str], problems: list[ConfigProblem]) -> None:
        super().__init__(text)
        self._file = file
        self._env = env
        self._problems = problems

    def construct_yaml_map(self, node: yaml.MappingNode) -> Any:
        result = YamlMap()
        result.loc = Loc.of(self._file, node.start_mark)
        result.key_locs = {}
        result.value_locs = {}
        yield result
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            key_loc = Loc.of(self._file, key_node.start_mark)
            if not isinstance(key, str):
                self._problems.append(key_loc.problem("", f"keys must be strings, got {key!r}"))
                continue
            if key in result:
                first = result.key_locs[key]
                self._problems.append(
                    key_loc.problem(key, f"duplicate key {key!r} (first defined at line {first.line})")
                )
                continue
            result[key] = self.construct_object(value_node, deep=True)
            result.key_locs[key] = key_loc
            result.value_locs[key] = Loc.of(self._file, value_node.start_mark)

    def construct_yaml_seq(self, node: yaml.SequenceNode) -> Any:
        result = YamlList()
        result.loc = Loc.of(self._file, node.start_mark)
        result.item_locs = [Loc.of(self._file, item.start_mark) for item in node.value]
        yield result
        result.extend(self.construct_object(item, deep=True) for item in node.value)

    def construct_yaml_str(self, node: yaml.ScalarNode) -> Any:
        text = str(self.construct_scalar(node))
        if "${" not in text:
            return text
        return self._interpolate(text, Loc.of(self._file, node.start_mark))

    def _interpolate(self, text: str, loc: Loc) -> str:
        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in self._env:
                return self._env[name]
            if default is not None:
                return default
            self._problems.append(
                loc.problem(
                    "",
                    f"environment variable {name!r} is not set and has no default; "
                    f"set it (export {name}=...) or give a default: ${{{name}:value}}",
                )
            )
            return ""

        return Interpolated(_PLACEHOLDER.sub(replace, text))


_MarkedLoader.add_constructor("tag:yaml.org,2002:map", _MarkedLoader.construct_yaml_map)
_MarkedLoader.add_constructor("tag:yaml.org,2002:seq", _MarkedLoader.construct_yaml_seq)
_MarkedLoader.add_constructor("tag:yaml.org,2002:str", _MarkedLoader.construct_yaml_str)


def _yaml12_booleans() -> None:
    """Only ``true``/``false`` are booleans (YAML 1.2); ``on``, ``off``, ``yes``, ``no`` stay strings."""
    resolvers = {key: list(value) for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    for first, entries in resolvers.items():
        resolvers[first] = [(tag, regexp) for tag, regexp in entries if tag != "tag:yaml.org,2002:bool"]
    _MarkedLoader.yaml_implicit_resolvers = resolvers
    _MarkedLoader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )


_yaml12_booleans()
