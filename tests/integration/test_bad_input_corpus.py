"""Bad input against a real sidecar process (the shipped chain) and a real broker: always a 4xx problem
naming the field, never a 500, and nothing written (the topic's end offset does not move)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_sidecar_testing.process import SidecarProcess
from kafka_sidecar_testing.pytest_plugin import TopicFactory

pytestmark = [pytest.mark.kafka]

SHIPPED = Path(__file__).resolve().parents[2] / "chains.yml"
JSON = "application/json"


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Iterator[SidecarProcess]:
    shipped = SHIPPED.read_text(encoding="utf-8")
    config = shipped.replace("  shutdown_timeout_s: 20\n", "  shutdown_timeout_s: 5\n  body_read_timeout_s: 1\n", 1)
    assert config != shipped
    with SidecarProcess(
        config, tmp_path_factory.mktemp("bad-input"), {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    ) as sc:
        yield sc


@pytest.fixture(scope="module")
def topic(kafka_bootstrap: str) -> str:
    return TopicFactory(kafka_bootstrap)(partitions=1, prefix="bad-input")


def end_offset(bootstrap: str, topic: str) -> int:
    async def read() -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await consumer.start()
        try:
            ends = await consumer.end_offsets([TopicPartition(topic, 0)])
        finally:
            await consumer.stop()
        return int(ends[TopicPartition(topic, 0)])

    return asyncio.run(read())


@dataclass(frozen=True)
class Case:
    body: bytes
    content_type: str | None = JSON
    field: str | None = None
    status: int | None = None


def nested(depth: int) -> bytes:
    return b'{"records":[{"value":' + b"[" * depth + b"]" * depth + b"}]}"


CASES = {
    "deep nesting past the parser": Case(nested(200_000), field="body"),
    "nesting just past the parser's depth": Case(nested(1_000), field="body"),
    "lone surrogate in a header value": Case(
        rb'{"records":[{"value":1,"headers":{"h":"\ud800"}}]}', field="records[0].headers.h"
    ),
    "lone surrogate in a header name": Case(
        rb'{"records":[{"value":1,"headers":{"\udc00":"v"}}]}', field="records[0].headers.\\udc00"
    ),
    "lone surrogate in correlationId": Case(
        rb'{"records":[{"value":1,"correlationId":"a\udfff"}]}', field="records[0].correlationId"
    ),
    "lone surrogate in a string-format value": Case(
        rb'{"valueFormat":"string","records":[{"value":"x\ud800"}]}', field="records[0].value"
    ),
    "number too large for a double": Case(b'{"records":[{"value":1e400}]}', field="records[0].value"),
    "integer with 5000 digits": Case(b'{"records":[{"value":' + b"9" * 5000 + b"}]}", field="body"),
    "NaN": Case(b'{"records":[{"value":NaN}]}', field="body"),
    "partition 10**30": Case(b'{"records":[{"value":1,"partition":' + b"1" + b"0" * 30 + b"}]}"),
    "invalid base64 in a binary value": Case(
        b'{"records":[{"value":"!!not base64"}]}', "application/vnd.kafka.binary.v2+json", field="records[0].value"
    ),
    "invalid base64 in a v3 header": Case(
        b'{"records":[{"value":1,"headers":[{"name":"h","value":"%%"}]}]}', field="records[0].headers[0].value"
    ),
    "missing content type": Case(b'{"records":[{"value":1}]}', None, field="Content-Type", status=415),
    "text/plain": Case(b'{"records":[{"value":1}]}', "text/plain", field="Content-Type", status=415),
    "latin-1 charset": Case(
        b'{"records":[{"value":1}]}', "application/json; charset=iso-8859-1", field="Content-Type", status=415
    ),
    "not UTF-8": Case(b'{"records":[{"value":"\xff\xfe"}]}', field="body"),
    "duplicate keys": Case(b'{"records":[{"value":1}],"records":[{"value":2}]}', field="records", status=400),
    "duplicate keys in a record": Case(b'{"records":[{"value":1,"value":2}]}', field="value", status=400),
    "not JSON": Case(b'{"records":[', field="body"),
}
ITEM_3_CASES = {
    "timestamp 2**63 next to a good record": Case(
        b'{"records":[{"value":1},{"value":2,"timestamp":9223372036854775808}]}', field="records[1].timestamp"
    ),
}


def check_problem(response: httpx.Response, case: Case) -> None:
    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    if case.status is not None:
        assert response.status_code == case.status, response.text[:500]
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == response.status_code
    if case.field is not None:
        assert body.get("field") == case.field, body


def post(sidecar: SidecarProcess, topic: str, case: Case, headers: dict[str, str] | None = None) -> httpx.Response:
    sent = dict(headers or {})
    if case.content_type is not None:
        sent["content-type"] = case.content_type
    return httpx.post(f"{sidecar.base_url}/producers/{topic}", content=case.body, headers=sent, timeout=30)


@pytest.mark.parametrize(
    "name",
    [*CASES, *ITEM_3_CASES],
)
def test_bad_body_is_a_4xx_naming_the_field_and_writes_nothing(
    sidecar: SidecarProcess, topic: str, kafka_bootstrap: str, name: str
) -> None:
    case = CASES.get(name) or ITEM_3_CASES[name]
    before = end_offset(kafka_bootstrap, topic)
    check_problem(post(sidecar, topic, case), case)
    assert end_offset(kafka_bootstrap, topic) == before, "a bad request wrote records"


def test_a_good_request_still_writes(sidecar: SidecarProcess, topic: str, kafka_bootstrap: str) -> None:
    """The control: the same sidecar and topic take a good batch, so 'nothing written' above means something."""
    before = end_offset(kafka_bootstrap, topic)
    response = httpx.post(f"{sidecar.base_url}/producers/{topic}", json={"records": [{"value": 1}]}, timeout=30)
    assert response.status_code == 200, response.text
    assert end_offset(kafka_bootstrap, topic) == before + 1


def test_huge_headers_are_413(sidecar: SidecarProcess, topic: str) -> None:
    case = Case(b'{"records":[{"value":1}]}', field="headers", status=413)
    check_problem(post(sidecar, topic, case, {"x-big": "a" * 20_000}), case)


def raw_exchange(sidecar: SidecarProcess, request: bytes, timeout: float = 10.0) -> bytes:
    """Send ``request`` bytes as they are and read until the server closes or the answer is complete."""
    with socket.create_connection(("127.0.0.1", sidecar.port), timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            received += chunk
            head, _, body = received.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                None,
            )
            if length is not None and len(body) >= length:
                break
    return received


def test_content_length_with_transfer_encoding_is_400(
    sidecar: SidecarProcess, topic: str, kafka_bootstrap: str
) -> None:
    before = end_offset(kafka_bootstrap, topic)
    body = b'{"records":[{"value":1}]}'
    request = (
        (
            f"POST /producers/{topic} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
        + f"{len(body):x}\r\n".encode()
        + body
        + b"\r\n0\r\n\r\n"
    )
    answer = raw_exchange(sidecar, request)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert end_offset(kafka_bootstrap, topic) == before


def test_a_stalled_body_is_408_and_holds_no_slot(sidecar: SidecarProcess, topic: str) -> None:
    head = (
        f"POST /producers/{topic} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    ).encode()
    started = time.monotonic()
    answer = raw_exchange(sidecar, head + b'{"records"')
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b'"field":"body"' in answer
    assert time.monotonic() - started < 8, "body_read_timeout_s is 1"


def test_a_client_leaving_mid_body_is_one_quiet_line(sidecar: SidecarProcess, topic: str) -> None:
    log_before = len(sidecar.log())
    head = (
        f"POST /producers/{topic} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", sidecar.port), timeout=5) as sock:
            sock.sendall(head + b'{"records":[')
    # The sidecar still serves, and logged no error or traceback for the departed clients.
    assert httpx.get(f"{sidecar.base_url}/health/live", timeout=10).status_code == 200
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the disconnects are handled asynchronously: wait for a quiet log
        time.sleep(0.2)  # polling a condition with a deadline
        added = sidecar.log()[log_before:]
        assert "Traceback" not in added, added
        assert '"level":"ERROR"' not in added, added
        assert " ERROR " not in added, added
    assert json.loads(httpx.get(f"{sidecar.base_url}/health/live", timeout=10).text) == {"status": "UP"}
