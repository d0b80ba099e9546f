"""JWT verification for the ``jwt`` middleware: keys (static PEM files or a JWKS URL), claims, scopes.

Only asymmetric algorithms are accepted (no ``none``, no shared-secret HS*), so a leaked verification
key cannot mint tokens. A JWKS is cached for ``jwks_cache_s`` and fetched again at once (at most every
``jwks_min_refresh_s``) when a token names a key id the cached set lacks: keys rotate without restarts.
Error messages name what is wrong (expired, audience, issuer, signature) and never contain the token.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt

from kafka_sidecar.plugin import Unauthorized, UpstreamUnavailable

ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class JwtConfig:
    jwks_url: str | None = field(default=None, metadata={"doc": "JWKS URL of the token issuer."})
    jwks_cafile: str | None = field(default=None, metadata={"doc": "CA bundle (PEM) for the JWKS URL."})
    public_key_files: tuple[str, ...] = field(
        default=(), metadata={"doc": "Static PEM public keys (instead of, or besides, jwks_url)."}
    )
    audience: str | None = field(default=None, metadata={"doc": "Required 'aud' claim."})
    issuer: str | None = field(default=None, metadata={"doc": "Required 'iss' claim."})
    algorithms: tuple[str, ...] = field(
        default=("RS256", "ES256", "PS256", "EdDSA"), metadata={"doc": "Accepted signature algorithms."}
    )
    required_scopes: tuple[str, ...] = field(
        default=(), metadata={"doc": "Scopes every request through this handler needs."}
    )
    route_scopes: Mapping[str, tuple[str, ...]] = field(
        default_factory=dict,
        metadata={"doc": "Scopes per route, key 'METHOD /path/{param}', e.g. 'POST /producers/{topic}': [kafka:w]."},
    )
    leeway_s: float = field(default=30.0, metadata={"doc": "Clock skew allowed for exp/nbf/iat."})
    jwks_cache_s: float = field(default=300.0, metadata={"doc": "How long a fetched JWKS is used."})
    jwks_min_refresh_s: float = field(default=30.0, metadata={"doc": "Fastest re-fetch for an unknown key id."})
    jwks_timeout_s: float = field(default=5.0, metadata={"doc": "Timeout of one JWKS request."})

    def __post_init__(self) -> None:
        if not self.jwks_url and not self.public_key_files:
            raise ValueError("set jwks_url or public_key_files")
        if not self.algorithms:
            raise ValueError("algorithms must not be empty")
        unsupported = [a for a in self.algorithms if a not in ASYMMETRIC]
        if unsupported:
            raise ValueError(f"only asymmetric algorithms are allowed, not {unsupported}")
        for key in self.route_scopes:
            method, _, path = key.partition(" ")
            if not method.isalpha() or not path.startswith("/"):
                raise ValueError(f"route_scopes key {key!r} must look like 'POST /producers/{{topic}}'")


class KeySource:
    """Verification keys by key id: static PEM files and/or a cached JWKS."""

    def __init__(
        self,
        config: JwtConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._transport = transport
        self._clock = clock
        self._static = [Path(p).read_text(encoding="utf-8") for p in config.public_key_files]
        self._jwks: dict[str | None, Any] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def keys_for(self, kid: str | None) -> list[Any]:
        keys: list[Any] = list(self._static)
        if self._config.jwks_url:
            jwks = await self._jwks_with(kid)
            if kid is not None and kid in jwks:
                keys.insert(0, jwks[kid])
            elif kid is None:
                keys += list(jwks.values())
        return keys

    async def _jwks_with(self, kid: str | None) -> dict[str | None, Any]:
        async with self._lock:
            now = self._clock()
            age = None if self._fetched_at is None else now - self._fetched_at
            stale = age is None or age >= self._config.jwks_cache_s
            may_refresh = age is None or age >= self._config.jwks_min_refresh_s
            unknown = kid is not None and kid not in self._jwks and may_refresh
            if stale or unknown:
                self._jwks = await self._fetch()
                self._fetched_at = now
            return self._jwks

    async def _fetch(self) -> dict[str | None, Any]:
        url = self._config.jwks_url
        assert url is not None
        cafile = self._config.jwks_cafile
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=cafile) if cafile else True
        try:
            async with httpx.AsyncClient(
                transport=self._transport, verify=verify, timeout=self._config.jwks_timeout_s
            ) as client:
                response = await client.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            keyset = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            raise UpstreamUnavailable(f"cannot load the JWKS from {url}: {type(exc).__name__}: {exc}") from exc
        self.fetches += 1
        return {key.key_id: key.key for key in keyset.keys}


class JwtVerifier:
    def __init__(self, config: JwtConfig, keys: KeySource) -> None:
        self._config = config
        self._keys = keys

    async def verify(self, token: str) -> dict[str, Any]:
        """The verified claims, or :class:`Unauthorized` saying why the token is refused."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the bearer token is not a JWT: {exc}", field="authorization") from exc
        alg = header.get("alg")
        if alg not in self._config.algorithms:
            raise Unauthorized(f"token algorithm {alg!r} is not accepted", field="authorization")
        kid = header.get("kid")
        keys = await self._keys.keys_for(kid if isinstance(kid, str) else None)
        if not keys:
            raise Unauthorized(f"no verification key for key id {kid!r}", field="authorization")
        required = ["exp", *(["aud"] if self._config.audience else []), *(["iss"] if self._config.issuer else [])]
        last: jwt.PyJWTError | None = None
        for key in keys:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key,
                    algorithms=[alg],
                    audience=self._config.audience,
                    issuer=self._config.issuer,
                    leeway=self._config.leeway_s,
                    options={"require": required},
                )
            except jwt.InvalidSignatureError as exc:
                last = exc
                continue
            except jwt.PyJWTError as exc:
                raise Unauthorized(f"token refused: {_reason(exc)}", field="authorization") from exc
            return claims
        raise Unauthorized(f"token refused: {_reason(last)}", field="authorization")


def token_scopes(claims: Mapping[str, Any]) -> set[str]:
    """Scopes from ``scope`` (space-separated string, RFC 8693) or ``scp`` (list or string)."""
    found: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(str(v) for v in value)
    return found


def _reason(exc: jwt.PyJWTError | None) -> str:
    if exc is None:
        return "signature verification failed"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "signature verification failed (not signed by a trusted key)"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
