"""ISO 15118 Plug & Charge through OCPP 2.0.1, end to end.

A test PKI (``chargegrid pki``'s) is made with its OCSP responder running over HTTP; a station of
the `ocpp` package authorizes a car by its eMAID with the hash data, or the chain, of the contract
certificate; chargegrid asks the responder and accepts, then refuses once the contract is revoked.
GetCertificateStatus returns the responder's answer; Get15118EVCertificate returns what an OPCP
contract certificate pool (a test peer checking each request against Hubject's OPCP OpenAPI in
``../shared/specs``) answered.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from api_client import ADMIN_TOKEN, Api, wait_for
from certs import csr_for
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp as x509_ocsp
from litestar import Litestar, post
from litestar.params import JSONBody
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import call as call201
from stations import Driver, Station16, connect

from chargegrid.adapters.pki.ocsp_responder import OcspResponder
from chargegrid.adapters.pki.v2g import TestPki
from chargegrid.bootstrap import App, build
from chargegrid.entrypoints.api.server import ApiServer
from chargegrid.entrypoints.pki import ocsp_app, write_trust
from chargegrid.entrypoints.settings import Settings
from chargegrid.protocols import ocsp
from chargegrid.service.certificates import CertificateOptions

EMAID = "DEABCC123456789"
OPCP = Path(__file__).parents[3] / "shared/specs/iso15118/v2g-pki-hubject-opcp/ccp.v1.json"
EXI_RESPONSE = base64.b64encode(b"EXI CertificateInstallationRes from the pool").decode()


@dataclass
class World:
    app: App
    api: Api
    pki: TestPki
    responder: OcspResponder
    pool_requests: list[dict[str, Any]]


def _pool(requests: list[dict[str, Any]]) -> Litestar:
    """An OPCP contract certificate pool: checks the request against the OpenAPI document."""
    document = json.loads(OPCP.read_text())
    schema = {**document["components"]["schemas"]["GetSignedContractDataRequest"]}

    @post("/v1/ccp/signedContractData", status_code=200)
    async def signed_contract_data(data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        jsonschema.validate(data, schema)
        requests.append(data)
        return {
            "CCPResponse": {
                "emaidContent": [
                    {"messageDef": {"certificateInstallationRes": EXI_RESPONSE, "emaid": EMAID}}
                ]
            }
        }

    return Litestar([signed_contract_data], openapi_config=None, logging_config=None)


@pytest.fixture
async def world(tmp_path: Path, fresh_db_url: Callable[[str], str]) -> AsyncIterator[World]:
    if not OPCP.exists():
        pytest.skip(f"needs ../shared/specs (the OPCP OpenAPI document at {OPCP})")
    responder = OcspResponder(TestPki(tmp_path / "pki"))
    ocsp_server = ApiServer(ocsp_app(responder), "127.0.0.1", 0)
    requests: list[dict[str, Any]] = []
    pool = ApiServer(_pool(requests), "127.0.0.1", 0)
    await ocsp_server.start()
    await pool.start()
    responder.pki = TestPki.create(
        tmp_path / "pki", (EMAID,), ocsp_url=f"http://127.0.0.1:{ocsp_server.port}/"
    )
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
            v2g_trust=str(write_trust(responder.pki)),
            contract_provider=f"http://127.0.0.1:{pool.port}",
        )
    )
    await app.start()
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{app.api.port}", timeout=10
        ) as client:
            api = Api(client, ADMIN_TOKEN)
            await api.post("/tokens", {"value": EMAID, "kind": "eMAID"}, 201)
            yield World(app, api, responder.pki, responder, requests)
    finally:
        await app.stop()
        await pool.stop()
        await ocsp_server.stop()


def _hash_data(pki: TestPki, emaid: str = EMAID) -> list[dict[str, str]]:
    """What the station sends: the contract's and its sub-CAs' hash data, leaf first."""
    path = [pki.contract(emaid), "mo-sub2", "mo-sub1"]
    issuers = {"mo-sub2": "mo-sub1", "mo-sub1": "mo-root"}
    issuers[path[0]] = "mo-sub2"
    out = []
    for name in path:
        data = ocsp.hash_data(pki.certs[name], pki.certs[issuers[name]])
        out.append(
            {
                "hash_algorithm": data.hash_algorithm,
                "issuer_name_hash": data.issuer_name_hash,
                "issuer_key_hash": data.issuer_key_hash,
                "serial_number": data.serial_number,
                "responder_url": data.responder_url or "",
            }
        )
    return out


async def _authorize(cp: Any, **contract: Any) -> tuple[str, str | None]:
    answer = await cp.call(
        call201.Authorize(id_token={"id_token": EMAID, "type": "eMAID"}, **contract)
    )
    return answer.id_token_info["status"], answer.certificate_status


async def test_authorize_by_contract_then_revoked(world: World) -> None:
    async with connect(world.app.server.port, "CS-PNC", "2.0.1") as cp:
        assert await Driver(cp, "2.0.1").boot() == "Accepted"
        hash_data = _hash_data(world.pki)
        assert await _authorize(cp, iso15118_certificate_hash_data=hash_data) == (
            "Accepted",
            "Accepted",
        )
        chain = world.pki.chain_pem(world.pki.contract(EMAID))
        assert await _authorize(cp, certificate=chain) == ("Accepted", "Accepted")

        world.responder.revoke(world.pki.contract(EMAID))
        assert await _authorize(cp, iso15118_certificate_hash_data=hash_data) == (
            "Invalid",
            "CertificateRevoked",
        )
        assert await _authorize(cp, certificate=chain) == ("Invalid", "CertificateRevoked")
        # without contract data, the eMAID is a token like any other
        assert await _authorize(cp) == ("Accepted", None)


async def test_contracts_that_do_not_hold(world: World, tmp_path: Path) -> None:
    stranger = TestPki.create(tmp_path / "other", ("DEXYZC987654321",))
    async with connect(world.app.server.port, "CS-PNC2", "2.0.1") as cp:
        assert await Driver(cp, "2.0.1").boot() == "Accepted"
        foreign = stranger.chain_pem(stranger.contract("DEXYZC987654321"))
        assert await _authorize(cp, certificate=foreign) == ("Invalid", "CertChainError")
        other_car = world.pki.chain_pem(world.pki.contract("DEABCC000000001"))
        assert await _authorize(cp, certificate=other_car) == ("Invalid", "CertChainError")
        unreachable = [{**d, "responder_url": "http://127.0.0.1:9/"} for d in _hash_data(world.pki)]
        assert await _authorize(cp, iso15118_certificate_hash_data=unreachable) == (
            "Invalid",
            "NoCertificateAvailable",
        )
        forged = _hash_data(stranger, "DEXYZC987654321")  # its own responder URL is unset
        forged = [{**d, "responder_url": _url(world)} for d in forged]
        assert await _authorize(cp, iso15118_certificate_hash_data=forged) == (
            "Invalid",
            "CertChainError",
        )


async def test_a_contract_key_cannot_pass_for_a_ca(world: World) -> None:
    """The owner of one contract signs a certificate for another eMAID with the contract's key:
    the chain checks out signature by signature, but a contract is no CA."""
    from datetime import UTC, datetime, timedelta

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    mine = world.pki.contract(EMAID)
    victim = "DEVICTIM0000001"
    await world.api.post("/tokens", {"value": victim, "kind": "eMAID"}, 201)
    now = datetime.now(UTC)
    forged = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, victim)]))
        .issuer_name(world.pki.certs[mine].subject)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(world.pki.keys[mine], hashes.SHA256())
    )
    chain = forged.public_bytes(serialization.Encoding.PEM).decode() + world.pki.chain_pem(mine)
    async with connect(world.app.server.port, "CS-FORGE", "2.0.1") as cp:
        assert await Driver(cp, "2.0.1").boot() == "Accepted"
        answer = await cp.call(
            call201.Authorize(id_token={"id_token": victim, "type": "eMAID"}, certificate=chain)
        )
        assert (answer.id_token_info["status"], answer.certificate_status) == (
            "Invalid",
            "CertChainError",
        )
        # hash data that makes no OCSP request is refused, not a crash
        bad = [{**d, "serial_number": "-1"} for d in _hash_data(world.pki)]
        assert await _authorize(cp, iso15118_certificate_hash_data=bad) == (
            "Invalid",
            "CertChainError",
        )
        status = await cp.call(call201.GetCertificateStatus(ocsp_request_data=bad[0]))
        assert status.status == "Failed"


def _url(world: World) -> str:
    url = ocsp.responder_url(world.pki.certs["mo-sub2"])
    assert url is not None
    return url


async def test_certificate_status_and_ev_certificate(world: World) -> None:
    async with connect(world.app.server.port, "CS-PNC3", "2.0.1") as cp:
        assert await Driver(cp, "2.0.1").boot() == "Accepted"
        [leaf, *_] = _hash_data(world.pki)
        answer = await cp.call(call201.GetCertificateStatus(ocsp_request_data=leaf))
        assert answer.status == "Accepted"
        response = x509_ocsp.load_der_ocsp_response(base64.b64decode(answer.ocsp_result))
        assert response.certificate_status is x509_ocsp.OCSPCertStatus.GOOD
        assert response.serial_number == int(leaf["serial_number"], 16)
        nowhere = await cp.call(
            call201.GetCertificateStatus(
                ocsp_request_data={**leaf, "responder_url": "http://127.0.0.1:9/"}
            )
        )
        assert nowhere.status == "Failed"

        exi = base64.b64encode(b"EXI CertificateInstallationReq from the car").decode()
        answer = await cp.call(
            call201.Get15118EVCertificate(
                iso15118_schema_version="urn:iso:15118:2:2013:MsgDef",
                action="Install",
                exi_request=exi,
            )
        )
        assert (answer.status, answer.exi_response) == ("Accepted", EXI_RESPONSE)
    assert world.pool_requests == [
        {"certificateInstallationReq": exi, "xsdMsgDefNamespace": "urn:iso:15118:2:2013:MsgDef"}
    ]


# --- OCPP 1.6: the 2.0.1 messages in DataTransfer (OCA application note) ----------------------

PNC = "org.openchargealliance.iso15118pnc"


class Pnc16Station(Station16):  # type: ignore[misc]
    """Answers the CSMS's PnC DataTransfers (CertificateSigned) with 2.0.1 Accepted."""

    @on("DataTransfer")
    def on_data_transfer(self, vendor_id: str, **kwargs: Any) -> Any:
        self.received.append(("DataTransfer", {"vendor_id": vendor_id, **kwargs}))
        return result16.DataTransfer(status="Accepted", data=json.dumps({"status": "Accepted"}))


