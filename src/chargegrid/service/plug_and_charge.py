"""ISO 15118 Plug & Charge through OCPP: the CSMS's part.

* **Contract check at Authorize** (OCPP 2.0.1 C07): the station sends the car's eMAID with either
  the contract certificate chain (``certificate``, PEM) or the hash data of its certificates
  (``iso15118CertificateHashData``, leaf first). A chain is checked against the trust anchors
  (MO and V2G roots and their sub-CAs, ``--v2g-trust``): it must chain to one of them, be valid
  now, and its leaf's commonName must be the eMAID. Then every certificate is asked about at
  the OCSP responder it names (its AIA, or the hash data's ``responderURL``), and each answer's
  signature is checked. The outcome is one ``certificateStatus``:

  ==============================  =========================================================
  Accepted                        every certificate good
  CertificateRevoked              an OCSP responder says revoked
  CertificateExpired              the chain's leaf is outside its validity
  CertChainError                  the chain does not reach a trust anchor, an answer's
                                  issuer is not trusted, or the leaf is not the eMAID's
  SignatureError                  an OCSP answer's signature does not verify
  NoCertificateAvailable          no responder to ask, none reachable, or ``unknown``
  ==============================  =========================================================

  A status other than Accepted makes the token's answer ``Invalid`` whatever the token's own
  standing (C07: a contract that fails its check does not charge).
* **GetCertificateStatus** (M06): the station's OCSP request data is sent to its responder and
  the DER answer returned base64 (``Failed`` when no answer comes).
* **Get15118EVCertificate** (M01 install / M02 update): the EXI request is forwarded to the
  contract-certificate provider behind :class:`ContractProvider` (built in: Hubject's Open
  Plug&Charge Protocol CCP, :mod:`chargegrid.adapters.pki.opcp`), whose EXI answer goes back.

OCSP over HTTP is behind :class:`OcspTransport`; the codec is :mod:`chargegrid.protocols.ocsp`.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

import structlog
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from chargegrid.protocols import ocsp

log = structlog.get_logger(__name__)

#: OCPP 2.0.1 AuthorizeCertificateStatusEnumType (ContractCancelled is the MO's to say).
CertificateStatus = Literal[
    "Accepted",
    "CertificateRevoked",
    "CertificateExpired",
    "CertChainError",
    "SignatureError",
    "NoCertificateAvailable",
]
ACCEPTED: CertificateStatus = "Accepted"
REVOKED: CertificateStatus = "CertificateRevoked"
EXPIRED: CertificateStatus = "CertificateExpired"
CHAIN_ERROR: CertificateStatus = "CertChainError"
SIGNATURE_ERROR: CertificateStatus = "SignatureError"
NO_CERTIFICATE: CertificateStatus = "NoCertificateAvailable"


class OcspTransport(Protocol):
    async def post(self, url: str, request: bytes) -> bytes:
        """The responder's DER answer; raises :class:`OcspUnreachable`."""
        ...

    async def close(self) -> None: ...


class OcspUnreachable(Exception):
    """No answer from the responder (connection, HTTP status, time-out)."""


@dataclass(frozen=True)
class EvCertificateAnswer:
    status: Literal["Accepted", "Failed"]  # 2.0.1 Iso15118EVCertificateStatusEnumType
    exi_response: str  # base64 EXI


class ContractProvider(Protocol):
    async def ev_certificate(
        self, schema_version: str, action: str, exi_request: str
    ) -> EvCertificateAnswer:
        """The provider's answer to the car's CertificateInstallationReq / UpdateReq."""
        ...

    async def close(self) -> None: ...


