"""SASL/OAUTHBEARER: an aiokafka token provider using the OAuth 2 client-credentials grant.

aiokafka asks :meth:`ClientCredentialsTokenProvider.token` for a token each time a connection
authenticates. The token is cached and fetched again ``refresh_margin_s`` before it expires (or at
half its lifetime when that is shorter), so reconnects after expiry always present a fresh one.
The client secret is read through a callable each fetch, so a rotated secret file is picked up.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx
from aiokafka.abc import AbstractTokenProvider

from kafka_sidecar._errors import UpstreamUnavailable


class ClientCredentialsTokenProvider(AbstractTokenProvider):  # type: ignore[misc]
    """Fetches and caches an access token from an OAuth 2 token endpoint."""

    def __init__(
        self,
        *,
        endpoint: str,
        client_id: str,
        secret: Callable[[], str],
        scope: str | None = None,
        cafile: str | None = None,
        refresh_margin_s: float = 60.0,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self.client_id = client_id
        self._secret = secret
        self._scope = scope
        self._cafile = cafile
        self._margin = refresh_margin_s
        self._timeout = timeout_s
        self._transport = transport
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self.fetches = 0
        """How many tokens were fetched (for tests and metrics)."""

    async def token(self) -> str:
        async with self._lock:
            if self._token is not None and self._clock() < self._refresh_at:
                return self._token
            token, lifetime = await self._fetch()
            now = self._clock()
            self._token = token
            self._refresh_at = now + max(0.0, lifetime - min(self._margin, lifetime / 2))
            return token

    async def _fetch(self) -> tuple[str, float]:
        data = {"grant_type": "client_credentials"}
        if self._scope:
            data["scope"] = self._scope
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=self._cafile) if self._cafile else True
        where = f"OAuth token endpoint {self.endpoint}"
        try:
            async with httpx.AsyncClient(transport=self._transport, verify=verify, timeout=self._timeout) as client:
                response = await client.post(
                    self.endpoint,
                    data=data,
                    auth=httpx.BasicAuth(self.client_id, self._secret()),
                    headers={"Accept": "application/json"},
                )
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"{where} cannot be reached: {type(exc).__name__}: {exc}") from exc
        body = _json(response)
        if response.status_code != 200:
            reason = body.get("error_description") or body.get("error") or response.reason_phrase
            raise UpstreamUnavailable(
                f"{where} refused client {self.client_id!r}: HTTP {response.status_code} {reason}"
            )
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise UpstreamUnavailable(f"{where} answered without an access_token")
        lifetime = body.get("expires_in", 3600)
        if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
            lifetime = 3600
        self.fetches += 1
        return token, float(lifetime)

    def extensions(self) -> dict[str, str]:
        return {}


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        parsed = response.json()
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
