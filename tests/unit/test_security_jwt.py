"""JWT verification: claims, algorithms, key sources (static PEM, JWKS with rotation), scopes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kafka_sidecar._errors import Unauthorized, UpstreamUnavailable
from kafka_sidecar_plugins.security._jwt import JwtConfig, JwtVerifier, KeySource, token_scopes
from kafka_sidecar_testing.leak_scan import SecretWatch

HS256_SECRET = "shared-secret-long-enough-32-bytes!!"


@pytest.fixture(autouse=True)
def _watch_secrets(secret_watch: SecretWatch) -> None:
    """Registers the HS256 key for the whole-run leak check (tests/zz_final); minted tokens are caught as JWTs."""
    secret_watch.add(HS256_SECRET)


JWKS_URL = "https://idp.test/jwks"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**entry, "kid": kid, "alg": "RS256", "use": "sig"}


def token(key: Any, kid: str | None = None, alg: str = "RS256", **claims: Any) -> str:
    body = {"aud": "sidecar", "iss": "https://idp.test/", "exp": int(time.time()) + 300, **claims}
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid} if kid else None)


class FakeIdp:
    """The JWKS endpoint seam: serves whatever key set the test sets, counting requests."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.keys = keys
        self.requests = 0

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.requests += 1
            assert str(request.url) == JWKS_URL
            return httpx.Response(200, json={"keys": self.keys})

        return httpx.MockTransport(handle)


KEY = rsa_key()
CONFIG = JwtConfig(jwks_url=JWKS_URL, audience="sidecar", issuer="https://idp.test/", jwks_min_refresh_s=0)


def verifier(idp: FakeIdp, config: JwtConfig = CONFIG) -> JwtVerifier:
    return JwtVerifier(config, KeySource(config, transport=idp.transport()))


@pytest.mark.asyncio
async def test_valid_token_gives_claims_and_jwks_is_cached() -> None:
    idp = FakeIdp([jwk(KEY, "k1")])
    v = verifier(idp)
    claims = await v.verify(token(KEY, "k1", scope="kafka:w kafka:r", sub="svc"))
    assert claims["sub"] == "svc"
    assert token_scopes(claims) == {"kafka:w", "kafka:r"}
    await v.verify(token(KEY, "k1"))
    assert idp.requests == 1


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "https://evil.test/"}, "issuer"),
    ],
)
async def test_bad_claims_are_named(claims: dict[str, Any], reason: str) -> None:
    bad = token(KEY, "k1", **claims)
    with pytest.raises(Unauthorized) as caught:
        await verifier(FakeIdp([jwk(KEY, "k1")])).verify(bad)
    assert reason in caught.value.detail.lower()
    assert bad not in caught.value.detail


@pytest.mark.asyncio
async def test_token_signed_by_another_key_is_refused() -> None:
    forged = token(rsa_key(), "k1")
    with pytest.raises(Unauthorized, match="signature"):
        await verifier(FakeIdp([jwk(KEY, "k1")])).verify(forged)


@pytest.mark.asyncio
async def test_symmetric_and_none_algorithms_are_refused() -> None:
    idp = FakeIdp([jwk(KEY, "k1")])
    hs = jwt.encode({"aud": "sidecar", "exp": int(time.time()) + 60}, HS256_SECRET, "HS256")
    with pytest.raises(Unauthorized, match="algorithm"):
        await verifier(idp).verify(hs)
    unsigned = jwt.encode({"aud": "sidecar"}, None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(Unauthorized, match="algorithm"):
        await verifier(idp).verify(unsigned)
    with pytest.raises(ValueError, match="asymmetric"):
        JwtConfig(jwks_url=JWKS_URL, algorithms=("HS256",))


@pytest.mark.asyncio
async def test_rotated_key_is_fetched_when_an_unknown_kid_appears() -> None:
    idp = FakeIdp([jwk(KEY, "k1")])
    v = verifier(idp)
    await v.verify(token(KEY, "k1"))
    new_key = rsa_key()
    idp.keys = [jwk(KEY, "k1"), jwk(new_key, "k2")]
    claims = await v.verify(token(new_key, "k2", sub="rotated"))
    assert claims["sub"] == "rotated"
    assert idp.requests == 2


@pytest.mark.asyncio
async def test_jwks_outage_is_a_clear_503() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    v = JwtVerifier(CONFIG, KeySource(CONFIG, transport=httpx.MockTransport(down)))
    with pytest.raises(UpstreamUnavailable, match="JWKS"):
        await v.verify(token(KEY, "k1"))


@pytest.mark.asyncio
async def test_static_pem_keys(tmp_path: Path) -> None:
    pem = tmp_path / "issuer.pem"
    pem.write_bytes(
        KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    config = JwtConfig(public_key_files=(str(pem),), audience="sidecar")
    v = JwtVerifier(config, KeySource(config))
    assert (await v.verify(token(KEY, scp=["kafka:r"])))["scp"] == ["kafka:r"]
    with pytest.raises(Unauthorized):
        await v.verify(token(rsa_key()))


def test_route_scope_keys_are_checked() -> None:
    with pytest.raises(ValueError, match="route_scopes"):
        JwtConfig(jwks_url=JWKS_URL, route_scopes={"/producers": ("kafka:w",)})
