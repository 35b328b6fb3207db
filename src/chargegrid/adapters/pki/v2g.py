"""A complete ISO 15118-2 test PKI, for tests and demos of Plug & Charge (``chargegrid pki init``).

The hierarchies and their profile follow ISO 15118-2 Annex F and the OpenSSL configurations of
the open-source ``iso15118`` project (``shared/specs/iso15118/pki-openssl-configs``): every key EC
P-256, every signature ECDSA with SHA-256, subjects with CN, O, C and a domainComponent naming the
hierarchy (V2G, CPO, MO, OEM, CPS):

* V2G root -> CPO Sub-CA 1 (pathlen 1) -> CPO Sub-CA 2 (pathlen 0) -> SECC leaf
* V2G root -> CPS Sub-CA 1 -> CPS Sub-CA 2 -> CPS leaf (signs contract data for installation)
* MO root -> MO Sub-CA 1 -> MO Sub-CA 2 -> contract certificates, one per eMAID
* OEM root -> OEM Sub-CA 1 -> OEM Sub-CA 2 -> OEM provisioning certificate

CAs carry critical basicConstraints and keyUsage keyCertSign and cRLSign; leaves critical
basicConstraints CA:false and the key usages of their config; all a subject key identifier and
(below the roots) an authority key identifier. With ``ocsp_url``, every certificate below a
root carries an Authority Information Access with the OCSP responder, where
Plug & Charge checks revocation (OCPP 2.0.1 C07, M06).

Each certificate is written as ``NAME.pem`` with its key ``NAME.key`` (owner-only) in the folder;
``index.json`` names them and their issuers, which the OCSP responder reads.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from chargegrid.adapters.pki.files import key_usage, write_private_key

ORG = "chargegrid test"
COUNTRY = "DE"


@dataclass(frozen=True)
class Spec:
    name: str  # file stem
    cn: str
    dc: str
    issuer: str | None  # file stem of the issuer; None: self-signed root
    days: int
    path_length: int | None = None  # CAs: basicConstraints pathlen (None: no limit)
    ca: bool = True
    usages: frozenset[str] = frozenset({"key_cert_sign", "crl_sign"})


_LEAF = frozenset({"digital_signature", "key_agreement"})
_SIGN = frozenset({"digital_signature"})
_CONTRACT = frozenset(
    {"digital_signature", "content_commitment", "key_encipherment", "key_agreement"}
)

HIERARCHY = (
    Spec("v2g-root", "V2GRootCA", "V2G", None, 365 * 10),
    Spec("cpo-sub1", "CPOSubCA1", "V2G", "v2g-root", 365 * 4, 1),
    Spec("cpo-sub2", "CPOSubCA2", "V2G", "cpo-sub1", 365 * 2, 0),
    Spec("secc", "SECCCert", "CPO", "cpo-sub2", 60, ca=False, usages=_LEAF),
    Spec("cps-sub1", "ProvSubCA1", "CPS", "v2g-root", 365 * 4, 1),
    Spec("cps-sub2", "ProvSubCA2", "CPS", "cps-sub1", 365 * 2, 0),
    Spec(
        "cps", "CPS Leaf", "CPS", "cps-sub2", 365, ca=False, usages=frozenset({"digital_signature"})
    ),
    Spec("mo-root", "MORootCA", "MO", None, 365 * 10),
    Spec("mo-sub1", "MOSubCA1", "MO", "mo-root", 365 * 4, 1),
    Spec(
        "mo-sub2",
        "MOSubCA2",
        "MO",
        "mo-sub1",
        365 * 2,
        0,
        usages=frozenset({"digital_signature", "content_commitment", "key_cert_sign", "crl_sign"}),
    ),
    Spec("oem-root", "OEMRootCA", "OEM", None, 365 * 10),
    Spec("oem-sub1", "OEMSubCA1", "OEM", "oem-root", 365 * 4, 1),
    Spec("oem-sub2", "OEMSubCA2", "OEM", "oem-sub1", 365 * 2, 0),
    Spec("oem-prov", "OEMProvCert", "OEM", "oem-sub2", 365 * 4, ca=False, usages=_LEAF),
)


@dataclass
class TestPki:
    """A PKI in a folder: certificates and keys by file stem."""

    __test__ = False  # not a pytest class

    folder: Path
    certs: dict[str, x509.Certificate] = field(default_factory=dict)
    keys: dict[str, ec.EllipticCurvePrivateKey] = field(default_factory=dict)
    issuers: dict[str, str] = field(default_factory=dict)  # stem -> issuer stem
    ocsp_url: str | None = None

    def pem(self, name: str) -> str:
        return self.certs[name].public_bytes(serialization.Encoding.PEM).decode()

    def chain_pem(self, name: str) -> str:
        """``name``'s certificate and its sub-CAs up to, not including, the root."""
        parts = []
        while name in self.issuers:
            parts.append(self.pem(name))
            name = self.issuers[name]
        return "".join(parts)

    def contract(self, emaid: str, renew: bool = False) -> str:
        """The file stem of the contract certificate of ``emaid``, issued if it is not yet (or
        issued anew, with a new key, with ``renew``)."""
        stem = f"contract-{emaid}"
        if renew and stem in self.certs:
            self._archive(stem)
        if renew or stem not in self.certs:
            self._issue(_contract(emaid), datetime.now(UTC))
            self._write_index()
        return stem

    def _archive(self, stem: str) -> None:
        """Keep a renewed certificate, under ``stem@serial``: it stays valid (and known to the
        OCSP responder) until it expires or is revoked."""
        archived = f"{stem}@{self.certs[stem].serial_number:x}"
        for suffix in (".pem", ".key"):
            os.replace(self.folder / f"{stem}{suffix}", self.folder / f"{archived}{suffix}")
        self.certs[archived] = self.certs.pop(stem)
        self.keys[archived] = self.keys.pop(stem)
        self.issuers[archived] = self.issuers.pop(stem)
        self._write_index()

    # --- making it ------------------------------------------------------------------------

    @classmethod
    def create(
        cls, folder: Path, emaids: tuple[str, ...] = (), ocsp_url: str | None = None
    ) -> TestPki:
        folder.mkdir(parents=True, exist_ok=True)
        pki = cls(folder, ocsp_url=ocsp_url)
        now = datetime.now(UTC)
        for spec in HIERARCHY:
            pki._issue(spec, now)
        for emaid in emaids:
            pki._issue(
                Spec(
                    f"contract-{emaid}", emaid, "MO", "mo-sub2", 365 * 2, ca=False, usages=_CONTRACT
                ),
                now,
            )
        pki._write_index()
        return pki

    @classmethod
    def load(cls, folder: Path) -> TestPki:
        index = json.loads((folder / "index.json").read_text())
        pki = cls(folder, ocsp_url=index.get("ocsp_url"))
        for stem, issuer in index["certificates"].items():
            pki.certs[stem] = x509.load_pem_x509_certificate((folder / f"{stem}.pem").read_bytes())
            key = serialization.load_pem_private_key((folder / f"{stem}.key").read_bytes(), None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            pki.keys[stem] = key
            if issuer is not None:
                pki.issuers[stem] = issuer
        return pki

    def _issue(self, spec: Spec, now: datetime) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, spec.cn),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG),
                x509.NameAttribute(NameOID.COUNTRY_NAME, COUNTRY),
                x509.NameAttribute(NameOID.DOMAIN_COMPONENT, spec.dc),
            ]
        )
        if spec.issuer is None:
            issuer_name, signer = subject, key
        else:
            issuer_name, signer = self.certs[spec.issuer].subject, self.keys[spec.issuer]
        end = now + timedelta(days=spec.days)
        if spec.issuer is not None:
            end = min(end, self.certs[spec.issuer].not_valid_after_utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(end)
            .add_extension(
                x509.BasicConstraints(
                    ca=spec.ca, path_length=spec.path_length if spec.ca else None
                ),
                critical=True,
            )
            .add_extension(key_usage(*spec.usages), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )
        if spec.issuer is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
            )
            if self.ocsp_url:
                builder = builder.add_extension(
                    x509.AuthorityInformationAccess(
                        [
                            x509.AccessDescription(
                                AuthorityInformationAccessOID.OCSP,
                                x509.UniformResourceIdentifier(self.ocsp_url),
                            )
                        ]
                    ),
                    critical=False,
                )
        cert = builder.sign(signer, hashes.SHA256())
        self.certs[spec.name], self.keys[spec.name] = cert, key
        if spec.issuer is not None:
            self.issuers[spec.name] = spec.issuer
        _write_atomically(
            self.folder / f"{spec.name}.pem", cert.public_bytes(serialization.Encoding.PEM)
        )
        staged = self.folder / f".{spec.name}.key.tmp"
        write_private_key(staged, key)
        os.replace(staged, self.folder / f"{spec.name}.key")

    def _write_index(self) -> None:
        index = {
            "ocsp_url": self.ocsp_url,
            "certificates": {stem: self.issuers.get(stem) for stem in self.certs},
        }
        _write_atomically(self.folder / "index.json", json.dumps(index, indent=1).encode())


def _write_atomically(path: Path, data: bytes) -> None:
    """Readers (the OCSP responder, another process) see the old file or the new, never half."""
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_bytes(data)
    os.replace(staged, path)


def _contract(emaid: str) -> Spec:
    return Spec(f"contract-{emaid}", emaid, "MO", "mo-sub2", 365 * 2, ca=False, usages=_CONTRACT)
