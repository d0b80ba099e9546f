"""Schema-registry formats: ``avro``, ``jsonschema`` and ``protobuf`` in the Confluent wire format.

The formats are registered before ``chains.yml`` is read, so each sidecar's formats share a
:class:`ServiceBinding`; the startup hook builds the registry client from the ``schema_registry``
section and binds it (closing it when the sidecar stops). Until then, a format waits for it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from kafka_sidecar.plugin import ConfigSection, SidecarView, hookimpl
from kafka_sidecar_plugins.schema_registry._avro import AvroFormat
from kafka_sidecar_plugins.schema_registry._client import SchemaRegistryClient
from kafka_sidecar_plugins.schema_registry._config import SchemaRegistryConfig
from kafka_sidecar_plugins.schema_registry._format import DeferredFormat, SchemaFormat
from kafka_sidecar_plugins.schema_registry._jsonschema import JsonSchemaFormat
from kafka_sidecar_plugins.schema_registry._serde import RegistrySerde
from kafka_sidecar_plugins.schema_registry._service import SchemaService, ServiceBinding

PROTOBUF_LIBRARIES = ("google.protobuf", "grpc_tools")
"""What the ``[protobuf]`` extra installs (protobuf, grpcio-tools)."""


def make_serdes(binding: ServiceBinding) -> tuple[RegistrySerde, ...]:
    """The registry formats; ``protobuf`` only with the ``[protobuf]`` extra (protobuf + grpcio-tools), whose
    libraries are imported when a protobuf schema is first used (without the extra, a config naming the
    format is told which extra to install)."""
    serdes = [RegistrySerde(AvroFormat(), binding), RegistrySerde(JsonSchemaFormat(), binding)]
    if all(_installed(name) for name in PROTOBUF_LIBRARIES):
        serdes.append(RegistrySerde(DeferredFormat("protobuf", "PROTOBUF", _protobuf_format), binding))
    return tuple(serdes)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


def _protobuf_format() -> SchemaFormat:
    from kafka_sidecar_plugins.schema_registry._protobuf import ProtobufFormat

    return ProtobufFormat()


@hookimpl
def kafka_sidecar_register_config_sections(register: Callable[[ConfigSection], None]) -> None:
    register(
        ConfigSection(
            "schema_registry",
            SchemaRegistryConfig,
            "Confluent-compatible schema registry for the avro, jsonschema and protobuf formats",
        )
    )


@hookimpl
def kafka_sidecar_register_serdes(register: Callable[[object], None]) -> None:
    for serde in make_serdes(ServiceBinding()):
        register(serde)


def bind_serdes(sidecar: SidecarView) -> SchemaService | None:
    """Create the registry service for ``sidecar`` and hand it to this plugin's formats."""
    config = sidecar.resources.section(SchemaRegistryConfig)
    service: SchemaService | None = None
    problem = None
    if config.urls:
        exported = sidecar.resources.metrics
        metrics = exported.registry if exported.enabled else None  # cache/error counters when metrics are on
        service = SchemaService(config, SchemaRegistryClient(config), metrics)
        sidecar.resources.on_close(service.aclose)
    else:
        problem = "the avro, jsonschema and protobuf formats need a schema registry: set schema_registry.urls"
    for serde in sidecar.resources.serdes:
        if isinstance(serde, RegistrySerde):
            serde.binding.bind(service, problem=problem, timeout=config.bind_timeout_seconds)
    return service


@hookimpl
def kafka_sidecar_startup(sidecar: SidecarView) -> None:
    bind_serdes(sidecar)
