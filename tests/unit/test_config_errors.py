"""Config problems are collected and reported as file:line:col  path  message  (did you mean ...)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kafka_sidecar._blueprint import build_blueprint
from kafka_sidecar._errors import ConfigError


def problems_for(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "chains.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        build_blueprint(path, env=env or {})
    return [str(p).replace(str(path), "chains.yml") for p in caught.value.problems]


def test_type_and_key_problems_are_all_reported_with_locations(tmp_path: Path) -> None:
    text = """\
server:
  prot: 8080
kafka:
  producer:
    acks: everything
    linger_ms: soon
kafka: {}
"""
    assert problems_for(tmp_path, text) == [
        "chains.yml:7:1  kafka  duplicate key 'kafka' (first defined at line 3)",
        "chains.yml:2:3  server.prot  unknown key  (did you mean 'port'?)",
        "chains.yml:5:11  kafka.producer.acks  must be one of 'all', '1', '0', -1, 0, 1, got 'everything'",
        "chains.yml:6:16  kafka.producer.linger_ms  must be an integer, got str 'soon'",
    ]


def test_name_resolution_problems(tmp_path: Path) -> None:
    text = """\
handlers:
  p:
    use: prodcer
  q:
    use: producer
    config: {max_record: 3}
chains:
  a: [b]
  b: [a]
paths:
  - path: /x
    method: POST
    exec: [producr]
  - path: /y
    method: POST
    exec: [a]
  - path: z
    exec: [producer]
"""
    assert problems_for(tmp_path, text) == [
        "chains.yml:3:10  handlers.p.use  no handler type 'prodcer' is registered (see: kafka-sidecar handlers)"
        "  (did you mean 'producer'?)",
        "chains.yml:6:14  handlers.q.config.max_record  unknown key  (did you mean 'max_records'?)",
        "chains.yml:8:6  chains.a  chain cycle: a -> b -> a",
        "chains.yml:13:12  paths[0].exec[0]  'producr' is neither a chain nor a handler  (did you mean 'producer'?)",
        "chains.yml:17:5  paths[2]  needs 'method' or 'methods'",
        "chains.yml:17:11  paths[2].path  must start with '/'",
        "chains.yml:17:11  paths[2].path  the producer needs the topic in the path: a {topic} parameter",
    ]


def test_terminal_must_be_last_and_middleware_not_last(tmp_path: Path) -> None:
    text = """\
paths:
  - path: /x
    method: POST
    exec: [producer, producer]
"""
    found = problems_for(tmp_path, text)
    assert found == [
        "chains.yml:4:11  paths[0].exec  'producer' is a terminal handler; only the last may be one",
        "chains.yml:4:11  paths[0].exec  lists the same handler twice",
        "chains.yml:2:11  paths[0].path  the producer needs the topic in the path: a {topic} parameter",
    ]


def test_disabled_handlers_are_dropped_at_build_time(tmp_path: Path) -> None:
    path = tmp_path / "chains.yml"
    path.write_text(
        "handlers:\n  off:\n    use: producer\n    enabled: false\n  on:\n    use: producer\n"
        'paths:\n  - {path: "/x/{topic}", method: POST, exec: [off, on]}\n',
        encoding="utf-8",
    )
    (route,) = build_blueprint(path, env={}).routes
    assert route.links == ("on",)


def test_unknown_section_and_missing_variable(tmp_path: Path) -> None:
    text = """\
sever:
  port: 1
kafka:
  bootstrap_servers: ${NOT_SET_ANYWHERE}
"""
    found = problems_for(tmp_path, text)
    assert "chains.yml:1:1  sever  unknown section  (did you mean 'server'?)" in found
    assert any(
        line.startswith("chains.yml:4:22") and "environment variable 'NOT_SET_ANYWHERE' is not set" in line
        for line in found
    )


def test_interpolation_with_default_and_env(tmp_path: Path) -> None:
    path = tmp_path / "chains.yml"
    path.write_text("server:\n  port: ${PORT:8500}\n  host: ${HOST:127.0.0.1}\n", encoding="utf-8")
    assert build_blueprint(path, env={}).config.server.port == 8500
    blueprint = build_blueprint(path, env={"PORT": "9001", "HOST": "::1"})
    assert blueprint.config.server.port == 9001
    assert blueprint.config.server.host == "::1"


def test_the_shipped_chains_yml_loads() -> None:
    blueprint = build_blueprint(Path(__file__).parents[2] / "chains.yml", env={})
    routes = {(route.path, route.methods) for route in blueprint.routes}
    assert ("/producers/{topic}", ("POST",)) in routes
    assert ("/topics/{topic}", ("POST",)) in routes
