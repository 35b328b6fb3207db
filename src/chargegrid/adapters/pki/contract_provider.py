"""The built-in contract-certificate provider, for tests and demos of Plug & Charge: the
:class:`~chargegrid.service.plug_and_charge.ContractProvider` port answered from a test PKI
folder (``chargegrid pki init``) rather than a Contract Certificate Pool.

For a car's CertificateInstallationReq (OCPP 2.0.1 M01, action Install) it checks the request's
signature and that the OEM provisioning certificate chains to the PKI's OEM root, then issues
(the first time) a contract certificate under MO Sub-CA 2 for an eMAID derived from the
provisioning certificate, so the same car always gets the same contract. For a
CertificateUpdateReq (M02, action Update) the request must be signed with the contract the PKI
holds for the eMAID now (not revoked, not one renewed already); a new contract key and
certificate are issued, the old contract stays in the folder (and valid) until it expires. Only
the PKI's own CAs count as issuers. The answer is the
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
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from chargegrid.adapters.pki.ocsp_responder import OcspResponder
from chargegrid.adapters.pki.v2g import TestPki
from chargegrid.protocols import iso15118 as v2
from chargegrid.service.plug_and_charge import EvCertificateAnswer

log = structlog.get_logger(__name__)

# eMAID (ISO 15118-2 Annex H): country, provider id, then "C" and 8 characters of instance.
EMAID_PREFIX = "DECGRC"
# The PKI's CAs that may issue, from the sub-CA right above the leaf up to the root.
OEM_CAS = ("oem-sub2", "oem-sub1", "oem-root")
MO_CAS = ("mo-sub2", "mo-sub1", "mo-root")


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
        except Exception:  # a defect of ours: the station still gets its answer
            log.exception("Get15118EVCertificate failed", action=action)
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
                self._check_chain(request.certificate, OEM_CAS)
                emaid = _emaid(request.certificate)
                stem = self.pki.contract(emaid)
            else:
                emaid = str(request.emaid)
                self._check_current_contract(request.certificate, emaid)
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

    def _check_current_contract(self, contract: x509.Certificate, emaid: str) -> None:
        """An update is signed with the contract this PKI holds for the eMAID now: not another
        car's, not one it renewed already (a replayed request), not a revoked one."""
        self._check_chain(contract, MO_CAS)
        current = self.pki.certs.get(f"contract-{emaid}")
        if current is None or current.serial_number != contract.serial_number:
            raise _Refused(f"the certificate is not the current contract of {emaid}")
        if contract.serial_number in OcspResponder(self.pki).revoked():
            raise _Refused(f"the contract of {emaid} is revoked")

    def _check_chain(self, leaf: x509.Certificate, cas: tuple[str, ...]) -> None:
        """``leaf`` is valid now and issued, through the PKI's CAs ``cas`` (sub-CA below the
        root first), by the root at their end; only those CAs count as issuers."""
        now = datetime.now(UTC)
        cert = leaf
        for name in cas:
            issuer = self.pki.certs[name]
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                raise _Refused("a certificate of the chain is not valid now")
            if cert.issuer != issuer.subject:
                continue  # issued higher up (a chain with fewer sub-CAs)
            if not _is_ca(issuer):
                raise _Refused(f"{name} of the test PKI is not a CA")
            try:
                cert.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm) as exc:
                raise _Refused(f"the car's certificate is not issued by {name}") from exc
            cert = issuer
        if cert is not self.pki.certs[cas[-1]] or not (
            cert.not_valid_before_utc <= now <= cert.not_valid_after_utc
        ):
            raise _Refused(f"the car's certificate does not chain to the test PKI's {cas[-1]}")


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return basic.ca and usage.key_cert_sign


class _Refused(Exception):
    """A request the provider will not answer; the message says why (logged, answered
    Failed)."""


def _emaid(provisioning: x509.Certificate) -> str:
    """The same car, the same eMAID: 8 base-32 characters of the provisioning certificate's
    fingerprint."""
    der = provisioning.public_bytes(serialization.Encoding.DER)
    digest = base64.b32encode(hashlib.sha256(der).digest()).decode()
    return EMAID_PREFIX + digest[:8]
