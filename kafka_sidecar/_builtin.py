"""The core's own plugin: the ``metrics`` section, metrics exporters' lifecycle and routes, the
``kafka`` dead-letter sink and the ``cluster-view`` service (admin and offsets clients, shared).
Registered by :func:`~kafka_sidecar._plugins.make_plugin_manager` through the same hooks as any
plugin, so the default sink is "registered like any other".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from kafka_sidecar._deadletter import DeadLetterSinkSpec, KafkaTopicSink
from kafka_sidecar._hookspecs import hookimpl
from kafka_sidecar._kafka.cluster import CLUSTER_VIEW, ClusterView, build_cluster_view
from kafka_sidecar._metrics.service import MetricsSettings
from kafka_sidecar._registry import ConfigSection
from kafka_sidecar._services import ServiceSpec
from kafka_sidecar._view import SidecarView

if TYPE_CHECKING:
    from kafka_sidecar._resources import Resources

PLUGIN_NAME = "kafka_sidecar.core"


@hookimpl
def kafka_sidecar_register_config_sections(register: Callable[[ConfigSection], None]) -> None:
    register(ConfigSection("metrics", MetricsSettings, "Metrics export: which exporters, how many series"))


def _kafka_sink(resources: Resources) -> KafkaTopicSink:
    return KafkaTopicSink(resources.dead_letters)


@hookimpl
def kafka_sidecar_register_services(register: Callable[[ServiceSpec[ClusterView]], None]) -> None:
    register(ServiceSpec(CLUSTER_VIEW, build_cluster_view, "Kafka admin and offsets clients, connected on first use"))


@hookimpl
def kafka_sidecar_register_dead_letter_sinks(register: Callable[[DeadLetterSinkSpec], None]) -> None:
    register(DeadLetterSinkSpec("kafka", _kafka_sink, "The source topic plus the consumer's dead_letter_suffix"))


@hookimpl
def kafka_sidecar_routes(sidecar: SidecarView) -> Sequence[BaseRoute] | None:
    return sidecar.resources.metrics.routes()


@hookimpl
async def kafka_sidecar_startup(sidecar: SidecarView) -> None:
    metrics = sidecar.resources.metrics
    sidecar.resources.on_close(metrics.stop)  # runs after handlers stopped: a last push sees every count
    await metrics.start()
