"""Certificates made in the test: a CSMS CA, the server's certificate, station client certificates
(good, expired, for another station, from a CA the server does not trust), written as PEM files.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chargegrid.entrypoints.settings import Settings

ORG = "Chargegrid Test CPO"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


def _name(cn: str, org: str = ORG) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        ]
    )


class TestCa:
    """A self-signed root that issues leaf certificates into ``folder``."""

    __test__ = False  # not a pytest class

    def __init__(self, folder: Path, name: str = "Test CSMS Root") -> None:
        self.folder = folder
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
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
            .sign(self.key, hashes.SHA256())
        )
        self.pem = folder / f"{name.replace(' ', '-').lower()}.pem"
        self.pem.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        file_stem: str,
        cn: str,
        *,
        org: str = ORG,
        server: bool = False,
        expired: bool = False,
        rsa_key: bool = False,
    ) -> Issued:
        key: PrivateKey = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if rsa_key
            else ec.generate_private_key(ec.SECP256R1())
        )
        now = datetime.now(UTC)
        start, end = (
            (now - timedelta(days=30), now - timedelta(days=1))
            if expired
            else (now - timedelta(hours=1), now + timedelta(days=30))
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn, org))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        cert_path = self.folder / f"{file_stem}.pem"
        key_path = self.folder / f"{file_stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return Issued(cert_path, key_path)


def station_context(
    server_ca: Path,
    client: Issued | None = None,
    *,
    tls_version: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    """What a station's TLS stack does: trust the CSMS root, optionally present a certificate."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=server_ca)
    if tls_version is not None:
        ctx.minimum_version = ctx.maximum_version = tls_version
    if client is not None:
        ctx.load_cert_chain(client.cert, client.key)
    return ctx


def csr_for(
    cn: str, *, org: str = ORG, key: PrivateKey | None = None, digest: Any = None
) -> tuple[str, PrivateKey]:
    """What a station makes to ask for a certificate: a PEM CSR and its key."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name(attributes))
        # digest=False: keys that sign without one (Ed25519)
        .sign(key, None if digest is False else digest or hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode(), key


def write_key_and_chain(folder: Path, stem: str, key: PrivateKey, chain_pem: str) -> Issued:
    """A station's key and the chain the CSMS sent it, as files TLS can load."""
    cert = folder / f"{stem}.pem"
    key_path = folder / f"{stem}.key"
    cert.write_text(chain_pem)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Issued(cert, key_path)


def tls_node_settings(db: str, server: Issued, client_ca: Path, **more: Any) -> Settings:
    """A loopback node's settings with its TLS port on: ports picked by the system, stations
    accepted, no pings; ``more`` changes the rest."""
    return Settings(
        host="127.0.0.1",
        ocpp_port=0,
        api_port=0,
        tls_port=0,
        db=db,
        unknown_stations="accept",
        ping_interval=0,
        tls_cert=str(server.cert),
        tls_key=str(server.key),
        tls_client_ca=str(client_ca),
        **more,
    )