class PlugAndCharge:
    def __init__(
        self,
        transport: OcspTransport,
        trust: list[x509.Certificate],
        provider: ContractProvider | None = None,
    ) -> None:
        self.transport = transport
        self.trust = trust
        self.provider = provider

    async def check_contract(
        self,
        emaid: str,
        hash_data: list[ocsp.HashData],
        chain_pem: str | None,
        now: datetime,
    ) -> CertificateStatus:
        """The ``certificateStatus`` of the contract (the table above)."""
        trusted = list(self.trust)
        if chain_pem is not None:
            status, hash_data, extra = self._check_chain(emaid, chain_pem, now)
            if status is not None:
                return status
            trusted += extra
        if not hash_data:
            return NO_CERTIFICATE
        for data in hash_data:
            status = await self._ask(data, trusted, now)
            if status != ACCEPTED:
                log.info("contract refused", emaid=emaid, status=status, serial=data.serial_number)
                return status
        return ACCEPTED

    async def certificate_status(self, data: ocsp.HashData) -> str | None:
        """M06: the base64 DER OCSP answer for ``data``, or None when none came."""
        if not data.responder_url:
            return None
        try:
            der = await self.transport.post(data.responder_url, ocsp.request(data))
        except (OcspUnreachable, ocsp.OcspError) as exc:
            log.warning("OCSP request failed", url=data.responder_url, reason=str(exc))
            return None
        if not ocsp.answers(der, data):  # whatever else the URL gave back stays here
            log.warning("not an OCSP answer for the certificate", url=data.responder_url)
            return None
        return base64.b64encode(der).decode()

    async def ev_certificate(
        self, schema_version: str, action: str, exi_request: str
    ) -> EvCertificateAnswer:
        if self.provider is None:
            log.warning("Get15118EVCertificate failed: no contract-certificate provider")
            return EvCertificateAnswer("Failed", "")
        return await self.provider.ev_certificate(schema_version, action, exi_request)

    async def close(self) -> None:
        await self.transport.close()
        if self.provider is not None:
            await self.provider.close()

    # --- steps --------------------------------------------------------------------------------

    async def _ask(
        self, data: ocsp.HashData, trusted: list[x509.Certificate], now: datetime
    ) -> CertificateStatus:
        if not data.responder_url:
            return NO_CERTIFICATE
        try:
            der = await self.transport.post(data.responder_url, ocsp.request(data))
            answer = ocsp.read(der, data, trusted, now)
        except OcspUnreachable as exc:
            log.warning("OCSP responder unreachable", url=data.responder_url, reason=str(exc))
            return NO_CERTIFICATE
        except ocsp.OcspError as exc:
            log.warning("OCSP answer refused", url=data.responder_url, reason=str(exc))
            return SIGNATURE_ERROR if isinstance(exc, ocsp.OcspSignatureError) else CHAIN_ERROR
        if answer.status is ocsp.CertStatus.REVOKED:
            return REVOKED
        if answer.status is ocsp.CertStatus.UNKNOWN:
            return NO_CERTIFICATE
        return ACCEPTED

    def _check_chain(
        self, emaid: str, chain_pem: str, now: datetime
    ) -> tuple[CertificateStatus | None, list[ocsp.HashData], list[x509.Certificate]]:
        """(a refusal or None, the hash data of the chain's certificates, its sub-CAs)."""
        try:
            chain = x509.load_pem_x509_certificates(chain_pem.encode())
        except ValueError:
            return CHAIN_ERROR, [], []
        if not chain:
            return CHAIN_ERROR, [], []
        leaf, subs = chain[0], chain[1:]
        names = leaf.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
        if len(names) != 1 or _common_name(leaf) != emaid:
            return CHAIN_ERROR, [], []
        if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
            return EXPIRED, [], []
        path = [leaf, *subs]
        for cert, issuer in itertools.pairwise(path):
            if not _issued_by(cert, issuer):
                return CHAIN_ERROR, [], []
        top = path[-1]
        anchor = next((a for a in self.trust if a == top or _issued_by(top, a)), None)
        if anchor is None:
            return CHAIN_ERROR, [], []
        issuers = [*path[1:], anchor] if anchor != top else path[1:]
        # Every issuer is a CA now, may sign certificates, and has room for the CAs below it:
        # a contract's own key cannot pass for a sub-CA.
        for below, issuer in enumerate(issuers):
            if not _can_issue(issuer, now, below):
                return CHAIN_ERROR, [], []
        data = [
            ocsp.hash_data(cert, issuer)
            for cert, issuer in zip(path, issuers, strict=False)
            if cert != issuer
        ]
        return None, data, subs


def _common_name(cert: x509.Certificate) -> str | None:
    names = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    if not names:
        return None
    value = names[0].value
    return value.decode() if isinstance(value, bytes) else value


def _can_issue(cert: x509.Certificate, now: datetime, cas_below: int) -> bool:
    """``cert`` is a CA certificate valid at ``now``, with keyCertSign, whose path length
    allows ``cas_below`` CA certificates under it (RFC 5280 4.2.1.9, 6.1.4)."""
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return False
    if not constraints.ca or not usage.key_cert_sign:
        return False
    if constraints.path_length is not None and cas_below > constraints.path_length:
        return False
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True
