"""ISO 15118-2 certificate installation and update: requests read and their signatures checked,
responses built, signed and their contract key recoverable by the car, and refusals."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from chargegrid.adapters.pki.v2g import TestPki
from chargegrid.protocols import exi
from chargegrid.protocols import iso15118 as v2

EMAID = "DECGRC000000042"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.create(tmp_path_factory.mktemp("pki"), emaids=(EMAID,))


def _install(pki: TestPki, key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    root = pki.certs["v2g-root"]
    return v2.sign_request(
        "install",
        session_id=b"\x01\x02\x03\x04\x05\x06\x07\x08",
        certificate=pki.certs["oem-prov"],
        key=key or pki.keys["oem-prov"],
        root_ids=(v2.RootCertificateId(root.issuer.rfc4514_string(), root.serial_number),),
    )


def _answer(pki: TestPki, request: v2.CertificateRequest) -> bytes:
    contract = pki.contract(EMAID)
    return v2.build_response(
        request,
        emaid=EMAID,
        contract=pki.certs[contract],
        contract_subs=(pki.certs["mo-sub2"], pki.certs["mo-sub1"]),
        contract_key=pki.keys[contract],
        provisioning=pki.certs["cps"],
        provisioning_subs=(pki.certs["cps-sub2"], pki.certs["cps-sub1"]),
        provisioning_key=pki.keys["cps"],
    )


def test_installation(pki: TestPki) -> None:
    request = v2.read_request(_install(pki))
    assert request.kind == "install"
    assert request.session_id == bytes(range(1, 9))
    assert request.certificate == pki.certs["oem-prov"]
    assert request.root_ids[0].serial == pki.certs["v2g-root"].serial_number
    message = v2.read_response(_answer(pki, request))
    assert message.child("Header").child("SessionID").value == request.session_id
    response = v2.verify_response(message, pki.certs["cps"])
    assert response.name == "CertificateInstallationRes"
    assert response.child("ResponseCode").value == "OK"
    assert response.child("eMAID").value == EMAID
    key = v2.decrypt_contract_key(
        response.child("ContractSignatureEncryptedPrivateKey").value,
        response.child("DHpublickey").value,
        pki.keys["oem-prov"],
    )
    contract = pki.contract(EMAID)
    assert key.private_numbers() == pki.keys[contract].private_numbers()


def test_update_is_encrypted_for_the_old_contract(pki: TestPki) -> None:
    contract = pki.contract(EMAID)
    data = v2.sign_request(
        "update",
        session_id=b"\x09",
        certificate=pki.certs[contract],
        key=pki.keys[contract],
        sub_certificates=(pki.certs["mo-sub2"], pki.certs["mo-sub1"]),
        emaid=EMAID,
        root_ids=(v2.RootCertificateId("CN=V2GRootCA", 1),),
    )
    request = v2.read_request(data)
    assert (request.kind, request.emaid, len(request.sub_certificates)) == ("update", EMAID, 2)
    response = v2.verify_response(v2.read_response(_answer(pki, request)), pki.certs["cps"])
    assert response.name == "CertificateUpdateRes"
    key = v2.decrypt_contract_key(
        response.child("ContractSignatureEncryptedPrivateKey").value,
        response.child("DHpublickey").value,
        pki.keys[contract],
    )
    assert key.private_numbers() == pki.keys[contract].private_numbers()


def test_a_request_signed_by_another_key(pki: TestPki) -> None:
    with pytest.raises(v2.V2gError, match="does not verify"):
        v2.read_request(_install(pki, key=ec.generate_private_key(ec.SECP256R1())))


def test_a_request_changed_after_signing(pki: TestPki) -> None:
    grammars = v2.message_grammars()
    message = exi.decode(_install(pki), grammars)
    element = message.child("Body").children[0]
    other = pki.certs["oem-sub2"].public_bytes(serialization.Encoding.DER)
    element.child("OEMProvisioningCert").value = other
    with pytest.raises(v2.V2gError, match="does not cover CertificateInstallationReq"):
        v2.read_request(exi.encode(message, grammars))


def test_requests_that_are_not_certificate_requests(pki: TestPki) -> None:
    grammars = v2.message_grammars()
    message = exi.decode(_install(pki), grammars)
    message.child("Header").children = [message.child("Header").child("SessionID")]
    with pytest.raises(v2.V2gError, match="not signed"):
        v2.read_request(exi.encode(message, grammars))
    body = exi.Node("SessionSetupReq", children=[exi.Node("EVCCID", b"\x01")])
    message.child("Body").children = [body]
    with pytest.raises(v2.V2gError, match="SessionSetupReq is not"):
        v2.read_request(exi.encode(message, grammars))
    with pytest.raises(v2.V2gError, match="not a readable"):
        v2.read_request(b"\x80\xff\xff")


def test_a_value_longer_than_its_type_allows(pki: TestPki) -> None:
    request = v2.read_request(_install(pki))
    contract = pki.contract(EMAID)
    with pytest.raises(v2.V2gError, match=r"length 16 is outside 14\.\.15"):
        v2.build_response(
            request,
            emaid=EMAID + "X",
            contract=pki.certs[contract],
            contract_subs=(),
            contract_key=pki.keys[contract],
            provisioning=pki.certs["cps"],
            provisioning_subs=(),
            provisioning_key=pki.keys["cps"],
        )


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_changed_request_raises_only_v2g_error(pki: TestPki, data: st.DataObject) -> None:
    """Bytes of a valid signed request changed here and there: a V2gError or a request, never
    anything else (certificates that cryptography cannot use included)."""
    original = bytearray(_install(pki))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(original) - 1))
        original[at] = data.draw(st.integers(0, 255))
    with contextlib.suppress(v2.V2gError):
        v2.read_request(bytes(original))


def test_a_response_must_sign_all_four_elements(pki: TestPki) -> None:
    message = v2.read_response(_answer(pki, v2.read_request(_install(pki))))
    chain = message.child("Body").children[0].child("ContractSignatureCertChain")
    del chain.attrs["Id"]
    with pytest.raises(v2.V2gError, match="does not cover ContractSignatureCertChain"):
        v2.verify_response(message, pki.certs["cps"])


def test_schemas_travel_with_the_package() -> None:
    folder = Path(v2.__file__).parent / "schemas"
    assert {p.name for p in folder.glob("*.xsd")} == {
        "V2G_CI_MsgDef.xsd",
        "V2G_CI_MsgHeader.xsd",
        "V2G_CI_MsgBody.xsd",
        "V2G_CI_MsgDataTypes.xsd",
        "xmldsig-core-schema.xsd",
    }
