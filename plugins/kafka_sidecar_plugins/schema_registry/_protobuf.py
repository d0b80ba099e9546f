"""Protobuf from ``.proto`` text: compiled in-process with ``grpc_tools.protoc``, JSON <-> message.

The produced message is the first message of the schema file (message index ``[0]``), as
Confluent's serializer does for a schema whose first message is the record. Decoding follows the
message-index path on the wire, so any (nested) message of the file decodes.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import importlib.resources
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import Descriptor, FileDescriptor
from google.protobuf.message import DecodeError
from grpc_tools import protoc  # type: ignore[import-untyped]

from kafka_sidecar.plugin import ValidationFailed
from kafka_sidecar_plugins.schema_registry._client import RegisteredSchema
from kafka_sidecar_plugins.schema_registry._config import SchemaRegistryConfig
from kafka_sidecar_plugins.schema_registry._wire import decode_message_indexes, encode_message_indexes

MAIN_FILE = "kafka_sidecar_schema.proto"
_AT_PATH = re.compile(r' at "?([\w.\[\]]+?)"?\.?(?:\n|$)')
_FIELD_CHAIN = re.compile(r"Failed to parse (\w+) field")


@dataclass(frozen=True, slots=True)
class ParsedProto:
    file: FileDescriptor
    message: Descriptor
    message_class: Any
    indexes: tuple[int, ...]


def _include_dir() -> str:
    return str(importlib.resources.files("grpc_tools") / "_proto")


def _safe_relative(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not name:
        raise ValueError(f"reference name {name!r} is not a relative .proto path")
    return path


def compile_proto(text: str, references: Mapping[str, RegisteredSchema]) -> descriptor_pb2.FileDescriptorSet:
    """``.proto`` text (and the files it imports, by name) to a descriptor set; ValueError if invalid."""
    with tempfile.TemporaryDirectory(prefix="kafka-sidecar-proto-") as tmp:
        root = Path(tmp) / "src"
        for name, ref in references.items():
            target = root / _safe_relative(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(ref.schema, encoding="utf-8")
        root.mkdir(exist_ok=True)
        (root / MAIN_FILE).write_text(text, encoding="utf-8")
        out = Path(tmp) / "set.pb"
        args = [f"-I{root}", f"-I{_include_dir()}", f"--descriptor_set_out={out}", "--include_imports", MAIN_FILE]
        if protoc.main(["protoc", *args]) != 0:
            raise ValueError(_protoc_error(args, root))
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _protoc_error(args: list[str], root: Path) -> str:
    """protoc prints to the process's stderr; run it once more in a child to get the message."""
    done = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", *args], capture_output=True, text=True, cwd=root, check=False
    )
    text = done.stderr.strip().replace(f"{root}/", "").replace(str(root), "")
    return text.replace(MAIN_FILE, "<schema>") or "protoc rejected the schema"


def _binary_descriptor(text: str) -> descriptor_pb2.FileDescriptorProto | None:
    """Confluent's Python serializer registers a base64 ``FileDescriptorProto`` instead of ``.proto`` text."""
    stripped = text.strip()
    if not stripped or any(c in stripped for c in " ;{\n"):
        return None
    try:
        proto = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(stripped, validate=True))
    except (binascii.Error, ValueError, DecodeError):
        return None
    return proto if proto.name else None


