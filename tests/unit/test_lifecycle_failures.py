"""Start-up and shutdown are failure-proof: hooks isolated, stop() always completes, a failed start rolls back."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pytest

from kafka_sidecar import HandlerSpec, hookimpl
from kafka_sidecar._errors import PluginError, StartFailed
from kafka_sidecar._plugins import make_plugin_manager
from kafka_sidecar._sidecar import Sidecar

ENV = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
CONFIG = """\
kafka: {bootstrap_servers: "${KAFKA_BOOTSTRAP_SERVERS}"}
handlers:
  first: {use: step, config: {label: first}}
  second: {use: step, config: {label: second}}
  third: {use: step, config: {label: third}}
paths:
  - {path: "/p/{topic}", method: POST, exec: [first, second, third, producer]}
"""


@dataclass(frozen=True)
class StepConfig:
    label: str = ""


class Recorder:
    """A plugin whose handlers and hooks write what happened into one list."""

    def __init__(self, *, fail_start: str = "", fail_stop: str = "") -> None:
        self.events: list[str] = []
        self.fail_start = fail_start
        self.fail_stop = fail_stop
        recorder = self

        class Step:
            def __init__(self, config: StepConfig, resources: object) -> None:
                self.label = config.label

            async def __call__(self, exchange: object, call_next: object) -> object:
                raise AssertionError("not called in these tests")

            async def start(self) -> None:
                if recorder.fail_start == self.label:
                    raise RuntimeError(f"{self.label} cannot start")
                recorder.events.append(f"start {self.label}")

            async def stop(self) -> None:
                recorder.events.append(f"stop {self.label}")
                if recorder.fail_stop == self.label:
                    raise RuntimeError(f"{self.label} cannot stop")

        self.step = Step

    @hookimpl
    def kafka_sidecar_register_handlers(self, register: object) -> None:
        register(HandlerSpec(name="step", factory=self.step, config_type=StepConfig))  # type: ignore[operator]


class SyncHook:
    def __init__(self, name: str, events: list[str], *, fail: str = "") -> None:
        self.name, self.events, self.fail = name, events, fail

    @hookimpl
    def kafka_sidecar_startup(self) -> None:
        self.events.append(f"startup {self.name}")
        if self.fail == "startup":
            raise RuntimeError(f"{self.name} startup broke")

    @hookimpl
    def kafka_sidecar_shutdown(self) -> None:
        self.events.append(f"shutdown {self.name}")
        if self.fail == "shutdown":
            raise RuntimeError(f"{self.name} shutdown broke")


class AsyncHook(SyncHook):
    @hookimpl
    async def kafka_sidecar_startup(self) -> None:  # type: ignore[override]
        super().kafka_sidecar_startup()

    @hookimpl
    async def kafka_sidecar_shutdown(self) -> None:  # type: ignore[override]
        super().kafka_sidecar_shutdown()


def build(tmp_path: Path, recorder: Recorder, *hooks: SyncHook) -> Sidecar:
    path = tmp_path / "chains.yml"
    path.write_text(CONFIG, encoding="utf-8")
    plugins = [(recorder, "recorder"), *((hook, hook.name) for hook in hooks)]
    sidecar = Sidecar.from_file(path, env=ENV, extra_plugins=plugins)
    cleanups: list[str] = recorder.events

    async def cleanup() -> None:
        cleanups.append("cleanup")

    sidecar.resources.on_close(cleanup)
    return sidecar


@pytest.mark.asyncio
@pytest.mark.parametrize("hook_type", [SyncHook, AsyncHook])
async def test_a_failing_shutdown_hook_neither_stops_the_others_nor_the_stop(
    tmp_path: Path, hook_type: type[SyncHook], caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    events = recorder.events
    sidecar = build(tmp_path, recorder, hook_type("alpha", events), hook_type("broken", events, fail="shutdown"))
    await sidecar.start()
    events.clear()
    await sidecar.stop()
    assert sorted(e for e in events if e.startswith("shutdown")) == ["shutdown alpha", "shutdown broken"]
    assert [e for e in events if not e.startswith("shutdown")] == ["stop third", "stop second", "stop first", "cleanup"]
    assert sidecar.resources.producer._stopping.is_set()  # the producer was flushed and closed
    assert any("'broken'" in r.getMessage() and "kafka_sidecar_shutdown" in r.getMessage() for r in caplog.records)


@pytest.mark.asyncio
async def test_a_failing_handler_stop_does_not_skip_the_rest(tmp_path: Path) -> None:
    recorder = Recorder(fail_stop="second")
    sidecar = build(tmp_path, recorder, SyncHook("alpha", recorder.events))
    await sidecar.start()
    recorder.events.clear()
    await sidecar.stop()
    assert recorder.events == ["shutdown alpha", "stop third", "stop second", "stop first", "cleanup"]


@pytest.mark.asyncio
@pytest.mark.parametrize("hook_type", [SyncHook, AsyncHook])
async def test_a_failing_startup_hook_fails_start_after_the_others_ran_and_rolls_back(
    tmp_path: Path, hook_type: type[SyncHook], caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    events = recorder.events
    hooks = (hook_type("alpha", events), hook_type("broken", events, fail="startup"), hook_type("omega", events))
    sidecar = build(tmp_path, recorder, *hooks)
    with pytest.raises(StartFailed, match="startup hook of plugin\\(s\\) broken failed"):
        await sidecar.start()
    assert events[:3] == ["start first", "start second", "start third"]
    assert sorted(e for e in events if e.startswith("startup")) == ["startup alpha", "startup broken", "startup omega"]
    rolled_back = [e for e in events[3:] if not e.startswith("startup")]
    shutdowns = sorted(e for e in rolled_back if e.startswith("shutdown"))
    assert shutdowns == ["shutdown alpha", "shutdown broken", "shutdown omega"]
    assert [e for e in rolled_back if not e.startswith("shutdown")] == [
        "stop third",
        "stop second",
        "stop first",
        "cleanup",
    ]
    assert any("'broken'" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


@pytest.mark.asyncio
async def test_a_handler_that_fails_to_start_rolls_back_what_started_in_reverse(tmp_path: Path) -> None:
    recorder = Recorder(fail_start="third")
    sidecar = build(tmp_path, recorder, SyncHook("alpha", recorder.events))
    with pytest.raises(StartFailed, match="third cannot start") as caught:
        await sidecar.start()
    assert isinstance(caught.value.__cause__, RuntimeError)
    # startup hooks never ran, so shutdown hooks are not called either
    assert recorder.events == ["start first", "start second", "stop second", "stop first", "cleanup"]
    assert sidecar.resources.producer._stopping.is_set()


class Wrapping:
    @hookimpl(wrapper=True)
    def kafka_sidecar_startup(self) -> object:
        return (yield)


class OldWrapping:
    @hookimpl(hookwrapper=True)
    def kafka_sidecar_register_handlers(self) -> object:
        yield


@pytest.mark.parametrize(
    ("plugin", "hook"), [(Wrapping(), "kafka_sidecar_startup"), (OldWrapping(), "kafka_sidecar_register_handlers")]
)
def test_wrapper_implementations_are_rejected_naming_plugin_and_hook(plugin: object, hook: str) -> None:
    with pytest.raises(PluginError, match=rf"plugin 'wrapping-plugin': {hook} is called one implementation at a time"):
        make_plugin_manager(entry_points=False, extra=[(plugin, "wrapping-plugin")])
