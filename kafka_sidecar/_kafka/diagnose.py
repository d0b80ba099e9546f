"""Say *why* Kafka cannot be reached: TLS trust, host name, SASL credentials, refused or silent port.

aiokafka reports every bootstrap failure as ``Unable to bootstrap from [...]`` and only logs the
cause. :func:`diagnose_connection` opens one connection per bootstrap server with exactly the
security settings the clients use (:mod:`kafka_sidecar._kafka.options`) and turns what fails into a
sentence that names the cause and the config key to look at. It never includes a secret.
"""

from __future__ import annotations

import asyncio
import ssl

from aiokafka import errors as kafka_errors
from aiokafka.conn import create_conn

from kafka_sidecar._config.model import KafkaConfig, SecuritySettings
from kafka_sidecar._errors import SidecarError
from kafka_sidecar._kafka.options import security_kwargs


def bootstrap_addresses(bootstrap_servers: str) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for item in bootstrap_servers.split(","):
        text = item.strip()
        if not text:
            continue
        host, _, port = text.rpartition(":")
        found.append((host.strip("[]") or text, int(port) if port.isdigit() else 9092))
    return found


async def diagnose_connection(kafka: KafkaConfig, timeout: float) -> str | None:
    """None when some bootstrap server accepts a connection and authenticates us; else the reasons."""
    reasons: list[str] = []
    for host, port in bootstrap_addresses(kafka.bootstrap_servers):
        reason = await _try_one(kafka, host, port, timeout)
        if reason is None:
            return None
        reasons.append(reason)
    return "; ".join(reasons) or "no bootstrap servers configured (kafka.bootstrap_servers)"


async def _try_one(kafka: KafkaConfig, host: str, port: int, timeout: float) -> str | None:
    security = kafka.security
    where = f"{host}:{port} ({security.protocol})"
    try:
        kwargs = security_kwargs(security)
        conn = await asyncio.wait_for(
            create_conn(
                host, port, client_id=f"{kafka.client_id}-diagnose", request_timeout_ms=int(timeout * 1000), **kwargs
            ),
            timeout,
        )
    except ssl.SSLCertVerificationError as exc:
        return f"TLS to {where}: {_verify_reason(exc, security)}"
    except ssl.SSLError as exc:
        return f"TLS handshake with {where} failed: {exc.reason or exc}{_mtls_hint(security)}"
    except kafka_errors.SaslAuthenticationFailed as exc:
        return (
            f"SASL authentication failed at {where}: {_sasl_who(security)} was rejected ({exc}); {_sasl_keys(security)}"
        )
    except kafka_errors.UnsupportedSaslMechanismError as exc:
        return f"{where} does not offer SASL mechanism {security.sasl_mechanism or 'PLAIN'} ({exc})"
    except TimeoutError:
        return f"{where} did not answer within {timeout:g}s (wrong protocol for this port, or a filtered port)"
    except ConnectionRefusedError:
        return f"connection to {where} refused: nothing listens there"
    except SidecarError as exc:
        return f"{where}: {exc.detail}"
    except (OSError, kafka_errors.KafkaError) as exc:
        return f"cannot connect to {where}: {type(exc).__name__}: {exc}{_mtls_hint(security)}"
    conn.close()
    return None


def _verify_reason(exc: ssl.SSLCertVerificationError, security: SecuritySettings) -> str:
    message = exc.verify_message or str(exc)
    if "hostname" in message.lower() or "ip address mismatch" in message.lower():
        return (
            f"the broker certificate does not match the host name ({message}); fix the certificate or "
            "kafka.bootstrap_servers (kafka.security.ssl_check_hostname should stay true)"
        )
    ca = security.ssl_cafile or "the system CA store"
    return (
        f"the broker certificate is not trusted ({message}); it is not signed by a CA in {ca} "
        "(kafka.security.ssl_cafile)"
    )


def _mtls_hint(security: SecuritySettings) -> str:
    if security.ssl_certfile is None:
        return "; if the broker requires client certificates, set kafka.security.ssl_certfile/ssl_keyfile"
    return ""


def _sasl_who(security: SecuritySettings) -> str:
    mechanism = security.sasl_mechanism or "PLAIN"
    if mechanism == "OAUTHBEARER":
        return f"the OAUTHBEARER token of client {security.oauth_client_id!r}"
    return f"user {security.sasl_username!r} ({mechanism})"


def _sasl_keys(security: SecuritySettings) -> str:
    if (security.sasl_mechanism or "PLAIN") == "OAUTHBEARER":
        return "check kafka.security.oauth_client_id/oauth_client_secret and the broker's token validation"
    return "check kafka.security.sasl_username and sasl_password (or sasl_password_file)"
