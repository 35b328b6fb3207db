"""Certificate management end to end: stations of the `ocpp` package send SignCertificate with
CSRs made in the test; chargegrid's CA signs and sends CertificateSigned; the certificate then
opens a security-profile-3 connection; renewal asks for a new CSR before expiry.

TLS and the CA do not depend on the database: SQLite only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import websockets
from api_client import ADMIN_TOKEN, Api
from certs import ORG, TestCa, csr_for, station_context, tls_node_settings, write_key_and_chain
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.x509.oid import NameOID
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from stations import Driver, connect
from websockets.exceptions import InvalidStatus

from chargegrid.adapters.pki.local_ca import LocalCa
from chargegrid.bootstrap import App, build
from chargegrid.service.certificates import CertificateOptions


@pytest.fixture
async def ca_node(
    tmp_path: Path, fresh_db_url: Callable[[str], str]
) -> AsyncIterator[tuple[App, Api]]:
    """A node with TLS whose station CA is its own CPO CA (made before it starts)."""
    ca_dir = tmp_path / "ca"
    LocalCa(ca_dir, ORG).root_pem()
    server = TestCa(tmp_path, "Server Root").issue("server", "localhost", server=True)
    app = await build(
        tls_node_settings(
            fresh_db_url("sqlite"),
            server,
            ca_dir / "ca.pem",
            call_timeout=5,
            admin_token=ADMIN_TOKEN,
            station_organization=ORG,
            ca_dir=str(ca_dir),
        )
    )
    await app.start()
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{app.api.port}", timeout=10
        ) as client:
            yield app, Api(client, ADMIN_TOKEN)
    finally:
        await app.stop()


async def _signed(cp: Any) -> dict[str, Any]:
    """The CertificateSigned the station receives after its SignCertificate was accepted."""
    async with asyncio.timeout(5):
        while True:
            for action, payload in cp.received:
                if action == "CertificateSigned":
                    cp.received.remove((action, payload))
                    return dict(payload)
            await asyncio.sleep(0.01)


async def _installed(api: Api, station_id: str, count: int) -> list[dict[str, Any]]:
    """The station's certificates once ``count`` of them are installed (its answer came)."""
    async with asyncio.timeout(5):
        while True:
            issued: list[dict[str, Any]] = await api.get(f"/stations/{station_id}/certificates")
            if sum(c["status"] == "installed" for c in issued) >= count:
                return issued
            await asyncio.sleep(0.02)


