"""Get15118EVCertificate with the built-in contract-certificate provider, end to end.

A test PKI with its OCSP responder over HTTP; ``chargegrid serve`` with ``--contract-provider``
naming the PKI's folder. A station of the `ocpp` package (2.0.1, and 1.6 through the Plug & Charge
DataTransfer) forwards a car's signed ISO 15118-2 CertificateInstallationReq in EXI; the answer
is decoded as the car would: the signature verifies with the provisioning certificate, which
chains to the V2G root; the contract key decrypts with the car's key and matches the contract
certificate; and that contract then authorizes the car (OCSP included). An update gives a new key,
encrypted for the old contract. Requests that do not hold fail, each with a log line.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_client import ADMIN_TOKEN, Api
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from stations import Driver, connect
from structlog.testing import capture_logs

from chargegrid.adapters.pki.ocsp_responder import OcspResponder
from chargegrid.adapters.pki.v2g import TestPki
from chargegrid.bootstrap import App, build
from chargegrid.entrypoints.api.server import ApiServer
from chargegrid.entrypoints.pki import ocsp_app, write_trust
from chargegrid.entrypoints.settings import Settings
from chargegrid.protocols import iso15118 as v2

ISO2 = "urn:iso:15118:2:2013:MsgDef"


@dataclass
class World:
    app: App
    api: Api
    pki: TestPki


@pytest.fixture
async def world(tmp_path: Path, fresh_db_url: Callable[[str], str]) -> AsyncIterator[World]:
    responder = OcspResponder(TestPki(tmp_path / "pki"))
    ocsp_server = ApiServer(ocsp_app(responder), "127.0.0.1", 0)
    await ocsp_server.start()
    pki = TestPki.create(tmp_path / "pki", ocsp_url=f"http://127.0.0.1:{ocsp_server.port}/")
    responder.pki = pki
    app = await build(
        Settings(
            host="127.0.0.1",
            ocpp_port=0,
            api_port=0,
            db=fresh_db_url("sqlite"),
            unknown_stations="accept",
            ping_interval=0,
            call_timeout=5,
            admin_token=ADMIN_TOKEN,
            v2g_trust=str(write_trust(pki)),
            contract_provider=str(pki.folder),
        )
    )
    await app.start()
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{app.api.port}", timeout=10
        ) as client:
            yield World(app, Api(client, ADMIN_TOKEN), pki)
    finally:
        await app.stop()
        await ocsp_server.stop()


def _roots(pki: TestPki) -> tuple[v2.RootCertificateId, ...]:
    root = pki.certs["v2g-root"]
    return (v2.RootCertificateId(root.issuer.rfc4514_string(), root.serial_number),)


def _install(pki: TestPki, oem: str = "oem-prov") -> str:
    data = v2.sign_request(
        "install",
        session_id=bytes.fromhex("a1b2c3d4e5f60718"),
        certificate=pki.certs[oem],
        key=pki.keys[oem],
        root_ids=_roots(pki),
    )
    return base64.b64encode(data).decode()


def _read_as_the_car(
    pki: TestPki, exi_response: str, car_key: ec.EllipticCurvePrivateKey
) -> tuple[str, list[x509.Certificate], ec.EllipticCurvePrivateKey]:
    """What the car does with the answer: eMAID, contract chain and the decrypted key."""
    message = v2.read_response(base64.b64decode(exi_response))
    body = message.child("Body").children[0]
    provisioning = body.child("SAProvisioningCertificateChain")
    signer = x509.load_der_x509_certificate(provisioning.child("Certificate").value)
    chain = [signer] + [
        x509.load_der_x509_certificate(c.value)
        for c in provisioning.child("SubCertificates").children
    ]
    for cert, issuer in zip(chain, [*chain[1:], pki.certs["v2g-root"]], strict=True):
        cert.verify_directly_issued_by(issuer)  # up to the V2G root the car trusts
    v2.verify_response(message, signer)
    assert body.child("ResponseCode").value == "OK"
    holder = body.child("ContractSignatureCertChain")
    contract = [x509.load_der_x509_certificate(holder.child("Certificate").value)] + [
        x509.load_der_x509_certificate(c.value) for c in holder.child("SubCertificates").children
    ]
    key = v2.decrypt_contract_key(
        body.child("ContractSignatureEncryptedPrivateKey").value,
        body.child("DHpublickey").value,
        car_key,
    )
    assert key.public_key() == contract[0].public_key()
    for cert, issuer in zip(contract, [*contract[1:], pki.certs["mo-root"]], strict=True):
        cert.verify_directly_issued_by(issuer)
    return str(body.child("eMAID").value), contract, key


def _pem(chain: list[x509.Certificate]) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain)


async def _ev_certificate(cp: Any, action: str, exi: str, schema: str = ISO2) -> Any:
    return await cp.call(
        call201.Get15118EVCertificate(
            iso15118_schema_version=schema, action=action, exi_request=exi
        )
    )


async def test_install_authorize_update(world: World) -> None:
    async with connect(world.app.server.port, "CS-CCP", "2.0.1") as cp:
        assert await Driver(cp, "2.0.1").boot() == "Accepted"
        answer = await _ev_certificate(cp, "Install", _install(world.pki))
        assert answer.status == "Accepted"
        emaid, contract, key = _read_as_the_car(
            world.pki, answer.exi_response, world.pki.keys["oem-prov"]
        )
        assert emaid.startswith("DECGRC") and len(emaid) == 14
        name = contract[0].subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
        assert name == emaid
        again = await _ev_certificate(cp, "Install", _install(world.pki))
        assert _read_as_the_car(world.pki, again.exi_response, world.pki.keys["oem-prov"])[0] == (
            emaid
        )

        # the new contract authorizes the car, OCSP included
        await world.api.post("/tokens", {"value": emaid, "kind": "eMAID"}, 201)
        authorized = await cp.call(
            call201.Authorize(
                id_token={"id_token": emaid, "type": "eMAID"}, certificate=_pem(contract)
            )
        )
        assert (authorized.id_token_info["status"], authorized.certificate_status) == (
            "Accepted",
            "Accepted",
        )

        # an update: signed with the contract key, answered with a new key encrypted for it
        update = v2.sign_request(
            "update",
            session_id=b"\x07",
            certificate=contract[0],
            key=key,
            sub_certificates=tuple(contract[1:]),
            emaid=emaid,
            root_ids=_roots(world.pki),
        )
        renewed = await _ev_certificate(cp, "Update", base64.b64encode(update).decode())
        assert renewed.status == "Accepted"
        same, new_chain, new_key = _read_as_the_car(world.pki, renewed.exi_response, key)
        assert same == emaid
        assert new_chain[0].serial_number != contract[0].serial_number
        assert new_key.private_numbers() != key.private_numbers()

        # the old contract stays valid until it expires; its update cannot be replayed
        authorized = await cp.call(
            call201.Authorize(
                id_token={"id_token": emaid, "type": "eMAID"}, certificate=_pem(contract)
            )
        )
        assert authorized.certificate_status == "Accepted"
        with capture_logs() as logs:
            replayed = await _ev_certificate(cp, "Update", base64.b64encode(update).decode())
        assert replayed.status == "Failed"
        assert any("not the current contract" in line.get("reason", "") for line in logs)

        # a revoked contract is not renewed
        OcspResponder(TestPki.load(world.pki.folder)).revoke(f"contract-{emaid}")
        revoked = v2.sign_request(
            "update",
            session_id=b"\x08",
            certificate=new_chain[0],
            key=new_key,
            sub_certificates=tuple(new_chain[1:]),
            emaid=emaid,
            root_ids=_roots(world.pki),
        )
        with capture_logs() as logs:
            answer = await _ev_certificate(cp, "Update", base64.b64encode(revoked).decode())
        assert answer.status == "Failed"
        assert any("is revoked" in line.get("reason", "") for line in logs)


async def test_a_contract_cannot_issue_another(world: World) -> None:
    """A car holds its contract key (the provider gave it): it signs a certificate for another
    customer's eMAID as if its contract were a CA, and asks for that contract's renewal."""
    victim = world.pki.contract("DECGRCVICTIM01")
    mine = world.pki.contract("DECGRCATTACK1")
    now = datetime.now(UTC)
    forger = ec.generate_private_key(ec.SECP256R1())
    forged = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "DECGRCVICTIM01")]))
        .issuer_name(world.pki.certs[mine].subject)
        .public_key(forger.public_key())
        .serial_number(world.pki.certs[victim].serial_number)
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(world.pki.keys[mine], hashes.SHA256())
    )
    request = v2.sign_request(
        "update",
        session_id=b"\x01",
        certificate=forged,
        key=forger,
        sub_certificates=(world.pki.certs[mine],),
        emaid="DECGRCVICTIM01",
        root_ids=_roots(world.pki),
    )
    async with connect(world.app.server.port, "CS-CCP3", "2.0.1") as cp:
        assert await Driver(cp, "2.0.1").boot() == "Accepted"
        with capture_logs() as logs:
            answer = await _ev_certificate(cp, "Update", base64.b64encode(request).decode())
    assert answer.status == "Failed"
    assert any(
        "does not chain to the test PKI's mo-root" in line.get("reason", "") for line in logs
    )
    assert TestPki.load(world.pki.folder).certs[victim] == world.pki.certs[victim]


async def test_requests_that_do_not_hold(world: World, tmp_path: Path) -> None:
    stranger = TestPki.create(tmp_path / "stranger")
    async with connect(world.app.server.port, "CS-CCP2", "2.0.1") as cp:
        assert await Driver(cp, "2.0.1").boot() == "Accepted"
        cases = {
            "exiRequest is not base64": ("Install", "not base64!", ISO2),
            "not a readable ISO 15118-2 message": ("Install", "gAA=", ISO2),
            "not issued by oem-sub2": ("Install", _install(stranger), ISO2),
            "action Update does not fit the car's install request": (
                "Update",
                _install(world.pki),
                ISO2,
            ),
            "ISO 15118-2 only": (
                "Install",
                _install(world.pki),
                "urn:iso:std:iso:15118:-20:CommonMessages",
            ),
        }
        for reason, (action, exi, schema) in cases.items():
            with capture_logs() as logs:
                answer = await _ev_certificate(cp, action, exi, schema)
            assert answer.status == "Failed", reason
            assert any(reason in line.get("reason", "") + line["event"] for line in logs), (
                reason,
                logs,
            )


async def test_a_16_station_through_data_transfer(world: World) -> None:
    async with connect(world.app.server.port, "CS-CCP16", "1.6") as cp:
        assert await Driver(cp, "1.6").boot() == "Accepted"
        request = {
            "iso15118SchemaVersion": ISO2,
            "action": "Install",
            "exiRequest": _install(world.pki),
        }
        answer = await cp.call(
            call16.DataTransfer(
                vendor_id="org.openchargealliance.iso15118pnc",
                message_id="Get15118EVCertificate",
                data=json.dumps(request),
            )
        )
        assert answer.status == "Accepted"
        data = json.loads(answer.data)
        assert data["status"] == "Accepted"
        _read_as_the_car(world.pki, data["exiResponse"], world.pki.keys["oem-prov"])