def _descriptor_files(
    main: descriptor_pb2.FileDescriptorProto, references: Mapping[str, RegisteredSchema]
) -> list[descriptor_pb2.FileDescriptorProto]:
    """``main`` and its imports: references (binary or text) and well-known types, dependencies first."""
    by_name: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for name, ref in references.items():
        binary = _binary_descriptor(ref.schema)
        if binary is not None:
            by_name[binary.name] = binary
        else:
            compiled = compile_proto(ref.schema, {k: v for k, v in references.items() if k != name})
            for proto in compiled.file:
                by_name.setdefault(name if proto.name == MAIN_FILE else proto.name, proto)
                if proto.name == MAIN_FILE:
                    proto.name = name
    ordered: list[descriptor_pb2.FileDescriptorProto] = []

    def add(proto: descriptor_pb2.FileDescriptorProto, depth: int) -> None:
        if depth > 32 or any(p.name == proto.name for p in ordered):
            return
        for dependency in proto.dependency:
            found = by_name.get(dependency)
            if found is None:
                found = descriptor_pb2.FileDescriptorProto()
                try:
                    if dependency.startswith("google/protobuf/"):  # registers the well-known type's file
                        importlib.import_module("google.protobuf." + PurePosixPath(dependency).stem + "_pb2")
                    descriptor_pool.Default().FindFileByName(dependency).CopyToProto(found)
                except (KeyError, ImportError) as exc:
                    raise ValueError(f"import {dependency!r} is neither a reference nor a well-known type") from exc
            add(found, depth + 1)
        ordered.append(proto)

    add(main, 0)
    return ordered


def _value_path(message: str) -> str:
    found = _AT_PATH.search(message)
    if found:
        parts = found.group(1).split(".", 1)
        return f".{parts[1]}" if len(parts) == 2 else ""
    return "".join(f".{name}" for name in _FIELD_CHAIN.findall(message))


@dataclass(frozen=True, slots=True)
class ProtobufFormat:
    name: str = "protobuf"
    schema_type: str = "PROTOBUF"

    def parse(
        self, schema: RegisteredSchema, references: Mapping[str, RegisteredSchema], config: SchemaRegistryConfig
    ) -> ParsedProto:
        binary = _binary_descriptor(schema.schema)
        if binary is None:
            files = list(compile_proto(schema.schema, references).file)
            main = next(p for p in files if p.name == MAIN_FILE)
        else:
            files = _descriptor_files(binary, references)
            main = binary
        pool = descriptor_pool.DescriptorPool()
        for proto in files:
            pool.Add(proto)
        if not main.message_type:
            raise ValueError("the schema defines no message")
        file = pool.FindFileByName(main.name)
        message = file.message_types_by_name[main.message_type[0].name]
        return ParsedProto(file, message, message_factory.GetMessageClass(message), (0,))

    def record_name(self, parsed: object) -> str | None:
        assert isinstance(parsed, ParsedProto)
        return str(parsed.message.full_name)

    def encode(self, parsed: object, data: object, field: str) -> bytes:
        assert isinstance(parsed, ParsedProto)
        if not isinstance(data, dict):
            raise ValidationFailed(
                f"must be a JSON object for protobuf message {parsed.message.full_name}, got {type(data).__name__}",
                field=field,
            )
        try:
            message = json_format.ParseDict(data, parsed.message_class())
        except json_format.ParseError as exc:
            text = str(exc)
            raise ValidationFailed(
                f"does not match protobuf message {parsed.message.full_name}: {text.splitlines()[0]}",
                field=f"{field}{_value_path(text)}",
            ) from exc
        body: bytes = message.SerializeToString()
        return encode_message_indexes(parsed.indexes) + body

    def decode(self, parsed: object, body: memoryview) -> object:
        assert isinstance(parsed, ParsedProto)
        indexes, rest = decode_message_indexes(body)
        descriptor = _by_indexes(parsed.file, indexes)
        message = message_factory.GetMessageClass(descriptor).FromString(bytes(rest))
        return json_format.MessageToDict(
            message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )


def _by_indexes(file: FileDescriptor, indexes: tuple[int, ...]) -> Descriptor:
    top = list(file.message_types_by_name.values())
    if not 0 <= indexes[0] < len(top):
        raise ValueError(f"message index {indexes[0]} is not in the schema ({len(top)} messages)")
    current: Descriptor = top[indexes[0]]
    for index in indexes[1:]:
        nested = list(current.nested_types)
        if not 0 <= index < len(nested):
            raise ValueError(f"nested message index {index} is not in {current.full_name}")
        current = nested[index]
    return current
