"""The OAUTHBEARER token provider: client-credentials request, caching, refresh before expiry, errors."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs

import httpx
import pytest

from kafka_sidecar._errors import UpstreamUnavailable
from kafka_sidecar._kafka.oauth import ClientCredentialsTokenProvider
from kafka_sidecar_testing.leak_scan import SecretWatch


@pytest.fixture(autouse=True)
def _watch_secrets(secret_watch: SecretWatch) -> None:
    """Registers the OAuth client secrets (and their basic-auth form) for the whole-run leak check (tests/zz_final)."""
    for secret in ("first-secret", "rotated-secret", "the-secret-value"):
        secret_watch.add_basic_auth("svc", secret)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Idp:
    """The token endpoint seam: checks the client-credentials request, issues numbered tokens."""

    def __init__(self, status: int = 200, body: dict[str, object] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.status = status
        self.body = body

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            if self.body is not None or self.status != 200:
                return httpx.Response(self.status, json=self.body or {})
            return httpx.Response(200, json={"access_token": f"tok-{len(self.requests)}", "expires_in": 300})

        return httpx.MockTransport(handle)


def provider(idp: Idp, clock: Clock, secret: list[str]) -> ClientCredentialsTokenProvider:
    return ClientCredentialsTokenProvider(
        endpoint="https://idp.test/token",
        client_id="svc",
        secret=lambda: secret[0],
        scope="kafka",
        refresh_margin_s=60,
        transport=idp.transport(),
        clock=clock,
    )


@pytest.mark.asyncio
async def test_token_is_fetched_cached_and_refreshed_before_expiry() -> None:
    idp, clock, secret = Idp(), Clock(), ["first-secret"]
    p = provider(idp, clock, secret)
    assert await p.token() == "tok-1"
    request = idp.requests[0]
    assert parse_qs(request.content.decode()) == {"grant_type": ["client_credentials"], "scope": ["kafka"]}
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"svc:first-secret").decode()
    clock.now += 200  # 300 s token, 60 s margin: still fresh
    assert await p.token() == "tok-1"
    secret[0] = "rotated-secret"
    clock.now += 50  # 250 s old: inside the margin, so a new token is fetched with the current secret
    assert await p.token() == "tok-2"
    assert idp.requests[1].headers["authorization"].endswith(base64.b64encode(b"svc:rotated-secret").decode())
    assert p.fetches == 2


@pytest.mark.asyncio
async def test_refused_client_is_named_without_the_secret() -> None:
    idp = Idp(401, {"error": "invalid_client", "error_description": "bad client credentials"})
    with pytest.raises(UpstreamUnavailable) as caught:
        await provider(idp, Clock(), ["the-secret-value"]).token()
    detail = caught.value.detail
    assert "refused client 'svc'" in detail
    assert "401" in detail
    assert "bad client credentials" in detail
    assert "the-secret-value" not in detail


@pytest.mark.asyncio
async def test_answer_without_token_and_unreachable_endpoint_are_errors() -> None:
    with pytest.raises(UpstreamUnavailable, match="access_token"):
        await provider(Idp(200, {"token_type": "Bearer"}), Clock(), ["s"]).token()

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    unreachable = ClientCredentialsTokenProvider(
        endpoint="https://idp.test/token", client_id="svc", secret=lambda: "s", transport=httpx.MockTransport(down)
    )
    with pytest.raises(UpstreamUnavailable, match="cannot be reached"):
        await unreachable.token()
