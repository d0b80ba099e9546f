"""Security plugin: the ``jwt`` middleware for business routes (bearer JWT, audience, issuer, scopes).

Use it in a chain before the terminal::

    handlers:
      auth:
        use: jwt
        config:
          jwks_url: https://idp.example/.well-known/jwks.json
          audience: kafka-sidecar
          issuer: https://idp.example/
          route_scopes:
            "POST /producers/{topic}": [kafka:w]
            "GET /consumers/{group}/records": [kafka:r]
    chains:
      default: [auth]

Verified claims are put on the exchange stash under :data:`JWT_CLAIMS` for later handlers. The token
itself is never logged, stored on the stash, or written anywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from kafka_sidecar.plugin import (
    CheckContext,
    Exchange,
    Forbidden,
    HandlerSpec,
    Next,
    Reply,
    Resources,
    StashKey,
    Unauthorized,
    hookimpl,
)
from kafka_sidecar_plugins.security._jwt_config import JwtConfig, token_scopes

if TYPE_CHECKING:
    from kafka_sidecar_plugins.security._jwt import KeySource

JWT_CLAIMS: StashKey[dict[str, object]] = StashKey("jwt-claims")
"""The verified claims of the caller's token."""


class JwtHandler:
    """Middleware: refuses HTTP requests without a valid bearer JWT carrying the route's scopes."""

    def __init__(self, config: JwtConfig, resources: Resources | None = None, *, keys: KeySource | None = None) -> None:
        from kafka_sidecar_plugins.security._jwt import JwtVerifier, KeySource  # PyJWT: the [jwt] extra

        self._config = config
        self._verifier = JwtVerifier(config, keys or KeySource(config))

    def required_scopes(self, method: str, route: str) -> tuple[str, ...]:
        return self._config.route_scopes.get(f"{method.upper()} {route}", self._config.required_scopes)

    async def __call__(self, exchange: Exchange, call_next: Next) -> Reply:
        if exchange.kind != "http":
            return await call_next(exchange)
        request = exchange.http()
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("this route needs 'Authorization: Bearer <JWT>'", field="authorization")
        claims = await self._verifier.verify(token.strip())
        needed = self.required_scopes(request.method, request.route)
        held = token_scopes(claims)
        missing = [scope for scope in needed if scope not in held]
        if missing:
            raise Forbidden(
                f"the token lacks scope {' '.join(missing)} needed for {request.method} {request.route}", field="scope"
            )
        exchange.stash[JWT_CLAIMS] = claims
        return await call_next(exchange)


def _factory(config: JwtConfig, resources: Resources) -> JwtHandler:
    return JwtHandler(config, resources)


def check_jwt(config: JwtConfig, ctx: CheckContext) -> JwtConfig:
    """The [jwt] extra is installed; key and CA files exist, relative ones taken from the config's folder."""
    ctx.require_extra("jwt", "jwt", "cryptography")  # PyJWT[crypto]
    keys = []
    for index, name in enumerate(config.public_key_files):
        path = ctx.resolve(name)
        if not path.is_file():
            ctx.problem(f"public_key_files.{index}", f"key file {str(path)!r} does not exist")
        keys.append(str(path))
    cafile = None if config.jwks_cafile is None else ctx.resolve(config.jwks_cafile)
    if cafile is not None and not cafile.is_file():
        ctx.problem("jwks_cafile", f"CA file {str(cafile)!r} does not exist")
    return dataclasses.replace(
        config, public_key_files=tuple(keys), jwks_cafile=None if cafile is None else str(cafile)
    )


@hookimpl
def kafka_sidecar_register_handlers(register: Callable[[HandlerSpec[object]], None]) -> None:
    register(
        HandlerSpec(
            "jwt",
            factory=_factory,  # type: ignore[arg-type]
            config_type=JwtConfig,
            kind="middleware",
            check=check_jwt,  # type: ignore[arg-type]
            description="Verify a bearer JWT (JWKS URL or static keys, audience, issuer) and per-route scopes.",
        )
    )
