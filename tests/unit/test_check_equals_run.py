"""``kafka-sidecar check`` reports exactly the problems ``run`` would: every config error the suite knows.

Each case is run through the ``check`` command, the ``run`` command (which must refuse before serving)
and ``Sidecar.from_file`` (the assembly ``run`` uses, and the embedding API); all three must name the
same problems, each with ``file:line:col`` of a real node, and the case's own problem among them.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from kafka_sidecar._blueprint import build_blueprint
from kafka_sidecar._errors import ConfigError, PluginError
from kafka_sidecar._metrics.service import MetricsExporterSpec
from kafka_sidecar._registry import Duplicate, Registry
from kafka_sidecar._sidecar import Sidecar
from kafka_sidecar.cli import main

PRODUCE = 'paths:\n  - {path: "/producers/{topic}", method: POST, exec: [producer]}\n'
TAG_PLUGIN = """
from dataclasses import dataclass
from kafka_sidecar import HandlerSpec, hookimpl

@dataclass(frozen=True)
class TagConfig:
    value: str = "x"

def tag(config, resources):
    async def handler(exchange):  # a terminal's shape, registered as middleware
        raise AssertionError
    return handler

def broken(config, resources):
    raise RuntimeError("cannot build")

@hookimpl
def kafka_sidecar_register_handlers(register):
    register(HandlerSpec(name="tag", factory=tag, config_type=TagConfig))
    register(HandlerSpec(name="broken", factory=broken))
"""
ROUTE_PLUGIN = """
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from kafka_sidecar import hookimpl

async def hello(request):
    return PlainTextResponse("{name}")

@hookimpl
def kafka_sidecar_routes(sidecar):
    return [Route("{path}", hello, methods=["{method}"])]
"""

REGISTERING_PLUGIN = """
from kafka_sidecar.plugin import DeadLetterSinkSpec, MetricsExporterSpec, ServiceSpec, StashKey, hookimpl

@hookimpl
def kafka_sidecar_register_services(register):
    register(ServiceSpec(StashKey("ledger"), lambda resources: []))

@hookimpl
def kafka_sidecar_register_metrics_exporters(register):
    register(MetricsExporterSpec("prometheus", lambda registry, resources: None))

@hookimpl
def kafka_sidecar_register_dead_letter_sinks(register):
    register(DeadLetterSinkSpec("kafka", lambda resources: None))
"""
DUPLICATE_PLUGIN = """
from kafka_sidecar import HandlerSpec, hookimpl

class Json:  # a record format named like the built-in one
    name = "JSON"

    def serializer(self, context):
        raise AssertionError

    def decode(self, data, context):
        raise AssertionError

@hookimpl
def kafka_sidecar_register_handlers(register):
    register(HandlerSpec(name="producer", factory=lambda config, resources: None, kind="terminal"))

@hookimpl
def kafka_sidecar_register_serdes(register):
    register(Json())
"""
SERVICE_PLUGIN = """
from kafka_sidecar.plugin import ServiceSpec, StashKey, hookimpl

@hookimpl
def kafka_sidecar_register_services(register):
    register(ServiceSpec(StashKey("ledger"), lambda resources: []))
