"""Plugin discovery and registration: folders, block list, validation errors naming plugin and hook."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from kafka_sidecar import HandlerSpec, hookimpl
from kafka_sidecar._blueprint import build_blueprint, discover
from kafka_sidecar._errors import PluginError

LOCAL_PLUGIN = """
from dataclasses import dataclass
from kafka_sidecar import HandlerSpec, hookimpl

@dataclass(frozen=True)
class TagConfig:
    value: str = "x"

class Tag:
    def __init__(self, config, resources):
        self.value = config.value

    async def __call__(self, exchange, call_next):
        exchange.add_record_header("tag", self.value.encode())
        return await call_next(exchange)

@hookimpl
def kafka_sidecar_register_handlers(register):
    register(HandlerSpec(name="tag", factory=Tag, config_type=TagConfig))
"""


def write_plugin(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_a_plugins_folder_is_loaded_and_attributed_to_its_file(tmp_path: Path) -> None:
    path = write_plugin(tmp_path / "plugins", "tagging", LOCAL_PLUGIN)
    catalog = discover(dirs=[tmp_path / "plugins"])
    registered = catalog.handlers.get("tag")
    assert registered is not None
    assert registered.provider.plugin == "tagging"
    assert registered.provider.origin == str(path)
    producer = catalog.handlers.get("producer")
    assert producer is not None
    assert producer.provider.origin.startswith("kafka-sidecar ")


def test_plugins_folder_from_config_is_relative_to_the_config_file(tmp_path: Path) -> None:
    write_plugin(tmp_path / "local", "tagging", LOCAL_PLUGIN)
    config = tmp_path / "chains.yml"
    config.write_text(
        "plugins: {dirs: [local]}\n"
        "handlers:\n  t: {use: tag, config: {value: blue}}\n"
        'paths:\n  - {path: "/x/{topic}", method: POST, exec: [t, producer]}\n',
        encoding="utf-8",
    )
    blueprint = build_blueprint(config, env={})
    assert blueprint.handlers["t"].config.value == "blue"  # type: ignore[attr-defined]
    assert blueprint.routes[0].links == ("t", "producer")


def test_block_list_keeps_a_plugin_out(tmp_path: Path) -> None:
    write_plugin(tmp_path / "plugins", "tagging", LOCAL_PLUGIN)
    assert "tag" not in discover(dirs=[tmp_path / "plugins"], block=["tagging"]).handlers
    assert "producer" not in discover(block=["producer"]).handlers


def test_duplicate_handler_names_name_both_plugins(tmp_path: Path) -> None:
    write_plugin(tmp_path / "plugins", "first", LOCAL_PLUGIN)
    write_plugin(tmp_path / "plugins", "second", LOCAL_PLUGIN)
    catalog = discover(dirs=[tmp_path / "plugins"])  # kept for the plan to report, located (check equals run)
    assert catalog.handlers.get("tag").provider.plugin == "first"  # type: ignore[union-attr]
    [duplicate] = catalog.registrations.duplicates
    assert duplicate.what == "handler type"
    assert duplicate.name == "tag"
    assert re.search(r"'tag' is registered twice: by first \(.*first\.py\) and by second", duplicate.message)


def test_unknown_hook_is_rejected_naming_plugin_and_hook(tmp_path: Path) -> None:
    write_plugin(
        tmp_path / "plugins",
        "typo",
        "from kafka_sidecar import hookimpl\n\n@hookimpl\ndef kafka_sidecar_register_handler(register):\n    pass\n",
    )
    with pytest.raises(PluginError, match=r"typo.*kafka_sidecar_register_handler"):
        discover(dirs=[tmp_path / "plugins"])


def test_bad_registration_names_plugin_hook_and_definition() -> None:
    class BadConfig:
        pass

    class Plugin:
        @hookimpl
        def kafka_sidecar_register_handlers(self, register: object) -> None:
            register(HandlerSpec(name="bad", factory=object, config_type=BadConfig))  # type: ignore[operator, arg-type]

    with pytest.raises(
        PluginError, match=r"inline.*kafka_sidecar_register_handlers.*'bad' config_type must be a dataclass"
    ):
        discover(extra_plugins=[(Plugin(), "inline")])


def test_a_plugin_that_fails_to_import_is_named(tmp_path: Path) -> None:
    write_plugin(tmp_path / "plugins", "broken", "raise RuntimeError('boom')\n")
    with pytest.raises(PluginError, match=r"broken\.py.*failed to import.*boom"):
        discover(dirs=[tmp_path / "plugins"])


def test_missing_plugins_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match="does not exist"):
        discover(dirs=[tmp_path / "nope"])
