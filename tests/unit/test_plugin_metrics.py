"""The metrics registry and middleware alone, the Prometheus and OpenTelemetry exporters, and the Influx
push against a real HTTP receiver."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from kafka_sidecar._config.model import KafkaConfig, SidecarConfig
from kafka_sidecar._errors import ValidationFailed
from kafka_sidecar._events import AdminAction, DeadLettered
from kafka_sidecar._exchange import DELIVERED, PRODUCED, Exchange, HttpRequest, Produced, RecordOutcome, Reply
from kafka_sidecar._kafka.producer import ProducerService
from kafka_sidecar._metrics.registry import OVERFLOW, MetricsRegistry
from kafka_sidecar._records import ConsumedRecord, DeliveryReport, OutgoingRecord
from kafka_sidecar._resources import Resources
from kafka_sidecar._serdes.base import SerdeRegistry
from kafka_sidecar.testing import running_sidecar
from kafka_sidecar_handlers.reactive._lag import ConsumerGauges
from kafka_sidecar_plugins.metrics import EventCounters, MetricsConfig, MetricsHandler, PrometheusExporter
from kafka_sidecar_plugins.metrics._influx import InfluxExporter as InfluxPusher
from kafka_sidecar_plugins.metrics._otel import OpenTelemetryExporter


def resources() -> Resources:
    return Resources(SidecarConfig(), SerdeRegistry(), ProducerService(KafkaConfig()))


def render(registry: MetricsRegistry) -> str:
    return PrometheusExporter(registry).render().decode()


def test_prometheus_text_for_each_kind() -> None:
    registry = MetricsRegistry()
    registry.counter("c_total", "A counter.", ("route",)).inc('/a"b\n', amount=2)
    registry.histogram("h_seconds", "A histogram.", ("route",), (0.1, 1.0)).observe("/x", value=0.5)
    ConsumerGauges(registry).report_lag("orders-in", "orders", 2, lag=42)
    text = render(registry)
    assert "# TYPE c_total counter\n" in text
    assert 'c_total{route="/a\\"b\\n"} 2.0\n' in text
    assert 'h_seconds_bucket{le="0.1",route="/x"} 0.0\n' in text
    assert 'h_seconds_bucket{le="1",route="/x"} 1.0\n' in text
    assert 'h_seconds_bucket{le="+Inf",route="/x"} 1.0\n' in text
    assert 'h_seconds_sum{route="/x"} 0.5\n' in text
    assert 'kafka_sidecar_consumer_lag{consumer="orders-in",partition="2",topic="orders"} 42.0\n' in text


def test_histogram_buckets_are_cumulative_and_a_value_on_a_bound_falls_in_it() -> None:
    histogram = MetricsRegistry().histogram("h_seconds", "A histogram.", (), (0.1, 1.0, 5.0))
    for value in (0.05, 0.1, 0.100001, 1.0, 4.0, 7.0, float("nan")):  # NaN: in no bucket but +Inf
        histogram.observe(value=value)
    ((labels, sample),) = histogram.samples()
    assert labels == ()
    assert sample.buckets == (0.1, 1.0, 5.0)
    assert sample.counts == (2, 4, 5)  # <= 0.1: 0.05, 0.1; <= 1: and 0.100001, 1.0; <= 5: and 4.0
    assert sample.count == 7  # 7.0 and NaN only in +Inf
    assert math.isnan(sample.total)


def test_each_sidecar_renders_its_own_registry() -> None:
    first, second = MetricsRegistry(), MetricsRegistry()
    first.counter("only_first_total", "x").inc()
    assert "only_first_total" in render(first)
    assert "only_first_total" not in render(second)


def test_counter_names_end_in_total() -> None:
    with pytest.raises(ValueError, match="_total"):
        MetricsRegistry().counter("requests", "x")


@pytest.mark.asyncio
async def test_opentelemetry_exporter_reports_counters_gauges_and_histograms_through_a_real_sdk() -> None:
    registry = MetricsRegistry()
    registry.counter("orders_total", "Orders.", ("topic",)).inc("orders", amount=3)
    reader = InMemoryMetricReader()
    exporter = OpenTelemetryExporter(registry, MeterProvider(metric_readers=[reader]))
    await exporter.start()
    registry.gauge("depth", "Queue depth.").set(value=7)  # declared after start: still exported
    registry.histogram("lat_seconds", "Latency.", (), (0.1, 1.0)).observe(value=0.5)
    data = reader.get_metrics_data()
    assert data is not None
    points = {
        metric.name: [(dict(p.attributes or {}), p.value) for p in metric.data.data_points]  # type: ignore[union-attr]
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert points["orders_total"] == [({"topic": "orders"}, 3.0)]
    assert points["depth"] == [({}, 7.0)]
    assert points["lat_seconds_count"] == [({}, 1)]
    assert points["lat_seconds_sum"] == [({}, 0.5)]


def test_label_cardinality_is_bounded() -> None:
    registry = MetricsRegistry(max_series=3)
    counter = registry.counter("topics_total", "Per topic.", ("topic",))
    for n in range(10):
        counter.inc(f"topic-{n}")
    text = render(registry)
    assert text.count("topics_total{") == 4
    assert counter.value(OVERFLOW) == 7
    assert 'kafka_sidecar_metrics_overflow_total{metric="topics_total"} 7' in text


def test_a_name_cannot_change_type() -> None:
    registry = MetricsRegistry()
    registry.counter("x_total", "x")
    with pytest.raises(ValueError, match="already exists"):
        registry.gauge("x_total", "x")


def http_exchange(route: str = "/producers/{topic}") -> Exchange:
    return Exchange("http", route, HttpRequest("POST", "/producers/orders", route, {"topic": "orders"}))


class Producing:
    async def __call__(self, exchange: Exchange) -> Reply:
        records = (OutgoingRecord("orders", None, b"1"), OutgoingRecord("orders", None, b"2"))
        reports = (DeliveryReport("orders", 0, 1), DeliveryReport("orders", None, None, 50003, "down"))
        exchange.stash[PRODUCED] = Produced("orders", records, reports)
        return Reply(207, {})


class Failing:
    async def __call__(self, exchange: Exchange) -> Reply:
        raise ValidationFailed("bad", field="records")


@pytest.mark.asyncio
async def test_http_requests_and_produced_records_are_counted_by_route_not_path() -> None:
    res = resources()
    handler = MetricsHandler(MetricsConfig(), res)
    await handler(http_exchange(), Producing())
    with pytest.raises(ValidationFailed):
        await handler(http_exchange(), Failing())
    registry = res.metrics.registry
    assert registry is handler.registry
    text = render(registry)
    assert 'kafka_sidecar_http_requests_total{method="POST",route="/producers/{topic}",status="207"} 1' in text
    assert 'kafka_sidecar_http_requests_total{method="POST",route="/producers/{topic}",status="422"} 1' in text
    assert "/producers/orders" not in text
    assert 'kafka_sidecar_http_request_duration_seconds_count{method="POST",route="/producers/{topic}"} 2' in text
    assert 'kafka_sidecar_records_produced_total{topic="orders"} 1' in text
    assert 'kafka_sidecar_records_failed_total{topic="orders"} 1' in text


def consumed(offset: int) -> ConsumedRecord:
    return ConsumedRecord("orders", 0, offset, 1, None, b"v")


class Delivering:
    async def __call__(self, exchange: Exchange) -> Reply:
        records = exchange.records
        exchange.stash[DELIVERED] = (
            RecordOutcome(records[0], "SUCCESS"),
            RecordOutcome(records[1], "RETRY", "backend said 503"),
            RecordOutcome(records[2], "DEADLETTER", "poison"),
        )
        return Reply(200)


@pytest.mark.asyncio
async def test_consumer_batches_outcomes_dead_letters_and_admin_actions() -> None:
    res = resources()
    EventCounters(res)  # the service the plugin declares, built once per sidecar
    handler = MetricsHandler(MetricsConfig(), res)
    MetricsHandler(MetricsConfig(), res)  # a second instance shares the registry and counts nothing twice
    await handler(Exchange("consumer", "orders-in", records=(consumed(1), consumed(2), consumed(3))), Delivering())
    res.events.publish(DeadLettered(consumed(3), "orders.dlq", 0, 5, "poison", 1, "orders-in", written=True))
    res.events.publish(AdminAction("seek", "orders-in"))
    text = render(res.metrics.registry)
    for outcome in ("SUCCESS", "RETRY", "DEADLETTER"):
        assert (
            f'kafka_sidecar_consumer_records_total{{consumer="orders-in",outcome="{outcome}",topic="orders"}} 1' in text
        )
    assert 'kafka_sidecar_consumer_batch_size_count{consumer="orders-in"} 1' in text
    assert 'kafka_sidecar_consumer_batch_size_sum{consumer="orders-in"} 3' in text
    assert 'kafka_sidecar_consumer_backend_errors_total{consumer="orders-in",kind="record"} 2' in text
    assert 'kafka_sidecar_dead_letters_total{source_topic="orders",written="true"} 1' in text
    assert 'kafka_sidecar_admin_actions_total{action="seek"} 1' in text


class Receiver:
    """A real HTTP server (asyncio streams) that keeps every POST body."""

    def __init__(self, status: int = 204) -> None:
        self.bodies: list[bytes] = []
        self.paths: list[str] = []
        self.status = status
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.paths.append(lines[0].split(" ")[1])
        length = next(int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length"))
        self.bodies.append(await reader.readexactly(length))
        writer.write(f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[Receiver]:
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.asyncio
async def test_influx_line_protocol_is_pushed_periodically_to_a_real_receiver() -> None:
    registry = MetricsRegistry()
    registry.counter("kafka_sidecar_records_produced_total", "x", ("topic",)).inc("my topic", amount=3)
    async with receiving(Receiver()) as receiver:
        pusher = InfluxPusher(registry, f"http://127.0.0.1:{receiver.port}/write?db=sidecar", 0.05, {"host": "pod-1"})
        await pusher.start()
        try:
            deadline = asyncio.get_running_loop().time() + 5
            while len(receiver.bodies) < 2:
                assert asyncio.get_running_loop().time() < deadline, "no periodic push arrived"
                await asyncio.sleep(0.01)
        finally:
            await pusher.stop()
    assert receiver.paths[0] == "/write?db=sidecar"
    lines = receiver.bodies[0].decode().splitlines()
    produced = next(line for line in lines if line.startswith("kafka_sidecar_records_produced_total"))
    timestamp = produced.rsplit(" ", 1)[1]
    assert produced.startswith("kafka_sidecar_records_produced_total,host=pod-1,topic=my\\ topic count=3.0 ")
    assert timestamp.isdigit()
    assert len(timestamp) >= 19
    assert registry.counter("kafka_sidecar_metrics_pushes_total", "").value() >= 2


@pytest.mark.asyncio
async def test_a_refused_push_is_counted_not_raised() -> None:
    registry = MetricsRegistry()
    async with receiving(Receiver(status=500)) as receiver:
        pusher = InfluxPusher(registry, f"http://127.0.0.1:{receiver.port}/write", 60, {})
        await pusher.start()
        assert await pusher.push() is False
        await pusher.stop()
    assert registry.counter("kafka_sidecar_metrics_push_failures_total", "").value() >= 1


INFLUX_SIDECAR = """\
kafka:
  bootstrap_servers: 127.0.0.1:1
