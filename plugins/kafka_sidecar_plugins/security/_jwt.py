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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt

from kafka_sidecar.plugin import Unauthorized, UpstreamUnavailable
from kafka_sidecar_plugins.security._jwt_config import ASYMMETRIC, JwtConfig, token_scopes

__all__ = ["ASYMMETRIC", "JwtConfig", "JwtVerifier", "KeySource", "token_scopes"]


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


def _reason(exc: jwt.PyJWTError | None) -> str:
    if exc is None:
        return "signature verification failed"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "signature verification failed (not signed by a trusted key)"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
