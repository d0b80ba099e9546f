"""The container image runs the engines measured fastest (uvicorn, librdkafka for producers and reactive
consumers), installs the extras they need, and the shipped chains.yml picks them from the image's
environment; without that environment (a pip install) the pure-Python defaults stay."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from kafka_sidecar._blueprint import build_blueprint

ROOT = Path(__file__).parents[2]
CONTAINERFILE = (ROOT / "Containerfile").read_text(encoding="utf-8")
SHIPPED = ROOT / "chains.yml"
ARG = re.compile(r"^ARG (\w+)=(.*)$", re.MULTILINE)
ENV_ITEM = re.compile(r"(\w+)=\$\{(\w+)\}")
ENGINE_EXTRA = {"uvicorn": "uvicorn", "librdkafka": "librdkafka", "hypercorn": None, "aiokafka": None}
"""The pyproject extra each engine needs (None: a core dependency)."""


def build_args() -> dict[str, str]:
    return {name: value.strip() for name, value in ARG.findall(CONTAINERFILE) if name != "PYTHON_IMAGE"}


def image_env(args: dict[str, str]) -> dict[str, str]:
    """The ENV instruction that follows the config copy, with the build args substituted."""
    block = CONTAINERFILE.split("COPY chains.yml", 1)[1].split("USER", 1)[0]
    pairs = ENV_ITEM.findall(block)
    assert pairs, "the image sets no engine environment"
    return {name: args[arg] for name, arg in pairs}


def test_the_image_installs_the_extra_of_every_engine_it_names() -> None:
    args = build_args()
    extras = set(filter(None, args["EXTRAS"].split(",")))
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert extras <= declared.keys()
    for engine in image_env(args).values():
        needed = ENGINE_EXTRA[engine]
        assert needed is None or needed in extras, f"engine {engine} needs extra {needed!r}"


def test_the_shipped_config_runs_the_images_engines_in_the_image() -> None:
    config = build_blueprint(SHIPPED, env=image_env(build_args())).config
    assert (config.server.engine, config.kafka.producer.engine) == ("uvicorn", "librdkafka")
    assert config.kafka.consumer.engine == "librdkafka"


def test_the_images_consumer_engine_can_be_switched_back_to_aiokafka() -> None:
    env = image_env(build_args() | {"CONSUMER_ENGINE": "aiokafka"})
    assert build_blueprint(SHIPPED, env=env).config.kafka.consumer.engine == "aiokafka"


def test_without_the_images_environment_the_pure_python_engines_stay() -> None:
    config = build_blueprint(SHIPPED, env={}).config
    assert (config.server.engine, config.kafka.producer.engine) == ("hypercorn", "aiokafka")
    assert config.kafka.consumer.engine == "aiokafka"


SLIM_BUILDS = [
    line
    for text in (CONTAINERFILE, (ROOT / "docs/running.md").read_text(encoding="utf-8").replace("\\\n", ""))
    for line in text.splitlines()
    if "--build-arg EXTRAS=" in line
]


@pytest.mark.parametrize("line", SLIM_BUILDS)
def test_the_documented_slim_build_names_engines_its_extras_provide(line: str) -> None:
    overrides = dict(re.findall(r"--build-arg (\w+)=(\S*)", line))
    args = build_args() | overrides
    env = image_env(args)
    assert all(ENGINE_EXTRA[engine] is None for engine in env.values())
    config = build_blueprint(SHIPPED, env=env).config
    assert (config.server.engine, config.kafka.producer.engine, config.kafka.consumer.engine) == (
        "hypercorn", "aiokafka", "aiokafka",
    )  # fmt: skip