metrics:
  exporters: [influx]
influx:
  url: http://127.0.0.1:{port}/write?db=sidecar
  interval_s: 60
  tags: {{pod: orders-1}}
handlers:
  metrics:
    use: metrics
  producer:
    use: producer
paths:
  - path: /producers/{{topic}}
    method: POST
    exec: [metrics, producer]
"""


@pytest.mark.asyncio
async def test_the_influx_exporter_chosen_in_chains_yml_pushes_once_more_when_the_sidecar_stops(tmp_path: Path) -> None:
    async with receiving(Receiver()) as receiver:
        yaml = INFLUX_SIDECAR.format(port=receiver.port)
        async with running_sidecar(yaml, tmp_path, wait_for_kafka=0) as rs:
            reply = await rs.client.post("/producers/orders", json={"records": [{"value": 1}]})
            assert (await rs.client.get("/metrics")).status_code == 404  # prometheus was not chosen
            assert receiver.bodies == []  # the interval is 60 s: nothing pushed yet
        # the last push runs after every handler stopped
        lines = receiver.bodies[-1].decode().splitlines()
    assert reply.status_code == 503
    request_line = next(line for line in lines if line.startswith("kafka_sidecar_http_requests_total,"))
    assert request_line.startswith(
        "kafka_sidecar_http_requests_total,method=POST,pod=orders-1,route=/producers/{topic},status=503 count=1.0 "
    )
