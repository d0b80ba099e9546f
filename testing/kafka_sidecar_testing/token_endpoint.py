"""A real OAuth 2 token endpoint for tests (client-credentials grant), served on 127.0.0.1.

It issues JWTs with ``sub`` set to the configured principal, signed (RS256) with ``signer``: the key whose
JWKS the secured test broker validates against (:mod:`kafka_sidecar_testing.jwt_key`). Wrong client
credentials get the RFC 6749 ``401 invalid_client`` answer. Runs an ``http.server`` in a daemon thread; use as a context
manager. With ``tls`` (a certificate from :mod:`kafka_sidecar_testing.pki`) it answers over HTTPS only.
"""

from __future__ import annotations

import base64
import binascii
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import parse_qs

from kafka_sidecar_testing.jwt_key import SigningKey
from kafka_sidecar_testing.pki import IssuedCert, make_ca

__all__ = ["TokenEndpoint", "private_ca_endpoint"]


class TokenEndpoint:
    def __init__(
        self,
        client_id: str,
        client_secret: str,
        subject: str,
        *,
        signer: SigningKey,
        lifetime_s: int = 3600,
        tls: IssuedCert | None = None,
    ) -> None:
        self.client_id = client_id
        self.tls = tls
        self.signer = signer
        self.client_secret = client_secret
        self.subject = subject
        self.lifetime_s = lifetime_s
        self.issued = 0
        self.refused = 0
        self.scopes: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host!s}:{port}/token"

    def _authorised(self, header: str | None) -> bool:
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return user == self.client_id and password == self.client_secret

    def start(self) -> None:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode("utf-8"))
                if form.get("grant_type") != ["client_credentials"]:
                    self._reply(400, {"error": "unsupported_grant_type"})
                elif not endpoint._authorised(self.headers.get("Authorization")):
                    endpoint.refused += 1
                    self._reply(401, {"error": "invalid_client", "error_description": "client authentication failed"})
                else:
                    endpoint.issued += 1
                    scope = form.get("scope", [""])[0]
                    endpoint.scopes.append(scope)
                    token = endpoint.signer.token(endpoint.subject, endpoint.lifetime_s, scope)
                    self._reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": endpoint.lifetime_s})

            def _reply(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return None  # keep test output (and credentials in URLs, were there any) out of stderr

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.tls.certfile, self.tls.keyfile)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="token-endpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def private_ca_endpoint(
    folder: Path, client_id: str, client_secret: str, subject: str, signer: SigningKey
) -> tuple[TokenEndpoint, Path]:
    """A token endpoint (HTTPS) whose certificate only its own new CA trusts (not the broker's, not the
    system's), and that CA's certificate file."""
    ca = make_ca(folder, "identity-provider-ca")
    cert = ca.issue(folder, "identity-provider", hosts=("127.0.0.1",))
    return TokenEndpoint(client_id, client_secret, subject, tls=cert, signer=signer), ca.certfile
