"""kafka-sidecar: Apache Kafka over plain HTTP on localhost, with a YAML handler chain.

The public API for embedding the chain in another Python service and for writing plugins. Plugin
authors find everything they may use in :mod:`kafka_sidecar.plugin` (a superset of the plugin-facing
names here). Everything not listed in an ``__all__`` is internal and may change.
"""

from kafka_sidecar._blueprint import Blueprint, build_blueprint
from kafka_sidecar._chain import (
    Chain,
    Handler,
    Lifecycle,
    LinkInfo,
    Next,
    SourceTerminal,
    Terminal,
    compile_chain,
)
from kafka_sidecar._checks import CheckContext, RouteUse
from kafka_sidecar._deadletter import DeadLetter, DeadLetterReceipt, DeadLetterSink, DeadLetterSinkSpec
from kafka_sidecar._errors import (
    ConfigError,
    Conflict,
    HandlerError,
    KafkaOutcomeUnknown,
    KafkaUnavailable,
    NotFound,
    PermanentError,
    PluginError,
    RecordUndecodable,
    RequestError,
    RetriableError,
    SidecarError,
    StartFailed,
    ValidationFailed,
)
from kafka_sidecar._exchange import (
    OUTGOING_HEADERS,
    PRODUCED,
    RESPONSE_HEADERS,
    Exchange,
    HttpRequest,
    Produced,
    Reply,
)
from kafka_sidecar._hookspecs import hookimpl
from kafka_sidecar._http.app import create_app
from kafka_sidecar._metrics.registry import MetricsRegistry
from kafka_sidecar._metrics.service import MetricsExporter, MetricsExporterSpec
from kafka_sidecar._records import ConsumedRecord, DeliveryReport, OutgoingRecord
from kafka_sidecar._registry import ConfigSection, HandlerSpec, NoConfig
from kafka_sidecar._resources import Resources
from kafka_sidecar._serdes.base import RecordSerializer, SchemaRef, Serde, SerializeContext
from kafka_sidecar._services import ServiceSpec
from kafka_sidecar._sidecar import Sidecar
from kafka_sidecar._stash import Stash, StashKey
from kafka_sidecar._view import ConsumerInfo, RouteInfo, SidecarView

__all__ = [
    "OUTGOING_HEADERS",
    "PRODUCED",
    "RESPONSE_HEADERS",
    "Blueprint",
    "Chain",
    "CheckContext",
    "ConfigError",
    "ConfigSection",
    "Conflict",
    "ConsumedRecord",
    "ConsumerInfo",
    "DeadLetter",
    "DeadLetterReceipt",
    "DeadLetterSink",
    "DeadLetterSinkSpec",
    "DeliveryReport",
    "Exchange",
    "Handler",
    "HandlerError",
    "HandlerSpec",
    "HttpRequest",
    "KafkaOutcomeUnknown",
    "KafkaUnavailable",
    "Lifecycle",
    "LinkInfo",
    "MetricsExporter",
    "MetricsExporterSpec",
    "MetricsRegistry",
    "Next",
    "NoConfig",
    "NotFound",
    "OutgoingRecord",
    "PermanentError",
    "PluginError",
    "Produced",
    "RecordSerializer",
    "RecordUndecodable",
    "Reply",
    "RequestError",
    "Resources",
    "RetriableError",
    "RouteInfo",
    "RouteUse",
    "SchemaRef",
    "Serde",
    "SerializeContext",
    "ServiceSpec",
    "Sidecar",
    "SidecarError",
    "SidecarView",
    "SourceTerminal",
    "StartFailed",
    "Stash",
    "StashKey",
    "Terminal",
    "ValidationFailed",
    "build_blueprint",
    "compile_chain",
    "create_app",
    "hookimpl",
]
