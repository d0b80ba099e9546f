"""Serve a sidecar config with another ASGI server, for ``bench/suite.py --engines``: the same app
(:func:`kafka_sidecar.create_app`), the same process settings as ``kafka-sidecar run``.

    .venv/bin/python bench/serve_engine.py uvicorn chains.yml     # port from $SIDECAR_PORT

Bench-only: the sidecar itself serves with Hypercorn (``kafka-sidecar run``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from kafka_sidecar import Sidecar, _runtime, create_app
from kafka_sidecar._runtime import loop_factory, tune_gc


def _tune_malloc() -> None:
    """As ``kafka-sidecar run`` does; a checkout older than ``tune_malloc`` (``suite.py --sidecar-src``) has none."""
    tune = getattr(_runtime, "tune_malloc", None)
    if tune is not None:
        tune()


def main(engine: str, config: Path) -> None:
    port = int(os.environ["SIDECAR_PORT"])
    sidecar = Sidecar.from_file(config)
    app = create_app(sidecar)
    tune_gc()
    _tune_malloc()
    if engine == "uvicorn":
        import uvicorn

        server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=port, http="httptools", lifespan="on", log_level="warning", access_log=False
            )
        )
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(server.serve())
        return
    if engine == "granian":
        from granian.constants import Interfaces, Loops
        from granian.server import Server as Granian

        target = f"{Path(__file__).stem}:app_from_env"  # a factory, imported by the worker from bench/
        os.environ["BENCH_SIDECAR_CONFIG"] = str(config)
        granian = Granian(
            target, address="127.0.0.1", port=port, interface=Interfaces.ASGI, workers=1, loop=Loops.uvloop,
            log_enabled=False, factory=True, working_dir=Path(__file__).parent,
        )  # fmt: skip
        granian.serve()
        return
    raise SystemExit(f"unknown engine {engine!r} (uvicorn, granian)")


def app_from_env() -> object:
    """Granian imports its app by name in its worker process."""
    tune_gc()
    _tune_malloc()
    return create_app(Sidecar.from_file(Path(os.environ["BENCH_SIDECAR_CONFIG"])))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
