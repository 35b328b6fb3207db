"""The built-in contract-certificate provider, for tests and demos of Plug & Charge: the
:class:`~chargegrid.service.plug_and_charge.ContractProvider` port answered from a test PKI
folder (``chargegrid pki init``) rather than a Contract Certificate Pool.

For a car's CertificateInstallationReq (OCPP 2.0.1 M01, action Install) it checks the request's
signature and that the OEM provisioning certificate chains to the PKI's OEM root, then issues
(the first time) a contract certificate under MO Sub-CA 2 for an eMAID derived from the
provisioning certificate, so the same car always gets the same contract. For a
CertificateUpdateReq (M02, action Update) the current contract must chain to the MO root and
name the eMAID; a new contract key and certificate are issued. The answer is the
CertificateInstallationRes / CertificateUpdateRes the car expects: the contract chain, its key
encrypted for the car, the eMAID, signed by the CPS leaf with the CPS sub-CAs as the
provisioning chain. Contracts it issues are in the folder, so the PKI's OCSP responder answers
for them like for any other.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import threading
from datetime import UTC, datetime
from pathlib import Path

import structlog
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from chargegrid.adapters.pki.v2g import TestPki
from chargegrid.protocols import iso15118 as v2
from chargegrid.service.plug_and_charge import EvCertificateAnswer

log = structlog.get_logger(__name__)

# eMAID (ISO 15118-2 Annex H): country, provider id, then "C" and 8 characters of instance.
EMAID_PREFIX = "DECGRC"


class TestPkiContractProvider:
    """Contracts from the test PKI in ``folder``; see the module's documentation."""

    __test__ = False  # not a pytest class

    def __init__(self, folder: Path) -> None:
        self.pki = TestPki.load(folder)
        self._lock = threading.Lock()

    async def ev_certificate(
        self, schema_version: str, action: str, exi_request: str
    ) -> EvCertificateAnswer:
        if schema_version != v2.MSG_DEF:
            log.warning(
                "Get15118EVCertificate failed: the built-in provider speaks ISO 15118-2 only",
                schema_version=schema_version,
            )
            return EvCertificateAnswer("Failed", "")
        try:
            exi = await asyncio.to_thread(self._answer, action, exi_request)
        except (v2.V2gError, _Refused) as exc:
            log.warning("Get15118EVCertificate failed", action=action, reason=str(exc))
            return EvCertificateAnswer("Failed", "")
        return EvCertificateAnswer("Accepted", base64.b64encode(exi).decode())

    async def close(self) -> None:
        return None

    def _answer(self, action: str, exi_request: str) -> bytes:
        try:
            data = base64.b64decode(exi_request, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _Refused("exiRequest is not base64") from exc
        request = v2.read_request(data)
        expected = {"Install": "install", "Update": "update"}.get(action)
        if request.kind != expected:
            raise _Refused(f"action {action} does not fit the car's {request.kind} request")
        with self._lock:
            if request.kind == "install":
                self._check_chain(request.certificate, (), "oem-root")
                emaid = _emaid(request.certificate)
                stem = self.pki.contract(emaid)
            else:
                self._check_chain(request.certificate, request.sub_certificates, "mo-root")
                emaid = str(request.emaid)
                names = request.certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
                if not names or names[0].value != emaid:
                    raise _Refused("the contract certificate does not name the eMAID")
                stem = self.pki.contract(emaid, renew=True)
            pki = self.pki
            return v2.build_response(
                request,
                emaid=emaid,
                contract=pki.certs[stem],
                contract_subs=(pki.certs["mo-sub2"], pki.certs["mo-sub1"]),
                contract_key=pki.keys[stem],
                provisioning=pki.certs["cps"],
                provisioning_subs=(pki.certs["cps-sub2"], pki.certs["cps-sub1"]),
                provisioning_key=pki.keys["cps"],
            )

    def _check_chain(
        self, leaf: x509.Certificate, given: tuple[x509.Certificate, ...], root: str
    ) -> None:
        """``leaf`` chains, through ``given`` or the PKI's own sub-CAs, to the PKI's ``root``."""
        now = datetime.now(UTC)
        if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
            raise _Refused("the car's certificate is not valid now")
        candidates = [*given, *self.pki.certs.values()]
        cert = leaf
        for _ in range(5):
            issuer = next((c for c in candidates if c.subject == cert.issuer), None)
            if issuer is None:
                break
            try:
                cert.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature):
                break
            if issuer == self.pki.certs[root]:
                return
            cert = issuer
        raise _Refused(f"the car's certificate does not chain to the test PKI's {root}")


class _Refused(Exception):
    pass


def _emaid(provisioning: x509.Certificate) -> str:
    """The same car, the same eMAID: 8 base-32 characters of the provisioning certificate's
    fingerprint."""
    der = provisioning.public_bytes(serialization.Encoding.DER)
    digest = base64.b32encode(hashlib.sha256(der).digest()).decode()
    return EMAID_PREFIX + digest[:8]
