"""The ``jwt`` middleware's settings and claim helpers: importable without PyJWT (the ``[jwt]`` extra)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class JwtConfig:
    jwks_url: str | None = field(default=None, metadata={"doc": "JWKS URL of the token issuer."})
    jwks_cafile: str | None = field(default=None, metadata={"doc": "CA bundle (PEM) for the JWKS URL.", "file": True})
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
