"""A quixstreams processor against the SASL_SSL (SCRAM) listener of the secured broker.

The runner builds its Application from the sidecar's ``kafka.security`` (CA, SCRAM user, password from
``${ENV}``); the password reaches the child through its environment only: never its command line, never
a log line.
"""

from __future__ import annotations

import asyncio
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from streams_support import produce_keyed, read_topic, status, streams_python, wait_status, wait_until

from kafka_sidecar.testing import running_sidecar
from kafka_sidecar_testing.secure_fixtures import SecureKafka, secure_kafka

__all__ = ["secure_kafka"]  # the fixture, imported so pytest finds it
pytestmark = [pytest.mark.kafka, pytest.mark.asyncio, pytest.mark.timeout(180)]

APP = """
    import os

    def build(app):
        source = app.topic(os.environ["IN_TOPIC"], value_deserializer="json")
        target = app.topic(os.environ["OUT_TOPIC"], value_serializer="json")
        app.dataframe(source).apply(lambda value: {"shout": value["text"].upper()}).to_topic(target)
"""


async def test_sasl_ssl_scram_settings_reach_the_processor_and_the_password_stays_secret(
    secure_kafka: SecureKafka, tmp_path: Path, caplog: Any
) -> None:
    source, target = await secure_kafka.new_topic(), await secure_kafka.new_topic()
    (tmp_path / "shout.py").write_text(textwrap.dedent(APP), encoding="utf-8")
    alice = secure_kafka.alice
    broker = secure_kafka.broker
    yaml = f"""
kafka:
  bootstrap_servers: "{broker.sasl_ssl_bootstrap}"
  security:
    protocol: SASL_SSL
    sasl_mechanism: SCRAM-SHA-256
    sasl_username: {alice.name}
    sasl_password: ${{ALICE_PASSWORD}}
    ssl_cafile: "{broker.ca.certfile}"
handlers:
  shout:
    use: stream-processor
    config:
      application_id: sec-{uuid.uuid4().hex[:8]}
      app: "shout:build"              # module form, found through python_path
      python_path: ["{tmp_path}"]
      python: "{streams_python()}"
      processing_guarantee: at-least-once   # alice's ACLs cover sec-* topics and groups only
      commit_interval_ms: 200
      expose: false
      env: {{IN_TOPIC: {source}, OUT_TOPIC: {target}}}
consumers:
  shout: {{exec: [shout]}}
"""
    async with running_sidecar(yaml, tmp_path, env={"ALICE_PASSWORD": alice.password}) as running:
        client = running.client
        ready = await wait_status(client, "shout", lambda s: s["state"] == "running", 60, "running over SASL_SSL")
        cmdline = await asyncio.to_thread(Path(f"/proc/{ready['pid']}/cmdline").read_bytes)
        assert alice.password.encode() not in cmdline
        await produce_keyed(broker.plaintext_bootstrap, source, [("k", {"text": "hello"}, None)])

        async def shouted() -> bool:
            return [value for _, value in await read_topic(broker.plaintext_bootstrap, target, 1)] == [
                {"shout": "HELLO"}
            ]

        await wait_until(shouted, 60, "the processed record")
        assert (await status(client, "shout"))["restarts"] == 0
    assert not [r for r in caplog.records if alice.password in r.getMessage()]
