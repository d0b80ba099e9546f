"""The schema_registry plugin as the sidecar loads it: config section, formats, missing registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from kafka_sidecar._blueprint import build_blueprint
from kafka_sidecar._errors import ConfigError
from kafka_sidecar.testing import running_sidecar
from kafka_sidecar_plugins.schema_registry._config import SchemaRegistryConfig
from kafka_sidecar_testing.leak_scan import SecretWatch


@pytest.fixture(autouse=True)
def _watch_secrets(secret_watch: SecretWatch) -> None:
    """Registers the registry password for the whole-run leak check (tests/zz_final)."""
    secret_watch.add("s3cret")


BASE = """\
kafka:
  bootstrap_servers: 127.0.0.1:1
handlers:
  producer: {use: producer}
paths:
  - {path: "/producers/{topic}", method: POST, exec: [producer]}
  - {path: "/topics/{topic}", method: POST, exec: [producer]}
"""


def test_section_is_validated_with_locations(tmp_path: Path) -> None:
    path = tmp_path / "chains.yml"
    path.write_text(BASE + "schema_registry:\n  urls: [ftp://nope]\n  pasword: x\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        build_blueprint(path, env={})
    text = str(caught.value)
    assert "schema_registry.pasword" in text
    assert "chains.yml:10:3" in text


def test_formats_registered_and_section_typed(tmp_path: Path) -> None:
    path = tmp_path / "chains.yml"
    path.write_text(BASE + 'schema_registry:\n  urls: ["http://127.0.0.1:1/base"]\n  password: ${P}\n', "utf-8")
    blueprint = build_blueprint(path, env={"P": "s3cret"})
    assert {"avro", "jsonschema", "protobuf"} <= set(blueprint.catalog.serdes.names())
    (section,) = [v for v in blueprint.config.sections.values() if isinstance(v, SchemaRegistryConfig)]
    assert section.urls == ("http://127.0.0.1:1/base",)
    assert section.password == "s3cret"


@pytest.mark.asyncio
async def test_schema_format_without_registry_is_415_naming_the_section(tmp_path: Path) -> None:
    async with running_sidecar(BASE, tmp_path, env={}, wait_for_kafka=0) as rs:
        response = await rs.client.post("/producers/t", json={"valueFormat": "avro", "records": [{"value": 1}]})
        decode_problem = None
        try:
            await rs.sidecar.resources.serdes.get("avro", field="f").decode(b"\x00\x00\x00\x00\x01", "t", "value")
        except Exception as exc:
            decode_problem = exc
    assert response.status_code == 415, response.text
    assert response.json()["field"] == "schema_registry"
    assert getattr(decode_problem, "status", None) == 415


@pytest.mark.asyncio
async def test_registry_unreachable_is_503_and_null_keys_need_no_schema(tmp_path: Path) -> None:
    config = BASE + 'schema_registry:\n  urls: ["http://127.0.0.1:1"]\n  connect_timeout: 0.5\n'
    async with running_sidecar(config, tmp_path, env={}, wait_for_kafka=0) as rs:
        response = await rs.client.post(
            "/topics/t", json={"value_schema_id": 1, "records": [{"value": {"a": 1}}]},
            headers={"content-type": "application/vnd.kafka.avro.v2+json"},
        )  # fmt: skip
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["field"] == "schema_registry"
    assert "valueSchema" not in body["detail"]
