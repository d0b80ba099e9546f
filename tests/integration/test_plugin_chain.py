"""The cross-cutting plugins in the real chain against the real broker (and a real backend).

One trace id flows HTTP -> Kafka record headers -> reactive consumer -> backend call, proven with the
OpenTelemetry SDK's in-memory exporter and by the headers themselves.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from test_reactive_support import Backend, produce, read_all, serving, wait_for

from kafka_sidecar.testing import RunningSidecar, running_sidecar
from kafka_sidecar_plugins.audit import AUDIT_SINKS
from kafka_sidecar_plugins.tracing import TRACER_PROVIDER

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio]

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
FULL = "[metrics, correlation, tracing, logging, audit, validation]"


def yaml(audit_topic: str, chain: str = FULL) -> str:
    return f"""
kafka:
  bootstrap_servers: ${{KAFKA_BOOTSTRAP_SERVERS}}
handlers:
  metrics: {{use: metrics}}
  correlation: {{use: correlation}}
  tracing: {{use: tracing, config: {{record_baggage_keys: [tenant]}}}}
  logging: {{use: logging-context, config: {{install: false}}}}
  audit: {{use: audit, config: {{topic: {audit_topic}, granularity: record}}}}
  validation: {{use: validation}}
chains:
  default: {chain}
  default-consumer: [metrics, correlation, tracing, logging, audit]
paths:
  - path: /producers/{{topic}}
    method: POST
    exec: [default, producer]
