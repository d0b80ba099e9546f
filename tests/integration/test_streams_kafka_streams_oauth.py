"""A Kafka Streams topology (Java) under ``runtime: command`` over SASL_SSL OAUTHBEARER, fetching its token
over HTTPS from an endpoint only ``oauth_cafile`` trusts, as the sidecar's own Python clients do.

Two things the Java client needs beyond its properties file: the token call's CA in the login module's
options (``ssl.truststore.*``), and (Kafka 4) the endpoint listed in the JVM system property
``org.apache.kafka.sasl.oauthbearer.allowed.urls``, which the sidecar passes through ``JAVA_TOOL_OPTIONS``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from streams_support import (
    ensure_topology_classpath,
    order_counts_yaml,
    produce_keyed,
    read_topic,
    status,
    wait_status,
    wait_until,
)

from kafka_sidecar.testing import running_sidecar
from kafka_sidecar_testing.kafka_runtime import DEFAULT_KAFKA_VERSION, find_java
from kafka_sidecar_testing.leak_scan import SecretWatch
from kafka_sidecar_testing.pytest_plugin import VERSION_ENV
from kafka_sidecar_testing.secure_fixtures import SecureKafka, secure_kafka
from kafka_sidecar_testing.token_endpoint import TokenEndpoint, private_ca_endpoint

__all__ = ["secure_kafka"]  # the fixture, imported so pytest finds it
pytestmark = [pytest.mark.kafka, pytest.mark.asyncio, pytest.mark.timeout(300)]
KEYS = ["c0", "c1"]


@pytest.fixture(scope="module")
def topology_classpath() -> str:
    if find_java() is None:
        pytest.skip("java is needed for the Kafka Streams topology")
    return ensure_topology_classpath(os.environ.get(VERSION_ENV, "").strip() or DEFAULT_KAFKA_VERSION)


@dataclass(frozen=True)
class Setup:
    orders: str
    counts: str
    secret: str
    endpoint: TokenEndpoint
    cafile: Path


async def set_up(kafka: SecureKafka, folder: Path, secret_watch: SecretWatch) -> Setup:
    """Fresh topics, a client secret, and a token endpoint only its own CA (``cafile``) trusts."""
    secret = "oauth-" + uuid.uuid4().hex
    secret_watch.add_basic_auth("streams-client", secret)
    endpoint, cafile = private_ca_endpoint(folder, "streams-client", secret, "alice", kafka.signing_key)
    return Setup(await kafka.new_topic(), await kafka.new_topic(), secret, endpoint, cafile)


def topology_yaml(kafka: SecureKafka, setup: Setup, cafile: Path | None, classpath: str, state: Path) -> str:
    ca_line = f'\n    oauth_cafile: "{cafile}"' if cafile else ""
    app_id = f"sec-{uuid.uuid4().hex[:8]}"  # alice's ACLs cover sec-* topics and groups only
    return f"""
kafka:
  bootstrap_servers: "{kafka.broker.sasl_ssl_bootstrap}"
  security:
    protocol: SASL_SSL
    sasl_mechanism: OAUTHBEARER
    oauth_token_endpoint: "{setup.endpoint.url}"
    oauth_client_id: streams-client
    oauth_client_secret: ${{STREAMS_CLIENT_SECRET}}
    ssl_cafile: "{kafka.broker.ca.certfile}"{ca_line}
""" + order_counts_yaml(classpath, app_id, state, setup.orders, setup.counts, "processing_guarantee: at-least-once")


async def test_a_kafka_streams_topology_gets_its_token_from_a_private_ca_endpoint_and_counts(
    secure_kafka: SecureKafka, tmp_path: Path, topology_classpath: str, secret_watch: SecretWatch
) -> None:
    setup = await set_up(secure_kafka, tmp_path, secret_watch)
    orders, counts, secret = setup.orders, setup.counts, setup.secret
    with setup.endpoint as idp:
        yaml = topology_yaml(secure_kafka, setup, setup.cafile, topology_classpath, tmp_path / "state")
        async with running_sidecar(yaml, tmp_path, env={"STREAMS_CLIENT_SECRET": secret}) as running:
            ready = await wait_status(running.client, "counts", lambda s: s["state"] == "running", 120, "RUNNING")
            cmdline = await asyncio.to_thread(Path(f"/proc/{ready['pid']}/cmdline").read_bytes)
            assert secret.encode() not in cmdline
            await produce_keyed(secure_kafka.broker.plaintext_bootstrap, orders, [(k, {"id": k}, None) for k in KEYS])

            async def counted() -> bool:
                records = await read_topic(secure_kafka.broker.plaintext_bootstrap, counts, 1)
                return {key: value["count"] for key, value in records} == dict.fromkeys(KEYS, 1)

            await wait_until(counted, 90, "the counts, written over OAUTHBEARER")
            assert (await status(running.client, "counts"))["restarts"] == 0
        assert idp.url.startswith("https://")
    assert idp.issued >= 1, "the topology's clients got their tokens from the endpoint"


async def test_without_oauth_cafile_the_processors_status_names_the_untrusted_token_endpoint(
    secure_kafka: SecureKafka, tmp_path: Path, topology_classpath: str, secret_watch: SecretWatch
) -> None:
    """Without ``oauth_cafile`` the Java client trusts certifi's bundle, like the sidecar's other clients: the
    private CA is not in it, so no token is issued, the topology exits, and the processor's status says why:
    its ``last_error`` is the stack trace's root cause (the certificate path), not its last line."""
    setup = await set_up(secure_kafka, tmp_path, secret_watch)
    with setup.endpoint as idp:
        yaml = topology_yaml(secure_kafka, setup, None, topology_classpath, tmp_path / "state")
        env = {"STREAMS_CLIENT_SECRET": setup.secret}
        async with running_sidecar(yaml, tmp_path, env=env, wait_for_kafka=0) as running:  # its own token fails too
            state = await wait_status(
                running.client, "counts", lambda s: s["last_exit"] is not None, 120, "the topology's exit"
            )
    error = state["last_error"] or ""
    assert "unable to find valid certification path" in error, error
    assert error.split(": ", 1)[1].startswith("Caused by: "), error
    assert idp.issued == 0
    assert setup.secret not in error + "\n".join(line["text"] for line in state["last_lines"])