"""


@dataclass(frozen=True)
class Case:
    yaml: str
    expect: tuple[str, ...]
    """Substrings of ``line:col  path  message`` that must each appear in some problem."""
    files: dict[str, str] = field(default_factory=dict)


CASES: dict[str, Case] = {
    # -- from tests/unit/test_config_errors.py ------------------------------------------------
    "types-and-keys": Case(
        "server:\n  prot: 8080\nkafka:\n  producer:\n    acks: everything\n    linger_ms: soon\nkafka: {}\n",
        ("7:1  kafka  duplicate key", "2:3  server.prot  unknown key", "6:16  kafka.producer.linger_ms"),
    ),
    "name-resolution": Case(
        "handlers:\n  p:\n    use: prodcer\n  q:\n    use: producer\n    config: {max_record: 3}\n"
        "chains:\n  a: [b]\n  b: [a]\n"
        "paths:\n  - path: /x\n    method: POST\n    exec: [producr]\n  - path: z\n    exec: [producer]\n",
        ("3:10  handlers.p.use", "6:14  handlers.q.config.max_record", "8:6  chains.a  chain cycle", "14:5  paths[1]"),
    ),
    "terminal-not-last": Case(
        'paths:\n  - path: "/x/{topic}"\n    method: POST\n    exec: [producer, producer]\n',
        ("4:11  paths[0].exec  'producer' is a terminal handler",),
    ),
    "unknown-section-and-variable": Case(
        "sever:\n  port: 1\nkafka:\n  bootstrap_servers: ${NOT_SET_ANYWHERE_A2}\n",
        ("1:1  sever  unknown section", "4:22  <root>  environment variable 'NOT_SET_ANYWHERE_A2' is not set"),
    ),
    "yaml-syntax": Case("server: {port: 1\n", ("YAML syntax error",)),
    "source-ends-an-http-route": Case(
        "handlers:\n  in:\n    use: reactive-consumer\n    config: {topics: [t], group: g, backend_url: http://x}\n"
        'paths:\n  - {path: "/p", method: POST, exec: [in]}\n',
        ("6:38  paths[0].exec  must end with a terminal handler, but 'in' is a source",),
    ),
    # -- from tests/unit/test_cli.py -------------------------------------------------------------
    "cli-unknown-keys": Case(
        "server:\n  prot: 1\nkafka:\n  client_di: x\n", ("2:3  server.prot", "4:3  kafka.client_di")
    ),
    "non-loopback-bind": Case("server:\n  host: 10.0.0.5\n", ("2:9  server.host  '10.0.0.5' is not a loopback",)),
    # -- from tests/unit/test_sr_plugin.py, test_reactive_lifecycle.py, test_security_options.py, http limits
    "schema-registry-section": Case(
        PRODUCE + "schema_registry:\n  urls: [ftp://nope]\n  pasword: x\n", ("5:3  schema_registry.pasword",)
    ),
    "reactive-config": Case(
        "handlers:\n  in:\n    use: reactive-consumer\n    config:\n      topic_pattern: o.*\n      group: g\n"
        "      backend_url: http://127.0.0.1:9\n      retry: {max_attempts: 0}\n"
        "consumers:\n  c: {exec: [in]}\n",
        ("max_attempts must be at least 1",),
    ),
    "sasl-without-password": Case(
        "kafka:\n  security:\n    protocol: SASL_SSL\n    sasl_username: svc\n", ("kafka.security", "sasl_password")
    ),
    "admin-limits": Case("server:\n  admin_port: 8442\n  admin_token: short\n", ("server", "admin_port")),
    # -- new: what check used to pass and run (or every request) rejected --------------------------
    "producer-formats": Case(
        "handlers:\n  producer:\n    use: producer\n    config: {key_format: jsn, value_format: nope}\n" + PRODUCE,
        (
            "4:26  handlers.producer.config.key_format  no record format 'jsn' is registered",
            "4:45  handlers.producer.config.value_format  no record format 'nope'",
        ),
    ),
    "reactive-format": Case(
        "handlers:\n  in:\n    use: reactive-consumer\n    config:\n      topics: [t]\n      group: g\n"
        "      backend_url: http://127.0.0.1:9\n      value_format: avor\n"
        "consumers:\n  c: {exec: [in]}\n",
        ("8:21  handlers.in.config.value_format  no record format 'avor' is registered",),
    ),
    "jwt-key-file-missing": Case(
        "handlers:\n  auth:\n    use: jwt\n    config: {public_key_files: [keys/issuer.pem]}\n" + PRODUCE,
        ("4:33  handlers.auth.config.public_key_files[0]  key file", "keys/issuer.pem' does not exist"),
    ),
    "unknown-dead-letter-sink": Case(
        "handlers:\n  in:\n    use: reactive-consumer\n    config:\n      topics: [t]\n      group: g\n"
        "      backend_url: http://127.0.0.1:9\n      dead_letter_sink: mail\n"
        "consumers:\n  c: {exec: [in]}\n",
        ("8:25  handlers.in.config.dead_letter_sink  no dead-letter sink 'mail' (registered: kafka)",),
    ),
    "core-files-missing": Case(  # resolved against the config file's folder, never the working directory
        "server:\n  tls_certfile: certs/server.pem\n  tls_keyfile: certs/server.key\n"
        "kafka:\n  security: {protocol: SSL, ssl_cafile: certs/ca.pem}\n" + PRODUCE,
        (
            "2:17  server.tls_certfile  file '",
            "certs/server.pem' does not exist",
            "5:41  kafka.security.ssl_cafile  file '",
        ),
    ),
    "relative-topic-schema-missing": Case(
        "handlers:\n  v:\n    use: validation\n    config:\n      topic_schemas: {orders: schemas/orders.json}\n"
        'paths:\n  - {path: "/producers/{topic}", method: POST, exec: [v, producer]}\n',
        ("5:31  handlers.v.config.topic_schemas.orders  schema file", "schemas/orders.json' does not exist"),
    ),
    "active-route-typo": Case(
        "paths:\n  - path: /consumers/{group}/instances/{instance}/subscripton\n    method: POST\n"
        "    exec: [active-consumer]\n"
        "  - path: /consumers/{group}/instances/{instance}/records\n    method: PUT\n    exec: [active-consumer]\n",
        (
            "2:11  paths[0].path  /consumers/{group}/instances/{instance}/subscripton is not an active-consumer route",
            "(did you mean 'subscription'?)",
            "5:11  paths[1].path  the active consumer does not serve PUT here; it serves GET",
        ),
    ),
    "producer-route-it-cannot-serve": Case(
        "paths:\n  - {path: /produce, methods: [POST, GET], exec: [producer]}\n",
        ("2:12  paths[0].path  the producer needs the topic", "the producer serves POST only, not GET"),
    ),
    "bad-factories": Case(
        "plugins: {dirs: [plugins]}\nhandlers:\n  t: {use: tag}\n"
        'paths:\n  - {path: "/p/{topic}", method: POST, exec: [t, producer]}\n'
        '  - {path: "/q/{topic}", method: POST, exec: [broken, producer]}\n',
        (
            "3:6  t  the factory of handler type 'tag'",
            "but a middleware is called as handler(exchange, call_next)",
            "6:47  broken  handler type 'broken'",
            "failed to build: RuntimeError('cannot build')",
        ),
        {"plugins/tagging.py": TAG_PLUGIN},
    ),
    "plugin-route-clashes": Case(
        "plugins: {dirs: [plugins]}\n" + PRODUCE,
        (
            "plugin 'one' mounts GET /hello, already served by plugin 'two'",
            "3:5  paths[0]  plugin 'shadow' mounts POST /producers/{name}, already served by paths[0]",
        ),
        {
            "plugins/one.py": ROUTE_PLUGIN.format(name="one", path="/hello", method="GET"),
            "plugins/two.py": ROUTE_PLUGIN.format(name="two", path="/hello", method="GET"),
            "plugins/other_method.py": ROUTE_PLUGIN.format(name="post", path="/hello", method="POST"),
            "plugins/shadow.py": ROUTE_PLUGIN.format(name="shadow", path="/producers/{name}", method="POST"),
        },
    ),
    "unknown-metrics-exporter": Case(
        "metrics:\n  enabled: true\n  exporters: [prometheus, promethues]\n" + PRODUCE,
        (
            "3:27  metrics.exporters[1]  no metrics exporter 'promethues' (registered: influx, otel, prometheus)",
            "(did you mean 'prometheus'?)",
        ),
    ),
    "unknown-exporter-beside-plan-problems": Case(  # reported together with the other plan problems
        "metrics:\n  enabled: true\n  exporters:\n    - statsd\n" + PRODUCE.replace("[producer]", "[prodcer]"),
        ("paths[0].exec[0]  'prodcer' is neither", "4:7  metrics.exporters[0]  no metrics exporter 'statsd'"),
    ),
    "duplicate-registrations": Case(
        "plugins: {dirs: [plugins]}\nmetrics:\n  enabled: true\n  exporters: [prometheus]\n" + PRODUCE,
        (
            "4:15  metrics.exporters[0]  metrics exporter 'prometheus' is registered twice: by ",
            "1:17  plugins  service 'ledger' is registered twice: by ",
            "1:17  plugins  dead-letter sink 'kafka' is registered twice: by ",
        ),
        {"plugins/again.py": REGISTERING_PLUGIN, "plugins/ledger.py": SERVICE_PLUGIN},
    ),
    "duplicate-handler-type-and-format": Case(  # named with both registrants, located where the type is used
        "plugins: {dirs: [plugins]}\n" + PRODUCE,
        (
            "3:55  producer  handler type 'producer' is registered twice: by producer (kafka-sidecar ",
            "and by twice (",
            "1:17  plugins  record format 'json' is registered twice: by formats (kafka-sidecar ",
        ),
        {"plugins/twice.py": DUPLICATE_PLUGIN},
    ),
}
PROBLEM_LINE = re.compile(r"^  (\S+):(\d+):(\d+)  (.*)$")


def write_case(tmp_path: Path, case: Case) -> Path:
    for name, text in case.files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text), encoding="utf-8")
    path = tmp_path / "chains.yml"
    path.write_text(case.yaml, encoding="utf-8")
    return path


def cli_problems(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(argv) == 2
    lines = capsys.readouterr().err.splitlines()
    if lines[0].startswith("configuration error: "):  # one problem: on the heading line
        return [lines[0].removeprefix("configuration error: ")]
    assert lines[0].startswith("configuration has"), lines
    return [line[2:] for line in lines[1:]]


@pytest.mark.parametrize("name", sorted(CASES))
def test_check_and_run_report_the_same_located_problems(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES[name]
    monkeypatch.delenv("NOT_SET_ANYWHERE_A2", raising=False)
    monkeypatch.chdir(tmp_path.parent)  # relative paths must not depend on the working directory
    path = write_case(tmp_path, case)

    checked = cli_problems(["check", str(path)], capsys)
    run = cli_problems(["run", "-c", str(path), "--log-level", "DEBUG"], capsys)
    with pytest.raises(ConfigError) as caught:
        Sidecar.from_file(path)
    assembled = [str(problem) for problem in caught.value.problems]

    assert checked == run == assembled
    for problem in checked:
        found = PROBLEM_LINE.match(f"  {problem}")
        assert found is not None, problem
        assert found.group(1) == str(path), problem
        assert int(found.group(2)) >= 1
        assert int(found.group(3)) >= 1
    located = [problem.removeprefix(f"{path}:") for problem in checked]
    for wanted in case.expect:
        assert any(wanted in problem for problem in located), (wanted, located)


WRAPPER_PLUGIN = """
from kafka_sidecar import hookimpl

