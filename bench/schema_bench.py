"""Schema-registry formats: Avro vs JSON, serializer level and through the produce path, same run.

* serializer level: encode and decode one typical record N times with the sidecar's ``json`` and
  ``avro`` formats (schema resolved once, as on the produce path), plus confluent-kafka's own
  ``AvroSerializer``/``AvroDeserializer`` as a reference point;
* produce path (unless ``--no-broker``): ``POST /producers/{topic}`` batches through an in-process
  sidecar (httpx ASGI transport, real broker acks), ``json`` vs ``avro`` with the raw schema in every
  request (so the schema lookup is a cache hit), and the registry round trips counted.

The registry is ``--registry-url`` / ``$KAFKA_SIDECAR_SCHEMA_REGISTRY_URL`` or a local Apicurio
started with ``kafka_sidecar_testing.registry``; the broker is ``$KAFKA_SIDECAR_BOOTSTRAP`` or a local
one. Not part of the test suite::

    .venv/bin/python bench/schema_bench.py [--records 20000] [--requests 200] [--batch 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from common import kafka_bootstrap, new_topic

from kafka_sidecar._serdes.base import SchemaRef, Serde, SerializeContext
from kafka_sidecar.testing import running_sidecar

SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Order",
    "namespace": "bench",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "customer", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "paid", "type": "boolean"},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {
            "name": "address",
            "type": {
                "type": "record",
                "name": "Address",
                "fields": [{"name": "street", "type": "string"}, {"name": "zip", "type": "string"}],
            },
        },
    ],
}
VALUE: dict[str, Any] = {
    "id": 123456789,
    "customer": "customer-000042",
    "amount": 1234.5,
    "paid": True,
    "tags": ["priority", "gift", "eu"],
    "note": "leave at the door",
    "at": 1714557600000,
    "address": {"street": "1 Long Street", "zip": "12345"},
}
CONFIG = """\
kafka:
  bootstrap_servers: ${KAFKA_BOOTSTRAP_SERVERS}
schema_registry:
  urls: ["${SR_URL}"]
handlers:
  producer: {use: producer, config: {max_records: 10000}}
paths:
  - {path: "/producers/{topic}", method: POST, exec: [producer]}
"""


@contextlib.contextmanager
def registry_url(given: str | None) -> Iterator[str]:
    external = given or os.environ.get("KAFKA_SIDECAR_SCHEMA_REGISTRY_URL", "").strip()
    if external:
        yield external
        return
    from kafka_sidecar_testing.registry import apicurio_registry

    with tempfile.TemporaryDirectory() as tmp, apicurio_registry(Path(tmp)) as registry:
        print(f"Apicurio {registry.url} ready in {registry.startup_seconds:.1f}s")
        yield registry.url


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>10,.0f}/s  {seconds / count * 1e6:7.2f} us/op"


async def timed(label: str, count: int, action: Callable[[], Awaitable[None]]) -> float:
    start = time.perf_counter()
    await action()
    seconds = time.perf_counter() - start
    print(f"  {label:<34} {rate(count, seconds)}")
    return seconds


async def serializer_level(serdes: dict[str, Serde], url: str, records: int) -> None:
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    topic = f"bench-serde-{time.monotonic_ns()}"
    json_ser = await serdes["json"].serializer(SerializeContext(topic, "value"))
    avro_ser = await serdes["avro"].serializer(SerializeContext(topic, "value", SchemaRef(schema=json.dumps(SCHEMA))))
    json_bytes = json_ser.encode(VALUE, "v")
    avro_bytes = avro_ser.encode(VALUE, "v")
    assert json_bytes is not None
    assert avro_bytes is not None
    print(f"serializer level, {records} records; value size json {len(json_bytes)} B, avro {len(avro_bytes)} B")

    async def encode_json() -> None:
        for _ in range(records):
            json_ser.encode(VALUE, "v")

    async def encode_avro() -> None:
        for _ in range(records):
            avro_ser.encode(VALUE, "v")

    async def decode_json() -> None:
        for _ in range(records):
            await serdes["json"].decode(json_bytes, topic, "value")

    async def decode_avro() -> None:
        for _ in range(records):
            await serdes["avro"].decode(avro_bytes, topic, "value")

    client = SchemaRegistryClient({"url": url})
    confluent_ser = AvroSerializer(client, json.dumps(SCHEMA))
    confluent_de = AvroDeserializer(client)
    ctx = SerializationContext(topic, MessageField.VALUE)
    confluent_value = {**VALUE, "at": dt.datetime.fromtimestamp(1714557600, tz=dt.UTC)}
    confluent_bytes = confluent_ser(confluent_value, ctx)

    async def encode_confluent() -> None:
        for _ in range(records):
            confluent_ser(confluent_value, ctx)

    async def decode_confluent() -> None:
        for _ in range(records):
            confluent_de(confluent_bytes, ctx)

    await timed("encode json (sidecar)", records, encode_json)
    await timed("encode avro (sidecar, validating)", records, encode_avro)
    await timed("encode avro (confluent-kafka)", records, encode_confluent)
    await timed("decode json (sidecar)", records, decode_json)
    await timed("decode avro (sidecar, unions wrapped)", records, decode_avro)
    await timed("decode avro (confluent-kafka)", records, decode_confluent)


async def produce_path(bootstrap: str, url: str, requests: int, batch: int, tmp: Path) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SR_URL": url}
    async with running_sidecar(CONFIG, tmp, env=env) as rs:
        service_client = _registry_client(rs.sidecar)
        print(f"produce path: {requests} requests x {batch} records, in-process sidecar, real broker acks")
        for fmt in ("json", "avro", "json", "avro"):
            topic = await new_topic(bootstrap, fmt, 1)
            body: dict[str, Any] = {"valueFormat": fmt, "records": [{"value": VALUE}] * batch}
            if fmt == "avro":
                body["valueSchema"] = json.dumps(SCHEMA)
            first = await rs.client.post(f"/producers/{topic}", json=body)  # warm-up: resolves and caches
            assert first.status_code == 200, first.text
            before = service_client.requests if service_client else 0

            async def run(current: dict[str, Any] = body, where: str = topic) -> None:
                for _ in range(requests):
                    response = await rs.client.post(f"/producers/{where}", json=current)
                    assert response.status_code == 200, response.text

            await timed(f"POST {fmt:<5} ({batch}/request) records", requests * batch, run)
            if fmt == "avro" and service_client is not None:
                print(f"    registry round trips during the run: {service_client.requests - before}")


def _registry_client(sidecar: Any) -> Any:
    from kafka_sidecar_plugins.schema_registry._serde import RegistrySerde

    for serde in sidecar.resources.serdes:
        if isinstance(serde, RegistrySerde) and serde.binding.bound is not None:
            return serde.binding.bound.client
    return None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--registry-url")
    parser.add_argument("--bootstrap")
    parser.add_argument("--no-broker", action="store_true")
    args = parser.parse_args()
    with registry_url(args.registry_url) as url, tempfile.TemporaryDirectory() as tmp:
        env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "SR_URL": url}
        async with running_sidecar(CONFIG, Path(tmp), env=env, wait_for_kafka=0) as rs:
            serdes = {name: rs.sidecar.resources.serdes.get(name, field="bench") for name in ("json", "avro")}
            await serializer_level(serdes, url, args.records)
        if not args.no_broker:
            with kafka_bootstrap(args.bootstrap) as bootstrap:
                (Path(tmp) / "produce").mkdir()
                await produce_path(bootstrap, url, args.requests, args.batch, Path(tmp) / "produce")


if __name__ == "__main__":
    asyncio.run(main())
