"""Stream processors (``use: stream-processor``): a real stream engine as a supervised child process.

Two runtimes: ``python`` runs the user's quixstreams application through the shipped runner
(:mod:`kafka_sidecar_handlers.streams.runner`), configured from the sidecar's ``kafka`` section;
``command`` runs anything (a Kafka Streams jar, say) with the Kafka settings in a properties file. The
processor writes output topics; a reactive consumer with ``read_committed`` pushes them to the backend.
Contract and guarantees: ``docs/stream-processors.md``.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.routing import BaseRoute

from kafka_sidecar.plugin import HandlerSpec, SidecarView, hookimpl
from kafka_sidecar_handlers.streams._admin import ProcessorAdmin
from kafka_sidecar_handlers.streams._check import check_outputs
from kafka_sidecar_handlers.streams._config import RestartPolicy, StreamProcessorConfig
from kafka_sidecar_handlers.streams._processor import StreamProcessor

__all__ = [
    "RestartPolicy",
    "StreamProcessor",
    "StreamProcessorConfig",
    "kafka_sidecar_register_handlers",
    "kafka_sidecar_routes",
]


@hookimpl
def kafka_sidecar_register_handlers(register: Callable[[HandlerSpec[StreamProcessorConfig]], None]) -> None:
    register(
        HandlerSpec(
            name="stream-processor",
            factory=StreamProcessor,
            config_type=StreamProcessorConfig,
            kind="source",
            description="Run a stream processor (quixstreams app or any command) as a supervised child process.",
            check=check_outputs,
        )
    )


@hookimpl
def kafka_sidecar_routes(sidecar: SidecarView) -> list[BaseRoute] | None:
    processors = {c.name: c.source for c in sidecar.consumers if isinstance(c.source, StreamProcessor)}
    return ProcessorAdmin(processors).routes()
