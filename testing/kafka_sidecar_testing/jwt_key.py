"""An RSA key that signs test JWTs (RS256), published as a JWKS file the secured broker validates against.

Kafka's Java clients refuse unsecured (``alg: none``) tokens: they need three non-empty JWT sections, while
Kafka's unsecured broker-side validator needs the signature empty. So the secured test broker validates
signed tokens (``OAuthBearerValidatorCallbackHandler`` with a ``file:`` JWKS URL) and the test token
endpoint signs them with this key: every client (aiokafka, librdkafka, Kafka's Java client) then gets
the kind of token a real identity provider issues.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = ["SigningKey"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class SigningKey:
    """A fresh 2048-bit RSA key with a key id; :meth:`write_jwks` publishes its public half. Its tokens name
    ``issuer`` and ``audience`` in their ``iss`` and ``aud`` claims (a broker validating signed tokens insists
    on both)."""

    def __init__(
        self, key_id: str = "kafka-sidecar-test", issuer: str = "kafka-sidecar-test-idp", audience: str = "kafka"
    ) -> None:
        self.key_id = key_id
        self.issuer = issuer
        self.audience = audience
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, object]:
        numbers = self._key.public_key().public_numbers()
        key = {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.key_id, "n": _uint(numbers.n)}
        return {"keys": [key | {"e": _uint(numbers.e)}]}

    def write_jwks(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.jwks()), encoding="utf-8")
        return path

    def token(self, subject: str, lifetime_s: int, scope: str = "") -> str:
        """A signed JWT for ``subject`` (the Kafka principal), valid for ``lifetime_s`` from now."""
        now = int(time.time())
        header = _b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": self.key_id}).encode())
        claims: dict[str, object] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.audience,
            "iat": now,
            "exp": now + lifetime_s,
        }
        if scope:  # Kafka's validators refuse an empty scope claim, not an absent one
            claims["scope"] = scope
        signed = f"{header}.{_b64(json.dumps(claims).encode())}"
        signature = self._key.sign(signed.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signed}.{_b64(signature)}"
