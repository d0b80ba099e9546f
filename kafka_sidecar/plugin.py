"""Everything a handler or plugin may import from kafka-sidecar, in one namespace.

First-party handlers and plugins import only from here (and :mod:`kafka_sidecar`) plus their own
subpackage — a test walks their imports to keep it so — which makes this the contract a team's own
plugin is written against. Grouped by what they are for:

* hooks: :data:`hookimpl`, the view hooks receive (:class:`SidecarView`, :class:`RouteInfo`,
  :class:`ConsumerInfo`) and what registration hooks take (:class:`HandlerSpec`, :class:`ConfigSection`,
  :class:`ServiceSpec`, :class:`MetricsExporterSpec`, :class:`DeadLetterSinkSpec`);
* the chain: :class:`Exchange`, :class:`Reply`, :data:`Next`, stash keys such as :data:`PRODUCED`;
* errors: one tree rooted at :class:`SidecarError`, mapped to HTTP problems by the core;
* records, formats, dead letters, metrics, events, correlation ids, config doc helpers, admin routes;
* REST Proxy v2 media types, parsed once (:func:`v2_embedded_format`, :func:`v2_media_type`);
* Kafka's topic-name rule, once: :func:`checked_topic_name` and :data:`TOPIC_NAME_PATTERN` (for schemas);
* JSON in C: :func:`json_dumps` (msgspec), :data:`RawJson` (valid JSON text spliced as is),
  :func:`is_json_text` (checks JSON text without decoding it), :func:`json_texts` and
  :func:`base64_texts` (a whole column of keys or values at once, no Python frame per item);
* the cluster view (:func:`cluster_view`) and streamed requests (:data:`REQUEST_BODY_STREAM`,
  :class:`ResponseStream` under :data:`RESPONSE_STREAM`).
"""

from kafka_sidecar._chain import Chain, Handler, Lifecycle, LinkInfo, Next, SourceTerminal, Terminal
from kafka_sidecar._checks import CheckContext, RouteUse
from kafka_sidecar._config.convert import convert_nested
from kafka_sidecar._config.model import KafkaConfig, SidecarConfig, doc
from kafka_sidecar._correlation import CORRELATION, CORRELATION_HEADER, LOG_IDS, TRACEABILITY_HEADER, CorrelationIds
from kafka_sidecar._deadletter import (
    DEFAULT_SUFFIX,
    DeadLetter,
    DeadLetterReceipt,
    DeadLetterSink,
    DeadLetterSinkSpec,
    DeadLetterWriter,
    ReportingSink,
    dead_letter_record,
    dead_letter_topic,
)
from kafka_sidecar._errors import (
    ConfigError,
    ConfigProblem,
    Conflict,
    Forbidden,
    HandlerError,
    KafkaRejected,
    KafkaUnavailable,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    PermanentError,
    PluginError,
    RecordUndecodable,
    RequestError,
    RetriableError,
    SidecarError,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
    ValidationFailed,
)
from kafka_sidecar._events import AdminAction, BatchFetched, DeadLettered, EventBus
from kafka_sidecar._exchange import (
    BACKEND_HEADERS,
    DELIVERED,
    OUTGOING_HEADERS,
    PRODUCED,
    REQUEST_BODY_STREAM,
    RESPONSE_HEADERS,
    RESPONSE_STREAM,
    DeliveryStatus,
    Exchange,
    HttpRequest,
    Produced,
    RecordOutcome,
    Reply,
    ResponseStream,
    UniformOutcomes,
)
from kafka_sidecar._headers import parse_headers
from kafka_sidecar._hookspecs import hookimpl
from kafka_sidecar._http.admin import admin_page_route, admin_route, authorize_admin, json_object_body
from kafka_sidecar._http.media import V2_MEDIA_TYPE, v2_embedded_format, v2_media_type
from kafka_sidecar._http.problems import PROBLEM_MEDIA_TYPE
from kafka_sidecar._idempotency import IdempotencyCache, idempotency_key, request_fingerprint
from kafka_sidecar._json import RawJson, base64_texts, is_json_text, json_texts
from kafka_sidecar._json import dumps as json_dumps
from kafka_sidecar._kafka.client_settings import (
    java_client_properties,
    java_system_properties,
    librdkafka_consumer_settings,
    librdkafka_settings,
)
from kafka_sidecar._kafka.cluster import (
    ClusterInfo,
    ClusterView,
    ConfigEntry,
    GroupInfo,
    GroupMember,
    PartitionInfo,
    TopicInfo,
    cluster_view,
)
from kafka_sidecar._kafka.java_properties import properties_text
from kafka_sidecar._kafka.options import admin_kwargs, consumer_kwargs
from kafka_sidecar._kafka.producer import (
    ERROR_KAFKA_RETRIABLE,
    BulkOutcome,
    ProducerService,
    count_reports,
    raise_if_none_acknowledged,
)
from kafka_sidecar._kafka.producer import describe as describe_error
from kafka_sidecar._kafka.rdkafka_messages import RdKafkaErrorLog
from kafka_sidecar._kafka.rdkafka_messages import anchored_pattern as rdkafka_topic_pattern
from kafka_sidecar._kafka.rdkafka_messages import grouped_records as rdkafka_records_by_partition
from kafka_sidecar._kafka.rdkafka_messages import rd_partition as rdkafka_partition
from kafka_sidecar._kafka.rdkafka_messages import split_errors as rdkafka_split_errors
from kafka_sidecar._kafka.rdkafka_thread import RdKafkaConsumerThread
from kafka_sidecar._metrics.registry import (
    DEFAULT_BUCKETS,
    OVERFLOW,
    Counter,
    Family,
    Gauge,
    Histogram,
    HistogramSample,
    MetricsRegistry,
)
from kafka_sidecar._metrics.service import Metrics, MetricsExporter, MetricsExporterSpec, MetricsSettings
from kafka_sidecar._openapi import (
    HANDLER_CHECKED,
    DocumentBuilder,
    MountedRoute,
    build_document,
    document_title,
    find_operation,
    generic_operation,
    openapi_path,
)
from kafka_sidecar._records import (
    AddedHeaders,
    ConsumedRecord,
    DeliveryReport,
    Headers,
    OutgoingRecord,
    SharedPrefix,
    headers_to_text,
)
from kafka_sidecar._registry import ConfigSection, HandlerSpec, NoConfig
from kafka_sidecar._resources import Resources
from kafka_sidecar._serdes.base import RecordSerializer, Role, SchemaRef, Serde, SerdeRegistry, SerializeContext
from kafka_sidecar._services import ServiceSpec
from kafka_sidecar._stash import Stash, StashKey
from kafka_sidecar._tasks import cancel_and_wait
from kafka_sidecar._topic_name import TOPIC_NAME_PATTERN, checked_topic_name
from kafka_sidecar._view import ConsumerInfo, RouteInfo, SidecarView

