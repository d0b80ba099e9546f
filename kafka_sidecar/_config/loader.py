"""Loading ``chains.yml``: YAML with positions -> typed :class:`SidecarConfig`, every problem at once."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kafka_sidecar._config.convert import INVALID, convert, join_path, nearest
from kafka_sidecar._config.model import PluginsConfig, SidecarConfig
from kafka_sidecar._config.yaml_source import Loc, YamlMap, load_yaml
from kafka_sidecar._errors import ConfigError, ConfigProblem

CORE_SECTIONS = tuple(f.name for f in dataclasses.fields(SidecarConfig) if f.name != "sections")


def read_tree(path: str | Path, env: Mapping[str, str] | None = None) -> tuple[Any, list[ConfigProblem]]:
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem(file, 1, 1, "", f"cannot read config file: {exc.strerror}")]) from exc
    tree, problems = load_yaml(text, file, env)
    if tree is None and not problems:
        tree = YamlMap()
        tree.loc, tree.key_locs, tree.value_locs = Loc(file, 1, 1), {}, {}
    return tree, problems


def plugins_section(tree: Any, file: str, problems: list[ConfigProblem]) -> PluginsConfig:
    """The ``plugins`` section alone: it decides which plugins load, before anything else is known."""
    if not isinstance(tree, dict) or "plugins" not in tree:
        return PluginsConfig()
    loc = tree.loc_of("plugins") if isinstance(tree, YamlMap) else Loc(file, 1, 1)
    found = convert(tree["plugins"], PluginsConfig, "plugins", loc, problems)
    return PluginsConfig() if found is INVALID else found


def parse_config(
    tree: Any, file: str, section_types: Mapping[str, type], problems: list[ConfigProblem]
) -> SidecarConfig | None:
    """Convert the document; plugin sections are checked against their registered dataclasses."""
    root_loc = tree.loc if isinstance(tree, YamlMap) else Loc(file, 1, 1)
    if tree is None and problems:
        return None  # a syntax error, already reported
    if not isinstance(tree, dict):
        problems.append(root_loc.problem("", "the config file must be a mapping of sections"))
        return None
    core: dict[str, Any] = {}
    sections: dict[str, object] = {}
    known = (*CORE_SECTIONS, *section_types)
    for key, value in tree.items():
        loc = tree.loc_of(key) if isinstance(tree, YamlMap) else root_loc
        if key in CORE_SECTIONS:
            core[key] = value
        elif key in section_types:
            sections[key] = convert(value, section_types[key], key, loc, problems)
        else:
            key_loc = tree.key_locs.get(key, root_loc) if isinstance(tree, YamlMap) else root_loc
            problems.append(key_loc.problem(key, "unknown section", nearest(key, known)))
    before = len(problems)
    kwargs = {}
    for field in dataclasses.fields(SidecarConfig):
        if field.name in core:
            loc = tree.loc_of(field.name) if isinstance(tree, YamlMap) else root_loc
            kwargs[field.name] = convert(
                core[field.name], _field_types()[field.name], join_path("", field.name), loc, problems
            )
    for name, config_type in section_types.items():
        if name not in sections:
            sections[name] = convert(None, config_type, name, root_loc, problems)
    if len(problems) > before or any(v is INVALID for v in (*kwargs.values(), *sections.values())):
        return None
    return SidecarConfig(**kwargs, sections=sections)


def _field_types() -> dict[str, Any]:
    import typing

    return typing.get_type_hints(SidecarConfig)
