"""How a processor's child is started: the argv, environment and files of each runtime."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from kafka_sidecar.plugin import KafkaConfig, java_system_properties, librdkafka_settings, properties_text
from kafka_sidecar_handlers.streams import runner
from kafka_sidecar_handlers.streams._config import StreamProcessorConfig
from kafka_sidecar_handlers.streams._settings import java_properties
from kafka_sidecar_handlers.streams._supervisor import Launch

RUNNER_PATH = Path(runner.__file__).resolve()
PYTHON_READY = "The application started and is now processing"
PROPERTIES_PLACEHOLDER = "{properties}"


def state_dir_of(name: str, config: StreamProcessorConfig) -> Path:
    return Path(config.state_dir or Path(".kafka-sidecar-streams") / name).resolve()


def ready_pattern_of(config: StreamProcessorConfig) -> str | None:
    if config.ready_pattern is not None or config.runtime == "command":
        return config.ready_pattern
    return PYTHON_READY


def _base_env(config: StreamProcessorConfig, state_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(config.env)
    env["KAFKA_SIDECAR_APPLICATION_ID"] = config.application_id
    env["KAFKA_SIDECAR_STATE_DIR"] = str(state_dir)
    return env


def python_launch(name: str, config: StreamProcessorConfig, kafka: KafkaConfig) -> Launch:
    """``<python> runner.py`` with the spec (settings and secrets) in the environment."""
    state_dir = state_dir_of(name, config)
    spec = {
        "name": name,
        "app": config.app,
        "python_path": [str(Path(p).resolve()) for p in config.python_path],
        "consumer_group": config.application_id,
        "processing_guarantee": config.processing_guarantee,
        "auto_offset_reset": config.auto_offset_reset,
        "state_dir": str(state_dir),
        "commit_interval_ms": config.commit_interval_ms,
        "kafka": librdkafka_settings(kafka, config.application_id),
        "consumer_properties": dict(config.properties),
    }
    env = _base_env(config, state_dir)
    env[runner.SPEC_ENV] = json.dumps(spec)
    env["PYTHONUNBUFFERED"] = "1"
    return Launch((config.python or sys.executable, str(RUNNER_PATH)), env, config.working_dir)


def command_launch(name: str, config: StreamProcessorConfig, kafka: KafkaConfig) -> Launch:
    """The command, with the Kafka settings in a 0600 properties file (removed after exit) and the env."""
    state_dir = state_dir_of(name, config)
    folder = Path(tempfile.mkdtemp(prefix=f"kafka-sidecar-{name}-"))  # 0700
    path = folder / "kafka.properties"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(properties_text(java_properties(kafka, config, state_dir)))
    env = _base_env(config, state_dir)
    env["KAFKA_SIDECAR_PROPERTIES"] = str(path)
    env["KAFKA_BOOTSTRAP_SERVERS"] = kafka.bootstrap_servers
    _add_java_options(env, java_system_properties(kafka))
    argv = tuple(arg.replace(PROPERTIES_PLACEHOLDER, str(path)) for arg in config.command)

    def cleanup() -> None:
        shutil.rmtree(folder, ignore_errors=True)

    return Launch(argv, env, config.working_dir, cleanup)


def _add_java_options(env: dict[str, str], properties: dict[str, str]) -> None:
    """System properties for a JVM child, through ``JAVA_TOOL_OPTIONS`` (every JVM reads it at start, whatever
    the command; other programs ignore it). A property the environment already sets there is left alone."""
    given = env.get("JAVA_TOOL_OPTIONS", "")
    added = [f"-D{name}={value}" for name, value in properties.items() if f"-D{name}=" not in given]
    if added:
        env["JAVA_TOOL_OPTIONS"] = " ".join([given, *added]).strip()
