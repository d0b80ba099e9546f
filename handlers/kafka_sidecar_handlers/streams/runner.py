"""Runs a quixstreams application as a stream processor's child process (``runtime: python``).

Started by the sidecar as ``<python> <this file>``, with everything it needs in the environment variable
``KAFKA_SIDECAR_STREAMS_SPEC`` (JSON; it holds secrets, so it never appears on a command line and is
removed from the environment before the user's code runs). Only the standard library and quixstreams are
imported, so any interpreter with quixstreams installed can run it, including a venv of its own whose
pins differ from the sidecar's.

The runner builds the ``Application`` from the sidecar's ``kafka`` section and the processor's config
(consumer group, processing guarantee, state dir, commit interval), hands it to the user's function,
and calls ``run()`` on the main thread so quixstreams' own SIGTERM handler performs the graceful stop.
The user's function (``module:function`` or ``path/to/file.py:function``) takes the Application and
defines its dataframes on it; it may return a ``StreamingDataFrame``, the Application or None.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

SPEC_ENV = "KAFKA_SIDECAR_STREAMS_SPEC"
STATUS_KEY = "kafka_sidecar_runner"


def emit(status: str, **fields: object) -> None:
    """One status line the supervisor reads from stdout."""
    print(json.dumps({STATUS_KEY: status, **fields}), flush=True)


def load_function(target: str) -> Callable[..., Any]:
    """``module:function`` or ``path/to/file.py:function``."""
    where, sep, name = target.rpartition(":")
    if not sep or not where or not name:
        raise ValueError(f"app must be 'module:function' or 'file.py:function', not {target!r}")
    if where.endswith(".py"):
        path = Path(where)
        spec = importlib.util.spec_from_file_location(f"kafka_sidecar_streams_app_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    function: Callable[..., Any] | None = getattr(module, name, None)
    if not callable(function):
        raise AttributeError(f"{where} has no function {name!r}")
    return function


def build_application(spec: dict[str, Any]) -> Any:
    try:
        from quixstreams import Application
        from quixstreams.kafka.configuration import ConnectionConfig
    except ImportError as exc:
        raise SystemExit(
            f"quixstreams is not installed for {sys.executable} ({exc}); install kafka-sidecar[streams] there,"
            " or point the processor's 'python:' at a venv that has it"
        ) from exc

    return Application(
        broker_address=ConnectionConfig.from_librdkafka_dict(spec["kafka"]),
        consumer_group=spec["consumer_group"],
        processing_guarantee=spec["processing_guarantee"],
        auto_offset_reset=spec["auto_offset_reset"],
        state_dir=spec["state_dir"],
        commit_interval=spec["commit_interval_ms"] / 1000,
        consumer_extra_config=spec.get("consumer_properties") or None,
        loglevel=spec.get("loglevel", "INFO"),
    )


def main() -> int:
    raw = os.environ.pop(SPEC_ENV, None)
    if raw is None:
        print(f"{SPEC_ENV} is not set; this runner is started by kafka-sidecar", file=sys.stderr)
        return 2
    spec = json.loads(raw)
    for folder in reversed(spec.get("python_path", [])):
        sys.path.insert(0, folder)
    emit("starting", app=spec["app"], pid=os.getpid())
    app = build_application(spec)
    build = load_function(spec["app"])
    result = build(app)
    if result is not None and result is not app and not hasattr(result, "update"):
        raise TypeError(f"{spec['app']} returned {type(result).__name__}; return a StreamingDataFrame, the app or None")
    emit("built")
    app.run()
    emit("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
