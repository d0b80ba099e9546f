"""Helpers for the schema-registry integration tests (real broker, real registry)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from grpc_tools import protoc  # type: ignore[import-untyped]

from kafka_sidecar.testing import RunningSidecar, running_sidecar
from kafka_sidecar_testing.modules import load_module


def sidecar_yaml(registry_options: str = "") -> str:
    return f"""\
kafka:
  bootstrap_servers: ${{KAFKA_BOOTSTRAP_SERVERS}}
schema_registry:
  urls: ["${{SR_URL}}"]
{registry_options}handlers:
  producer: {{use: producer}}
paths:
  - {{path: "/producers/{{topic}}", method: POST, exec: [producer]}}
  - {{path: "/topics/{{topic}}", method: POST, exec: [producer]}}
"""


@contextlib.asynccontextmanager
async def schema_sidecar(
    bootstrap: str, registry_url: str, directory: Path, registry_options: str = ""
) -> AsyncIterator[RunningSidecar]:
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SR_URL": registry_url}
    os.makedirs(directory, exist_ok=True)
    async with running_sidecar(sidecar_yaml(registry_options), directory, env=env) as running:
        yield running


async def read_raw(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[Any]:
    """The first ``count`` records of ``topic`` as aiokafka ConsumerRecords (raw bytes)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)  # fmt: skip
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(records) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"only {len(records)} of {count} records arrived in {topic}")
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records[:count]


async def end_offset(bootstrap: str, topic: str, partitions: int = 1) -> int:
    """Sum of the end offsets of ``topic`` (how many records it holds)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        await consumer.stop()
    return int(sum(ends.values()))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def generated_proto_module(proto_text: str, directory: Path, name: str) -> ModuleType:
    """Compile ``proto_text`` with protoc's Python code generator and import it (as a user would)."""
    source = directory / f"{name}.proto"
    source.write_text(proto_text, encoding="utf-8")
    if protoc.main(["protoc", f"-I{directory}", f"--python_out={directory}", source.name]) != 0:
        raise AssertionError("protoc failed")
    return load_module(directory / f"{name}_pb2.py", f"{name}_pb2")


async def subjects(registry_url: str) -> list[str]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{registry_url}/subjects")
        response.raise_for_status()
        return [str(s) for s in response.json()]