"""


def with_consumer(text: str, consumer: dict[str, Any]) -> str:
    handler = f"  orders-in:\n    use: reactive-consumer\n    config: {json.dumps(consumer)}\n"
    text = text.replace("chains:\n", handler + "chains:\n", 1)
    return text + "consumers:\n  orders:\n    exec: [default-consumer, orders-in]\n"


def exporter_on(rs: RunningSidecar) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    rs.sidecar.resources.services[TRACER_PROVIDER] = provider
    return exporter


def header(record: Any, name: str) -> str | None:
    found = [value.decode() for key, value in record.headers if key.lower() == name.lower()]
    return found[-1] if found else None


async def test_ids_trace_context_audit_and_metrics_on_the_produce_path(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create(partitions=1)
    audit_topic = await topic_factory.create(partitions=1, prefix="audit")
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    async with running_sidecar(yaml(audit_topic), tmp_path, env=env) as rs:
        exporter = exporter_on(rs)
        response = await rs.client.post(
            f"/producers/{topic}",
            json={"records": [{"key": "k1", "value": {"n": 1}}, {"value": {"n": 2}, "correlationId": "own"}]},
            headers={"traceparent": TRACEPARENT, "x-correlation-id": "cid-int", "baggage": "tenant=acme"},
        )
        assert response.status_code == 200, response.text
        assert await rs.sidecar.resources.services[AUDIT_SINKS].flushed(10)
        metrics = (await rs.client.get("/metrics")).text
        described = (await rs.client.get("/openapi.json")).json()["paths"]["/producers/{topic}"]["post"]
    # the answer matches the served description
    Draft202012Validator(described["responses"]["200"]["content"]["application/json"]["schema"]).validate(
        response.json()
    )
    assert response.headers["x-correlation-id"] == "cid-int"
    records = await read_all(kafka_bootstrap, topic, 2)
    assert [header(r, "X-Correlation-Id") for r in records] == ["cid-int", "own"]
    send = next(s for s in exporter.get_finished_spans() if s.name == f"send {topic}")
    assert send.kind is SpanKind.PRODUCER
    for record in records:
        assert header(record, "traceparent") == f"00-{TRACE_ID}-{send.context.span_id:016x}-01"
        assert header(record, "baggage") == "tenant=acme"
    audits = await read_all(kafka_bootstrap, audit_topic, 2)
    assert [a.key for a in audits] == [b"cid-int", b"own"]
    bodies = [json.loads(a.value) for a in audits]
    assert [(b["auditType"], b["auditStatus"], b["offset"]) for b in bodies] == [
        ("PRODUCER", "SUCCESS", records[0].offset),
        ("PRODUCER", "SUCCESS", records[1].offset),
    ]
    assert all('"n"' not in a.value.decode() for a in audits)
    assert f'kafka_sidecar_records_produced_total{{topic="{topic}"}} 2' in metrics


async def test_without_tracing_correlation_and_audit_in_the_chain_none_of_them_acts(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create(partitions=1)
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    async with running_sidecar(yaml("unused-audit", chain="[metrics]"), tmp_path, env=env) as rs:
        response = await rs.client.post(
            f"/producers/{topic}", json={"records": [{"value": 1}]}, headers={"traceparent": TRACEPARENT}
        )
        audit_active = len(rs.sidecar.resources.services[AUDIT_SINKS]) > 0
    assert not audit_active
    assert response.status_code == 200
    assert "x-correlation-id" not in response.headers
    (record,) = await read_all(kafka_bootstrap, topic, 1)
    assert header(record, "traceparent") is None
    assert header(record, "X-Correlation-Id") is None


async def test_one_trace_id_flows_http_to_kafka_to_the_backend(
    kafka_bootstrap: str, topic_factory: Any, tmp_path: Path
) -> None:
    topic = await topic_factory.create(partitions=1)
    audit_topic = await topic_factory.create(partitions=1, prefix="audit")
    backend = Backend()
    consumer = {
        "topics": [topic],
        "group": f"g-{uuid.uuid4().hex[:8]}",
        "backend_url": backend.url,
        "backend_path": "/deliver",
        "batch_max_records": 20,
        "batch_max_wait_ms": 5,
        "request_timeout_ms": 2000,
        "drain_timeout_ms": 3000,
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 500,
    }
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    config = with_consumer(yaml(audit_topic), consumer)
    async with serving(backend), running_sidecar(config, tmp_path, env=env) as rs:
        exporter = exporter_on(rs)
        response = await rs.client.post(
            f"/producers/{topic}",
            json={"records": [{"value": {"n": 1}}]},
            headers={"traceparent": TRACEPARENT, "x-correlation-id": "cid-e2e"},
        )
        assert response.status_code == 200, response.text
        await wait_for(lambda: len(backend.records()) >= 1, 30, "the record at the backend")
        # A record produced without any header gets a generated correlation id on its way to the backend.
        await produce(kafka_bootstrap, topic, [b'{"n": 2}'])
        await wait_for(lambda: len(backend.records()) >= 2, 30, "the bare record at the backend")
        await wait_for(
            lambda: sum(s.name == f"process {topic}" for s in exporter.get_finished_spans()) >= 2, 10, "process spans"
        )
        assert await rs.sidecar.resources.services[AUDIT_SINKS].flushed(10)
        metrics = (await rs.client.get("/metrics")).text
    first_call = backend.headers[0]
    delivered = backend.records()[0]
    send = next(s for s in exporter.get_finished_spans() if s.name == f"send {topic}")
    process = next(s for s in exporter.get_finished_spans() if s.name == f"process {topic}")
    receive = next(s for s in exporter.get_finished_spans() if s.name == f"receive {topic}")
    assert receive.kind is SpanKind.CONSUMER
    assert receive.parent is None  # a poll is a root span; the process span carries the producer's trace
    assert receive.attributes is not None
    assert receive.attributes["messaging.operation.type"] == "receive"
    assert receive.attributes["messaging.batch.message_count"] == 1  # one record per poll here
    assert receive.start_time is not None
    assert receive.end_time is not None
    assert receive.start_time <= receive.end_time
    # the same trace id over HTTP in, in the Kafka record, on the consumer span and on the backend call
    assert delivered["headers"]["traceparent"].split("-")[1] == TRACE_ID
    assert f"{process.context.trace_id:032x}" == TRACE_ID
    assert first_call["traceparent"] == f"00-{TRACE_ID}-{process.context.span_id:016x}-01"
    assert [link.context.span_id for link in process.links] == [send.context.span_id]
    assert process.attributes is not None
    assert process.attributes["messaging.destination.name"] == topic
    assert first_call["x-correlation-id"] == "cid-e2e"
    assert delivered["headers"]["X-Correlation-Id"] == "cid-e2e"
    bare = backend.records()[1]
    generated = bare["headers"]["X-Correlation-Id"]
    uuid.UUID(generated)
    assert backend.headers[1]["x-correlation-id"] == generated
    audits = [json.loads(a.value) for a in await read_all(kafka_bootstrap, audit_topic, 3)]
    consumed = [a for a in audits if a["auditType"] == "REACTIVE_CONSUMER"]
    assert sorted(a["correlationId"] for a in consumed) == sorted(["cid-e2e", generated])
    assert all(a["auditStatus"] == "SUCCESS" for a in consumed)
    assert f'kafka_sidecar_consumer_records_total{{consumer="orders",outcome="SUCCESS",topic="{topic}"}} 2' in metrics