__all__ = [
    "BACKEND_HEADERS",
    "CORRELATION",
    "CORRELATION_HEADER",
    "DEFAULT_BUCKETS",
    "DEFAULT_SUFFIX",
    "DELIVERED",
    "ERROR_KAFKA_RETRIABLE",
    "HANDLER_CHECKED",
    "LOG_IDS",
    "OUTGOING_HEADERS",
    "OVERFLOW",
    "PROBLEM_MEDIA_TYPE",
    "PRODUCED",
    "REQUEST_BODY_STREAM",
    "RESPONSE_HEADERS",
    "RESPONSE_STREAM",
    "TOPIC_NAME_PATTERN",
    "TRACEABILITY_HEADER",
    "V2_MEDIA_TYPE",
    "AddedHeaders",
    "AdminAction",
    "BatchFetched",
    "BulkOutcome",
    "Chain",
    "CheckContext",
    "ClusterInfo",
    "ClusterView",
    "ConfigEntry",
    "ConfigError",
    "ConfigProblem",
    "ConfigSection",
    "Conflict",
    "ConsumedRecord",
    "ConsumerInfo",
    "CorrelationIds",
    "Counter",
    "DeadLetter",
    "DeadLetterReceipt",
    "DeadLetterSink",
    "DeadLetterSinkSpec",
    "DeadLetterWriter",
    "DeadLettered",
    "DeliveryReport",
    "DeliveryStatus",
    "DocumentBuilder",
    "EventBus",
    "Exchange",
    "Family",
    "Forbidden",
    "Gauge",
    "GroupInfo",
    "GroupMember",
    "Handler",
    "HandlerError",
    "HandlerSpec",
    "Headers",
    "Histogram",
    "HistogramSample",
    "HttpRequest",
    "IdempotencyCache",
    "KafkaConfig",
    "KafkaRejected",
    "KafkaUnavailable",
    "Lifecycle",
    "LinkInfo",
    "MethodNotAllowed",
    "Metrics",
    "MetricsExporter",
    "MetricsExporterSpec",
    "MetricsRegistry",
    "MetricsSettings",
    "MountedRoute",
    "Next",
    "NoConfig",
    "NotAcceptable",
    "NotFound",
    "OutgoingRecord",
    "PartitionInfo",
    "PayloadTooLarge",
    "PermanentError",
    "PluginError",
    "Produced",
    "ProducerService",
    "RawJson",
    "RdKafkaConsumerThread",
    "RdKafkaErrorLog",
    "RecordOutcome",
    "RecordSerializer",
    "RecordUndecodable",
    "Reply",
    "ReportingSink",
    "RequestError",
    "Resources",
    "ResponseStream",
    "RetriableError",
    "Role",
    "RouteInfo",
    "RouteUse",
    "SchemaRef",
    "Serde",
    "SerdeRegistry",
    "SerializeContext",
    "ServiceSpec",
    "SharedPrefix",
    "SidecarConfig",
    "SidecarError",
    "SidecarView",
    "SourceTerminal",
    "Stash",
    "StashKey",
    "Terminal",
    "TooManyRequests",
    "TopicInfo",
    "Unauthorized",
    "UniformOutcomes",
    "UnsupportedMediaType",
    "UpstreamRejected",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "ValidationFailed",
    "admin_kwargs",
    "admin_page_route",
    "admin_route",
    "authorize_admin",
    "base64_texts",
    "build_document",
    "cancel_and_wait",
    "checked_topic_name",
    "cluster_view",
    "consumer_kwargs",
    "convert_nested",
    "count_reports",
    "dead_letter_record",
    "dead_letter_topic",
    "describe_error",
    "doc",
    "document_title",
    "find_operation",
    "generic_operation",
    "headers_to_text",
    "hookimpl",
    "idempotency_key",
    "is_json_text",
    "java_client_properties",
    "java_system_properties",
    "json_dumps",
    "json_object_body",
    "json_texts",
    "librdkafka_consumer_settings",
    "librdkafka_settings",
    "openapi_path",
    "parse_headers",
    "properties_text",
    "raise_if_none_acknowledged",
    "rdkafka_partition",
    "rdkafka_records_by_partition",
    "rdkafka_split_errors",
    "rdkafka_topic_pattern",
    "request_fingerprint",
    "v2_embedded_format",
    "v2_media_type",
]
