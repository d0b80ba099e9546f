"""The assembly-time extension points: declared services, metrics exporters, dead-letter sinks and the
read-only view hooks receive. In-process sidecar, no broker needed (nothing here reaches Kafka)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from opentelemetry.metrics import MeterProvider as ApiMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from kafka_sidecar import Sidecar
from kafka_sidecar.cli import main
from kafka_sidecar.plugin import (
    ConfigError,
    ConsumedRecord,
    DeadLetter,
    DeadLettered,
    DeadLetterReceipt,
    EventBus,
    HandlerSpec,
    MetricsExporter,
    MetricsExporterSpec,
    MetricsRegistry,
    PluginError,
    ReportingSink,
    Resources,
    ServiceSpec,
    SidecarView,
    StashKey,
    hookimpl,
)
from kafka_sidecar.testing import running_sidecar
from kafka_sidecar_plugins.metrics import METER_PROVIDER

COUNTER: StashKey[list[str]] = StashKey("test.counter")


def config(*, metrics: str = "", chain: str = "[producer]", extra: str = "") -> str:
    return (
        "kafka:\n  bootstrap_servers: 127.0.0.1:1\n"
        + metrics
        + "handlers:\n  metrics:\n    use: metrics\n  producer:\n    use: producer\n"
        + extra
        + f"paths:\n  - path: /producers/{{topic}}\n    method: POST\n    exec: {chain}\n"
    )


class Reader:
    """A middleware whose factory reads a declared service (so the service must exist before it)."""

    def __init__(self, config: object, resources: Resources) -> None:
        self.log = resources.services[COUNTER]
        self.log.append("handler")

    async def __call__(self, exchange: object, call_next: Callable[[object], object]) -> object:
        return await call_next(exchange)  # type: ignore[misc]


class ServicePlugin:
    built = 0

    @hookimpl
    def kafka_sidecar_register_services(self, register: Callable[[ServiceSpec[list[str]]], None]) -> None:
        def make(resources: Resources) -> list[str]:
            ServicePlugin.built += 1
            return ["service"]

        register(ServiceSpec(COUNTER, make))

    @hookimpl
    def kafka_sidecar_register_handlers(self, register: Callable[[HandlerSpec[object]], None]) -> None:
        register(HandlerSpec(name="reader", factory=Reader))


@pytest.mark.asyncio
async def test_a_declared_service_is_built_once_before_every_handler_factory(tmp_path: Path) -> None:
    ServicePlugin.built = 0
    extra = "  first:\n    use: reader\n  second:\n    use: reader\n"
    yaml = config(chain="[first, second, producer]", extra=extra)
    async with running_sidecar(yaml, tmp_path, wait_for_kafka=0, extra_plugins=[(ServicePlugin(), "svc")]) as rs:
        assert rs.sidecar.resources.services[COUNTER] == ["service", "handler", "handler"]
    assert ServicePlugin.built == 1


@pytest.mark.asyncio
async def test_a_service_key_declared_twice_names_both_plugins(tmp_path: Path) -> None:
    path = tmp_path / "chains.yml"
    path.write_text(config(), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"service 'test.counter' is registered twice: by one .* and by two"):
        Sidecar.from_file(path, extra_plugins=[(ServicePlugin(), "one"), (ServicePlugin(), "two")])


class Recording(MetricsExporter):
    def __init__(self, registry: MetricsRegistry) -> None:
        self.registry = registry
        self.events: list[str] = []

    async def start(self) -> None:
        self.events.append("start")

    async def stop(self) -> None:
        self.events.append("stop")

    def routes(self) -> Sequence[BaseRoute]:
        async def count(request: Request) -> Response:
            total = self.registry.counter("kafka_sidecar_http_requests_total", "", ("method", "route", "status"))
            return PlainTextResponse(str(total.value("GET", "/x", "200")))

        return [Route("/my-metrics", count, methods=["GET"])]


class ExporterPlugin:
    def __init__(self) -> None:
        self.exporters: list[Recording] = []
        self.view: object = None

    @hookimpl
    def kafka_sidecar_register_metrics_exporters(self, register: Callable[[MetricsExporterSpec], None]) -> None:
        def make(registry: MetricsRegistry, resources: Resources) -> Recording:
            self.exporters.append(Recording(registry))
            return self.exporters[-1]

        register(MetricsExporterSpec("recording", make))

    @hookimpl
    def kafka_sidecar_startup(self, sidecar: SidecarView) -> None:
        self.view = sidecar


@pytest.mark.asyncio
async def test_a_custom_exporter_is_chosen_by_name_started_mounted_and_stopped(tmp_path: Path) -> None:
    plugin = ExporterPlugin()
    yaml = config(metrics="metrics:\n  exporters: [recording]\n", chain="[metrics, producer]")
    async with running_sidecar(yaml, tmp_path, wait_for_kafka=0, extra_plugins=[(plugin, "rec")]) as rs:
        (exporter,) = plugin.exporters
        assert exporter.events == ["start"]
        assert exporter.registry is rs.sidecar.resources.metrics.registry
        assert (await rs.client.get("/my-metrics")).status_code == 200
        assert (await rs.client.get("/metrics")).status_code == 404  # prometheus was not chosen
    assert exporter.events == ["start", "stop"]


@pytest.mark.asyncio
async def test_hooks_get_a_frozen_view_not_the_sidecar(tmp_path: Path) -> None:
    plugin = ExporterPlugin()
    async with running_sidecar(config(chain="[metrics, producer]"), tmp_path, wait_for_kafka=0,
                               extra_plugins=[(plugin, "rec")]) as rs:  # fmt: skip
        view = plugin.view
        assert type(view) is SidecarView
        assert not hasattr(view, "pm")  # no plugin manager, blueprint or lifecycle within reach
        assert not hasattr(view, "start")
        assert view.resources is rs.sidecar.resources
        (route,) = view.routes
        assert (route.path, route.uses("metrics"), route.terminal.type_name) == ("/producers/{topic}", True, "producer")
        with pytest.raises(dataclasses.FrozenInstanceError):
            view.config = view.config  # type: ignore[misc]


@pytest.mark.parametrize(
    ("section", "chain", "served"),
    [
        ("", "[metrics, producer]", True),  # unset: on because a chain runs the metrics handler
        ("", "[producer]", False),
        ("metrics:\n  enabled: false\n", "[metrics, producer]", False),
        ("metrics:\n  enabled: true\n", "[producer]", True),
    ],
)
@pytest.mark.asyncio
async def test_metrics_export_follows_the_section_or_the_chains(
    tmp_path: Path, section: str, chain: str, served: bool
) -> None:
    async with running_sidecar(config(metrics=section, chain=chain), tmp_path, wait_for_kafka=0) as rs:
        response = await rs.client.get("/metrics")
        assert rs.sidecar.resources.metrics.enabled is served
    assert (response.status_code == 200) is served


@pytest.mark.asyncio
async def test_an_unknown_exporter_or_sink_name_fails_the_assembly_naming_what_is_registered(tmp_path: Path) -> None:
    path = tmp_path / "chains.yml"
    path.write_text(config(metrics="metrics:\n  exporters: [prometheus, statsd]\n", chain="[metrics, producer]"))
    with pytest.raises(Exception, match=r"no metrics exporter 'statsd' \(registered: influx, otel, prometheus\)"):
        Sidecar.from_file(path)
    path.write_text(config(metrics="metrics:\n  exporters: [influx]\n", chain="[metrics, producer]"))
    with pytest.raises(PluginError, match=r"metrics exporter 'influx' from metrics .* needs influx.url"):
        Sidecar.from_file(path)
    consumer = (
        "  in:\n    use: reactive-consumer\n    config: {topics: [t], group: g, backend_url: 'http://127.0.0.1:1',"
        " dead_letter_sink: mail}\nconsumers:\n  c:\n    exec: [in]\n"
    )
    path.write_text(config(extra=consumer), encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"handlers\.in\.config\.dead_letter_sink  no dead-letter sink 'mail' \(registered: kafka\)"
    ):
        Sidecar.from_file(path)  # a plan-time problem at the key, from check and run alike


class Broken:
    def __init__(self, answer: Callable[[Sequence[DeadLetter]], Sequence[DeadLetterReceipt]]) -> None:
        self.answer = answer

    async def write(self, letters: Sequence[DeadLetter], suffix: str) -> Sequence[DeadLetterReceipt]:
        return self.answer(letters)


def _raise(letters: Sequence[DeadLetter]) -> Sequence[DeadLetterReceipt]:
    raise OSError("disk full")


@pytest.mark.parametrize(
    "answer",
    [_raise, lambda letters: [DeadLetterReceipt(True, "x")]],  # raising; one receipt for two letters
    ids=["raises", "too-few-receipts"],
)
@pytest.mark.asyncio
async def test_a_failing_sink_stores_nothing_and_every_letter_is_reported_unwritten(
    answer: Callable[[Sequence[DeadLetter]], Sequence[DeadLetterReceipt]],
) -> None:
    events = EventBus()
    seen: list[DeadLettered] = []
    events.subscribe(DeadLettered, seen.append)
    letters = [DeadLetter(ConsumedRecord("t", 0, n, 1, None, b"v"), "bad", consumer="c") for n in (1, 2)]
    receipts = await ReportingSink("broken", Broken(answer), events).write(letters, ".dlq")
    assert [r.stored for r in receipts] == [False, False]
    assert [(e.record.offset, e.written, e.dead_letter_topic) for e in seen] == [
        (1, False, "broken"),
        (2, False, "broken"),
    ]
    assert all("sink 'broken' failed" in e.error for e in seen)


def test_the_handlers_command_lists_exporters_and_sinks_with_their_plugins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["handlers"]) == 0
    out = capsys.readouterr().out
    exporters = out.split("metrics exporters:\n")[1].split("dead-letter sinks:\n")
    assert [line.split()[:2] for line in exporters[0].splitlines()] == [
        ["influx", "metrics"], ["otel", "metrics"], ["prometheus", "metrics"],
    ]  # fmt: skip
    assert exporters[1].splitlines()[0].split()[:2] == ["kafka", "kafka_sidecar.core"]


class MeterPlugin:
    """Declares the OpenTelemetry meter provider the ``otel`` exporter should use (an SDK with a reader)."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()

    @hookimpl
    def kafka_sidecar_register_services(self, register: Callable[[ServiceSpec[ApiMeterProvider]], None]) -> None:
        register(ServiceSpec(METER_PROVIDER, self.provider))

    def provider(self, resources: Resources) -> ApiMeterProvider:
        return MeterProvider(metric_readers=[self.reader])


@pytest.mark.asyncio
async def test_the_otel_exporter_reports_the_sidecars_http_metrics_to_a_declared_meter_provider(
    tmp_path: Path,
) -> None:
    plugin = MeterPlugin()
    yaml = config(metrics="metrics:\n  exporters: [otel]\n", chain="[metrics, producer]")
    async with running_sidecar(yaml, tmp_path, wait_for_kafka=0, extra_plugins=[(plugin, "meter")]) as rs:
        reply = await rs.client.post("/producers/orders", json={"records": [{"value": 1}]})
        assert reply.status_code == 503  # nothing listens on the bootstrap address
        data = plugin.reader.get_metrics_data()
    assert data is not None
    points = [
        (dict(point.attributes or {}), point.value)  # type: ignore[union-attr]
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "kafka_sidecar_http_requests_total"
        for point in metric.data.data_points
    ]
    assert points == [({"method": "POST", "route": "/producers/{topic}", "status": "503"}, 1.0)]
