"""OCSP (RFC 6960) as Plug & Charge uses it through OCPP, sans I/O: requests built from the hash
data a station sends (OCPP 2.0.1 OCSPRequestDataType: C07 Authorize, M06 GetCertificateStatus),
responses read and their signatures checked. The HTTP exchange is the caller's.

Errors: :class:`OcspError` for hash data that is not hex, a response that cannot be read, or
one whose signature does not verify against a signer chargegrid may trust.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

_HEX = re.compile(r"[0-9a-fA-F]+")
_SERIAL = re.compile(r"[0-9a-fA-F]{1,40}")
SKEW = timedelta(minutes=5)
MAX_AGE = timedelta(days=1)

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}


class OcspError(ValueError):
    """Unusable hash data, or an unreadable or unverifiable response; the message says which."""


class OcspSignatureError(OcspError):
    """The response's signature does not verify against a signer chargegrid may trust."""


class CertStatus(enum.Enum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class HashData:
    """OCPP 2.0.1 OCSPRequestDataType / CertificateHashDataType, hex strings as on the wire."""

    hash_algorithm: str  # SHA256, SHA384, SHA512
    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str
    responder_url: str | None = None


@dataclass(frozen=True)
class Answer:
    status: CertStatus
    revoked_at: datetime | None = None


def hash_data(
    cert: x509.Certificate, issuer: x509.Certificate, algorithm: str = "SHA256"
) -> HashData:
    """The hash data of ``cert`` (what a station computes), with the responder of its AIA."""
    digest = _HASHES[algorithm]
    name_hash = hashes.Hash(digest())
    name_hash.update(issuer.subject.public_bytes())
    return HashData(
        algorithm,
        name_hash.finalize().hex(),
        key_hash(issuer, digest),
        f"{cert.serial_number:x}",
        responder_url(cert),
    )


def responder_url(cert: x509.Certificate) -> str | None:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return None
    for access in aia:
        if access.access_method == x509.oid.AuthorityInformationAccessOID.OCSP:
            return str(access.access_location.value)
    return None


def request(data: HashData) -> bytes:
    """The DER OCSP request for the certificate ``data`` names."""
    algorithm = _HASHES.get(data.hash_algorithm.upper())
    if algorithm is None:
        raise OcspError(f"hash algorithm {data.hash_algorithm!r} is not SHA256, SHA384 or SHA512")
    size = algorithm().digest_size
    for name, value, length in (
        ("issuerNameHash", data.issuer_name_hash, size * 2),
        ("issuerKeyHash", data.issuer_key_hash, size * 2),
    ):
        if len(value) != length or not _HEX.fullmatch(value):
            raise OcspError(f"{name} is not {length} hex digits ({data.hash_algorithm})")
    if not _SERIAL.fullmatch(data.serial_number):
        raise OcspError("serialNumber is not 1 to 40 hex digits")
    try:
        built = (
            ocsp.OCSPRequestBuilder()
            .add_certificate_by_hash(
                bytes.fromhex(data.issuer_name_hash),
                bytes.fromhex(data.issuer_key_hash),
                int(data.serial_number, 16),
                algorithm(),
            )
            .build()
        )
    except ValueError as exc:
        raise OcspError(f"no OCSP request can be made of the hash data: {exc}") from exc
    return built.public_bytes(serialization.Encoding.DER)


def answers(der: bytes, data: HashData) -> bool:
    """Whether ``der`` is a successful OCSP response about the certificate of ``data`` (what
    may go back to a station that asked: nothing else a responder URL returned)."""
    try:
        response = ocsp.load_der_ocsp_response(der)
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            return False
        _single(response, data)
    except (ValueError, OcspError):
        return False
    return True


def read(der: bytes, data: HashData, trusted: list[x509.Certificate], now: datetime) -> Answer:
    """The status the response ``der`` gives the certificate of ``data``, once its signature is
    checked: signed by a ``trusted`` certificate whose key hash is the request's issuer key
    hash (the CA itself), or by a responder certificate in the response that such a CA issued
    for OCSP signing (RFC 6960 4.2.2.2); and once it is fresh (3.2: thisUpdate not in the
    future, nextUpdate not past; without nextUpdate, at most :data:`MAX_AGE` old), so that an
    old "good" replayed after a revocation does not count."""
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError as exc:
        raise OcspError(f"not an OCSP response: {exc}") from exc
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise OcspError(f"the responder answered {response.response_status.name}")
    single = _single(response, data)
    _check_signature(response, data, trusted)
    if single.this_update_utc > now + SKEW:
        raise OcspError("the response is from the future (thisUpdate)")
    next_update = single.next_update_utc
    if next_update is not None and next_update < now - SKEW:
        raise OcspError("the response is stale (nextUpdate has passed)")
    if next_update is None and single.this_update_utc < now - MAX_AGE:
        raise OcspError("the response is stale (thisUpdate too old, no nextUpdate)")
    if single.certificate_status is ocsp.OCSPCertStatus.GOOD:
        return Answer(CertStatus.GOOD)
    if single.certificate_status is ocsp.OCSPCertStatus.REVOKED:
        return Answer(CertStatus.REVOKED, single.revocation_time_utc)
    return Answer(CertStatus.UNKNOWN)


def _single(response: ocsp.OCSPResponse, data: HashData) -> ocsp.OCSPSingleResponse:
    if not _SERIAL.fullmatch(data.serial_number):
        raise OcspError("serialNumber is not 1 to 40 hex digits")
    serial = int(data.serial_number, 16)
    for single in response.responses:
        mine = single.serial_number == serial
        if mine and single.issuer_key_hash.hex() == data.issuer_key_hash.lower():
            return single
    raise OcspError("the response does not answer for the certificate asked about")


def _check_signature(
    response: ocsp.OCSPResponse, data: HashData, trusted: list[x509.Certificate]
) -> None:
    algorithm = _HASHES[data.hash_algorithm.upper()]
    issuers = [c for c in trusted if key_hash(c, algorithm) == data.issuer_key_hash.lower()]
    if not issuers:
        raise OcspError("the certificate's issuer is not a CA chargegrid trusts")
    candidates: list[x509.Certificate] = []
    for signer in [*issuers, *response.certificates]:
        if _names_responder(response, signer):
            candidates.append(signer)
    for signer in candidates:
        delegated = signer not in issuers  # then issued by the CA, for OCSP signing
        if delegated and not (
            any(_issued_by(signer, ca) for ca in issuers) and _ocsp_signing(signer)
        ):
            continue
        if _verifies(signer, response):
            return
    raise OcspSignatureError(
        "the response's signature does not verify against the issuer or its responder"
    )


def _names_responder(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_key_hash is not None:
        return key_hash(cert, hashes.SHA1) == response.responder_key_hash.hex()
    return response.responder_name == cert.subject


def key_hash(cert: x509.Certificate, algorithm: type[hashes.HashAlgorithm]) -> str:
    """The hash of the certificate's public key BIT STRING (RFC 6960 4.1.1 issuerKeyHash)."""
    digest = hashes.Hash(algorithm())
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        digest.update(
            key.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )
    elif isinstance(key, rsa.RSAPublicKey):
        digest.update(_rsa_key_bits(cert))
    else:
        raise OcspError(f"{type(key).__name__} keys are not used in this PKI")
    return digest.finalize().hex()


def _rsa_key_bits(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's contents (PKCS#1 RSAPublicKey) of an RSA certificate."""
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _ocsp_signing(cert: x509.Certificate) -> bool:
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in usage


def _verifies(signer: x509.Certificate, response: ocsp.OCSPResponse) -> bool:
    key = signer.public_key()
    algorithm = response.signature_hash_algorithm
    try:
        if isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(
                response.signature, response.tbs_response_bytes, padding.PKCS1v15(), algorithm
            )
        else:
            return False
    except InvalidSignature:
        return False
    return True