def _leaf(chain_pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificates(chain_pem.encode())[0]


async def _sign_201(cp: Any, csr: str, kind: str | None = None) -> str:
    request = call201.SignCertificate(csr=csr, certificate_type=kind)
    return str((await cp.call(request)).status)


async def test_201_station_certificate_round_trip_then_profile_3(
    ca_node: tuple[App, Api], tmp_path: Path
) -> None:
    app, api = ca_node
    ca = x509.load_pem_x509_certificate(
        (await api.get("/certificate-authority"))["certificate"].encode()
    )
    async with connect(app.server.port, "CS-PKI", "2.0.1") as cp:
        assert await Driver(cp, "2.0.1").boot() == "Accepted"
        csr, key = csr_for("CS-PKI")
        assert await _sign_201(cp, csr, "ChargingStationCertificate") == "Accepted"
        signed = await _signed(cp)
        assert signed["certificate_type"] == "ChargingStationCertificate"
        leaf = _leaf(signed["certificate_chain"])
        leaf.verify_directly_issued_by(ca)
        assert leaf.public_key() == key.public_key()
        assert leaf.subject.rfc4514_string() == f"O={ORG},CN=CS-PKI"
        usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in usage

        # a V2G (SECC) certificate: any name, an EC P-256 key
        v2g_csr, _ = csr_for("SECC-CS-PKI-1")
        assert await _sign_201(cp, v2g_csr, "V2GCertificate") == "Accepted"
        v2g = await _signed(cp)
        assert v2g["certificate_type"] == "V2GCertificate"
        assert (_leaf(v2g["certificate_chain"]).not_valid_after_utc - leaf.not_valid_before_utc) < (
            timedelta(days=61)
        )
        issued = await _installed(api, "CS-PKI", 2)
    assert [(c["use"], c["status"]) for c in issued] == [
        ("V2GCertificate", "installed"),
        ("ChargingStationCertificate", "installed"),
    ]
    assert issued[1]["serial"] == f"{leaf.serial_number:X}"

    # the certificate it got is the one that opens security profile 3
    await api.patch("/stations/CS-PKI", {"security_profile": 3})
    mine = write_key_and_chain(tmp_path, "cs-pki", key, signed["certificate_chain"])
    server_root = tmp_path / "server-root.pem"
    async with connect(
        app.server.tls_port,
        "CS-PKI",
        "2.0.1",
        tls=station_context(server_root, mine),
    ) as cp:
        assert await Driver(cp, "2.0.1").boot() == "Accepted"


@pytest.mark.parametrize(
    ("kind", "csr", "reason"),
    [
        ("ChargingStationCertificate", lambda: csr_for("CS-OTHER")[0], "not the station id"),
        ("ChargingStationCertificate", lambda: csr_for("CS-BAD", org="Other")[0], "Other"),
        (
            "ChargingStationCertificate",
            lambda: csr_for(
                "CS-BAD",
                key=rsa.generate_private_key(public_exponent=65537, key_size=1024),  # noqa: S505 - the weak key is the point
            )[0],
            "RSA key of 1024 bits",
        ),
        (
            "V2GCertificate",
            lambda: csr_for(
                "SECC-1", key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
            )[0],
            "must be EC P-256",
        ),
        ("ChargingStationCertificate", lambda: "not a CSR at all", "not a PKCS#10"),
        (
            "ChargingStationCertificate",
            lambda: csr_for("CS-BAD", key=ed25519.Ed25519PrivateKey.generate(), digest=False)[0],
            "Ed25519PublicKey keys are not allowed",
        ),
    ],
    ids=["other-station", "other-org", "weak-rsa", "v2g-rsa", "garbage", "ed25519"],
)
async def test_a_bad_csr_is_rejected_and_logged(
    ca_node: tuple[App, Api], kind: str, csr: Callable[[], str], reason: str
) -> None:
    app, api = ca_node

    async with connect(app.server.port, "CS-BAD", "2.0.1") as cp:
        assert await Driver(cp, "2.0.1").boot() == "Accepted"
        with structlog.testing.capture_logs() as logs:
            assert await _sign_201(cp, csr(), kind) == "Rejected"
        await asyncio.sleep(0.1)
        assert not [a for a, _ in cp.received if a == "CertificateSigned"]
    [line] = [entry for entry in logs if entry["event"] == "SignCertificate rejected"]
    assert reason in line["reason"]
    assert await api.get("/stations/CS-BAD/certificates") == []


async def test_16_station_certificate_and_renewal(ca_node: tuple[App, Api]) -> None:
    app, api = ca_node
    async with connect(app.server.port, "CS-PKI16", "1.6") as cp:
        assert await Driver(cp, "1.6").boot() == "Accepted"
        csr, key = csr_for("CS-PKI16")
        answer = await cp.call(call16.SignCertificate(csr=csr))
        assert answer.status == "Accepted"
        signed = await _signed(cp)
        assert set(signed) == {"certificate_chain"}  # 1.6 has no certificateType
        assert _leaf(signed["certificate_chain"]).public_key() == key.public_key()
        [cert] = await _installed(api, "CS-PKI16", 1)
        assert cert["use"] == "ChargingStationCertificate"

        assert app.certificates is not None
        assert await app.certificates.renew_due() == 0  # a year left
        app.certificates.options = CertificateOptions(
            organization=ORG, renew_before=timedelta(days=400)
        )
        assert await app.certificates.renew_due() == 1
        assert ("ExtendedTriggerMessage", {"requested_message": "SignChargePointCertificate"}) in (
            cp.received
        )
        assert await app.certificates.renew_due() == 0  # asked today already


async def test_no_certificate_of_one_station_opens_another(
    ca_node: tuple[App, Api], tmp_path: Path
) -> None:
    """A V2G certificate may name any SECC, so it must never pass as a station's TLS client
    certificate; a CSR naming two commonNames is refused; a station certificate names the
    station that asked for it, whatever its CSR said."""
    app, api = ca_node
    await api.post("/stations", {"id": "CS-VICTIM", "security_profile": 3}, 201)
    async with connect(app.server.port, "CS-EVIL", "2.0.1") as cp:
        assert await Driver(cp, "2.0.1").boot() == "Accepted"
        csr, key = csr_for("CS-VICTIM")  # a SECC "name" that is another station's id
        assert await _sign_201(cp, csr, "V2GCertificate") == "Accepted"
        v2g = await _signed(cp)
        two = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "CS-EVIL"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG),
                    x509.NameAttribute(NameOID.COMMON_NAME, "CS-VICTIM"),
                ]
            )
        )
        pem = two.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
        assert await _sign_201(cp, pem, "ChargingStationCertificate") == "Rejected"
        assert await _sign_201(cp, pem, "V2GCertificate") == "Rejected"
    stolen = write_key_and_chain(tmp_path, "stolen", key, v2g["certificate_chain"])
    tls = station_context(tmp_path / "server-root.pem", stolen)
    with (
        structlog.testing.capture_logs() as logs,
        pytest.raises(
            (OSError, websockets.ConnectionClosed, websockets.InvalidMessage, InvalidStatus)
        ),
    ):
        async with connect(app.server.tls_port, "CS-VICTIM", "2.0.1", tls=tls) as cp:
            await Driver(cp, "2.0.1").boot()
    assert app.server.get("CS-VICTIM") is None
    [line] = [e for e in logs if e["event"] == "TLS handshake refused"]
    assert line["reason"] == "client certificate refused: unsuitable certificate purpose"
