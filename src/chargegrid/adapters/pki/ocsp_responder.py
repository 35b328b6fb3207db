"""An OCSP responder (RFC 6960) for a :class:`~.v2g.TestPki`: what tests and demos of Plug & Charge
ask whether a contract (or any) certificate of the PKI is revoked.

Each CA of the PKI answers for the certificates it issued, signing with its own key (RFC 6960
4.2.2.2: the CA may sign its own responses). A request for a certificate the CA did not issue is
answered ``unknown``; one naming no CA of the PKI gets ``unauthorized``. Revocations live in
``revoked.json`` in the PKI's folder (serial in hex: revocation time), read on each request so
``chargegrid pki revoke`` takes effect at once. The HTTP side (POST and RFC 6960 A.1 GET) is in
:mod:`chargegrid.entrypoints.pki`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from chargegrid.adapters.pki.v2g import TestPki
from chargegrid.protocols.ocsp import key_hash

NEXT_UPDATE = timedelta(hours=1)


class OcspResponder:
    def __init__(self, pki: TestPki) -> None:
        self.pki = pki
        self._index_stamp: int | None = None

    @property
    def _revocations_file(self) -> Path:
        return self.pki.folder / "revoked.json"

    def revoked(self) -> dict[int, datetime]:
        try:
            entries = json.loads(self._revocations_file.read_text())
        except FileNotFoundError:
            return {}
        return {int(serial, 16): datetime.fromisoformat(at) for serial, at in entries.items()}

    def revoke(self, stem: str, at: datetime | None = None) -> int:
        """Revoke the certificate ``stem``; its serial."""
        serial = self.pki.certs[stem].serial_number
        entries = {f"{s:x}": t.isoformat() for s, t in self.revoked().items()}
        entries[f"{serial:x}"] = (at or datetime.now(UTC)).isoformat()
        self._revocations_file.write_text(json.dumps(entries, indent=1))
        return serial

    def _index_changed(self) -> bool:
        try:
            stamp = (self.pki.folder / "index.json").stat().st_mtime_ns
        except OSError:
            return False
        changed = stamp != self._index_stamp
        self._index_stamp = stamp
        return changed

    def _issued_by(self, issuer: str) -> set[int]:
        return {
            self.pki.certs[stem].serial_number
            for stem, by in self.pki.issuers.items()
            if by == issuer
        }

    def respond(self, der: bytes, now: datetime | None = None) -> bytes:
        """The DER response to the DER request ``der``."""
        try:
            request = ocsp.load_der_ocsp_request(der)
        except ValueError:
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        algorithm = request.hash_algorithm
        issuer = self._issuer(request.issuer_name_hash, request.issuer_key_hash, algorithm)
        if issuer is None:
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        now = now or datetime.now(UTC)
        serial = request.serial_number
        issued = self._issued_by(issuer)
        if serial not in issued and self._index_changed():
            # issued since this responder read the folder (by the built-in contract provider)
            self.pki = TestPki.load(self.pki.folder)
            issued = self._issued_by(issuer)
        revoked = self.revoked()
        revoked_at = revoked.get(serial)
        if serial not in issued:
            status = ocsp.OCSPCertStatus.UNKNOWN
        elif revoked_at is not None:
            status = ocsp.OCSPCertStatus.REVOKED
        else:
            status = ocsp.OCSPCertStatus.GOOD
        ca = self.pki.certs[issuer]
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                request.issuer_name_hash,
                request.issuer_key_hash,
                serial,
                algorithm,
                status,
                this_update=now,
                next_update=now + NEXT_UPDATE,
                revocation_time=revoked_at if status is ocsp.OCSPCertStatus.REVOKED else None,
                revocation_reason=(
                    x509.ReasonFlags.unspecified if status is ocsp.OCSPCertStatus.REVOKED else None
                ),
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, ca)
            .certificates([ca])
        )
        response = builder.sign(self.pki.keys[issuer], hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)

    def _issuer(
        self, name_hash: bytes, issuer_key: bytes, algorithm: hashes.HashAlgorithm
    ) -> str | None:
        for stem, cert in self.pki.certs.items():
            digest = hashes.Hash(type(algorithm)())
            digest.update(cert.subject.public_bytes())
            if digest.finalize() != name_hash:
                continue
            if key_hash(cert, type(algorithm)) == issuer_key.hex():
                return stem
        return None


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )
