"""Throw-away certificates for tests: a CA, a server certificate for 127.0.0.1/localhost, client certs.

Everything is generated fresh with the ``cryptography`` package into a directory the test owns;
nothing is downloaded or committed. Keys are unencrypted PKCS#8 PEM (what Kafka's ``PEM`` keystore
type and Python's ``ssl`` module both read).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertificateAuthority", "IssuedCert", "make_ca"]

_LIFETIME = datetime.timedelta(days=2)


@dataclass(frozen=True)
class IssuedCert:
    certfile: Path
    keyfile: Path
    bundle: Path
    """Key followed by the certificate chain in one file (Kafka's PEM keystore layout)."""


@dataclass(frozen=True)
class CertificateAuthority:
    name: str
    certfile: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def issue(
        self,
        directory: Path,
        common_name: str,
        *,
        hosts: tuple[str, ...] = (),
        server: bool = True,
        client: bool = False,
    ) -> IssuedCert:
        """A leaf certificate signed by this CA; ``hosts`` become DNS/IP subject alternative names."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
            [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _LIFETIME)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        )
        if hosts:
            builder = builder.add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        stem = common_name.replace(" ", "-")
        certfile, keyfile, bundle = (directory / f"{stem}.crt", directory / f"{stem}.key", directory / f"{stem}.pem")
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        key_pem = _key_pem(key)
        certfile.write_bytes(cert_pem)
        keyfile.write_bytes(key_pem)
        keyfile.chmod(0o600)
        bundle.write_bytes(key_pem + cert_pem)
        bundle.chmod(0o600)
        return IssuedCert(certfile, keyfile, bundle)


def make_ca(directory: Path, name: str) -> CertificateAuthority:
    """A self-signed CA; its certificate is written to ``directory/<name>.crt``."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    certfile = directory / f"{name}.crt"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return CertificateAuthority(name, certfile, key, cert)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