async def _transfer(cp: Any, message_id: str, data: Any) -> tuple[str, Any]:
    text = data if isinstance(data, str) else json.dumps(data)
    answer = await cp.call(call16.DataTransfer(vendor_id=PNC, message_id=message_id, data=text))
    return answer.status, json.loads(answer.data) if answer.data else None


def _camel(hash_data: list[dict[str, str]]) -> list[dict[str, str]]:
    names = {
        "hash_algorithm": "hashAlgorithm",
        "issuer_name_hash": "issuerNameHash",
        "issuer_key_hash": "issuerKeyHash",
        "serial_number": "serialNumber",
        "responder_url": "responderURL",
    }
    return [{names[k]: v for k, v in d.items()} for d in hash_data]


async def test_plug_and_charge_with_a_16_station(world: World) -> None:
    contract = {
        "idToken": {"idToken": EMAID, "type": "eMAID"},
        "iso15118CertificateHashData": _camel(_hash_data(world.pki)),
    }
    async with connect(world.app.server.port, "CS-PNC16", "1.6", station_class=Pnc16Station) as cp:
        assert await Driver(cp, "1.6").boot() == "Accepted"
        status, answer = await _transfer(cp, "Authorize", contract)
        assert status == "Accepted"
        assert (answer["idTokenInfo"]["status"], answer["certificateStatus"]) == (
            "Accepted",
            "Accepted",
        )
        status, answer = await _transfer(
            cp,
            "GetCertificateStatus",
            {"ocspRequestData": contract["iso15118CertificateHashData"][0]},
        )
        assert (status, answer["status"]) == ("Accepted", "Accepted")
        assert await _transfer(cp, "Authorize", "{not json") == ("Rejected", None)
        assert await _transfer(cp, "NoSuchMessage", {}) == ("UnknownMessageId", None)

        # the SECC certificate: CSR in a DataTransfer, CertificateSigned back in one
        csr, key = csr_for("SECC-CS-PNC16")
        status, answer = await _transfer(
            cp, "SignCertificate", {"csr": csr, "certificateType": "V2GCertificate"}
        )
        assert (status, answer) == ("Accepted", {"status": "Accepted"})

        async def delivered() -> bool:
            return any(action == "DataTransfer" for action, _ in cp.received)

        await wait_for(delivered, timeout=5)
        [(_, sent)] = [r for r in cp.received if r[0] == "DataTransfer"]
        assert (sent["vendor_id"], sent["message_id"]) == (PNC, "CertificateSigned")
        signed = json.loads(sent["data"])
        assert signed["certificateType"] == "V2GCertificate"
        leaf = x509.load_pem_x509_certificates(signed["certificateChain"].encode())[0]
        assert leaf.public_key() == key.public_key()

        # renewal: asked for in a DataTransfer too, once the certificate is due
        certificates = world.app.certificates
        assert certificates is not None

        async def installed() -> bool:
            issued = await world.api.get("/stations/CS-PNC16/certificates")
            return [c["status"] for c in issued] == ["installed"]

        await wait_for(installed, timeout=5)
        certificates.options = CertificateOptions(renew_before=timedelta(days=90))
        assert await certificates.renew_due() == 1
        trigger = [r for r in cp.received if r[0] == "DataTransfer"][-1][1]
        assert (trigger["message_id"], json.loads(trigger["data"])) == (
            "TriggerMessage",
            {"requestedMessage": "SignV2GCertificate"},
        )

        world.responder.revoke(world.pki.contract(EMAID))
        _, answer = await _transfer(cp, "Authorize", contract)
        assert (answer["idTokenInfo"]["status"], answer["certificateStatus"]) == (
            "Invalid",
            "CertificateRevoked",
        )
