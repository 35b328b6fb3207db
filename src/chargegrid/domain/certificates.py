"""Certificate signing requests from stations, checked before they are signed.

OCPP 2.0.1 A02/A03 (SignCertificate with ``certificateType`` ChargingStationCertificate or
V2GCertificate) and the OCPP 1.6 security whitepaper section 3 (SignCertificate, always the
Charge Point certificate). The rules a CSR must meet, each refusal naming the one it broke:

1. It is a PEM (or bare base64 DER) PKCS#10 request whose self-signature verifies.
2. Its key is RSA of 2048 bits or more, or EC on P-256 or P-384 (2.0.1 A00: RSA >= 2048 or
   ECC >= 224 bits; the whitepaper the same). A V2G certificate's key is EC P-256 (ISO 15118-2
   7.9.5: secp256r1 only).
3. Its signature uses SHA-256 or stronger.
4. Its subject has one commonName (and at most one organizationName): for the station's own
   certificate, the station id (the TLS check of security profile 3 reads it there,
   :mod:`.security`); for a V2G (SECC) certificate, any non-empty name (the SECC id the station
   chose). The CA issues station certificates to the subject ``CN=<station id>, O=<that O>``,
   not to whatever else the CSR's subject holds.
5. When the CPO's organization name is configured, the subject's organizationName is it.

Pure functions over the ``cryptography`` package's parsed objects: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import enum
from dataclasses import dataclass
from datetime import datetime

import msgspec
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

#: The DataTransfer vendorId of Plug & Charge with OCPP 1.6 (OCA application note, 2020).
PNC16_VENDOR_ID = "org.openchargealliance.iso15118pnc"


class CertificateUse(enum.Enum):
    """What a station's certificate is for (2.0.1 CertificateSigningUseEnumType)."""

    CHARGING_STATION = "ChargingStationCertificate"
    V2G = "V2GCertificate"


class IssuedCertificate(msgspec.Struct, kw_only=True):
    """A certificate chargegrid's CA issued to a station, and what became of it.

    ``status``: ``issued`` (signed, being sent), ``installed`` (the station answered
    CertificateSigned Accepted), ``rejected`` (it answered Rejected), ``undelivered`` (it could
    not be sent: offline, no answer, a CALLERROR)."""

    station_id: str
    use: CertificateUse
    serial: str  # hex, as OpenSSL prints it
    subject: str  # RFC 4514
    not_before: datetime
    not_after: datetime
    chain_pem: str  # what CertificateSigned carries: the leaf, then any sub-CAs
    issued_at: datetime
    status: str = "issued"
    id: int | None = None


class CsrRefused(ValueError):
    """The CSR breaks a rule; the message says which."""


@dataclass(frozen=True)
class CheckedCsr:
    csr: x509.CertificateSigningRequest
    common_name: str
    organization: str | None
    use: CertificateUse


_STRONG_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
_CURVES = {"secp256r1", "secp384r1"}


def load_csr(text: str) -> x509.CertificateSigningRequest:
    """A CSR from PEM, or from bare base64 DER (some stations leave the armour out)."""
    data = text.strip()
    try:
        if data.startswith("-----BEGIN"):
            return x509.load_pem_x509_csr(data.encode())
        return x509.load_der_x509_csr(base64.b64decode("".join(data.split()), validate=True))
    except (ValueError, binascii.Error, UnsupportedAlgorithm) as exc:
        raise CsrRefused(f"not a PKCS#10 certificate signing request: {exc}") from exc


def check_csr(
    text: str, station_id: str, use: CertificateUse, organization: str | None = None
) -> CheckedCsr:
    """The CSR ``text`` of ``station_id``, checked against the rules above."""
    csr = load_csr(text)
    try:
        signed = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CsrRefused(f"the CSR's signature cannot be checked: {exc}") from exc
    if not signed:
        raise CsrRefused("the CSR's signature does not verify")
    _check_key(csr, use)
    algorithm = csr.signature_hash_algorithm
    if not isinstance(algorithm, _STRONG_HASHES):
        name = algorithm.name if algorithm is not None else "none"
        raise CsrRefused(f"the CSR is signed with {name}; SHA-256 or stronger is required")
    for oid, what in ((NameOID.COMMON_NAME, "commonName"), (NameOID.ORGANIZATION_NAME, "O")):
        if len(csr.subject.get_attributes_for_oid(oid)) > 1:
            raise CsrRefused(f"the CSR's subject has more than one {what}")
    common_name = _attribute(csr.subject, NameOID.COMMON_NAME)
    org = _attribute(csr.subject, NameOID.ORGANIZATION_NAME)
    if not common_name:
        raise CsrRefused("the CSR's subject has no commonName")
    if use is CertificateUse.CHARGING_STATION and common_name != station_id:
        raise CsrRefused(f"the CSR's commonName is {common_name!r}, not the station id")
    if organization is not None and org != organization:
        raise CsrRefused(f"the CSR's organizationName is {org!r}, not {organization!r}")
    return CheckedCsr(csr, common_name, org, use)


def _check_key(csr: x509.CertificateSigningRequest, use: CertificateUse) -> None:
    try:
        key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CsrRefused(f"the CSR's key cannot be read: {exc}") from exc
    if isinstance(key, rsa.RSAPublicKey):
        if use is CertificateUse.V2G:
            raise CsrRefused("a V2G certificate's key must be EC P-256 (ISO 15118-2), not RSA")
        if key.key_size < 2048:
            raise CsrRefused(f"RSA key of {key.key_size} bits; 2048 or more is required")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        curve = key.curve.name
        allowed = {"secp256r1"} if use is CertificateUse.V2G else _CURVES
        if curve not in allowed:
            raise CsrRefused(f"EC key on {curve}; {' or '.join(sorted(allowed))} is required")
    else:
        raise CsrRefused(f"{type(key).__name__} keys are not allowed; RSA or EC is required")


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    found = name.get_attributes_for_oid(oid)
    if not found:
        return None
    value = found[0].value
    return value.decode() if isinstance(value, bytes) else value
