"""chargegrid's own CPO certificate authority: a key and a certificate kept in a folder.

The folder is made on first use (``ca.key``, readable by its owner only, and ``ca.pem``); an
operator may put a CA of their own there instead (any RSA or EC key with its certificate). It
signs the CSRs :func:`chargegrid.domain.certificates.check_csr` accepted:

* the station's certificate (OCPP 2.0.1 A02/A03, 1.6 whitepaper 3): subject ``CN=<station id>``
  with the CSR's organizationName (nothing else of the CSR's subject), a year,
  digitalSignature and keyAgreement (EC) or keyEncipherment (RSA), extended key usage
  clientAuth, so that it serves for security profile 3;
* a V2G (SECC) certificate: the CSR's subject, 60 days (ISO 15118-2 keeps SECC leaves short),
  digitalSignature and keyAgreement, as the ISO 15118-2 certificate profile gives, and extended
  key usage serverAuth (the SECC is the TLS server towards the car), so that it can never open
  a station's connection here.

Both carry subject and authority key identifiers. The chain sent back is the leaf, then the CA's
certificate when the CA is not self-signed (a sub-CA); a root is left out, as the station holds
it as its trust anchor (2.0.1 CertificateSigned: "the chain up to but not including the root").
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chargegrid.adapters.pki.files import key_usage, write_private_key
from chargegrid.domain.certificates import CertificateUse, CheckedCsr, IssuedCertificate

STATION_DAYS = 365
V2G_DAYS = 60
CA_YEARS = 10

CaKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class CaError(RuntimeError):
    """The CA's files cannot be made or read; the message names the file."""


class LocalCa:
    """The :class:`~chargegrid.service.certificates.CertificateAuthority` port, in a folder."""

    def __init__(self, folder: Path, organization: str | None = None) -> None:
        self.folder = folder
        self.organization = organization or "chargegrid"
        self._lock = threading.Lock()
        self._loaded: tuple[CaKey, x509.Certificate] | None = None

    @property
    def key_path(self) -> Path:
        return self.folder / "ca.key"

    @property
    def cert_path(self) -> Path:
        return self.folder / "ca.pem"

    def root_pem(self) -> str:
        """The CA's certificate, to install on stations (InstallCertificate)."""
        return self._ca()[1].public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, checked: CheckedCsr, station_id: str, now: datetime) -> IssuedCertificate:
        key, ca = self._ca()
        public = checked.csr.public_key()
        if not isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            raise CaError("only RSA and EC keys are signed")  # check_csr refused the others
        days = V2G_DAYS if checked.use is CertificateUse.V2G else STATION_DAYS
        start = now - timedelta(minutes=5)  # a station's clock a little behind still accepts it
        end = min(now + timedelta(days=days), ca.not_valid_after_utc)
        ec_key = isinstance(public, ec.EllipticCurvePublicKey)
        subject = checked.csr.subject
        if checked.use is CertificateUse.CHARGING_STATION:  # what security profile 3 reads
            names = [x509.NameAttribute(NameOID.COMMON_NAME, station_id)]
            if checked.organization:
                names.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, checked.organization))
            subject = x509.Name(names)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                key_usage("digital_signature", "key_agreement" if ec_key else "key_encipherment"),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                critical=False,
            )
        )
        # A station certificate is a TLS client's (profile 3); a SECC certificate is the TLS
        # server's towards the car, and must never pass as a client here: OpenSSL refuses a
        # client certificate whose extended key usage lacks clientAuth.
        usage = (
            ExtendedKeyUsageOID.CLIENT_AUTH
            if checked.use is CertificateUse.CHARGING_STATION
            else ExtendedKeyUsageOID.SERVER_AUTH
        )
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        leaf = builder.sign(key, hashes.SHA256())
        chain = [leaf] if ca.issuer == ca.subject else [leaf, ca]
        return IssuedCertificate(
            station_id=station_id,
            use=checked.use,
            serial=f"{leaf.serial_number:X}",
            subject=leaf.subject.rfc4514_string(),
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
            chain_pem="".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain),
            issued_at=now,
        )

    # --- the CA's own key and certificate ------------------------------------------------------

    def _ca(self) -> tuple[CaKey, x509.Certificate]:
        with self._lock:
            if self._loaded is None:
                if not self.key_path.exists() and not self.cert_path.exists():
                    self._create()
                self._loaded = self._load()
            return self._loaded

    def _load(self) -> tuple[CaKey, x509.Certificate]:
        try:
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        except (OSError, ValueError, TypeError) as exc:
            raise CaError(f"cannot read the CA in {self.folder}: {exc}") from exc
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise CaError(f"{self.key_path}: the CA key must be RSA or EC")
        return key, cert

    def _create(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, f"{self.organization} CPO CA"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.organization),
            ]
        )
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=365 * CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(key_usage("key_cert_sign", "crl_sign"), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_private_key(self.key_path, key, exclusive=True)
            self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        except OSError as exc:
            raise CaError(f"cannot create the CA in {self.folder}: {exc}") from exc