@hookimpl(wrapper=True)
def kafka_sidecar_startup(sidecar):
    return (yield)
"""


@pytest.mark.parametrize(
    ("plugin", "expected"),
    [
        (WRAPPER_PLUGIN, "plugin 'odd': kafka_sidecar_startup is called one implementation at a time"),
    ],
)
def test_plugin_errors_are_the_same_for_check_and_run(
    plugin: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_case(tmp_path, Case("plugins: {dirs: [plugins]}\n" + PRODUCE, (), {"plugins/odd.py": plugin}))
    assert main(["check", str(path)]) == 2
    checked = capsys.readouterr().err
    assert main(["run", "-c", str(path), "--log-level", "DEBUG"]) == 2
    assert capsys.readouterr().err == checked
    assert checked.startswith("plugin error: ")
    assert expected in checked


def test_a_relative_schema_path_is_read_from_the_config_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path.parent)
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "orders.json").write_text('{"type": "object", "required": ["id"]}', encoding="utf-8")
    path = tmp_path / "chains.yml"
    path.write_text(
        "handlers:\n  v:\n    use: validation\n    config:\n      topic_schemas: {orders: schemas/orders.json}\n"
        'paths:\n  - {path: "/producers/{topic}", method: POST, exec: [v, producer]}\n'
        '  - {path: "/consumers/{group}/instances/{instance}/subscriptions", methods: [GET, POST], '
        "exec: [active-consumer]}\n",
        encoding="utf-8",
    )
    assert main(["check", str(path)]) == 0
    assert "2 route(s)" in capsys.readouterr().out
    sidecar = Sidecar.from_file(path)
    planned = sidecar.blueprint.handlers["v"].config
    assert planned.topic_schemas == {"orders": str(schemas / "orders.json")}  # type: ignore[attr-defined]


def test_a_disabled_handler_is_not_checked_as_it_never_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "chains.yml"
    path.write_text(
        "handlers:\n  old: {use: producer, enabled: false, config: {value_format: gone}}\n"
        "  new: {use: producer}\n"
        'paths:\n  - {path: "/producers/{topic}", method: POST, exec: [old, new]}\n',
        encoding="utf-8",
    )
    assert main(["check", str(path)]) == 0
    assert "->  new" in capsys.readouterr().out


def test_assembly_still_refuses_what_the_plan_reports_for_a_hand_made_blueprint(tmp_path: Path) -> None:
    """The plan reports these; assembly keeps a guard for a blueprint not made by ``build_blueprint``."""
    path = write_case(tmp_path, Case("metrics:\n  enabled: true\n  exporters: [prometheus]\n" + PRODUCE, ()))
    blueprint = build_blueprint(path)
    registered = blueprint.catalog.registrations
    no_exporters = replace(registered, metrics_exporters=Registry[MetricsExporterSpec]("metrics exporter"))
    with pytest.raises(ConfigError) as caught:
        Sidecar(replace(blueprint, catalog=replace(blueprint.catalog, registrations=no_exporters)))
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:3:15  metrics.exporters[0]  no metrics exporter 'prometheus' (registered: none)"
    ]
    twice = Duplicate("service", "ledger", "service 'ledger' is registered twice: by a and by b")
    with_duplicate = replace(registered, duplicates=(twice,))
    with pytest.raises(PluginError, match="service 'ledger' is registered twice"):
        Sidecar(replace(blueprint, catalog=replace(blueprint.catalog, registrations=with_duplicate)))


def test_handlers_lists_the_first_registration_and_reports_the_clash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_case(tmp_path, Case("", (), {"plugins/twice.py": DUPLICATE_PLUGIN}))
    assert main(["handlers", "--plugins-dir", str(tmp_path / "plugins")]) == 2
    out, err = capsys.readouterr()
    assert "producer" in out
    assert "plugin error: handler type 'producer' is registered twice: by producer (kafka-sidecar " in err
    assert "plugin error: record format 'json' is registered twice: by formats (kafka-sidecar " in err
